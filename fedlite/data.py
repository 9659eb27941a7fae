"""Data sets of the course, made or loaded offline and reproducibly with plain numpy.

Three synthetic regression targets of growing difficulty, each returning X (n, d) C-contiguous
float64 and y (n,):

- `make_linear_data`: y = X w + b + noise, for the linear model (also returns w and b);
- `make_sine_data`: y = sin(x_0) + ..., a curve a small ReLU network can fit;
- `make_teacher_data`: y from a random "teacher" ReLU network relu(X W1 + b1) W2 + b2.

And one real classification data set, split into training and test data:

- `load_digits`: the 8x8 handwritten digits 0-9 that scikit-learn ships (1,797 images).

Randomness comes only from `seed` (an int): the same seed always gives the same data.
To split a data set among participants, see `fedlite.partition`.
"""
from __future__ import annotations

import numpy as np

from .validation import as_float, as_float_array, as_int, check_allocation

DIGITS_MAX_INTENSITY = 16  # a pixel of the 8x8 digits counts the inked cells of a 4x4 block


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


def load_digits(*, test_fraction=0.25, seed=0):
    """The UCI handwritten digits: returns (X_train, y_train, X_test, y_test).

    1,797 images of the digits 0-9, each 8x8 pixels: the test set of the UCI optical digits
    (Alpaydin and Kaynak, 1998; written by 13 people), as bundled with scikit-learn
    (`sklearn.datasets.load_digits`: no download).
    X_* (n, 64) float64: row i is image i, its 8 rows of 8 pixels one after another (see it with
    `fedlite.plotting.plot_digits`).  Each pixel's intensity 0..16 (ink in a 4x4 block) is
    divided by 16, so 0 = blank and 1 = full ink.  A fixed scale, not standardisation: it uses no
    statistics of the data, so nothing of the test data leaks into training, and federated
    participants need not agree on (or share) means and variances; every feature already has
    the same units and a range of 1, which keeps the gradient steps well-conditioned.
    y_* (n,) int64: the digit, 0..9.
    The split is stratified: each digit's images are shuffled and round(test_fraction · n_c)
    of them (rounded half up) go to the test data, so both halves keep the 10 classes in the
    same proportions; the rows of each half come in random order.  Nothing is in both.
    test_fraction: in (0, 1), leaving each digit at least one image in each half.
    seed: int; the same seed gives the same split, bit for bit.
    Raises ImportError saying how to install scikit-learn if it is missing.
    """
    test_fraction = as_float(test_fraction, "test_fraction")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (the share of the images kept "
                         f"for testing), exclusive; got {test_fraction}")
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError:
        raise ImportError("fedlite.load_digits needs scikit-learn, which ships the digits data "
                          "set (no download): install it with `pip install scikit-learn` (or "
                          "`conda install scikit-learn`), then restart the kernel") from None
    pixels, digits = sklearn_load_digits(return_X_y=True)
    X = np.ascontiguousarray(pixels, dtype=np.float64) / DIGITS_MAX_INTENSITY
    y = np.ascontiguousarray(digits, dtype=np.int64)
    train, test = _stratified_split(y, test_fraction, rng)
    return X[train], y[train], X[test], y[test]


def _stratified_split(y, test_fraction, rng):
    """Row numbers (train, test) of a stratified split of the labels y (n,) (int64 each).

    Each class's rows are shuffled, the first round(test_fraction · n_c) (half up) go to test;
    then each half is shuffled.  Refuses a test_fraction that leaves a class with no row in
    one of the halves, naming test_fraction.
    """
    train, test = [], []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        n_test = int(np.floor(test_fraction * len(rows) + 0.5))
        if not 0 < n_test < len(rows):
            half = "test" if n_test == 0 else "training"
            raise ValueError(f"test_fraction = {test_fraction:g} leaves class {c} with no "
                             f"{half} row ({n_test} of its {len(rows)} rows go to test); "
                             f"choose a test_fraction nearer 0.5, e.g. 0.25")
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


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
