"""Tests of the classification kernels (softmax regression and the MLP classifier): against
fedlite.reference and tests/naive.py, against finite differences, serial == parallel bit for bit
whatever the thread count, stable at huge logits, and the public wrappers' checks."""
import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose

import fedlite
import naive
import test_kernels
from conftest import JIT_DISABLED, slow_without_jit
from fedlite import kernels, reference
from fedlite.models import PARALLEL_MIN_ROWS
from test_reference import finite_difference_grads

N_VALUES = [1, 2, 63, 64, 65, 1000, 4097, 10**5]
D_VALUES = [1, 3, 64]
CLASSES = [2, 3, 10]
HIDDEN = [1, 7]
SEEDS = [0, 1]
MAX_WORK = 20_000_000      # n * d * C * h above this is left out (time)
NO_JIT_MAX_WORK = 30_000  # n * d * C * h above this is skipped as plain Python
NAIVE_MAX_WORK = 3_000    # n * d * C * h up to this is also checked against tests/naive.py
KINK = 1e-3               # no hidden pre-activation this close to relu's kink


def cases(hidden=(None,)):
    """pytest.param for every (n, d, C[, h]) of the grid, the big ones marked slow_without_jit."""
    params = []
    for n in N_VALUES:
        for d in D_VALUES:
            for C in CLASSES:
                for h in hidden:
                    work = n * d * C * (h or 1)
                    if work > MAX_WORK:
                        continue
                    marks = [slow_without_jit] if work > NO_JIT_MAX_WORK else []
                    values = (n, d, C) if h is None else (n, d, C, h)
                    params.append(pytest.param(*values, marks=marks))
    return params


def labels(rng, n, C):
    """Integer labels 0..C-1 as float64 (what the kernels take), every class present if n >= C."""
    y = rng.integers(0, C, size=n)
    y[:min(n, C)] = np.arange(min(n, C))
    return rng.permutation(y).astype(np.float64)


