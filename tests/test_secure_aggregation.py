"""fedlite.secure_aggregation: fixed point, masks that cancel exactly, Shamir shares, dropout
recovery for every set of up to K - t dropouts, message counts, and the simulator plug-in."""
import itertools
import math

import numpy as np
import pytest

import fedlite
from fedlite import secure_aggregation as sa
from fedlite.validation import UpdateOverflowError


# ----------------------------------------------------------------------------- fixed point
@pytest.mark.parametrize("scale_bits,modulus_bits", [(16, 32), (32, 62), (0, 8)])
def test_encode_decode_round_trip_to_half_a_unit(scale_bits, modulus_bits, rng):
    x = rng.normal(size=50) * 2.0 ** (modulus_bits - scale_bits - 8)
    encoded = sa.encode(x, scale_bits=scale_bits, modulus_bits=modulus_bits)
    assert encoded.dtype == np.uint64 and encoded.max() < 2**modulus_bits
    back = sa.decode(encoded, scale_bits=scale_bits, modulus_bits=modulus_bits)
    assert np.max(np.abs(back - x)) <= 2.0 ** -(scale_bits + 1)


def test_sums_of_encodings_decode_to_the_sum_even_when_they_wrap(rng):
    x = rng.normal(size=(7, 20)) * 100
    encoded = sa.encode(x, num_participants=7)
    total = encoded.sum(axis=0, dtype=np.uint64)           # wraps mod 2^64, hence mod 2^62
    np.testing.assert_allclose(sa.decode(total), x.sum(axis=0), rtol=0, atol=7 * 2.0**-33)


def test_values_too_large_for_the_modulus_raise_instead_of_wrapping():
    K, f, k = 4, 8, 16
    limit = 2.0 ** (k - 1) / K / 2.0**f                      # |x| must stay below this
    x = np.full(K, 0.99 * limit)
    encoded = sa.encode(x, scale_bits=f, modulus_bits=k, num_participants=K)
    assert sa.decode(encoded.sum(dtype=np.uint64), scale_bits=f, modulus_bits=k) == (
        pytest.approx(x.sum(), abs=K * 2.0**-f))           # the biggest allowed sum: no wrap
    with pytest.raises(ValueError, match="too large for the modulus"):
        sa.encode(np.array([1.0, -limit]), scale_bits=f, modulus_bits=k, num_participants=K)


# (K, f, k, |x|): |x| · 2^f is just below the old float limit 2^(k-1) / K, but ROUNDS up to it
NEAR_THE_LIMIT = [(3, 4, 20, 10922.6625),                     # decoded to -32767.94 before
                  (1028, 32, 62, np.nextafter(2.0**61 / 1028 / 2**32, 0)),   # to -5.37e8 before
                  (2, 0, 8, 63.5), (3, 0, 8, 42.6)]


@pytest.mark.parametrize("K,f,k,x", NEAR_THE_LIMIT)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_sum_of_encodings_is_right_or_refused(K, f, k, x, sign):
    values = np.full(K, sign * x)
    try:
        encoded = sa.encode(values, scale_bits=f, modulus_bits=k, num_participants=K)
    except UpdateOverflowError as error:
        assert "too large for the modulus" in str(error)
        return
    total = sa.decode(encoded.sum(dtype=np.uint64), scale_bits=f, modulus_bits=k)
    assert total == pytest.approx(values.sum(), abs=K * 2.0 ** -(f + 1))


@pytest.mark.parametrize("K,f,k,x", NEAR_THE_LIMIT)
def test_values_that_round_past_the_limit_are_refused(K, f, k, x):
    with pytest.raises(UpdateOverflowError, match="once rounded"):
        sa.encode(np.full(K, x), scale_bits=f, modulus_bits=k, num_participants=K)
    below = np.full(K, np.floor(x * 2.0**f) / 2.0**f - 2.0**-f)   # rounds down: allowed
    encoded = sa.encode(below, scale_bits=f, modulus_bits=k, num_participants=K)
    total = sa.decode(encoded.sum(dtype=np.uint64), scale_bits=f, modulus_bits=k)
    assert total == math.fsum(below)                   # exact: multiples of 2^-f, no wrap


