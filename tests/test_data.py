"""Tests of fedlite.data: shapes, dtypes, reproducibility, the formulas, argument checks."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fedlite.data import make_linear_data, make_sine_data, make_teacher_data

MAKERS = {
    "linear": lambda n, d, **kw: make_linear_data(n, d, **kw),
    "sine": lambda n, d, **kw: make_sine_data(n, num_features=d, **kw),
    "teacher": lambda n, d, **kw: make_teacher_data(n, d, **kw),
}


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("n, d", [(1, 1), (7, 1), (50, 3)])
def test_shapes_and_dtypes(name, n, d):
    X, y = MAKERS[name](n, d)[:2]
    assert X.shape == (n, d) and y.shape == (n,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert X.flags.c_contiguous and y.flags.c_contiguous
    assert np.isfinite(X).all() and np.isfinite(y).all()


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_same_seed_same_data_other_seed_other_data(name, seed):
    X1, y1 = MAKERS[name](20, 2, seed=seed)[:2]
    X2, y2 = MAKERS[name](20, 2, seed=seed)[:2]
    X3, y3 = MAKERS[name](20, 2, seed=seed + 1)[:2]
    assert_array_equal(X1, X2)
    assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3) and not np.array_equal(y1, y3)


def test_randomness_does_not_touch_global_state():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    make_linear_data(10, 2, seed=3)
    assert np.random.random() == before


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("d", [1, 4])
def test_linear_data_formula(seed, d):
    X, y, w_true, b_true = make_linear_data(30, d, noise=0.0, seed=seed)
    assert w_true.shape == (d,) and isinstance(b_true, float)
    assert_allclose(y, X @ w_true + b_true)


def test_linear_noise_has_the_given_std():
    X, y, w_true, b_true = make_linear_data(20_000, 2, noise=0.5, seed=0)
    assert np.std(y - X @ w_true - b_true) == pytest.approx(0.5, rel=0.03)


@pytest.mark.parametrize("d", [1, 3])
def test_sine_data_formula(d):
    X, y = make_sine_data(40, num_features=d, noise=0.0, seed=2)
    assert X.min() >= -3 and X.max() <= 3
    assert_allclose(y, np.sin(X[:, 0]) + 0.1 * X[:, 1:].sum(axis=1))


def _linear_fit_r2(X, y):
    """R² of the least-squares line: 1 means y is linear in X."""
    A = np.column_stack([X, np.ones(len(y))])
    residual = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    return 1 - residual.var() / y.var()


@pytest.mark.parametrize("name", ["sine", "teacher"])
def test_nonlinear_targets_are_not_linear(name):
    X, y = MAKERS[name](500, 1, noise=0.0, seed=0)[:2]
    assert _linear_fit_r2(X, y) < 0.95


def test_teacher_hidden_width_changes_the_target():
    _, y10 = make_teacher_data(20, 2, hidden=10, seed=0)
    _, y3 = make_teacher_data(20, 2, hidden=3, seed=0)
    assert not np.allclose(y10, y3)


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("kwargs, error, match", [
    ({"n": 0}, ValueError, "num_samples"),
    ({"n": 2.5}, TypeError, "num_samples"),
    ({"d": 0}, ValueError, "num_features"),
    ({"d": "3"}, TypeError, "num_features"),
    ({"noise": -0.1}, ValueError, "noise"),
    ({"noise": "big"}, TypeError, "noise"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": None}, TypeError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
])
def test_bad_arguments_are_named(name, kwargs, error, match):
    args = {"n": 5, "d": 2, **kwargs}
    n, d = args.pop("n"), args.pop("d")
    with pytest.raises(error, match=match):
        MAKERS[name](n, d, **args)


@pytest.mark.parametrize("hidden, error", [(0, ValueError), (2.0, TypeError)])
def test_bad_hidden_is_named(hidden, error):
    with pytest.raises(error, match="hidden"):
        make_teacher_data(5, 2, hidden=hidden)


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("n, d", [
    pytest.param(10**12, 10, id="80 TB"),            # numpy raised MemoryError
    pytest.param(10**400, 1, id="10**400 rows"),
    pytest.param(2**28 + 1, 1, id="2 GiB + 8 bytes"),  # the first size over the limit
])
def test_requests_that_cannot_fit_in_memory_are_refused_before_allocating(name, n, d):
    with pytest.raises(ValueError, match="^num_samples or num_features too large.*GiB"):
        MAKERS[name](n, d)


@pytest.mark.parametrize("n, hidden, match", [(10**6, 10**4, "num_samples or hidden"),
                                              (1, 10**10, "num_features or hidden")])
def test_a_teacher_too_wide_for_memory_is_refused(n, hidden, match):
    with pytest.raises(ValueError, match=f"^{match} too large"):
        make_teacher_data(n, 1, hidden=hidden)


@pytest.mark.parametrize("name", MAKERS)
def test_noise_so_large_that_y_overflows_is_refused_naming_noise(name):
    with pytest.raises(ValueError, match="^noise = 1e.308 is so large that y overflows"):
        MAKERS[name](1000, 2, noise=1e308)


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("kwargs, error, match", [
    ({"noise": np.nan}, ValueError, "noise"), ({"noise": 10**400}, ValueError, "noise"),
    ({"noise": True}, TypeError, "noise"), ({"noise": 1j}, TypeError, "noise"),
    ({"n": True}, TypeError, "num_samples"), ({"n": -3}, ValueError, "num_samples"),
    ({"n": np.array([3, 4])}, TypeError, "num_samples"), ({"seed": np.nan}, TypeError, "seed"),
])
def test_hostile_arguments_are_named(name, kwargs, error, match):
    args = {"n": 5, "d": 2, **kwargs}
    n, d = args.pop("n"), args.pop("d")
    with pytest.raises(error, match=match):
        MAKERS[name](n, d, **args)


@pytest.mark.parametrize("args, error, match", [
    ((np.ones(3), -1.0, np.random.default_rng(0)), ValueError, "^noise"),
    ((np.ones(3), 0.1, 0), TypeError, "^rng"),
    ((np.ones((3, 1)), 0.1, np.random.default_rng(0)), ValueError, "^y_clean"),
])
def test_add_noise_checks_its_arguments(args, error, match):
    from fedlite.data import add_noise
    with pytest.raises(error, match=match):
        add_noise(*args)
