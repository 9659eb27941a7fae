"""Compressing what participants send: top-k sparsification and stochastic quantisation.

Every round each selected participant uploads a report of P numbers (FedSGD: its gradient;
FedAvg/FedProx: its weight change w_k - w_server).  Sent as float64 that is 8 P bytes, the
cost this module cuts.  Two classic ways, each a pure function and an aggregator:

- **top-k** (`top_k`, `TopK`): send only the k entries of largest magnitude, as k indices
  plus k float64 values.  With **error feedback** each participant remembers what it left
  out (its residual e_k) and adds it to its next report, so nothing is lost for good:
      corrected = report + e_k,   sent = top_k(corrected),   e_k <- corrected - sent.
- **stochastic quantisation** (`quantize`, `StochasticQuantizer`): send each value as a
  b-bit code, one of 2^b levels evenly spaced on [-s, s] with s = max|v| (one float64 scale
  per message), rounding up or down at random so that E[dequantized] = v exactly (unbiased).
  bits = 64 means "no quantisation": the float64 values themselves are sent.

Byte accounting counts the arrays really produced (`message_nbytes`): indices in the smallest
unsigned integer type that can number P entries (uint8 up to 256 parameters, uint16 up to
65 536, then uint32), values and scales as float64, and b-bit codes packed bit after bit into
ceil(P b / 8) bytes (`pack_codes`).  `message_bytes` is the same count as a formula; the tests
hold the two together.

`TopK` and `StochasticQuantizer` plug into `fedlite.simulate(..., aggregator=...)`: they
compress each selected participant's report, count its bytes, decompress it on the server
and return the n_k-weighted mean of the decompressed reports.  Only uploads are compressed;
the server still sends the full model down (History.bytes_down is unchanged).
"""
from __future__ import annotations

import math

import numpy as np

from .. import engine
from ..parameters import BYTES_PER_VALUE
from ..validation import (UpdateOverflowError, as_array_of, as_float, as_float_array, as_int,
                         as_int_array, check_allocation)

FULL_PRECISION_BITS = 64   # bits=64: no quantisation, the float64 values are sent as they are
MAX_PARAMS = 2**53         # parameter counts up to this are exact as float64 (num_kept)
MAX_SCALE = np.finfo(np.float64).max / 2   # the levels span 2 s, which must stay finite


# ----------------------------------------------------------------------------- byte accounting
def index_dtype(num_params):
    """The smallest unsigned integer type that can number num_params entries (0..P-1)."""
    P = as_int(num_params, "num_params", minimum=1, maximum=2**64)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if P - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def code_dtype(bits):
    """The smallest unsigned integer type holding a b-bit code (0..2^b - 1), before packing."""
    bits = _check_bits(bits)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bits <= 8 * np.dtype(dtype).itemsize:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def message_nbytes(message):
    """Bytes of a message, counted from its arrays: Σ nbytes (a float scale counts 8).

    message: a tuple or list of numeric arrays or numbers, e.g. (indices, values).
    """
    if not isinstance(message, (tuple, list)):
        raise TypeError(f"message must be a tuple or list of arrays, e.g. (indices, values); "
                        f"got {type(message).__name__}")
    return int(sum(as_array_of(part, f"message[{i}]", "iuf", "numbers (ints or floats)").nbytes
                   for i, part in enumerate(message)))


def message_bytes(num_params, *, k=None, bits=None):
    """Bytes one participant uploads for a report of num_params values (the formula).

    uncompressed (neither k nor bits):  8 P
    top-k:    k (index bytes + 8),  index bytes = `index_dtype(P).itemsize`
    b bits:   ceil(P b / 8) + 8 (the packed codes and one float64 scale);  b = 64: 8 P
    """
    P = as_int(num_params, "num_params", minimum=1, maximum=2**64)
    if k is not None and bits is not None:
        raise ValueError("give k (top-k) or bits (quantisation), not both")
    if k is not None:
        k = as_int(k, "k", minimum=1, maximum=P)
        return k * (index_dtype(P).itemsize + BYTES_PER_VALUE)
    if bits is not None:
        bits = _check_bits(bits)
        if bits == FULL_PRECISION_BITS:
            return P * BYTES_PER_VALUE
        return math.ceil(P * bits / 8) + BYTES_PER_VALUE
    return P * BYTES_PER_VALUE


# ----------------------------------------------------------------------------- top-k
def top_k(vector, k):
    """The k entries of largest |value|: returns (indices ascending, values float64), each (k,).

    Ties are broken towards the lower index (a stable sort), so the result is deterministic.
    Indices come in `index_dtype(len(vector))`, the smallest type that can number the entries.
    """
    vector = as_float_array(vector, "vector", 1)
    k = as_int(k, "k", minimum=1, maximum=vector.size)
    largest = np.argsort(-np.abs(vector), kind="stable")[:k]
    indices = np.sort(largest).astype(index_dtype(vector.size))
    return indices, vector[indices]


