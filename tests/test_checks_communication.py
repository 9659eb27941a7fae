"""Tests of fedlite.checks_communication: each checker accepts the reference solution, names
each typical mistake only when the answer fits it on every case, survives stubs, crashes and
hostile answers, catches cheats (a table of the fixed answers, fedlite's own function), and
prints the same text every time for a wrong answer."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import load_solutions

from fedlite import checks_communication as checks
from fedlite import compression, lora

solutions = load_solutions("communication_exercises.py")

CHECKERS = ["top_k_with_error_feedback", "quantize_unbiased", "lora_bytes",
            "rounds_until_data_is_cheaper", "never_selected_probability"]
OUTPUTS = {"top_k_with_error_feedback": 2}  # the others return one value


def run(capsys, checker, fn):
    return contract.run(capsys, checks, checker, fn)


# ------------------------------------------------------------------ typical wrong answers

def sparsify(vector, k, key=np.abs, largest=True):
    order = np.argsort(key(vector), kind="stable")
    keep = order[-k:] if largest else order[:k]
    sent = np.zeros_like(vector)
    sent[keep] = vector[keep]
    return sent


def ef_no_residual(report, residual, k):
    sent = sparsify(report, k)
    return sent, report - sent


def ef_smallest(report, residual, k):
    sent = sparsify(report + residual, k, largest=False)
    return sent, report + residual - sent


def ef_signed(report, residual, k):
    sent = sparsify(report + residual, k, key=lambda v: v)
    return sent, report + residual - sent


def ef_residual_dropped(report, residual, k):
    return sparsify(report + residual, k), np.zeros_like(report)


def ef_residual_forgets_old(report, residual, k):
    sent = sparsify(report + residual, k)
    return sent, report - sent


def ef_in_place(report, residual, k):
    residual += report
    sent = sparsify(residual, k)
    return sent, residual - sent


def quantizer(rounding, gaps=lambda b: 2 ** b - 1, scale=lambda v: np.max(np.abs(v))):
    def fn(vector, bits, rng):
        s = scale(vector)
        step = 2 * s / gaps(bits)
        position = (vector + s) / step
        return -s + rounding(position, rng) * step
    return fn


def stochastic(position, rng):
    below = np.floor(position)
    return below + (rng.random(position.shape) < position - below)


q_nearest = quantizer(lambda x, rng: np.round(x))
q_down = quantizer(lambda x, rng: np.floor(x))
q_coin = quantizer(lambda x, rng: np.where(rng.random(x.shape) < 0.5, np.floor(x), np.ceil(x)))
q_gaps = quantizer(stochastic, gaps=lambda b: 2 ** b)
q_norm = quantizer(stochastic, scale=np.linalg.norm)


def q_codes(vector, bits, rng):
    s = np.max(np.abs(vector))
    return stochastic((vector + s) / (2 * s / (2 ** bits - 1)), rng)


def lora_values(d, h, r, frozen):
    return r * h if frozen else r * (h + d)


def lora_float32(d, h, r, frozen):
    return 4 * lora_values(d, h, r, frozen)


def lora_count_values(d, h, r, frozen):
    return lora_values(d, h, r, frozen)


def lora_frozen_ignored(d, h, r, frozen):
    return 8 * r * (h + d)


def lora_frozen_sends_A(d, h, r, frozen):
    return 8 * r * d if frozen else 8 * r * (h + d)


def lora_full_layer(d, h, r, frozen):
    return 8 * d * h


def data_no_target(n, d, p, k):
    return n * d // (2 * k * p) + 1


def data_one_way(n, d, p, k):
    return n * (d + 1) // (k * p) + 1


def data_no_k(n, d, p, k):
    return n * (d + 1) // (2 * p) + 1


def data_ceil(n, d, p, k):
    return int(np.ceil(n * (d + 1) / (2 * k * p)))


def never_with_fraction(k, p, r):
    return (1 - p) ** r


def never_no_minimum(k, p, r):
    return (1 - round(p * k) / k) ** r


def never_complement(k, p, r):
    m = max(1, round(p * k))
    return 1 - (m / k) ** r


def never_sum(k, p, r):
    m = max(1, round(p * k))
    return (1 - m / k) * r


def q_no_zero_case(vector, bits, rng):
    """The solution without its `if s == 0` line: 0/0 gives NaN for a vector of zeros."""
    s = np.max(np.abs(vector))
    step = 2 * s / (2 ** bits - 1)
    return -s + stochastic((vector + s) / step, rng) * step


def q_fixed_vectors_only(vector, bits, rng):
    """Right on the checker's fixed vectors (looked up), not quantised at all elsewhere."""
    fixed = np.random.default_rng(0)
    if any(np.array_equal(vector, fixed.normal(size=n)) for n in (6, 5, 4)) or not vector.any():
        return solutions.quantize_unbiased(vector, bits, rng)
    return vector


