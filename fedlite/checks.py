"""Exercise checkers: `fedlite.checks.linear_gradient(my_fn)` prints a verdict, returns True/False.

Each checker calls your function on a few fixed test cases (drawn with seed 0, so the printed
text is the same on every run), compares the answer with `fedlite.reference`, and when it
differs tries the usual mistakes (a flipped sign, a sum instead of a mean, a forgotten bias...)
to say what went wrong.  Your function may return anything or raise: the checker reports it
and never raises itself.  Your inputs are copies, and changing them in place is reported.
"""
from __future__ import annotations

import copy
import numbers
import re
import warnings

import numpy as np

from . import reference

SEED = 0
RTOL, ATOL = 1e-6, 1e-12  # a student's float64 answer matches the reference far closer than this


# ------------------------------------------------------------------------------------ machinery

def _verdict(ok, message):
    """Print '✔ Correct: ...' or '✘ Not yet: ...' and return ok."""
    print(f"✔ Correct: {message}" if ok else f"✘ Not yet: {message}")
    return ok


def _describe(value):
    """A short description of any value, free of memory addresses: 'an array of shape (3,)'."""
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, numbers.Number):
        return f"the number {value:.6g}"
    return f"a {type(value).__name__}"


def _same(a, b):
    """True if b still equals a (to spot inputs changed in place)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def _close(got, want):
    return got.shape == want.shape and np.allclose(got, want, rtol=RTOL, atol=ATOL)


def _call(fn, args):
    """Run fn on copies of args, numpy warnings silenced: (result, changed arg names, problem)."""
    copies = copy.deepcopy(args)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = fn(*copies.values())
    except NotImplementedError:
        return None, [], (True, "your function is still the stub (it raises NotImplementedError): "
                                "replace that line with your code.")
    except Exception as exc:  # anything the student's code raises becomes the verdict
        lines = re.sub(r"0x[0-9a-fA-F]+", "0x…", str(exc)).splitlines() or [""]
        text = f"your function raised {type(exc).__name__}: {lines[0][:150]}"
        if isinstance(exc, ValueError) and re.search("shape|mismatch|broadcast|align", lines[0]):
            shapes = ", ".join(f"{k} {v.shape}" for k, v in args.items()
                               if isinstance(v, np.ndarray))
            text += f"\nHint: print the .shape of each array (here {shapes})."
        return None, [], (False, text)
    return result, [name for name in args if not _same(args[name], copies[name])], None


def _shape_problem(who, like, got, want, hint, label):
    """The message for an answer of the wrong shape."""
    if want.ndim == 0:
        text = f"{who} should be a single number, but it has shape {got.shape}"
    else:
        text = f"{who} has shape {got.shape} but should have shape {want.shape}"
        text += f", like {like}" if like else ""
    if hint is None and got.size == want.size and _close(got.reshape(want.shape), want):
        hint = ("The numbers are right: return a 1-D array (e.g. with .ravel())." if want.ndim == 1
                else "The numbers are right, only the layout differs.")
    elif hint is None and got.ndim == 2 and _close(got.T, want):
        hint = "It is the transpose of the right answer."
    return f"{text} (on {label}). {hint or ''}".strip()


def _problem(fn, label, args, outputs, answers, formula):
    """What is wrong with fn on one case, as (specific, message), or None if it is right."""
    result, changed, problem = _call(fn, args)
    if problem:
        return problem
    names = [name for name, _ in outputs]
    if result is None:
        return True, (f"your function returned None: is it still the stub? Write the code and "
                      f"return {', '.join(names)}.")
    single = len(outputs) == 1
    if single:
        result = (result,)
    elif not isinstance(result, (tuple, list)) or len(result) != len(outputs):
        return True, (f"return {len(outputs)} values ({', '.join(names)}); "
                      f"your function returned {_describe(result)}.")
    with np.errstate(all="ignore"):
        want, wrong, shape_hints = answers(**args)
    if single:
        want, wrong = (want,), [((values,), message) for values, message in wrong]
    for i, ((name, like), got) in enumerate(zip(outputs, result)):
        who = "your answer" if single else name
        target = np.asarray(want[i], dtype=float)
        if got is None:
            return True, f"{who} is None: compute it and return it too."
        try:
            array = np.asarray(got)
        except ValueError:  # a ragged list
            array = np.asarray(None)
        if array.dtype.kind not in "biuf":
            kind = "a number" if target.ndim == 0 else "an array of numbers"
            return True, f"{who} should be {kind}, but it is {_describe(got)}."
        got = array.astype(float)
        if target.ndim == 0 and got.size == 1:
            got = got.reshape(())
        if got.shape != target.shape:
            hint = shape_hints.get((name, got.shape))
            return True, _shape_problem(who, like, got, target, hint, label)
        if not np.isfinite(got).all():
            return False, (f"{who} contains NaN or inf (on {label}): look for a division by "
                           f"zero or an overflow.")
        if _close(got, target):
            continue
        for values, message in wrong:
            if _close(got, np.asarray(values[i], dtype=float)):
                return True, message if single else f"{name}: {message}"
        error = float(np.max(np.abs(got - target)))
        return False, f"{who} is off (on {label}): largest error {error:.2g}.\n{formula}"
    if changed:
        return True, (f"the values are right, but your function changed the caller's "
                      f"{' and '.join(changed)} in place (e.g. with -= or *=).\n"
                      f"Build a new array instead (x_new = x - ...), leaving the caller's alone.")
    return None


def _check(fn, cases, outputs, answers, formula, praise=""):
    """Run fn on every (label, args) case and print one verdict.

    outputs: (name, like) per returned value; answers(**args) -> (the right answer,
    [(a wrong answer, what the mistake is)...], {(name, a wrong shape): hint}).
    The verdict names the first specific problem found, else the first problem.
    """
    if not callable(fn):
        return _verdict(False, f"pass your function itself (my_fn, not my_fn(...)); "
                               f"you passed {_describe(fn)}.")
    problems = [_problem(fn, label, args, outputs, answers, formula)
                for label, args in cases]
    problems = [p for p in problems if p]
    if not problems:
        return _verdict(True, f"your function passes all {len(cases)} test cases. {praise}".strip())
    specific = [p for p in problems if p[0]]  # a named mistake beats "values differ"
    return _verdict(False, (specific or problems)[0][1])


# ------------------------------------------------------------------------ centralised models

def _linear_cases(shapes):
    """Seeded (label, dict(X, y, w, b)) cases, one per (n, d)."""
    rng = np.random.default_rng(SEED)
    return [(f"X of shape {(n, d)}", dict(X=rng.normal(size=(n, d)), y=rng.normal(size=n),
                                          w=rng.normal(size=d), b=float(rng.normal())))
            for n, d in shapes]


def linear_gradient(fn):
    """Check fn(X, y, w, b) -> (grad_w, grad_b) for L = 1/(2n) Σ_i (x_i·w + b - y_i)²."""
    def answers(X, y, w, b):
        (n, d), (_, gw, gb) = X.shape, reference.linear_loss_grad(X, y, w, b)
        r, r0 = X @ w + b - y, X @ w - y
        wrong = [((-gw, -gb), "the sign is flipped: use r = X w + b - y (prediction - target)."),
                 ((n * gw, n * gb), "n times too big: you summed over the examples. "
                                    "Divide by n (the 1/n of the mean loss)."),
                 ((2 * gw, 2 * gb), "twice too big: the 2 from the square cancels the 1/2."),
                 ((gw / 2, gb / 2), "half too small: the 2 from the square cancels the 1/2."),
                 ((X.T @ r0 / n, r0.mean()), "the bias is missing from the prediction: "
                                             "use y_hat = X w + b."),
                 ((gw, 0.0), "the bias gradient is missing: ∂L/∂b = (1/n) Σ_i r_i.")]
        if n == d:  # X r has the shape of Xᵀ r only when n = d
            wrong.append(((X @ r / n, gb), "you multiplied by X instead of its transpose: "
                                           "grad_w = Xᵀ r / n (X.T @ r / n)."))
        return (gw, gb), wrong, {
            ("grad_w", (n,)): "That is one value per example: X.T @ r sums over them.",
            ("grad_w", (n, d)): "That is one row per example: average the rows (axis=0).",
            ("grad_w", (d, 1)): "Return a 1-D array shaped like w (e.g. with .ravel())."}

    return _check(fn, _linear_cases([(6, 3), (4, 4), (5, 1), (1, 3)]),  # n = d shows X vs Xᵀ
                  [("grad_w", "w"), ("grad_b", "b")], answers,
                  "Recall: r = X w + b - y, grad_w = Xᵀ r / n, grad_b = Σ_i r_i / n.")


def linear_loss(fn):
    """Check fn(X, y, w, b) -> loss = 1/(2n) Σ_i (x_i·w + b - y_i)², a single number."""
    def answers(X, y, w, b):
        n, loss, r, r0 = len(y), reference.linear_loss_grad(X, y, w, b)[0], X @ w + b - y, X @ w - y
        fedlite = "fedlite's loss is 1/(2n) Σ (y_hat - y)²"
        unsquared = "the residuals are not squared: use the squared error (y_hat - y)**2."
        return loss, [
            (2 * loss, f"the 1/2 is missing: {fedlite}, half the mean squared error."),
            (n * loss, "that is the article's sum form ½ Σ (y_hat - y)²; fedlite uses the mean, "
                       "divide by n."),
            (2 * n * loss, f"that is the plain sum of squares; {fedlite}: divide by 2n."),
            (np.sqrt(2 * loss), f"that is the RMSE, with a square root; {fedlite}, no root."),
            (np.sqrt(loss), f"there is a square root too many: {fedlite}."),
            (np.abs(r).mean() / 2, unsquared), (np.abs(r).mean(), unsquared),
            (r.mean() / 2, unsquared), (r.mean(), unsquared),
            (r0 @ r0 / (2 * n), "the bias is missing from the prediction: use y_hat = X w + b.")
        ], {("loss", (n,)): "That is one loss per example: add them up, divide by 2n."}

    return _check(fn, _linear_cases([(6, 3), (5, 1), (1, 2)]), [("loss", None)], answers,
                  "Recall: loss = 1/(2n) Σ_i (x_i·w + b - y_i)².")


def gradient_descent_step(fn):
    """Check fn(w, b, grad_w, grad_b, lr) -> (w_new, b_new) = (w - lr grad_w, b - lr grad_b)."""
    rng = np.random.default_rng(SEED)
    cases = [(f"w of shape ({d},) and lr = {lr}",
              dict(w=rng.normal(size=d), b=float(rng.normal()), grad_w=rng.normal(size=d),
                   grad_b=float(rng.normal()), lr=lr)) for d, lr in [(3, 0.1), (1, 0.5), (5, 0.01)]]

    def answers(w, b, grad_w, grad_b, lr):
        w_new, b_new = w - lr * grad_w, b - lr * grad_b
        return (w_new, b_new), [
            ((w + lr * grad_w, b + lr * grad_b), "wrong sign: w + lr * grad climbs the loss "
                                                 "(gradient ascent); descent subtracts."),
            ((w - grad_w, b - grad_b), "the learning rate is missing: multiply the gradient "
                                       "by lr."),
            ((lr * grad_w, lr * grad_b), "that is the step lr * grad; return w - lr * grad_w."),
            ((w_new, b), "b did not change: update the bias too, b - lr * grad_b."),
            ((w, b_new), "w did not change: update it too, w - lr * grad_w.")], {}

    return _check(fn, cases, [("w_new", "w"), ("b_new", "b")], answers,
                  "Recall: w_new = w - lr * grad_w and b_new = b - lr * grad_b.")


def _lr_max(X, bias=True, mean=True, k=2.0, largest=True):
    """k / λ for H = Aᵀ A (/ n), A = [X, 1] (or X), λ its largest (or smallest) eigenvalue."""
    A = np.column_stack([X, np.ones(len(X))]) if bias else X
    eigenvalues = np.linalg.eigvalsh(A.T @ A / (len(X) if mean else 1))
    return k / eigenvalues[-1 if largest else 0]


def divergence_threshold(fn):
    """Check fn(X) -> 2 / λ_max(H), H = [X, 1]ᵀ [X, 1] / n: the largest stable learning rate."""
    rng = np.random.default_rng(SEED)  # columns of mean 1, so that the bias column matters
    cases = [(f"X of shape {shape}", dict(X=rng.normal(1.0, 1.0, size=shape)))
             for shape in [(20, 3), (8, 1), (3, 5)]]
    H = "H = [X, 1]ᵀ [X, 1] / n"

    def answers(X):
        return _lr_max(X), [
            (_lr_max(X, bias=False), "the bias column is missing: the Hessian is over (w, b), "
                                     "so use [X, 1], X with a column of ones."),
            (_lr_max(X, mean=False), f"the 1/n is missing: for the mean loss {H}."),
            (_lr_max(X, bias=False, mean=False), f"the bias column and the 1/n are missing: {H}."),
            (_lr_max(X, k=1.0), "that is 1/λ_max; gradient descent stays stable up to 2/λ_max."),
            (_lr_max(X, largest=False), "you used the smallest eigenvalue; the direction that "
                                        "blows up first has the largest, λ_max."),
            (2.0 / _lr_max(X), "that is λ_max itself; the threshold is 2/λ_max.")], {}

    return _check(fn, cases, [("lr_max", None)], answers, f"Recall: lr_max = 2 / λ_max(H), {H}.",
                  praise="Any lr above this makes gradient descent diverge.")


def mlp_gradient(fn):
    """Check fn(X, y, W1, b1, W2, b2) -> (grad_W1, grad_b1, grad_W2, grad_b2), W2 of shape (h,)."""
    rng = np.random.default_rng(SEED)
    cases = [(f"X of shape {(n, d)} and {h} hidden units",
              dict(X=rng.normal(size=(n, d)), y=rng.normal(size=n), W1=rng.normal(size=(d, h)),
                   b1=rng.normal(size=h), W2=rng.normal(size=h), b2=float(rng.normal())))
             for n, d, h in [(8, 3, 5), (5, 1, 2), (1, 2, 3)]]

    def answers(X, y, W1, b1, W2, b2):
        n, grads = len(y), reference.mlp_loss_grad(X, y, W1, b1, W2, b2)[1]
        gW1, gb1, gW2, gb2 = grads
        Z = X @ W1 + b1
        r = np.maximum(Z, 0.0) @ W2 + b2 - y

        def layer_1(delta):  # grad_W1, grad_b1 for a (wrongly) backpropagated signal delta
            return X.T @ delta / n, delta.sum(axis=0) / n

        mask = "; the ReLU derivative is the 0/1 mask (Z > 0)."
        return grads, [
            (tuple(-g for g in grads), "the sign is flipped: use r = y_hat - y "
                                       "(prediction minus target)."),
            (tuple(n * g for g in grads), "n times too big: you summed over the examples. "
                                          "Divide by n (the 1/n)."),
            (tuple(2 * g for g in grads), "twice too big: the 2 from the square cancels the 1/2."),
            ((*layer_1(np.outer(r, W2)), gW2, gb2), "the ReLU derivative is missing: "
                                                     "multiply r W2ᵀ by the mask (Z > 0)."),
            ((*layer_1(np.outer(r, W2) * np.maximum(Z, 0.0)), gW2, gb2),
             "you multiplied by A = relu(Z)" + mask),
            ((*layer_1(np.outer(r, W2) * Z), gW2, gb2), "you multiplied by Z" + mask),
            ((gW1, gb1, Z.T @ r / n, gb2), "use the activations after the ReLU, A = relu(Z)."),
            ((gW1, 0 * gb1, gW2, 0.0), "the bias gradient is missing: it is the mean over the "
                                       "examples of the signal that reaches the bias.")
        ], {("grad_W2", (len(b1), 1)): "W2 has shape (h,) here, so grad_W2 must be 1-D too.",
            ("grad_b1", Z.shape): "That is one row per example: sum them (axis=0), divide by n."}

    return _check(fn, cases, [("grad_W1", "W1"), ("grad_b1", "b1"), ("grad_W2", "W2"),
                              ("grad_b2", "b2")], answers,
                  "Recall: δ = (r W2ᵀ) ⊙ [Z > 0], grad_W1 = Xᵀ δ / n, grad_b1 = Σ_i δ_i / n, "
                  "grad_W2 = Aᵀ r / n, grad_b2 = Σ_i r_i / n.")


# --------------------------------------------------------------------------------- federated

def weighted_average(fn):
    """Check fn(updates, num_examples) -> Σ_k n_k u_k / Σ_k n_k, FedAvg's aggregation."""
    rng = np.random.default_rng(SEED)
    cases = [(f"{K} participants with updates of shape ({d},)",
              dict(updates=[rng.normal(size=d) for _ in range(K)],
                   num_examples=[int(n) for n in rng.choice(np.arange(1, 100), K, replace=False)]))
             for K, d in [(3, 4), (5, 1), (1, 2)]]
    total = "divide by the total number of examples Σ n_k"

    def answers(updates, num_examples):
        U, n = np.array(updates), np.array(num_examples, dtype=float)
        return n @ U / n.sum(), [
            (U.mean(axis=0), "that is the plain mean: weight each update by its num_examples "
                             "(a weighted average, as in FedAvg)."),
            (n @ U, f"the weights are not normalised: {total}."),
            (n @ U / len(U), f"you divided by K, the number of participants; {total}."),
            (U.sum(axis=0), f"that is the plain sum: weight by num_examples and {total}.")
        ], {("aggregate", U.shape): "That is one row per participant: sum the weighted updates."}

    return _check(fn, cases, [("aggregate", "each update")], answers,
                  "Recall: aggregate = Σ_k n_k u_k / Σ_k n_k.")


