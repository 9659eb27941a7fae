"""Exercise checkers for privacy (notebooks 07, 08 and 09).

Same contract as `fedlite.checks`: `checks_privacy.invert_linear_gradient(my_fn)` runs your
function on fixed cases (seed 0), prints "✔ Correct: ..." or "✘ Not yet: ..." naming the usual
mistake, returns True/False, and never raises, whatever your function does.
"""
from __future__ import annotations

import numpy as np

from . import reference
from .checks import SEED, _call, _check, _describe, _verdict


# ------------------------------------------------------------------------------ 07 leakage

def invert_linear_gradient(fn):
    """Check fn(grad_w, grad_b, w, b) -> (x, y): the one example behind a linear gradient."""
    rng = np.random.default_rng(SEED)
    cases = []
    for d in (3, 1, 5):
        x, y = rng.normal(size=d), float(rng.normal())
        w, b = rng.normal(size=d), float(rng.normal())
        _, grad_w, grad_b = reference.linear_loss_grad(x[None, :], np.array([y]), w, b)
        cases.append((f"one example with {d} features",
                      dict(grad_w=grad_w, grad_b=grad_b, w=w, b=b)))

    def answers(grad_w, grad_b, w, b):
        x = grad_w / grad_b
        y = w @ x + b - grad_b
        return (x, y), [
            ((grad_b / grad_w, y), "x is upside down: grad_w = r x and grad_b = r, so "
                                   "x = grad_w / grad_b."),
            ((-x, w @ -x + b - grad_b), "x has the wrong sign: x = grad_w / grad_b."),
            ((grad_w, w @ grad_w + b - grad_b), "x = grad_w only if r = 1: divide by "
                                                "grad_b = r."),
            ((x, w @ x + b + grad_b), "y has the wrong sign of r: r = y_hat - y, so "
                                      "y = y_hat - r = w·x + b - grad_b."),
            ((x, w @ x + b), "that is the prediction y_hat; the label is y = y_hat - r, "
                             "with r = grad_b."),
            ((x, w @ x - grad_b), "the bias is missing from y_hat = w·x + b.")], {}

    return _check(fn, cases, [("x", "w"), ("y", None)], answers,
                  "Recall: grad_w = r x and grad_b = r with r = w·x + b - y.",
                  praise="One example's gradient is the example.")


def input_from_first_layer(fn):
    """Check fn(grad_W1, grad_b1) -> x: one example's input from the MLP's first-layer gradient."""
    rng = np.random.default_rng(SEED)
    cases = []
    for d, h in [(3, 5), (4, 2), (1, 6)]:
        W1, b1 = rng.normal(size=(d, h)), rng.normal(size=h)
        x, W2 = rng.normal(size=d), rng.normal(size=h)
        b1[0] = -abs(x @ W1[:, 0]) - 1.0        # unit 0 is switched off: its gradient is zero
        b1[1:] = np.abs(x @ W1[:, 1:]) + 0.5    # the others are on
        grads = reference.mlp_loss_grad(x[None, :], np.array([1.5]), W1, b1, W2, 0.0)[1]
        cases.append((f"one example with d = {d} features, h = {h} units, unit 0 inactive",
                      dict(grad_W1=grads[0], grad_b1=grads[1])))

    def answers(grad_W1, grad_b1):
        d, h = grad_W1.shape
        j = int(np.argmax(np.abs(grad_b1)))
        x = grad_W1[:, j] / grad_b1[j]
        return x, [(-x, "the sign is flipped: x = grad_W1[:, j] / grad_b1[j]."),
                   (grad_W1[:, j], "divide by grad_b1[j] (= δ_j): grad_W1[:, j] = x δ_j.")], {
            ("x", (h,)): "That is a row of grad_W1 (one value per unit); x is a column, "
                         "grad_W1[:, j], with one value per feature.",
            ("x", (d, h)): "Pick one unit j: x = grad_W1[:, j] / grad_b1[j]."}

    return _check(fn, cases, [("x", None)], answers,
                  "Recall: grad_W1[:, j] = x δ_j and grad_b1[j] = δ_j; use a unit j with "
                  "grad_b1[j] != 0 (an inactive unit has a zero gradient).")