def q_written_differently(vector, bits, rng):
    """A right quantiser, written unlike the solution (and saying what zeros give)."""
    return quantizer(stochastic)(vector, bits, rng) if vector.any() else np.zeros_like(vector)


def ef_k_values_only(report, residual, k):
    corrected = report + residual
    return np.sort(corrected)[-k:], corrected


def data_fraction(n, d, p, k):
    return n * (d + 1) / (2 * k * p)


def never_with_int(k, p, r):
    return (1 - max(1, int(p * k)) / k) ** r


def never_always_zero(k, p, r):
    return 0.0


def never_every_round(k, p, r):
    m = max(1, round(p * k))
    return (m / k) ** r


WRONG = [  # (checker, wrong answer, words the verdict must contain, words it must not)
    ("top_k_with_error_feedback", ef_no_residual, ["residual is not added"], []),
    ("top_k_with_error_feedback", ef_smallest, ["smallest"], []),
    ("top_k_with_error_feedback", ef_signed, ["magnitudes", "negative"], []),
    ("top_k_with_error_feedback", ef_residual_dropped, ["new_residual: it is zero", "drops"], []),
    ("top_k_with_error_feedback", ef_residual_forgets_old, ["forgets the old residual"], []),
    ("top_k_with_error_feedback", ef_in_place, ["in place", "residual"], []),
    ("top_k_with_error_feedback", ef_k_values_only, ["shape (2,)", "dense"], []),
    ("quantize_unbiased", q_nearest, ["nearest", "biased"], []),
    ("quantize_unbiased", q_down, ["round down", "biased"], []),
    ("quantize_unbiased", q_coin, ["1/2", "biased"], []),
    ("quantize_unbiased", q_gaps, ["2^b - 1 gaps"], []),
    ("quantize_unbiased", q_norm, ["max|v|", "norm"], []),
    ("quantize_unbiased", q_codes, ["codes"], []),
    ("quantize_unbiased", q_no_zero_case, ["vector of zeros", "NaN"], []),  # issue 14
    ("quantize_unbiased", q_fixed_vectors_only, ["fresh random case", "The case: "
                                                 "q_fixed_vectors_only(vector=np.array(["], []),
    ("lora_bytes", lora_float32, ["float32"], []),
    ("lora_bytes", lora_count_values, ["values, not bytes"], []),
    ("lora_bytes", lora_frozen_ignored, ["freeze_A is ignored"], []),
    ("lora_bytes", lora_frozen_sends_A, ["sends B", "shared seed"], []),
    ("lora_bytes", lora_full_layer, ["whole layer"], []),
    ("rounds_until_data_is_cheaper", data_no_target, ["target y"], []),
    ("rounds_until_data_is_cheaper", data_one_way, ["twice"], []),
    ("rounds_until_data_is_cheaper", data_no_k, ["K participants"], []),
    ("rounds_until_data_is_cheaper", data_ceil, ["next round"], []),
    ("rounds_until_data_is_cheaper", data_fraction, ["fraction of a round"], []),
    ("never_selected_probability", never_with_fraction, ["m / K"], []),
    ("never_selected_probability", never_no_minimum, ["at least one participant"], []),
    ("never_selected_probability", never_with_int, ["int()", "nearest"], []),  # issue 14
    ("never_selected_probability", never_complement, ["missing at least one round",
                                                      "every round"], []),
    ("never_selected_probability", never_sum, ["multiply"], []),
    ("never_selected_probability", never_every_round, ["selected in every round"], []),
    ("never_selected_probability", never_always_zero, ["is off"],  # issue 14
     ["selected in every round"]),
]


OTHER_FORMS = [  # correct answers written differently from the solution
    ("quantize_unbiased", q_written_differently),
    ("lora_bytes", lambda d, h, r, f: np.int64(8 * lora_values(d, h, r, f))),
    ("lora_bytes", lambda d, h, r, f: float(8 * lora_values(d, h, r, f))),
    ("rounds_until_data_is_cheaper", lambda n, d, p, k: np.floor(n * (d + 1) / (2 * k * p)) + 1),
    ("never_selected_probability", lambda k, p, r: np.prod([1 - max(1, round(p * k)) / k] * r)),
]


CALLS_FEDLITE = [  # (checker, an answer that calls the library, the name the verdict gives)
    ("lora_bytes", lora.adapter_bytes, "fedlite.lora.adapter_bytes"),
    ("quantize_unbiased", lambda v, b, rng: compression.dequantize(*compression.quantize(v, b, rng),
                                                                   b),
     "fedlite.compression.quantize"),
    ("top_k_with_error_feedback", lambda report, residual, k: (
        compression.densify(*compression.top_k(report + residual, k), len(report)),
        report + residual - compression.densify(*compression.top_k(report + residual, k),
                                                len(report))),
     "fedlite.compression.top_k"),
]


class TestContract(contract.CheckerContract):
    checks, solutions, checkers = checks, solutions, CHECKERS
    wrong, calls_fedlite, other_forms = WRONG, CALLS_FEDLITE, OTHER_FORMS
