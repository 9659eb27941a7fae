"""fedlite.simulate: semantics (FedSGD = centralised GD, FedProx mu=0 = FedAvg), determinism,
divergence, bad arguments, and agreement with the readable round in fedlite.federated."""
import numpy as np
import pytest

import fedlite
from conftest import on_one_and_all_threads
from fedlite import engine, federated, reference
from fedlite.parameters import num_params, pack
from fedlite.simulation import participant_keys


def linear_federation(K=5, n_per=20, d=3, seed=0, scheme="iid", alpha=None):
    X, y, _, _ = fedlite.make_linear_data(K * n_per, d, noise=0.1, seed=seed)
    return fedlite.split(X, y, K, scheme=scheme, alpha=alpha, seed=seed)


def centralised_gd(X, y, lr, num_rounds):
    theta = np.zeros(X.shape[1] + 1)
    for _ in range(num_rounds):
        _, grad_w, grad_b = reference.linear_loss_grad(X, y, theta[:-1], theta[-1])
        theta = theta - lr * np.append(grad_w, grad_b)
    return theta


@pytest.mark.parametrize("scheme,alpha", [("iid", None), ("quantity", 0.5), ("covariate", None)])
def test_fedsgd_with_everyone_is_centralised_gradient_descent(scheme, alpha):
    fed = linear_federation(K=6, scheme=scheme, alpha=alpha)
    history = fedlite.simulate(fed, num_rounds=30, lr=0.3)
    expected = centralised_gd(fed.X, fed.y, 0.3, 30)
    np.testing.assert_allclose(history.theta, expected, rtol=1e-12, atol=1e-13)
    pooled_loss = reference.linear_loss_grad(fed.X, fed.y, expected[:-1], expected[-1])[0]
    np.testing.assert_allclose(history.loss[-1], pooled_loss, rtol=1e-12)


def test_fedavg_full_batch_one_epoch_equals_fedsgd():
    fed = linear_federation()
    sgd = fedlite.simulate(fed, algorithm="fedsgd", num_rounds=10, lr=0.2)
    avg = fedlite.simulate(fed, algorithm="fedavg", num_rounds=10, lr=0.2)
    np.testing.assert_allclose(avg.loss, sgd.loss, rtol=1e-12)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_fedprox_with_mu_zero_is_fedavg_bit_for_bit(model):
    fed = linear_federation()
    kwargs = dict(model=model, num_rounds=5, lr=0.05, local_epochs=2, batch_size=7, hidden=4)
    avg = fedlite.simulate(fed, algorithm="fedavg", **kwargs)
    prox = fedlite.simulate(fed, algorithm="fedprox", mu=0.0, **kwargs)
    assert np.array_equal(avg.loss, prox.loss) and np.array_equal(avg.theta, prox.theta)


def test_fedprox_pulls_local_models_towards_the_server():
    fed, _, _ = fedlite.make_concept_shift(4, 30, 3, spread=2.0, seed=1)
    kwargs = dict(num_rounds=1, lr=0.1, local_epochs=20, batch_size=5)
    drift = lambda h: np.linalg.norm(h.theta)  # starts at zero, one round
    avg = fedlite.simulate(fed, algorithm="fedavg", **kwargs)
    prox = fedlite.simulate(fed, algorithm="fedprox", mu=5.0, **kwargs)
    assert drift(prox) < drift(avg)


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("algorithm,extra", [
    ("fedsgd", {}), ("fedavg", dict(local_epochs=2, batch_size=6)),
    ("fedprox", dict(local_epochs=2, batch_size=6, mu=0.5))])