def softmax_problem(n, d, C, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, labels(rng, n, C), scale * rng.normal(size=(d, C)) / np.sqrt(d), rng.normal(size=C)


def mlp_problem(n, d, C, h, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W1, b1 = rng.normal(size=(d, h)) / np.sqrt(d), rng.normal(size=h)
    W2, b2 = rng.normal(size=(h, C)) / np.sqrt(h), rng.normal(size=C)
    return X, labels(rng, n, C), W1, b1, W2, b2


def softmax_magnitudes(X, y, W, b):
    """What rounding error scales with, per result: the logits, |X| (|δ| <= 1), 1."""
    Z = np.abs(X) @ np.abs(W) + np.abs(b)
    return [Z.max(), np.abs(X).max(), 1.0]


def mlp_magnitudes(X, y, W1, b1, W2, b2):
    A = np.abs(X) @ np.abs(W1) + np.abs(b1)
    back = np.abs(W2).sum(axis=1).max()  # |δ1| <= Σ_c |W2_jc| |δ2_c| <= Σ_c |W2_jc|
    return [(A @ np.abs(W2)).max() + np.abs(b2).max(), np.abs(X).max() * back, back, A.max(), 1.0]


def flatten(result):
    """(loss, (g1, g2, ...)) or (loss, g1, g2, ...) as a flat list."""
    if len(result) == 2 and isinstance(result[1], tuple):
        return [result[0], *result[1]]
    return list(result)


def check_against(actual, expected, magnitudes):
    for got, want, magnitude in zip(flatten(actual), flatten(expected), magnitudes, strict=True):
        assert np.shape(got) == np.shape(want)
        assert_allclose(got, want, rtol=1e-10, atol=1e-12 * max(1.0, magnitude))


def assert_same_bits(first, second, label=""):
    test_kernels.assert_same_bits(flatten(first), flatten(second), label)


# ----------------------------------------------------------------------------- against the oracles
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, C", cases())
def test_softmax_kernels_match_reference_and_naive(n, d, C, seed):
    args = softmax_problem(n, d, C, seed)
    serial = kernels.softmax_loss_grad_serial(*args)
    parallel = kernels.softmax_loss_grad_parallel(*args)
    expected = reference.softmax_loss_grad(*args)
    for result in (serial, parallel):
        check_against(result, expected, softmax_magnitudes(*args))
        if n * d * C <= NAIVE_MAX_WORK:
            check_against(result, naive.softmax_loss_grad(*args), [1.0] * 3)
    assert_same_bits(serial, parallel)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, C, h", cases(HIDDEN))
def test_mlp_classifier_kernels_match_reference_and_naive(n, d, C, h, seed):
    args = mlp_problem(n, d, C, h, seed)
    serial = kernels.mlp_classifier_loss_grad_serial(*args)
    parallel = kernels.mlp_classifier_loss_grad_parallel(*args)
    expected = reference.mlp_classifier_loss_grad(*args)
    for result in (serial, parallel):
        check_against(result, expected, mlp_magnitudes(*args))
        if n * d * C * h <= NAIVE_MAX_WORK:
            check_against(result, naive.mlp_classifier_loss_grad(*args), [1.0] * 5)
    assert_same_bits(serial, parallel)


def test_the_reference_agrees_with_a_direct_formula():
    """Teeth for the oracle itself: softmax written the textbook way (fine at small logits)."""
    X, y, W, b = softmax_problem(30, 4, 5, seed=3)
    Z = X @ W + b
    p = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    onehot = np.eye(5)[y.astype(int)]
    loss, (grad_W, grad_b) = reference.softmax_loss_grad(X, y, W, b)
    assert_allclose(loss, -np.mean(np.log(p[np.arange(30), y.astype(int)])), rtol=1e-12)
    assert_allclose(grad_W, X.T @ (p - onehot) / 30, rtol=1e-12, atol=1e-15)
    assert_allclose(grad_b, (p - onehot).mean(axis=0), rtol=1e-12, atol=1e-15)
    assert_allclose(reference.softmax_probabilities(X, W, b), p, rtol=1e-12)
    assert np.array_equal(reference.softmax_predict(X, W, b), p.argmax(axis=1))
    assert reference.accuracy(p.argmax(axis=1), y) == np.mean(p.argmax(axis=1) == y)


# ----------------------------------------------------------------------------- finite differences
def away_from_kink(n, d, C, h, seed):
    """An MLP problem redrawn until no |X W1 + b1| is within KINK of relu's kink."""
    for attempt in range(100):
        args = mlp_problem(n, d, C, h, seed + 1000 * attempt)
        X, _, W1, b1, _, _ = args
        if np.abs(X @ W1 + b1).min() >= KINK:
            return args
    raise AssertionError("could not draw an input away from the ReLU kink")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, C", [(1, 1, 2), (7, 3, 4), (20, 5, 3), (70, 2, 10)])
def test_softmax_gradient_matches_finite_differences(n, d, C, seed):
    X, y, W, b = softmax_problem(n, d, C, seed)
    for kernel in (kernels.softmax_loss_grad_serial, reference.softmax_loss_grad):
        loss, *grads = flatten(kernel(X, y, W, b))
        fd = finite_difference_grads(lambda W_, b_: flatten(kernel(X, y, W_, b_))[0], [W, b])
        for got, want in zip(grads, fd, strict=True):
            assert_allclose(got, want, rtol=1e-6, atol=1e-7 * max(1.0, loss))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, C, h", [(1, 1, 2, 1), (7, 3, 4, 5), (20, 2, 3, 8), (70, 3, 10, 4)])
def test_mlp_classifier_gradient_matches_finite_differences(n, d, C, h, seed):
    X, y, *params = away_from_kink(n, d, C, h, seed)
    for kernel in (kernels.mlp_classifier_loss_grad_serial, reference.mlp_classifier_loss_grad):
        loss, *grads = flatten(kernel(X, y, *params))
        fd = finite_difference_grads(lambda *p: flatten(kernel(X, y, *p))[0], params)
        for got, want in zip(grads, fd, strict=True):
            assert_allclose(got, want, rtol=1e-6, atol=1e-7 * max(1.0, loss))


# ----------------------------------------------------------------------------- determinism
MANY_CHUNKS = [kernels.CHUNK_ROWS + 1, 3 * kernels.CHUNK_ROWS + 17,
               pytest.param(kernels.MAX_CHUNKS * kernels.CHUNK_ROWS + 1001, marks=slow_without_jit)]


def all_kernels(n, d=3, C=4, h=5, seed=0):
    """(name, serial kernel, parallel kernel, args) for both classifiers on n random rows."""
    return [("softmax", kernels.softmax_loss_grad_serial, kernels.softmax_loss_grad_parallel,
             softmax_problem(n, d, C, seed)),
            ("mlp_classifier", kernels.mlp_classifier_loss_grad_serial,
             kernels.mlp_classifier_loss_grad_parallel, mlp_problem(n, d, C, h, seed))]


THREADS = ([None] if JIT_DISABLED or numba.config.NUMBA_NUM_THREADS < 2
           else [1, 2])  # None: leave numba's thread count alone


@pytest.mark.parametrize("n", MANY_CHUNKS + [pytest.param(10**5, marks=slow_without_jit)])
def test_serial_and_parallel_give_the_same_bits_on_any_thread_count(n):
    assert len(getattr(kernels.chunk_bounds, "py_func", kernels.chunk_bounds)(n)) > 2
    before = numba.get_num_threads()
    for name, serial, parallel, args in all_kernels(n):
        want = serial(*args)
        try:
            for threads in THREADS:
                if threads is not None:
                    numba.set_num_threads(threads)
                assert_same_bits(parallel(*args), want, f"{name}, {threads} threads")
                assert_same_bits(serial(*args), want, f"{name} serial again")
        finally:
            numba.set_num_threads(before)


def test_kernels_do_not_modify_their_inputs():
    for name, serial, parallel, args in all_kernels(2 * kernels.CHUNK_ROWS + 3):
        copies = [np.copy(a) for a in args]
        serial(*args)
        parallel(*args)
        for arg, copy in zip(args, copies):
            assert np.array_equal(arg, copy), name


# ----------------------------------------------------------------------------- stability
SOFTMAX_FUNCTIONS = [kernels.softmax_loss_grad_serial, kernels.softmax_loss_grad_parallel,
                     reference.softmax_loss_grad]


def certain_softmax(right, logit=1e4, n=5, C=3):
    """X = 1, logits ±logit: every row certain of class 0; labels 0 (right) or 1 (wrong)."""
    X = np.ones((n, 1))
    W = np.zeros((1, C))
    W[0, 0], W[0, 1] = logit, -logit
    y = np.zeros(n) if right else np.ones(n)
    return X, y, W, np.zeros(C)


@pytest.mark.parametrize("kernel", SOFTMAX_FUNCTIONS)
@pytest.mark.parametrize("logit", [1e4, 1e300])
def test_softmax_certain_and_right_gives_zero_loss_and_gradient(kernel, logit):
    loss, *grads = flatten(kernel(*certain_softmax(right=True, logit=logit)))
    assert loss == 0.0  # log-sum-exp: s - z_y + log(1 + tiny) = 0, where exp(1e4) would overflow
    for grad in grads:
        assert np.array_equal(grad, np.zeros_like(grad))


@pytest.mark.parametrize("kernel", SOFTMAX_FUNCTIONS)
def test_softmax_certain_and_wrong_gives_the_logit_gap(kernel):
    loss, grad_W, grad_b = flatten(kernel(*certain_softmax(right=False)))
    assert loss == 2e4  # -log p_1 = z_0 - z_1 = 2e4, finite
    assert np.array_equal(grad_W, [[1.0, -1.0, 0.0]]) and np.array_equal(grad_b, [1.0, -1.0, 0.0])


@pytest.mark.parametrize("kernel", [kernels.mlp_classifier_loss_grad_serial,
                                    kernels.mlp_classifier_loss_grad_parallel])
def test_mlp_classifier_is_stable_at_huge_logits(kernel):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = labels(rng, 50, 4)
    W1, b1 = rng.normal(size=(3, 6)), np.zeros(6)
    W2, b2 = 1e4 * rng.normal(size=(6, 4)), np.zeros(4)
    result = flatten(kernel(X, y, W1, b1, W2, b2))
    assert all(np.isfinite(r).all() for r in result)
    check_against(result, reference.mlp_classifier_loss_grad(X, y, W1, b1, W2, b2),
                  [1e4 * m for m in mlp_magnitudes(X, y, W1, b1, W2, b2)])


@pytest.mark.parametrize("kernel", [kernels.softmax_loss_grad_serial,
                                    kernels.softmax_loss_grad_parallel])
def test_a_nan_logit_gives_a_nan_loss(kernel):
    X, y, W, b = softmax_problem(70, 3, 4, seed=0)
    X[65, 1] = np.nan
    with np.errstate(all="ignore"):  # the plain-Python run (NUMBA_DISABLE_JIT=1) warns
        loss, grad_W, grad_b = kernel(X, y, W, b)
    assert np.isnan(loss) and np.isnan(grad_b).all()


def test_exp_nonpositive_is_within_one_ulp_of_numpy():
    x = np.concatenate([-np.linspace(0.0, 708.0, 64 * 200), [-0.5 * np.log(2), -1e-300, -5e-324,
                                                             -1e-17, -707.9, -1.0]])
    x = np.concatenate([x, np.zeros(-len(x) % 64)]).reshape(-1, 64)
    got = x.copy()
    kernels.exp_nonpositive(got, 64, np.empty((2, 64)))
    want = np.exp(x)
    assert (np.abs(got - want) <= np.spacing(want)).all()
    assert (got[x == 0.0] == 1.0).all()


def test_exp_nonpositive_special_values():
    x = np.array([[0.0, -np.inf, np.nan, -708.5, -745.2, -1e4, -1e300, -0.0]])
    got = x.copy()
    kernels.exp_nonpositive(got, 8, np.empty((2, 64)))
    assert got[0, 0] == 1.0 and got[0, 7] == 1.0 and np.isnan(got[0, 2])
    assert np.array_equal(got[0, [1, 3, 4, 5, 6]], np.zeros(5))  # below 3.3e-308: 0


# ----------------------------------------------------------------------------- public wrappers
def public_softmax_args(n=40, d=3, C=4, seed=0):
    X, y, W, b = softmax_problem(n, d, C, seed)
    return dict(X=X, y=y.astype(np.int64), W=W, b=b)


def public_mlp_args(n=40, d=3, C=4, h=5, seed=0):
    X, y, W1, b1, W2, b2 = mlp_problem(n, d, C, h, seed)
    return dict(X=X, y=y.astype(np.int64), W1=W1, b1=b1, W2=W2, b2=b2)


PUBLIC = {"softmax": (lambda: fedlite.softmax_loss_grad, public_softmax_args,
                      kernels.softmax_loss_grad_serial),
          "mlp_classifier": (lambda: fedlite.mlp_classifier_loss_grad, public_mlp_args,
                             kernels.mlp_classifier_loss_grad_serial)}


def call_public(model, **changes):
    function, make_args, _ = PUBLIC[model]
    return function()(**{**make_args(), **changes})


@pytest.mark.parametrize("model", list(PUBLIC))
@pytest.mark.parametrize("n", [40, pytest.param(PARALLEL_MIN_ROWS + 1, marks=slow_without_jit)])
def test_public_functions_equal_the_kernels_for_every_label_form(model, n):
    function, make_args, kernel = PUBLIC[model]
    args = make_args(n=n)
    float_args = {**args, "y": args["y"].astype(np.float64)}
    want = flatten(kernel(*float_args.values()))
    for form in (np.int64, np.int32, np.uint8, np.float64, np.float32, list):
        y = args["y"].tolist() if form is list else args["y"].astype(form)
        got = flatten(function()(**{**args, "y": y}))
        assert isinstance(got[0], float)
        assert_same_bits(got, want, str(form))


@pytest.mark.skipif(JIT_DISABLED, reason="needs the JIT")
@pytest.mark.parametrize("model", list(PUBLIC))
def test_every_label_form_uses_one_compiled_version(model):
    function, make_args, kernel = PUBLIC[model]
    args = make_args()
    function()(**args)
    count = len(kernel.signatures)
    for form in (np.int32, np.float64, np.float32):
        function()(**{**args, "y": args["y"].astype(form)})
        function()(**{key: np.asfortranarray(value) if np.ndim(value) == 2 else value
                      for key, value in args.items()})
    assert len(kernel.signatures) == count


BAD_LABELS = [
    ("-1", lambda y: np.where(np.arange(len(y)) == 3, -1, y), ValueError, "y[3] = -1"),
    ("C", lambda y: np.where(np.arange(len(y)) == 5, 4, y), ValueError, "y[5] = 4"),
    ("huge", lambda y: np.where(np.arange(len(y)) == 0, 2**62, y), ValueError, "y[0]"),
    ("fraction", lambda y: np.where(np.arange(len(y)) == 2, 1.5, y), ValueError, "y[2] = 1.5"),
    ("nan", lambda y: np.where(np.arange(len(y)) == 2, np.nan, y), ValueError, "finite"),
    ("inf", lambda y: np.where(np.arange(len(y)) == 2, np.inf, y), ValueError, "finite"),
    ("bool", lambda y: y > 1, TypeError, "dtype bool"),
    ("complex", lambda y: y + 0j, TypeError, "dtype complex"),
    ("strings", lambda y: y.astype(str), TypeError, "dtype <U"),
    ("objects", lambda y: y.astype(object), TypeError, "dtype object"),
    ("ragged", lambda y: [[1], [1, 2]], TypeError, "y must"),
    ("short", lambda y: y[:-1], ValueError, "40 class labels"),
    ("2-D", lambda y: y.reshape(-1, 1), ValueError, "1-D"),
    ("empty", lambda y: y[:0], ValueError, "non-empty"),
    ("scalar", lambda y: 1, ValueError, "1-D"),
]


@pytest.mark.parametrize("model", list(PUBLIC))
@pytest.mark.parametrize("case, change, error, text", BAD_LABELS, ids=[c[0] for c in BAD_LABELS])
def test_bad_labels_are_refused_naming_y(model, case, change, error, text):
    y = PUBLIC[model][1]()["y"]
    with pytest.raises(error, match=r"^y must") as info:
        call_public(model, y=change(y))
    assert text in str(info.value)


@pytest.mark.parametrize("model, weight", [("softmax", "W"), ("mlp_classifier", "W2")])
def test_a_label_beyond_the_weights_columns_names_y_and_the_weight(model, weight):
    y = PUBLIC[model][1]()["y"]
    with pytest.raises(ValueError, match=rf"y must hold class labels 0\.\.3 \({weight} has 4 "
                                         r"columns, one per class\); got y\[7\] = 9"):
        call_public(model, y=np.where(np.arange(len(y)) == 7, 9, y))


@pytest.mark.parametrize("model, name, value, text", [
    ("softmax", "W", np.zeros(3), "W must be 2-D"),
    ("softmax", "W", np.zeros((2, 4)), r"W must have shape \(3, C\)"),
    ("softmax", "b", np.zeros(3), r"b must have shape \(4,\)"),
    ("softmax", "b", np.array([0.0, np.nan, 0.0, 0.0]), "b must contain only finite"),
    ("softmax", "X", np.ones((40, 3), dtype=bool), "X must hold real numbers"),
    ("mlp_classifier", "W2", np.zeros(5), "W2 must be 2-D"),
    ("mlp_classifier", "W2", np.zeros((4, 4)), r"W2 must have shape \(5, C\)"),
    ("mlp_classifier", "b2", 0.0, "b2 must be 1-D"),
    ("mlp_classifier", "b1", np.zeros(4), r"b1 must have shape \(5,\)"),
])
def test_bad_parameters_are_refused_naming_them(model, name, value, text):
    with pytest.raises((TypeError, ValueError), match=text):
        call_public(model, **{name: value})


@pytest.mark.parametrize("model", list(PUBLIC))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_X_is_named(model, bad):
    X = PUBLIC[model][1]()["X"]
    X[9, 1] = bad
    with pytest.raises(ValueError, match="X must contain only finite"):
        call_public(model, X=X)


@pytest.mark.parametrize("model", list(PUBLIC))
def test_logits_that_overflow_from_finite_inputs_raise_a_clear_error(model):
    weight = "W" if model == "softmax" else "W1"
    huge = {"X": np.full((40, 3), 1e300), weight: np.full(PUBLIC[model][1]()[weight].shape, 1e300)}
    with pytest.raises(ValueError, match="overflowed float64 although X and the parameters"):
        call_public(model, **huge)


@pytest.mark.parametrize("model", list(PUBLIC))
def test_read_only_inputs_are_accepted_and_not_modified(model):
    args = PUBLIC[model][1]()
    copies = {key: value.copy() for key, value in args.items()}
    for value in args.values():
        value.flags.writeable = False
    PUBLIC[model][0]()(**args)
    for key, value in args.items():
        assert np.array_equal(value, copies[key]) and not value.flags.writeable