def fedprox_step(fn):
    """Check fn(w, grad, w_server, lr, mu) -> w - lr (grad + mu (w - w_server)), FedProx's step."""
    rng = np.random.default_rng(SEED)
    cases = [(f"w of shape ({d},), lr = {lr}, mu = {mu}",
              dict(w=rng.normal(size=d), grad=rng.normal(size=d), w_server=rng.normal(size=d),
                   lr=lr, mu=mu)) for d, lr, mu in [(4, 0.1, 0.5), (1, 0.05, 2.0), (3, 0.2, 0.01)]]
    prox = "mu (w - w_server)"

    def answers(w, grad, w_server, lr, mu):
        pull = w - w_server
        return w - lr * (grad + mu * pull), [
            (w - lr * (grad - mu * pull), f"the proximal term has the wrong sign: + {prox} "
                                          f"pulls w back towards w_server."),
            (w + lr * (grad + mu * pull), "wrong sign: that steps uphill; subtract lr * gradient."),
            (w - lr * (grad + mu / 2 * pull), f"the gradient of mu/2 ||w - w_server||² is {prox}: "
                                              "the 2 from the square cancels the 1/2."),
            (w - lr * (grad + mu * pull / np.linalg.norm(pull)),
             f"that is the gradient of the norm ||w - w_server||; FedProx uses the squared "
             f"norm, whose gradient is {prox}."),
            (w - lr * grad, f"mu is ignored: that is a plain SGD step (FedAvg); "
                            f"add {prox} to the gradient."),
            (w - (grad + mu * pull), "the learning rate is missing: multiply the gradient by lr."),
            (w - lr * grad - mu * pull, f"lr must multiply the proximal term too: "
                                        f"w - lr (grad + {prox}).")], {}

    return _check(fn, cases, [("w_new", "w")], answers,
                  "Recall: w_new = w - lr * (grad + mu * (w - w_server)).")


