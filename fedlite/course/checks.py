"""Exercise checkers: `fedlite.checks.linear_gradient(my_fn)` prints a verdict and returns a
`CheckResult`, true when your function is right (so `if checks.linear_loss(my_fn):` works, and a
notebook shows only the verdict line).

Each checker calls your function on a few fixed cases (the same on every run, so the verdict
for a wrong answer is the same text every time), then on fresh random cases (new ones on every
call, printed when one fails, so you can paste and try it).  It computes the right answers with
its own copy of the maths, names a usual mistake (a flipped sign, a sum instead of a mean...)
only when your answer matches that mistake on every case, and otherwise says where to look in
the notebook.  Your function may return anything or raise: the checker says so and never raises
itself.  Your inputs are copies, and changing them in place is reported.  An answer that calls
the fedlite function the exercise asks you to write is told so, and does not count.
"""
from __future__ import annotations

import numpy as np

from ._checking import RAISES, CheckResult, Exercise, decimals

__all__ = ["CheckResult", "bytes_per_round", "divergence_threshold", "fedprox_step",
           "gradient_descent_step", "linear_gradient", "linear_loss", "mlp_gradient",
           "weighted_average"]

SEED = 0  # the fixed cases are drawn with this seed


# ------------------------------------------------------------------------ centralised models

def _linear_cases(shapes):
    """Seeded (label, dict(X, y, w, b)) cases, one per (n, d)."""
    rng = np.random.default_rng(SEED)
    return [(f"X of shape {(n, d)}", dict(X=rng.normal(size=(n, d)), y=rng.normal(size=n),
                                          w=rng.normal(size=d), b=float(rng.normal())))
            for n, d in shapes]


def _random_linear(rng, max_n=5, max_d=3):
    n, d = int(rng.integers(2, max_n + 1)), int(rng.integers(1, max_d + 1))
    return (f"a fresh random case, X of shape {(n, d)}",
            dict(X=decimals(rng, -2, 2, (n, d)), y=decimals(rng, -2, 2, n),
                 w=decimals(rng, -2, 2, d), b=float(decimals(rng, -2, 2))))


LIBRARY_LINEAR = ("fedlite.models.linear_loss_grad", "fedlite.reference.linear_loss_grad",
                  "fedlite.kernels.linear_loss_grad_serial",
                  "fedlite.kernels.linear_loss_grad_parallel",
                  "fedlite.federated.Participant.loss_grad")


def _linear_gradient_answers(X, y, w, b):
    (n, d), r, r0 = X.shape, X @ w + b - y, X @ w - y
    gw, gb = X.T @ r / n, r.sum() / n
    return (gw, gb), [
        ((-gw, -gb), "the sign is flipped: use r = X w + b - y (prediction - target)."),
        ((n * gw, n * gb), "n times too big: you summed over the examples. Divide by n "
                           "(the 1/n of the mean loss)."),
        ((X.T @ r / d, r.sum() / d),
         "you divided by d, the number of features (X.shape[1]); the mean is over the n "
         "examples (X.shape[0])."),
        ((2 * gw, 2 * gb), "twice too big: the 2 from the square cancels the 1/2."),
        ((gw / 2, gb / 2), "half too small: the 2 from the square cancels the 1/2."),
        ((X.T @ r0 / n, r0.mean()), "the bias is missing from the prediction: use "
                                    "y_hat = X w + b."),
        ((gw, 0.0), "the bias gradient is missing: it is the mean of the residuals."),
        ((X @ r / n, gb) if n == d else RAISES,  # X r has the shape of Xᵀ r only when n = d
         "you multiplied by X instead of its transpose: X.T @ r sums over the examples."),
    ], {("grad_w", (n,)): "That is one value per example: X.T @ r sums over them.",
        ("grad_w", (n, d)): "That is one row per example: average the rows (axis=0).",
        ("grad_w", (d, 1)): "Return a 1-D array shaped like w (e.g. with .ravel())."}