# ---------------------------------------------------------------------- 08 secure aggregation

def total_mask(fn):
    """Check fn(participant_id, pair_masks, modulus) -> the participant's total mask.

    pair_masks[(i, j)] (i < j) is the mask shared by i and j; participant i adds the masks it
    shares with higher ids and subtracts those with lower ids, mod modulus, so that all the
    total masks add up to 0 mod modulus.
    """
    if not callable(fn):
        return _verdict(False, f"pass your function itself (my_fn, not my_fn(...)); "
                               f"you passed {_describe(fn)}.")
    rng = np.random.default_rng(SEED)
    problems = []
    for K, P, modulus in [(3, 4, 2**16), (5, 2, 2**8), (2, 3, 2**12)]:
        pairs = {(i, j): rng.integers(0, modulus, size=P)
                 for i in range(K) for j in range(i + 1, K)}
        problem = _total_mask_problem(fn, K, P, modulus, pairs)
        if problem:
            problems.append(problem)
    if not problems:
        return _verdict(True, "your masks hide each vector and cancel exactly in the sum.")
    return _verdict(False, problems[0])


def _total_mask_problem(fn, K, P, modulus, pairs):
    """What is wrong with fn's masks for K participants, or None."""
    label = f"{K} participants, modulus {modulus}"
    want = [sum((pairs[(i, j)] if i < j else -pairs[(j, i)]) for j in range(K) if j != i) % modulus
            for i in range(K)]
    got = []
    for i in range(K):
        copies = {pair: mask.copy() for pair, mask in pairs.items()}
        result, _, problem = _call(lambda: fn(i, copies, modulus), {})
        if problem:
            return problem[1]
        if result is None:
            return "your function returned None: is it still the stub? Return the total mask."
        if copies.keys() != pairs.keys() or any(not np.array_equal(copies[p], pairs[p])
                                                for p in pairs):
            return "your function changed pair_masks in place: build a new array instead."
        array = np.asarray(result)
        if array.shape != (P,) or array.dtype.kind not in "iuf":
            return f"return an array of {P} integers (one per value), not {_describe(result)}."
        got.append(array.astype(np.int64))
    got = np.array(got)
    if got.min() < 0 or got.max() >= modulus:
        return (f"some values are outside [0, {modulus}) (on {label}): reduce mod the modulus, "
                f"e.g. total % modulus.")
    if not got.any():
        return "your masks are all zero: they cancel, but hide nothing. Add the pair masks."
    if np.any(got.sum(axis=0) % modulus):
        plus = np.array([sum(pairs[p] for p in pairs if i in p) % modulus for i in range(K)])
        if np.array_equal(got, plus):
            return ("every participant adds all its pair masks, so they never cancel: the lower "
                    "id adds m_ij and the higher id subtracts it.")
        return (f"the masks of all participants do not add up to 0 mod {modulus} (on {label}): "
                f"each pair mask must be added by one of its two participants and subtracted "
                f"by the other.")
    want = np.array(want)
    if not (np.array_equal(got, want) or np.array_equal(got, -want % modulus)):
        return ("the masks cancel, but not with the pair masks given: participant i uses "
                "pair_masks[(i, j)] for j > i and pair_masks[(j, i)] for j < i.")
    return None


