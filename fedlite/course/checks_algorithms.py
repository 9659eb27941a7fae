"""Exercise checkers for drift correction and server optimisers (notebook 07).

Same contract as `fedlite.checks`: `checks_algorithms.scaffold_step(my_fn)` runs your function
on fixed cases (the same on every run) and on fresh random ones, prints "✔ Correct: ..." or
"✘ Not yet: ..." naming the usual mistake when your answer fits it on every case, returns a
`CheckResult` (true when right) and never raises, whatever your function does.  An answer that
calls fedlite's own SCAFFOLD or server optimiser is told so, and does not count.
"""
from __future__ import annotations

import numpy as np

from ._checking import CheckResult, Exercise, decimals

__all__ = ["CheckResult", "adam_server_step", "control_update", "scaffold_step"]

SEED = 0  # the fixed cases are drawn with this seed

LIBRARY_SCAFFOLD = ("fedlite.algorithms.scaffold.Scaffold.fit",
                    "fedlite.algorithms.scaffold.Scaffold.fit_selected",
                    "fedlite.algorithms.base.LocalSGD.local_sgd")


# ------------------------------------------------------------------ SCAFFOLD: one local step

def _step_cases():
    rng = np.random.default_rng(SEED)
    return [(f"y of shape ({d},) and lr = {lr}",
             dict(y=rng.normal(size=d), grad=rng.normal(size=d), c_k=rng.normal(size=d),
                  c=rng.normal(size=d), lr=lr)) for d, lr in [(4, 0.1), (2, 0.05), (3, 0.3)]]


def _random_step(rng):
    d, lr = int(rng.integers(1, 5)), float(rng.choice([0.05, 0.1, 0.2, 0.3]))
    return (f"a fresh random case, y of shape ({d},) and lr = {lr}",
            dict(y=decimals(rng, -2, 2, d), grad=decimals(rng, -2, 2, d),
                 c_k=decimals(rng, -2, 2, d), c=decimals(rng, -2, 2, d), lr=lr))


def _step_answers(y, grad, c_k, c, lr):
    corrected = grad - c_k + c
    return y - lr * corrected, [
        (y - lr * (grad + c_k - c), "the correction points the wrong way: it must take away "
                                    "the participant's own drift estimate and add the "
                                    "server's."),
        (y - lr * grad, "the control variates are ignored: that is a plain FedAvg step. "
                        "Correct the gradient with c_k and c."),
        (y - lr * (grad - c_k), "the server's control variate c is missing from the "
                                "correction."),
        (y - lr * (grad + c), "the participant's own control variate c_k is missing from the "
                              "correction."),
        (y - lr * grad - (c - c_k), "lr must scale the correction too: it is part of the "
                                    "gradient the step follows."),
        (y + lr * corrected, "wrong sign: that steps uphill; subtract the step."),
        (y - corrected, "the learning rate is missing: scale the corrected gradient by lr."),
        (lr * corrected, "that is only the step; return where it takes y."),
    ], {}


_SCAFFOLD_STEP = Exercise(
    outputs=(("y_new", "y"),), cases=_step_cases, random_case=_random_step,
    answers=_step_answers, library=LIBRARY_SCAFFOLD,
    praise="At SCAFFOLD's fixed point this step follows the global gradient.",
    nudge='See "The update rules" in notebook 07: which control variate belongs to the '
          'participant, which to the server, and how far one step goes.')


def scaffold_step(fn):
    """Check fn(y, grad, c_k, c, lr) -> y_new: one SCAFFOLD local step of participant k, where
    grad is the gradient of its own loss at y on the current batch."""
    return _SCAFFOLD_STEP.check(fn)


# ----------------------------------------------------- SCAFFOLD: the option-II control variate

