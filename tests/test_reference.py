"""Tests of fedlite.reference, the oracle: against tests/naive.py and against finite differences."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

import naive
from fedlite import reference

SHAPES_LINEAR = [(1, 1), (1, 3), (2, 1), (7, 2), (20, 5), (50, 1), (50, 5)]
SHAPES_MLP = [(1, 1, 1), (1, 3, 8), (2, 2, 3), (7, 1, 8), (20, 5, 1), (50, 3, 4), (50, 5, 8)]
SEEDS = [0, 1, 2]
EPS = 1e-6  # finite-difference step
KINK = 1e-3  # no pre-activation this close to relu's kink, so the step cannot cross it


def linear_problem(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d), rng.normal()


def mlp_problem(n, d, h, seed):
    """Random X, y, W1, b1, W2, b2, redrawn until every |Z| = |X W1 + b1| >= KINK."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        X, y = rng.normal(size=(n, d)), rng.normal(size=n)
        W1, b1 = rng.normal(size=(d, h)), rng.normal(size=h)
        W2, b2 = rng.normal(size=h), rng.normal()
        if np.abs(X @ W1 + b1).min() >= KINK:
            return X, y, W1, b1, W2, b2
    raise AssertionError("could not draw an input away from the ReLU kink")


def finite_difference_grads(loss, params):
    """Central differences (L(p + eps e_k) - L(p - eps e_k)) / (2 eps) for every entry of every param."""
    grads = []
    for index, value in enumerate(params):
        value = np.asarray(value, dtype=np.float64)
        grad = np.empty(value.shape)
        for k in np.ndindex(value.shape):
            shifted = [np.array(p, dtype=np.float64) for p in params]
            shifted[index][k] = value[k] + EPS
            up = loss(*shifted)
            shifted[index][k] = value[k] - EPS
            down = loss(*shifted)
            grad[k] = (up - down) / (2 * EPS)
        grads.append(grad)
    return grads


def assert_grad_close(actual, expected, loss):
    # Cancellation in (up - down) costs ~ 1e-16 * loss / EPS absolute; rtol 1e-6 covers the rest.
    assert_allclose(actual, expected, rtol=1e-6, atol=1e-6 * max(1.0, loss))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d", SHAPES_LINEAR)
def test_linear_matches_naive(n, d, seed):
    X, y, w, b = linear_problem(n, d, seed)
    loss, grad_w, grad_b = reference.linear_loss_grad(X, y, w, b)
    naive_loss, naive_grad_w, naive_grad_b = naive.linear_loss_grad(X, y, w, b)
    assert isinstance(loss, float) and isinstance(grad_b, float)
    assert grad_w.shape == (d,)
    assert_allclose(loss, naive_loss, rtol=1e-12)
    assert_allclose(grad_w, naive_grad_w, rtol=1e-10, atol=1e-12)
    assert_allclose(grad_b, naive_grad_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, h", SHAPES_MLP)
def test_mlp_matches_naive(n, d, h, seed):
    X, y, W1, b1, W2, b2 = mlp_problem(n, d, h, seed)
    loss, grads = reference.mlp_loss_grad(X, y, W1, b1, W2, b2)
    naive_loss, naive_grads = naive.mlp_loss_grad(X, y, W1, b1, W2, b2)
    assert isinstance(loss, float) and isinstance(grads[3], float)
    assert [np.shape(g) for g in grads] == [(d, h), (h,), (h,), ()]
    assert_allclose(loss, naive_loss, rtol=1e-12)
    for grad, naive_grad in zip(grads, naive_grads):
        assert_allclose(grad, naive_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d", SHAPES_LINEAR)
def test_linear_gradient_matches_finite_differences(n, d, seed):
    X, y, w, b = linear_problem(n, d, seed)
    loss, grad_w, grad_b = reference.linear_loss_grad(X, y, w, b)
    fd_w, fd_b = finite_difference_grads(
        lambda w, b: reference.linear_loss_grad(X, y, w, float(b))[0], [w, b])
    assert_grad_close(grad_w, fd_w, loss)
    assert_grad_close(grad_b, fd_b, loss)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, d, h", SHAPES_MLP)
def test_mlp_gradient_matches_finite_differences(n, d, h, seed):
    X, y, W1, b1, W2, b2 = mlp_problem(n, d, h, seed)
    loss, grads = reference.mlp_loss_grad(X, y, W1, b1, W2, b2)
    fd_grads = finite_difference_grads(
        lambda W1, b1, W2, b2: reference.mlp_loss_grad(X, y, W1, b1, W2, float(b2))[0],
        [W1, b1, W2, b2])
    for grad, fd_grad in zip(grads, fd_grads):
        assert_grad_close(grad, fd_grad, loss)


def test_mlp_relu_derivative_at_zero_is_zero():
    """A hidden unit with Z exactly 0 on every row passes no gradient back (relu'(0) = 0)."""
    X = np.array([[1.0, 2.0], [2.0, 0.0]])
    W1 = np.array([[0.5, 1.0], [0.25, 1.0]])  # unit 0: Z = 0.5 x1 + 0.25 x2 - 1 = 0 on both rows
    b1 = np.array([-1.0, 0.0])                # unit 1: Z = x1 + x2 > 0
    W2, b2, y = np.array([2.0, 1.0]), 0.5, np.array([0.0, 1.0])
    assert (X @ W1 + b1)[:, 0].tolist() == [0.0, 0.0]
    _, (grad_W1, grad_b1, grad_W2, _) = reference.mlp_loss_grad(X, y, W1, b1, W2, b2)
    _, (naive_W1, naive_b1, naive_W2, _) = naive.mlp_loss_grad(X, y, W1, b1, W2, b2)
    assert grad_b1[0] == 0.0 and (grad_W1[:, 0] == 0.0).all() and grad_W2[0] == 0.0
    assert grad_b1[1] != 0.0
    assert_allclose(grad_W1, naive_W1, atol=1e-15)
    assert_allclose(grad_b1, naive_b1, atol=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_residual_gives_zero_loss_and_gradient(seed):
    """At an exact fit (y = y_hat) the loss and every gradient are 0."""
    X, _, w, b = linear_problem(9, 3, seed)
    loss, grad_w, grad_b = reference.linear_loss_grad(X, reference.linear_predict(X, w, b), w, b)
    assert loss == 0.0 and grad_b == 0.0 and not grad_w.any()
    X, _, W1, b1, W2, b2 = mlp_problem(9, 3, 4, seed)
    loss, grads = reference.mlp_loss_grad(X, reference.mlp_predict(X, W1, b1, W2, b2), W1, b1, W2, b2)
    assert loss == 0.0 and all(not np.any(g) for g in grads)
