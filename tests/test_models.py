"""Tests of fedlite.models: every bad argument is refused with a message naming it and the
expected shape; ints and float32 are accepted; the wrappers pick the parallel kernel for big n."""
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fedlite
from conftest import slow_without_jit
from fedlite import kernels, models, reference

N, D, H = 5, 3, 4


def good_linear():
    rng = np.random.default_rng(0)
    return {"X": rng.normal(size=(N, D)), "y": rng.normal(size=N), "w": rng.normal(size=D), "b": 0.5}


def good_mlp():
    rng = np.random.default_rng(1)
    return {"X": rng.normal(size=(N, D)), "y": rng.normal(size=N),
            "W1": rng.normal(size=(D, H)), "b1": rng.normal(size=H), "W2": rng.normal(size=H),
            "b2": -0.5}


MODELS = {"linear": (fedlite.linear_loss_grad, good_linear),
          "mlp": (fedlite.mlp_loss_grad, good_mlp)}

# The shape each array argument must have, as the error message spells it.
EXPECTED_SHAPE = {"X": "(n, d)", "y": f"({N},)", "w": f"({D},)",
                  "W1": f"({D}, h)", "b1": f"({H},)", "W2": f"({H},)"}
ARRAYS = [(model, name) for model, (_, good) in MODELS.items() for name in good()
          if name in EXPECTED_SHAPE]
SCALARS = [("linear", "b"), ("mlp", "b2")]


def good_value(model, name):
    return MODELS[model][1]()[name]


def flatten(result):
    """(loss, grad, ..., grad) from either model's result."""
    return result if len(result) == 3 else (result[0], *result[1])


def call(model, **changes):
    function, good = MODELS[model]
    return function(**{**good(), **changes})


def starts_with(name, *rest):
    """A `match=` pattern: the message starts with the argument's name and contains `rest`."""
    return "^" + re.escape(name) + " must" + "".join(".*" + re.escape(part) for part in rest)


# ----------------------------------------------------------------------------- bad arrays
@pytest.mark.parametrize("model, name", ARRAYS)
def test_wrong_number_of_dimensions(model, name):
    value = good_value(model, name)
    for wrong in (value[..., None], np.float64(1.0) if value.ndim == 1 else value[0]):
        with pytest.raises(ValueError, match=starts_with(name, "-D", EXPECTED_SHAPE[name])):
            call(model, **{name: wrong})


WRONG_SHAPES = [
    ("linear", "y", np.zeros(N + 1)),
    ("linear", "y", np.zeros(N - 1)),
    ("linear", "w", np.zeros(D + 1)),
    ("linear", "w", np.zeros(D - 1)),
    ("mlp", "y", np.zeros(N + 1)),
    ("mlp", "W1", np.zeros((D + 1, H))),
    ("mlp", "W1", np.zeros((D - 1, H))),
    ("mlp", "b1", np.zeros(H + 1)),
    ("mlp", "b1", np.zeros(H - 1)),
    ("mlp", "W2", np.zeros(H + 1)),
    ("mlp", "W2", np.zeros(H - 1)),
]


@pytest.mark.parametrize("model, name, wrong", WRONG_SHAPES)
def test_wrong_shape_names_argument_and_expected_shape(model, name, wrong):
    with pytest.raises(ValueError, match=starts_with(name, "shape " + EXPECTED_SHAPE[name],
                                                     str(wrong.shape))):
        call(model, **{name: wrong})


def test_b1_and_W2_are_checked_against_the_width_of_W1():
    """A wider W1 (h = 6) makes the good b1 and W2 (length 4) wrong, and the message says 6."""
    with pytest.raises(ValueError, match=starts_with("b1", "shape (6,)")):
        call("mlp", W1=np.zeros((D, 6)))
    with pytest.raises(ValueError, match=starts_with("W2", "shape (6,)")):
        call("mlp", W1=np.zeros((D, 6)), b1=np.zeros(6))


@pytest.mark.parametrize("model, name", ARRAYS)
def test_empty_array(model, name):
    value = good_value(model, name)
    empty = np.zeros((0,) + value.shape[1:]) if name != "W1" else np.zeros((D, 0))
    with pytest.raises(ValueError, match=starts_with(name, "not be empty", EXPECTED_SHAPE[name])):
        call(model, **{name: empty})


