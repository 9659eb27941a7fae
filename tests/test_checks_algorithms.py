"""Tests of fedlite.checks_algorithms (notebook 07): each checker accepts the reference solution
and other correct forms, names each typical mistake, survives stubs, crashes and hostile
answers, catches cheats (a table of the fixed answers, fedlite's own SCAFFOLD or server Adam),
and prints the same text every time for a wrong answer."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import load_solutions

from fedlite import checks_algorithms as checks
from fedlite.algorithms import Scaffold
from fedlite.algorithms.server_optimizers import ServerAdam

solutions = load_solutions("algorithm_exercises.py")

CHECKERS = ["scaffold_step", "control_update", "adam_server_step"]


# ------------------------------------------------------------------ typical wrong answers

def step_flipped(y, grad, c_k, c, lr):
    return y - lr * (grad + c_k - c)


def step_fedavg(y, grad, c_k, c, lr):
    return y - lr * grad


def step_no_c(y, grad, c_k, c, lr):
    return y - lr * (grad - c_k)


def step_no_c_k(y, grad, c_k, c, lr):
    return y - lr * (grad + c)


def step_lr_outside(y, grad, c_k, c, lr):
    return y - lr * grad - (c - c_k)


def step_uphill(y, grad, c_k, c, lr):
    return y + lr * (grad - c_k + c)


def step_no_lr(y, grad, c_k, c, lr):
    return y - (grad - c_k + c)


def step_only_step(y, grad, c_k, c, lr):
    return lr * (grad - c_k + c)


def step_in_place(y, grad, c_k, c, lr):
    y -= lr * (grad - c_k + c)
    return y


def control_sign(c_k, c, x, y, num_steps, lr):
    return c_k - c + (y - x) / (num_steps * lr)


def control_c_sign(c_k, c, x, y, num_steps, lr):
    return c_k + c + (x - y) / (num_steps * lr)


def control_no_c(c_k, c, x, y, num_steps, lr):
    return c_k + (x - y) / (num_steps * lr)


def control_delta(c_k, c, x, y, num_steps, lr):
    return -c + (x - y) / (num_steps * lr)


def control_mean_gradient(c_k, c, x, y, num_steps, lr):
    return (x - y) / (num_steps * lr)


def control_no_steps(c_k, c, x, y, num_steps, lr):
    return c_k - c + (x - y) / lr


def control_no_lr(c_k, c, x, y, num_steps, lr):
    return c_k - c + (x - y) / num_steps


def adam(m_rule=None, v_rule=None, update=None):
    """A server Adam with one rule replaced: m_rule(m, delta, b1), v_rule(v, delta, b2),
    update(theta, m_new, v_new, lr, tau, m, v, b1, b2)."""
    def fn(theta, delta, m, v, server_lr, beta1, beta2, tau):
        m_new = (m_rule or (lambda m, d, b: b * m + (1 - b) * d))(m, delta, beta1)
        v_new = (v_rule or (lambda v, d, b: b * v + (1 - b) * d * d))(v, delta, beta2)
        step = update or (lambda th, mn, vn, lr, t, *_: th + lr * mn / (np.sqrt(vn) + t))
        return step(theta, m_new, v_new, server_lr, tau, m, v, beta1, beta2), m_new, v_new
    return fn


def adam_swapped(theta, delta, m, v, server_lr, beta1, beta2, tau):
    return solutions.adam_server_step(theta, delta, m, v, server_lr, beta2, beta1, tau)


adam_descends = adam(update=lambda th, mn, vn, lr, t, *_: th - lr * mn / (np.sqrt(vn) + t))
adam_bias_corrected = adam(update=lambda th, mn, vn, lr, t, m, v, b1, b2: th + lr * (
    mn / (1 - b1)) / (np.sqrt(vn / (1 - b2)) + t))
adam_tau_inside = adam(update=lambda th, mn, vn, lr, t, *_: th + lr * mn / np.sqrt(vn + t))
adam_no_root = adam(update=lambda th, mn, vn, lr, t, *_: th + lr * mn / (vn + t))
adam_no_tau = adam(update=lambda th, mn, vn, lr, t, *_: th + lr * mn / np.sqrt(vn))
adam_old_moments = adam(update=lambda th, mn, vn, lr, t, m, v, *_: th + lr * m / (np.sqrt(v) + t))
adam_v_unsquared = adam(v_rule=lambda v, d, b: b * v + (1 - b) * d)
adam_m_sum = adam(m_rule=lambda m, d, b: b * m + d)
adam_v_sum = adam(v_rule=lambda v, d, b: b * v + d * d)
adam_yogi = adam(v_rule=lambda v, d, b: v - (1 - b) * d * d * np.sign(v - d * d))
adam_adagrad = adam(v_rule=lambda v, d, b: v + d * d)


def adam_in_place(theta, delta, m, v, server_lr, beta1, beta2, tau):
    m *= beta1
    m += (1 - beta1) * delta
    v_new = beta2 * v + (1 - beta2) * delta ** 2
    return theta + server_lr * m / (np.sqrt(v_new) + tau), m, v_new


WRONG = [  # (checker, wrong answer, words the verdict must contain, words it must not)
    ("scaffold_step", step_flipped, ["wrong way"], []),
    ("scaffold_step", step_fedavg, ["plain FedAvg step"], []),
    ("scaffold_step", step_no_c, ["server's control variate c is missing"], []),
    ("scaffold_step", step_no_c_k, ["own control variate c_k is missing"], []),
    ("scaffold_step", step_lr_outside, ["lr must scale the correction"], []),
    ("scaffold_step", step_uphill, ["uphill"], []),
    ("scaffold_step", step_no_lr, ["learning rate is missing"], []),
    ("scaffold_step", step_only_step, ["only the step"], []),
    ("scaffold_step", step_in_place, ["in place", "caller's y"], []),
    ("control_update", control_sign, ["model change has the wrong sign"], []),
    ("control_update", control_c_sign, ["c enters with the wrong sign"], []),
    ("control_update", control_no_c, ["c is not taken out"], []),
    ("control_update", control_delta, ["change of c_k", "return the new c_k"], []),
    ("control_update", control_mean_gradient, ["mean of the corrected gradients"], []),
    ("control_update", control_no_steps, ["number of local steps is missing"], []),
    ("control_update", control_no_lr, ["learning rate is missing"], []),
    ("adam_server_step", adam_descends, ["theta_new", "wrong sign"], []),
    ("adam_server_step", adam_bias_corrected, ["bias correction"], []),
    ("adam_server_step", adam_tau_inside, ["outside the square root"], []),
    ("adam_server_step", adam_no_root, ["square root of v is missing"], []),
    ("adam_server_step", adam_no_tau, ["tau is missing"], []),
    ("adam_server_step", adam_old_moments, ["old m and v"], []),
    ("adam_server_step", adam_v_unsquared, ["squared changes"], []),
    ("adam_server_step", adam_m_sum, ["1 - beta1"], []),
    ("adam_server_step", adam_v_sum, ["1 - beta2"], []),
    ("adam_server_step", adam_swapped, ["swapped"], []),
    ("adam_server_step", adam_yogi, ["FedYogi"], []),
    ("adam_server_step", adam_adagrad, ["FedAdagrad"], []),
    ("adam_server_step", adam_in_place, ["in place", "caller's m"], []),
]


# --------------------------------------------------------------------------------- tests

def adam_as_lists(theta, delta, m, v, server_lr, beta1, beta2, tau):
    out = solutions.adam_server_step(theta, delta, m, v, server_lr, beta1, beta2, tau)
    return [list(value) for value in out]


OTHER_FORMS = [  # correct answers written differently from the solution
    ("scaffold_step", lambda y, grad, c_k, c, lr: y - lr * grad + lr * c_k - lr * c),
    ("scaffold_step", lambda y, grad, c_k, c, lr: (y - lr * (grad - c_k + c)).tolist()),
    ("control_update", lambda c_k, c, x, y, K, lr: c_k - c + (x - y) / K / lr),
    ("control_update", lambda c_k, c, x, y, K, lr: c_k + ((x - y) / (K * lr) - c)),
    ("adam_server_step", adam()),
    ("adam_server_step", adam_as_lists),
]


def _call_scaffold_fit(c_k, c, x, y, num_steps, lr):
    """Reaches for fedlite's own SCAFFOLD participant, whose fit computes the new c_k."""
    class Model:  # a model whose gradient makes the local path end at y
        def loss_grad(self, X, y_rows, theta):
            return 0.0, (x - y) / (num_steps * lr) - (c - c_k)  # minus the correction
    config = {"batch_size": None, "local_epochs": num_steps, "mu": 0.0, "lr": lr}
    result = Scaffold().fit(Model(), np.zeros((1, 1)), np.zeros(1), x, config, 0, 1,
                            {"control": c_k}, {"control": c})
    return result.state["control"]