def _control_cases():
    rng = np.random.default_rng(SEED)
    return [(f"c_k of shape ({d},), num_steps = {steps}, lr = {lr}",
             dict(c_k=rng.normal(size=d), c=rng.normal(size=d), x=rng.normal(size=d),
                  y=rng.normal(size=d), num_steps=steps, lr=lr))
            for d, steps, lr in [(3, 10, 0.05), (2, 4, 0.1), (4, 7, 0.2)]]


def _random_control(rng):
    d, steps = int(rng.integers(1, 5)), int(rng.integers(2, 21))
    lr = float(rng.choice([0.05, 0.1, 0.2]))
    return (f"a fresh random case, c_k of shape ({d},), num_steps = {steps}, lr = {lr}",
            dict(c_k=decimals(rng, -2, 2, d), c=decimals(rng, -2, 2, d),
                 x=decimals(rng, -2, 2, d), y=decimals(rng, -2, 2, d), num_steps=steps, lr=lr))


def _control_answers(c_k, c, x, y, num_steps, lr):
    mean_corrected = (x - y) / (num_steps * lr)  # the mean corrected gradient along the path
    return c_k - c + mean_corrected, [
        (c_k - c - mean_corrected, "the model change has the wrong sign: the local steps "
                                   "went downhill, against the gradients, from x to y."),
        (c_k + c + mean_corrected, "the server's c enters with the wrong sign."),
        (c_k + mean_corrected, "the server's c is not taken out: every local step added it."),
        (mean_corrected - c, "that is the change of c_k (what the participant sends), "
                             "without c_k itself: return the new c_k."),
        (mean_corrected, "that is the mean of the corrected gradients along the local path; "
                         "take out the correction that every step added."),
        (c_k - c + (x - y) / lr, "the number of local steps is missing: the model change "
                                 "adds up all the steps, and you want their mean."),
        (c_k - c + (x - y) / num_steps, "the learning rate is missing: each step moved lr "
                                        "times its gradient."),
    ], {}


_CONTROL_UPDATE = Exercise(
    outputs=(("c_k_new", "c_k"),), cases=_control_cases, random_case=_random_control,
    answers=_control_answers, library=LIBRARY_SCAFFOLD,
    praise="No extra gradient needed: option II reuses the local steps.",
    nudge='See "The update rules" in notebook 07 (option II): what the model change x - y '
          'says about the gradients along the local path.')


def control_update(fn):
    """Check fn(c_k, c, x, y, num_steps, lr) -> c_k_new: SCAFFOLD's option-II control variate of
    participant k, after num_steps local steps at lr took the server's model x to y."""
    return _CONTROL_UPDATE.check(fn)


# --------------------------------------------------------------- one FedAdam server step

def _adam_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    for d, server_lr, beta1, beta2, tau in [(3, 0.1, 0.9, 0.99, 0.01), (2, 1.0, 0.8, 0.95, 0.1),
                                            (4, 0.03, 0.5, 0.999, 0.001)]:
        cases.append((f"theta of shape ({d},), server_lr = {server_lr}, beta1 = {beta1}, "
                      f"beta2 = {beta2}, tau = {tau}",
                      dict(theta=rng.normal(size=d), delta=rng.normal(size=d),
                           m=rng.normal(size=d), v=rng.uniform(0.05, 2.0, size=d),
                           server_lr=server_lr, beta1=beta1, beta2=beta2, tau=tau)))
    return cases


def _random_adam(rng):
    d = int(rng.integers(1, 5))
    server_lr = float(rng.choice([0.01, 0.1, 1.0]))
    beta1, beta2 = float(rng.choice([0.5, 0.8, 0.9])), float(rng.choice([0.95, 0.99, 0.999]))
    tau = float(rng.choice([0.001, 0.01, 0.1]))
    return (f"a fresh random case, theta of shape ({d},), server_lr = {server_lr}, "
            f"beta1 = {beta1}, beta2 = {beta2}, tau = {tau}",
            dict(theta=decimals(rng, -2, 2, d), delta=decimals(rng, -2, 2, d),
                 m=decimals(rng, -2, 2, d), v=decimals(rng, 0.1, 2, d), server_lr=server_lr,
                 beta1=beta1, beta2=beta2, tau=tau))