def densify(indices, values, num_params):
    """The sparse message (indices, values) as a dense vector (P,): zeros where nothing was sent.

    indices: k distinct integers in 0..P-1 (a negative one would count from the end, a repeated
    one overwrite: both are refused); values: k finite numbers.
    """
    P = as_int(num_params, "num_params", minimum=1)
    check_allocation(P, "num_params")
    indices = _as_whole_numbers(indices, "indices", P - 1, "num_params - 1")
    if np.unique(indices).size != indices.size:
        raise ValueError("indices must not repeat (each entry is sent at most once; a repeated "
                         "index would overwrite the first value)")
    values = as_float_array(values, "values", 1, (indices.size,))
    dense = np.zeros(P)
    dense[indices.astype(np.int64)] = values
    return dense


def num_kept(fraction, num_params):
    """k = ceil(fraction · P), at least 1: how many entries top-k keeps."""
    fraction = _check_fraction(fraction)
    P = as_int(num_params, "num_params", minimum=1, maximum=MAX_PARAMS)
    return max(1, math.ceil(fraction * P - 1e-9))  # 1e-9: 0.1 * 30 is not quite 3


# ----------------------------------------------------------------------------- quantisation
def quantize(vector, bits, rng):
    """Stochastic b-bit quantisation: returns (codes (P,) unsigned ints, scale float).

    Levels: 2^b values evenly spaced on [-s, s], s = max|v| (the scale), spacing
    Δ = 2 s / (2^b - 1), level c = -s + c Δ.  A value between levels c and c + 1 becomes
    c + 1 with probability (v - level_c) / Δ, else c, so E[dequantize] = v (unbiased).
    rng: a numpy Generator (one uniform draw per value).  bits = 64: no quantisation; the
    codes are the float64 values' own bits (view as uint64) and no random number is drawn.
    A vector with max|v| > MAX_SCALE (~9e307, where the span 2 s overflows) raises
    `validation.UpdateOverflowError` (a ValueError; in `simulate`, a diverged round).
    """
    vector = as_float_array(vector, "vector", 1)
    bits = _check_bits(bits)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)); "
                        f"got {type(rng).__name__}")
    if bits == FULL_PRECISION_BITS:
        return vector.view(np.uint64).copy(), 1.0
    top = 2.0 ** bits - 1.0                        # highest code
    scale = float(np.max(np.abs(vector)))
    if scale > MAX_SCALE:
        raise UpdateOverflowError(f"vector must have max|value| <= {MAX_SCALE:.3g} to be "
                                  f"quantized (the levels span 2 max|value|); got {scale:.3g}")
    if scale == 0.0:
        return np.zeros(vector.size, dtype=code_dtype(bits)), 0.0
    position = (vector + scale) / (2.0 * scale) * top   # in [0, top]: (v + s) / Δ
    lower = np.floor(position)
    codes = lower + (rng.random(vector.size) < position - lower)   # round up w.p. the fraction
    codes = np.clip(codes, 0.0, top).astype(np.uint64)
    codes = np.minimum(codes, np.uint64(2**bits - 1))  # float(top) rounds up when bits > 53
    return codes.astype(code_dtype(bits)), scale


def dequantize(codes, scale, bits):
    """Codes back to values -s + c · 2 s / (2^b - 1), shape (P,) float64 (64 bits: the values).

    codes: integers in 0..2^b - 1; scale: the sender's s = max|v|, in 0..MAX_SCALE.
    """
    bits = _check_bits(bits)
    codes = _as_codes(codes, bits)
    scale = as_float(scale, "scale")
    if not 0 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be in [0, {MAX_SCALE:.3g}] (the max |value| of what was "
                         f"quantized); got {scale}")
    if bits == FULL_PRECISION_BITS:
        return codes.view(np.float64).copy()
    return -scale + codes.astype(np.float64) * (2.0 * scale / (2.0 ** bits - 1.0))


def pack_codes(codes, bits):
    """b-bit codes (P,) packed into ceil(P b / 8) bytes, most significant bit first (uint8).

    codes: integers in 0..2^b - 1 (a larger one would lose its high bits: refused).
    """
    bits = _check_bits(bits)
    codes = _as_codes(codes, bits)
    check_allocation(codes.size * bits, "codes")   # one uint64 per bit while packing
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bit_matrix = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)   # (P, b)
    return np.packbits(bit_matrix.ravel())


