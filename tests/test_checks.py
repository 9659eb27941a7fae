"""Tests of fedlite.checks: each checker accepts the reference solution and its other correct
forms, names each typical mistake only when the answer fits it on every case, survives stubs,
crashes and hostile answers, catches cheats (a table of the fixed answers, fedlite's own
function, a replaced oracle), and prints the same text every time for a wrong answer."""
import decimal
import fractions
import re

import numpy as np
import pytest

import checker_contract as contract
import naive
from checker_contract import load_solutions

import fedlite
from fedlite import checks, federated, reference
from fedlite.reference import linear_loss_grad as imported_early

solutions = load_solutions("exercises.py")

CHECKERS = ["linear_gradient", "linear_loss", "gradient_descent_step", "divergence_threshold",
            "weighted_average", "mlp_gradient", "fedprox_step", "bytes_per_round"]


def run(capsys, checker, fn):
    return contract.run(capsys, checks, checker, fn)


# ------------------------------------------------------------------ typical wrong answers

def linear_parts(X, y, w, b):
    n = len(y)
    return n, X @ w + b - y, *naive.linear_loss_grad(X, y, w, b)


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
    return tuple(-g for g in naive.mlp_loss_grad(*args)[1])


def mlp_w2_sum(*args):
    n, _, A, r = mlp_parts(*args)
    gW1, gb1, _, gb2 = naive.mlp_loss_grad(*args)[1]
    return gW1, gb1, A.T @ r, gb2


def mlp_backprop(signal):
    """A wrong MLP gradient whose layer-1 signal is signal(r W2ᵀ, Z, A) instead of the mask."""
    def fn(X, y, W1, b1, W2, b2):
        n, Z, A, r = mlp_parts(X, y, W1, b1, W2, b2)
        delta = signal(np.outer(r, W2), Z, A)
        return X.T @ delta / n, delta.sum(axis=0) / n, A.T @ r / n, r.sum() / n
    return fn


def mlp_w2_column(*args):
    gW1, gb1, gW2, gb2 = naive.mlp_loss_grad(*args)[1]
    return gW1, gb1, gW2.reshape(-1, 1), gb2


def mlp_b1_not_summed(X, y, W1, b1, W2, b2):
    n, Z, A, r = mlp_parts(X, y, W1, b1, W2, b2)
    gW1, _, gW2, gb2 = naive.mlp_loss_grad(X, y, W1, b1, W2, b2)[1]
    return gW1, np.outer(r, W2) * (Z > 0) / n, gW2, gb2


def mlp_w1_transposed(*args):
    gW1, gb1, gW2, gb2 = naive.mlp_loss_grad(*args)[1]
    return gW1.T, gb1, gW2, gb2


def mlp_w2_from_z(X, y, W1, b1, W2, b2):
    n, Z, A, r = mlp_parts(X, y, W1, b1, W2, b2)
    gW1, gb1, _, gb2 = naive.mlp_loss_grad(X, y, W1, b1, W2, b2)[1]
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


def loss_over_d(X, y, w, b):
    r = X @ w + b - y
    return r @ r / (2 * X.shape[1])


def grad_over_d(X, y, w, b):
    r = X @ w + b - y
    return X.T @ r / X.shape[1], r.sum() / X.shape[1]


def threshold_eigvals_first(X):
    A = np.column_stack([X, np.ones(len(X))])
    return 2 / np.linalg.eigvals(A.T @ A / len(X))[0].real


def threshold_eigh_first(X):
    A = np.column_stack([X, np.ones(len(X))])
    return 2 / np.linalg.eigh(A.T @ A / len(X))[0][0]


def bytes_k_minus_1(num_params, num_selected, algorithm):
    return 8 * num_params * (num_selected - 1), 8 * num_params * (num_selected - 1)


