"""A model is one object: everything the round loop needs to know about it, and nothing else.

The contract (`Model`, a `typing.Protocol`) is what `fedlite.simulate` and every algorithm use:

    name, loss_name            what plots and messages call it
    num_features, num_params   d and P = len(theta)
    init(rng) -> theta (P,)    seeded starting parameters
    pack(params) -> theta      the tuple form (e.g. (w, b)) to the flat vector that travels
    unpack(theta) -> params    and back (copies)
    loss_grad(X, y, theta)     (mean loss, gradient (P,)) on some rows: the readable path
    participant_losses(federation, theta) -> (K,)   each participant's loss (compiled if possible)
    engine_code                the model's code in the compiled engine, or None: a model without
                               a compiled kernel still runs, its participants in Python

`MODELS` maps the names `simulate(model=...)` accepts to the classes; `build_model` makes the
instance for a data set.  A new model is one class here (plus, for speed, one branch in the
compiled engine's `add_loss_grad`); nothing else branches on a model's name.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .. import engine
from ..validation import as_float_array, as_int

BYTES_PER_VALUE = 8  # parameters travel as float64


@runtime_checkable
class Model(Protocol):
    name: str
    loss_name: str
    num_features: int
    num_params: int
    engine_code: int | None

    def init(self, rng: np.random.Generator) -> np.ndarray: ...
    def pack(self, params) -> np.ndarray: ...
    def unpack(self, theta: np.ndarray): ...
    def loss_grad(self, X: np.ndarray, y: np.ndarray, theta: np.ndarray): ...
    def participant_losses(self, federation, theta: np.ndarray) -> np.ndarray: ...


class LinearModel:
    """y_hat = X w + b.  theta = [w (d), b], P = d + 1; starts at zero.  Loss: mean r²/2."""

    name = "linear"
    loss_name = "mean squared error / 2"
    engine_code = engine.LINEAR

    def __init__(self, num_features, hidden=None):
        self.num_features = as_int(num_features, "num_features", minimum=1)
        self.hidden = 0
        self.num_params = self.num_features + 1

    def init(self, rng=None):
        return np.zeros(self.num_params)

    def pack(self, params):
        w, b = _pieces(params, 2, "(w, b)")
        return _concatenate([w, b], [(self.num_features,), ()], ["w", "b"])

    def unpack(self, theta):
        theta = _as_theta(theta, self.num_params)
        d = self.num_features
        return theta[:d].copy(), float(theta[d])

    def loss_grad(self, X, y, theta):
        loss, grad_w, grad_b = _checked_models().linear_loss_grad(X, y, *self.unpack(theta))
        return loss, np.append(grad_w, grad_b)

    def participant_losses(self, federation, theta):
        return _compiled_losses(self, federation, theta)

    def __repr__(self):
        return f"LinearModel(num_features={self.num_features})"


class MLPModel:
    """y_hat = relu(X W1 + b1) W2 + b2 (Keras: Dense(h, relu) -> Dense(1)).

    theta = [W1 row by row (d h), b1 (h), W2 (h), b2], P = d h + 2 h + 1.  It cannot start at
    zero (every hidden unit would get the same gradient): W1 ~ N(0, 2/d) and W2 ~ N(0, 1/h)
    (He initialisation) from the run's seed; biases 0.
    """

    name = "mlp"
    loss_name = "mean squared error / 2"
    engine_code = engine.MLP

    def __init__(self, num_features, hidden=10):
        self.num_features = as_int(num_features, "num_features", minimum=1)
        self.hidden = as_int(hidden, "hidden", minimum=1)
        d, h = self.num_features, self.hidden
        self.num_params = d * h + 2 * h + 1
        _check_size(self.num_params, "hidden")

    def init(self, rng):
        if not isinstance(rng, np.random.Generator):
            raise TypeError("the MLP's init needs rng, a numpy.random.Generator")
        d, h = self.num_features, self.hidden
        W1 = rng.normal(0.0, np.sqrt(2.0 / d), size=(d, h))
        W2 = rng.normal(0.0, np.sqrt(1.0 / h), size=h)
        return self.pack((W1, np.zeros(h), W2, 0.0))

    def pack(self, params):
        d, h = self.num_features, self.hidden
        return _concatenate(_pieces(params, 4, "(W1, b1, W2, b2)"),
                            [(d, h), (h,), (h,), ()], ["W1", "b1", "W2", "b2"])

    def unpack(self, theta):
        theta = _as_theta(theta, self.num_params)
        d, h = self.num_features, self.hidden
        return (theta[: d * h].reshape(d, h).copy(), theta[d * h: d * h + h].copy(),
                theta[d * h + h: d * h + 2 * h].copy(), float(theta[-1]))

    def loss_grad(self, X, y, theta):
        loss, grads = _checked_models().mlp_loss_grad(X, y, *self.unpack(theta))
        return loss, np.concatenate([np.ravel(g) for g in grads])

    def participant_losses(self, federation, theta):
        return _compiled_losses(self, federation, theta)

    def __repr__(self):
        return f"MLPModel(num_features={self.num_features}, hidden={self.hidden})"


MODELS = {"linear": LinearModel, "mlp": MLPModel}


def build_model(model, num_features, hidden=10):
    """The model object for `simulate(model=...)`: a name in MODELS, or a Model instance."""
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model must be one of {tuple(MODELS)} or a fedlite Model object; "
                             f"got {model!r}")
        return MODELS[model](num_features, hidden)
    if not isinstance(model, Model):
        raise TypeError(f"model must be one of {tuple(MODELS)} or a fedlite Model object (see "
                        f"fedlite.core.model.Model); got {type(model).__name__}")
    if model.num_features != num_features:
        raise ValueError(f"model expects {model.num_features} features but the federation's X "
                         f"has {num_features} columns")
    return model


def model_for_params(params):
    """The model (linear or MLP) whose tuple form `params` is: (w, b) or (W1, b1, W2, b2)."""
    if not isinstance(params, (tuple, list)) or len(params) not in (2, 4):
        raise TypeError("params must be (w, b) for the linear model or (W1, b1, W2, b2) for the "
                        f"MLP; got {type(params).__name__}"
                        + (f" of length {len(params)}" if isinstance(params, (tuple, list)) else ""))
    if len(params) == 2:
        return LinearModel(np.size(params[0]))
    W1 = as_float_array(params[0], "W1", 2)
    return MLPModel(W1.shape[0], W1.shape[1])


# ----------------------------------------------------------------------------- helpers
MAX_PARAMS = 2**27  # 1 GiB of float64 per copy of theta: a run holds several copies per participant


def _check_size(num_params, name):
    """Refuse a model too large to simulate here, before anything is allocated."""
    if num_params > MAX_PARAMS:
        raise ValueError(f"{name} is too large: the model would have {num_params:,} parameters "
                         f"({num_params * BYTES_PER_VALUE / 2**30:.3g} GiB per copy); at most "
                         f"{MAX_PARAMS:,} fit in a simulation on this machine")


def _checked_models():
    from .. import models  # the checked public loss functions (imported late: models imports us)
    return models


def _compiled_losses(model, federation, theta):
    return engine.participant_losses(model.engine_code, federation.X, federation.y,
                                     federation.offsets, _as_theta(theta, model.num_params),
                                     model.num_features, max(model.hidden, 1))


def _pieces(params, count, form):
    if not isinstance(params, (tuple, list)) or len(params) != count:
        got = (f"a {type(params).__name__} of length {len(params)}"
               if isinstance(params, (tuple, list)) else type(params).__name__)
        raise TypeError(f"params must be a tuple {form}; got {got}")
    return params


def _concatenate(pieces, shapes, names):
    flat = []
    for piece, shape, name in zip(pieces, shapes, names):
        if shape == ():
            array = np.asarray(piece)
            if array.dtype.kind not in "iuf" or array.size != 1:
                raise TypeError(f"{name} must be a real number; got {piece!r}")
            flat.append(np.array([float(array.reshape(()))]))
        else:
            flat.append(np.ravel(as_float_array(piece, name, len(shape), shape)))
    theta = np.concatenate(flat)
    if not np.isfinite(theta).all():
        raise ValueError(f"{', '.join(names)} must contain only finite numbers")
    return theta


def _as_theta(theta, P):
    theta = as_float_array(theta, "theta", 1, (P,), check_finite=False)
    return theta