@pytest.mark.parametrize("x", [1e300, -1.7e308, 2.0**29])
def test_huge_finite_values_raise_update_overflow_error_without_warnings(x):
    with pytest.raises(UpdateOverflowError, match="too large for the modulus"):
        sa.encode([0.5, x])


def test_secure_sum_and_the_aggregator_refuse_sums_that_would_wrap():
    values = np.full((3, 2), 10922.6625)
    with pytest.raises(UpdateOverflowError, match="too large for the modulus"):
        sa.secure_sum(values, range(3), threshold=2, scale_bits=4, modulus_bits=20)
    aggregator = sa.SecureAggregator(scale_bits=4, modulus_bits=20)
    aggregator.start(3, 2, np.random.SeedSequence(0))
    reports = np.full((3, 2), 10922.6625 / 5)           # the aggregator sends n_k u_k, n_k = 5
    with pytest.raises(UpdateOverflowError, match="too large for the modulus"):
        aggregator.aggregate(reports, np.full(3, 5.0), np.arange(3), 1)
    with pytest.raises(UpdateOverflowError, match="overflows float64"):
        aggregator.aggregate(np.full((3, 2), 1e306), np.full(3, 1e3), np.arange(3), 1)


@pytest.mark.parametrize("kwargs,name", [(dict(modulus_bits=63), "modulus_bits"),
                                         (dict(modulus_bits=16, scale_bits=15), "scale_bits"),
                                         (dict(scale_bits=-1), "scale_bits")])
def test_bad_bit_widths_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sa.encode([1.0], **kwargs)


# ----------------------------------------------------------------------------- masks
def run_masking(values, ids, seed=0, k=sa.MODULUS_BITS):
    rng = np.random.default_rng(seed)
    keys = {i: sa.key_pair(rng) for i in ids}
    public = {i: keys[i][1] for i in ids}
    encoded = sa.encode(values, scale_bits=k // 2, modulus_bits=k, num_participants=len(ids))
    return encoded, np.array([sa.masked_input(i, encoded[s], keys[i][0], public, 1, k)
                              for s, i in enumerate(ids)])


@pytest.mark.parametrize("ids", [[0, 1], [3, 1, 4, 0, 7], list(range(12))])
@pytest.mark.parametrize("k", [32, 62])
def test_pairwise_masks_cancel_exactly_in_integers(ids, k, rng):
    values = rng.normal(size=(len(ids), 9))
    encoded, masked = run_masking(values, ids, k=k)
    modulus = np.uint64(2**k - 1)
    assert np.array_equal(masked.sum(axis=0, dtype=np.uint64) & modulus,
                          encoded.sum(axis=0, dtype=np.uint64) & modulus)
    assert not np.array_equal(masked, encoded)             # each vector really is masked


def test_both_sides_of_a_pair_agree_on_the_key():
    rng = np.random.default_rng(1)
    (a, A), (b, B) = sa.key_pair(rng), sa.key_pair(rng)
    assert sa.agree(a, B) == sa.agree(b, A) != 0


def test_a_masked_vector_looks_uniform(rng):
    values = np.zeros((3, 20000))                          # the plainest possible input
    _, masked = run_masking(values, [0, 1, 2])
    u = masked[0] / 2.0**sa.MODULUS_BITS
    counts = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.all(np.abs(counts - 0.1) < 0.01)


# ----------------------------------------------------------------------------- Shamir shares
@pytest.mark.parametrize("n,t", [(1, 1), (5, 1), (5, 3), (6, 6)])
def test_any_threshold_shares_rebuild_the_secret(n, t):
    rng = np.random.default_rng(n * 10 + t)
    secret = int(rng.integers(0, sa.PRIME))
    shares = sa.share_secret(secret, n, t, rng)
    for subset in itertools.combinations(shares, t):
        assert sa.reconstruct_secret(list(subset), t) == secret


def test_fewer_shares_than_the_threshold_neither_rebuild_nor_leak():
    rng = np.random.default_rng(0)
    secret = 123456789
    shares = sa.share_secret(secret, 5, 3, rng)
    with pytest.raises(ValueError, match="fewer than the threshold"):
        sa.reconstruct_secret(shares[:2], 3)
    assert sa.reconstruct_secret(shares[:2], 2) != secret  # a line through 2 points: wrong q(0)


@pytest.mark.parametrize("pick", [[0, 0, 1], [2, 1, 2], [0, 1, 1, 3]])
def test_a_repeated_share_is_refused_not_used(pick):
    rng = np.random.default_rng(0)
    shares = sa.share_secret(123456789, 5, 3, rng)
    with pytest.raises(ValueError, match="distinct x"):
        sa.reconstruct_secret([shares[i] for i in pick], 3)


@pytest.mark.parametrize("shares,error,match", [
    ([(0, 5), (1, 6)], ValueError, "x"),                     # x = 0 is where the secret is
    ([(1.5, 5), (2, 6)], TypeError, "x"),
    ([(1, 5), (2, sa.PRIME)], ValueError, "y"),
    ([(sa.PRIME, 5), (2, 6)], ValueError, "x"),
    ([(1, 5), (2,)], TypeError, "pairs"),
    (12, TypeError, "shares"),
    ([(1, -5), (2, 6)], ValueError, "y")])
def test_reconstruct_secret_checks_each_share(shares, error, match):
    with pytest.raises(error, match=match):
        sa.reconstruct_secret(shares, 2)


def test_share_secret_checks_the_threshold():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="threshold"):
        sa.share_secret(5, 3, 4, rng)
    with pytest.raises(ValueError, match="threshold"):
        sa.share_secret(5, 3, 0, rng)


