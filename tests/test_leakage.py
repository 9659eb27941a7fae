"""fedlite.leakage: exact inversion of one example's gradient, the ratio attack on batches,
the gradient-matching loss against finite differences, and DLG reconstruction."""
import numpy as np
import pytest

import fedlite
from fedlite import leakage, reference


def mlp_params(d, h, rng, bias_scale=0.0):
    return (rng.normal(0, np.sqrt(2 / d), size=(d, h)), bias_scale * rng.normal(size=h),
            rng.normal(0, np.sqrt(1 / h), size=h), 0.3)


@pytest.mark.parametrize("d", [1, 3, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_example_linear_gradient_gives_the_example_exactly(d, seed):
    rng = np.random.default_rng(seed)
    x, y, w, b = rng.normal(size=d), float(rng.normal()), rng.normal(size=d), float(rng.normal())
    _, grad_w, grad_b = fedlite.linear_loss_grad(x[None, :], [y], w, b)   # what is sent
    x_hat, y_hat = leakage.invert_linear_gradient(grad_w, grad_b, w, b)
    np.testing.assert_allclose(x_hat, x, rtol=1e-12, atol=1e-12)
    assert y_hat == pytest.approx(y, rel=1e-12, abs=1e-12)


def test_a_fitted_example_has_zero_gradient_and_cannot_be_inverted():
    with pytest.raises(ValueError, match="grad_b"):
        leakage.invert_linear_gradient(np.zeros(3), 0.0, np.ones(3), 0.0)


@pytest.mark.parametrize("d,h", [(2, 3), (5, 10), (8, 32)])
def test_one_example_mlp_first_layer_gives_the_example_exactly(d, h):
    rng = np.random.default_rng(d + h)
    params = mlp_params(d, h, rng, bias_scale=0.1)
    x, y = rng.normal(size=d), float(rng.normal())
    _, grads = fedlite.mlp_loss_grad(x[None, :], [y], *params)
    x_hat, y_hat = leakage.invert_mlp_gradient(grads, params)
    np.testing.assert_allclose(x_hat, x, rtol=1e-10, atol=1e-12)
    assert y_hat == pytest.approx(y, rel=1e-10, abs=1e-12)
    # every active unit gives the same x
    candidates = leakage.candidate_rows(grads)
    assert len(candidates) >= 1
    np.testing.assert_allclose(candidates, np.tile(x, (len(candidates), 1)), rtol=1e-10, atol=1e-12)


def test_mlp_with_no_active_unit_raises():
    d, h = 3, 4
    params = (np.ones((d, h)), -100 * np.ones(h), np.ones(h), 0.0)
    _, grads = reference.mlp_loss_grad(np.ones((1, d)), np.array([1.0]), *params)
    with pytest.raises(ValueError, match="no unit"):
        leakage.invert_mlp_gradient(grads, params)


def test_linear_leakage_is_exact_for_one_example_and_a_blend_for_batches():
    X, y, _, _ = fedlite.make_linear_data(300, 5, seed=0)
    curve = leakage.leakage_vs_batch_size(X, y, (np.zeros(5), 0.0), [1, 2, 8, 32],
                                          num_trials=10, seed=0)
    assert curve.error[0] < 1e-12 and curve.recovered[0] == 1.0
    assert np.all(curve.recovered[1:] == 0.0)
    assert np.all(curve.error[1:] > 0.3)
    assert curve.error[-1] > curve.error[1]          # bigger batches blend more rows


def test_mlp_ratio_attack_recovers_rows_of_small_batches_and_fewer_of_big_ones():
    X, y, _, _ = fedlite.make_linear_data(300, 5, seed=0)
    params = mlp_params(5, 32, np.random.default_rng(1))
    curve = leakage.leakage_vs_batch_size(X, y, params, [1, 2, 8, 32], num_trials=10, seed=0)
    assert curve.recovered[0] == 1.0 and curve.recovered[1] > 0.9
    assert np.all(np.diff(curve.recovered) <= 0) and curve.recovered[-1] < 0.1


def test_leakage_vs_batch_size_is_seeded():
    X, y, _, _ = fedlite.make_linear_data(50, 3, seed=0)
    a = leakage.leakage_vs_batch_size(X, y, (np.ones(3), 0.0), [2, 4], num_trials=3, seed=5)
    b = leakage.leakage_vs_batch_size(X, y, (np.ones(3), 0.0), [2, 4], num_trials=3, seed=5)
    assert np.array_equal(a.error, b.error)
    with pytest.raises(ValueError, match="batch_sizes"):
        leakage.leakage_vs_batch_size(X, y, (np.ones(3), 0.0), [51])


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("n", [1, 3])
def test_matching_loss_gradient_matches_finite_differences(model, n):
    rng = np.random.default_rng(n)
    d = 4
    params = (rng.normal(size=d), 0.3) if model == "linear" else mlp_params(d, 6, rng, 0.2)
    target = leakage.model_grads(rng.normal(size=(n, d)), rng.normal(size=n), params)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    D, dX, dy = leakage.matching_loss_grad(X, y, params, target)
    flat = np.concatenate([X.ravel(), y])

    def loss(v):
        return leakage.matching_loss_grad(v[:n * d].reshape(n, d), v[n * d:], params, target)[0]

    eps = 1e-6
    numeric = np.array([(loss(flat + eps * e) - loss(flat - eps * e)) / (2 * eps)
                        for e in np.eye(flat.size)])
    np.testing.assert_allclose(np.concatenate([dX.ravel(), dy]), numeric, rtol=1e-5, atol=1e-7)
    assert D >= 0


def test_matching_loss_is_zero_at_the_true_rows():
    rng = np.random.default_rng(0)
    params = mlp_params(3, 5, rng)
    X, y = rng.normal(size=(2, 3)), rng.normal(size=2)
    D, dX, dy = leakage.matching_loss_grad(X, y, params, leakage.model_grads(X, y, params))
    assert D == 0 and not dX.any() and not dy.any()


def test_reconstruction_error_ignores_row_order():
    X = np.arange(12.0).reshape(4, 3) + 1
    assert leakage.reconstruction_error(X, X[[2, 0, 3, 1]]) == 0.0
    assert leakage.reconstruction_error(X, 1.1 * X) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shape"):
        leakage.reconstruction_error(X, X[:2])


def test_dlg_recovers_one_example_through_the_mlp():
    rng = np.random.default_rng(0)
    d, h = 5, 32
    params = mlp_params(d, h, rng)
    X, y = rng.normal(size=(1, d)), rng.normal(size=1)
    result = leakage.reconstruct_from_gradient(leakage.model_grads(X, y, params), params, 1, d,
                                               num_restarts=3, seed=0)
    assert leakage.reconstruction_error(X, result.X) < 1e-4
    assert result.y == pytest.approx(y, abs=1e-4)
    assert result.matching_loss[-1] < 1e-3 * result.matching_loss[0]


def test_dlg_matches_a_linear_batch_gradient_without_finding_the_batch():
    """Many batches share a linear gradient (it only sees Σ r_i x_i and Σ r_i)."""
    rng = np.random.default_rng(0)
    d, B = 4, 3
    params = (rng.normal(size=d), 0.5)
    X, y = rng.normal(size=(B, d)), rng.normal(size=B)
    result = leakage.reconstruct_from_gradient(leakage.model_grads(X, y, params), params, B, d,
                                               num_iterations=400, seed=0)
    assert result.matching_loss[-1] < 1e-10
    assert leakage.reconstruction_error(X, result.X) > 0.1


def test_dlg_is_seeded_and_checks_its_arguments():
    rng = np.random.default_rng(0)
    params = (rng.normal(size=3), 0.0)
    target = leakage.model_grads(rng.normal(size=(1, 3)), rng.normal(size=1), params)
    a = leakage.reconstruct_from_gradient(target, params, 1, 3, num_iterations=20, seed=4)
    b = leakage.reconstruct_from_gradient(target, params, 1, 3, num_iterations=20, seed=4)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.matching_loss, b.matching_loss)
    with pytest.raises(ValueError, match="lr"):
        leakage.reconstruct_from_gradient(target, params, 1, 3, lr=0)
    with pytest.raises(ValueError, match="batch_size"):
        leakage.reconstruct_from_gradient(target, params, 0, 3)


# ----------------------------------------------------------------------------- bad input
LIN = (np.ones(3), 0.5)
MLP = (np.arange(12.0).reshape(3, 4) / 10 - 0.5, np.zeros(4), np.ones(4), 0.1)
G_LIN = (np.ones(3), 2.0)
G_MLP = (np.ones((3, 4)), np.ones(4), np.ones(4), 1.0)
ROWS = np.arange(18.0).reshape(6, 3) + 1


@pytest.mark.parametrize("call,error,name", [
    (lambda: leakage.invert_mlp_gradient((np.ones((3, 4)), np.ones(4)), MLP), TypeError, "grads"),
    (lambda: leakage.invert_mlp_gradient(G_MLP, LIN), TypeError, "params"),
    (lambda: leakage.invert_mlp_gradient((np.ones((2, 4)),) + G_MLP[1:], MLP), ValueError,
     "grads"),
    (lambda: leakage.invert_mlp_gradient(G_MLP, (np.ones((3, 4)), np.ones(5)) + MLP[2:]),
     ValueError, "params"),
    (lambda: leakage.candidate_rows(np.ones(3)), TypeError, "grads"),
    (lambda: leakage.candidate_rows((np.ones(3), np.ones(2))), TypeError, "grads"),
    (lambda: leakage.candidate_rows((np.ones((3, 4)), np.ones(3), np.ones(4), 1.0)), ValueError,
     "grads"),
    (lambda: leakage.model_grads(np.ones((2, 3)), np.ones(2), (np.ones(4), 0.0)), ValueError,
     "params"),
    (lambda: leakage.model_grads(np.ones((2, 3)), np.ones(2), "linear"), TypeError, "params"),
    (lambda: leakage.model_grads(np.ones((2, 3)), np.ones(3), LIN), ValueError, "y"),
    (lambda: leakage.relative_errors(ROWS, np.ones((2, 4))), ValueError, "X_hat"),
    (lambda: leakage.relative_errors([[1.0], [1.0, 2.0]], ROWS), TypeError, "X_true"),
    (lambda: leakage.match_rows(ROWS, ROWS[:2]), ValueError, "X_hat"),
    (lambda: leakage.match_rows(ROWS, ROWS[:, :2]), ValueError, "X_hat"),
    (lambda: leakage.reconstruction_error(ROWS, np.full(ROWS.shape, np.nan)), ValueError,
     "X_hat"),
    (lambda: leakage.leakage_vs_batch_size(ROWS, np.ones(6), LIN, 2), TypeError, "batch_sizes"),
    (lambda: leakage.leakage_vs_batch_size(ROWS, np.ones(6), LIN, []), ValueError,
     "batch_sizes"),
    (lambda: leakage.leakage_vs_batch_size(ROWS, np.ones(6), (np.ones(4), 0.0), [1]),
     ValueError, "params"),
    (lambda: leakage.leakage_vs_batch_size(ROWS, np.ones(6), LIN, [1], num_trials=10**20),
     ValueError, "num_trials"),
    (lambda: leakage.matching_loss_grad(ROWS, np.ones(6), LIN, (np.ones(2), 1.0)), ValueError,
     "target"),
    (lambda: leakage.matching_loss_grad(ROWS, np.ones(6), LIN, G_MLP), TypeError, "target"),
    (lambda: leakage.matching_loss_grad(ROWS, np.ones(5), LIN, G_LIN), ValueError, "y"),
    (lambda: leakage.matching_loss_grad(ROWS, np.ones(6), MLP[:3], G_LIN), TypeError, "params"),
    (lambda: leakage.reconstruct_from_gradient(G_LIN, LIN, 1, 4), ValueError, "params"),
    (lambda: leakage.reconstruct_from_gradient(G_MLP, LIN, 1, 3), TypeError, "target"),
    (lambda: leakage.reconstruct_from_gradient(G_LIN, LIN, 10**6, 10**6), ValueError,
     "num_features"),
    (lambda: leakage.reconstruct_from_gradient(G_LIN, LIN, 1, 3, num_iterations=10**12),
     ValueError, "num_iterations")])
def test_bad_arguments_raise_errors_naming_them(call, error, name):
    with pytest.raises(error, match=name):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: leakage.invert_linear_gradient(np.full(3, 1e300), 1e-300, np.ones(3), 0.0),
     "overflows"),
    (lambda: leakage.invert_mlp_gradient((np.full((3, 4), 1e300), np.full(4, 1e-300), np.ones(4),
                                          1.0), MLP), "overflows"),
    (lambda: leakage.model_grads(np.full((2, 3), 1e200), np.ones(2), LIN), "overflow"),
    (lambda: leakage.matching_loss_grad(np.full((6, 3), 1e200), np.ones(6), LIN, G_LIN),
     "overflows"),
    (lambda: leakage.reconstruct_from_gradient(G_LIN, LIN, 1, 3, lr=1e300, num_iterations=50),
     "lr")])