WRONG = [  # (checker, wrong answer, words the verdict must contain, words it must not)
    ("linear_gradient", grad_sign, ["grad_w", "sign"], []),
    ("linear_gradient", grad_sum, ["1/n"], []),
    ("linear_gradient", grad_factor_2, ["1/2"], []),
    ("linear_gradient", grad_no_bias, ["bias", "y_hat = X w + b"], []),
    ("linear_gradient", grad_b_zero, ["grad_b", "bias gradient"], []),
    ("linear_gradient", grad_per_example, ["shape (7,)", "one value per example"], []),
    ("linear_gradient", grad_column, ["shape (3, 1)", "1-D"], []),
    ("linear_gradient", grad_transposed, ["transpose", "X.T @ r"], []),
    ("linear_gradient", grad_over_d, ["divided by d", "X.shape[0]"], ["1/2"]),
    ("linear_gradient", grad_off, ["largest error", "The gradient, by hand"], ["Recall"]),
    ("linear_loss", loss_no_half, ["1/2"], []),
    ("linear_loss", loss_sum_form, ["article's sum form", "divide by n"], []),
    ("linear_loss", loss_sum_of_squares, ["sum of squares", "2n"], []),
    ("linear_loss", loss_over_d, ["divided by d", "X.shape[0]"], ["1/2"]),  # issue 14
    ("linear_loss", loss_rmse, ["RMSE", "square root"], []),
    ("linear_loss", loss_not_squared, ["squared"], []),
    ("linear_loss", loss_no_bias, ["bias"], []),
    ("linear_loss", loss_per_example, ["single number", "one loss per example"], []),
    ("gradient_descent_step", step_ascent, ["sign", "ascent"], []),
    ("gradient_descent_step", step_no_lr, ["learning rate", "lr"], []),
    ("gradient_descent_step", step_in_place, ["in place", "caller's w"], []),
    ("gradient_descent_step", step_b_fixed, ["b_new", "bias"], []),
    ("divergence_threshold", threshold_no_bias, ["bias column"], []),
    ("divergence_threshold", threshold_no_mean, ["1/n"], []),
    ("divergence_threshold", threshold_one_over, ["1/λ_max", "twice"], []),
    ("divergence_threshold", threshold_lambda_min, ["smallest eigenvalue"], []),
    ("divergence_threshold", threshold_eigh_first, ["smallest eigenvalue"], []),
    ("divergence_threshold", threshold_eigvals_first, ["no particular order"], []),  # issue 14
    ("weighted_average", average_unweighted, ["plain mean", "weighted"], []),
    ("weighted_average", average_not_normalised, ["not normalised", "total number"], []),
    ("weighted_average", average_over_k, ["divided by K", "total number"], []),
    ("weighted_average", average_in_place, ["in place", "caller's updates"], []),
    ("weighted_average", average_not_summed, ["one row per participant"], []),
    ("mlp_gradient", mlp_sign, ["grad_W1", "sign"], []),
    ("mlp_gradient", mlp_w2_sum, ["grad_W2", "1/n"], []),
    ("mlp_gradient", mlp_backprop(lambda g, Z, A: g), ["grad_W1", "ReLU derivative", "mask"], []),
    ("mlp_gradient", mlp_backprop(lambda g, Z, A: g * A), ["grad_W1", "A = relu(Z)", "mask"], []),
    ("mlp_gradient", mlp_backprop(lambda g, Z, A: g * Z), ["grad_W1", "by Z", "mask"], []),
    ("mlp_gradient", mlp_w2_column, ["grad_W2", "shape (5, 1)", "1-D"], []),
    ("mlp_gradient", mlp_b1_not_summed, ["grad_b1", "one row per example"], []),
    ("mlp_gradient", mlp_w1_transposed, ["grad_W1", "transpose"], []),
    ("mlp_gradient", mlp_w2_from_z, ["grad_W2", "A = relu(Z)"], []),
    ("fedprox_step", prox_sign, ["proximal term", "sign"], []),
    ("fedprox_step", prox_half, ["1/2"], []),
    ("fedprox_step", prox_norm, ["squared norm"], []),
    ("fedprox_step", prox_no_mu, ["mu is ignored"], []),
    ("fedprox_step", prox_no_lr, ["learning rate"], []),
    ("fedprox_step", prox_in_place, ["in place", "caller's w"], []),
    ("bytes_per_round", bytes_float32, ["float32"], []),
    ("bytes_per_round", bytes_no_participants, ["num_selected"], []),
    ("bytes_per_round", bytes_up_only, ["bytes_down", "one direction"], []),
    ("bytes_per_round", bytes_total, ["2 values", "bytes_up, bytes_down"], []),
    ("bytes_per_round", bytes_bits, ["bits"], []),
    ("bytes_per_round", bytes_k_minus_1, ["is off", "What a round costs"],  # issue 14
     ["one direction"]),
    ("bytes_per_round", lambda p, k, a: (0, 0), ["is off"], ["one direction"]),
]