# ----------------------------------------------------------------------------- one round
K, T = 6, 3


def test_the_server_learns_the_sum_to_fixed_point_precision(rng):
    values = rng.normal(size=(K, 8)) * 10
    result = sa.secure_sum(values, range(K), threshold=T)
    np.testing.assert_allclose(result.total, values.sum(axis=0), rtol=0, atol=K * 2.0**-33)
    assert result.masked.shape == (K, 8) and result.dropped.size == 0


@pytest.mark.parametrize("num_dropped", range(K - T + 1))
def test_every_set_of_up_to_k_minus_t_dropouts_is_recovered(num_dropped):
    rng = np.random.default_rng(num_dropped)
    ids = [5, 2, 9, 0, 7, 3]
    values = rng.normal(size=(K, 4))
    for dropped in itertools.combinations(ids, num_dropped):
        result = sa.secure_sum(values, ids, threshold=T, dropped=dropped, seed=len(dropped))
        alive = [s for s, i in enumerate(ids) if i not in dropped]
        np.testing.assert_allclose(result.total, values[alive].sum(axis=0), rtol=0,
                                   atol=K * 2.0**-33)
        assert sorted(result.survivors) == sorted(np.array(ids)[alive])


@pytest.mark.parametrize("num_dropped", [K - T + 1, K])
def test_more_dropouts_than_k_minus_t_fail_clearly(num_dropped):
    values = np.ones((K, 2))
    for dropped in itertools.combinations(range(K), num_dropped):
        with pytest.raises(ValueError, match="fewer than the threshold"):
            sa.secure_sum(values, range(K), threshold=T, dropped=dropped)


@pytest.mark.parametrize("kwargs,match", [
    (dict(threshold=K + 1), "threshold must be at most"), (dict(threshold=0), "threshold"),
    (dict(threshold=T, dropped=[99]), "dropped"), (dict(threshold=T, modulus_bits=70),
                                                    "modulus_bits")])
def test_secure_sum_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sa.secure_sum(np.ones((K, 2)), range(K), **kwargs)


def test_overflow_in_a_round_raises():
    with pytest.raises(ValueError, match="too large"):
        sa.secure_sum(np.full((K, 2), 1e12), range(K), threshold=T)