@pytest.mark.parametrize("model", MODELS)
def test_empty_data_set_with_no_features(model):
    with pytest.raises(ValueError, match=starts_with("X", "not be empty", "(n, d)")):
        call(model, X=np.zeros((N, 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("model, name", ARRAYS)
def test_nan_or_inf_in_an_array(model, name, bad):
    value = good_value(model, name).copy()
    value.flat[-1] = bad
    with pytest.raises(ValueError, match=starts_with(name, "finite")):
        call(model, **{name: value})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, np.float32(np.nan)])
@pytest.mark.parametrize("model, name", SCALARS)
def test_nan_or_inf_scalar(model, name, bad):
    with pytest.raises(ValueError, match=starts_with(name, "finite")):
        call(model, **{name: bad})


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("model, name", ARRAYS)
def test_longdouble_overflow_to_inf_is_caught(model, name):
    """float128/longdouble values too big for float64 become inf on conversion: still refused."""
    value = good_value(model, name).astype(np.longdouble)
    if np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        pytest.skip("longdouble is float64 on this platform")
    value.flat[0] = np.longdouble(np.finfo(np.float64).max) * 4
    with pytest.raises(ValueError, match=starts_with(name, "finite")):
        call(model, **{name: value})


NON_NUMERIC = {
    "strings": lambda v: v.astype(str),
    "object": lambda v: v.astype(object),
    "complex": lambda v: v.astype(complex),
    "bool": lambda v: v > 0,
    "datetime": lambda v: np.zeros(v.shape, dtype="datetime64[s]"),
    "ragged list": lambda v: [[1.0, 2.0], [3.0]],
}


@pytest.mark.parametrize("kind", NON_NUMERIC)
@pytest.mark.parametrize("model, name", ARRAYS)
def test_non_numeric_array(model, name, kind):
    value = NON_NUMERIC[kind](good_value(model, name))
    with pytest.raises(TypeError, match=starts_with(name, "shape " + EXPECTED_SHAPE[name])):
        call(model, **{name: value})


# ----------------------------------------------------------------------------- bad scalars
BAD_SCALARS = {
    "array of size 2": (TypeError, np.array([1.0, 2.0])),
    "list": (TypeError, [1.0]),
    "string": (TypeError, "1.0"),
    "string array": (TypeError, np.array(["1.0"])),
    "complex": (TypeError, 1.0 + 0j),
    "bool": (TypeError, True),
    "numpy bool": (TypeError, np.bool_(False)),
    "None": (TypeError, None),
}


@pytest.mark.parametrize("kind", BAD_SCALARS)
@pytest.mark.parametrize("model, name", SCALARS)
def test_bad_scalar(model, name, kind):
    error, value = BAD_SCALARS[kind]
    with pytest.raises(error, match=starts_with(name, "real number", "scalar")):
        call(model, **{name: value})


@pytest.mark.parametrize("model, name", SCALARS)
def test_huge_int_scalar(model, name):
    with pytest.raises((ValueError, TypeError), match=starts_with(name)):
        call(model, **{name: 10**400})


# ----------------------------------------------------------------------------- accepted inputs
def same_result(first, second):
    """Identical losses and gradients (the conversion to float64 is exact here)."""
    for a, b in zip(flatten(first), flatten(second), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("convert", [
    pytest.param(lambda v: np.round(v * 4).astype(np.int64), id="int64"),
    pytest.param(lambda v: np.round(v * 4).astype(np.int32), id="int32"),
    pytest.param(lambda v: np.round(v * 4).astype(np.int8), id="int8"),
    pytest.param(lambda v: (v * 4).astype(np.float32), id="float32"),
    pytest.param(lambda v: (v * 4).astype(np.float16), id="float16"),
])
@pytest.mark.parametrize("model", MODELS)
def test_ints_and_small_floats_give_the_same_result_as_float64(model, convert):
    function, good = MODELS[model]
    args = {name: convert(np.asarray(value)) for name, value in good().items()}
    as64 = {name: np.asarray(value).astype(np.float64) for name, value in args.items()}
    scalar = "b" if model == "linear" else "b2"
    as64[scalar] = float(as64[scalar])
    same_result(function(**args), function(**as64))


@pytest.mark.parametrize("model, name", SCALARS)
@pytest.mark.parametrize("value", [2, np.int32(2), np.float32(2.0), np.array(2.0), np.array([2.0]),
                                   np.array([[2]])])
def test_scalar_forms_accepted(model, name, value):
    same_result(call(model, **{name: value}), call(model, **{name: 2.0}))


@pytest.mark.parametrize("model", MODELS)
def test_results_are_python_floats_and_float64_arrays(model):
    loss, *grads = flatten(call(model))
    assert type(loss) is float and type(grads[-1]) is float
    assert all(g.dtype == np.float64 for g in grads[:-1])


@pytest.mark.parametrize("model", MODELS)
def test_inputs_are_not_modified(model):
    _, good = MODELS[model]
    args = good()
    copies = {name: np.copy(value) for name, value in args.items()}
    MODELS[model][0](**args)
    for name in args:
        assert np.array_equal(args[name], copies[name]), name


# ----------------------------------------------------------------------------- kernel choice
def spy_on(monkeypatch, name, calls):
    kernel = getattr(kernels, name)

    def spy(*args):
        calls.append(name)
        return kernel(*args)

    monkeypatch.setattr(kernels, name, spy)


@pytest.mark.parametrize("n, expected", [
    (1, "serial"), (models.PARALLEL_MIN_ROWS - 1, "serial"),
    pytest.param(models.PARALLEL_MIN_ROWS, "parallel", marks=slow_without_jit),
    pytest.param(3 * models.PARALLEL_MIN_ROWS + 5, "parallel", marks=slow_without_jit),
])
def test_public_functions_pick_the_parallel_kernel_for_many_rows(monkeypatch, n, expected):
    calls = []
    for name in ("linear_loss_grad_serial", "linear_loss_grad_parallel",
                 "mlp_loss_grad_serial", "mlp_loss_grad_parallel"):
        spy_on(monkeypatch, name, calls)
    rng = np.random.default_rng(n)
    X, y, w = rng.normal(size=(n, 2)), rng.normal(size=n), rng.normal(size=2)
    W1, b1, W2 = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=3)

    loss, grad_w, grad_b = fedlite.linear_loss_grad(X, y, w, 0.3)
    ref_loss, ref_w, ref_b = reference.linear_loss_grad(X, y, w, 0.3)
    assert_allclose([loss, grad_b], [ref_loss, ref_b], rtol=1e-10, atol=1e-12)
    assert_allclose(grad_w, ref_w, rtol=1e-10, atol=1e-12)

    loss, grads = fedlite.mlp_loss_grad(X, y, W1, b1, W2, -0.2)
    ref_loss, ref_grads = reference.mlp_loss_grad(X, y, W1, b1, W2, -0.2)
    assert_allclose(loss, ref_loss, rtol=1e-10)
    for grad, ref_grad in zip(grads, ref_grads):
        assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)

    assert calls == [f"linear_loss_grad_{expected}", f"mlp_loss_grad_{expected}"]


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("row", [0, 70, 9000])
def test_non_finite_data_is_found_even_when_the_model_hides_it(bad, row):
    """The scan for NaN/inf in X and y runs only when a result is non-finite: check that every
    bad value does reach a result, even with zero weights or ReLUs that are all switched off."""
    rng = np.random.default_rng(0)
    n, d, h = 9001, 3, 4
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    X_bad = X.copy()
    X_bad[row, 1] = bad
    y_bad = y.copy()
    y_bad[row] = bad
    for w in (np.zeros(d), np.ones(d)):
        with pytest.raises(ValueError, match="X must contain only finite"):
            fedlite.linear_loss_grad(X_bad, y, w, 0.0)
        with pytest.raises(ValueError, match="y must contain only finite"):
            fedlite.linear_loss_grad(X, y_bad, w, 0.0)
    W1_all_off = np.full((d, h), 1.0) * (-1.0 if bad == np.inf else 1.0)  # drives z to -inf
    for W1 in (np.zeros((d, h)), W1_all_off, rng.normal(size=(d, h))):
        with pytest.raises(ValueError, match="X must contain only finite"):
            fedlite.mlp_loss_grad(X_bad, y, W1, np.zeros(h), np.ones(h), 0.0)
        with pytest.raises(ValueError, match="y must contain only finite"):
            fedlite.mlp_loss_grad(X, y_bad, W1, np.zeros(h), np.ones(h), 0.0)


