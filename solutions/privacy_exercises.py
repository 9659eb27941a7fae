"""Reference solutions to the privacy exercises (notebooks 09-11), one per checker in
`fedlite.checks_privacy`.  Written the way a student would: plain numpy, one formula per line.

    from fedlite import checks_privacy
    checks_privacy.clip_factor(clip_factor)   # prints "✔ Correct: ..."
"""
import numpy as np


def invert_linear_gradient(grad_w, grad_b, w, b):
    """The example (x, y) behind one example's gradient: grad_w = r x, grad_b = r."""
    x = grad_w / grad_b
    y = w @ x + b - grad_b      # y = y_hat - r
    return x, y


def input_from_first_layer(grad_W1, grad_b1):
    """x from grad_W1[:, j] = x δ_j and grad_b1[j] = δ_j, for a unit j with δ_j != 0."""
    j = np.argmax(np.abs(grad_b1))     # an active unit (an inactive one has grad_b1[j] = 0)
    return grad_W1[:, j] / grad_b1[j]


def total_mask(participant_id, pair_masks, modulus):
    """Σ_{j > i} m_ij - Σ_{j < i} m_ji mod modulus: each pair mask once with +, once with -."""
    i = participant_id
    total = 0
    for (a, b), mask in pair_masks.items():
        if a == i:
            total = total + mask    # i is the lower id of the pair: add
        elif b == i:
            total = total - mask    # i is the higher id: subtract
    return np.asarray(total) % modulus


def encode_fixed_point(x, scale_bits, modulus_bits):
    """round(x · 2^f) mod 2^k: negative numbers wrap round to the top of [0, 2^k)."""
    return np.round(x * 2**scale_bits).astype(np.int64) % 2**modulus_bits


def clip_factor(update, clip_norm):
    """min(1, S / ||u||): shrink long updates to norm S, leave short ones alone."""
    return min(1.0, clip_norm / np.linalg.norm(update))


def noise_std(clip_norm, noise_multiplier, sampling_rate, num_participants):
    """Std of the noise in DP-FedAvg's mean: N(0, (z S)²) on the sum, divided by q m."""
    return noise_multiplier * clip_norm / (sampling_rate * num_participants)
