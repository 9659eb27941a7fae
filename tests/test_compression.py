"""fedlite.compression: top-k with error feedback, unbiased stochastic quantisation, and byte
counts that equal the arrays really produced; plugged into simulate, k = 100% and 64 bits
reproduce the uncompressed run."""
import numpy as np
import pytest

import fedlite
from fedlite import compression
from fedlite.compression import (StochasticQuantizer, TopK, dequantize, message_bytes,
                                 message_nbytes, pack_codes, quantize, top_k, unpack_codes)
from fedlite.parameters import num_params


def linear_federation(K=5, n_per=20, d=3, seed=0):
    X, y, _, _ = fedlite.make_linear_data(K * n_per, d, noise=0.1, seed=seed)
    return fedlite.split(X, y, K, seed=seed)


# ----------------------------------------------------------------------------- top-k
@pytest.mark.parametrize("P,k", [(1, 1), (7, 3), (256, 10), (257, 257), (70_000, 5)])
def test_top_k_keeps_the_largest_magnitudes_in_ascending_index_order(P, k):
    vector = np.random.default_rng(P).normal(size=P)
    indices, values = top_k(vector, k)
    assert indices.shape == values.shape == (k,)
    assert list(indices) == sorted(indices) and len(set(indices.tolist())) == k
    np.testing.assert_array_equal(values, vector[indices.astype(np.int64)])
    threshold = np.sort(np.abs(vector))[::-1][k - 1]
    assert np.all(np.abs(values) >= threshold)


def test_top_k_breaks_ties_towards_the_lower_index():
    indices, values = top_k(np.array([1.0, -3.0, 3.0, 0.5, 3.0]), 2)
    assert indices.tolist() == [1, 2] and values.tolist() == [-3.0, 3.0]


@pytest.mark.parametrize("P,dtype", [(1, np.uint8), (256, np.uint8), (257, np.uint16),
                                     (65_536, np.uint16), (65_537, np.uint32)])
def test_indices_use_the_smallest_unsigned_type_that_numbers_every_entry(P, dtype):
    assert compression.index_dtype(P) == np.dtype(dtype)


@pytest.mark.parametrize("P", [3, 256, 300, 70_000])
@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 1.0])
def test_top_k_byte_count_is_the_nbytes_of_the_arrays_produced(P, fraction):
    k = compression.num_kept(fraction, P)
    message = top_k(np.random.default_rng(0).normal(size=P), k)
    assert message_nbytes(message) == message_bytes(P, k=k) == sum(a.nbytes for a in message)


def test_num_kept_rounds_up_and_keeps_at_least_one():
    assert compression.num_kept(0.1, 30) == 3
    assert compression.num_kept(0.1, 31) == 4
    assert compression.num_kept(0.001, 10) == 1
    assert compression.num_kept(1.0, 17) == 17