def test_results_past_float64_are_refused_without_warnings(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e300])
def test_errors_are_measured_without_overflow_at_any_scale(scale):
    X = ROWS * scale
    np.testing.assert_allclose(leakage.relative_errors(X, 1.01 * X), 0.01, rtol=1e-9)
    assert leakage.reconstruction_error(X, 1.01 * X[::-1]) == pytest.approx(0.01, rel=1e-9)
    assert np.array_equal(leakage.match_rows(X, X[::-1]), np.arange(6)[::-1])
    grads = (np.full((3, 4), 1e300), np.array([1e-300, 1.0, 0.0, 2.0]), np.ones(4), 1.0)
    assert leakage.candidate_rows(grads).shape == (2, 3)    # the 1e300 / 1e-300 ratio is inf


def test_a_zero_true_row_is_recovered_only_by_a_zero_row():
    X = np.array([[0.0, 0.0], [1.0, 2.0]])
    assert list(leakage.relative_errors(X, X)) == [0.0, 0.0]
    assert list(leakage.relative_errors(X, X + 0.5)) == [np.inf, pytest.approx(np.sqrt(0.1))]
    assert leakage.reconstruction_error(X, X + 0.5) == np.inf


@pytest.mark.parametrize("params", [
    (np.ones((3, 4)), np.zeros(4)),                                      # softmax (W, b)
    (np.ones((3, 4)), np.zeros(4), np.ones((4, 2)), np.zeros(2))])       # MLP classifier
def test_the_model_is_asked_of_the_model_objects_and_classifiers_are_refused(params):
    """model_for_params says which model a tuple is; the attacks read the linear model and MLP."""
    with pytest.raises(TypeError, match=r"params must be the linear model's .* or the MLP's .*"
                                        r"got the parameters of (Softmax|MLPClassifier)Model"):
        leakage.model_grads(np.ones((2, 3)), np.ones(2), params)


def test_a_linear_ratio_past_float64_is_left_out_without_a_warning():
    """As for the MLP's units: grad_b = 1e-310 makes grad_w / grad_b overflow, so no row."""
    assert leakage.candidate_rows((np.ones(3), 1e-310)).shape == (0, 3)