def test_same_arguments_same_history_bit_for_bit(model, algorithm, extra):
    fed = linear_federation()
    kwargs = dict(model=model, algorithm=algorithm, num_rounds=6, lr=0.05, participation=0.6,
                  hidden=4, seed=3, **extra)
    a, b = fedlite.simulate(fed, **kwargs), fedlite.simulate(fed, **kwargs)
    for field in ("loss", "participant_loss", "selected", "bytes_up", "theta"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("algorithm,extra", [
    ("fedsgd", {}), ("fedprox", dict(local_epochs=2, batch_size=6, mu=0.5))])
def test_engine_matches_the_readable_round(model, algorithm, extra):
    fed = linear_federation(K=4, n_per=15)
    config = {**dict(algorithm=algorithm, lr=0.05, local_epochs=1, batch_size=None, mu=0.0),
              **extra}
    history = fedlite.simulate(fed, model=model, num_rounds=4, participation=0.5, hidden=3,
                               seed=2, **config)
    seed_init = np.random.SeedSequence(2).spawn(4)[0]
    participants = federated.make_participants(fed, model=model, hidden=3, seed=2)
    theta = fedlite.parameters.init_params(model, fed.num_features, 3,
                                           np.random.default_rng(seed_init))
    for r, selected in enumerate(history.selected, start=1):
        theta = federated.run_round(participants, theta, {**config, "round": r}, selected)
        losses = [p.evaluate(theta) for p in participants]
        np.testing.assert_allclose(history.participant_loss[r], losses, rtol=1e-10)
    np.testing.assert_allclose(history.theta, theta, rtol=1e-10, atol=1e-12)


def test_participation_picks_a_seeded_subset_each_round():
    fed = linear_federation(K=10)
    history = fedlite.simulate(fed, num_rounds=20, lr=0.1, participation=0.3, seed=5)
    assert history.selected.shape == (20, 3)
    assert all(len(set(row)) == 3 and list(row) == sorted(row) for row in history.selected)
    assert len({tuple(row) for row in history.selected}) > 1
    other = fedlite.simulate(fed, num_rounds=20, lr=0.1, participation=0.3, seed=6)
    assert not np.array_equal(history.selected, other.selected)
    tiny = fedlite.simulate(fed, num_rounds=3, lr=0.1, participation=0.01)
    assert tiny.selected.shape == (3, 1)


def test_a_participants_batches_do_not_change_when_others_join():
    keys_small = participant_keys(np.random.SeedSequence(0), 3)
    keys_large = participant_keys(np.random.SeedSequence(0), 30)
    assert np.array_equal(keys_small, keys_large[:3])
    order = engine.shuffle_order(keys_small[1], 4, 0, 50)
    assert sorted(order) == list(range(50))
    assert not np.array_equal(order, engine.shuffle_order(keys_small[1], 4, 1, 50))


def test_bytes_count_what_crosses_the_network():
    fed = linear_federation(K=10, d=4)
    history = fedlite.simulate(fed, model="mlp", hidden=6, num_rounds=3, lr=0.01,
                               participation=0.5)
    per_message = num_params("mlp", 4, 6) * 8
    assert list(history.bytes_up) == [5 * per_message] * 3
    assert list(history.bytes_down) == [5 * per_message] * 3
    assert history.bytes_total[-1] == 3 * 2 * 5 * per_message


@pytest.mark.parametrize("algorithm,extra", [("fedsgd", {}), ("fedavg", dict(local_epochs=5))])
def test_divergence_is_reported_at_its_round_and_the_history_stays_finite(algorithm, extra):
    fed = linear_federation()
    with np.errstate(all="raise"):  # no floating-point warning may escape
        history = fedlite.simulate(fed, algorithm=algorithm, num_rounds=200, lr=50.0, **extra)
    assert history.diverged and history.diverged_at >= 1
    assert history.num_rounds == history.diverged_at - 1
    for field in ("loss", "participant_loss", "theta"):
        assert np.isfinite(getattr(history, field)).all()
    assert "diverged at round" in repr(history)


def test_a_stable_run_converges_and_does_not_diverge():
    fed = linear_federation()
    history = fedlite.simulate(fed, num_rounds=100, lr=0.5)
    assert history.diverged_at is None and history.num_rounds == 100
    assert history.loss[-1] < 0.05 * history.loss[0]
    assert history.rounds_to(history.loss[-1]) <= 100
    assert history.rounds_to(-1.0) is None


def test_mlp_learns_a_sine():
    X, y = fedlite.make_sine_data(200, seed=0)
    fed = fedlite.split(X, y, 4, seed=0)
    history = fedlite.simulate(fed, model="mlp", algorithm="fedavg", num_rounds=30, lr=0.05,
                               batch_size=10, hidden=16)
    assert history.loss[-1] < 0.3 * history.loss[0]
    W1, b1, W2, b2 = history.params
    assert W1.shape == (1, 16) and b1.shape == (16,) and W2.shape == (16,)


def test_init_is_used_and_checked():
    fed = linear_federation(d=3)
    start = (np.ones(3), 0.5)
    history = fedlite.simulate(fed, num_rounds=1, lr=1e-12, init=start)
    np.testing.assert_allclose(history.theta, pack(start), atol=1e-9)
    with pytest.raises(ValueError, match="init"):
        fedlite.simulate(fed, num_rounds=1, lr=0.1, init=np.zeros(7))


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=0.0), "lr"), (dict(lr=-1), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(num_rounds=0), "num_rounds"), (dict(num_rounds=2.5), "num_rounds"),
    (dict(participation=0.0), "participation"), (dict(participation=1.5), "participation"),
    (dict(model="cnn"), "model"), (dict(algorithm="fedadam"), "algorithm"),
    (dict(algorithm="fedavg", batch_size=1000), "batch_size"),
    (dict(algorithm="fedavg", local_epochs=0), "local_epochs"),
    (dict(algorithm="fedsgd", local_epochs=3), "local_epochs"),
    (dict(algorithm="fedavg", mu=0.1), "mu"), (dict(algorithm="fedprox", mu=-1), "mu"),
    (dict(model="mlp", hidden=0), "hidden"), (dict(seed=-1), "seed"),
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    fed = linear_federation()
    args = dict(num_rounds=3, lr=0.1)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        fedlite.simulate(fed, **args)


