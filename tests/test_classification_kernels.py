"""Tests of the classification kernels (softmax regression and the MLP classifier): against
fedlite.reference and tests/naive.py, against finite differences, serial == parallel bit for bit
whatever the thread count, stable at huge logits, and the public wrappers' checks."""
import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose

import naive
from conftest import JIT_DISABLED, slow_without_jit
from fedlite import kernels, reference

N_VALUES = [1, 2, 63, 64, 65, 1000, 4097, 10**5]
D_VALUES = [1, 3, 64]
CLASSES = [2, 3, 10]
HIDDEN = [1, 7]
SEEDS = [0, 1]
MAX_WORK = 20_000_000      # n * d * C * h above this is left out (time)
NO_JIT_MAX_WORK = 30_000  # n * d * C * h above this is skipped as plain Python
NAIVE_MAX_WORK = 3_000    # n * d * C * h up to this is also checked against tests/naive.py
EPS = 1e-6                # finite-difference step
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
    first, second = flatten(first), flatten(second)
    assert len(first) == len(second), label
    for a, b in zip(first, second):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype == np.float64 and a.shape == b.shape, label
        assert a.tobytes() == b.tobytes(), label


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
def finite_differences(loss, params):
    """Central differences of loss(*params) for every entry of every parameter array."""
    grads = []
    for index, value in enumerate(params):
        grad = np.empty(value.shape)
        for k in np.ndindex(value.shape):
            shifted = [np.array(p, dtype=np.float64) for p in params]
            shifted[index][k] = value[k] + EPS
            up = loss(*shifted)
            shifted[index][k] = value[k] - EPS
            grad[k] = (up - loss(*shifted)) / (2 * EPS)
        grads.append(grad)
    return grads


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
        fd = finite_differences(lambda W_, b_: flatten(kernel(X, y, W_, b_))[0], [W, b])
        for got, want in zip(grads, fd, strict=True):
            assert_allclose(got, want, rtol=1e-6, atol=1e-7 * max(1.0, loss))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, C, h", [(1, 1, 2, 1), (7, 3, 4, 5), (20, 2, 3, 8), (70, 3, 10, 4)])
def test_mlp_classifier_gradient_matches_finite_differences(n, d, C, h, seed):
    X, y, *params = away_from_kink(n, d, C, h, seed)
    for kernel in (kernels.mlp_classifier_loss_grad_serial, reference.mlp_classifier_loss_grad):
        loss, *grads = flatten(kernel(X, y, *params))
        fd = finite_differences(lambda *p: flatten(kernel(X, y, *p))[0], params)
        for got, want in zip(grads, fd, strict=True):
            assert_allclose(got, want, rtol=1e-6, atol=1e-7 * max(1.0, loss))


# ----------------------------------------------------------------------------- determinism
MANY_CHUNKS = [kernels.CHUNK_ROWS + 1, 3 * kernels.CHUNK_ROWS + 17,
               pytest.param(kernels.MAX_CHUNKS * kernels.CHUNK_ROWS + 1001, marks=slow_without_jit)]


def all_kernels(n, d=3, C=4, h=5, seed=0):
    """(name, kernel, args) for the four classification kernels on one random problem of n rows."""
    softmax_args = softmax_problem(n, d, C, seed)
    mlp_args = mlp_problem(n, d, C, h, seed)
    return [("softmax serial", kernels.softmax_loss_grad_serial, softmax_args),
            ("softmax parallel", kernels.softmax_loss_grad_parallel, softmax_args),
            ("mlp_classifier serial", kernels.mlp_classifier_loss_grad_serial, mlp_args),
            ("mlp_classifier parallel", kernels.mlp_classifier_loss_grad_parallel, mlp_args)]


@pytest.mark.parametrize("n", MANY_CHUNKS)
def test_serial_and_parallel_give_the_same_bits(n):
    assert len(getattr(kernels.chunk_bounds, "py_func", kernels.chunk_bounds)(n)) > 2
    results = {name: kernel(*args) for name, kernel, args in all_kernels(n)}
    assert_same_bits(results["softmax serial"], results["softmax parallel"])
    assert_same_bits(results["mlp_classifier serial"], results["mlp_classifier parallel"])


@pytest.mark.skipif(JIT_DISABLED, reason="no threads without the JIT")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 threads")
@pytest.mark.parametrize("n", [3 * kernels.CHUNK_ROWS + 17, 10**5])
def test_thread_count_does_not_change_bits(n):
    runs = all_kernels(n)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [kernel(*args) for _, kernel, args in runs]
        numba.set_num_threads(2)
        two = [kernel(*args) for _, kernel, args in runs]
    finally:
        numba.set_num_threads(before)
    for (name, _, _), first, second in zip(runs, one, two):
        assert_same_bits(first, second, name)


def test_kernels_do_not_modify_their_inputs():
    for name, kernel, args in all_kernels(2 * kernels.CHUNK_ROWS + 3):  # several chunks
        copies = [np.copy(a) for a in args]
        kernel(*args)
        for arg, copy in zip(args, copies):
            assert np.array_equal(arg, copy), name


# ----------------------------------------------------------------------------- stability
def certain_softmax(right, logit=1e4, n=5, C=3):
    """X = 1, logits ±logit: every row certain of class 0; labels 0 (right) or 1 (wrong)."""
    X = np.ones((n, 1))
    W = np.zeros((1, C))
    W[0, 0], W[0, 1] = logit, -logit
    y = np.zeros(n) if right else np.ones(n)
    return X, y, W, np.zeros(C)


@pytest.mark.parametrize("kernel", [kernels.softmax_loss_grad_serial,
                                    kernels.softmax_loss_grad_parallel, reference.softmax_loss_grad])
@pytest.mark.parametrize("logit", [1e4, 1e300])
def test_softmax_certain_and_right_gives_zero_loss_and_gradient(kernel, logit):
    loss, *grads = flatten(kernel(*certain_softmax(right=True, logit=logit)))
    assert loss == 0.0  # log-sum-exp: s - z_y + log(1 + tiny) = 0, where exp(1e4) would overflow
    for grad in grads:
        assert np.array_equal(grad, np.zeros_like(grad))


@pytest.mark.parametrize("kernel", [kernels.softmax_loss_grad_serial,
                                    kernels.softmax_loss_grad_parallel, reference.softmax_loss_grad])
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
