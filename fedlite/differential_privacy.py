"""Differential privacy for federated learning: DP-FedAvg and its privacy accountant.

DP-FedAvg (McMahan, Ramage, Talwar, Zhang 2018, "Learning differentially private recurrent
language models"), one round:
1. sample each participant independently with probability q (Poisson sampling);
2. each sampled participant clips its update to norm at most S:  Δ_k · min(1, S / ||Δ_k||);
3. the server adds the clipped updates, adds Gaussian noise N(0, (z S)² I) to the SUM, and
   divides by the expected number of participants q·m (a fixed denominator):
       mean = (Σ_{k sampled} clip(Δ_k) + N(0, (z S)² I)) / (q m).
One participant changes the sum by at most S (its clipped update), so the noise z S hides
whether it took part: the privacy unit is a participant, with all its data.  This is McMahan
et al.'s unweighted estimator (every participant counts the same, whatever its n_k); with
q = 1 the denominator is the number of participants selected.

The accountant: each round is a Poisson-subsampled Gaussian mechanism, whose Rényi DP at
integer order α is (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
Gaussian Mechanism", section 3.3)
    ε_α = log(A_α) / (α - 1),   A_α = Σ_{i=0}^{α} C(α, i) (1-q)^{α-i} q^i exp((i² - i) / (2z²)).
RDP composes by addition over rounds, and (α, R ε_α)-RDP gives (ε, δ)-DP with
    ε = R ε_α + log((α - 1) / α) - (log δ + log α) / (α - 1)
(Canonne, Kamath, Steinke 2020, Prop. 12 of Asoodeh et al. 2021: the conversion dp-accounting
uses, tighter than Mironov 2017's R ε_α + log(1/δ) / (α - 1)), minimised over the orders.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .leakage import invert_linear_gradient
from .partition import Federation
from .simulation import History, simulate
from .validation import as_data, as_float, as_float_array, as_int

ORDERS = tuple(range(2, 64)) + (128, 256, 512, 1024)   # dp-accounting's integer orders
BYTES_PER_VALUE = 8


# ----------------------------------------------------------------------------- clipping
def clip_factor(norm, clip_norm):
    """min(1, S / norm): what to multiply an update of this norm by so its norm is <= S."""
    S = _check_clip_norm(clip_norm)
    norm = as_float(norm, "norm")
    return 1.0 if norm <= S else S / norm


def clip_by_norm(update, clip_norm):
    """update · min(1, S / ||update||): the same direction, norm at most S (rows of a 2-D array
    are clipped one by one)."""
    S = _check_clip_norm(clip_norm)
    update = as_float_array(update, "update", np.ndim(update))
    norms = np.linalg.norm(update, axis=-1, keepdims=True)
    return update * np.minimum(1.0, S / np.maximum(norms, np.finfo(float).tiny))


def noise_std(clip_norm, noise_multiplier, expected_participants):
    """Standard deviation of the noise in DP-FedAvg's mean: z S / (q m)."""
    S = _check_clip_norm(clip_norm)
    z = _check_noise(noise_multiplier)
    return z * S / as_float(expected_participants, "expected_participants")


def _check_clip_norm(clip_norm):
    S = as_float(clip_norm, "clip_norm")
    if S <= 0:
        raise ValueError(f"clip_norm must be > 0 (the largest norm an update may keep); got {S}")
    return S


def _check_noise(noise_multiplier):
    z = as_float(noise_multiplier, "noise_multiplier")
    if z < 0:
        raise ValueError(f"noise_multiplier must be >= 0 (noise std = noise_multiplier x "
                         f"clip_norm); got {z}")
    return z


def _check_rate(q):
    q = as_float(q, "sampling_rate")
    if not 0 <= q <= 1:
        raise ValueError(f"sampling_rate must be a probability in [0, 1]; got {q}")
    return q


