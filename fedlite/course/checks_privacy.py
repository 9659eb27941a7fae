"""Exercise checkers for privacy (notebooks 09, 10 and 11).

Same contract as `fedlite.checks`: `checks_privacy.invert_linear_gradient(my_fn)` runs your
function on fixed cases and on fresh random ones, prints "✔ Correct: ..." or "✘ Not yet: ..."
naming the usual mistake, returns a `CheckResult` (true when right), and never raises, whatever
your function does.
"""
from __future__ import annotations

import numpy as np

from ._checking import (RAISES, CheckResult, Exercise, Session, as_real, decimals, describe,
                        format_call, fresh_failure, fresh_rng, guarded, not_a_function, verdict)

__all__ = ["CheckResult", "clip_factor", "encode_fixed_point", "input_from_first_layer",
           "invert_linear_gradient", "noise_std", "total_mask"]

SEED = 0  # the fixed cases are drawn with this seed


# ------------------------------------------------------------------------------ 07 leakage

def _inversion_cases():
    """One example's linear gradient per d, with a residual r far from 0 and from ±1 (where
    x = grad_w would be right by accident)."""
    rng = np.random.default_rng(SEED)
    cases = []
    for d in (3, 2, 5):
        while True:
            x, y = rng.normal(size=d), float(rng.normal())
            w, b = rng.normal(size=d), float(rng.normal())
            r = float(w @ x + b - y)
            if abs(r) > 0.3 and abs(abs(r) - 1) > 0.3:
                break
        cases.append((f"one example with {d} features", dict(grad_w=r * x, grad_b=r, w=w, b=b)))
    return cases


def _random_inversion(rng):
    d = int(rng.integers(1, 5))
    grad_b = float(rng.choice([-1, 1]) * decimals(rng, 0.3, 2.5))
    return (f"a fresh random case, one example with {d} features",
            dict(grad_w=decimals(rng, -2, 2, d), grad_b=grad_b, w=decimals(rng, -2, 2, d),
                 b=float(decimals(rng, -2, 2))))


def _inversion_answers(grad_w, grad_b, w, b):
    x = grad_w / grad_b
    y = w @ x + b - grad_b
    return (x, y), [
        ((grad_b / grad_w, y), "upside down: grad_w is r times x, and grad_b is r."),
        ((-x, w @ -x + b - grad_b), "the sign is flipped."),
        ((grad_w, w @ grad_w + b - grad_b), "that is right only if r = 1: divide by r, which is "
                                            "grad_b."),
        ((x, w @ x + b + grad_b), "the wrong sign of r: r = y_hat - y."),
        ((x, w @ x + b), "that is the prediction y_hat; the label differs from it by r."),
        ((x, grad_b), "that is r, the residual; the label is y = y_hat - r."),
        ((x, w @ x - grad_b), "the bias is missing from y_hat = w·x + b.")], {}


_INVERT_LINEAR_GRADIENT = Exercise(
    outputs=(("x", "w"), ("y", None)), cases=_inversion_cases, random_case=_random_inversion,
    answers=_inversion_answers, library=("fedlite.leakage.invert_linear_gradient",),
    praise="One example's gradient is the example.",
    nudge='See "1. One example, one gradient" in notebook 09: write both gradients in terms of '
          'the residual r, solve for x, then for y.')


def invert_linear_gradient(fn):
    """Check fn(grad_w, grad_b, w, b) -> (x, y): the one example behind a linear gradient."""
    return _INVERT_LINEAR_GRADIENT.check(fn)


def _units_text(inactive):
    units = [str(j) for j in sorted(inactive)]
    return (f"unit {units[0]} inactive" if len(units) == 1
            else f"units {', '.join(units[:-1])} and {units[-1]} inactive")


def _first_layer_case(x, delta, label):
    inactive = [j for j, value in enumerate(delta) if value == 0]
    return (f"{label} with d = {len(x)} features, h = {len(delta)} units, "
            f"{_units_text(inactive)}", dict(grad_W1=np.outer(x, delta), grad_b1=delta))


def _first_layer_cases():
    """grad_W1 = x δᵀ and grad_b1 = δ for one example.  Every unit index is inactive (δ_j = 0)
    in some case, so no fixed choice of unit works; in the second case the active δ are all
    negative, so np.argmax(grad_b1) (without abs) picks an inactive unit."""
    rng = np.random.default_rng(SEED)
    cases = []
    for d, h, inactive, sign in [(3, 5, {0, 2, 3}, None), (4, 4, {1, 2}, -1),
                                 (2, 6, {1, 4, 5}, None)]:
        x = rng.normal(size=d)
        delta = rng.uniform(0.3, 1.5, size=h) * (sign or rng.choice([-1, 1], size=h))
        delta[max(set(range(h)) - inactive)] = 2.0 * (sign or 1)  # the largest |δ|
        delta[sorted(inactive)] = 0.0
        cases.append(_first_layer_case(x, delta, "one example"))
    return cases


