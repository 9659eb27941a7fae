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
from ..partition import Federation
from ..simulation import History, simulate
from ..validation import UpdateOverflowError, as_data, as_float, as_float_array, as_int

ORDERS = tuple(range(2, 64)) + (128, 256, 512, 1024)   # dp-accounting's integer orders
MAX_ORDER = 10**5        # an order α costs α + 1 terms; beyond this ε_α only grows
MAX_NUM_ORDERS = 1000
MAX_TRIALS = 10**6       # attack_errors runs one simulation per trial
BYTES_PER_VALUE = 8


# ----------------------------------------------------------------------------- clipping
def clip_factor(norm, clip_norm):
    """min(1, S / norm): what to multiply an update of this norm by so its norm is <= S."""
    S = _check_clip_norm(clip_norm)
    norm = as_float(norm, "norm")
    if norm < 0:
        raise ValueError(f"norm must be >= 0 (the length of an update); got {norm}")
    return 1.0 if norm <= S else S / norm


def clip_by_norm(update, clip_norm):
    """update · min(1, S / ||update||): the same direction, norm at most S (rows of a 2-D array
    are clipped one by one).

    No overflow: each row is written u = s · v with s a power of two and max |v| in [1, 2), so
    ||v|| is safe to compute, and a clipped row is v · (S / ||v||).  (For [1e300, 1e300],
    ||u||² overflows: the naive S / ||u|| is 0.)  In float64's range it is the same number.
    """
    S = _check_clip_norm(clip_norm)
    try:
        ndim = max(np.ndim(update), 1)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"update must be a numeric array; {exc}") from None
    return _clip_rows(as_float_array(update, "update", ndim), S)[0]


def _clip_rows(update, S):
    """(update clipped row by row to norm S, which rows were clipped): see `clip_by_norm`."""
    biggest = np.max(np.abs(update), axis=-1, keepdims=True)
    scale = np.ldexp(1.0, np.frexp(biggest)[1] - 1)        # 2^(e-1) <= biggest < 2^e
    unit = update / scale                                  # u = scale · v, max |v| in [1, 2)
    norm = np.linalg.norm(unit, axis=-1, keepdims=True)    # ||v|| <= 2 sqrt(P): no overflow
    with np.errstate(over="ignore"):       # S / scale = inf: the row is far below S
        clip = norm > S / scale            # ||u|| = scale · ||v|| > S
    clipped = np.where(clip, unit * (S / np.where(clip, norm, 1.0)), update)
    return clipped, clip[..., 0]


