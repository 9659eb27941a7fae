"""Checks at the public boundary: numba does not bounds-check, so nothing unchecked reaches a kernel.

Each function converts its argument to C-contiguous float64 once (so a student's ints or float32
neither crash a kernel nor trigger a recompile) and raises `TypeError`/`ValueError` whose message
names the argument and says what was expected.
"""
from __future__ import annotations

import numbers

import numpy as np


def as_float_array(value, name, ndim, shape=None, check_finite=True):
    """`value` as a C-contiguous float64 array with `ndim` dims, finite, non-empty.

    `shape` names or fixes each size, e.g. ("n", 3): an int must match, a string only names it.
    check_finite=False skips the scan for NaN/inf (a full extra pass over a large X); the
    caller must then scan with `check_finite` when a result comes out non-finite.
    """
    expected = _shape_text(name, ndim, shape)  # (text for the messages; cheap enough)
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array of shape {expected}; {exc}") from None
    if array.dtype.kind not in "iuf":  # signed/unsigned int or float; not bool or complex
        raise TypeError(f"{name} must hold real numbers (int or float), of shape {expected}; "
                        f"got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D with shape {expected}; got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty; expected shape {expected}, got {array.shape}")
    if shape is not None:
        for size, want in zip(array.shape, shape):
            if isinstance(want, int) and size != want:
                raise ValueError(f"{name} must have shape {expected}; got {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if check_finite:
        check_finite_values(array, name)
    return array


def as_array_of(value, name, kinds, what):
    """np.asarray(value) if its dtype kind is one of `kinds` (e.g. "iu"), else TypeError naming
    `name` and saying it must hold `what` (e.g. "integers").  No copy, no conversion."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists, objects whose __array__ raises
        raise TypeError(f"{name} must be an array of {what}; {exc}") from None
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name} must hold {what}; got dtype {array.dtype}")
    return array


def as_int_array(value, name, ndim=1, minimum=None, maximum=None, dtype=np.int64,
                 range_text=None):
    """`value` as a C-contiguous integer array of `dtype` with `ndim` dims, entries in
    [minimum, maximum] (bounds optional, inclusive, compared exactly before any conversion).

    Bools, floats (even whole ones), complex, strings and objects are refused, so nothing is
    truncated or wrapped silently.  range_text says the range in the message (default
    "minimum..maximum").
    """
    array = as_array_of(value, name, "iu", "integers")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {array.shape}")
    if array.size and (minimum is not None or maximum is not None):
        low, high = int(array.min()), int(array.max())
        if (minimum is not None and low < minimum) or (maximum is not None and high > maximum):
            if range_text is None:
                range_text = (f"{'' if minimum is None else minimum}.."
                              f"{'' if maximum is None else maximum}")
            raise ValueError(f"{name} must be in {range_text}; got values from {low} to {high}")
    return np.ascontiguousarray(array, dtype=dtype)


def check_finite_values(array, name):
    """Raise ValueError if the float array holds a NaN or an inf."""
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must contain only finite numbers (no NaN or inf)")


def as_float(value, name):
    """`value` as a finite Python float (a 0-d or size-1 array is accepted)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (a scalar); got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite; got an integer too large for a float") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return value


def as_int(value, name, minimum=None, maximum=None):
    """`value` as a Python int within [minimum, maximum] (bounds optional, inclusive)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}; got {value}")
    return value


def as_data(X, y, check_finite=True):
    """Check a data set: X (n, d) and y (n,), returned as float64 (see as_float_array)."""
    X = as_float_array(X, "X", 2, ("n", "d"), check_finite)
    y = as_float_array(y, "y", 1, (X.shape[0],), check_finite)
    return X, y


MAX_ARRAY_BYTES = 2 * 2**30  # 2 GiB: the largest array fedlite agrees to make


def check_allocation(num_values, name, itemsize=8, what="values"):
    """Refuse, before allocating, `num_values` items of `itemsize` bytes over MAX_ARRAY_BYTES.

    num_values: the exact count as a Python int (e.g. n * d), so a huge request cannot wrap
    around; itemsize: bytes per item (8 for float64).  `name` is the argument (or arguments)
    to blame, e.g. "num_samples or num_features".  The limit is the same on every machine, so
    a call that works on one works on all; 2 GiB is far more than any run of the course needs.
    """
    num_values = as_int(num_values, "num_values", minimum=0)
    num_bytes = num_values * as_int(itemsize, "itemsize", minimum=1)
    if num_bytes > MAX_ARRAY_BYTES:
        raise ValueError(f"{name} too large: {_count_text(num_values)} {what} would take "
                         f"{_gib_text(num_bytes)}, more than the {MAX_ARRAY_BYTES / 2**30:g} GiB "
                         f"fedlite allows for one array; make {name} smaller")


def _count_text(count):
    return f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"


def _gib_text(num_bytes):
    return f"{num_bytes / 2**30:.3g} GiB" if num_bytes < 2**60 else "far more than any memory"


def _shape_text(name, ndim, shape):
    if shape is None:
        return f"({', '.join('?' * ndim)})" if ndim else "()"
    sizes = [str(s) for s in shape]
    return "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"


class UpdateOverflowError(ValueError):
    """An update too large to aggregate (e.g. beyond secure aggregation's fixed-point modulus).

    Raised by an aggregator; `simulate` catches it and reports the round as diverged
    (`History.diverged_at`), because in a run that was fine a round before, it means the
    updates blew up.  Called directly (e.g. `secure_aggregation.encode`), it is a ValueError
    whose message says which limit was exceeded.
    """
