"""Tests of fedlite.kernels: every kernel against fedlite.reference (and tests/naive.py when small),
serial == parallel bit for bit, whatever the thread count, and the public wrappers' conversions."""
import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose

import fedlite
import naive
from conftest import JIT_DISABLED, slow_without_jit
from fedlite import kernels, reference
from fedlite.models import PARALLEL_MIN_ROWS

N_VALUES = [1, 2, 63, 64, 65, 1000, 4097, 10**5]
D_VALUES = [1, 3, 10, 100, 500]
HIDDEN = [1, 7, 10, 64]
SEEDS = [0, 1]
MAX_ELEMENTS = 5_000_000  # n * d: bigger X is left out (memory, time)
NO_JIT_MAX_WORK = 100_000  # n * d * h above this is skipped as plain Python (~0.5 µs per unit)
NAIVE_MAX_WORK = 5_000    # n * d * h up to this is also checked against tests/naive.py


def cases(*sizes):
    """pytest.param for every (n, d[, h]) of the grid with n * d <= MAX_ELEMENTS."""
    params = []
    for n in N_VALUES:
        for d in D_VALUES:
            if n * d > MAX_ELEMENTS:
                continue
            for h in sizes or [None]:
                work = n * d * (h or 1)
                marks = [slow_without_jit] if work > NO_JIT_MAX_WORK else []
                values = (n, d) if h is None else (n, d, h)
                params.append(pytest.param(*values, marks=marks))
    return params


