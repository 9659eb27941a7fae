"""Tests of fedlite.checks_privacy: each checker accepts the reference solution, names each
typical mistake only when the answer fits it on every case, survives stubs, crashes and hostile
answers, catches cheats (a table of the fixed answers, fedlite's own function), and prints the
same text every time for a wrong answer."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import load_solutions

from fedlite import checks_privacy as checks
from fedlite import differential_privacy, privacy, secure_aggregation

solutions = load_solutions("privacy_exercises.py")

CHECKERS = ["invert_linear_gradient", "input_from_first_layer", "total_mask",
            "encode_fixed_point", "clip_factor", "noise_std"]
OUTPUTS = {"invert_linear_gradient": 2}  # the others return one value


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


def first_layer_unit(j):
    def fn(grad_W1, grad_b1):
        return grad_W1[:, j] / grad_b1[j]   # a unit chosen once: inactive in some case
    fn.__name__ = f"first_layer_unit_{j}"
    return fn


def first_layer_signed_argmax(grad_W1, grad_b1):
    j = np.argmax(grad_b1)
    return grad_W1[:, j] / grad_b1[j]


def first_layer_first_active(grad_W1, grad_b1):
    j = np.flatnonzero(grad_b1)[0]
    return grad_W1[:, j] / grad_b1[j]


def first_layer_mean_of_active(grad_W1, grad_b1):
    active = grad_b1 != 0
    return (grad_W1[:, active] / grad_b1[active]).mean(axis=1)


def encode_trunc(x, scale_bits, modulus_bits):
    return (x * 2**scale_bits).astype(np.int64) % 2**modulus_bits


def encode_unscaled(x, scale_bits, modulus_bits):
    return np.round(x) % 2**modulus_bits


def clip_max(update, clip_norm):
    return max(1.0, clip_norm / np.linalg.norm(update))


WRONG = [  # (checker, wrong answer, words the verdict must contain, words it must not)
    ("invert_linear_gradient", invert_upside_down, ["x: upside down"], []),
    ("invert_linear_gradient", invert_y_hat, ["prediction y_hat"], []),
    ("invert_linear_gradient", invert_y_sign, ["y: the wrong sign of r"], []),
    ("invert_linear_gradient", invert_no_division, ["x: that is right only if r = 1",
                                                    "divide by"], []),
    ("input_from_first_layer", first_layer_row, ["row of grad_W1"], []),
    *[("input_from_first_layer", first_layer_unit(j), ["same unit", "inactive"], [])
      for j in range(6)],   # issue 14: a hard-coded unit used to pass
    ("input_from_first_layer", first_layer_signed_argmax, ["np.argmax", "|grad_b1|"], []),
    ("input_from_first_layer", first_layer_no_division, ["divide by grad_b1[j]"], []),
    ("total_mask", mask_all_added, ["never cancel"], []),
    ("total_mask", mask_no_modulus, ["mod the modulus"], []),
    ("total_mask", mask_zero, ["hide nothing"], []),
    ("total_mask", mask_in_place, ["in place"], []),
    ("encode_fixed_point", encode_no_mod, ["wrap round"], []),
    ("encode_fixed_point", encode_floor, ["use round", "floor"], []),
    ("encode_fixed_point", encode_trunc, ["use round", "int()"], []),
    ("encode_fixed_point", encode_times_f, ["2**scale_bits"], []),
    ("encode_fixed_point", encode_unscaled, ["scale x by 2**scale_bits"], []),
    ("clip_factor", clip_always, ["left alone"], []),
    ("clip_factor", clip_inverted, ["upside down"], []),
    ("clip_factor", clip_max, ["max instead of min"], ["upside down"]),  # issue 14
    ("clip_factor", clip_squared, ["square"], []),
    ("noise_std", std_of_sum, ["SUM"], []),
    ("noise_std", std_over_m, ["not by m"], []),
    ("noise_std", std_no_clip, ["clipping norm"], []),
]


OTHER_FORMS = [  # correct answers written differently from the solution
    ("total_mask", mask_opposite_convention),
    ("input_from_first_layer", first_layer_first_active),
    ("input_from_first_layer", first_layer_mean_of_active),
    ("encode_fixed_point", lambda x, f, k: (np.round(x * 2**f) % 2**k).tolist()),
    ("clip_factor", lambda u, S: np.minimum(1, S / np.sqrt(np.sum(np.square(u))))),
]


CALLS_FEDLITE = [  # (checker, an answer that calls the library, the name the verdict gives)
    ("invert_linear_gradient", privacy.invert_linear_gradient,
     "fedlite.leakage.invert_linear_gradient"),
    ("clip_factor", lambda u, S: differential_privacy.clip_factor(np.linalg.norm(u), S),
     "fedlite.differential_privacy.clip_factor"),
    ("noise_std", lambda S, z, q, m: differential_privacy.noise_std(S, z, q * m),
     "fedlite.differential_privacy.noise_std"),
    ("encode_fixed_point", lambda x, f, k: secure_aggregation.encode(
        x, scale_bits=f, modulus_bits=k), "fedlite.secure_aggregation.encode"),
]


class TestContract(contract.CheckerContract):
    checks, solutions, checkers = checks, solutions, CHECKERS
    wrong, calls_fedlite, other_forms = WRONG, CALLS_FEDLITE, OTHER_FORMS


# ------------------------------------------------------------------ beyond the contract

def test_masks_right_only_for_the_fixed_cases_fail_on_fresh_ones(capsys):
    fixed = {(3, 4, 2**16), (5, 2, 2**8), (2, 3, 2**12)}

    def cheat(participant_id, pair_masks, modulus):
        K = max(j for _, j in pair_masks) + 1
        P = len(next(iter(pair_masks.values())))
        if (K, P, modulus) in fixed:
            return solutions.total_mask(participant_id, pair_masks, modulus)
        return np.zeros(P, dtype=np.int64)
    result, out = run(capsys, "total_mask", cheat)
    call = "The case: cheat(participant_id=0, pair_masks={(0, 1): "
    contract.assert_rejected(result, out, ["fresh random case", "hide nothing", call])
    assert set(result.case) == {"participant_id", "pair_masks", "modulus"}
