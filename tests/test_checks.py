"""Tests of fedlite.checks: each checker accepts the reference solution, names each typical
mistake, survives stubs and crashes, and prints the same text every time (nbval compares it)."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import crashes, load_solutions, stub_none, stub_not_implemented

from fedlite import checks, reference

solutions = load_solutions("exercises.py")

CHECKERS = ["linear_gradient", "linear_loss", "gradient_descent_step", "divergence_threshold",
            "weighted_average", "mlp_gradient", "fedprox_step", "bytes_per_round"]



def run(capsys, checker, fn):
    return contract.run(capsys, checks, checker, fn)


# ------------------------------------------------------------------ typical wrong answers

def linear_parts(X, y, w, b):
    n = len(y)
    return n, X @ w + b - y, *reference.linear_loss_grad(X, y, w, b)


def grad_sign(X, y, w, b):
    _, _, _, gw, gb = linear_parts(X, y, w, b)
    return -gw, -gb


def grad_sum(X, y, w, b):
    n, r, _, _, _ = linear_parts(X, y, w, b)
    return X.T @ r, r.sum()


def grad_factor_2(X, y, w, b):
    _, _, _, gw, gb = linear_parts(X, y, w, b)
    return 2 * gw, 2 * gb


def grad_no_bias(X, y, w, b):
    r = X @ w - y
    return X.T @ r / len(y), r.mean()


def grad_b_zero(X, y, w, b):
    return linear_parts(X, y, w, b)[3], 0.0


def grad_per_example(X, y, w, b):
    n, r, _, _, gb = linear_parts(X, y, w, b)
    return r / n, gb


def grad_column(X, y, w, b):
    _, _, _, gw, gb = linear_parts(X, y, w, b)
    return gw.reshape(-1, 1), gb


def grad_transposed(X, y, w, b):
    n, r, _, _, gb = linear_parts(X, y, w, b)
    return X @ r / n, gb


def grad_off(X, y, w, b):
    _, _, _, gw, gb = linear_parts(X, y, w, b)
    return gw + 0.1, gb


def loss_no_half(X, y, w, b):
    return 2 * linear_parts(X, y, w, b)[2]


def loss_sum_form(X, y, w, b):
    r = X @ w + b - y
    return 0.5 * np.sum(r ** 2)


def loss_sum_of_squares(X, y, w, b):
    return np.sum((X @ w + b - y) ** 2)


def loss_rmse(X, y, w, b):
    return np.sqrt(np.mean((X @ w + b - y) ** 2))


def loss_not_squared(X, y, w, b):
    return np.mean(np.abs(X @ w + b - y)) / 2


def loss_no_bias(X, y, w, b):
    return np.mean((X @ w - y) ** 2) / 2


def loss_per_example(X, y, w, b):
    return (X @ w + b - y) ** 2 / 2


def step_ascent(w, b, grad_w, grad_b, lr):
    return w + lr * grad_w, b + lr * grad_b


def step_no_lr(w, b, grad_w, grad_b, lr):
    return w - grad_w, b - grad_b


def step_in_place(w, b, grad_w, grad_b, lr):
    w -= lr * grad_w
    return w, b - lr * grad_b


def step_b_fixed(w, b, grad_w, grad_b, lr):
    return w - lr * grad_w, b


def hessian_eigenvalues(X, bias=True, mean=True):
    A = np.column_stack([X, np.ones(len(X))]) if bias else X
    return np.linalg.eigvalsh(A.T @ A / (len(X) if mean else 1))


def threshold_no_bias(X):
    return 2 / hessian_eigenvalues(X, bias=False).max()


def threshold_no_mean(X):
    return 2 / hessian_eigenvalues(X, mean=False).max()


def threshold_one_over(X):
    return 1 / hessian_eigenvalues(X).max()


def threshold_lambda_min(X):
    return 2 / hessian_eigenvalues(X).min()


def average_unweighted(updates, num_examples):
    return np.mean(updates, axis=0)


def average_not_normalised(updates, num_examples):
    return sum(n * u for u, n in zip(updates, num_examples))


def average_over_k(updates, num_examples):
    return sum(n * u for u, n in zip(updates, num_examples)) / len(updates)


def average_in_place(updates, num_examples):
    total = sum(num_examples)
    for u, n in zip(updates, num_examples):
        u *= n / total
    return sum(updates)


def average_not_summed(updates, num_examples):
    return np.array([n * u for u, n in zip(updates, num_examples)]) / sum(num_examples)


def mlp_parts(X, y, W1, b1, W2, b2):
    Z = X @ W1 + b1
    A = np.maximum(Z, 0.0)
    return len(y), Z, A, A @ W2 + b2 - y


def mlp_sign(*args):
    return tuple(-g for g in reference.mlp_loss_grad(*args)[1])


def mlp_w2_sum(*args):
    n, _, A, r = mlp_parts(*args)
    gW1, gb1, _, gb2 = reference.mlp_loss_grad(*args)[1]
    return gW1, gb1, A.T @ r, gb2


def mlp_backprop(signal):
    """A wrong MLP gradient whose layer-1 signal is signal(r W2ᵀ, Z, A) instead of the mask."""
    def fn(X, y, W1, b1, W2, b2):
        n, Z, A, r = mlp_parts(X, y, W1, b1, W2, b2)
        delta = signal(np.outer(r, W2), Z, A)
        return X.T @ delta / n, delta.sum(axis=0) / n, A.T @ r / n, r.sum() / n
    return fn


def mlp_w2_column(*args):
    gW1, gb1, gW2, gb2 = reference.mlp_loss_grad(*args)[1]
    return gW1, gb1, gW2.reshape(-1, 1), gb2


def mlp_b1_not_summed(X, y, W1, b1, W2, b2):
    n, Z, A, r = mlp_parts(X, y, W1, b1, W2, b2)
    gW1, _, gW2, gb2 = reference.mlp_loss_grad(X, y, W1, b1, W2, b2)[1]
    return gW1, np.outer(r, W2) * (Z > 0) / n, gW2, gb2


def mlp_w1_transposed(*args):
    gW1, gb1, gW2, gb2 = reference.mlp_loss_grad(*args)[1]
    return gW1.T, gb1, gW2, gb2


def mlp_w2_from_z(X, y, W1, b1, W2, b2):
    n, Z, A, r = mlp_parts(X, y, W1, b1, W2, b2)
    gW1, gb1, _, gb2 = reference.mlp_loss_grad(X, y, W1, b1, W2, b2)[1]
    return gW1, gb1, Z.T @ r / n, gb2


def prox_sign(w, grad, w_server, lr, mu):
    return w - lr * (grad + mu * (w_server - w))


def prox_half(w, grad, w_server, lr, mu):
    return w - lr * (grad + mu / 2 * (w - w_server))


def prox_norm(w, grad, w_server, lr, mu):
    return w - lr * (grad + mu * (w - w_server) / np.linalg.norm(w - w_server))


def prox_no_mu(w, grad, w_server, lr, mu):
    return w - lr * grad


def prox_no_lr(w, grad, w_server, lr, mu):
    return w - (grad + mu * (w - w_server))


def prox_in_place(w, grad, w_server, lr, mu):
    w -= lr * (grad + mu * (w - w_server))
    return w


def bytes_float32(num_params, num_selected, algorithm):
    return 4 * num_params * num_selected, 4 * num_params * num_selected


def bytes_no_participants(num_params, num_selected, algorithm):
    return 8 * num_params, 8 * num_params


def bytes_up_only(num_params, num_selected, algorithm):
    return 8 * num_params * num_selected, 0


def bytes_total(num_params, num_selected, algorithm):
    return 16 * num_params * num_selected


def bytes_bits(num_params, num_selected, algorithm):
    return 64 * num_params * num_selected, 64 * num_params * num_selected


WRONG = [  # (checker, wrong answer, words the verdict must contain)
    ("linear_gradient", grad_sign, ["grad_w", "sign"]),
    ("linear_gradient", grad_sum, ["1/n"]),
    ("linear_gradient", grad_factor_2, ["1/2"]),
    ("linear_gradient", grad_no_bias, ["bias", "y_hat = X w + b"]),
    ("linear_gradient", grad_b_zero, ["grad_b", "bias gradient"]),
    ("linear_gradient", grad_per_example, ["shape (6,)", "one value per example"]),
    ("linear_gradient", grad_column, ["shape (3, 1)", "1-D"]),
    ("linear_gradient", grad_transposed, ["transpose", "X.T @ r"]),
    ("linear_gradient", grad_off, ["largest error", "Recall"]),
    ("linear_loss", loss_no_half, ["1/2"]),
    ("linear_loss", loss_sum_form, ["article's sum form", "divide by n"]),
    ("linear_loss", loss_sum_of_squares, ["sum of squares", "2n"]),
    ("linear_loss", loss_rmse, ["RMSE", "square root"]),
    ("linear_loss", loss_not_squared, ["squared"]),
    ("linear_loss", loss_no_bias, ["bias"]),
    ("linear_loss", loss_per_example, ["single number", "one loss per example"]),
    ("gradient_descent_step", step_ascent, ["sign", "ascent"]),
    ("gradient_descent_step", step_no_lr, ["learning rate", "lr"]),
    ("gradient_descent_step", step_in_place, ["in place", "caller's w"]),
    ("gradient_descent_step", step_b_fixed, ["b_new", "bias"]),
    ("divergence_threshold", threshold_no_bias, ["bias column"]),
    ("divergence_threshold", threshold_no_mean, ["1/n"]),
    ("divergence_threshold", threshold_one_over, ["1/λ_max", "2/λ_max"]),
    ("divergence_threshold", threshold_lambda_min, ["smallest eigenvalue"]),
    ("weighted_average", average_unweighted, ["plain mean", "weighted"]),
    ("weighted_average", average_not_normalised, ["not normalised", "Σ n_k"]),
    ("weighted_average", average_over_k, ["divided by K", "Σ n_k"]),
    ("weighted_average", average_in_place, ["in place", "caller's updates"]),
    ("weighted_average", average_not_summed, ["one row per participant"]),
    ("mlp_gradient", mlp_sign, ["grad_W1", "sign"]),
    ("mlp_gradient", mlp_w2_sum, ["grad_W2", "1/n"]),
    ("mlp_gradient", mlp_backprop(lambda g, Z, A: g), ["grad_W1", "ReLU derivative", "mask"]),
    ("mlp_gradient", mlp_backprop(lambda g, Z, A: g * A), ["grad_W1", "A = relu(Z)", "mask"]),
    ("mlp_gradient", mlp_backprop(lambda g, Z, A: g * Z), ["grad_W1", "by Z", "mask"]),
    ("mlp_gradient", mlp_w2_column, ["grad_W2", "shape (5, 1)", "1-D"]),
    ("mlp_gradient", mlp_b1_not_summed, ["grad_b1", "one row per example"]),
    ("mlp_gradient", mlp_w1_transposed, ["grad_W1", "transpose"]),
    ("mlp_gradient", mlp_w2_from_z, ["grad_W2", "A = relu(Z)"]),
    ("fedprox_step", prox_sign, ["proximal term", "sign"]),
    ("fedprox_step", prox_half, ["1/2"]),
    ("fedprox_step", prox_norm, ["squared norm"]),
    ("fedprox_step", prox_no_mu, ["mu is ignored"]),
    ("fedprox_step", prox_no_lr, ["learning rate"]),
    ("fedprox_step", prox_in_place, ["in place", "caller's w"]),
    ("bytes_per_round", bytes_float32, ["float32"]),
    ("bytes_per_round", bytes_no_participants, ["num_selected"]),
    ("bytes_per_round", bytes_up_only, ["bytes_down", "one direction"]),
    ("bytes_per_round", bytes_total, ["2 values", "bytes_up, bytes_down"]),
    ("bytes_per_round", bytes_bits, ["bits"]),
]


# --------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("checker", CHECKERS)
def test_accepts_the_reference_solution(capsys, checker):
    contract.assert_accepted(*run(capsys, checker, getattr(solutions, checker)))


@pytest.mark.parametrize("checker, fn, words", WRONG, ids=[w[1].__name__ for w in WRONG])
def test_names_the_mistake(capsys, checker, fn, words):
    contract.assert_rejected(*run(capsys, checker, fn), words)




def wrong_arity(X):
    return X


@pytest.mark.parametrize("checker", CHECKERS)
@pytest.mark.parametrize("fn, words", [
    (stub_none, ["returned None", "stub"]),
    (stub_not_implemented, ["still the stub", "NotImplementedError"]),
    (crashes, ["raised ZeroDivisionError: division by zero"]),
    (wrong_arity, ["raised TypeError"]),
    (None, ["pass your function itself", "you passed None"]),
    ("not a function", ["you passed a str"]),
], ids=["none", "not_implemented", "crash", "wrong_arity", "None", "str"])
def test_stubs_and_crashes_give_a_verdict_not_an_exception(capsys, checker, fn, words):
    if checker == "divergence_threshold" and fn is wrong_arity:
        fn = lambda X, y: X  # noqa: E731 (this checker's fn takes one argument)
    contract.assert_rejected(*run(capsys, checker, fn), words)


@pytest.mark.parametrize("checker", CHECKERS)
def test_output_is_deterministic(capsys, checker):
    contract.assert_deterministic(capsys, checks, checker, getattr(solutions, checker))


def test_wrong_shapes_in_a_product_get_a_shape_hint(capsys):
    ok, out = run(capsys, "linear_gradient", lambda X, y, w, b: (X @ (X @ w + b - y), 0.0))
    assert ok is False
    assert "ValueError" in out and "Hint: print the .shape" in out and "X (6, 3)" in out


def test_wrong_return_type_is_described(capsys):
    ok, out = run(capsys, "linear_loss", lambda X, y, w, b: "0.5")
    assert ok is False and "should be a number" in out and "a str" in out
    ok, out = run(capsys, "linear_gradient", lambda X, y, w, b: (None, 0.0))
    assert ok is False and "grad_w is None" in out


def test_scalars_may_come_as_numpy_or_size_one_arrays(capsys):
    def grad(X, y, w, b):
        grad_w, grad_b = solutions.linear_gradient(X, y, w, b)
        return grad_w, np.array([grad_b])
    assert run(capsys, "linear_gradient", grad)[0] is True
    assert run(capsys, "bytes_per_round",
               lambda p, k, a: (np.int64(8 * p * k), 8.0 * p * k))[0] is True


def test_checkers_leave_numpy_state_alone(capsys):
    """Silencing the student's warnings must not leak out of the checker."""
    before = np.geterr()
    run(capsys, "fedprox_step", lambda w, grad, w_server, lr, mu: w / 0)
    assert np.geterr() == before


def test_failure_found_only_on_a_small_case_is_reported_with_that_case(capsys):
    """A gradient right for n > 1 but wrong for n = 1 names the n = 1 case."""
    def grad(X, y, w, b):
        grad_w, grad_b = solutions.linear_gradient(X, y, w, b)
        return (grad_w + 1.0 if len(y) == 1 else grad_w), grad_b
    ok, out = run(capsys, "linear_gradient", grad)
    assert ok is False and "X of shape (1, 3)" in out
