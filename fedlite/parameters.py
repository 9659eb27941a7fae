"""Model parameters as one flat float64 vector: the thing that crosses the network each round.

The simulator keeps a model as `theta`, shape (P,):
- linear: theta = [w (d), b]                                   P = d + 1
- mlp:    theta = [W1 row by row (d*h), b1 (h), W2 (h), b2]     P = d*h + 2h + 1
`pack`/`unpack` convert between theta and the tuples the loss functions take.
"""
from __future__ import annotations

import numpy as np

MODELS = ("linear", "mlp")
BYTES_PER_VALUE = 8  # float64


def num_params(model, num_features, hidden=10):
    """P, the length of theta, for `model` on `num_features` inputs."""
    if model == "linear":
        return num_features + 1
    if model == "mlp":
        return num_features * hidden + 2 * hidden + 1
    raise ValueError(f"model must be one of {MODELS}; got {model!r}")


def unpack(theta, model, num_features, hidden=10):
    """theta (P,) -> (w, b) for the linear model or (W1, b1, W2, b2) for the MLP (copies)."""
    theta = np.asarray(theta, dtype=np.float64)
    d, h = num_features, hidden
    if model == "linear":
        return theta[:d].copy(), float(theta[d])
    W1 = theta[: d * h].reshape(d, h).copy()
    b1 = theta[d * h: d * h + h].copy()
    W2 = theta[d * h + h: d * h + 2 * h].copy()
    return W1, b1, W2, float(theta[-1])


def pack(params):
    """(w, b) or (W1, b1, W2, b2) -> theta (P,)."""
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in params])


def init_params(model, num_features, hidden=10, rng=None):
    """Starting theta: zeros for the linear model; He-initialised weights for the MLP.

    The MLP cannot start at zero (every hidden unit would get the same gradient), so
    W1 ~ N(0, 2/d) and W2 ~ N(0, 1/h) are drawn from `rng` (a numpy Generator); biases are 0.
    """
    if model == "linear":
        return np.zeros(num_features + 1)
    if rng is None:
        raise ValueError("init_params for the MLP needs rng, a numpy.random.Generator")
    d, h = num_features, hidden
    W1 = rng.normal(0.0, np.sqrt(2.0 / d), size=(d, h))
    W2 = rng.normal(0.0, np.sqrt(1.0 / h), size=h)
    return pack((W1, np.zeros(h), W2, 0.0))