def unpack_codes(packed, bits, num_params):
    """The inverse of `pack_codes`: (P,) codes in `code_dtype(bits)`."""
    bits = _check_bits(bits)
    P = as_int(num_params, "num_params", minimum=1)
    check_allocation(P * bits, "num_params")       # one uint64 per bit while unpacking
    packed = _as_whole_numbers(packed, "packed", 255, "255 (bytes)")
    if packed.size != math.ceil(P * bits / 8):
        raise ValueError(f"packed must hold ceil(num_params · bits / 8) = "
                         f"{math.ceil(P * bits / 8)} bytes for {P} codes of {bits} bits; "
                         f"got {packed.size}")
    bit_matrix = np.unpackbits(packed.astype(np.uint8))[: P * bits].reshape(P, bits)
    weights = np.uint64(1) << np.arange(bits - 1, -1, -1, dtype=np.uint64)
    codes = (bit_matrix.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return codes.astype(code_dtype(bits))


# ----------------------------------------------------------------------------- aggregators
class TopK:
    """Aggregator: each participant sends its k = ceil(fraction · P) largest entries.

    error_feedback=True keeps a residual e_k (K, P) per participant (what it has not sent
    yet) and adds it to the next report; False drops what is not sent.  After each round:
    `residual`, `last_sent` (m, P) the decompressed reports, `last_bytes` per participant.
    """

    def __init__(self, fraction, error_feedback=True):
        self.fraction = _check_fraction(fraction)
        if not isinstance(error_feedback, (bool, np.bool_)):
            raise TypeError(f"error_feedback must be True or False; got {error_feedback!r}")
        self.error_feedback = bool(error_feedback)

    def __repr__(self):
        return f"TopK(fraction={self.fraction:g}, error_feedback={self.error_feedback})"

    def start(self, num_participants, num_params, seed_sequence):
        """A new run: every residual back to zero (top-k draws no random numbers)."""
        K, self.num_params = _check_start(num_participants, num_params)
        check_allocation(K * self.num_params, "num_participants or num_params")   # residual
        self.num_participants = K
        self.k = num_kept(self.fraction, self.num_params)
        self.residual = np.zeros((K, self.num_params))

    def prepare(self, reports, selected, round_number):
        """The participant side: each selected participant adds its residual to its report,
        keeps the k largest entries (what it sends) and the rest as its new residual.
        Returns what the server reads, (m, P) dense; `last_bytes` holds the message sizes."""
        reports, selected = _check_reports(self, reports, selected)
        sent = np.empty_like(reports)
        self.last_bytes = []
        for s, k in enumerate(selected):
            corrected = reports[s] + self.residual[k] if self.error_feedback else reports[s]
            if not np.isfinite(corrected).all():   # a diverging run: sent as is, so
                sent[s] = corrected                  # that simulate sees the NaN and stops
                self.last_bytes.append(message_bytes(self.num_params))
                continue
            message = top_k(corrected, self.k)               # (indices, values): what is sent
            self.last_bytes.append(message_nbytes(message))
            sent[s] = densify(*message, self.num_params)     # what the server reads
            if self.error_feedback:
                self.residual[k] = corrected - sent[s]       # what is still owed
        self.last_sent = sent
        self._prepared = (round_number, sent)
        return sent

    def aggregate(self, reports, num_examples, selected, round_number):
        """The server side: (n_k-weighted mean of the decompressed reports (P,), bytes
        uploaded this round).  Raw reports not yet through `prepare` are prepared first."""
        return _server_mean(self, reports, num_examples, selected, round_number)


class StochasticQuantizer:
    """Aggregator: each participant sends every value as a b-bit stochastic code plus a scale.

    Unbiased (E[sent] = report), so no error feedback is needed.  Each participant draws its
    rounding from its own generator, a child of the run's seed sequence.  bits = 64: exact.
    After each round: `last_sent` (m, P) the decompressed reports, `last_bytes` per participant.
    """

    def __init__(self, bits):
        self.bits = _check_bits(bits)

    def __repr__(self):
        return f"StochasticQuantizer(bits={self.bits})"

    def start(self, num_participants, num_params, seed_sequence):
        """A new run: one random generator per participant from seed_sequence."""
        K, self.num_params = _check_start(num_participants, num_params)
        if not isinstance(seed_sequence, np.random.SeedSequence):
            raise TypeError(f"seed_sequence must be a numpy SeedSequence; "
                            f"got {type(seed_sequence).__name__}")
        self.num_participants = K
        self.rngs = [np.random.default_rng(child) for child in seed_sequence.spawn(K)]

    def prepare(self, reports, selected, round_number):
        """The participant side: each selected participant quantises its own report with its
        own generator.  Returns what the server reads (m, P); `last_bytes` the message sizes."""
        reports, selected = _check_reports(self, reports, selected)
        sent = np.empty_like(reports)
        self.last_bytes = []
        for s, k in enumerate(selected):
            if not np.isfinite(reports[s]).all():  # a diverging run: sent as is, so
                sent[s] = reports[s]                 # that simulate sees the NaN and stops
                self.last_bytes.append(message_bytes(self.num_params))
                continue
            codes, scale = quantize(reports[s], self.bits, self.rngs[k])
            if self.bits == FULL_PRECISION_BITS:
                message = (codes,)                            # the float64 values themselves
            else:
                message = (pack_codes(codes, self.bits), np.float64(scale))
            self.last_bytes.append(message_nbytes(message))
            received = (codes if self.bits == FULL_PRECISION_BITS
                        else unpack_codes(message[0], self.bits, self.num_params))
            sent[s] = dequantize(received, scale, self.bits)
        self.last_sent = sent
        self._prepared = (round_number, sent)
        return sent

    def aggregate(self, reports, num_examples, selected, round_number):
        """The server side: (n_k-weighted mean of the decompressed reports (P,), bytes
        uploaded this round).  Raw reports not yet through `prepare` are prepared first."""
        return _server_mean(self, reports, num_examples, selected, round_number)


def _server_mean(aggregator, reports, num_examples, selected, round_number):
    """The weighted mean of what the participants' `prepare` sent this round (preparing the
    reports first when aggregate is called on raw reports, e.g. outside simulate)."""
    prepared = getattr(aggregator, "_prepared", None)
    if prepared is None or prepared[0] != round_number or prepared[1] is not reports:
        reports = aggregator.prepare(reports, selected, round_number)
    reports, num_examples, selected = _check_round(aggregator, reports, num_examples, selected)
    aggregator._prepared = None
    return _weighted_mean(reports, num_examples), sum(aggregator.last_bytes)


def _weighted_mean(reports, num_examples):
    """Σ_s n_s u_s / Σ_s n_s, added in row order (the compiled server's own aggregation)."""
    return engine.aggregate(np.ascontiguousarray(reports, dtype=np.float64),
                            np.ascontiguousarray(num_examples, dtype=np.float64))


# ----------------------------------------------------------------------------- checks
def _check_fraction(fraction):
    fraction = as_float(fraction, "fraction")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (the share of entries kept); got {fraction}")
    return fraction


def _check_bits(bits):
    return as_int(bits, "bits", minimum=1, maximum=FULL_PRECISION_BITS)


def _as_whole_numbers(value, name, maximum, maximum_text):
    """A non-empty 1-D array of integers in 0..maximum, as uint64 (exact whatever the dtype)."""
    array = as_int_array(value, name, 1, 0, maximum, np.uint64,
                         range_text=f"0..{maximum_text} = {maximum}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    return array


def _as_codes(codes, bits):
    return _as_whole_numbers(codes, "codes", 2**bits - 1, f"2^{bits} - 1")


def _check_start(num_participants, num_params):
    """An aggregator's start(): (K, P) as ints >= 1."""
    return (as_int(num_participants, "num_participants", minimum=1),
            as_int(num_params, "num_params", minimum=1))


def _check_reports(aggregator, reports, selected):
    """prepare()'s arguments: reports (m, P) (NaN allowed) and selected (m,) ids."""
    _check_started(aggregator)
    reports = as_float_array(reports, "reports", 2, ("m", aggregator.num_params),
                             check_finite=False)
    reports, _, selected = _check_round(aggregator, reports, np.ones(reports.shape[0]), selected)
    return reports, selected


def _check_started(aggregator):
    if not hasattr(aggregator, "num_params"):
        raise ValueError(f"call {type(aggregator).__name__}.start(num_participants, num_params, "
                         f"seed_sequence) before aggregate (simulate does)")


def _check_round(aggregator, reports, num_examples, selected):
    """An aggregator's aggregate() arguments: reports (m, P) (NaN allowed: a diverging run),
    num_examples (m,) > 0 and selected (m,) participant ids in 0..K-1, after start()."""
    _check_started(aggregator)
    reports = as_float_array(reports, "reports", 2, ("m", aggregator.num_params),
                             check_finite=False)
    m = reports.shape[0]
    num_examples = as_float_array(num_examples, "num_examples", 1, (m,))
    if (num_examples <= 0).any():
        raise ValueError("num_examples must be > 0 (each participant's number of rows)")
    selected = _as_whole_numbers(selected, "selected", aggregator.num_participants - 1,
                                 "num_participants - 1")
    if selected.size != m:
        raise ValueError(f"selected must have one participant id per report ({m}); "
                         f"got {selected.size}")
    return reports, num_examples, selected.astype(np.int64)