_LINEAR_GRADIENT = Exercise(
    outputs=(("grad_w", "w"), ("grad_b", "b")),
    cases=lambda: _linear_cases([(7, 3), (4, 4), (5, 2), (1, 3)]),  # n = d shows X vs Xᵀ
    random_case=_random_linear, answers=_linear_gradient_answers, library=LIBRARY_LINEAR,
    nudge='Go back to "The gradient, by hand" in notebook 01: start from the residuals, and '
          'compare the shape of each product with w.')


def linear_gradient(fn):
    """Check fn(X, y, w, b) -> (grad_w, grad_b), the gradient of fedlite's linear loss."""
    return _LINEAR_GRADIENT.check(fn)


def _linear_loss_answers(X, y, w, b):
    (n, d), r, r0 = X.shape, X @ w + b - y, X @ w - y
    loss = r @ r / (2 * n)
    fedlite = "fedlite's loss is 1/(2n) Σ (y_hat - y)²"
    unsquared = "the residuals are not squared: use the squared error (y_hat - y)**2."
    return loss, [
        (2 * loss, f"the 1/2 is missing: {fedlite}, half the mean squared error."),
        (n * loss, "that is the article's sum form ½ Σ (y_hat - y)²; fedlite uses the mean, "
                   "divide by n."),
        (2 * n * loss, f"that is the plain sum of squares; {fedlite}."),
        (n / d * loss, "you divided by d, the number of features (X.shape[1]); the mean is over "
                       "the n examples (X.shape[0])."),
        (np.sqrt(2 * loss), f"that is the RMSE, with a square root; {fedlite}, no root."),
        (np.sqrt(loss), f"there is a square root too many: {fedlite}."),
        (np.abs(r).mean() / 2, unsquared), (np.abs(r).mean(), unsquared),
        (r.mean() / 2, unsquared), (r.mean(), unsquared),
        (r0 @ r0 / (2 * n), "the bias is missing from the prediction: use y_hat = X w + b."),
    ], {("loss", (n,)): "That is one loss per example: combine them into one number."}


_LINEAR_LOSS = Exercise(
    outputs=(("loss", None),),
    cases=lambda: _linear_cases([(7, 3), (5, 2), (4, 6)]),  # n/d is not 1, 2 or n
    random_case=_random_linear, answers=_linear_loss_answers, library=LIBRARY_LINEAR,
    nudge='Compare with "The loss: the article\'s sum and fedlite\'s mean" in notebook 01: '
          'which residuals, squared, averaged over what, and the factor in front.')


def linear_loss(fn):
    """Check fn(X, y, w, b) -> fedlite's loss of the linear model, a single number."""
    return _LINEAR_LOSS.check(fn)


def _step_cases():
    rng = np.random.default_rng(SEED)
    return [(f"w of shape ({d},) and lr = {lr}",
             dict(w=rng.normal(size=d), b=float(rng.normal()), grad_w=rng.normal(size=d),
                  grad_b=float(rng.normal()), lr=lr)) for d, lr in [(3, 0.1), (2, 0.5), (5, 0.01)]]


def _random_step(rng):
    d, lr = int(rng.integers(1, 5)), float(rng.choice([0.05, 0.1, 0.2, 0.3]))
    return (f"a fresh random case, w of shape ({d},) and lr = {lr}",
            dict(w=decimals(rng, -2, 2, d), b=float(decimals(rng, -2, 2)),
                 grad_w=decimals(rng, -2, 2, d), grad_b=float(decimals(rng, -2, 2)), lr=lr))


