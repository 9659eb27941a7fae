"""Tests of fedlite.checks_communication: each checker accepts the reference solution, names each
typical mistake, survives stubs and crashes, and prints the same text every time."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import crashes, load_solutions, stub_none, stub_not_implemented

from fedlite import checks_communication as checks

solutions = load_solutions("communication_exercises.py")

CHECKERS = ["top_k_with_error_feedback", "quantize_unbiased", "lora_bytes",
            "rounds_until_data_is_cheaper", "never_selected_probability"]



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


WRONG = [  # (checker, wrong answer, words the verdict must contain)
    ("top_k_with_error_feedback", ef_no_residual, ["residual is not added"]),
    ("top_k_with_error_feedback", ef_smallest, ["smallest"]),
    ("top_k_with_error_feedback", ef_signed, ["magnitudes", "negative"]),
    ("top_k_with_error_feedback", ef_residual_dropped, ["new_residual: it is zero", "drops"]),
    ("top_k_with_error_feedback", ef_residual_forgets_old, ["forgets the old residual"]),
    ("top_k_with_error_feedback", ef_in_place, ["in place", "residual"]),
    ("quantize_unbiased", q_nearest, ["nearest", "biased"]),
    ("quantize_unbiased", q_down, ["round down", "biased"]),
    ("quantize_unbiased", q_coin, ["1/2", "biased"]),
    ("quantize_unbiased", q_gaps, ["2^b - 1 gaps"]),
    ("quantize_unbiased", q_norm, ["max|v|", "norm"]),
    ("quantize_unbiased", q_codes, ["codes"]),
    ("lora_bytes", lora_float32, ["float32"]),
    ("lora_bytes", lora_count_values, ["values, not bytes"]),
    ("lora_bytes", lora_frozen_ignored, ["freeze_A is ignored"]),
    ("lora_bytes", lora_frozen_sends_A, ["B (h, r)", "shared seed"]),
    ("lora_bytes", lora_full_layer, ["whole layer"]),
    ("rounds_until_data_is_cheaper", data_no_target, ["target y"]),
    ("rounds_until_data_is_cheaper", data_one_way, ["twice"]),
    ("rounds_until_data_is_cheaper", data_no_k, ["multiply by K"]),
    ("rounds_until_data_is_cheaper", data_ceil, ["next round"]),
    ("never_selected_probability", never_with_fraction, ["m / K"]),
    ("never_selected_probability", never_no_minimum, ["max(1"]),
    ("never_selected_probability", never_complement, ["missing at least one round",
                                                      "never selected"]),
    ("never_selected_probability", never_sum, ["multiply"]),
]


# --------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("checker", CHECKERS)
def test_accepts_the_reference_solution(capsys, checker):
    contract.assert_accepted(*run(capsys, checker, getattr(solutions, checker)))


def test_accepts_other_correct_forms(capsys):
    assert run(capsys, "quantize_unbiased", quantizer(stochastic))[0] is True
    assert run(capsys, "lora_bytes", lambda d, h, r, f: np.int64(8 * lora_values(d, h, r, f)))[0]


@pytest.mark.parametrize("checker, fn, words", WRONG, ids=[w[1].__name__ for w in WRONG])
def test_names_the_mistake(capsys, checker, fn, words):
    contract.assert_rejected(*run(capsys, checker, fn), words)




@pytest.mark.parametrize("checker", CHECKERS)
@pytest.mark.parametrize("fn, words", [
    (stub_none, ["returned None", "stub"]),
    (stub_not_implemented, ["still the stub", "NotImplementedError"]),
    (crashes, ["raised ZeroDivisionError: division by zero"]),
    (None, ["pass your function itself", "you passed None"]),
], ids=["none", "not_implemented", "crash", "None"])
def test_stubs_and_crashes_give_a_verdict_not_an_exception(capsys, checker, fn, words):
    contract.assert_rejected(*run(capsys, checker, fn), words)


@pytest.mark.parametrize("checker", CHECKERS)
def test_output_is_deterministic(capsys, checker):
    contract.assert_deterministic(capsys, checks, checker, getattr(solutions, checker))
