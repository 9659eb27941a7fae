"""Tests of fedlite.checks_privacy: each checker accepts the reference solution, names each
typical mistake, survives stubs and crashes, and prints the same text every time."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import load_solutions

from fedlite import checks_privacy as checks

solutions = load_solutions("privacy_exercises.py")

CHECKERS = ["invert_linear_gradient", "input_from_first_layer", "total_mask",
            "encode_fixed_point", "clip_factor", "noise_std"]


def run(capsys, checker, fn):
    return contract.run(capsys, checks, checker, fn)


# ------------------------------------------------------------------ typical wrong answers

def invert_upside_down(grad_w, grad_b, w, b):
    x = grad_b / grad_w
    return x, w @ solutions.invert_linear_gradient(grad_w, grad_b, w, b)[0] + b - grad_b


def invert_y_hat(grad_w, grad_b, w, b):
    x = grad_w / grad_b
    return x, w @ x + b


def invert_y_sign(grad_w, grad_b, w, b):
    x = grad_w / grad_b
    return x, w @ x + b + grad_b


def invert_no_division(grad_w, grad_b, w, b):
    return grad_w, w @ grad_w + b - grad_b


def first_layer_row(grad_W1, grad_b1):
    j = np.argmax(np.abs(grad_b1))
    return grad_W1[j % grad_W1.shape[0], :] / grad_b1[j]


def first_layer_unit_0(grad_W1, grad_b1):
    return grad_W1[:, 0] / grad_b1[0]          # unit 0 is inactive in every case: 0 / 0


def first_layer_no_division(grad_W1, grad_b1):
    return grad_W1[:, np.argmax(np.abs(grad_b1))]


def mask_all_added(participant_id, pair_masks, modulus):
    return sum(m for pair, m in pair_masks.items() if participant_id in pair) % modulus


def mask_no_modulus(participant_id, pair_masks, modulus):
    total = 0
    for (a, b), m in pair_masks.items():
        total = total + m if a == participant_id else total - m if b == participant_id else total
    return total


def mask_zero(participant_id, pair_masks, modulus):
    return np.zeros_like(next(iter(pair_masks.values())))


def mask_opposite_convention(participant_id, pair_masks, modulus):
    return (-solutions.total_mask(participant_id, pair_masks, modulus)) % modulus


def mask_in_place(participant_id, pair_masks, modulus):
    for mask in pair_masks.values():
        mask %= 1
    return solutions.total_mask(participant_id, pair_masks, modulus)


def encode_no_mod(x, scale_bits, modulus_bits):
    return np.round(x * 2**scale_bits)


def encode_floor(x, scale_bits, modulus_bits):
    return np.floor(x * 2**scale_bits) % 2**modulus_bits


def encode_times_f(x, scale_bits, modulus_bits):
    return np.round(x * scale_bits) % 2**modulus_bits


def clip_always(update, clip_norm):
    return clip_norm / np.linalg.norm(update)


def clip_inverted(update, clip_norm):
    return min(1.0, np.linalg.norm(update) / clip_norm)


def clip_squared(update, clip_norm):
    return min(1.0, clip_norm / np.linalg.norm(update) ** 2)


def std_of_sum(clip_norm, noise_multiplier, sampling_rate, num_participants):
    return noise_multiplier * clip_norm


def std_over_m(clip_norm, noise_multiplier, sampling_rate, num_participants):
    return noise_multiplier * clip_norm / num_participants


def std_no_clip(clip_norm, noise_multiplier, sampling_rate, num_participants):
    return noise_multiplier / (sampling_rate * num_participants)


WRONG = [  # (checker, wrong answer, words the verdict must contain)
    ("invert_linear_gradient", invert_upside_down, ["upside down"]),
    ("invert_linear_gradient", invert_y_hat, ["prediction y_hat"]),
    ("invert_linear_gradient", invert_y_sign, ["wrong sign of r"]),
    ("invert_linear_gradient", invert_no_division, ["divide by"]),
    ("input_from_first_layer", first_layer_row, ["row of grad_W1"]),
    ("input_from_first_layer", first_layer_unit_0, ["NaN", "unit 0 inactive"]),
    ("input_from_first_layer", first_layer_no_division, ["divide by grad_b1[j]"]),
    ("total_mask", mask_all_added, ["never cancel"]),
    ("total_mask", mask_no_modulus, ["mod the modulus"]),
    ("total_mask", mask_zero, ["hide nothing"]),
    ("total_mask", mask_in_place, ["in place"]),
    ("encode_fixed_point", encode_no_mod, ["wrap round"]),
    ("encode_fixed_point", encode_floor, ["use round"]),
    ("encode_fixed_point", encode_times_f, ["2**scale_bits"]),
    ("clip_factor", clip_always, ["left alone"]),
    ("clip_factor", clip_inverted, ["upside down"]),
    ("clip_factor", clip_squared, ["square"]),
    ("noise_std", std_of_sum, ["SUM"]),
    ("noise_std", std_over_m, ["q m"]),
    ("noise_std", std_no_clip, ["clipping norm"]),
]


# --------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("checker", CHECKERS)
def test_accepts_the_reference_solution(capsys, checker):
    contract.assert_accepted(*run(capsys, checker, getattr(solutions, checker)))


def test_accepts_the_opposite_mask_convention(capsys):
    assert run(capsys, "total_mask", mask_opposite_convention)[0] is True


@pytest.mark.parametrize("checker, fn, words", WRONG, ids=[w[1].__name__ for w in WRONG])
def test_names_the_mistake(capsys, checker, fn, words):
    contract.assert_rejected(*run(capsys, checker, fn), words)


def stub(*args):
    raise NotImplementedError


def crash(*args):
    raise KeyError("oops")


@pytest.mark.parametrize("checker", CHECKERS)
@pytest.mark.parametrize("fn, words", [(stub, "still the stub"), (crash, "raised KeyError"),
                                       (lambda *a: None, "None"), (3, "pass your function")])
def test_survives_stubs_and_crashes_and_never_raises(capsys, checker, fn, words):
    ok, out = run(capsys, checker, fn)
    assert ok is False and words in out


@pytest.mark.parametrize("checker", CHECKERS)
def test_prints_the_same_text_every_time(capsys, checker):
    texts = [run(capsys, checker, fn)[1] for fn in (mask_zero, mask_zero)]
    assert texts[0] == texts[1] and "0x" not in texts[0]