def noise_std(clip_norm, noise_multiplier, expected_participants):
    """Standard deviation of the noise in DP-FedAvg's mean: z S / (q m)."""
    S = _check_clip_norm(clip_norm)
    z = _check_noise(noise_multiplier)
    expected = as_float(expected_participants, "expected_participants")
    if expected <= 0:
        raise ValueError(f"expected_participants must be > 0 (q m, the expected number of "
                         f"participants in a round); got {expected}")
    std = z * S / expected
    if not math.isfinite(std):
        raise ValueError(f"noise_multiplier x clip_norm / expected_participants = {z:g} x "
                         f"{S:g} / {expected:g} overflows float64")
    return std


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

    Each of the participants is kept with probability sampling_rate = q (Poisson sampling);
    the kept reports are clipped to norm clip_norm = S, summed, noised with N(0, (z S)²) per
    coordinate and divided by q m.  num_examples is ignored (unweighted).  `simulate` must
    offer the model to everyone (participation=1.0): a round that selects a fixed-size subset
    first raises ValueError, since the accountant's q would then not be the whole sampling
    (use sampling_rate instead).  A noisy mean too large for float64 raises
    `UpdateOverflowError` (simulate reports divergence).
    After a run: `sampled` holds each round's kept ids, `clipped` the fraction clipped.
    """

    def __init__(self, clip_norm, noise_multiplier, *, sampling_rate=1.0):
        self.clip_norm = _check_clip_norm(clip_norm)
        self.noise_multiplier = _check_noise(noise_multiplier)
        self.sampling_rate = _check_rate(sampling_rate)
        if self.sampling_rate == 0:
            raise ValueError("sampling_rate must be > 0 to train at all")
        noise_std(self.clip_norm, self.noise_multiplier, 1.0)   # z S must be a finite float

    def start(self, num_participants, num_params, seed_sequence):
        """Reset for a new run; all randomness will come from seed_sequence."""
        self.num_participants = as_int(num_participants, "num_participants", minimum=1)
        if not isinstance(seed_sequence, np.random.SeedSequence):
            raise TypeError(f"seed_sequence must be a numpy SeedSequence; got "
                            f"{type(seed_sequence).__name__}")
        self.seed_sequence = seed_sequence
        self.sampled, self.clipped = [], []

    def prepare(self, reports, selected, round_number):
        """The participant side: each participant clips its own report to norm clip_norm
        before it leaves (the server never sees an unclipped update).  Returns (m, P)."""
        reports = as_float_array(reports, "reports", 2)
        clipped, self._was_clipped = _clip_rows(reports, self.clip_norm)
        self._prepared = (round_number, clipped)
        return clipped

    def aggregate(self, reports, num_examples, selected, round_number):
        """The server side: (Σ sampled clipped reports + noise) / (q m), and the bytes the
        sampled ones sent.  Raw reports not yet through `prepare` are clipped first."""
        reports = as_float_array(reports, "reports", 2)
        m, P = reports.shape
        try:
            selected = np.asarray(selected)
        except Exception:      # ragged lists and the like: reported just below
            selected = np.asarray(None)
        if selected.shape != (m,) or selected.dtype.kind not in "iu":
            raise ValueError(f"selected must be the {m} integer ids of the rows of reports; "
                             f"got {selected.dtype} of shape {selected.shape}")
        if m != self.num_participants:
            raise ValueError(
                f"DPAggregator was offered {m} of the {self.num_participants} participants: "
                f"simulate selected a fixed-size subset (participation < 1), but the "
                f"accountant assumes that Poisson sampling with rate sampling_rate is the only "
                f"sampling; use participation=1.0 in simulate and set sampling_rate to the "
                f"fraction of participants you want per round instead")
        prepared = getattr(self, "_prepared", None)
        if prepared is None or prepared[0] != round_number or prepared[1] is not reports:
            reports = self.prepare(reports, selected, round_number)
        self._prepared = None
        root = self.seed_sequence
        rng = np.random.default_rng(np.random.SeedSequence(
            root.entropy, spawn_key=(*root.spawn_key, as_int(round_number, "round_number", 0))))
        q, S = self.sampling_rate, self.clip_norm
        kept = rng.random(m) < q if q < 1 else np.ones(m, dtype=bool)
        clipped, was_clipped = reports[kept], self._was_clipped[kept]
        with np.errstate(over="ignore"):    # a mean past float64: refused just below
            total = clipped.sum(axis=0) + rng.normal(0.0, self.noise_multiplier * S, size=P)
            mean = total / (q * m)
        if not np.isfinite(mean).all():
            raise UpdateOverflowError(f"the noisy mean of {int(kept.sum())} clipped reports "
                                      f"(clip_norm = {S:g}) overflows float64")
        self.sampled.append(selected[kept])
        self.clipped.append(float(np.mean(was_clipped)) if kept.any() else 0.0)
        return mean, int(kept.sum()) * P * BYTES_PER_VALUE


# ----------------------------------------------------------------------------- the accountant
def rdp_sampled_gaussian(q, noise_multiplier, orders=ORDERS):
    """Rényi DP ε_α of ONE round of the Poisson-subsampled Gaussian mechanism, per order α.

    ε_α = log(A_α) / (α - 1), A_α = Σ_i C(α, i) (1-q)^(α-i) q^i exp((i² - i) / (2z²)), summed
    in log space.  q = 0: 0 (no one is ever used); z = 0: ∞ (no noise, no privacy);
    q = 1: α / (2 z²), the plain Gaussian mechanism.  A z so small that 2z² underflows to 0
    counts as z = 0.
    """
    q, z = _check_rate(q), _check_noise(noise_multiplier)
    alphas = _check_orders(orders)
    two_z2 = 2 * z * z
    if q == 0:
        return np.zeros(len(alphas))
    if two_z2 == 0:
        return np.full(len(alphas), np.inf)
    with np.errstate(over="ignore"):   # past float64: no privacy at that order, ε_α = inf
        if q == 1:
            return alphas / two_z2
        rdp = np.array([_log_a(q, two_z2, a) / (a - 1) for a in alphas.astype(np.int64)])
    return np.maximum(rdp, 0.0)    # log A_α >= 0 in exact arithmetic; round-off can dip below


def _log_a(q, two_z2, alpha):
    """log A_α for an integer α >= 2, by log-sum-exp over the α + 1 terms (two_z2 = 2z²)."""
    i = np.arange(alpha + 1)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log(alpha - i[:-1]) - np.log(i[1:]))])
    terms = log_comb + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / two_z2
    top = terms.max()
    if math.isinf(top):
        return math.inf
    return top + math.log(np.exp(terms - top).sum())


def rdp_to_epsilon(rdp, orders, delta):
    """(ε, best α) from RDP: min over α of rdp_α + log((α-1)/α) - (log δ + log α) / (α-1).

    rdp: one value >= 0 per order (+inf allowed: no privacy at that order).
    As in dp-accounting, an order whose RDP is so small that sqrt(1 - exp(-rdp_α)) <= δ gives
    ε = 0 (RDP bounds the KL divergence, and KL bounds the total variation distance:
    Bretagnolle-Huber), so a mechanism that barely ran is (0, δ)-DP.
    """
    alphas = _check_orders(orders)
    rdp = _check_rdp(rdp, alphas.size)
    delta = _check_delta(delta)
    eps = rdp + np.log1p(-1 / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    eps = np.where(delta**2 + np.expm1(-rdp) > 0, 0.0, eps)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(alphas[best])


def epsilon(q, noise_multiplier, rounds, delta, orders=ORDERS):
    """ε of DP-FedAvg after `rounds` rounds at sampling rate q, for the given δ.

    RDP adds up over rounds (rounds · ε_α), then converts to (ε, δ) (`rdp_to_epsilon`).
    An ε beyond float64's range (say rounds = 10**400 with any noise) is inf.
    """
    rounds = as_int(rounds, "rounds", minimum=0)
    delta = _check_delta(delta)
    rdp = rdp_sampled_gaussian(q, noise_multiplier, orders)
    # rounds · ε_α, where 0 · ∞ = 0 (nothing released yet, or no one to release) and a
    # product past float64 is inf: rounds may be an int beyond float's range
    scale = float(rounds) if rounds < 2**1023 else math.inf
    total = np.zeros_like(rdp)
    if rounds > 0:
        with np.errstate(over="ignore"):
            np.multiply(scale, rdp, out=total, where=rdp > 0)
    return rdp_to_epsilon(total, orders, delta)[0]


def _check_orders(orders):
    """orders as a float array of integers in [2, MAX_ORDER], at most MAX_NUM_ORDERS of them."""
    alphas = _real_values(orders, "orders", "a list of integers >= 2")
    if not 0 < alphas.size <= MAX_NUM_ORDERS:
        raise ValueError(f"orders must hold 1 to {MAX_NUM_ORDERS} orders; got {alphas.size}")
    if (not np.isfinite(alphas).all() or np.any(alphas < 2) or np.any(alphas > MAX_ORDER)
            or np.any(alphas != np.round(alphas))):
        raise ValueError(f"orders must be integers in [2, {MAX_ORDER}] (this accountant uses "
                         f"the integer-order formula, whose order α sums α + 1 terms)")
    return alphas


def _check_rdp(rdp, num_orders):
    """rdp as a float array: one value >= 0 (or +inf) per order."""
    values = _real_values(rdp, "rdp", "an array of real numbers, one per order")
    if values.size != num_orders:
        raise ValueError(f"rdp must have one value per order: {num_orders} orders, but "
                         f"{values.size} rdp values")
    if np.isnan(values).any() or np.any(values < 0):
        raise ValueError("rdp must be >= 0 (Rényi divergences are), +inf allowed; got a "
                         "negative value or NaN")
    return values


def _real_values(value, name, expected):
    """value as a flat float64 array of real numbers, or TypeError naming it."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be {expected}; {exc}") from None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be {expected}; got dtype {array.dtype}")
    return array.astype(np.float64).ravel()