CALLS_FEDLITE = [  # (checker, an answer that calls the library, the name the verdict gives)
    ("linear_gradient", lambda X, y, w, b: fedlite.linear_loss_grad(X, y, w, b)[1:],
     "fedlite.models.linear_loss_grad"),
    ("linear_gradient", lambda X, y, w, b: imported_early(X, y, w, b)[1:],
     "fedlite.reference.linear_loss_grad"),
    ("linear_loss", lambda X, y, w, b: reference.linear_loss_grad(X, y, w, b)[0],
     "fedlite.reference.linear_loss_grad"),
    ("mlp_gradient", lambda *args: fedlite.mlp_loss_grad(*args)[1],
     "fedlite.models.mlp_loss_grad"),
    ("weighted_average", lambda updates, num_examples: federated.aggregate_fit(
        [(np.asarray(u), n, {}) for u, n in zip(updates, num_examples)]),
     "fedlite.federated.aggregate_fit"),
]


OTHER_FORMS = [  # correct answers written differently from the solution
    ("linear_gradient", lambda *a: [solutions.linear_gradient(*a)[0].tolist(),
                                    np.array([solutions.linear_gradient(*a)[1]])]),
    ("linear_loss", lambda *a: fractions.Fraction(solutions.linear_loss(*a))),
    ("linear_loss", lambda *a: decimal.Decimal(float(solutions.linear_loss(*a)))),
    ("linear_loss", lambda *a: np.float32(solutions.linear_loss(*a))),
    ("bytes_per_round", lambda p, k, a: (np.int64(8 * p * k), 8.0 * p * k)),
    ("bytes_per_round", lambda p, k, a: np.array([8 * p * k, 8 * p * k])),
    ("bytes_per_round", lambda p, k, a: [decimal.Decimal(8 * p * k)] * 2),
    ("divergence_threshold", lambda X: 2 / np.linalg.eigvalsh(
        np.column_stack([X, np.ones(len(X))]) @ np.column_stack([X, np.ones(len(X))]).T
        / len(X)).max()),  # the n x n matrix A Aᵀ / n has the same largest eigenvalue
    ("weighted_average", lambda u, n: np.average(u, axis=0, weights=n)),
]


class TestContract(contract.CheckerContract):
    checks, solutions, checkers = checks, solutions, CHECKERS
    wrong, calls_fedlite, other_forms = WRONG, CALLS_FEDLITE, OTHER_FORMS


# ------------------------------------------------------------------ beyond the contract

@pytest.mark.parametrize("checker", CHECKERS)
def test_a_function_taking_the_wrong_arguments_gets_a_verdict(capsys, checker):
    fn = (lambda X, y: X) if checker == "divergence_threshold" else (lambda X: X)
    contract.assert_rejected(*run(capsys, checker, fn), ["raised TypeError"])


def test_a_function_right_only_on_the_fixed_shapes_is_caught_with_its_case(capsys):
    def grad(X, y, w, b):
        grad_w, grad_b = solutions.linear_gradient(X, y, w, b)
        return grad_w, (grad_b if X.shape in [(7, 3), (4, 4), (5, 2), (1, 3)] else 0.0)
    result, out = run(capsys, "linear_gradient", grad)
    contract.assert_rejected(result, out, ["grad_b is off (on a fresh random case, X of shape",
                                           "The case: grad(X=np.array("])
    assert set(result.case) == {"X", "y", "w", "b"}


