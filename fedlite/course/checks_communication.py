"""Exercise checkers for communication and large models (notebooks 12 and 14).

Same contract as `fedlite.checks`: `checks_communication.lora_bytes(my_fn)` runs your function
on fixed cases and on fresh random ones, prints "✔ Correct: ..." or "✘ Not yet: ..." naming the
usual mistake, returns a `CheckResult` (true when right), and never raises, whatever your
function does.
"""
from __future__ import annotations

import math

import numpy as np

from ._checking import (CheckResult, Exercise, Session, as_real, decimals, format_call,
                        fresh_failure, fresh_rng, guarded, library_codes, not_a_function, verdict)

__all__ = ["CheckResult", "lora_bytes", "never_selected_probability", "quantize_unbiased",
           "rounds_until_data_is_cheaper", "top_k_with_error_feedback"]

SEED = 0            # the fixed cases are drawn with this seed
NUM_DRAWS = 2000    # calls of a randomised function when checking that it is unbiased


# ------------------------------------------------------------------------------ top-k + EF

def _keep(vector, order):
    """vector on the entries order[:k] (given as indices), zeros elsewhere."""
    kept = np.zeros_like(vector)
    kept[order] = vector[order]
    return kept


def _top_k_case(report, residual, k, label=""):
    return f"{label}P = {report.size} values, k = {k}", dict(report=report, residual=residual, k=k)


def _top_k_cases():
    rng = np.random.default_rng(SEED)
    cases = []
    for P, k in [(8, 2), (6, 3), (7, 5)]:
        report = rng.normal(size=P)
        report[0] = -3.0   # a large negative value: the largest magnitude, the smallest value
        cases.append(_top_k_case(report, rng.normal(scale=0.5, size=P), k))
    return cases


def _random_top_k(rng):
    P = int(rng.integers(3, 8))
    k = int(rng.integers(1, P + 1))
    while True:  # no tie between the k-th and the (k+1)-th largest |value|: one right answer
        report, residual = decimals(rng, -3, 3, P), decimals(rng, -1, 1, P)
        sizes = np.sort(np.abs(report + residual))[::-1]
        if k == P or sizes[k - 1] - sizes[k] > 0.05:
            return _top_k_case(report, residual, k, "a fresh random case, ")


def _top_k_answers(report, residual, k):
    corrected = report + residual
    sent = _keep(corrected, np.argsort(-np.abs(corrected), kind="stable")[:k])
    owed = corrected - sent
    plain = _keep(report, np.argsort(-np.abs(report), kind="stable")[:k])
    smallest = _keep(corrected, np.argsort(np.abs(corrected), kind="stable")[:k])
    signed = _keep(corrected, np.argsort(-corrected, kind="stable")[:k])
    return (sent, owed), [
        ((plain, report - plain), "the residual is not added: rank and send corrected = "
                                  "report + residual."),
        ((smallest, corrected - smallest), "you kept the k smallest magnitudes; keep the "
                                           "largest |value|."),
        ((signed, corrected - signed), "you kept the k largest values; keep the largest "
                                       "magnitudes |value| (a big negative entry counts too)."),
        ((sent, -owed), "wrong sign: it is what was left out, corrected - sent."),
        ((sent, residual), "it is unchanged: it must become what was left out this time."),
        ((sent, np.zeros_like(sent)), "it is zero, which drops what was not sent; keep it for "
                                      "the next round."),
        ((sent, corrected), "it is all of corrected: subtract what was sent."),
        ((sent, report - sent), "it forgets the old residual: use corrected - sent, with "
                                "corrected = report + residual.")], {
        ("sent", (k,)): "That is the k values alone: return the dense vector the server reads, "
                        "zeros where nothing was sent."}


_TOP_K = Exercise(
    outputs=(("sent", "report"), ("new_residual", "residual")), cases=_top_k_cases,
    random_case=_random_top_k, answers=_top_k_answers,
    library=("fedlite.compression.top_k", "fedlite.compression.TopK.aggregate"),
    praise="Nothing is ever lost: what is not sent now is sent later.",
    nudge='See "2. Top-k sparsification, with error feedback" in notebook 12: what is ranked, '
          'by which size, and what is kept for later.')


def top_k_with_error_feedback(fn):
    """Check fn(report, residual, k) -> (sent, new_residual), top-k with error feedback: sent is
    dense (zeros where nothing is sent), new_residual what is still owed."""
    return _TOP_K.check(fn)


# ------------------------------------------------------------------------------ quantisation

class _Rng:
    """Prints as the code that rebuilds a seeded generator (for a failing random case)."""

    def __init__(self, seed):
        self.seed = seed

    def __repr__(self):
        return f"np.random.default_rng({self.seed})"