@pytest.mark.parametrize("m,dropped,least,match", [
    (1, [], 2, "values has 1 row"),                       # a sum of one IS its update
    (3, [0], 3, "min_participants = 3"),                  # configurable upward
    (4, [1, 2, 3], 2, "only 1 of 4 participants survived, fewer than min_participants"),
    (3, [2, 0], 2, "only 1 of 3 participants survived")])
def test_a_secure_sum_over_too_few_participants_is_refused(m, dropped, least, match):
    with pytest.raises(ValueError, match=match):
        sa.secure_sum(np.ones((m, 2)), range(m), threshold=1, dropped=dropped,
                      min_participants=least)


@pytest.mark.parametrize("least", [1, 0, -3])
def test_min_participants_cannot_go_below_two(least):
    with pytest.raises(ValueError, match="min_participants must be at least 2"):
        sa.secure_sum(np.ones((3, 2)), range(3), threshold=2, min_participants=least)
    with pytest.raises(ValueError, match="min_participants must be at least 2"):
        sa.SecureAggregator(min_participants=least)


def test_a_sum_of_two_is_allowed_and_right():
    values = np.array([[1.0, -2.0], [0.5, 4.0]])
    result = sa.secure_sum(values, [3, 8], threshold=2)
    np.testing.assert_allclose(result.total, values.sum(axis=0), atol=2 * 2.0**-33)


@pytest.mark.parametrize("m,P,d", [(2, 1, 0), (5, 10, 0), (5, 10, 2), (8, 3, 3)])
def test_message_counts_match_the_formula(m, P, d):
    result = sa.secure_sum(np.ones((m, P)), range(m), threshold=m - d, dropped=range(d))
    c = sa.cost(m, P, d)
    assert (result.messages_up, result.bytes_up) == (c["messages_up"], c["bytes_up"])
    assert (result.messages_down, result.bytes_down) == (c["messages_down"], c["bytes_down"])


def test_shares_dominate_the_cost_as_k_grows():
    small, big = sa.cost(10, 100), sa.cost(1000, 100)
    payload = lambda m: m * 100 * 8                          # noqa: E731
    assert small["bytes_up"] < 3 * payload(10) and big["bytes_up"] > 10 * payload(1000)


# ----------------------------------------------------------------------------- in the simulator
def federation(K=6, n_per=10, seed=0):
    X, y, _, _ = fedlite.make_linear_data(K * n_per, 3, seed=seed)
    return fedlite.split(X, y, K, scheme="quantity", alpha=2.0, seed=seed)


class SurvivorMean:
    """The plain n_k-weighted mean over given survivors per round (what dropouts should give)."""

    def __init__(self, survivors):
        self.survivors = survivors

    def start(self, num_participants, num_params, seed_sequence):
        pass

    def aggregate(self, reports, num_examples, selected, round_number):
        alive = np.isin(selected, self.survivors[round_number - 1])
        n = num_examples[alive]
        return n @ reports[alive] / n.sum(), 0


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("algorithm,extra", [("fedsgd", {}),
                                             ("fedavg", dict(local_epochs=2, batch_size=3))])
def test_simulate_under_secure_aggregation_reproduces_the_plain_run(model, algorithm, extra):
    fed = federation()
    kwargs = dict(model=model, algorithm=algorithm, num_rounds=6, lr=0.05, participation=0.7,
                  hidden=4, seed=1, **extra)
    plain = fedlite.simulate(fed, **kwargs)
    secure = fedlite.simulate(fed, aggregator=sa.SecureAggregator(), **kwargs)
    np.testing.assert_allclose(secure.loss, plain.loss, rtol=1e-9)
    np.testing.assert_allclose(secure.theta, plain.theta, rtol=1e-9, atol=1e-10)
    assert np.array_equal(secure.selected, plain.selected)
    m, P = plain.selected.shape[1], plain.theta.size
    assert list(secure.bytes_up) == [sa.cost(m, P)["bytes_up"]] * 6