# ----------------------------------------------------------------------------- overflow
OVERFLOWS = {
    "X near 1e154": {"X": np.full((N, D), 1e154)},
    "y = 1e200": {"y": np.full(N, 1e200)},
    "huge first weights": {"w": np.full(D, 1e300), "W1": np.full((D, H), 1e300)},
    "huge bias": {"b": 1e300, "b2": 1e300},
}


@pytest.mark.parametrize("kind", OVERFLOWS)
@pytest.mark.parametrize("model", MODELS)
def test_finite_inputs_whose_loss_overflows_raise_a_clear_error(model, kind):
    """The loss functions returned inf, silently, when finite inputs overflowed float64."""
    function, good = MODELS[model]
    changes = {name: value for name, value in OVERFLOWS[kind].items() if name in good()}
    with pytest.raises(ValueError, match="overflowed float64 although X, y and the parameters "
                                         "are finite.*rescale X and y"):
        function(**{**good(), **changes})


@pytest.mark.parametrize("model", MODELS)
def test_read_only_inputs_are_accepted_and_the_callers_arrays_keep_their_flags(model):
    """A Federation's arrays are read-only; the kernels see read-only views of every input."""
    function, good = MODELS[model]
    args = good()
    expected = flatten(function(**args))
    for name, value in args.items():
        if isinstance(value, np.ndarray):
            frozen = value.copy()
            frozen.flags.writeable = False
            args[name] = frozen
    for a, b in zip(flatten(function(**args)), expected, strict=True):
        assert np.array_equal(a, b)
    fresh = good()
    function(**fresh)
    assert all(v.flags.writeable for v in fresh.values() if isinstance(v, np.ndarray))