def _random_first_layer(rng):
    d, h = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    delta = rng.choice([-1, 1], size=h) * decimals(rng, 0.2, 2, h)
    delta[rng.permutation(h)[:rng.integers(1, h)]] = 0.0  # at least one unit inactive, one active
    return _first_layer_case(decimals(rng, -2, 2, d), delta, "a fresh random case, one example")


def _first_layer_answers(grad_W1, grad_b1):
    d, h = grad_W1.shape
    active = np.flatnonzero(grad_b1)
    j = int(np.argmax(np.abs(grad_b1)))
    x = grad_W1[:, j] / grad_b1[j]
    fixed_unit = ("you use the same unit in every case, but any unit can be inactive (its "
                  "gradient is 0, and 0/0 is NaN): pick a unit whose grad_b1 is not 0.")
    signed = int(np.argmax(grad_b1))
    return x, [
        (-x, "the sign is flipped."),
        *[(grad_W1[:, k], "divide by grad_b1[j] (= δ_j): grad_W1[:, j] is x times δ_j.")
          for k in (j, active[0], active[-1])],
        (grad_W1[:, signed] / grad_b1[signed],
         "np.argmax(grad_b1) picks the largest signed value, which is an inactive unit's 0 "
         "when the active ones are negative: compare sizes, |grad_b1|."),
        *[((grad_W1[:, k] / grad_b1[k]) if k < h else RAISES, fixed_unit) for k in range(6)],
    ], {("x", (h,)): "That is a row of grad_W1 (one value per unit); x is a column, with one "
                     "value per feature.",
        ("x", (d, h)): "That is one column per unit: pick one unit j."}


_INPUT_FROM_FIRST_LAYER = Exercise(
    outputs=(("x", None),), cases=_first_layer_cases, random_case=_random_first_layer,
    answers=_first_layer_answers,
    library=("fedlite.leakage.invert_mlp_gradient", "fedlite.leakage.candidate_rows"),
    nudge='See "4. The MLP\'s first layer" in notebook 09: what one unit\'s column of grad_W1 '
          'holds, and which units you can use.')


def input_from_first_layer(fn):
    """Check fn(grad_W1, grad_b1) -> x: one example's input from the MLP's first-layer
    gradient (grad_W1 of shape (d, h), grad_b1 of shape (h,))."""
    return _INPUT_FROM_FIRST_LAYER.check(fn)


# ---------------------------------------------------------------------- 08 secure aggregation

def _mask_case(rng, K, P, modulus, label):
    pairs = {(i, j): rng.integers(1, modulus, size=P)  # a zero mask would hide nothing
             for i in range(K) for j in range(i + 1, K)}
    return f"{label}{K} participants, modulus {modulus}", K, P, modulus, pairs


@guarded
def total_mask(fn):
    """Check fn(participant_id, pair_masks, modulus) -> the participant's total mask.

    pair_masks[(i, j)] (i < j) is the mask shared by i and j, an integer array; the total masks
    of all participants, reduced mod modulus, must add up to 0 mod modulus.
    """
    if not callable(fn):
        return not_a_function(fn)
    session = Session()
    rng = np.random.default_rng(SEED)
    cases = [_mask_case(rng, K, P, modulus, "") for K, P, modulus in
             [(3, 4, 2**16), (5, 2, 2**8), (2, 3, 2**12)]]
    fresh = fresh_rng()
    cases += [_mask_case(fresh, int(fresh.integers(2, 5)), int(fresh.integers(1, 4)),
                         2 ** int(fresh.integers(4, 13)), "a fresh random case, ")
              for _ in range(3)]
    for label, K, P, modulus, pairs in cases:
        problem, case = _total_mask_problem(session, fn, label, K, P, modulus, pairs)
        cheat = session.cheat()
        if cheat:
            return verdict(False, cheat)
        if problem:
            if label.startswith("a fresh"):
                problem = fresh_failure(problem, format_call(fn, case))
            return verdict(False, problem, case)
    return verdict(True, "your masks hide each vector and cancel exactly in the sum, on 3 fixed "
                         "and 3 fresh random cases.")