# ----------------------------------------------------------------------------- quantisation
@pytest.mark.parametrize("bits", [1, 2, 3, 7, 8, 9, 16, 17, 31, 32, 33, 52, 63])
@pytest.mark.parametrize("P", [1, 5, 100])
def test_pack_unpack_round_trip_and_byte_count(bits, P):
    rng = np.random.default_rng(bits)
    codes, scale = quantize(rng.normal(size=P), bits, rng)
    assert codes.dtype == compression.code_dtype(bits)
    packed = pack_codes(codes, bits)
    assert packed.dtype == np.uint8 and packed.nbytes == -(-P * bits // 8)
    np.testing.assert_array_equal(unpack_codes(packed, bits, P), codes)
    assert message_nbytes((packed, np.float64(scale))) == message_bytes(P, bits=bits)


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
def test_quantized_values_lie_on_the_two_nearest_levels(bits):
    rng = np.random.default_rng(bits)
    vector = rng.normal(size=200)
    codes, scale = quantize(vector, bits, rng)
    assert scale == np.max(np.abs(vector))
    assert codes.max() <= 2**bits - 1
    step = 2 * scale / (2**bits - 1)
    assert np.all(np.abs(dequantize(codes, scale, bits) - vector) <= step * (1 + 1e-12))
    extremes = dequantize(quantize(np.array([-2.0, 2.0]), bits, rng)[0], 2.0, bits)
    np.testing.assert_array_equal(extremes, [-2.0, 2.0])  # ±s are levels: sent exactly


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quantisation_is_unbiased_mean_over_many_seeds(bits):
    vector = np.array([0.3, -1.0, 0.77, -0.05, 0.0, 1.0])
    num_seeds = 2000
    draws = np.array([dequantize(*quantize(vector, bits, np.random.default_rng(seed)), bits)
                      for seed in range(num_seeds)])
    # Each entry rounds up with probability p to a level Δ higher: variance p (1 - p) Δ².
    step = 2 * np.max(np.abs(vector)) / (2**bits - 1)
    p = (vector + 1.0) / step % 1.0
    standard_error = np.sqrt(p * (1 - p)) * step / np.sqrt(num_seeds)
    assert np.all(np.abs(draws.mean(axis=0) - vector) <= 4 * standard_error + 1e-12)
    # the same test catches a biased rule: rounding to the nearest level
    nearest = -1.0 + np.round((vector + 1.0) / step) * step
    assert np.any(np.abs(nearest - vector) > 4 * standard_error + 1e-12)


def test_64_bits_is_no_quantisation_and_draws_no_random_numbers():
    vector = np.random.default_rng(0).normal(size=50)
    rng = np.random.default_rng(1)
    codes, scale = quantize(vector, 64, rng)
    np.testing.assert_array_equal(dequantize(codes, scale, 64), vector)
    assert codes.nbytes == message_bytes(50, bits=64) == 50 * 8
    assert rng.random() == np.random.default_rng(1).random()


def test_a_zero_vector_quantizes_to_zero():
    codes, scale = quantize(np.zeros(4), 3, np.random.default_rng(0))
    assert scale == 0.0
    np.testing.assert_array_equal(dequantize(codes, scale, 3), np.zeros(4))


# ----------------------------------------------------------------------------- aggregators
def reports_for_round(rng, K, P, m):
    selected = np.sort(rng.choice(K, size=m, replace=False)).astype(np.int64)
    return rng.normal(size=(m, P)), rng.integers(1, 50, size=m).astype(np.float64), selected


def test_error_feedback_residual_bookkeeping_is_exact():
    K, P, m = 6, 40, 3
    aggregator = TopK(0.1)
    aggregator.start(K, P, np.random.SeedSequence(0))
    rng = np.random.default_rng(0)
    total_reported, total_sent = np.zeros((K, P)), np.zeros((K, P))
    for round_number in range(1, 8):
        reports, n, selected = reports_for_round(rng, K, P, m)
        before = aggregator.residual.copy()
        mean, sent_bytes = aggregator.aggregate(reports, n, selected, round_number)
        after, sent = aggregator.residual, aggregator.last_sent
        for s, k in enumerate(selected):
            np.testing.assert_array_equal(after[k], before[k] + reports[s] - sent[s])
            assert np.count_nonzero(sent[s]) <= aggregator.k == 4
            total_reported[k] += reports[s]
            total_sent[k] += sent[s]
        others = np.setdiff1d(np.arange(K), selected)
        np.testing.assert_array_equal(after[others], before[others])
        np.testing.assert_allclose(mean, n @ sent / n.sum(), rtol=1e-13)
        assert sent_bytes == m * message_bytes(P, k=4) == sum(aggregator.last_bytes)
    # nothing is lost: what was sent plus what is still owed is what was reported
    np.testing.assert_allclose(total_sent + aggregator.residual, total_reported, atol=1e-12)


def test_without_error_feedback_the_rest_is_dropped():
    aggregator = TopK(0.25, error_feedback=False)
    aggregator.start(2, 8, np.random.SeedSequence(0))
    report = np.arange(8.0)[None, :]
    aggregator.aggregate(report, np.ones(1), np.array([0]), 1)
    np.testing.assert_array_equal(aggregator.last_sent[0], [0, 0, 0, 0, 0, 0, 6, 7])
    np.testing.assert_array_equal(aggregator.residual, 0.0)


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("algorithm,extra", [
    ("fedsgd", {}), ("fedavg", dict(local_epochs=2, batch_size=5)),
    ("fedprox", dict(local_epochs=2, batch_size=5, mu=0.1))])
def test_k_100_percent_and_64_bits_reproduce_the_uncompressed_run(model, algorithm, extra):
    fed = linear_federation()
    kwargs = dict(model=model, algorithm=algorithm, num_rounds=6, lr=0.05, participation=0.6,
                  hidden=4, seed=1, **extra)
    plain = fedlite.simulate(fed, **kwargs)
    P = num_params(model, 3, 4)
    for aggregator, per_message in ((TopK(1.0), message_bytes(P, k=P)),
                                    (StochasticQuantizer(64), 8 * P)):
        run = fedlite.simulate(fed, aggregator=aggregator, **kwargs)
        np.testing.assert_allclose(run.loss, plain.loss, rtol=1e-12)
        np.testing.assert_allclose(run.theta, plain.theta, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(run.selected, plain.selected)
        assert list(run.bytes_up) == [3 * per_message] * 6
        np.testing.assert_array_equal(run.bytes_down, plain.bytes_down)
    assert list(fedlite.simulate(fed, aggregator=StochasticQuantizer(64), **kwargs).bytes_up) \
        == list(plain.bytes_up)


@pytest.mark.parametrize("make", [lambda: TopK(0.2), lambda: TopK(0.2, error_feedback=False),
                                  lambda: StochasticQuantizer(2)])
def test_same_seed_same_history_and_state_is_reset_every_run(make):
    fed = linear_federation()
    kwargs = dict(algorithm="fedavg", num_rounds=8, lr=0.1, participation=0.6, seed=2)
    aggregator = make()
    a = fedlite.simulate(fed, aggregator=aggregator, **kwargs)
    b = fedlite.simulate(fed, aggregator=aggregator, **kwargs)   # same object, run again
    c = fedlite.simulate(fed, aggregator=make(), **kwargs)
    for run in (b, c):
        for field in ("loss", "theta", "bytes_up", "selected"):
            assert np.array_equal(getattr(a, field), getattr(run, field)), field


def test_the_quantizer_draws_from_the_seed():
    fed = linear_federation()
    kwargs = dict(algorithm="fedsgd", num_rounds=5, lr=0.1)
    a = fedlite.simulate(fed, aggregator=StochasticQuantizer(2), seed=0, **kwargs)
    b = fedlite.simulate(fed, aggregator=StochasticQuantizer(2), seed=1, **kwargs)
    assert not np.array_equal(a.theta, b.theta)


def test_compressed_runs_still_learn_and_send_less():
    fed = linear_federation(K=10, d=20)
    kwargs = dict(algorithm="fedsgd", num_rounds=60, lr=0.3)
    plain = fedlite.simulate(fed, **kwargs)
    for aggregator in (TopK(0.1), StochasticQuantizer(4)):
        run = fedlite.simulate(fed, aggregator=aggregator, **kwargs)
        assert run.loss[-1] < 0.05 * run.loss[0]
        assert run.bytes_up.sum() < 0.3 * plain.bytes_up.sum()


@pytest.mark.parametrize("make,match", [
    (lambda: TopK(0.0), "fraction"), (lambda: TopK(1.5), "fraction"),
    (lambda: TopK("half"), "fraction"), (lambda: TopK(0.5, error_feedback=1), "error_feedback"),
    (lambda: StochasticQuantizer(0), "bits"), (lambda: StochasticQuantizer(65), "bits"),
    (lambda: StochasticQuantizer(2.5), "bits"),
    (lambda: top_k(np.ones(3), 4), "k"), (lambda: top_k(np.ones(3), 0), "k"),
    (lambda: top_k(np.ones((2, 2)), 1), "vector"), (lambda: top_k([1.0, np.nan], 1), "vector"),
    (lambda: message_bytes(10, k=2, bits=3), "k .*bits"),
])
def test_bad_arguments_raise_errors_naming_them(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("aggregator", [TopK(0.5), StochasticQuantizer(2)])
def test_a_diverging_compressed_run_is_reported_not_hidden(aggregator):
    fed = linear_federation()
    with np.errstate(all="raise"):
        history = fedlite.simulate(fed, algorithm="fedavg", local_epochs=5, num_rounds=100,
                                   lr=50.0, aggregator=aggregator)
    assert history.diverged and np.isfinite(history.loss).all()


# ----------------------------------------------------------------------------- hostile input
class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array for you")


BAD_CALLS = {
    # densify wrote a negative index from the end, and let a repeated one overwrite
    "densify negative index": (lambda: compression.densify([-1], [5.0], 4), ValueError,
                               r"^indices must be in 0..num_params - 1 = 3; got values from -1"),
    "densify index = P": (lambda: compression.densify([4], [5.0], 4), ValueError, "^indices"),
    "densify repeated index": (lambda: compression.densify([1, 1], [5.0, 6.0], 4), ValueError,
                               "^indices must not repeat"),
    "densify float index": (lambda: compression.densify([1.5], [5.0], 4), TypeError, "^indices"),
    "densify bool index": (lambda: compression.densify([True], [5.0], 4), TypeError, "^indices"),
    "densify no index": (lambda: compression.densify([], [], 4), TypeError, "^indices"),
    "densify 2-D indices": (lambda: compression.densify([[1]], [5.0], 4), ValueError,
                            "^indices must be 1-D"),
    "densify values length": (lambda: compression.densify([1, 2], [5.0], 4), ValueError,
                              r"^values must have shape \(2,\)"),
    "densify NaN value": (lambda: compression.densify([1], [np.nan], 4), ValueError, "^values"),
    "densify huge P": (lambda: compression.densify([1], [1.0], 10**12), ValueError,
                       "^num_params too large"),
    "densify P = 0": (lambda: compression.densify([0], [1.0], 0), ValueError, "^num_params"),
    # pack_codes dropped the high bits of a code too large for b bits
    "pack code too large": (lambda: pack_codes(np.array([4], np.uint8), 2), ValueError,
                            r"^codes must be in 0..2\^2 - 1 = 3; got values from 4 to 4"),
    "pack negative code": (lambda: pack_codes([-1, 2], 2), ValueError, "^codes must be in 0"),
    "pack float code": (lambda: pack_codes([1.0, 2.0], 2), TypeError, "^codes must hold integers"),
    "pack bool code": (lambda: pack_codes([True], 2), TypeError, "^codes"),
    "pack string code": (lambda: pack_codes(["1"], 2), TypeError, "^codes"),
    "pack unconvertible": (lambda: pack_codes(_Unconvertible(), 2), TypeError, "^codes"),
    "pack 2-D codes": (lambda: pack_codes([[1]], 2), ValueError, "^codes"),
    "pack huge code list": (lambda: pack_codes([10**400], 2), TypeError, "^codes"),
    # dequantize took codes outside 0..2^b - 1 and a NaN or negative scale
    "dequantize code too large": (lambda: dequantize([0, 4], 1.0, 2), ValueError, "^codes"),
    "dequantize negative code": (lambda: dequantize([-1], 1.0, 2), ValueError, "^codes"),
    "dequantize 64-bit negative": (lambda: dequantize([-1], 1.0, 64), ValueError, "^codes"),
    "dequantize NaN scale": (lambda: dequantize([0, 3], np.nan, 2), ValueError, "^scale"),
    "dequantize negative scale": (lambda: dequantize([0, 3], -1.0, 2), ValueError, "^scale"),
    "dequantize huge scale": (lambda: dequantize([0, 3], 1e308, 2), ValueError, "^scale"),
    "dequantize string scale": (lambda: dequantize([0, 3], "1", 2), TypeError, "^scale"),
    "dequantize complex scale": (lambda: dequantize([0, 3], 1j, 2), TypeError, "^scale"),
    # num_kept took a negative parameter count
    "num_kept negative P": (lambda: compression.num_kept(0.5, -10), ValueError, "^num_params"),
    "num_kept P = 0": (lambda: compression.num_kept(0.5, 0), ValueError, "^num_params"),
    "num_kept float P": (lambda: compression.num_kept(0.5, 10.0), TypeError, "^num_params"),
    "num_kept huge P": (lambda: compression.num_kept(0.5, 10**400), ValueError, "^num_params"),
    "num_kept NaN fraction": (lambda: compression.num_kept(np.nan, 10), ValueError, "^fraction"),
    "num_kept bool fraction": (lambda: compression.num_kept(True, 10), TypeError, "^fraction"),
    # the other public functions
    "quantize without a Generator": (lambda: quantize([1.0, 2.0], 2, 0), TypeError, "^rng"),
    "quantize with legacy RandomState": (lambda: quantize([1.0], 2, np.random.RandomState(0)),
                                         TypeError, "^rng"),
    "quantize overflowing span": (lambda: quantize([1e308, -1e308], 2, np.random.default_rng(0)),
                                  ValueError, "^vector must have max"),
    "quantize empty": (lambda: quantize([], 2, np.random.default_rng(0)), ValueError, "^vector"),
    "quantize complex": (lambda: quantize([1j], 2, np.random.default_rng(0)), TypeError,
                         "^vector"),
    "unpack too few bytes": (lambda: unpack_codes(np.zeros(1, np.uint8), 4, 3), ValueError,
                             r"^packed must hold .* = 2 bytes"),
    "unpack byte > 255": (lambda: unpack_codes([256], 4, 2), ValueError, "^packed"),
    "unpack negative byte": (lambda: unpack_codes([-1], 4, 2), ValueError, "^packed"),
    "unpack float bytes": (lambda: unpack_codes([1.0], 4, 2), TypeError, "^packed"),
    "unpack huge P": (lambda: unpack_codes([1], 64, 10**12), ValueError, "^num_params too large"),
    "index_dtype huge": (lambda: compression.index_dtype(10**400), ValueError, "^num_params"),
    "index_dtype string": (lambda: compression.index_dtype("7"), TypeError, "^num_params"),
    "code_dtype bool": (lambda: compression.code_dtype(True), TypeError, "^bits"),
    "message_bytes huge": (lambda: message_bytes(10**400), ValueError, "^num_params"),
    "message_bytes k float": (lambda: message_bytes(10, k=2.0), TypeError, "^k"),
    "message_nbytes array": (lambda: message_nbytes(np.zeros(3)), TypeError, "^message must"),
    "message_nbytes string part": (lambda: message_nbytes(("abc",)), TypeError, r"^message\[0\]"),
    "message_nbytes unconvertible": (lambda: message_nbytes((np.zeros(2), _Unconvertible())),
                                     TypeError, r"^message\[1\]"),
    "top_k huge k": (lambda: top_k(np.ones(3), 10**400), ValueError, "^k"),
    "top_k unconvertible": (lambda: top_k(_Unconvertible(), 1), TypeError, "^vector"),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_every_public_function_names_the_bad_argument(name):
    make, error, match = BAD_CALLS[name]
    with pytest.raises(error, match=match):
        make()


def test_densify_and_dequantize_still_accept_every_valid_message():
    assert compression.densify(np.array([0, 3], np.uint8), [1.0, 2.0], 4).tolist() == [1, 0, 0, 2]
    np.testing.assert_array_equal(dequantize([0, 3], 0.0, 2), [0.0, 0.0])
    top = np.array([2**64 - 1, 0], dtype=np.uint64)                     # any 64-bit pattern
    np.testing.assert_array_equal(unpack_codes(pack_codes(top, 64), 64, 2), top)


@pytest.mark.parametrize("make", [lambda: TopK(0.5), lambda: StochasticQuantizer(4)])
def test_aggregators_check_their_protocol_arguments(make):
    aggregator = make()
    reports, sizes = np.ones((2, 3)), np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="start"):
        aggregator.aggregate(reports, sizes, np.array([0, 1]), 1)
    with pytest.raises(ValueError, match="^num_participants"):
        aggregator.start(0, 3, np.random.SeedSequence(0))
    aggregator.start(2, 3, np.random.SeedSequence(0))
    for args, error, match in [
        ((np.ones((2, 4)), sizes, [0, 1]), ValueError, r"^reports must have shape \(m, 3\)"),
        ((reports, [1.0], [0, 1]), ValueError, "^num_examples"),
        ((reports, [1.0, 0.0], [0, 1]), ValueError, "^num_examples must be > 0"),
        ((reports, sizes, [0, 2]), ValueError, "^selected must be in 0..num_participants - 1"),
        ((reports, sizes, [0]), ValueError, "^selected must have one participant id per report"),
        ((reports, sizes, [0.0, 1.0]), TypeError, "^selected"),
    ]:
        with pytest.raises(error, match=match):
            aggregator.aggregate(*args, 1)
    mean, sent = aggregator.aggregate(reports, sizes, np.array([0, 1]), 1)
    assert mean.shape == (3,) and sent > 0


def test_the_quantizer_needs_a_seed_sequence():
    with pytest.raises(TypeError, match="^seed_sequence"):
        StochasticQuantizer(4).start(2, 3, 0)