@pytest.mark.parametrize("algorithm", ["fedsgd", "fedavg"])
def test_with_dropouts_the_run_is_the_plain_mean_over_the_survivors(algorithm):
    fed = federation(K=8)
    kwargs = dict(algorithm=algorithm, num_rounds=8, lr=0.1, seed=2)
    aggregator = sa.SecureAggregator(threshold=3, dropout=0.3)
    secure = fedlite.simulate(fed, aggregator=aggregator, **kwargs)
    sizes = [len(s) for s in aggregator.survivors]
    assert min(sizes) >= 3 and min(sizes) < 8                 # somebody did drop out
    expected = fedlite.simulate(fed, aggregator=SurvivorMean(aggregator.survivors), **kwargs)
    np.testing.assert_allclose(secure.loss, expected.loss, rtol=1e-9)
    np.testing.assert_allclose(secure.theta, expected.theta, rtol=1e-9, atol=1e-10)


def test_same_seed_same_history_bit_for_bit():
    fed = federation()
    kwargs = dict(algorithm="fedavg", num_rounds=4, lr=0.1, participation=0.7, seed=3)
    runs = [fedlite.simulate(fed, aggregator=sa.SecureAggregator(threshold=2, dropout=0.2),
                             **kwargs)
            for _ in range(2)]
    for field in ("loss", "theta", "bytes_up", "selected"):
        assert np.array_equal(getattr(runs[0], field), getattr(runs[1], field)), field


def test_too_many_dropouts_in_a_round_stop_the_run():
    with pytest.raises(ValueError, match="fewer than the threshold"):
        fedlite.simulate(federation(), num_rounds=20, lr=0.1,
                         aggregator=sa.SecureAggregator(threshold=6, dropout=0.5))


@pytest.mark.parametrize("kwargs,match", [(dict(dropout=1.0), "dropout"),
                                         (dict(dropout=-0.1), "dropout"),
                                         (dict(threshold=0), "threshold"),
                                         (dict(modulus_bits=64), "modulus_bits")])
def test_secure_aggregator_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sa.SecureAggregator(**kwargs)


def test_simulate_cannot_select_or_keep_a_single_participant_under_secure_aggregation():
    with pytest.raises(ValueError, match="1 participant.*min_participants = 2"):
        fedlite.simulate(federation(K=6), num_rounds=1, lr=0.1, participation=1 / 6,
                         aggregator=sa.SecureAggregator())
    with pytest.raises(ValueError, match="fewer than min_participants = 4"):
        fedlite.simulate(federation(K=6), num_rounds=1, lr=0.1, participation=0.5,
                         aggregator=sa.SecureAggregator(min_participants=4))
    with pytest.raises(ValueError, match="survived, fewer than min_participants"):
        fedlite.simulate(federation(K=6), num_rounds=30, lr=0.1, participation=0.5,
                         aggregator=sa.SecureAggregator(threshold=1, dropout=0.5))
    one = fedlite.Federation.from_participants([np.ones((3, 2))], [np.ones(3)])
    with pytest.raises(ValueError, match="1 participant"):
        fedlite.simulate(one, num_rounds=1, lr=0.1, aggregator=sa.SecureAggregator())


def test_a_threshold_above_the_number_of_participants_raises():
    with pytest.raises(ValueError, match="threshold must be at most"):
        fedlite.simulate(federation(K=6), num_rounds=1, lr=0.1,
                         aggregator=sa.SecureAggregator(threshold=7))