def _step_answers(w, b, grad_w, grad_b, lr):
    w_new, b_new = w - lr * grad_w, b - lr * grad_b
    return (w_new, b_new), [
        ((w + lr * grad_w, b + lr * grad_b), "wrong sign: adding the gradient climbs the loss "
                                             "(gradient ascent); descent subtracts."),
        ((w - grad_w, b - grad_b), "the learning rate is missing: scale the gradient by lr."),
        ((lr * grad_w, lr * grad_b), "that is only the step; return where it takes w and b."),
        ((w_new, b), "b did not change: update the bias too."),
        ((w, b_new), "w did not change: update it too.")], {}


_GRADIENT_DESCENT_STEP = Exercise(
    outputs=(("w_new", "w"), ("b_new", "b")), cases=_step_cases, random_case=_random_step,
    answers=_step_answers, library=("fedlite.federated.server_update",),
    nudge='See "The update" in notebook 02: which way is downhill, and how far one step goes.')


def gradient_descent_step(fn):
    """Check fn(w, b, grad_w, grad_b, lr) -> (w_new, b_new), one step of gradient descent."""
    return _GRADIENT_DESCENT_STEP.check(fn)


def _hessian(X, bias=True, mean=True):
    """H = Aᵀ A (/ n), A = [X, 1] (or X): the Hessian of the linear model's loss."""
    A = np.column_stack([X, np.ones(len(X))]) if bias else X
    return A.T @ A / (len(X) if mean else 1)


def _threshold_cases():
    """Cases on which np.linalg.eigvals(H) lists neither the largest nor (when d > 1) the
    smallest eigenvalue first (drawn with a seed until it does not, whatever this machine's
    LAPACK), so that taking the first is caught and told apart from taking the smallest;
    columns of mean 0, 0.5 and 1, so that the bias column matters differently."""
    rng = np.random.default_rng(SEED)
    cases = []
    for (n, d), mean in [((20, 3), 0.0), ((9, 1), 0.5), ((12, 2), 1.0)]:
        while True:
            X = rng.normal(mean, 1.0, size=(n, d))
            eigenvalues = np.linalg.eigvals(_hessian(X)).real
            if 1.1 * eigenvalues.min() < eigenvalues[0] < 0.9 * eigenvalues.max() or (
                    d == 1 and eigenvalues[0] < 0.9 * eigenvalues.max()):
                break
        cases.append((f"X of shape {(n, d)}", dict(X=X)))
    return cases


def _random_threshold(rng):
    d = int(rng.integers(1, 4))
    n = int(rng.integers(d + 3, 10))
    return f"a fresh random case, X of shape {(n, d)}", dict(X=decimals(rng, -1, 2, (n, d)))


def _threshold_answers(X):
    def lr_max(**kwargs):
        return 2.0 / np.linalg.eigvalsh(_hessian(X, **kwargs))[-1]

    H = "the Hessian over (w, b) is [X, 1]ᵀ [X, 1] / n"
    return lr_max(), [
        (lr_max(bias=False), "the bias column is missing: the Hessian is over (w, b), so use "
                             "[X, 1], X with a column of ones."),
        (lr_max(mean=False), f"the 1/n is missing: for the mean loss {H}."),
        (lr_max(bias=False, mean=False), f"the bias column and the 1/n are missing: {H}."),
        (lr_max() / 2, "that is 1/λ_max; gradient descent stays stable up to twice that."),
        (2.0 / np.linalg.eigvalsh(_hessian(X))[0], "you used the smallest eigenvalue; the "
                                                   "direction that blows up first has the "
                                                   "largest, λ_max."),
        (2.0 / np.linalg.eigvals(_hessian(X))[0].real,
         "np.linalg.eigvals lists the eigenvalues in no particular order: take the largest "
         "(max), not the first."),
        (2.0 / lr_max(), "that is λ_max itself; the threshold is the learning rate it "
                         "allows.")], {}


_DIVERGENCE_THRESHOLD = Exercise(
    outputs=(("lr_max", None),), cases=_threshold_cases, random_case=_random_threshold,
    answers=_threshold_answers, praise="Any lr above this makes gradient descent diverge.",
    nudge='See "How large may the learning rate be?" in notebook 02: which matrix, and which '
          'of its eigenvalues.')