# ----------------------------------------------------------------------------- in the simulator
class DPAggregator:
    """`simulate(..., aggregator=DPAggregator(clip_norm, noise_multiplier))`: DP-FedAvg.

    Of the m participants `simulate` selects, each is kept with probability sampling_rate = q
    (use participation=1.0 in simulate, so that q is the whole sampling, as the accountant
    assumes); the kept reports are clipped to norm clip_norm = S, summed, noised with
    N(0, (z S)²) per coordinate and divided by q m.  num_examples is ignored (unweighted).
    After a run: `sampled` holds each round's kept ids, `clipped` the fraction clipped.
    """

    def __init__(self, clip_norm, noise_multiplier, *, sampling_rate=1.0):
        self.clip_norm = _check_clip_norm(clip_norm)
        self.noise_multiplier = _check_noise(noise_multiplier)
        self.sampling_rate = _check_rate(sampling_rate)
        if self.sampling_rate == 0:
            raise ValueError("sampling_rate must be > 0 to train at all")

    def start(self, num_participants, num_params, seed_sequence):
        """Reset for a new run; all randomness will come from seed_sequence."""
        self.seed_sequence = seed_sequence
        self.sampled, self.clipped = [], []

    def aggregate(self, reports, num_examples, selected, round_number):
        """(Σ clipped sampled reports + noise) / (q m), and the bytes the sampled ones sent."""
        root = self.seed_sequence
        rng = np.random.default_rng(
            np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, round_number)))
        m, P = reports.shape
        q, S = self.sampling_rate, self.clip_norm
        kept = rng.random(m) < q if q < 1 else np.ones(m, dtype=bool)
        norms = np.linalg.norm(reports[kept], axis=1)
        total = clip_by_norm(reports[kept], S).sum(axis=0) if kept.any() else np.zeros(P)
        total = total + rng.normal(0.0, self.noise_multiplier * S, size=P)
        self.sampled.append(selected[kept])
        self.clipped.append(float(np.mean(norms > S)) if kept.any() else 0.0)
        return total / (q * m), int(kept.sum()) * P * BYTES_PER_VALUE


# ----------------------------------------------------------------------------- the accountant
def rdp_sampled_gaussian(q, noise_multiplier, orders=ORDERS):
    """Rényi DP ε_α of ONE round of the Poisson-subsampled Gaussian mechanism, per order α.

    ε_α = log(A_α) / (α - 1), A_α = Σ_i C(α, i) (1-q)^(α-i) q^i exp((i² - i) / (2z²)), summed
    in log space.  q = 0: 0 (no one is ever used); z = 0: ∞ (no noise, no privacy);
    q = 1: α / (2 z²), the plain Gaussian mechanism.
    """
    q, z = _check_rate(q), _check_noise(noise_multiplier)
    alphas = _check_orders(orders)
    if q == 0:
        return np.zeros(len(alphas))
    if z == 0:
        return np.full(len(alphas), np.inf)
    if q == 1:
        return alphas / (2 * z**2)
    return np.array([_log_a(q, z, a) / (a - 1) for a in alphas.astype(np.int64)])


def _log_a(q, z, alpha):
    """log A_α for an integer α >= 2, by log-sum-exp over the α + 1 terms."""
    i = np.arange(alpha + 1)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log(alpha - i[:-1]) - np.log(i[1:]))])
    terms = log_comb + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * z * z)
    top = terms.max()
    return top + math.log(np.exp(terms - top).sum())