@pytest.mark.parametrize("value", [decimal.Decimal("0.18"), fractions.Fraction(18, 100)])
def test_decimal_and_fraction_answers_are_judged_as_the_numbers_they_are(capsys, value):
    contract.assert_rejected(*run(capsys, "linear_loss", lambda *args: value),
                             ["your answer is off", "largest error"], ["should be"])


def test_an_answer_that_replaces_the_reference_is_caught_and_undone(capsys):
    original = reference.linear_loss_grad

    def cheat(X, y, w, b):
        reference.linear_loss_grad = lambda *args: (0.0, np.zeros(X.shape[1]), 0.0)
        return np.zeros(X.shape[1]), 0.0
    contract.assert_rejected(*run(capsys, "linear_gradient", cheat),
                             ["replaced fedlite.reference.linear_loss_grad", "put it back"])
    assert reference.linear_loss_grad is original


def test_the_oracle_is_not_fedlites_reference(capsys, monkeypatch):
    """A reference replaced before the check (e.g. in an earlier cell) does not move the
    checker's answers: an answer built on the replaced one is judged against the maths."""
    def doubled(X, y, w, b):
        loss, grad_w, grad_b = naive.linear_loss_grad(X, y, w, b)
        return loss, 2 * grad_w, 2 * grad_b
    monkeypatch.setattr(reference, "linear_loss_grad", doubled)
    contract.assert_rejected(*run(capsys, "linear_gradient",
                                  lambda X, y, w, b: reference.linear_loss_grad(X, y, w, b)[1:]),
                             ["twice too big"])


@pytest.mark.parametrize("seed", range(3))
def test_the_checkers_maths_agrees_with_fedlite_reference(seed):
    rng = np.random.default_rng(seed)
    X, y, w, b = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=3), 0.7
    want = reference.linear_loss_grad(X, y, w, b)
    np.testing.assert_allclose(checks._EXERCISES["linear_loss"].answer(
        dict(X=X, y=y, w=w, b=b)).right[0], want[0], rtol=1e-12)
    for got, expected in zip(checks._EXERCISES["linear_gradient"].answer(
            dict(X=X, y=y, w=w, b=b)).right, want[1:]):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    params = dict(W1=rng.normal(size=(3, 4)), b1=rng.normal(size=4), W2=rng.normal(size=4),
                  b2=0.3)
    right = checks._EXERCISES["mlp_gradient"].answer(dict(X=X, y=y, **params)).right
    for got, expected in zip(right, reference.mlp_loss_grad(X, y, *params.values())[1]):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_a_function_that_prints_is_judged_and_its_printing_kept_out(capsys):
    def noisy(*args):
        print("debugging", args)
        return solutions.linear_loss(*args)
    contract.assert_accepted(*run(capsys, "linear_loss", noisy))


def test_wrong_shapes_in_a_product_get_a_shape_hint(capsys):
    ok, out = run(capsys, "linear_gradient", lambda X, y, w, b: (X @ (X @ w + b - y), 0.0))
    contract.assert_rejected(ok, out, ["ValueError", "Hint: print the .shape", "X (7, 3)"])


def test_wrong_return_type_is_described(capsys):
    ok, out = run(capsys, "linear_loss", lambda X, y, w, b: "0.5")
    contract.assert_rejected(ok, out, ["should be a real number", "a str"])
    ok, out = run(capsys, "linear_gradient", lambda X, y, w, b: (None, 0.0))
    contract.assert_rejected(ok, out, ["grad_w is None"])


def test_scalars_may_come_as_numpy_or_size_one_arrays(capsys):
    def grad(X, y, w, b):
        grad_w, grad_b = solutions.linear_gradient(X, y, w, b)
        return grad_w, np.array([grad_b])
    assert run(capsys, "linear_gradient", grad)[0]


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
    contract.assert_rejected(ok, out, ["X of shape (1, 3)"])
    assert ok.case["X"].shape == (1, 3)
