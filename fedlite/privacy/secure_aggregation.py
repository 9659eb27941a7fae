"""Secure aggregation (Bonawitz et al. 2017) at classroom scale: the server learns only the sum.

The protocol, for the m participants of one round:
1. Fixed point.  Each participant turns its vector into integers mod 2^k:
   encode(x) = round(x · 2^f) mod 2^k  (k = modulus_bits, f = scale_bits).  Sums of encodings
   decode to the sum of the values, as long as that sum stays in (-2^(k-1), 2^(k-1)) · 2^-f.
2. Key agreement.  Participant i draws a secret a_i and publishes A_i = g^(a_i) mod p; any pair
   then shares the key s_ij = A_j^(a_i) = A_i^(a_j) = g^(a_i a_j) mod p (Diffie-Hellman), which
   the server, seeing only A_i and A_j, does not learn.
3. Pairwise masks.  From s_ij both derive the same pseudorandom mask m_ij (a numpy Generator
   seeded with s_ij) of integers mod 2^k.  Participant i sends
       y_i = encode(x_i) + Σ_{j > i} m_ij - Σ_{j < i} m_ji   (mod 2^k),
   which looks uniformly random on its own, while in Σ_i y_i every m_ij appears once with + and
   once with -, so Σ_i y_i = Σ_i encode(x_i) exactly (integers: no round-off).
4. Dropouts.  Before masking, each participant splits a_i into Shamir shares (threshold t),
   one per other participant.  If u drops out after masking, its masks are left in the sum; the
   survivors send the server their shares of a_u, the server rebuilds a_u from any t of them,
   recomputes s_uv = A_v^(a_u) for every survivor v and removes m_uv.  With fewer than t
   survivors the round fails (ValueError): the server could not unmask, and must not try.
5. A minimum.  A "sum" over one participant IS its update, and from a sum over two each of the
   two reads the other's (its own subtracted).  Every secure sum needs at least
   min_participants (default 2, never fewer) selected AND surviving, or it is refused
   (ValueError): Bonawitz et al. 2017 likewise abort a round whose survivors fall below their
   threshold, so that the server never learns the sum of too few inputs.

Not secure as written: p = 2^61 - 1 is far too small for Diffie-Hellman, the shares travel
unencrypted here, and the full protocol also adds a self-mask per participant (so a participant
reported as dropped late cannot be unmasked).  The arithmetic is the real one.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..validation import UpdateOverflowError, as_float, as_float_array, as_int

PRIME = 2**61 - 1        # a Mersenne prime: the field of the shares and of the key agreement
GENERATOR = 37           # a primitive root mod PRIME
SCALE_BITS = 32          # default f: values kept to 2^-32 ≈ 2.3e-10
MODULUS_BITS = 62        # default k: integers mod 2^62 (and 62 bits fit numpy's int64 to decode)
KEY_BYTES = SHARE_BYTES = 8   # a public key and a share are numbers below PRIME < 2^64
MIN_PARTICIPANTS = 2     # the fewest participants a secure sum may have (a sum of one is its update)
MAX_PARTICIPANTS = 10_000     # this classroom implementation does m² share operations per round
MAX_VALUES = 2**27       # values per masked vector (1 GiB of uint64 per mask)


# ----------------------------------------------------------------------------- fixed point
def encode(values, *, scale_bits=SCALE_BITS, modulus_bits=MODULUS_BITS, num_participants=1):
    """round(x · 2^f) mod 2^k as uint64, for a vector x to be summed over num_participants.

    Negative numbers wrap round: -1 becomes 2^k - 1 (two's complement).  So that the SUM of
    num_participants = K encodings cannot wrap, every ROUNDED |round(x · 2^f)| must stay below
    2^(k-1) / K (checked in exact integers); anything larger raises
    `fedlite.validation.UpdateOverflowError` (a ValueError) rather than give a wrong sum.
    """
    f, k = _check_bits(scale_bits, modulus_bits)
    K = as_int(num_participants, "num_participants", minimum=1)
    x = _as_real_array(values, "values")
    return _fixed_point(x, f, k, K).astype(np.uint64) & _mask(k)


def _fixed_point(x, f, k, K):
    """round(x · 2^f) as int64, or UpdateOverflowError unless K · max |round(x · 2^f)| < 2^(k-1).

    The test is on the rounded integers, in Python's exact integers: comparing the unrounded
    |x| · 2^f with 2^(k-1) / K in floats let a value just below the limit round up past it.
    """
    largest = float(np.abs(x).max()) if x.size else 0.0
    rounded = False
    if largest < 2.0 ** (k - 1 - f):      # so |x| · 2^f < 2^(k-1) <= 2^61: exact, finite
        scaled = np.rint(x * 2.0 ** f)      # x · 2^f is exact (a power of two); so is rint
        biggest = int(np.abs(scaled).max()) if x.size else 0   # exact: an integer-valued float
        if K * biggest < 2 ** (k - 1):
            return scaled.astype(np.int64)
        largest, rounded = biggest / 2.0 ** f, True
    limit = 2.0 ** (k - 1) / K / 2.0 ** f
    digits, note = (12, f" once rounded to a multiple of 2^-{f}") if rounded else (3, "")
    raise UpdateOverflowError(
        f"values too large for the modulus: |x| · 2^{f} must stay below 2^{k - 1} / {K} "
        f"(so that the sum of {K} cannot wrap round mod 2^{k}), i.e. |x| < "
        f"{limit:.{digits}g}, but the largest |x| is {largest:.{digits}g}{note}; raise "
        f"modulus_bits or lower scale_bits")


def decode(encoded, *, scale_bits=SCALE_BITS, modulus_bits=MODULUS_BITS):
    """Back to floats: v >= 2^(k-1) stands for v - 2^k (negative), then divide by 2^f.

    encoded: non-negative integers, an encoding or a sum of encodings (taken mod 2^k).
    """
    f, k = _check_bits(scale_bits, modulus_bits)
    signed = (_as_encoded(encoded, "encoded") & _mask(k)).astype(np.int64)
    signed = np.where(signed >= 2 ** (k - 1), signed - 2 ** k, signed)
    return signed / 2.0 ** f


def _mask(k):
    """x & _mask(k) is x mod 2^k (uint64 arithmetic wraps mod 2^64, a multiple of 2^k)."""
    return np.uint64(2**k - 1)


def _check_bits(scale_bits, modulus_bits):
    k = as_int(modulus_bits, "modulus_bits", minimum=2, maximum=62)
    f = as_int(scale_bits, "scale_bits", minimum=0, maximum=k - 2)
    return f, k


def _as_real_array(values, name):
    """values as a finite float64 array of whatever number of dimensions it has."""
    try:
        ndim = np.ndim(values)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array; {exc}") from None
    return as_float_array(values, name, ndim)


def _as_encoded(encoded, name, ndim=None, modulus_bits=None):
    """encoded as uint64: integers >= 0 (below 2^modulus_bits if given), `ndim` dims if given."""
    try:
        array = np.asarray(encoded)
    except Exception as exc:
        raise TypeError(f"{name} must be an array of non-negative integers; {exc}") from None
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers (encodings from encode, or sums of them); "
                        f"got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {array.shape}")
    if array.size and array.dtype.kind == "i" and array.min() < 0:
        raise ValueError(f"{name} must hold non-negative integers; got {array.min()}")
    array = array.astype(np.uint64)
    if modulus_bits is not None and array.size and array.max() >= 2**modulus_bits:
        raise ValueError(f"{name} must hold integers below 2^{modulus_bits} (mod 2^k); got "
                         f"{array.max()}")
    return array


def _check_min_participants(min_participants):
    return as_int(min_participants, "min_participants", minimum=MIN_PARTICIPANTS)


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)); "
                        f"got {type(rng).__name__}")
    return rng


def _check_seed(seed):
    """An int >= 0 or a numpy SeedSequence, what np.random.default_rng takes here."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return as_int(seed, "seed", minimum=0)


def _check_ids(ids, name, distinct=True):
    """A list of participant ids, ints in [0, 2^63) (all different if distinct)."""
    if isinstance(ids, (str, bytes)) or not np.iterable(ids):
        raise TypeError(f"{name} must be a sequence of integer participant ids; got "
                        f"{type(ids).__name__}")
    ids = [as_int(i, name, minimum=0, maximum=2**63 - 1) for i in ids]
    if distinct and len(set(ids)) != len(ids):
        raise ValueError(f"{name} must be distinct ids; got a repeated one in {ids}")
    return ids


# ----------------------------------------------------------------------------- pairwise masks
def key_pair(rng):
    """A secret a in [1, p-1) and the public key A = g^a mod p (Diffie-Hellman, toy size)."""
    secret = int(_check_rng(rng).integers(1, PRIME - 1))
    return secret, pow(GENERATOR, secret, PRIME)


def agree(secret, other_public):
    """The pair's shared key: other_public^secret = g^(a_i a_j) mod p, the same from both sides."""
    secret = as_int(secret, "secret", minimum=1, maximum=PRIME - 2)
    return pow(as_int(other_public, "other_public", minimum=1, maximum=PRIME - 1), secret, PRIME)


def pair_mask(pair_key, round_number, size, modulus_bits=MODULUS_BITS):
    """The mask m_ij: `size` integers uniform on [0, 2^k), from a Generator seeded with the key."""
    pair_key = as_int(pair_key, "pair_key", minimum=0)
    round_number = as_int(round_number, "round_number", minimum=0)
    size = as_int(size, "size", minimum=0, maximum=MAX_VALUES)
    k = as_int(modulus_bits, "modulus_bits", minimum=2, maximum=62)
    rng = np.random.default_rng([pair_key, round_number])
    return rng.integers(0, 2**k, size=size, dtype=np.uint64)


def masked_input(participant_id, encoded, secret, public_keys, round_number,
                 modulus_bits=MODULUS_BITS):
    """y_i = encode(x_i) + Σ_{j > i} m_ij - Σ_{j < i} m_ji mod 2^k: what participant i sends.

    public_keys: {participant id: public key} of everyone in the round (i included).
    """
    k = as_int(modulus_bits, "modulus_bits", minimum=2, maximum=62)
    y = _as_encoded(encoded, "encoded", ndim=1, modulus_bits=k)
    participant_id = as_int(participant_id, "participant_id")
    secret = as_int(secret, "secret", minimum=1, maximum=PRIME - 2)
    round_number = as_int(round_number, "round_number", minimum=0)
    if not isinstance(public_keys, Mapping) or participant_id not in public_keys:
        raise ValueError(f"public_keys must be a dict {{participant id: public key}} that "
                         f"includes participant_id = {participant_id}")
    for j, public in public_keys.items():
        j = as_int(j, "public_keys (an id)")
        if j != participant_id:
            mask = pair_mask(agree(secret, public), round_number, y.size, k)
            y = y + mask if participant_id < j else y - mask   # wraps mod 2^64
    return y & _mask(k)


def share_secret(secret, num_shares, threshold, rng):
    """Split secret into shares (x, q(x)), x = 1..num_shares; any `threshold` of them rebuild it.

    q is a random polynomial of degree threshold - 1 over the integers mod p with q(0) = secret;
    fewer than `threshold` points say nothing about q(0).  secret: an integer in [0, p).
    """
    secret = as_int(secret, "secret", minimum=0, maximum=PRIME - 1)
    n = as_int(num_shares, "num_shares", minimum=1, maximum=MAX_PARTICIPANTS)
    t = as_int(threshold, "threshold", minimum=1)
    if t > n:
        raise ValueError(f"threshold must be at most num_shares = {n} (no one could rebuild "
                         f"a secret needing more shares than exist); got {t}")
    rng = _check_rng(rng)
    coefficients = [secret] + [int(rng.integers(0, PRIME)) for _ in range(t - 1)]
    return [(x, _polynomial(coefficients, x)) for x in range(1, n + 1)]


def reconstruct_secret(shares, threshold):
    """q(0) from `threshold` shares, by Lagrange: q(0) = Σ_j y_j Π_{m≠j} x_m / (x_m - x_j).

    shares: pairs (x, y) of integers, x in [1, p) all different, y in [0, p).  ValueError if
    fewer than threshold shares are given, or if two share one x (Lagrange would divide by
    x_m - x_j = 0, and the inverse pow(0, p-2, p) = 0 gives a wrong secret, silently).
    """
    t = as_int(threshold, "threshold", minimum=1)
    if isinstance(shares, (str, bytes)) or not np.iterable(shares):
        raise TypeError(f"shares must be a list of (x, y) pairs; got {type(shares).__name__}")
    points = [_check_share(share) for share in shares]
    if len(points) < t:
        raise ValueError(f"{len(points)} shares are fewer than the threshold t = {t}: "
                         f"the secret cannot be rebuilt")
    xs = [x for x, _ in points]
    if len(set(xs)) != len(xs):
        repeated = sorted(x for x, count in Counter(xs).items() if count > 1)
        raise ValueError(f"shares must have distinct x; x = {repeated} appears more than once "
                         f"(a repeated share is one point, not two: it cannot stand in for a "
                         f"missing one)")
    points = points[:t]
    secret = 0
    for j, (x_j, y_j) in enumerate(points):
        weight = 1
        for m, (x_m, _) in enumerate(points):
            if m != j:   # division mod p: multiply by the inverse, a^(p-2) (Fermat)
                weight = weight * x_m % PRIME * pow(x_m - x_j, PRIME - 2, PRIME) % PRIME
        secret = (secret + y_j * weight) % PRIME
    return secret


def _check_share(share):
    """A share (x, y): integers, 1 <= x < p (x = 0 would be the secret itself), 0 <= y < p."""
    try:
        x, y = share
    except (TypeError, ValueError):
        raise TypeError(f"shares must be (x, y) pairs of integers; got {share!r}") from None
    return (as_int(x, "shares (an x)", minimum=1, maximum=PRIME - 1),
            as_int(y, "shares (a y)", minimum=0, maximum=PRIME - 1))


def _polynomial(coefficients, x):
    """c_0 + c_1 x + ... mod p (Horner)."""
    value = 0
    for c in reversed(coefficients):
        value = (value * x + c) % PRIME
    return value


# ----------------------------------------------------------------------------- one round
@dataclass
class SecureSum:
    """One round of secure aggregation, as the server saw it.

    total      (P,) the decoded sum over the survivors (the only thing the server learns)
    survivors  ids whose masked vector arrived; dropped: ids that left after masking
    masked     (len(survivors), P) uint64: the vectors the server received
    messages_up/down, bytes_up/down: every message of the round, counted as it is sent
    (`cost` gives the same numbers as a formula)
    """

    total: np.ndarray
    survivors: np.ndarray
    dropped: np.ndarray
    masked: np.ndarray
    messages_up: int
    messages_down: int
    bytes_up: int
    bytes_down: int


def secure_sum(values, participant_ids, *, threshold, dropped=(), round_number=1, seed=0,
               scale_bits=SCALE_BITS, modulus_bits=MODULUS_BITS,
               min_participants=MIN_PARTICIPANTS):
    """Run the protocol on values (m, P), row s held by participant_ids[s]; a `SecureSum`.

    threshold  t, the shares needed to unmask a dropped participant, 1 <= t <= m; the round
               fails (ValueError) if fewer than t participants survive
    dropped    ids that drop out after their shares went out but before their masked vector
    seed       int or numpy SeedSequence for every secret of the round
    min_participants   the fewest participants the sum may cover, >= 2: a round with fewer
               selected, or fewer surviving, is refused (ValueError) rather than hand the
               server (nearly) one participant's update
    Values whose sum could wrap round the modulus raise `UpdateOverflowError` (see `encode`).
    """
    X = as_float_array(values, "values", 2)
    ids = _check_ids(participant_ids, "participant_ids")
    m, P = X.shape
    if len(ids) != m:
        raise ValueError(f"participant_ids must be {m} distinct ids, one per row of values; "
                         f"got {len(ids)}")
    least = _check_min_participants(min_participants)
    if m < least:
        raise ValueError(f"values has {m} row(s), i.e. {m} participant(s), fewer than "
                         f"min_participants = {least}: a secure sum over so few would hand the "
                         f"server (or the other participant) their updates")
    if m > MAX_PARTICIPANTS:
        raise ValueError(f"values has {m} rows; this implementation handles at most "
                         f"{MAX_PARTICIPANTS} participants per round (m² shares)")
    scale_bits, modulus_bits = _check_bits(scale_bits, modulus_bits)
    t = as_int(threshold, "threshold", minimum=1)
    if t > m:
        raise ValueError(f"threshold must be at most the number of participants m = {m}; "
                         f"got {t}")
    round_number = as_int(round_number, "round_number", minimum=0)
    seed = _check_seed(seed)
    gone = sorted(set(_check_ids(dropped, "dropped", distinct=False)))
    if not set(gone) <= set(ids):
        raise ValueError(f"dropped must be ids of participants in the round; got {gone}")
    survivors = [i for i in ids if i not in gone]
    if len(survivors) < t:
        raise ValueError(f"only {len(survivors)} of {m} participants survived, fewer than the "
                         f"threshold t = {t}: the server cannot rebuild the dropped "
                         f"participants' keys to remove their masks, so the round fails")
    if len(survivors) < least:
        raise ValueError(f"only {len(survivors)} of {m} participants survived, fewer than "
                         f"min_participants = {least}: their sum would hand the server (nearly) "
                         f"one participant's update, so the round fails")
    encoded = encode(X, scale_bits=scale_bits, modulus_bits=modulus_bits, num_participants=m)
    rng = np.random.default_rng(seed)
    value_bytes = -(-modulus_bits // 8)
    up, down = [], []                          # the size in bytes of every message sent
    keys = {i: key_pair(rng) for i in ids}     # each sends its public key; the server relays all
    public = {i: keys[i][1] for i in ids}
    up += [KEY_BYTES] * m
    down += [KEY_BYTES * m] * m
    shares = {i: dict(zip(ids, share_secret(keys[i][0], m, t, rng))) for i in ids}
    up += [SHARE_BYTES * (m - 1)] * m          # a share for each other participant, and the
    down += [SHARE_BYTES * (m - 1)] * m        # server forwards each its m - 1 shares
    row = {i: s for s, i in enumerate(ids)}
    masked = np.array([masked_input(i, encoded[row[i]], keys[i][0], public, round_number,
                                    modulus_bits) for i in survivors], dtype=np.uint64)
    up += [P * value_bytes] * len(survivors)
    total = masked.sum(axis=0, dtype=np.uint64)                  # wraps mod 2^64
    if gone:                                   # the server names the dropped; survivors answer
        down += [KEY_BYTES * len(gone)] * len(survivors)        # with their shares of their keys
        up += [SHARE_BYTES * len(gone)] * len(survivors)
    for u in gone:
        a_u = reconstruct_secret([shares[u][v] for v in survivors], t)
        for v in survivors:   # v added +m_vu if v < u, -m_uv if v > u: take it back out
            mask = pair_mask(agree(a_u, public[v]), round_number, P, modulus_bits)
            total = total - mask if v < u else total + mask
    return SecureSum(decode(total, scale_bits=scale_bits, modulus_bits=modulus_bits),
                     np.array(survivors, dtype=np.int64), np.array(gone, dtype=np.int64),
                     masked, len(up), len(down), sum(up), sum(down))


def cost(num_participants, num_params, num_dropped=0, modulus_bits=MODULUS_BITS):
    """Messages and bytes of one round with m participants, P parameters and d dropouts.

    up (participants -> server):  m public keys, m bundles of m-1 shares, m-d masked vectors
                                  of P values of ceil(k/8) bytes, and if d > 0 the survivors'
                                  shares of the dropped keys (m-d messages of d shares)
    down (server -> participants): the m public keys to each, the shares forwarded to their
                                  owners, and if d > 0 the list of the dropped to each survivor
    Shares dominate as m grows (m² of them); the masked vectors, as P grows.
    """
    m = as_int(num_participants, "num_participants", minimum=1)
    P = as_int(num_params, "num_params", minimum=1)
    d = as_int(num_dropped, "num_dropped", minimum=0, maximum=m)
    s = m - d
    value_bytes = -(-as_int(modulus_bits, "modulus_bits", 2, 62) // 8)
    unmask = d > 0
    return dict(
        messages_up=m + m + s + (s if unmask else 0),
        bytes_up=(m * KEY_BYTES + m * (m - 1) * SHARE_BYTES + s * P * value_bytes
                  + (s * d * SHARE_BYTES if unmask else 0)),
        messages_down=m + m + (s if unmask else 0),
        bytes_down=(m * m * KEY_BYTES + m * (m - 1) * SHARE_BYTES
                    + (s * d * KEY_BYTES if unmask else 0)),
    )


# ----------------------------------------------------------------------------- in the simulator
class SecureAggregator:
    """`simulate(..., aggregator=SecureAggregator())`: every round runs `secure_sum`.

    Participant k sends n_k u_k (its example count times its report), masked; the server
    decodes Σ_k n_k u_k over the survivors and divides by their Σ_k n_k: the plain weighted
    mean up to fixed-point round-off (|error| <= m 2^-(f+1) / Σ n_k per value).
    threshold  shares needed per dropped participant; None = a majority, m // 2 + 1
    dropout    probability that each selected participant drops out after masking (seeded);
               a round with fewer than threshold survivors raises ValueError
    min_participants   >= 2: a round with fewer selected (participation too low) or fewer
               surviving raises ValueError, so that no sum reveals one participant's update
    Reports whose n_k u_k cannot be encoded (see `encode`) raise `UpdateOverflowError`, which
    `simulate` reports as divergence.
    After a run, `survivors` holds each round's surviving ids and `last` the last `SecureSum`.
    """

    def __init__(self, *, threshold=None, dropout=0.0, scale_bits=SCALE_BITS,
                 modulus_bits=MODULUS_BITS, min_participants=MIN_PARTICIPANTS):
        self.threshold = None if threshold is None else as_int(threshold, "threshold", minimum=1)
        self.dropout = as_float(dropout, "dropout")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1); got {dropout}")
        self.scale_bits, self.modulus_bits = _check_bits(scale_bits, modulus_bits)
        self.min_participants = _check_min_participants(min_participants)

    def start(self, num_participants, num_params, seed_sequence):
        """Reset for a new run; all randomness will come from seed_sequence."""
        num_participants = as_int(num_participants, "num_participants", minimum=1)
        if num_participants < self.min_participants:
            raise ValueError(f"the federation has {num_participants} participant(s), fewer "
                             f"than min_participants = {self.min_participants}: no round could "
                             f"have a secure sum")
        if self.threshold is not None and self.threshold > num_participants:
            raise ValueError(f"threshold must be at most the number of participants "
                             f"{num_participants}; got {self.threshold}")
        if not isinstance(seed_sequence, np.random.SeedSequence):
            raise TypeError(f"seed_sequence must be a numpy SeedSequence; got "
                            f"{type(seed_sequence).__name__}")
        self.seed_sequence = seed_sequence
        self.survivors, self.last = [], None

    def aggregate(self, reports, num_examples, selected, round_number):
        """Securely sum n_k u_k, divide by Σ n_k of the survivors: (mean (P,), bytes up)."""
        reports = as_float_array(reports, "reports", 2)
        m = len(reports)
        num_examples = as_float_array(num_examples, "num_examples", 1, (m,))
        selected = np.asarray(_check_ids(selected, "selected"), dtype=np.int64)
        if len(selected) != m or np.any(num_examples <= 0):
            raise ValueError(f"selected and num_examples must give, for each of the {m} rows "
                             f"of reports, a participant id and its (positive) example count")
        if m < self.min_participants:
            raise ValueError(f"only {m} participant(s) selected this round, fewer than "
                             f"min_participants = {self.min_participants}: their secure sum "
                             f"would be one participant's update; raise participation")
        round_number = as_int(round_number, "round_number", minimum=0)
        t = m // 2 + 1 if self.threshold is None else self.threshold
        root = self.seed_sequence
        round_seq = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, round_number))
        keys_seq, dropout_seq = round_seq.spawn(2)
        leaves = np.random.default_rng(dropout_seq).random(m) < self.dropout
        with np.errstate(over="ignore"):
            weighted = reports * num_examples[:, None]     # what each participant sends
        if not np.isfinite(weighted).all():
            raise UpdateOverflowError("values too large for the modulus: n_k · u_k overflows "
                                      "float64 before it can be encoded")
        self.last = secure_sum(weighted, selected, threshold=t, dropped=selected[leaves],
                               round_number=round_number, seed=keys_seq,
                               scale_bits=self.scale_bits, modulus_bits=self.modulus_bits,
                               min_participants=self.min_participants)
        self.survivors.append(self.last.survivors)
        return self.last.total / num_examples[~leaves].sum(), self.last.bytes_up