def _total_mask_problem(session, fn, label, K, P, modulus, pairs):
    """(what is wrong with fn's masks for these K participants, the failing inputs), or None."""
    got = []
    for i in range(K):
        args = dict(participant_id=i, pair_masks=pairs, modulus=modulus)
        outcome = session.call(fn, args)
        if outcome.error:
            return outcome.error if outcome.stub else f"{outcome.error} (on {label})", args
        if outcome.value is None:
            return "your function returned None: is it still the stub? Return the total mask.", args
        if outcome.changed:
            return "your function changed pair_masks in place: build a new array instead.", args
        array, what = as_real(outcome.value)
        if what or array.shape != (P,):
            return (f"return an array of {P} integers (one per value), not "
                    f"{what or describe(outcome.value)} (on {label})."), args
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            return f"the masks must be whole numbers (on {label}).", args
        got.append(array)
    got, args = np.array(got), dict(participant_id=0, pair_masks=pairs, modulus=modulus)
    if got.min() < 0 or got.max() >= modulus:
        return (f"some values are outside [0, {modulus}) (on {label}): reduce mod the modulus, "
                f"e.g. total % modulus."), args
    if not got.any():
        return "your masks are all zero: they cancel, but hide nothing. Add the pair masks.", args
    if np.any(got.sum(axis=0) % modulus):
        plus = np.array([sum(pairs[p] for p in pairs if i in p) % modulus for i in range(K)])
        if np.array_equal(got, plus):
            return ("every participant adds all its pair masks, so they never cancel: one of "
                    "the two adds a pair mask and the other subtracts it."), args
        return (f"the masks of all participants do not add up to 0 mod {modulus} (on {label}): "
                f"each pair mask must be added by one of its two participants and subtracted "
                f"by the other."), args
    want = np.array([sum((pairs[(i, j)] if i < j else -pairs[(j, i)])
                         for j in range(K) if j != i) % modulus for i in range(K)])
    if not (np.array_equal(got, want) or np.array_equal(got, -want % modulus)):
        return ("the masks cancel, but not with the pair masks given: participant i uses "
                "pair_masks[(i, j)] for j > i and pair_masks[(j, i)] for j < i."), args
    return None, None


def _encode_case(x, f, k, label):
    return (f"{label}x of shape ({x.size},), f = {f}, k = {k}",
            dict(x=x, scale_bits=f, modulus_bits=k))


def _half_way(x, f):
    """True if some x · 2^f is (nearly) half-way between two integers: round is ambiguous."""
    scaled = np.abs(x) * 2.0**f
    return bool(np.any(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6))


def _encode_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    for n, f, k in [(6, 8, 16), (4, 4, 12), (5, 2, 8)]:
        while True:  # negative and positive values, none half-way between two integers
            x = rng.normal(scale=3.0, size=n)
            if not _half_way(x, f) and x.min() < 0 < x.max():
                break
        cases.append(_encode_case(x, f, k, ""))
    return cases


def _random_encode(rng):
    n, f = int(rng.integers(2, 6)), int(rng.integers(1, 9))
    k = int(rng.integers(max(f + 2, 6), 17))
    while True:
        x = decimals(rng, -5, 5, n, places=2)
        if not _half_way(x, f):
            return _encode_case(x, f, k, "a fresh random case, ")


def _encode_answers(x, scale_bits, modulus_bits):
    M, scaled = 2**modulus_bits, x * 2.0**scale_bits
    return np.round(scaled) % M, [
        (np.round(scaled), "negative values must wrap round into [0, 2^k): reduce mod 2^k."),
        (np.floor(scaled) % M, "use round, not floor: the error should be at most half a unit."),
        (np.trunc(scaled) % M, "use round, not int() or trunc: the error should be at most half "
                               "a unit."),
        (scaled % M, "round to whole numbers before reducing mod 2^k."),
        (np.round(x) % M, "scale x by 2**scale_bits before rounding."),
        (np.round(x * scale_bits) % M, "scale by 2**scale_bits, not by scale_bits."),
        (np.round(scaled) % 2**scale_bits, "reduce mod 2**modulus_bits, not 2**scale_bits.")], {}


_ENCODE_FIXED_POINT = Exercise(
    outputs=(("encoded", "x"),), cases=_encode_cases, random_case=_random_encode,
    answers=_encode_answers, library=("fedlite.secure_aggregation.encode",),
    nudge='See "2. Fixed point: real numbers as integers mod 2^k" in notebook 10: scale, round '
          'to whole numbers, and where the negative numbers go.')


def encode_fixed_point(fn):
    """Check fn(x, scale_bits, modulus_bits) -> x in fixed point, integers in [0, 2^k)."""
    return _ENCODE_FIXED_POINT.check(fn)


# -------------------------------------------------------------------- 09 differential privacy

def _clip_case(update, S, label):
    return (f"{label}an update of norm {np.linalg.norm(update):.2f}, clip_norm = {S}",
            dict(update=update, clip_norm=S))


def _clip_cases():
    rng = np.random.default_rng(SEED)  # two updates longer than clip_norm, one shorter
    return [_clip_case(u, S, "") for u, S in [(rng.normal(size=5) * 3, 1.5),
                                              (rng.normal(size=3) * 0.1, 2.0),
                                              (rng.normal(size=4), 0.5)]]