def _random_vector(rng, bits):
    """A short vector whose values all sit well inside a gap between levels (so that the mean
    over NUM_DRAWS calls pins the probability down), except the largest |v|, on a level."""
    top = 2 ** bits - 1
    while True:
        vector = decimals(rng, -2, 2, int(rng.integers(3, 7)))
        s = np.max(np.abs(vector))
        fraction = ((vector + s) / (2 * s) * top) % 1
        inner = np.abs(vector) < s
        if s > 0 and np.all((fraction[inner] > 0.1) & (fraction[inner] < 0.9)):
            return vector


_QUANTIZE_LIBRARY = library_codes(("fedlite.compression.quantize", "fedlite.compression.dequantize",
                                   "fedlite.compression.StochasticQuantizer.aggregate"))


@guarded
def quantize_unbiased(fn):
    """Check fn(vector, bits, rng) -> the dequantized values after unbiased stochastic rounding
    to the 2^b levels of notebook 12, section 3 (the checker calls fn NUM_DRAWS times per case).
    """
    if not callable(fn):
        return not_a_function(fn)
    session = Session(_QUANTIZE_LIBRARY)
    rng = np.random.default_rng(SEED)
    cases = [(rng.normal(size=6), 2, SEED, ""), (rng.normal(size=5), 1, SEED, ""),
             (rng.normal(size=4), 3, SEED, ""), (np.zeros(4), 2, SEED, "")]
    fresh = fresh_rng()
    for _ in range(2):
        bits = int(fresh.integers(1, 5))
        cases.append((_random_vector(fresh, bits), bits, int(fresh.integers(2**31)),
                      "a fresh random case, "))
    for vector, bits, seed, label in cases:
        what = f"a vector of {vector.size} values" if vector.any() else "a vector of zeros"
        label = f"{label}{what} and bits = {bits}"
        problem = _quantize_problem(session, fn, vector, bits, np.random.default_rng(seed), label)
        cheat = session.cheat()
        if cheat:
            return verdict(False, cheat)
        if problem:
            args = dict(vector=vector, bits=bits, rng=_Rng(seed))
            if label.startswith("a fresh"):
                problem = fresh_failure(problem, format_call(fn, args))
            return verdict(False, problem, args)
    return verdict(True, f"your quantizer lands on the 2^b levels and is unbiased ({NUM_DRAWS} "
                         f"calls each on 3 fixed vectors and 2 fresh random ones), and it "
                         f"returns zeros for a vector of zeros.")


def _quantize_problem(session, fn, vector, bits, rng, label):
    """What is wrong with fn on one vector, or None."""
    s = float(np.max(np.abs(vector)))
    draws = []
    for _ in range(NUM_DRAWS if s > 0 else 10):
        outcome = session.call(fn, dict(vector=vector, bits=bits, rng=rng), keep=("rng",))
        if outcome.error:
            return outcome.error if outcome.stub else f"{outcome.error} (on {label})"
        if outcome.value is None:
            return "your function returned None: is it still the stub? Return the values."
        if outcome.changed:
            return (f"your function changed the caller's vector in place (on {label}): build a "
                    f"new array instead.")
        result, what = as_real(outcome.value)
        if what:
            return f"return an array of real numbers; your function returned {what}."
        if result.shape != vector.shape:
            return (f"your answer has shape {result.shape} but should have shape "
                    f"{vector.shape}, one value per input (on {label}).")
        if s == 0:
            if not np.all(np.isfinite(result)):
                return ("for a vector of zeros your function returns NaN or inf: there "
                        "max|v| = 0, so the spacing of the levels is 0 and dividing by it gives "
                        "0/0. Handle that case: every value is then exactly 0.")
            if np.any(result != 0):
                return "for a vector of zeros every value should come back as exactly 0."
            continue
        draws.append(result)
        if len(draws) == 1:
            problem = _level_problem(result, vector, bits, label)
            if problem:
                return problem
    if s == 0:
        return None
    return _bias_problem(np.array(draws), vector, bits, label)


def _levels(vector, scale, gaps):
    """(the level just below, just above, the fraction of the gap) of each value; levels
    -s + c 2s/gaps."""
    step = 2 * scale / gaps
    position = (vector + scale) / step
    return (-scale + np.floor(position) * step, -scale + np.ceil(position) * step,
            position - np.floor(position), step)


def _on_levels(result, vector, scale, gaps):
    below, above, _, _ = _levels(vector, scale, gaps)
    return bool(np.all(np.isclose(result, below) | np.isclose(result, above)))