def encode_fixed_point(fn):
    """Check fn(x, scale_bits, modulus_bits) -> round(x · 2^f) mod 2^k as integers."""
    rng = np.random.default_rng(SEED)
    cases = [(f"x of shape ({n},), f = {f}, k = {k}",
              dict(x=rng.normal(scale=3.0, size=n), scale_bits=f, modulus_bits=k))
             for n, f, k in [(6, 8, 16), (4, 4, 12), (3, 0, 8)]]

    def answers(x, scale_bits, modulus_bits):
        M, scaled = 2**modulus_bits, x * 2.0**scale_bits
        right = np.round(scaled) % M
        return right, [
            (np.round(scaled), "negative values must wrap round: take the result mod 2^k "
                               "(% 2**modulus_bits)."),
            (np.floor(scaled) % M, "use round, not floor or int(): the error should be at most "
                                   "half a unit, 2^-(f+1)."),
            (np.trunc(scaled) % M, "use round, not int() or trunc: the error should be at most "
                                   "half a unit, 2^-(f+1)."),
            (np.round(x * scale_bits) % M, "scale by 2**scale_bits, not by scale_bits."),
            (np.round(scaled) % 2**scale_bits, "reduce mod 2**modulus_bits, "
                                               "not 2**scale_bits.")], {}

    return _check(fn, cases, [("encoded", "x")], answers,
                  "Recall: encoded = round(x · 2^f) mod 2^k, f = scale_bits, k = modulus_bits.")


# -------------------------------------------------------------------- 09 differential privacy

def clip_factor(fn):
    """Check fn(update, clip_norm) -> min(1, S / ||update||), the factor DP-FedAvg scales by."""
    rng = np.random.default_rng(SEED)
    cases = [(f"an update of norm {np.linalg.norm(u):.2f}, clip_norm = {S}",
              dict(update=u, clip_norm=S))
             for u, S in [(rng.normal(size=5) * 3, 1.0), (rng.normal(size=3) * 0.1, 2.0),
                          (rng.normal(size=4), 0.5)]]

    def answers(update, clip_norm):
        norm = np.linalg.norm(update)
        right = min(1.0, clip_norm / norm)
        return right, [
            (clip_norm / norm, "an update shorter than clip_norm must be left alone: take "
                               "min(1, S / ||u||)."),
            (min(1.0, norm / clip_norm), "upside down: the factor is S / ||u|| (capped at 1)."),
            (min(1.0, clip_norm / norm**2), "use the norm ||u||, not its square."),
            (min(1.0, clip_norm / np.abs(update).sum()), "use the Euclidean norm "
                                                         "(np.linalg.norm), not the sum of |u_i|."),
            (min(1.0, clip_norm / np.abs(update).max()),
             "use the Euclidean norm (np.linalg.norm), not the largest |u_i|.")], {}

    return _check(fn, cases, [("factor", None)], answers,
                  "Recall: factor = min(1, S / ||u||), so ||factor · u|| <= S.",
                  praise="Multiply the update by it: its norm is then at most clip_norm.")


def noise_std(fn):
    """Check fn(clip_norm, noise_multiplier, sampling_rate, num_participants) -> z S / (q m)."""
    cases = [(f"S = {S}, z = {z}, q = {q}, m = {m}",
              dict(clip_norm=S, noise_multiplier=z, sampling_rate=q, num_participants=m))
             for S, z, q, m in [(1.0, 1.1, 0.1, 1000), (0.5, 2.0, 0.01, 5000), (3.0, 0.7, 1.0, 8)]]

    def answers(clip_norm, noise_multiplier, sampling_rate, num_participants):
        S, z, q, m = clip_norm, noise_multiplier, sampling_rate, num_participants
        return z * S / (q * m), [
            (z * S, "that is the noise on the SUM; the server divides the sum by q m."),
            (z * S / m, "the server divides by the expected number of participants, q m, "
                        "not by m."),
            (z / (q * m), "the noise scales with the clipping norm: std = z S on the sum."),
            (z * S / (q * m) ** 2, "the standard deviation is divided by q m once "
                                   "(the variance by (q m)²)."),
            ((z * S) ** 2 / (q * m), "that mixes up variance and standard deviation: "
                                     "the std of the noise on the sum is z S.")], {}

    return _check(fn, cases, [("std", None)], answers,
                  "Recall: noise N(0, (z S)²) is added to the sum, which is divided by q m.")