def divergence_threshold(fn):
    """Check fn(X) -> the largest learning rate at which gradient descent on fedlite's linear
    loss still converges (from the Hessian over w and b)."""
    return _DIVERGENCE_THRESHOLD.check(fn)


def _mlp_cases():
    rng = np.random.default_rng(SEED)
    return [(f"X of shape {(n, d)} and {h} hidden units",
             dict(X=rng.normal(size=(n, d)), y=rng.normal(size=n), W1=rng.normal(size=(d, h)),
                  b1=rng.normal(size=h), W2=rng.normal(size=h), b2=float(rng.normal())))
            for n, d, h in [(8, 3, 5), (6, 2, 4), (3, 2, 3)]]


def _random_mlp(rng):
    n, d, h = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(2, 5))
    while True:  # keep every pre-activation away from relu's kink at 0
        args = dict(X=decimals(rng, -1.5, 1.5, (n, d)), y=decimals(rng, -1.5, 1.5, n),
                    W1=decimals(rng, -1.5, 1.5, (d, h)), b1=decimals(rng, -1.5, 1.5, h),
                    W2=decimals(rng, -1.5, 1.5, h), b2=float(decimals(rng, -1.5, 1.5)))
        if np.abs(args["X"] @ args["W1"] + args["b1"]).min() > 0.05:
            return f"a fresh random case, X of shape {(n, d)} and {h} hidden units", args


def _mlp_answers(X, y, W1, b1, W2, b2):
    n = len(y)
    Z = X @ W1 + b1
    A = np.maximum(Z, 0.0)
    r = A @ W2 + b2 - y
    delta = np.outer(r, W2) * (Z > 0)
    grads = (X.T @ delta / n, delta.sum(axis=0) / n, A.T @ r / n, r.sum() / n)
    gW1, gb1, gW2, gb2 = grads

    def layer_1(signal):  # grad_W1, grad_b1 for a (wrongly) backpropagated signal
        return X.T @ signal / n, signal.sum(axis=0) / n

    mask = "; the ReLU derivative is the 0/1 mask (Z > 0)."
    return grads, [
        (tuple(-g for g in grads), "the sign is flipped: use r = y_hat - y "
                                   "(prediction minus target)."),
        (tuple(n * g for g in grads), "n times too big: you summed over the examples. "
                                      "Divide by n (the 1/n)."),
        (tuple(2 * g for g in grads), "twice too big: the 2 from the square cancels the 1/2."),
        ((*layer_1(np.outer(r, W2)), gW2, gb2), "the ReLU derivative is missing: multiply the "
                                                 "signal r W2ᵀ by the mask (Z > 0)."),
        ((*layer_1(np.outer(r, W2) * A), gW2, gb2), "you multiplied by A = relu(Z)" + mask),
        ((*layer_1(np.outer(r, W2) * Z), gW2, gb2), "you multiplied by Z" + mask),
        ((gW1, gb1, Z.T @ r / n, gb2), "use the activations after the ReLU, A = relu(Z)."),
        ((gW1, 0 * gb1, gW2, 0.0), "the bias gradient is missing: it is the mean over the "
                                   "examples of the signal that reaches the bias.")
    ], {("grad_W2", (len(b1), 1)): "W2 has shape (h,) here, so grad_W2 must be 1-D too.",
        ("grad_b1", Z.shape): "That is one row per example: average them over the examples."}


_MLP_GRADIENT = Exercise(
    outputs=(("grad_W1", "W1"), ("grad_b1", "b1"), ("grad_W2", "W2"), ("grad_b2", "b2")),
    cases=_mlp_cases, random_case=_random_mlp, answers=_mlp_answers,
    library=("fedlite.models.mlp_loss_grad", "fedlite.reference.mlp_loss_grad",
             "fedlite.kernels.mlp_loss_grad_serial", "fedlite.kernels.mlp_loss_grad_parallel",
             "fedlite.leakage.model_grads", "fedlite.federated.Participant.loss_grad"),
    nudge='Go back to "2. Backpropagation, derived" in notebook 04: compute Z, A and r first; '
          'each gradient has the shape of its parameter.')