def linear_problem(n, d, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    return X, y, rng.normal(size=d) / np.sqrt(d), float(rng.normal())


def mlp_problem(n, d, h, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    W1, b1 = rng.normal(size=(d, h)) / np.sqrt(d), rng.normal(size=h)
    return X, y, W1, b1, rng.normal(size=h) / np.sqrt(h), float(rng.normal())


def assert_close(actual, expected, magnitude):
    """Equal up to rounding: rtol 1e-10, atol 1e-12 x `magnitude`, the size of the summed terms."""
    assert np.shape(actual) == np.shape(expected)
    assert_allclose(actual, expected, rtol=1e-10, atol=1e-12 * max(1.0, np.max(magnitude)))


def assert_same_bits(first, second, label=""):
    """Two results (tuples of floats and arrays) are identical bit for bit."""
    assert len(first) == len(second), label
    for a, b in zip(first, second):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype == np.float64 and a.shape == b.shape, label
        assert a.tobytes() == b.tobytes(), label


def linear_magnitudes(X, y, w, b):
    """The reference's sums taken over absolute values: what rounding error scales with."""
    loss, grad_w, grad_b = reference.linear_loss_grad(np.abs(X), -np.abs(y), np.abs(w), abs(b))
    return loss, grad_w, grad_b


def mlp_magnitudes(X, y, W1, b1, W2, b2):
    loss, grads = reference.mlp_loss_grad(np.abs(X), -np.abs(y), np.abs(W1), np.abs(b1),
                                          np.abs(W2), abs(b2))
    return (loss, *grads)


def check_linear(result, X, y, w, b, against_naive):
    loss, grad_w, grad_b = reference.linear_loss_grad(X, y, w, b)
    expected = [loss, grad_w, grad_b]
    for actual, want, magnitude in zip(result, expected, linear_magnitudes(X, y, w, b)):
        assert_close(actual, want, magnitude)
    if against_naive:
        for actual, want in zip(result, naive.linear_loss_grad(X, y, w, b)):
            assert_allclose(actual, want, rtol=1e-10, atol=1e-12)


def check_mlp(result, X, y, W1, b1, W2, b2, against_naive):
    loss, grads = reference.mlp_loss_grad(X, y, W1, b1, W2, b2)
    expected = [loss, *grads]
    for actual, want, magnitude in zip(result, expected, mlp_magnitudes(X, y, W1, b1, W2, b2)):
        assert_close(actual, want, magnitude)
    if against_naive:
        naive_loss, naive_grads = naive.mlp_loss_grad(X, y, W1, b1, W2, b2)
        for actual, want in zip(result, [naive_loss, *naive_grads]):
            assert_allclose(actual, want, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- against the oracles
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d", cases())
def test_linear_kernels_match_reference(n, d, seed):
    X, y, w, b = linear_problem(n, d, seed)
    serial = kernels.linear_loss_grad_serial(X, y, w, b)
    parallel = kernels.linear_loss_grad_parallel(X, y, w, b)
    for result in (serial, parallel):
        check_linear(result, X, y, w, b, against_naive=n * d <= NAIVE_MAX_WORK)
    assert_same_bits(serial, parallel)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, h", cases(*HIDDEN))
def test_mlp_kernels_match_reference(n, d, h, seed):
    X, y, W1, b1, W2, b2 = mlp_problem(n, d, h, seed)
    serial = kernels.mlp_loss_grad_serial(X, y, W1, b1, W2, b2)
    parallel = kernels.mlp_loss_grad_parallel(X, y, W1, b1, W2, b2)
    for result in (serial, parallel):
        check_mlp(result, X, y, W1, b1, W2, b2, against_naive=n * d * h <= NAIVE_MAX_WORK)
    assert_same_bits(serial, parallel)


# ----------------------------------------------------------------------------- determinism
# n spanning several chunks of kernels.CHUNK_ROWS rows, up to past the MAX_CHUNKS cap.
MANY_CHUNKS = [kernels.CHUNK_ROWS + 1, 3 * kernels.CHUNK_ROWS + 17,
               pytest.param(10**5, marks=slow_without_jit),
               pytest.param(kernels.MAX_CHUNKS * kernels.CHUNK_ROWS + 1001, marks=slow_without_jit)]


def all_kernels(n, d=3, h=5, seed=0):
    """(name, kernel, args) for the four kernels on one random problem of n rows."""
    X, y, w, b = linear_problem(n, d, seed)
    mlp_args = mlp_problem(n, d, h, seed)
    return [("linear serial", kernels.linear_loss_grad_serial, (X, y, w, b)),
            ("linear parallel", kernels.linear_loss_grad_parallel, (X, y, w, b)),
            ("mlp serial", kernels.mlp_loss_grad_serial, mlp_args),
            ("mlp parallel", kernels.mlp_loss_grad_parallel, mlp_args)]


@pytest.mark.parametrize("n", MANY_CHUNKS)
def test_serial_and_parallel_give_the_same_bits(n):
    # Really several chunks.  (The plain-Python chunk_bounds: calling the compiled helper from
    # Python can fail with "NRT_adapt_ndarray_to_python: descr is NULL" for some cache states.)
    assert len(getattr(kernels.chunk_bounds, "py_func", kernels.chunk_bounds)(n)) > 2
    results = {name: kernel(*args) for name, kernel, args in all_kernels(n)}
    assert_same_bits(results["linear serial"], results["linear parallel"])
    assert_same_bits(results["mlp serial"], results["mlp parallel"])


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


@pytest.mark.parametrize("n", [1, 65, pytest.param(10**5, marks=slow_without_jit)])
def test_same_call_twice_gives_the_same_bits(n):
    for name, kernel, args in all_kernels(n):
        assert_same_bits(kernel(*args), kernel(*args), name)


def test_kernels_do_not_modify_their_inputs():
    for name, kernel, args in all_kernels(2 * kernels.CHUNK_ROWS + 3):  # several chunks
        copies = [np.copy(a) for a in args]
        kernel(*args)
        for arg, copy in zip(args, copies):
            assert np.array_equal(arg, copy), name


# ----------------------------------------------------------------------------- relu'(0) = 0
@pytest.mark.parametrize("kernel", [kernels.mlp_loss_grad_serial, kernels.mlp_loss_grad_parallel])
@pytest.mark.parametrize("repeat", [1, pytest.param(3000, marks=slow_without_jit)])
def test_mlp_relu_derivative_at_zero_is_zero(kernel, repeat):
    """Hidden unit 0 has Z exactly 0 on some rows, > 0 and < 0 on others: relu'(0) counts as 0."""
    X = np.tile([[2.0, 0.0], [1.0, 2.0], [4.0, 0.0], [0.0, 0.0], [3.0, 1.0]], (repeat, 1))
    W1 = np.array([[0.5, 1.0], [0.25, -1.0]])  # unit 0: Z = 0.5 x1 + 0.25 x2 - 1 (exact in binary)
    b1 = np.array([-1.0, 0.5])
    W2, b2 = np.array([2.0, -1.0]), 0.25
    y = np.arange(len(X), dtype=np.float64) % 3
    Z = X @ W1 + b1
    assert (Z[:, 0] == 0).any() and (Z[:, 0] > 0).any() and (Z[:, 0] < 0).any()
    result = kernel(X, y, W1, b1, W2, b2)
    check_mlp(result, X, y, W1, b1, W2, b2, against_naive=repeat == 1)
    # Teeth: counting the Z = 0 rows as active (relu'(0) = 1) gives a different grad_b1[0].
    r = np.maximum(Z, 0) @ W2 + b2 - y
    grad_b1_if_relu_grad_at_0_were_1 = np.sum(r * W2[0] * (Z[:, 0] >= 0)) / len(X)
    assert abs(result[2][0] - grad_b1_if_relu_grad_at_0_were_1) > 1e-3


# ----------------------------------------------------------------------------- public wrappers
def layouts(array):
    """The same values as `array` laid out as a student might pass them (not C-contiguous, a list)."""
    wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],))
    wide[..., ::2] = array
    yield "fortran", np.asfortranarray(array)
    yield "strided", wide[..., ::2]
    yield "negative strides", np.ascontiguousarray(array[::-1])[::-1]
    yield "list", array.tolist()


