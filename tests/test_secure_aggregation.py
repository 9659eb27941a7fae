"""fedlite.secure_aggregation: fixed point, masks that cancel exactly, Shamir shares, dropout
recovery for every set of up to K - t dropouts, message counts, and the simulator plug-in."""
import itertools

import numpy as np
import pytest

import fedlite
from fedlite import secure_aggregation as sa


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
    kwargs = dict(algorithm="fedavg", num_rounds=4, lr=0.1, participation=0.5, seed=3)
    runs = [fedlite.simulate(fed, aggregator=sa.SecureAggregator(threshold=1, dropout=0.2),
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


def test_a_threshold_above_the_number_of_participants_raises():
    with pytest.raises(ValueError, match="threshold must be at most"):
        fedlite.simulate(federation(K=6), num_rounds=1, lr=0.1,
                         aggregator=sa.SecureAggregator(threshold=7))