def rdp_to_epsilon(rdp, orders, delta):
    """(ε, best α) from RDP: min over α of rdp_α + log((α-1)/α) - (log δ + log α) / (α-1).

    As in dp-accounting, an order whose RDP is so small that sqrt(1 - exp(-rdp_α)) <= δ gives
    ε = 0 (RDP bounds the KL divergence, and KL bounds the total variation distance:
    Bretagnolle-Huber), so a mechanism that barely ran is (0, δ)-DP.
    """
    alphas = _check_orders(orders)
    rdp = np.asarray(rdp, dtype=np.float64)
    delta = as_float(delta, "delta")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1); got {delta}")
    with np.errstate(invalid="ignore"):
        eps = rdp + np.log1p(-1 / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    eps = np.where(np.isnan(eps), np.inf, eps)
    eps = np.where(delta**2 + np.expm1(-rdp) > 0, 0.0, eps)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(alphas[best])


def epsilon(q, noise_multiplier, rounds, delta, orders=ORDERS):
    """ε of DP-FedAvg after `rounds` rounds at sampling rate q, for the given δ.

    RDP adds up over rounds (rounds · ε_α), then converts to (ε, δ) (`rdp_to_epsilon`).
    """
    rounds = as_int(rounds, "rounds", minimum=0)
    rdp = rdp_sampled_gaussian(q, noise_multiplier, orders)
    if rounds == 0:          # nothing released yet (and 0 · ∞ would be NaN)
        rdp = np.zeros_like(rdp)
    return rdp_to_epsilon(rounds * rdp, orders, delta)[0]


def _check_orders(orders):
    alphas = np.asarray(orders, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(alphas < 2) or np.any(alphas != np.round(alphas)):
        raise ValueError("orders must be integers >= 2 (this accountant uses the integer-order "
                         "formula)")
    return alphas


# ----------------------------------------------------------------------------- experiments
@dataclass
class DPRun:
    """A DP-FedAvg run: its History, its ε (at the δ asked for) and, per round, the fraction
    of the sampled participants whose update was clipped."""

    history: History
    epsilon: float
    delta: float
    clipped: np.ndarray


def dp_fedavg_run(federation, *, clip_norm, noise_multiplier, sampling_rate, num_rounds, lr,
                  delta, local_epochs=1, batch_size=None, model="linear", hidden=10, seed=0):
    """One DP-FedAvg training run and its privacy: a `DPRun`.

    Everyone is offered the model (participation 1) and `DPAggregator` samples with rate q.
    """
    aggregator = DPAggregator(clip_norm, noise_multiplier, sampling_rate=sampling_rate)
    history = simulate(federation, model=model, algorithm="fedavg", num_rounds=num_rounds, lr=lr,
                       local_epochs=local_epochs, batch_size=batch_size, hidden=hidden, seed=seed,
                       aggregator=aggregator)
    eps = epsilon(sampling_rate, noise_multiplier, history.num_rounds, delta)
    return DPRun(history, eps, float(delta), np.array(aggregator.clipped[:history.num_rounds]))


def attack_errors(X, y, *, clip_norm, noise_multiplier, num_trials=20, seed=0):
    """The gradient inversion of notebook 07 against one DP-FedSGD round, num_trials times.

    Each row of (X, y) is a participant; each trial is a one-round FedSGD run from w = 0, b = 0
    in which exactly one participant is selected and `DPAggregator(clip_norm, noise_multiplier)`
    clips and noises its gradient.  Anyone who sees the model before and after the round reads
    the released mean gradient g = -Δθ / lr and inverts it (`invert_linear_gradient`).
    Returns (num_trials,) relative errors ||x_hat - x|| / ||x|| of the selected participant.
    """
    X, y = as_data(X, y)
    num_trials = as_int(num_trials, "num_trials", minimum=1)
    federation = Federation.from_participants(list(X[:, None, :]), list(y[:, None]))
    d, errors = X.shape[1], np.empty(num_trials)
    for trial in range(num_trials):
        history = simulate(federation, algorithm="fedsgd", num_rounds=1, lr=1.0,
                           participation=1 / len(y), seed=as_int(seed, "seed", 0) + trial,
                           aggregator=DPAggregator(clip_norm, noise_multiplier))
        victim = history.selected[0, 0]
        released = -history.theta               # theta went from 0 to 0 - lr · g, lr = 1
        x_hat, _ = invert_linear_gradient(released[:d], released[d], np.zeros(d), 0.0)
        errors[trial] = np.linalg.norm(x_hat - X[victim]) / np.linalg.norm(X[victim])
    return errors