def mlp_gradient(fn):
    """Check fn(X, y, W1, b1, W2, b2) -> (grad_W1, grad_b1, grad_W2, grad_b2) for the MLP
    relu(X W1 + b1) W2 + b2 with fedlite's loss, W2 of shape (h,)."""
    return _MLP_GRADIENT.check(fn)


# --------------------------------------------------------------------------------- federated

def _average_cases():
    rng = np.random.default_rng(SEED)
    return [(f"{K} participants with updates of shape ({d},)",
             dict(updates=[rng.normal(size=d) for _ in range(K)],
                  num_examples=[int(n) for n in rng.choice(np.arange(1, 100), K, replace=False)]))
            for K, d in [(3, 4), (5, 2), (2, 3)]]


def _random_average(rng):
    K, d = int(rng.integers(2, 5)), int(rng.integers(1, 4))
    return (f"a fresh random case, {K} participants with updates of shape ({d},)",
            dict(updates=[decimals(rng, -2, 2, d) for _ in range(K)],
                 num_examples=[int(n) for n in rng.choice(np.arange(1, 21), K, replace=False)]))


def _average_answers(updates, num_examples):
    U, n = np.array(updates), np.array(num_examples, dtype=float)
    total = "divide by the total number of examples"
    return n @ U / n.sum(), [
        (U.mean(axis=0), "that is the plain mean: weight each update by its num_examples "
                         "(a weighted average, as in FedAvg)."),
        (n @ U, f"the weights are not normalised: {total}."),
        (n @ U / len(U), f"you divided by K, the number of participants; {total}."),
        (U.sum(axis=0), f"that is the plain sum: weight by num_examples and {total}.")
    ], {("aggregate", U.shape): "That is one row per participant: add up the weighted updates."}


_WEIGHTED_AVERAGE = Exercise(
    outputs=(("aggregate", "each update"),), cases=_average_cases, random_case=_random_average,
    answers=_average_answers, library=("fedlite.federated.aggregate_fit",),
    nudge='See "FedSGD: the weighted mean of the gradients is the pooled gradient" in notebook '
          '03: which participants count more, and what the weights add up to.')


def weighted_average(fn):
    """Check fn(updates, num_examples) -> FedAvg's aggregate of the updates, weighted by the
    participants' numbers of examples."""
    return _WEIGHTED_AVERAGE.check(fn)


def _prox_cases():
    rng = np.random.default_rng(SEED)
    return [(f"w of shape ({d},), lr = {lr}, mu = {mu}",
             dict(w=rng.normal(size=d), grad=rng.normal(size=d), w_server=rng.normal(size=d),
                  lr=lr, mu=mu)) for d, lr, mu in [(4, 0.1, 0.5), (2, 0.05, 2.0), (3, 0.2, 0.01)]]


def _random_prox(rng):
    d = int(rng.integers(1, 5))
    lr, mu = float(rng.choice([0.05, 0.1, 0.2, 0.3])), float(rng.choice([0.1, 0.5, 2.0]))
    return (f"a fresh random case, w of shape ({d},), lr = {lr}, mu = {mu}",
            dict(w=decimals(rng, -2, 2, d), grad=decimals(rng, -2, 2, d),
                 w_server=decimals(rng, -2, 2, d), lr=lr, mu=mu))


