"""Model parameters as one flat float64 vector: the thing that crosses the network each round.

The simulator keeps a model as `theta`, shape (P,):
- linear: theta = [w (d), b]                                   P = d + 1
- mlp:    theta = [W1 row by row (d*h), b1 (h), W2 (h), b2]     P = d*h + 2h + 1
`pack`/`unpack` convert between theta and the tuples the loss functions take.  These functions
are the names of earlier versions; each model object (`fedlite.core.model`) does the same.
"""
from __future__ import annotations

import numpy as np

from .core.model import BYTES_PER_VALUE, MODELS as _MODEL_CLASSES, build_model, model_for_params

MODELS = tuple(_MODEL_CLASSES)


def num_params(model, num_features, hidden=10):
    """P, the length of theta, for `model` on `num_features` inputs."""
    return build_model(model, num_features, hidden).num_params


def unpack(theta, model, num_features, hidden=10):
    """theta (P,) -> (w, b) for the linear model or (W1, b1, W2, b2) for the MLP (copies)."""
    return build_model(model, num_features, hidden).unpack(theta)


def pack(params):
    """(w, b) or (W1, b1, W2, b2) -> theta (P,)."""
    return model_for_params(params).pack(params)


def init_params(model, num_features, hidden=10, rng=None):
    """Starting theta: zeros for the linear model; He-initialised weights for the MLP.

    The MLP cannot start at zero (every hidden unit would get the same gradient), so
    W1 ~ N(0, 2/d) and W2 ~ N(0, 1/h) are drawn from `rng` (a numpy Generator); biases are 0.
    """
    model = build_model(model, num_features, hidden)
    if rng is None and model.name != "linear":
        raise ValueError("init_params for the MLP needs rng, a numpy.random.Generator")
    return model.init(rng)


__all__ = ["BYTES_PER_VALUE", "MODELS", "init_params", "num_params", "pack", "unpack"]
