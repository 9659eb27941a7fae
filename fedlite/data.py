"""Synthetic regression data, made offline and reproducibly with plain numpy.

Three targets of growing difficulty, each returning X (n, d) C-contiguous float64 and y (n,):

- `make_linear_data`: y = X w + b + noise, for the linear model (also returns w and b);
- `make_sine_data`: y = sin(x_0) + ..., a curve a small ReLU network can fit;
- `make_teacher_data`: y from a random "teacher" ReLU network relu(X W1 + b1) W2 + b2.

Randomness comes only from `seed` (an int): the same seed always gives the same data.
To split a data set among participants, see `fedlite.partition`.
"""
from __future__ import annotations

import numpy as np

from .validation import as_float, as_float_array, as_int, check_allocation


def make_linear_data(num_samples, num_features, *, noise=0.1, seed=0):
    """Data for linear regression: returns (X (n, d), y (n,), w_true (d,), b_true float).

    w_true ~ N(0, I), b_true ~ N(0, 1), X ~ N(0, 1) entrywise, and
    y = X w_true + b_true + noise · N(0, 1).
    """
    n, d, noise, rng = _check(num_samples, num_features, noise, seed)
    w_true = rng.standard_normal(d)
    b_true = float(rng.standard_normal())
    X = rng.standard_normal((n, d))
    y = add_noise(X @ w_true + b_true, noise, rng)
    return X, y, w_true, b_true


def make_sine_data(num_samples, *, num_features=1, noise=0.1, seed=0):
    """A nonlinear target: returns (X (n, d), y (n,)).

    X ~ Uniform[-3, 3] entrywise, and
    y = sin(x_0) + 0.1 · (x_1 + ... + x_{d-1}) + noise · N(0, 1)
    (the sum is empty when d = 1).  One hidden layer of ~10 ReLU units fits it well.
    """
    n, d, noise, rng = _check(num_samples, num_features, noise, seed)
    X = rng.uniform(-3.0, 3.0, size=(n, d))
    y = add_noise(np.sin(X[:, 0]) + 0.1 * X[:, 1:].sum(axis=1), noise, rng)
    return X, y


def make_teacher_data(num_samples, num_features, *, hidden=10, noise=0.1, seed=0):
    """Data from a random teacher network: returns (X (n, d), y (n,)).

    The teacher has the shapes of `fedlite.models.mlp_loss_grad` with h = `hidden`:
    W1 (d, h) ~ N(0, 1/d), b1 (h,) ~ N(0, 1), W2 (h,) ~ N(0, 1/h), b2 ~ N(0, 1).
    X ~ N(0, 1) entrywise, and y = relu(X W1 + b1) W2 + b2 + noise · N(0, 1).
    """
    n, d, noise, rng = _check(num_samples, num_features, noise, seed)
    h = as_int(hidden, "hidden", minimum=1)
    check_allocation(d * h, "num_features or hidden")   # W1
    check_allocation(n * h, "num_samples or hidden")    # the hidden layer's outputs
    W1 = rng.standard_normal((d, h)) / np.sqrt(d)
    b1 = rng.standard_normal(h)
    W2 = rng.standard_normal(h) / np.sqrt(h)
    b2 = float(rng.standard_normal())
    X = rng.standard_normal((n, d))
    y = add_noise(np.maximum(X @ W1 + b1, 0.0) @ W2 + b2, noise, rng)
    return X, y


def add_noise(y_clean, noise, rng):
    """y_clean (n,) + noise · N(0, 1), one draw per row from rng (a numpy Generator).

    Refuses a noise so large that y overflows float64, naming noise.
    """
    y_clean = as_float_array(y_clean, "y_clean", 1)
    noise = _check_noise(noise)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}")
    with np.errstate(over="ignore", invalid="ignore"):
        y = y_clean + noise * rng.standard_normal(len(y_clean))
    if not np.isfinite(y).all():
        raise ValueError(f"noise = {noise:g} is so large that y overflows float64 "
                         f"(|y| > 1.8e308); use a smaller noise")
    return y


def _check(num_samples, num_features, noise, seed):
    """The arguments every maker shares, checked: returns (n, d, noise, rng)."""
    n = as_int(num_samples, "num_samples", minimum=1)
    d = as_int(num_features, "num_features", minimum=1)
    check_allocation(n * d, "num_samples or num_features")   # X
    noise = _check_noise(noise)
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    return n, d, noise, rng


def _check_noise(noise):
    noise = as_float(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (the standard deviation of the added noise); "
                         f"got {noise}")
    return noise