def _adam_answers(theta, delta, m, v, server_lr, beta1, beta2, tau):
    def step(m_new, v_new, root=np.sqrt, eps=tau):
        return theta + server_lr * m_new / (root(v_new) + eps)

    m1 = beta1 * m + (1 - beta1) * delta
    v1 = beta2 * v + (1 - beta2) * delta ** 2
    right = (step(m1, v1), m1, v1)

    def with_v(v_new):
        return step(m1, v_new), m1, v_new

    def with_m(m_new):
        return step(m_new, v1), m_new, v1

    m_hat, v_hat = m1 / (1 - beta1), v1 / (1 - beta2)
    m_swapped = beta2 * m + (1 - beta2) * delta
    v_swapped = beta1 * v + (1 - beta1) * delta ** 2
    return right, [
        ((theta - server_lr * m1 / (np.sqrt(v1) + tau), m1, v1),
         "wrong sign: the server moves along the mean weight change (minus the "
         "pseudo-gradient), as FedAvg does."),
        ((theta + server_lr * m_hat / (np.sqrt(v_hat) + tau), m1, v1),
         "that is Kingma and Ba's bias correction (with t = 1); the server Adam of Reddi et al. "
         "has none: step with the moments as they are."),
        ((step(m1, v1, root=lambda v: np.sqrt(v + tau), eps=0.0), m1, v1),
         "tau goes outside the square root: it keeps the step finite where v is tiny."),
        ((step(m1, v1, root=lambda v: v), m1, v1),
         "the square root of v is missing: v holds squared changes."),
        ((step(m1, v1, eps=0.0), m1, v1), "tau is missing from the denominator."),
        ((step(m, v), m1, v1), "you stepped with the old m and v: update the moments first, "
                               "then step with the new ones."),
        (with_v(beta2 * v + (1 - beta2) * delta), "v must average the squared changes, "
                                                  "coordinate by coordinate."),
        (with_m(beta1 * m + delta), "the new change enters m with weight 1 - beta1: m is a "
                                    "moving average, not a sum."),
        (with_v(beta2 * v + delta ** 2), "the new squared change enters v with weight "
                                         "1 - beta2: v is a moving average, not a sum."),
        ((step(m_swapped, v_swapped), m_swapped, v_swapped),
         "beta1 and beta2 are swapped: beta1 belongs to m, beta2 to v."),
        (with_v(v - (1 - beta2) * delta ** 2 * np.sign(v - delta ** 2)),
         "that is FedYogi's second moment; FedAdam's is a moving average."),
        (with_v(v + delta ** 2), "that is FedAdagrad's second moment (a running sum); "
                                 "FedAdam's is a moving average."),
    ], {}


_ADAM_SERVER_STEP = Exercise(
    outputs=(("theta_new", "theta"), ("m_new", "m"), ("v_new", "v")),
    cases=_adam_cases, random_case=_random_adam, answers=_adam_answers,
    praise="Each coordinate's step is scaled by its own history of changes.",
    library=("fedlite.algorithms.server_optimizers.ServerAdaptive.step",
             "fedlite.algorithms.server_optimizers.ServerAdam.second_moment"),
    nudge='See "5. Server optimisers" in notebook 07: update the two moments first, then step; '
          'check which beta goes with which moment, and where tau sits.')


def adam_server_step(fn):
    """Check fn(theta, delta, m, v, server_lr, beta1, beta2, tau) -> (theta_new, m_new, v_new):
    one FedAdam server step (Reddi et al. 2021) from the mean weight change delta."""
    return _ADAM_SERVER_STEP.check(fn)


_EXERCISES = {"scaffold_step": _SCAFFOLD_STEP, "control_update": _CONTROL_UPDATE,
              "adam_server_step": _ADAM_SERVER_STEP}