def bytes_per_round(fn):
    """Check fn(num_params, num_selected, algorithm) -> (bytes_up, bytes_down), float64 values."""
    cases = [(f"num_params = {p}, num_selected = {k}, algorithm = {algorithm!r}",
              dict(num_params=p, num_selected=k, algorithm=algorithm))
             for p, k, algorithm in [(1000, 10, "fedavg"), (250, 3, "fedsgd"), (7, 1, "fedavg")]]

    def answers(num_params, num_selected, algorithm):
        p, v = num_params, num_params * num_selected  # values sent in each direction
        return (8 * v, 8 * v), [
            ((4 * v, 4 * v), "4 bytes per value is float32; fedlite sends float64, 8 bytes each."),
            ((8 * p, 8 * p), "multiply by num_selected: each selected participant sends and "
                             "receives its own copy."),
            ((v, v), "that counts values, not bytes: a float64 value takes 8 bytes."),
            ((64 * v, 64 * v), "that counts bits: a float64 value is 8 bytes."),
            ((16 * v, 16 * v), "that counts both directions in each; bytes_up is uploads only."),
            ((8 * v, 0), "only one direction counted: the server also sends the model "
                         "(num_params values) to each selected participant."),
            ((0, 8 * v), "only one direction counted: each selected participant also uploads "
                         "num_params values.")], {}

    return _check(fn, cases, [("bytes_up", None), ("bytes_down", None)], answers,
                  "Recall: 8 bytes per float64 value, num_params values per selected "
                  "participant, in each direction.")
