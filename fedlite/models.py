"""The public, checked loss-and-gradient functions of the two models of the course.

Both use the mean squared loss with the factor 1/2 of the article:
L = 1/(2n) Σ_i (y_hat_i - y_i)².  Inputs are validated and converted to float64 here, then a
compiled kernel from `fedlite.kernels` does the work in one pass over the rows (on several
threads when there are enough rows for that to pay).  Results do not depend on the thread
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
from .validation import as_data, as_float, as_float_array, check_finite_values

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
