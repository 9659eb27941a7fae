"""The public, checked loss-and-gradient functions of the models of the course.

The two regression models use the mean squared loss with the factor 1/2 of the article:
L = 1/(2n) Σ_i (y_hat_i - y_i)²; the two classifiers (softmax regression and the MLP
classifier, at the end) the mean cross-entropy L = -(1/n) Σ_i log p_i[y_i], with labels
0..C-1 that arrive as ints or whole-valued floats and reach the kernels as float64.
Inputs are validated and converted to float64 here, then a compiled kernel from
`fedlite.kernels` does the work in one pass over the rows (on several threads when there are
enough rows for that to pay).  Results do not depend on the thread
count: see `fedlite.kernels`.

NaN and inf in X or y are looked for only when the result comes out non-finite: any such
value reaches the loss or a gradient (the kernels keep IEEE semantics: inf·0 = NaN, and relu
keeps a NaN), so this finds every bad input without a second pass over X on the normal path.
A non-finite result from finite inputs means the arithmetic overflowed float64 (e.g. X near
1e154, whose squares exceed 1.8e308): that raises a ValueError too, never a silent inf.

The kernels get read-only views of the arrays, whoever owns them (a Federation's arrays are
read-only), so numba compiles each kernel for one array type instead of one per mix.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from . import kernels
from .validation import as_array_of, as_data, as_float, as_float_array, check_finite_values

PARALLEL_MIN_ROWS = 2 * kernels.CHUNK_ROWS  # below this one thread is faster (prange costs ~10 µs)
JIT_DISABLED = not hasattr(kernels.linear_loss_grad_serial, "py_func")


def _quiet():
    """Silence numpy's overflow warnings when the kernels run as Python (NUMBA_DISABLE_JIT=1);
    compiled kernels never warn, and a no-op context costs nothing on the fast path."""
    return np.errstate(all="ignore") if JIT_DISABLED else contextlib.nullcontext()


def linear_loss_grad(X, y, w, b):
    """Loss and gradient of y_hat = X w + b.

    X (n, d), y (n,), w (d,), b scalar.  Returns (loss, grad_w (d,), grad_b float) with
    loss = 1/(2n) Σ_i (w·x_i + b - y_i)², grad_w = Xᵀ r / n, grad_b = Σ r / n, r = X w + b - y.
    Raises ValueError naming X or y if they hold NaN/inf, and ValueError if finite inputs make
    the loss or a gradient overflow float64 (rescale X and y, or use smaller w and b).
    """
    X, y = as_data(X, y, check_finite=False)
    w = as_float_array(w, "w", 1, (X.shape[1],))
    b = as_float(b, "b")
    kernel = (kernels.linear_loss_grad_parallel if X.shape[0] >= PARALLEL_MIN_ROWS
              else kernels.linear_loss_grad_serial)
    with _quiet():
        loss, grad_w, grad_b = kernel(*_read_only(X, y, w), b)
    _refuse_non_finite_data(X, y, loss, grad_w, grad_b)
    return float(loss), grad_w, float(grad_b)


def mlp_loss_grad(X, y, W1, b1, W2, b2):
    """Loss and gradients of y_hat = relu(X W1 + b1) W2 + b2 (Keras: Dense(h, relu) -> Dense(1)).

    X (n, d), y (n,), W1 (d, h), b1 (h,), W2 (h,), b2 scalar; any hidden width h.
    Returns (loss, (grad_W1 (d, h), grad_b1 (h,), grad_W2 (h,), grad_b2 float)), loss as above.
    The derivative of relu at exactly 0 is taken as 0 (as numpy's `Z > 0` mask does).
    Raises ValueError naming X or y if they hold NaN/inf, and ValueError if finite inputs make
    the loss or a gradient overflow float64 (rescale X and y, or use smaller parameters).
    """
    X, y = as_data(X, y, check_finite=False)
    W1 = as_float_array(W1, "W1", 2, (X.shape[1], "h"))
    h = W1.shape[1]
    b1 = as_float_array(b1, "b1", 1, (h,))
    W2 = as_float_array(W2, "W2", 1, (h,))
    b2 = as_float(b2, "b2")
    kernel = (kernels.mlp_loss_grad_parallel if X.shape[0] >= PARALLEL_MIN_ROWS
              else kernels.mlp_loss_grad_serial)
    with _quiet():
        loss, grad_W1, grad_b1, grad_W2, grad_b2 = kernel(*_read_only(X, y, W1, b1, W2), b2)
    _refuse_non_finite_data(X, y, loss, grad_W1, grad_b1, grad_W2, grad_b2)
    return float(loss), (grad_W1, grad_b1, grad_W2, float(grad_b2))


def _read_only(*arrays):
    """Read-only views of the arrays (no copy; the caller's own arrays keep their flags)."""
    views = [array.view() for array in arrays]
    for view in views:
        view.flags.writeable = False
    return views


def _refuse_non_finite_data(X, y, *results):
    """If any result is NaN/inf, raise ValueError: naming X or y if they hold a NaN/inf, else
    saying that finite inputs overflowed (the parameters were checked finite on the way in)."""
    if all(np.isfinite(r).all() if isinstance(r, np.ndarray) else math.isfinite(r)
           for r in results):
        return
    check_finite_values(X, "X")
    check_finite_values(y, "y")
    raise ValueError("the loss or its gradient overflowed float64 although X, y and the "
                     "parameters are finite (values near 1e154 or more, squared, exceed "
                     "1.8e308): rescale X and y (e.g. standardise them), or use smaller "
                     "parameters")


# ----------------------------------------------------------------------------- classification
def softmax_loss_grad(X, y, W, b):
    """Loss and gradients of multinomial logistic regression p = softmax(X W + b).

    X (n, d), y (n,) integer class labels 0..C-1 (ints, or floats with whole values), W (d, C),
    b (C,).  Returns (loss, (grad_W (d, C), grad_b (C,))) of the mean cross-entropy
    L = -(1/n) Σ_i log p_i[y_i]:  with G = (P - onehot(y)) / n (P the probabilities, (n, C)),
    grad_W = Xᵀ G and grad_b = Σ_i G_i.
    Stable at any logit (log-sum-exp).  Raises TypeError/ValueError naming y for labels that are
    not whole numbers in 0..C-1, naming X if it holds NaN/inf, and ValueError if finite inputs
    make the logits overflow float64.
    """
    X = as_float_array(X, "X", 2, ("n", "d"), check_finite=False)
    W = as_float_array(W, "W", 2, (X.shape[1], "C"))
    b = as_float_array(b, "b", 1, (W.shape[1],))
    y = as_labels(y, W.shape[1], n=X.shape[0], why=f"W has {W.shape[1]} columns, one per class")
    kernel = (kernels.softmax_loss_grad_parallel if X.shape[0] >= PARALLEL_MIN_ROWS
              else kernels.softmax_loss_grad_serial)
    with _quiet():
        loss, grad_W, grad_b = kernel(*_read_only(X, y, W, b))
    _refuse_non_finite_logits(X, loss, grad_W, grad_b)
    return float(loss), (grad_W, grad_b)


def mlp_classifier_loss_grad(X, y, W1, b1, W2, b2):
    """Loss and gradients of p = softmax(relu(X W1 + b1) W2 + b2)
    (Keras: Dense(h, relu) -> Dense(C) -> softmax).

    X (n, d), y (n,) integer class labels 0..C-1, W1 (d, h), b1 (h,), W2 (h, C), b2 (C,).
    Returns (loss, (grad_W1, grad_b1, grad_W2, grad_b2)) of the mean cross-entropy, as
    `softmax_loss_grad`; relu'(0) is taken as 0.  Errors as for `softmax_loss_grad`.
    """
    X = as_float_array(X, "X", 2, ("n", "d"), check_finite=False)
    W1 = as_float_array(W1, "W1", 2, (X.shape[1], "h"))
    h = W1.shape[1]
    b1 = as_float_array(b1, "b1", 1, (h,))
    W2 = as_float_array(W2, "W2", 2, (h, "C"))
    b2 = as_float_array(b2, "b2", 1, (W2.shape[1],))
    y = as_labels(y, W2.shape[1], n=X.shape[0],
                  why=f"W2 has {W2.shape[1]} columns, one per class")
    kernel = (kernels.mlp_classifier_loss_grad_parallel if X.shape[0] >= PARALLEL_MIN_ROWS
              else kernels.mlp_classifier_loss_grad_serial)
    with _quiet():
        loss, *grads = kernel(*_read_only(X, y, W1, b1, W2, b2))
    _refuse_non_finite_logits(X, loss, *grads)
    return float(loss), tuple(grads)


def as_labels(y, num_classes=None, n=None, name="y", why=None):
    """Class labels `y` checked and converted for the kernels: float64 holding 0..num_classes-1.

    Accepted: integer arrays, or float arrays whose values are whole numbers (a Federation's y is
    float64).  Refused, naming `name`: bool, complex, strings, NaN/inf, fractions, negative
    labels, labels >= num_classes (`why` says where num_classes comes from; None: no upper
    bound), a length other than n.
    """
    classes = "0, 1, 2, ..." if num_classes is None else f"0..{num_classes - 1}"
    array = as_array_of(y, name, "iuf", f"integer class labels {classes} (ints, or floats "
                                        "with whole values)")
    if array.ndim != 1 or array.size == 0 or (n is not None and array.shape[0] != n):
        raise ValueError(f"{name} must be a non-empty 1-D array of {'n' if n is None else n} "
                         f"class labels (one per row of X); got shape {array.shape}")
    if array.dtype.kind == "f":
        check_finite_values(array, name)
        bad = np.flatnonzero(array != np.floor(array))
        if bad.size:
            raise ValueError(f"{name} must hold whole-number class labels {classes}; got "
                             f"{name}[{bad[0]}] = {array[bad[0]].item()!r}")
    bad = np.flatnonzero((array < 0) if num_classes is None
                         else (array < 0) | (array >= num_classes))
    if bad.size:
        raise ValueError(f"{name} must hold class labels {classes}"
                         + (f" ({why})" if why else "")
                         + f"; got {name}[{bad[0]}] = {array[bad[0]].item()!r}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _refuse_non_finite_logits(X, *results):
    """As `_refuse_non_finite_data`, for the classifiers (their labels are checked already)."""
    if all(np.isfinite(r).all() for r in results):
        return
    check_finite_values(X, "X")
    raise ValueError("the loss or its gradient overflowed float64 although X and the parameters "
                     "are finite (a logit beyond 1.8e308): rescale X (e.g. standardise it), or "
                     "use smaller parameters")