def _level_problem(result, vector, bits, label):
    """Why the values are not on the levels just below or above them, or None."""
    s = float(np.max(np.abs(vector)))
    if _on_levels(result, vector, s, 2 ** bits - 1):
        return None
    if not np.all(np.isfinite(result)):
        return f"your answer contains NaN or inf (on {label}): look for a division by zero."
    if np.allclose(result, np.round(result)) and result.min() >= 0 and result.max() < 2 ** bits:
        return "those look like the codes c: return the values the codes stand for."
    if _on_levels(result, vector, s, 2 ** bits):
        return "2^b levels have 2^b - 1 gaps between them, not 2^b."
    if _on_levels(result, vector, float(np.linalg.norm(vector)), 2 ** bits - 1):
        return "the scale is s = max|v| (the largest magnitude), not the norm ||v||."
    return (f"your values are not on the 2^b levels of section 3, each value on the level just "
            f"below or just above it (on {label}).")


def _bias_problem(draws, vector, bits, label):
    """Why the mean of the draws is not the vector, or None."""
    below, above, fraction, step = _levels(vector, float(np.max(np.abs(vector))), 2 ** bits - 1)
    mean = draws.mean(axis=0)
    standard_error = np.sqrt(fraction * (1 - fraction) / len(draws)) * step
    if np.all(np.abs(mean - vector) <= 6 * standard_error + 1e-9):
        return None
    up = "Round up with probability (v - below) / Δ."
    if np.allclose(draws, np.where(fraction < 0.5, below, above)):
        return f"you always round to the nearest level: that is biased. {up}"
    if np.allclose(draws, below):
        return f"you always round down: that is biased. {up}"
    if np.allclose(draws, above):
        return f"you always round up: that is biased. {up}"
    if np.all(np.abs(mean - (below + above) / 2) <= 6 * step / np.sqrt(len(draws))):
        return (f"you round up or down with probability 1/2: that is biased. {up} Values "
                f"near a level then mostly land on it.")
    error = float(np.max(np.abs(mean - vector)))
    return (f"the mean over {len(draws)} calls is off by up to {error:.2g} (on {label}): the "
            f"quantizer is biased. {up}")


# ------------------------------------------------------------------------------ LoRA bytes

def _lora_case(d, h, r, frozen, label=""):
    return (f"{label}d = {d}, h = {h}, rank = {r}, freeze_A = {frozen}",
            dict(num_features=d, hidden=h, rank=r, freeze_A=frozen))


def _lora_answers(num_features, hidden, rank, freeze_A):
    d, h, r = num_features, hidden, rank
    right = 8 * r * (h if freeze_A else h + d)
    wrong = [(right / 8, "that counts values, not bytes: each float64 value takes 8 bytes."),
             (right / 2, "4 bytes per value is float32; fedlite sends float64, 8 bytes each."),
             (8 * right, "that counts bits: a float64 value is 8 bytes."),
             (2 * right, "that counts the download too; the question is what one participant "
                         "uploads."),
             (8 * d * h, "that is the whole layer W: LoRA sends only the adapter."),
             (8 * r * h * d, "B A is never sent as a matrix: send its two factors.")]
    wrong += [(8 * r * (h + d), "freeze_A is ignored: a frozen A is never sent."),
              (8 * r * d if freeze_A else right, "with A frozen the participant sends B; A is "
                                                 "rebuilt from the shared seed."),
              (8 * r * h, "A is trained too, so it is sent too.")]
    return right, wrong, {}


_LORA_BYTES = Exercise(
    outputs=(("bytes", None),),
    cases=lambda: [_lora_case(*values) for values in [(64, 384, 4, False), (64, 384, 4, True),
                                                       (10, 7, 2, False), (10, 7, 3, True)]],
    random_case=lambda rng: _lora_case(int(rng.integers(2, 101)), int(rng.integers(2, 501)),
                                       int(rng.integers(1, 9)), bool(rng.integers(2)),
                                       "a fresh random case, "),
    answers=_lora_answers, library=("fedlite.lora.adapter_bytes",),
    nudge='See "4. A large model, fine-tuned federatedly" in notebook 12: the shapes of B and A, '
          'which of them a participant sends, and how many bytes a float64 value takes.')


def lora_bytes(fn):
    """Check fn(num_features, hidden, rank, freeze_A) -> the bytes one participant uploads per
    round for the LoRA adapter of notebook 12 (float64 values)."""
    return _LORA_BYTES.check(fn)


# ------------------------------------------------------------------------------ notebook 14

def _rounds_case(n, d, p, k, label=""):
    return (f"{label}N = {n}, d = {d}, P = {p}, K = {k}",
            dict(num_rows=n, num_features=d, num_params=p, num_participants=k))