def adam_via_fedlite(theta, delta, m, v, server_lr, beta1, beta2, tau):
    optimizer = ServerAdam(server_lr, beta1, beta2, tau)
    theta_new, state = optimizer.step(theta, theta + delta, {"m": m, "v": v})
    return theta_new, state["m"], state["v"]


CALLS_FEDLITE = [  # (checker, an answer that calls the library, the name the verdict gives)
    ("control_update", _call_scaffold_fit, "fedlite.algorithms.scaffold.Scaffold.fit"),
    ("adam_server_step", adam_via_fedlite,
     "fedlite.algorithms.server_optimizers.ServerAdaptive.step"),
]


class TestContract(contract.CheckerContract):
    checks, solutions, checkers = checks, solutions, CHECKERS
    wrong, calls_fedlite, other_forms = WRONG, CALLS_FEDLITE, OTHER_FORMS


def test_the_cheats_compute_the_right_answer_so_only_the_call_is_caught():
    """The two answers that call fedlite would pass on their values: the verdict is about the
    call."""
    args = checks._EXERCISES["control_update"].cases()[0][1]
    np.testing.assert_allclose(_call_scaffold_fit(**args), solutions.control_update(**args),
                               rtol=1e-12)
    args = checks._EXERCISES["adam_server_step"].cases()[0][1]
    for got, want in zip(adam_via_fedlite(**args), solutions.adam_server_step(**args)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_right_answer_on_the_fixed_shapes_only_is_caught_with_its_case(capsys):
    def step(y, grad, c_k, c, lr):
        right = solutions.scaffold_step(y, grad, c_k, c, lr)
        return right if len(y) in (4, 2, 3) and lr in (0.1, 0.05, 0.3) else y - lr * grad
    for _ in range(5):  # a fresh case of another shape or lr comes up within 10 cases
        result, out = contract.run(capsys, checks, "scaffold_step", step)
        if not result:
            contract.assert_rejected(result, out, ["a fresh random case", "The case: step("])
            return
    pytest.fail("five runs of 10 fresh cases never left the fixed shapes")
