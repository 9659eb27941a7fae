"""Exercise checkers for communication and large models (notebooks 10 and 11).

Same contract as `fedlite.checks`: `checks_communication.lora_bytes(my_fn)` runs your function
on fixed cases (seed 0), prints "✔ Correct: ..." or "✘ Not yet: ..." naming the usual mistake,
returns True/False, and never raises, whatever your function does.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np

from .checks import SEED, _check, _describe, _verdict

NUM_DRAWS = 2000   # calls of a randomised function when checking that it is unbiased


# ------------------------------------------------------------------------------ top-k + EF

def _top_k_reference(report, residual, k):
    """(sent, new_residual): the k largest |report + residual| are sent, the rest is owed."""
    corrected = report + residual
    sent = np.zeros_like(corrected)
    keep = np.argsort(-np.abs(corrected), kind="stable")[:k]
    sent[keep] = corrected[keep]
    return sent, corrected - sent


def top_k_with_error_feedback(fn):
    """Check fn(report, residual, k) -> (sent, new_residual), top-k with error feedback.

    corrected = report + residual; sent keeps the k entries of corrected with the largest
    |value| (zeros elsewhere); new_residual = corrected - sent.
    """
    rng = np.random.default_rng(SEED)
    cases = []
    for P, k in [(8, 2), (6, 1), (5, 5)]:
        report = rng.normal(size=P)
        report[0] = -3.0   # a large negative value: the largest magnitude, the smallest value
        cases.append((f"P = {P} values, k = {k}",
                       dict(report=report, residual=rng.normal(scale=0.5, size=P), k=k)))

    def answers(report, residual, k):
        sent, owed = _top_k_reference(report, residual, k)
        plain_sent, _ = _top_k_reference(report, np.zeros_like(report), k)
        corrected = report + residual
        smallest = np.zeros_like(corrected)
        small = np.argsort(np.abs(corrected), kind="stable")[:k]
        smallest[small] = corrected[small]
        signed = np.zeros_like(corrected)
        top = np.argsort(-corrected, kind="stable")[:k]
        signed[top] = corrected[top]
        return (sent, owed), [
            ((plain_sent, report - plain_sent), "the residual is not added: send the top k of "
                                                "corrected = report + residual."),
            ((smallest, corrected - smallest), "you kept the k smallest magnitudes; keep the "
                                               "largest |value|."),
            ((signed, corrected - signed), "you kept the k largest values; keep the largest "
                                           "magnitudes |value| (a big negative entry counts too)."),
            ((sent, -owed), "wrong sign: it is corrected - sent."),
            ((sent, residual), "it is unchanged: it must become corrected - sent, what was "
                               "left out this time."),
            ((sent, np.zeros_like(sent)), "it is zero, which drops what was not sent; keep it: "
                                          "new_residual = corrected - sent."),
            ((sent, corrected), "it is all of corrected: subtract what was sent."),
            ((sent, report - sent), "it forgets the old residual: use corrected - sent, "
                                    "corrected = report + residual.")], {}

    return _check(fn, cases, [("sent", "report"), ("new_residual", "residual")], answers,
                  "Recall: corrected = report + residual; sent = corrected on its k largest "
                  "|values|, 0 elsewhere; new_residual = corrected - sent.",
                  praise="Nothing is ever lost: what is not sent now is sent later.")


# ------------------------------------------------------------------------------ quantisation

def quantize_unbiased(fn):
    """Check fn(vector, bits, rng) -> dequantized values, stochastic rounding to b-bit levels.

    Levels: 2^b values evenly spaced on [-s, s], s = max|v|, spacing Δ = 2 s / (2^b - 1).
    Each value goes to the level below or above it, up with probability (v - below) / Δ, so
    the mean over many calls is v.  The checker calls fn NUM_DRAWS times per case.
    """
    if not callable(fn):
        return _verdict(False, f"pass your function itself (my_fn, not my_fn(...)); "
                               f"you passed {_describe(fn)}.")
    rng = np.random.default_rng(SEED)
    cases = [(rng.normal(size=6), 2), (rng.normal(size=5), 1), (rng.normal(size=4), 3)]
    for vector, bits in cases:
        problem = _quantize_problem(fn, vector, bits)
        if problem:
            return _verdict(False, problem)
    return _verdict(True, f"your quantizer lands on the 2^b levels and is unbiased on all "
                          f"{len(cases)} test cases ({NUM_DRAWS} calls each).")


def _quantize_problem(fn, vector, bits):
    """What is wrong with fn on one vector, or None."""
    label = f"a vector of {vector.size} values and bits = {bits}"
    s = float(np.max(np.abs(vector)))
    step = 2 * s / (2 ** bits - 1)
    position = (vector + s) / step
    below, above = -s + np.floor(position) * step, -s + np.ceil(position) * step
    rng = np.random.default_rng(SEED)
    draws = []
    for _ in range(NUM_DRAWS):
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = fn(vector.copy(), bits, rng)
        except NotImplementedError:
            return ("your function is still the stub (it raises NotImplementedError): "
                    "replace that line with your code.")
        except Exception as exc:  # the student's error becomes the verdict
            line = (re.sub(r"0x[0-9a-fA-F]+", "0x…", str(exc)).splitlines() or [""])[0]
            return f"your function raised {type(exc).__name__}: {line[:150]}"
        if result is None:
            return "your function returned None: is it still the stub? Return the values."
        try:
            result = np.asarray(result, dtype=float)
        except (TypeError, ValueError):
            return f"return an array of numbers; your function returned {_describe(result)}."
        if result.shape != vector.shape:
            return (f"your answer has shape {result.shape} but should have shape "
                    f"{vector.shape}, one value per input (on {label}).")
        draws.append(result)
        if len(draws) == 1:
            on_level = np.isclose(result, below) | np.isclose(result, above)
            if not np.all(on_level):
                return _level_hint(result, vector, bits, label)
    draws = np.array(draws)
    mean = draws.mean(axis=0)
    p = position - np.floor(position)
    standard_error = np.sqrt(p * (1 - p)) * step / np.sqrt(NUM_DRAWS)
    if np.all(np.abs(mean - vector) <= 5 * standard_error + 1e-9):
        return None
    nearest = -s + np.round(position) * step
    if np.allclose(draws, nearest):
        return ("you always round to the nearest level: that is biased. Round up with "
                "probability (v - below) / Δ, e.g. rng.random(v.shape) < fraction.")
    if np.allclose(draws, below):
        return "you always round down: that is biased. Round up with probability (v - below) / Δ."
    if np.allclose(draws, above):
        return "you always round up: that is biased. Round up with probability (v - below) / Δ."
    fair = np.abs(draws.mean(axis=0) - (below + above) / 2) <= 5 * step / np.sqrt(NUM_DRAWS)
    if np.all(fair):
        return ("you round up or down with probability 1/2: that is biased. Round up with "
                "probability (v - below) / Δ, so that values near a level mostly land on it.")
    error = float(np.max(np.abs(mean - vector)))
    return (f"the mean over {NUM_DRAWS} calls is off by up to {error:.2g} (on {label}): the "
            f"quantizer is biased. Round up with probability (v - below) / Δ.")


def _on_levels(result, vector, scale, gaps):
    """True if every result is the level just below or above its value (levels -s + c 2s/gaps)."""
    step = 2 * scale / gaps
    position = (vector + scale) / step
    return bool(np.all(np.isclose(result, -scale + np.floor(position) * step)
                       | np.isclose(result, -scale + np.ceil(position) * step)))


def _level_hint(result, vector, bits, label):
    """Why the values are not on the levels -s + c Δ, Δ = 2 s / (2^b - 1)."""
    s = float(np.max(np.abs(vector)))
    if np.allclose(result, np.round(result)) and result.min() >= 0 and result.max() < 2 ** bits:
        return "those look like the codes c: return the dequantized values -s + c Δ."
    if _on_levels(result, vector, s, 2 ** bits):
        return "2^b levels have 2^b - 1 gaps between them: Δ = 2 s / (2^b - 1), not 2 s / 2^b."
    if _on_levels(result, vector, float(np.linalg.norm(vector)), 2 ** bits - 1):
        return "the scale is s = max|v| (the largest magnitude), not the norm ||v||."
    return (f"your values are not on the levels -s + c Δ, Δ = 2 s / (2^b - 1), s = max|v| "
            f"(on {label}).")


# ------------------------------------------------------------------------------ LoRA bytes

def lora_bytes(fn):
    """Check fn(num_features, hidden, rank, freeze_A) -> bytes one participant uploads per round.

    The adapter W' = W + B A on the first layer, W (h, d): B (h, r), A (r, d), float64 values.
    freeze_A=False sends B and A: 8 r (h + d) bytes; freeze_A=True sends B only: 8 r h.
    """
    cases = [(f"d = {d}, h = {h}, rank = {r}, freeze_A = {frozen}",
              dict(num_features=d, hidden=h, rank=r, freeze_A=frozen))
             for d, h, r, frozen in [(64, 384, 4, False), (64, 384, 4, True), (10, 7, 2, False),
                                     (10, 7, 3, True)]]

    def answers(num_features, hidden, rank, freeze_A):
        d, h, r = num_features, hidden, rank
        right = 8 * r * (h if freeze_A else h + d)
        wrong = [(right / 8, "that counts values, not bytes: each float64 value takes 8 bytes."),
                 (right / 2, "4 bytes per value is float32; fedlite sends float64, 8 bytes each."),
                 (8 * right, "that counts bits: a float64 value is 8 bytes."),
                 (8 * d * h, "that is the whole layer W (h d values): LoRA sends only the "
                             "adapter, r (h + d) values."),
                 (8 * r * h * d, "B A is never sent as a matrix: send its factors B (h, r) and "
                                 "A (r, d), r (h + d) values.")]
        if freeze_A:
            wrong += [(8 * r * d, "with A frozen the participant sends B (h, r), r h values; "
                                  "A (r, d) is rebuilt from the shared seed."),
                      (8 * r * (h + d), "freeze_A is ignored: a frozen A is never sent, only "
                                        "B (h, r).")]
        else:
            wrong.append((8 * r * h, "A is trained too, so it is sent too: r (h + d) values."))
        return right, wrong, {}

    return _check(fn, cases, [("bytes", None)], answers,
                  "Recall: B is (h, r), A is (r, d), 8 bytes per value; a frozen A is not sent.")


# ------------------------------------------------------------------------------ notebook 11

def rounds_until_data_is_cheaper(fn):
    """Check fn(num_rows, num_features, num_params, num_participants) -> the first round R after
    which federated training has sent more bytes than shipping the data once would.

    Data: every row's features and target as float64, 8 N (d + 1) bytes.  Federated: every
    participant receives and sends the model each round, 2 K P 8 bytes per round.  R is the
    smallest whole number with 2 K P 8 R > 8 N (d + 1).
    """
    cases = [(f"N = {n}, d = {d}, P = {p}, K = {k}",
              dict(num_rows=n, num_features=d, num_params=p, num_participants=k))
             for n, d, p, k in [(100_000, 9, 11, 10), (2_000, 63, 25_345, 10), (1000, 4, 5, 4),
                                (60_000, 784, 100_000, 100)]]

    def answers(num_rows, num_features, num_params, num_participants):
        data = num_rows * (num_features + 1)
        per_round = 2 * num_participants * num_params
        right = data // per_round + 1
        return right, [
            (num_rows * num_features // per_round + 1, "the data also include the target y: "
                                                       "each row is d + 1 numbers."),
            (data // (num_participants * num_params) + 1, "the model crosses the network twice "
                                                          "per round: down to each participant "
                                                          "and back up."),
            (data // (2 * num_params) + 1, "every one of the K participants downloads and "
                                           "uploads the model: multiply by K."),
            (math.ceil(data / per_round), "R must exceed the data's size: when 2 K P R equals "
                                          "N (d + 1) exactly, it is the next round."),
            (data // per_round, "that is the last round at which the data are still larger; "
                                "add one.")], {}

    return _check(fn, cases, [("rounds", None)], answers,
                  "Recall: smallest R with 2 K P R > N (d + 1) (both sides in float64 values).")


def never_selected_probability(fn):
    """Check fn(num_participants, participation, num_rounds) -> the probability that a given
    participant is never selected in num_rounds rounds.

    `fedlite.simulate` selects m = max(1, round(participation · K)) of the K participants each
    round, uniformly and independently across rounds: (1 - m / K) ** num_rounds.
    """
    cases = [(f"K = {k}, participation = {p}, {r} rounds",
              dict(num_participants=k, participation=p, num_rounds=r))
             for k, p, r in [(7, 0.3, 5), (10, 0.01, 3), (100, 0.1, 20), (4, 1.0, 2)]]

    def answers(num_participants, participation, num_rounds):
        K, R = num_participants, num_rounds
        m = max(1, round(participation * K))
        q = 1 - m / K
        return q ** R, [
            ((1 - participation) ** R, "simulate selects m = max(1, round(participation K)) "
                                       "participants, so use m / K, not participation."),
            ((1 - round(participation * K) / K) ** R, "at least one participant is selected "
                                                      "each round: m = max(1, ...)."),
            (1 - (m / K) ** R, "that is the chance of missing at least one round; "
                               "never selected is (1 - m/K) ** R."),
            ((m / K) ** R, "that is the chance of being selected in every round."),
            (q * R, "the rounds are independent: multiply the probabilities (a power), "
                    "do not add them."),
            (q, "that is for one round; for R independent rounds raise it to the power R.")], {}

    return _check(fn, cases, [("probability", None)], answers,
                  "Recall: m = max(1, round(participation K)); P(never) = (1 - m/K) ** R.")