# ----------------------------------------------------------------------------- every public function
RNG = np.random.default_rng(0)
BAD_CALLS = [
    (lambda: sa.encode([[1.0, 2.0], [3.0]]), TypeError, "values"),
    (lambda: sa.encode(["a"]), TypeError, "values"),
    (lambda: sa.decode([1.5]), TypeError, "encoded"),
    (lambda: sa.decode([-1]), ValueError, "encoded"),
    (lambda: sa.decode(["a"]), TypeError, "encoded"),
    (lambda: sa.key_pair(0), TypeError, "rng"),
    (lambda: sa.agree(-1, 5), ValueError, "secret"),                # pow(x, -1, p): an inverse
    (lambda: sa.agree(5, sa.PRIME), ValueError, "other_public"),
    (lambda: sa.agree(5, 2.5), TypeError, "other_public"),
    (lambda: sa.pair_mask(3, 1, -2), ValueError, "size"),
    (lambda: sa.pair_mask(3, 1, 10**12), ValueError, "size"),       # 8 TB of mask
    (lambda: sa.pair_mask(3, 1, 4, modulus_bits=65), ValueError, "modulus_bits"),
    (lambda: sa.pair_mask(-3, 1, 4), ValueError, "pair_key"),
    (lambda: sa.masked_input(0, [[1, 2]], 5, {0: 7, 1: 9}, 1), ValueError, "encoded"),
    (lambda: sa.masked_input(0, [2**62], 5, {0: 7, 1: 9}, 1), ValueError, "encoded"),
    (lambda: sa.masked_input(2, [1, 2], 5, {0: 7, 1: 9}, 1), ValueError, "public_keys"),
    (lambda: sa.masked_input(0, [1, 2], 5, [7, 9], 1), ValueError, "public_keys"),
    (lambda: sa.masked_input(0, [1, 2], 5, {0: 7, 1: 0}, 1), ValueError, "other_public"),
    (lambda: sa.masked_input(0, [1, 2], 0, {0: 7, 1: 9}, 1), ValueError, "secret"),
    (lambda: sa.share_secret(sa.PRIME, 3, 2, RNG), ValueError, "secret"),  # was reduced mod p
    (lambda: sa.share_secret(1.5, 3, 2, RNG), TypeError, "secret"),
    (lambda: sa.share_secret(1, 10**9, 2, RNG), ValueError, "num_shares"),
    (lambda: sa.share_secret(1, 3, 2, 0), TypeError, "rng"),
    (lambda: sa.reconstruct_secret([(1, 2), (2, 3)], 1.5), TypeError, "threshold"),
    (lambda: sa.secure_sum(np.ones(3), range(3), threshold=2), ValueError, "values"),
    (lambda: sa.secure_sum(np.ones((3, 2)), 3, threshold=2), TypeError, "participant_ids"),
    (lambda: sa.secure_sum(np.ones((3, 2)), [0, 1.5, 2], threshold=2), TypeError, "participant_ids"),
    (lambda: sa.secure_sum(np.ones((3, 2)), [0, 1, 1], threshold=2), ValueError, "participant_ids"),
    (lambda: sa.secure_sum(np.ones((3, 2)), [0, 1], threshold=2), ValueError, "participant_ids"),
    (lambda: sa.secure_sum(np.ones((3, 2)), range(3), threshold=2, dropped=[0.5]), TypeError,
     "dropped"),
    (lambda: sa.secure_sum(np.ones((3, 2)), range(3), threshold=2, dropped=1), TypeError,
     "dropped"),
    (lambda: sa.secure_sum(np.ones((3, 2)), range(3), threshold=2, seed=-1), ValueError, "seed"),
    (lambda: sa.secure_sum(np.ones((3, 2)), range(3), threshold=2, seed="x"), TypeError, "seed"),
    (lambda: sa.secure_sum(np.ones((3, 2)), range(3), threshold=2, round_number=-1), ValueError,
     "round_number"),
    (lambda: sa.SecureAggregator().start(3, 2, 0), TypeError, "seed_sequence"),
]


@pytest.mark.parametrize("call,error,name", BAD_CALLS)
def test_every_public_function_names_the_bad_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


@pytest.mark.parametrize("which,value,name", [(0, np.ones(3), "reports"),
                                             (0, np.full((3, 2), np.nan), "reports"),
                                             (1, np.ones(2), "num_examples"),
                                             (2, np.array([0, 1, 1]), "selected"),
                                             (2, np.arange(2), "selected")])
def test_the_aggregator_checks_what_it_is_given(which, value, name):
    aggregator = sa.SecureAggregator()
    aggregator.start(3, 2, np.random.SeedSequence(0))
    args = [np.ones((3, 2)), np.ones(3), np.arange(3), 1]
    args[which] = value
    with pytest.raises(ValueError, match=name):
        aggregator.aggregate(*args)