def _check_delta(delta):
    delta = as_float(delta, "delta")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1); got {delta}")
    return delta


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
    delta = _check_delta(delta)      # before the run, not after it
    history = simulate(federation, model=model, algorithm="fedavg", num_rounds=num_rounds, lr=lr,
                       local_epochs=local_epochs, batch_size=batch_size, hidden=hidden, seed=seed,
                       aggregator=aggregator)
    eps = epsilon(sampling_rate, noise_multiplier, history.num_rounds, delta)
    return DPRun(history, eps, delta, np.array(aggregator.clipped[:history.num_rounds]))


def attack_errors(X, y, *, clip_norm, noise_multiplier, num_trials=20, seed=0):
    """The gradient inversion of notebook 09 against one DP-FedSGD round, num_trials times.

    Each row of (X, y) is a participant; each trial is a one-round FedSGD run from w = 0, b = 0
    in which exactly one participant is selected and `DPAggregator(clip_norm, noise_multiplier)`
    clips and noises its gradient.  Anyone who sees the model before and after the round reads
    the released mean gradient g = -Δθ / lr and inverts it (`invert_linear_gradient`).
    Returns (num_trials,) relative errors ||x_hat - x|| / ||x|| of the selected participant
    (1.0, as bad as guessing x = 0, for a round that diverged and so released nothing, or
    whose released g_b is exactly 0).
    """
    X, y = as_data(X, y)
    num_trials = as_int(num_trials, "num_trials", minimum=1, maximum=MAX_TRIALS)
    seed = as_int(seed, "seed", minimum=0)
    aggregator = _AloneInItsRound(DPAggregator(clip_norm, noise_multiplier))
    federation = Federation.from_participants(list(X[:, None, :]), list(y[:, None]))
    d, errors = X.shape[1], np.ones(num_trials)
    for trial in range(num_trials):
        history = simulate(federation, algorithm="fedsgd", num_rounds=1, lr=1.0,
                           participation=1 / len(y), seed=seed + trial, aggregator=aggregator)
        released = -history.theta               # theta went from 0 to 0 - lr · g, lr = 1
        if history.num_rounds == 0 or released[d] == 0:
            continue
        victim = history.selected[0, 0]
        x_hat, _ = invert_linear_gradient(released[:d], released[d], np.zeros(d), 0.0)
        errors[trial] = np.linalg.norm(x_hat - X[victim]) / np.linalg.norm(X[victim])
    return errors


class _AloneInItsRound:
    """DPAggregator for rounds of ONE selected participant: the DP unit is that participant,
    a federation of one for the aggregator (q = 1), so no fixed-size selection is mixed with
    the accountant's sampling (`attack_errors` uses no accountant)."""

    def __init__(self, aggregator):
        self.aggregator = aggregator

    def start(self, num_participants, num_params, seed_sequence):
        self.aggregator.start(1, num_params, seed_sequence)

    def aggregate(self, reports, num_examples, selected, round_number):
        return self.aggregator.aggregate(reports, num_examples, selected, round_number)