def _rounds_answers(num_rows, num_features, num_params, num_participants):
    data = num_rows * (num_features + 1)
    per_round = 2 * num_participants * num_params
    return data // per_round + 1, [
        (num_rows * num_features // per_round + 1, "the data also include the target y."),
        (data // (num_participants * num_params) + 1, "the model crosses the network twice per "
                                                      "round: down to each participant and "
                                                      "back up."),
        (data // (2 * num_params) + 1, "every one of the K participants downloads and uploads "
                                       "the model."),
        (math.ceil(data / per_round), "R must exceed the data's size: when the two are equal, "
                                      "it is the next round."),
        (data // per_round, "that is the last round at which the data are still larger; the "
                            "question asks for the first one after which FL has sent more."),
        (data / per_round, "that is a fraction of a round: R is a whole number of rounds.")], {}


_ROUNDS_UNTIL_DATA_IS_CHEAPER = Exercise(
    outputs=(("rounds", None),),
    cases=lambda: [_rounds_case(*values) for values in
                   [(100_000, 9, 11, 10), (2_000, 63, 25_345, 10), (1000, 4, 5, 4),
                    (60_000, 784, 100_000, 100)]],
    random_case=lambda rng: _rounds_case(int(rng.integers(100, 10**6)), int(rng.integers(1, 101)),
                                         int(rng.integers(2, 10**5)), int(rng.integers(2, 101)),
                                         "a fresh random case, "),
    answers=_rounds_answers,
    nudge='Count both sides in float64 values: the data shipped once (every number of every '
          'row), and what one round sends ("1. Bytes per round grow with the model" in '
          'notebook 12).')


def rounds_until_data_is_cheaper(fn):
    """Check fn(num_rows, num_features, num_params, num_participants) -> the first round after
    which federated training has sent more bytes than shipping the data once would."""
    return _ROUNDS_UNTIL_DATA_IS_CHEAPER.check(fn)


def _never_case(k, p, r, label=""):
    return (f"{label}K = {k}, participation = {p}, {r} rounds",
            dict(num_participants=k, participation=p, num_rounds=r))


def _random_never(rng):
    while True:
        k, p, r = int(rng.integers(2, 51)), float(decimals(rng, 0.01, 0.99, places=2)), \
            int(rng.integers(1, 11))
        m = max(1, round(p * k))
        if abs(p * k % 1 - 0.5) > 0.01 and (1 - m / k) ** r > 1e-6:  # round() is unambiguous
            return _never_case(k, p, r, "a fresh random case, ")


def _never_answers(num_participants, participation, num_rounds):
    K, R = num_participants, num_rounds
    m = max(1, round(participation * K))
    q = 1 - m / K
    return q ** R, [
        ((1 - participation) ** R, "simulate selects a whole number m of participants, so the "
                                   "chance to be picked in a round is m / K, not "
                                   "participation."),
        ((1 - round(participation * K) / K) ** R, "at least one participant is selected each "
                                                  "round."),
        ((1 - max(1, int(participation * K)) / K) ** R, "simulate rounds participation K to the "
                                                        "nearest whole number; int() cuts the "
                                                        "fraction off."),
        (1 - (m / K) ** R, "that is the chance of missing at least one round; the question is "
                           "missing every round."),
        ((m / K) ** R, "that is the chance of being selected in every round."),
        (1 - q ** R, "that is the chance of being selected at least once."),
        (q * R, "the rounds are independent: multiply the probabilities, do not add them."),
        (q, "that is for one round; the participant must be left out in all R rounds.")], {}


_NEVER_SELECTED_PROBABILITY = Exercise(
    outputs=(("probability", None),),
    cases=lambda: [_never_case(*values) for values in
                   [(7, 0.3, 5), (10, 0.27, 4), (10, 0.01, 3), (20, 0.33, 6)]],
    random_case=_random_never, answers=_never_answers,
    nudge='See "2. How many participants are needed?" in notebook 14: the chance of being left '
          'out in one round, then in R independent rounds.')


def never_selected_probability(fn):
    """Check fn(num_participants, participation, num_rounds) -> the probability that a given
    participant is never selected by `fedlite.simulate` in num_rounds rounds."""
    return _NEVER_SELECTED_PROBABILITY.check(fn)


_EXERCISES = {"top_k_with_error_feedback": _TOP_K, "lora_bytes": _LORA_BYTES,
              "rounds_until_data_is_cheaper": _ROUNDS_UNTIL_DATA_IS_CHEAPER,
              "never_selected_probability": _NEVER_SELECTED_PROBABILITY}