@pytest.mark.parametrize("n", [50, pytest.param(PARALLEL_MIN_ROWS + 1, marks=slow_without_jit)])
def test_public_linear_accepts_any_layout_and_real_dtype(n):
    rng = np.random.default_rng(0)
    X, y = rng.integers(-5, 6, size=(n, 4)), rng.integers(-5, 6, size=n)
    w, b = rng.integers(-3, 4, size=4), 2
    want = fedlite.linear_loss_grad(X.astype(np.float64), y.astype(np.float64),
                                    w.astype(np.float64), 2.0)
    check_linear(want, X.astype(np.float64), y.astype(np.float64), w.astype(np.float64), 2.0,
                 against_naive=False)
    assert_same_bits(fedlite.linear_loss_grad(X, y, w, b), want)  # ints
    assert_same_bits(fedlite.linear_loss_grad(X.astype(np.float32), y.astype(np.float32),
                                              w.astype(np.float32), np.float32(b)), want)
    for name, X_layout in layouts(X.astype(np.float64)):
        assert_same_bits(fedlite.linear_loss_grad(X_layout, y, w, b), want, f"X {name}")
    for name, w_layout in layouts(w.astype(np.float64)):
        assert_same_bits(fedlite.linear_loss_grad(X, y, w_layout, b), want, f"w {name}")


@pytest.mark.parametrize("n", [50, pytest.param(PARALLEL_MIN_ROWS + 1, marks=slow_without_jit)])
def test_public_mlp_accepts_any_layout_and_real_dtype(n):
    rng = np.random.default_rng(1)
    X, y = rng.integers(-5, 6, size=(n, 3)), rng.integers(-5, 6, size=n)
    W1, b1 = rng.integers(-3, 4, size=(3, 4)), rng.integers(-3, 4, size=4)
    W2, b2 = rng.integers(-3, 4, size=4), -1
    as64 = [np.asarray(a, dtype=np.float64) for a in (X, y, W1, b1, W2)]
    want = fedlite.mlp_loss_grad(*as64, -1.0)
    loss, grads = want
    check_mlp((loss, *grads), *as64, -1.0, against_naive=False)
    assert_same_bits(flatten(fedlite.mlp_loss_grad(X, y, W1, b1, W2, b2)), flatten(want))
    as32 = [a.astype(np.float32) for a in as64]
    assert_same_bits(flatten(fedlite.mlp_loss_grad(*as32, np.float32(b2))), flatten(want))
    for position in range(5):
        for name, layout in layouts(as64[position]):
            args = list(as64)
            args[position] = layout
            assert_same_bits(flatten(fedlite.mlp_loss_grad(*args, -1.0)), flatten(want),
                             f"argument {position} {name}")
    W1_transposed_view = np.ascontiguousarray(as64[2].T).T
    assert not W1_transposed_view.flags.c_contiguous
    args = [as64[0], as64[1], W1_transposed_view, as64[3], as64[4], -1.0]
    assert_same_bits(flatten(fedlite.mlp_loss_grad(*args)), flatten(want))


def flatten(result):
    loss, grads = result
    return (loss, *grads)
