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

Optional, where it makes sense: predict(X, theta) (every model here); for the classifiers
(`Classifier`: labels 0..C-1, loss the mean cross-entropy) also logits, probabilities,
accuracy(X, y, theta), check_labels(y), and the class method from_data(num_features, hidden, y)
that counts the classes in the labels.

`MODELS` maps the names `simulate(model=...)` accepts to the classes; `build_model` makes the
instance for a data set.  A new model is one class here (plus, for speed, one branch in the
compiled engine's `add_loss_grad`); nothing else branches on a model's name.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .. import engine, reference
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

    def predict(self, X, theta):
        """y_hat = X w + b, shape (n,)."""
        return reference.linear_predict(_as_X(X, self.num_features), *self.unpack(theta))

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

    def predict(self, X, theta):
        """y_hat = relu(X W1 + b1) W2 + b2, shape (n,)."""
        return reference.mlp_predict(_as_X(X, self.num_features), *self.unpack(theta))

    def __repr__(self):
        return f"MLPModel(num_features={self.num_features}, hidden={self.hidden})"


class Classifier:
    """What the classification models share: labels 0..C-1 (C = num_classes), the mean
    cross-entropy loss, predictions by the largest logit.  A subclass gives `logits(X, theta)`."""

    loss_name = "cross-entropy"

    @classmethod
    def from_data(cls, num_features, hidden, y):
        """The model for data whose labels are y: num_classes = the largest label + 1."""
        if y is None:
            raise ValueError(f"model {cls.name!r} counts its classes in the labels y, and none "
                             f"were given; make the model yourself, e.g. {cls.__name__}(...)")
        labels = _checked_models().as_labels(y)
        num_classes = int(labels.max()) + 1
        if num_classes < 2:
            raise ValueError(f"y holds only the label 0: a classifier ({cls.name!r}) needs at "
                             "least 2 classes")
        return cls._for_classes(num_features, hidden, num_classes)

    def check_labels(self, y, n=None, name="y"):
        """y as float64 class labels 0..num_classes-1 (the kernels' form), checked; errors
        name `name`."""
        return _checked_models().as_labels(y, self.num_classes, n=n, name=name,
                                           why=f"the model has {self.num_classes} classes")

    def probabilities(self, X, theta):
        """p = softmax(logits), shape (n, num_classes): each row sums to 1."""
        return np.exp(reference.log_softmax(self.logits(X, theta)))

    def predict(self, X, theta):
        """The most likely class of each row (argmax of the logits), shape (n,) of int64."""
        return np.argmax(self.logits(X, theta), axis=1).astype(np.int64)

    def accuracy(self, X, y, theta):
        """The fraction of rows of X whose predicted class is their label y."""
        X = _as_X(X, self.num_features)
        return reference.accuracy(self.predict(X, theta), self.check_labels(y, n=X.shape[0]))

    def participant_losses(self, federation, theta):
        """Each participant's mean cross-entropy at theta, shape (K,)."""
        self.check_labels(federation.y, name="the federation's y")
        return _compiled_losses(self, federation, theta)


class SoftmaxModel(Classifier):
    """Multinomial logistic regression p = softmax(X W + b) (Keras: Dense(C) -> softmax).

    theta = [W row by row (d C), b (C)], P = d C + C; starts at zero (uniform probabilities:
    the loss is convex, so no symmetry needs breaking).  Loss: mean cross-entropy.
    """

    name = "softmax"
    engine_code = engine.SOFTMAX

    def __init__(self, num_features, num_classes):
        self.num_features = as_int(num_features, "num_features", minimum=1)
        self.num_classes = as_int(num_classes, "num_classes", minimum=2)
        self.hidden = 0
        self.num_params = (self.num_features + 1) * self.num_classes
        _check_size(self.num_params, "num_classes")

    @classmethod
    def _for_classes(cls, num_features, hidden, num_classes):
        return cls(num_features, num_classes)

    def init(self, rng=None):
        return np.zeros(self.num_params)

    def pack(self, params):
        d, C = self.num_features, self.num_classes
        return _concatenate(_pieces(params, 2, "(W, b)"), [(d, C), (C,)], ["W", "b"])

    def unpack(self, theta):
        theta = _as_theta(theta, self.num_params)
        d, C = self.num_features, self.num_classes
        return theta[: d * C].reshape(d, C).copy(), theta[d * C:].copy()

    def loss_grad(self, X, y, theta):
        loss, grads = _checked_models().softmax_loss_grad(X, y, *self.unpack(theta))
        return loss, np.concatenate([np.ravel(g) for g in grads])

    def logits(self, X, theta):
        """Z = X W + b, shape (n, num_classes)."""
        W, b = self.unpack(theta)
        return _as_X(X, self.num_features) @ W + b

    def __repr__(self):
        return f"SoftmaxModel(num_features={self.num_features}, num_classes={self.num_classes})"


class MLPClassifierModel(Classifier):
    """p = softmax(relu(X W1 + b1) W2 + b2) (Keras: Dense(h, relu) -> Dense(C) -> softmax).

    theta = [W1 row by row (d h), b1 (h), W2 row by row (h C), b2 (C)], P = d h + h + h C + C.
    He initialisation as for MLPModel: W1 ~ N(0, 2/d), W2 ~ N(0, 1/h) from the run's seed;
    biases 0.  Loss: mean cross-entropy.
    """

    name = "mlp_classifier"
    engine_code = engine.MLP_CLASSIFIER

    def __init__(self, num_features, hidden, num_classes):
        self.num_features = as_int(num_features, "num_features", minimum=1)
        self.hidden = as_int(hidden, "hidden", minimum=1)
        self.num_classes = as_int(num_classes, "num_classes", minimum=2)
        d, h, C = self.num_features, self.hidden, self.num_classes
        self.num_params = d * h + h + h * C + C
        _check_size(self.num_params, "hidden or num_classes")

    @classmethod
    def _for_classes(cls, num_features, hidden, num_classes):
        return cls(num_features, hidden, num_classes)

    def init(self, rng):
        if not isinstance(rng, np.random.Generator):
            raise TypeError("the MLP classifier's init needs rng, a numpy.random.Generator")
        d, h, C = self.num_features, self.hidden, self.num_classes
        W1 = rng.normal(0.0, np.sqrt(2.0 / d), size=(d, h))
        W2 = rng.normal(0.0, np.sqrt(1.0 / h), size=(h, C))
        return self.pack((W1, np.zeros(h), W2, np.zeros(C)))

    def pack(self, params):
        d, h, C = self.num_features, self.hidden, self.num_classes
        return _concatenate(_pieces(params, 4, "(W1, b1, W2, b2)"),
                            [(d, h), (h,), (h, C), (C,)], ["W1", "b1", "W2", "b2"])

    def unpack(self, theta):
        theta = _as_theta(theta, self.num_params)
        d, h, C = self.num_features, self.hidden, self.num_classes
        o = d * h + h
        return (theta[: d * h].reshape(d, h).copy(), theta[d * h: o].copy(),
                theta[o: o + h * C].reshape(h, C).copy(), theta[o + h * C:].copy())

    def loss_grad(self, X, y, theta):
        loss, grads = _checked_models().mlp_classifier_loss_grad(X, y, *self.unpack(theta))
        return loss, np.concatenate([np.ravel(g) for g in grads])

    def logits(self, X, theta):
        """Z = relu(X W1 + b1) W2 + b2, shape (n, num_classes)."""
        return reference.mlp_classifier_logits(_as_X(X, self.num_features), *self.unpack(theta))

    def __repr__(self):
        return (f"MLPClassifierModel(num_features={self.num_features}, hidden={self.hidden}, "
                f"num_classes={self.num_classes})")


MODELS = {"linear": LinearModel, "mlp": MLPModel, "softmax": SoftmaxModel,
          "mlp_classifier": MLPClassifierModel}


def build_model(model, num_features, hidden=10, y=None):
    """The model object for `simulate(model=...)`: a name in MODELS, or a Model instance.

    y: the federation's labels.  A classifier named by a string counts its classes in y
    (the largest label + 1); a classifier given as an object checks y against its classes.
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model must be one of {tuple(MODELS)} or a fedlite Model object; "
                             f"got {model!r}")
        cls = MODELS[model]
        from_data = getattr(cls, "from_data", None)
        if from_data is None:
            return cls(num_features, hidden)
        return from_data(num_features, hidden, y)
    if not isinstance(model, Model):
        raise TypeError(f"model must be one of {tuple(MODELS)} or a fedlite Model object (see "
                        f"fedlite.core.model.Model); got {type(model).__name__}")
    if model.num_features != num_features:
        raise ValueError(f"model expects {model.num_features} features but the federation's X "
                         f"has {num_features} columns")
    if y is not None and hasattr(model, "check_labels"):
        model.check_labels(y)
    return model


def model_for_params(params, name="params"):
    """The model whose tuple form `params` is: (w, b) linear, (W, b) softmax with W 2-D,
    (W1, b1, W2, b2) MLP, or MLP classifier with W2 2-D.  name: the argument, for the messages."""
    if not isinstance(params, (tuple, list)) or len(params) not in (2, 4):
        raise TypeError(f"{name} must be (w, b) for the linear model or (W1, b1, W2, b2) for the "
                        f"MLP; got {type(params).__name__}"
                        + (f" of length {len(params)}" if isinstance(params, (tuple, list)) else ""))
    if len(params) == 2:
        if np.ndim(params[0]) == 2:
            W = as_float_array(params[0], f"{name}[0] (W)", 2)
            return SoftmaxModel(*W.shape)
        return LinearModel(np.size(params[0]))
    W1 = as_float_array(params[0], f"{name}[0] (W1)", 2)
    if np.ndim(params[2]) == 2:
        return MLPClassifierModel(*W1.shape, np.shape(params[2])[1])
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
    if model.engine_code is None:  # no compiled kernel: the readable path, one by one
        return np.array([model.loss_grad(*federation.participant(k), theta)[0]
                         for k in range(federation.num_participants)])
    return engine.participant_losses(model.engine_code, federation.X, federation.y,
                                     federation.offsets, _as_theta(theta, model.num_params),
                                     model.num_features, max(model.hidden, 1))


def _as_X(X, num_features):
    return as_float_array(X, "X", 2, ("n", num_features))


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
