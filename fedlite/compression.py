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

from . import engine
from .parameters import BYTES_PER_VALUE
from .validation import as_float, as_float_array, as_int

FULL_PRECISION_BITS = 64   # bits=64: no quantisation, the float64 values are sent as they are


# ----------------------------------------------------------------------------- byte accounting
def index_dtype(num_params):
    """The smallest unsigned integer type that can number num_params entries (0..P-1)."""
    P = as_int(num_params, "num_params", minimum=1)
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
    """Bytes of a message, counted from its arrays: Σ nbytes (a float scale counts 8)."""
    return int(sum(np.asarray(part).nbytes for part in message))


def message_bytes(num_params, *, k=None, bits=None):
    """Bytes one participant uploads for a report of num_params values (the formula).

    uncompressed (neither k nor bits):  8 P
    top-k:    k (index bytes + 8),  index bytes = `index_dtype(P).itemsize`
    b bits:   ceil(P b / 8) + 8 (the packed codes and one float64 scale);  b = 64: 8 P
    """
    P = as_int(num_params, "num_params", minimum=1)
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
    """The sparse message (indices, values) as a dense vector (P,): zeros where nothing was sent."""
    dense = np.zeros(as_int(num_params, "num_params", minimum=1))
    dense[np.asarray(indices, dtype=np.int64)] = values
    return dense


def num_kept(fraction, num_params):
    """k = ceil(fraction · P), at least 1: how many entries top-k keeps."""
    fraction = _check_fraction(fraction)
    return max(1, math.ceil(fraction * num_params - 1e-9))  # 1e-9: 0.1 * 30 is not quite 3


# ----------------------------------------------------------------------------- quantisation
def quantize(vector, bits, rng):
    """Stochastic b-bit quantisation: returns (codes (P,) unsigned ints, scale float).

    Levels: 2^b values evenly spaced on [-s, s], s = max|v| (the scale), spacing
    Δ = 2 s / (2^b - 1), level c = -s + c Δ.  A value between levels c and c + 1 becomes
    c + 1 with probability (v - level_c) / Δ, else c, so E[dequantize] = v (unbiased).
    rng: a numpy Generator (one uniform draw per value).  bits = 64: no quantisation; the
    codes are the float64 values' own bits (view as uint64) and no random number is drawn.
    """
    vector = as_float_array(vector, "vector", 1)
    bits = _check_bits(bits)
    if bits == FULL_PRECISION_BITS:
        return vector.view(np.uint64).copy(), 1.0
    top = 2.0 ** bits - 1.0                        # highest code
    scale = float(np.max(np.abs(vector)))
    if scale == 0.0:
        return np.zeros(vector.size, dtype=code_dtype(bits)), 0.0
    position = (vector + scale) / (2.0 * scale) * top   # in [0, top]: (v + s) / Δ
    lower = np.floor(position)
    codes = lower + (rng.random(vector.size) < position - lower)   # round up w.p. the fraction
    codes = np.clip(codes, 0.0, top).astype(np.uint64)
    codes = np.minimum(codes, np.uint64(2**bits - 1))  # float(top) rounds up when bits > 53
    return codes.astype(code_dtype(bits)), scale


def dequantize(codes, scale, bits):
    """Codes back to values -s + c · 2 s / (2^b - 1), shape (P,) float64 (64 bits: the values)."""
    bits = _check_bits(bits)
    codes = np.asarray(codes)
    if bits == FULL_PRECISION_BITS:
        return codes.astype(np.uint64).view(np.float64).copy()
    return -scale + codes.astype(np.float64) * (2.0 * scale / (2.0 ** bits - 1.0))


def pack_codes(codes, bits):
    """b-bit codes (P,) packed into ceil(P b / 8) bytes, most significant bit first (uint8)."""
    bits = _check_bits(bits)
    codes = np.asarray(codes).astype(np.uint64)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bit_matrix = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)   # (P, b)
    return np.packbits(bit_matrix.ravel())


def unpack_codes(packed, bits, num_params):
    """The inverse of `pack_codes`: (P,) codes in `code_dtype(bits)`."""
    bits = _check_bits(bits)
    P = as_int(num_params, "num_params", minimum=1)
    bit_matrix = np.unpackbits(np.asarray(packed, dtype=np.uint8))[: P * bits].reshape(P, bits)
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
        self.num_params = as_int(num_params, "num_params", minimum=1)
        self.k = num_kept(self.fraction, self.num_params)
        self.residual = np.zeros((num_participants, self.num_params))

    def aggregate(self, reports, num_examples, selected, round_number):
        """(n_k-weighted mean of the decompressed reports (P,), bytes uploaded this round)."""
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
        return _weighted_mean(sent, num_examples), sum(self.last_bytes)


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
        self.num_params = as_int(num_params, "num_params", minimum=1)
        self.rngs = [np.random.default_rng(child)
                     for child in seed_sequence.spawn(num_participants)]

    def aggregate(self, reports, num_examples, selected, round_number):
        """(n_k-weighted mean of the decompressed reports (P,), bytes uploaded this round)."""
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
        return _weighted_mean(sent, num_examples), sum(self.last_bytes)


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