def test_a_non_federation_is_refused():
    with pytest.raises(TypeError, match="federation"):
        fedlite.simulate(np.zeros((3, 2)), num_rounds=1, lr=0.1)


@pytest.mark.skipif(not hasattr(engine.local_updates, "stats"), reason="needs the JIT")
def test_thread_count_does_not_change_a_bit():
    fed = linear_federation(K=8)
    kwargs = dict(algorithm="fedavg", num_rounds=5, lr=0.05, batch_size=4, participation=0.5)
    one, many = on_one_and_all_threads(lambda: fedlite.simulate(fed, **kwargs))
    assert np.array_equal(one.theta, many.theta) and np.array_equal(one.loss, many.loss)


class PlainMean:
    """The simplest aggregator: the n_k-weighted mean of the reports, counted as float64."""

    def start(self, num_participants, num_params, seed_sequence):
        self.started = (num_participants, num_params)

    def aggregate(self, reports, num_examples, selected, round_number):
        mean = (reports * num_examples[:, None]).sum(axis=0) / num_examples.sum()
        return mean, reports.size * 8 + 1


@pytest.mark.parametrize("algorithm,extra", [("fedsgd", {}), ("fedavg", dict(batch_size=5))])
def test_an_aggregator_replaces_the_weighted_mean(algorithm, extra):
    fed = linear_federation()
    kwargs = dict(algorithm=algorithm, num_rounds=5, lr=0.1, participation=0.6, **extra)
    plain = fedlite.simulate(fed, **kwargs)
    aggregator = PlainMean()
    hooked = fedlite.simulate(fed, aggregator=aggregator, **kwargs)
    assert aggregator.started == (5, 4)
    np.testing.assert_allclose(hooked.loss, plain.loss, rtol=1e-12)
    assert list(hooked.bytes_up) == [3 * 4 * 8 + 1] * 5


def test_init_where_a_run_ended_starts_from_that_runs_losses_and_no_other():
    """simulate(init=history.theta) reuses the losses the run ended with (stepping one round per
    call skips a pass over the data) only for the same federation and parameters."""
    fed, other = linear_federation(K=6), linear_federation(K=6, seed=1)
    kwargs = dict(algorithm="fedavg", lr=0.1, batch_size=5, num_rounds=2)
    first = fedlite.simulate(fed, **kwargs)
    again = fedlite.simulate(fed, init=first.theta, **kwargs)
    assert np.array_equal(again.participant_loss[0], first.participant_loss[-1])
    moved = fedlite.simulate(other, init=again.theta, **kwargs)   # same shapes, other data
    w, b = again.theta[:-1], again.theta[-1]
    expected = [reference.linear_loss_grad(*other.participant(k), w, b)[0] for k in range(6)]
    np.testing.assert_allclose(moved.participant_loss[0], expected, rtol=1e-12)
    shifted = fedlite.simulate(fed, init=again.theta + 0.5, **kwargs)   # other parameters
    w, b = again.theta[:-1] + 0.5, again.theta[-1] + 0.5
    expected = [reference.linear_loss_grad(*fed.participant(k), w, b)[0] for k in range(6)]
    np.testing.assert_allclose(shifted.participant_loss[0], expected, rtol=1e-12)