def _prox_answers(w, grad, w_server, lr, mu):
    pull = w - w_server
    prox = "mu (w - w_server)"
    return w - lr * (grad + mu * pull), [
        (w - lr * (grad - mu * pull), "the proximal term has the wrong sign: it must pull w "
                                      "back towards w_server."),
        (w + lr * (grad + mu * pull), "wrong sign: that steps uphill; subtract the step."),
        (w - lr * (grad + mu / 2 * pull), f"the gradient of mu/2 ||w - w_server||² is {prox}: "
                                          "the 2 from the square cancels the 1/2."),
        (w - lr * (grad + mu * pull / np.linalg.norm(pull)),
         "that is the gradient of the norm ||w - w_server||; FedProx uses the squared norm."),
        (w - lr * grad, "mu is ignored: that is a plain SGD step (FedAvg); add the proximal "
                        "term's gradient to grad."),
        (w - (grad + mu * pull), "the learning rate is missing: scale the whole gradient by lr."),
        (w - lr * grad - mu * pull, "lr must scale the proximal term too.")], {}


_FEDPROX_STEP = Exercise(
    outputs=(("w_new", "w"),), cases=_prox_cases, random_case=_random_prox,
    answers=_prox_answers,
    nudge='See "3. FedProx: a leash on the local steps" in notebook 06: the gradient of the '
          'proximal term, and where the learning rate goes.')


def fedprox_step(fn):
    """Check fn(w, grad, w_server, lr, mu) -> the local weights after one FedProx step."""
    return _FEDPROX_STEP.check(fn)


def _bytes_answers(num_params, num_selected, algorithm):
    p, v = num_params, num_params * num_selected  # values sent in each direction
    return (8 * v, 8 * v), [
        ((4 * v, 4 * v), "4 bytes per value is float32; fedlite sends float64, 8 bytes each."),
        ((8 * p, 8 * p), "multiply by num_selected: each selected participant sends and "
                         "receives its own copy."),
        ((v, v), "that counts values, not bytes: a float64 value takes 8 bytes."),
        ((64 * v, 64 * v), "that counts bits: a float64 value is 8 bytes."),
        ((16 * v, 16 * v), "that counts both directions in each; bytes_up is uploads only."),
        ((8 * v, 0), "only one direction counted: the server also sends the model to each "
                     "selected participant."),
        ((0, 8 * v), "only one direction counted: each selected participant also uploads.")], {}


_BYTES_PER_ROUND = Exercise(
    outputs=(("bytes_up", None), ("bytes_down", None)),
    cases=lambda: [(f"num_params = {p}, num_selected = {k}, algorithm = {algorithm!r}",
                    dict(num_params=p, num_selected=k, algorithm=algorithm))
                   for p, k, algorithm in [(1000, 10, "fedavg"), (250, 3, "fedsgd"),
                                           (7, 5, "fedavg")]],
    random_case=lambda rng: _bytes_case(int(rng.integers(2, 5001)), int(rng.integers(2, 51)),
                                        str(rng.choice(["fedsgd", "fedavg"]))),
    answers=_bytes_answers,
    nudge='See "What a round costs" in notebook 03: what each selected participant receives '
          'and sends, and how many bytes one float64 value takes.')


def _bytes_case(p, k, algorithm):
    return (f"a fresh random case, num_params = {p}, num_selected = {k}, algorithm = "
            f"{algorithm!r}", dict(num_params=p, num_selected=k, algorithm=algorithm))


def bytes_per_round(fn):
    """Check fn(num_params, num_selected, algorithm) -> (bytes_up, bytes_down) of one round of
    fedlite's simulator, parameters sent as float64."""
    return _BYTES_PER_ROUND.check(fn)


_EXERCISES = {"linear_gradient": _LINEAR_GRADIENT, "linear_loss": _LINEAR_LOSS,
              "gradient_descent_step": _GRADIENT_DESCENT_STEP,
              "divergence_threshold": _DIVERGENCE_THRESHOLD, "mlp_gradient": _MLP_GRADIENT,
              "weighted_average": _WEIGHTED_AVERAGE, "fedprox_step": _FEDPROX_STEP,
              "bytes_per_round": _BYTES_PER_ROUND}
