"""fedlite.differential_privacy: clipping bounds, the noise's standard deviation, DP-FedAvg in
the simulator, the RDP accountant against dp-accounting, and the attack under DP."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import fedlite
from fedlite import differential_privacy as dp
from fedlite.validation import UpdateOverflowError

REFERENCE = json.loads((Path(__file__).parent / "data" / "dp_reference.json").read_text())


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("S", [0.01, 1.0, 50.0])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_clipped_updates_have_norm_at_most_s_and_keep_their_direction(S, scale, rng):
    U = rng.normal(size=(40, 7)) * scale * rng.uniform(0.1, 10, size=(40, 1))
    C = dp.clip_by_norm(U, S)
    norms, original = np.linalg.norm(C, axis=1), np.linalg.norm(U, axis=1)
    assert np.all(norms <= S * (1 + 1e-12))
    np.testing.assert_allclose(norms, np.minimum(original, S), rtol=1e-12)
    np.testing.assert_allclose(C / norms[:, None], U / original[:, None], rtol=1e-12)
    small = original <= S
    assert np.array_equal(C[small], U[small])               # short updates are left alone


def test_clip_factor_and_one_vector():
    assert dp.clip_factor(4.0, 2.0) == 0.5 and dp.clip_factor(1.0, 2.0) == 1.0
    np.testing.assert_allclose(dp.clip_by_norm([3.0, 4.0], 1.0), [0.6, 0.8])
    np.testing.assert_array_equal(dp.clip_by_norm(np.zeros(3), 1.0), np.zeros(3))


@pytest.mark.parametrize("update", [[1e300, 1e300], [-1.7e308, 1.7e308, 1e308],
                                    [[3e307, 4e307], [3.0, 4.0]], [[1e-300, 1e-300], [0.0, 0.0]]])
@pytest.mark.parametrize("S", [1.0, 1e-310, 1e300])
def test_clipping_huge_or_tiny_updates_has_no_overflow(update, S):
    """||u||² overflows for [1e300, 1e300]: S / ||u|| was 0, and the answer zeros."""
    update = np.array(update)
    clipped = dp.clip_by_norm(update, S)
    for row, out in zip(np.atleast_2d(update), np.atleast_2d(clipped)):
        norm = math.hypot(*row)                     # scales internally: no overflow (inf if
        assert math.hypot(*out) == pytest.approx(min(norm, S), rel=1e-9)   # past float64)
        if norm > S:                                # same direction
            np.testing.assert_allclose(out / math.hypot(*out), row / np.abs(row).max()
                                       / math.hypot(*(row / np.abs(row).max())), rtol=1e-12)
        else:
            assert np.array_equal(out, row)


def test_clip_factor_refuses_a_negative_norm():
    with pytest.raises(ValueError, match="norm must be >= 0"):
        dp.clip_factor(-1.0, 1.0)


@pytest.mark.parametrize("call,match", [
    (lambda: dp.clip_by_norm([1.0], 0.0), "clip_norm"),
    (lambda: dp.clip_by_norm([1.0], -1.0), "clip_norm"),
    (lambda: dp.clip_factor(1.0, 0), "clip_norm"),
    (lambda: dp.DPAggregator(0.0, 1.0), "clip_norm"),
    (lambda: dp.DPAggregator(1.0, -0.5), "noise_multiplier"),
    (lambda: dp.DPAggregator(1.0, 1.0, sampling_rate=1.5), "sampling_rate"),
    (lambda: dp.DPAggregator(1.0, 1.0, sampling_rate=0.0), "sampling_rate"),
    (lambda: dp.epsilon(0.1, -1.0, 10, 1e-5), "noise_multiplier"),
    (lambda: dp.epsilon(1.1, 1.0, 10, 1e-5), "sampling_rate"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 0.0), "delta"),
    (lambda: dp.epsilon(0.1, 1.0, -1, 1e-5), "rounds"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=[1.5, 2]), "orders"),
    (lambda: dp.rdp_to_epsilon([-1.0], [2], 1e-5), "rdp"),               # was eps = 0
    (lambda: dp.rdp_to_epsilon([np.nan], [2], 1e-5), "rdp"),
    (lambda: dp.rdp_to_epsilon([1.0, 2.0], [2], 1e-5), "one value per order"),
    (lambda: dp.rdp_to_epsilon([], [2], 1e-5), "one value per order"),
    (lambda: dp.rdp_to_epsilon([1.0], [2], 1.0), "delta"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=[10**12]), "orders"),   # was MemoryError
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=[1e300]), "orders"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=[np.inf]), "orders"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=[]), "orders"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=list(range(2, 5000))), "orders"),
    (lambda: dp.noise_std(1.0, 1.0, -5), "expected_participants"),       # was a negative std
    (lambda: dp.noise_std(1.0, 1.0, 0), "expected_participants"),        # ZeroDivisionError
    (lambda: dp.noise_std(1e300, 1e300, 1), "overflows"),
    (lambda: dp.DPAggregator(1e300, 1e300), "overflows"),
    (lambda: dp.attack_errors(np.ones((2, 2)), [1.0, 2.0], clip_norm=1.0, noise_multiplier=0.0,
                              num_trials=10**20), "num_trials")])
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: dp.rdp_to_epsilon(["a"], [2], 1e-5), "rdp"),
    (lambda: dp.rdp_to_epsilon([1.0], ["a"], 1e-5), "orders"),
    (lambda: dp.epsilon(0.1, 1.0, 10, 1e-5, orders=[None]), "orders"),
    (lambda: dp.noise_std(1.0, 1.0, "4"), "expected_participants"),
    (lambda: dp.clip_by_norm([[1.0], [1.0, 2.0]], 1.0), "update")])
def test_wrong_types_raise_type_errors_naming_them(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize("rounds", [10**400, 2**1023])
def test_epsilon_of_astronomically_many_rounds_is_inf_not_an_overflow_error(rounds):
    assert dp.epsilon(0.1, 1.0, rounds, 1e-5) == np.inf
    assert dp.epsilon(0.0, 1.0, rounds, 1e-5) == 0.0       # nobody is ever sampled


@pytest.mark.parametrize("z", [1e-160, 1e-200, 5e-324])
@pytest.mark.parametrize("q", [0.1, 1.0])
def test_a_vanishing_noise_multiplier_means_no_privacy_without_warnings(z, q):
    assert np.all(dp.rdp_sampled_gaussian(q, z) == np.inf)
    assert dp.epsilon(q, z, 10, 1e-5) == np.inf


# ----------------------------------------------------------------------------- the aggregator
def run_aggregator(aggregator, reports, round_number=1, seed=0):
    aggregator.start(len(reports), reports.shape[1], np.random.SeedSequence(seed))
    m = len(reports)
    return aggregator.aggregate(reports, np.ones(m), np.arange(m), round_number)


@pytest.mark.parametrize("z,S,q", [(1.0, 1.0, 1.0), (0.5, 3.0, 1.0), (2.0, 0.1, 0.5)])
def test_empirical_noise_std_matches_z_s_over_q_m(z, S, q):
    m, P = 8, 40000
    mean, _ = run_aggregator(dp.DPAggregator(S, z, sampling_rate=q), np.zeros((m, P)))
    expected = dp.noise_std(S, z, q * m)
    assert expected == pytest.approx(z * S / (q * m))
    assert np.std(mean) == pytest.approx(expected, rel=0.02)   # 40000 samples: ~0.35% error
    assert abs(np.mean(mean)) < 4 * expected / np.sqrt(P)


def test_noiseless_dp_mean_is_the_mean_of_clipped_reports(rng):
    reports = rng.normal(size=(5, 4)) * 3
    mean, sent = run_aggregator(dp.DPAggregator(1.0, 0.0), reports)
    np.testing.assert_allclose(mean, dp.clip_by_norm(reports, 1.0).mean(axis=0), rtol=1e-14)
    assert np.linalg.norm(mean) <= 1.0 and sent == 5 * 4 * 8


def test_poisson_sampling_keeps_about_q_of_the_participants():
    aggregator = dp.DPAggregator(1.0, 0.0, sampling_rate=0.3)
    aggregator.start(1000, 2, np.random.SeedSequence(0))
    for r in range(1, 6):
        _, sent = aggregator.aggregate(np.ones((1000, 2)), np.ones(1000), np.arange(1000), r)
        assert sent == len(aggregator.sampled[-1]) * 2 * 8
    assert np.mean([len(s) for s in aggregator.sampled]) == pytest.approx(300, rel=0.1)


@pytest.mark.parametrize("participation", [0.2, 0.6, 0.8])
@pytest.mark.parametrize("sampling_rate", [1.0, 0.5])
def test_dp_refuses_a_fixed_size_selection_before_its_poisson_sampling(participation,
                                                                       sampling_rate):
    """The accountant's q must be the whole sampling: simulate's subset would come on top."""
    with pytest.raises(ValueError, match=r"participation=1\.0.*sampling_rate"):
        fedlite.simulate(equal_federation(), algorithm="fedavg", num_rounds=2, lr=0.1,
                         participation=participation,
                         aggregator=dp.DPAggregator(1.0, 1.0, sampling_rate=sampling_rate))


@pytest.mark.parametrize("clip_norm,noise_multiplier,q,scale", [
    (1e308, 0.0, 1.0, 1e308),       # the sum of clipped reports passes float64's largest
    (1.0, 1e300, 1e-10, 1.0)])      # the noisy sum divided by q m does
def test_a_mean_past_float64_raises_update_overflow_error(clip_norm, noise_multiplier, q, scale):
    aggregator = dp.DPAggregator(clip_norm, noise_multiplier, sampling_rate=q)
    aggregator.start(4, 2, np.random.SeedSequence(0))
    reports = np.full((4, 2), scale)
    with pytest.raises(UpdateOverflowError, match="overflows float64"):
        for r in range(1, 100):         # q = 1e-10: nobody sampled, but noise 1e300 / 4e-10
            aggregator.aggregate(reports, np.ones(4), np.arange(4), r)


def test_huge_finite_reports_are_clipped_not_refused():
    aggregator = dp.DPAggregator(1.0, 0.0)
    aggregator.start(3, 2, np.random.SeedSequence(0))
    mean, _ = aggregator.aggregate(np.full((3, 2), 1e300), np.ones(3), np.arange(3), 1)
    np.testing.assert_allclose(mean, np.full(2, np.sqrt(0.5)), rtol=1e-12)
    assert aggregator.clipped == [1.0]


@pytest.mark.parametrize("which,value,name", [(0, np.ones(3), "reports"),
                                             (0, np.full((3, 2), np.inf), "reports"),
                                             (2, np.arange(2), "selected"),
                                             (2, [[0, 1], [2]], "selected"),
                                             (3, -1, "round_number")])
def test_the_dp_aggregator_checks_what_it_is_given(which, value, name):
    aggregator = dp.DPAggregator(1.0, 1.0)
    aggregator.start(3, 2, np.random.SeedSequence(0))
    args = [np.ones((3, 2)), np.ones(3), np.arange(3), 1]
    args[which] = value
    with pytest.raises(ValueError, match=name):
        aggregator.aggregate(*args)


def equal_federation(K=5, n_per=8, seed=0):
    X, y, _, _ = fedlite.make_linear_data(K * n_per, 3, seed=seed)
    return fedlite.split(X, y, K, scheme="iid", seed=seed)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_no_noise_and_a_huge_clip_norm_is_plain_fedavg_on_equal_participants(model):
    fed = equal_federation()
    kwargs = dict(model=model, algorithm="fedavg", num_rounds=5, lr=0.05, local_epochs=2,
                  batch_size=4, hidden=4, seed=1)
    plain = fedlite.simulate(fed, **kwargs)
    private = fedlite.simulate(fed, aggregator=dp.DPAggregator(1e12, 0.0), **kwargs)
    np.testing.assert_allclose(private.loss, plain.loss, rtol=1e-12)
    np.testing.assert_allclose(private.theta, plain.theta, rtol=1e-12, atol=1e-14)


def test_same_seed_same_history_and_the_seed_changes_the_noise():
    fed = equal_federation()
    run = lambda seed: fedlite.simulate(                                       # noqa: E731
        fed, algorithm="fedavg", num_rounds=4, lr=0.1, seed=seed,
        aggregator=dp.DPAggregator(0.5, 1.0, sampling_rate=0.6))
    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)


def test_dp_fedavg_run_returns_the_history_and_its_epsilon():
    run = dp.dp_fedavg_run(equal_federation(), clip_norm=0.01, noise_multiplier=1.0,
                           sampling_rate=0.4, num_rounds=3, lr=0.1, delta=1e-3)
    assert run.history.num_rounds == 3 and run.epsilon == dp.epsilon(0.4, 1.0, 3, 1e-3)
    assert run.clipped.shape == (3,) and run.clipped.max() == 1.0   # every update is clipped


# ----------------------------------------------------------------------------- the accountant
@pytest.mark.parametrize("row", REFERENCE["rows"],
                         ids=lambda r: f"q{r['q']}-z{r['z']}-R{r['rounds']}-d{r['delta']}")
def test_epsilon_agrees_with_dp_accounting_within_one_percent(row):
    eps = dp.epsilon(row["q"], row["z"], row["rounds"], row["delta"])
    assert eps == pytest.approx(row["eps_integer_orders"], rel=0.01, abs=1e-12)
    # dp-accounting's default orders add fractional ones, so its epsilon can only be smaller
    assert eps >= row["eps_default_orders"] * (1 - 1e-9)


def test_the_reference_used_our_orders():
    assert tuple(REFERENCE["orders"]) == dp.ORDERS


def test_accountant_edge_cases_and_monotonicity():
    assert dp.epsilon(0.0, 1.0, 100, 1e-5) == 0.0                 # nobody sampled
    assert dp.epsilon(0.1, 1.0, 0, 1e-5) == 0.0                   # nothing released yet
    assert dp.epsilon(0.1, 0.0, 1, 1e-5) == np.inf                # no noise, no privacy
    alphas = np.array(dp.ORDERS, dtype=float)
    np.testing.assert_allclose(dp.rdp_sampled_gaussian(1.0, 2.0), alphas / 8)
    rounds = [dp.epsilon(0.05, 1.0, R, 1e-5) for R in (1, 10, 100, 1000)]
    noises = [dp.epsilon(0.05, z, 100, 1e-5) for z in (0.7, 1.0, 2.0, 4.0)]
    rates = [dp.epsilon(q, 1.0, 100, 1e-5) for q in (0.01, 0.05, 0.2, 1.0)]
    assert np.all(np.diff(rounds) > 0) and np.all(np.diff(noises) < 0)
    assert np.all(np.diff(rates) > 0)


def test_subsampling_amplifies_privacy():
    """Sampling with rate q costs much less than q times the full-participation RDP... at low
    orders it is about q² α / z² (Mironov et al. 2019), far below α / (2 z²)."""
    full = dp.rdp_sampled_gaussian(1.0, 1.0, orders=[2])[0]
    sampled = dp.rdp_sampled_gaussian(0.01, 1.0, orders=[2])[0]
    assert sampled < 0.01 * full


# ----------------------------------------------------------------------------- the attack
def test_clipping_alone_does_not_stop_the_inversion_but_noise_does():
    X, y, _, _ = fedlite.make_linear_data(30, 4, seed=0)
    exact = dp.attack_errors(X, y, clip_norm=1e9, noise_multiplier=0.0, num_trials=4)
    clipped = dp.attack_errors(X, y, clip_norm=0.01, noise_multiplier=0.0, num_trials=4)
    noised = dp.attack_errors(X, y, clip_norm=0.01, noise_multiplier=1.0, num_trials=4)
    assert exact.max() < 1e-12 and clipped.max() < 1e-10
    assert np.median(noised) > 0.5


# ----------------------------------------------------------------------------- the explorer
def test_dp_explorer_draws_the_run_of_its_sliders():
    widgets = pytest.importorskip("fedlite.widgets")
    fed = equal_federation(K=20, n_per=5)
    explorer = widgets.dp_explorer(fed, sampling_rate=0.5, num_rounds=5, delta=1e-3)
    run = dp.dp_fedavg_run(fed, clip_norm=0.1, noise_multiplier=1.0, sampling_rate=0.5,
                           num_rounds=5, lr=0.1, delta=1e-3)
    assert np.array_equal(explorer.result.history.loss, run.history.loss)
    assert f"ε = {run.epsilon:.3g}" in explorer.status.value
    before = explorer.png
    explorer.controls["noise_multiplier"].value = 0.0
    assert explorer.png != before and "ε = ∞" in explorer.status.value
    explorer.controls["clip_norm"].value = 2.0
    assert explorer.result.history.config["num_rounds"] == 5
