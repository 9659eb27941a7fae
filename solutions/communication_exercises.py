"""Reference solutions to the exercises of notebooks 12 and 14, one per checker in
`fedlite.checks_communication`.  Written the way a student would: plain numpy.

    from fedlite import checks_communication as checks
    checks.lora_bytes(lora_bytes)   # prints "✔ Correct: ..."
"""
import numpy as np


def top_k_with_error_feedback(report, residual, k):
    """Send the k largest |report + residual|; keep the rest as the new residual."""
    corrected = report + residual
    keep = np.argsort(np.abs(corrected))[-k:]      # indices of the k largest magnitudes
    sent = np.zeros_like(corrected)
    sent[keep] = corrected[keep]
    new_residual = corrected - sent                # what is still owed to the server
    return sent, new_residual


def quantize_unbiased(vector, bits, rng):
    """Stochastic rounding to 2^b levels on [-s, s], s = max|v|: unbiased."""
    s = np.max(np.abs(vector))
    if s == 0:
        return np.zeros_like(vector)
    step = 2 * s / (2 ** bits - 1)                 # 2^b levels, 2^b - 1 gaps
    position = (vector + s) / step                 # how many steps above -s
    below = np.floor(position)
    up = rng.random(vector.shape) < position - below   # round up with probability the fraction
    return -s + (below + up) * step


def lora_bytes(num_features, hidden, rank, freeze_A):
    """Bytes uploaded per round: B (h, r) and, unless frozen, A (r, d), as float64."""
    values = rank * hidden if freeze_A else rank * (hidden + num_features)
    return 8 * values


def rounds_until_data_is_cheaper(num_rows, num_features, num_params, num_participants):
    """Smallest R with 2 K P R > N (d + 1): after R rounds FL has sent more than the data."""
    data_values = num_rows * (num_features + 1)              # features and target, once
    values_per_round = 2 * num_participants * num_params     # down and up, every participant
    return data_values // values_per_round + 1


def never_selected_probability(num_participants, participation, num_rounds):
    """(1 - m/K) ** R with m = max(1, round(participation K)), as fedlite.simulate selects."""
    m = max(1, round(participation * num_participants))
    return (1 - m / num_participants) ** num_rounds