def _random_clip(rng):
    d, S = int(rng.integers(1, 5)), float(rng.choice([0.5, 1.0, 2.0, 3.0]))
    while True:
        update = decimals(rng, -3, 3, d)
        if update.any():
            return _clip_case(update, S, "a fresh random case, ")


def _clip_answers(update, clip_norm):
    norm, S = np.linalg.norm(update), clip_norm
    euclid = "use the Euclidean norm (np.linalg.norm)"
    return min(1.0, S / norm), [
        (S / norm, "an update shorter than clip_norm must be left alone: the factor is never "
                   "above 1."),
        (max(1.0, S / norm), "max instead of min: the factor must never be above 1, and it "
                             "shrinks only the long updates."),
        (min(1.0, norm / S), "upside down: a longer update needs a smaller factor."),
        (min(1.0, 1 / norm), "clip_norm is missing: the clipped update must have norm clip_norm."),
        (min(1.0, S / norm**2), "use the norm ||u||, not its square."),
        (min(1.0, S / np.abs(update).sum()), f"{euclid}, not the sum of |u_i|."),
        (min(1.0, S / np.abs(update).max()), f"{euclid}, not the largest |u_i|.")], {
        ("factor", update.shape): "That is one value per coordinate (the clipped update?): "
                                  "return the single number the update is multiplied by."}


_CLIP_FACTOR = Exercise(
    outputs=(("factor", None),), cases=_clip_cases, random_case=_random_clip,
    answers=_clip_answers,
    library=("fedlite.differential_privacy.clip_factor",
             "fedlite.differential_privacy.clip_by_norm"),
    praise="Multiply the update by it: its norm is then at most clip_norm.",
    nudge='See "2. Clip: bound what one participant can do" in notebook 11: which norm, and '
          'what happens to an update that is already short.')


def clip_factor(fn):
    """Check fn(update, clip_norm) -> the number DP-FedAvg multiplies update by."""
    return _CLIP_FACTOR.check(fn)


def _noise_case(S, z, q, m, label=""):
    return (f"{label}S = {S}, z = {z}, q = {q}, m = {m}",
            dict(clip_norm=S, noise_multiplier=z, sampling_rate=q, num_participants=m))


def _random_noise(rng):
    S, z = float(decimals(rng, 0.2, 5)), float(decimals(rng, 0.3, 3))
    q = float(rng.choice([0.01, 0.02, 0.05, 0.1, 0.2, 0.5]))
    return _noise_case(S, z, q, int(rng.integers(10, 10001)), "a fresh random case, ")


def _noise_answers(clip_norm, noise_multiplier, sampling_rate, num_participants):
    S, z, q, m = clip_norm, noise_multiplier, sampling_rate, num_participants
    expected = "the expected number of participants"
    return z * S / (q * m), [
        (z * S, f"that is the noise on the SUM; the server divides the sum by {expected}."),
        (z * S / m, f"the server divides by {expected}, not by m."),
        (z * S / q, f"the server divides by {expected}, not by q."),
        (z * S * q * m, f"the server divides by {expected}; you multiplied."),
        (z / (q * m), "the noise scales with the clipping norm."),
        (z * S / (q * m) ** 2, "the standard deviation is divided once (the variance by the "
                               "square)."),
        (z * S / np.sqrt(q * m), "the standard deviation is divided by the expected number "
                                 "itself, not by its square root."),
        ((z * S) ** 2 / (q * m), "that mixes up variance and standard deviation.")], {}


_NOISE_STD = Exercise(
    outputs=(("std", None),),
    cases=lambda: [_noise_case(*values) for values in [(1.5, 1.1, 0.1, 1000),
                                                        (0.5, 1.6, 0.01, 5000),
                                                        (3.0, 0.7, 0.5, 8)]],
    random_case=_random_noise, answers=_noise_answers,
    library=("fedlite.differential_privacy.noise_std",),
    nudge='See "3. Add noise to the sum" in notebook 11: the std of the noise on the sum, and '
          'what the server divides the sum by.')


def noise_std(fn):
    """Check fn(clip_norm, noise_multiplier, sampling_rate, num_participants) -> the standard
    deviation of the noise in each coordinate of DP-FedAvg's mean update."""
    return _NOISE_STD.check(fn)


_EXERCISES = {"invert_linear_gradient": _INVERT_LINEAR_GRADIENT,
              "input_from_first_layer": _INPUT_FROM_FIRST_LAYER,
              "encode_fixed_point": _ENCODE_FIXED_POINT, "clip_factor": _CLIP_FACTOR,
              "noise_std": _NOISE_STD}
