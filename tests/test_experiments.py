"""fedlite.experiments: each run equals the split + simulate it stands for; client drift shows."""
import numpy as np
import pytest

from fedlite import experiments, reference
from fedlite.data import make_linear_data
from fedlite.partition import make_concept_shift, split
from fedlite.simulation import simulate


@pytest.fixture
def data():
    X, y, _, _ = make_linear_data(80, 2, seed=0)
    return X, y


@pytest.mark.parametrize("kwargs", [
    dict(algorithm="fedsgd"),
    dict(algorithm="fedsgd", participation=0.5, scheme="quantity", alpha=0.5),
    dict(algorithm="fedavg", local_epochs=2, batch_size=5, scheme="covariate"),
    dict(algorithm="fedprox", local_epochs=2, mu=0.5, model="mlp", hidden=3),
])
@pytest.mark.parametrize("seed", [0, 3])
def test_convergence_run_is_split_then_simulate(data, kwargs, seed):
    X, y = data
    history = experiments.convergence_run(X, y, num_participants=4, lr=0.05, num_rounds=10,
                                          seed=seed, **kwargs)
    split_kwargs = {key: kwargs.pop(key) for key in ("scheme", "alpha") if key in kwargs}
    federation = split(X, y, 4, seed=seed, **split_kwargs)
    expected = simulate(federation, lr=0.05, num_rounds=10, seed=seed, **kwargs)
    assert np.array_equal(history.loss, expected.loss)
    assert np.array_equal(history.theta, expected.theta)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_participants=81), "num_participants"),
    (dict(num_participants=10, algorithm="fedavg", batch_size=9), "batch_size"),
    (dict(num_participants=4, lr=0.0), "lr"),
])
def test_convergence_run_passes_bad_combinations_on_as_value_errors(data, kwargs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        experiments.convergence_run(X, y, **{"lr": 0.1, **kwargs})


def test_local_epochs_runs_are_fedsgd_and_fedavg(data):
    federation = split(*data, 4)
    runs = experiments.local_epochs_runs(federation, local_epochs=5, lr=0.05, num_rounds=10)
    assert list(runs) == ["FedSGD", "FedAvg"]
    expected = simulate(federation, algorithm="fedavg", local_epochs=5, lr=0.05, num_rounds=10)
    assert np.array_equal(runs["FedAvg"].loss, expected.loss)
    assert np.array_equal(runs["FedSGD"].loss,
                          simulate(federation, lr=0.05, num_rounds=10).loss)
    # Five local steps per round: FedAvg gets further in the same rounds (and bytes).
    assert runs["FedAvg"].loss[-1] < runs["FedSGD"].loss[-1]
    assert np.array_equal(runs["FedAvg"].bytes_total, runs["FedSGD"].bytes_total)


def test_pooled_optimum_is_least_squares():
    federation, _, _ = make_concept_shift(4, 10, 3, spread=1.0, seed=2)
    w, b = experiments.pooled_optimum(federation)
    _, grad_w, grad_b = reference.linear_loss_grad(federation.X, federation.y, w, b)
    np.testing.assert_allclose(grad_w, 0.0, atol=1e-12)
    np.testing.assert_allclose(grad_b, 0.0, atol=1e-12)


def test_excess_loss_and_distance_of_a_run():
    federation, _, _ = make_concept_shift(4, 10, 2, spread=1.0, seed=1)
    history = simulate(federation, lr=0.5, num_rounds=10)
    w, b = experiments.pooled_optimum(federation)
    best = reference.linear_loss_grad(federation.X, federation.y, w, b)[0]
    np.testing.assert_allclose(experiments.excess_loss(history, federation),
                               history.loss - best, rtol=1e-12)
    assert (experiments.excess_loss(history, federation) > -1e-12).all()
    w_end, b_end = history.params
    assert experiments.distance_to_optimum(history, federation) == pytest.approx(
        np.linalg.norm(np.append(w_end - w, b_end - b)))
    mlp = simulate(federation, model="mlp", hidden=2, lr=0.1, num_rounds=1)
    with pytest.raises(ValueError, match="linear"):
        experiments.distance_to_optimum(mlp, federation)


def test_drift_runs_show_client_drift_with_the_defaults():
    """FedSGD heads for the pooled optimum; FedAvg settles away from it; FedProx(mu=1) closer."""
    runs = experiments.drift_runs(spread=1.0, mu=1.0)
    assert list(runs) == ["FedAvg", "FedProx", "FedSGD"]
    federation = experiments.drift_federation(spread=1.0)
    distance = {name: experiments.distance_to_optimum(h, federation) for name, h in runs.items()}
    assert distance["FedSGD"] < distance["FedProx"] < distance["FedAvg"]
    assert distance["FedAvg"] > 5 * distance["FedSGD"]
    assert not any(h.diverged for h in runs.values())


def test_drift_grows_with_spread_and_fedprox_with_mu_zero_is_fedavg():
    small = dict(num_participants=4, samples_per_participant=10, num_features=2, num_rounds=10)
    runs = experiments.drift_runs(spread=1.0, mu=0.0, **small)
    assert np.array_equal(runs["FedProx"].loss, runs["FedAvg"].loss)

    def fedavg_distance(spread):
        history = experiments.drift_runs(spread=spread, mu=0.0, **small)["FedAvg"]
        data_kwargs = {k: v for k, v in small.items() if k != "num_rounds"}
        federation = experiments.drift_federation(spread=spread, **data_kwargs)
        return experiments.distance_to_optimum(history, federation)

    assert fedavg_distance(0.0) < fedavg_distance(1.0) < fedavg_distance(3.0)


# ----------------------------------------------------------------------------- why a run diverged
def _largest_curvature(X):
    A = np.column_stack([X, np.ones(len(X))])
    return np.linalg.eigvalsh(A.T @ A / len(X))[-1]


@pytest.mark.parametrize("algorithm, lr, mu, expected", [
    ("fedprox", 0.1, 25.0, "lr·(λ_max(H_k) + mu) < 2"),   # lr·mu = 2.5: mu is the cause
    ("fedprox", 1.5, 0.5, "lr·(λ_max(H_k) + mu) < 2"),
    ("fedavg", 1.5, 0.0, "lr·λ_max(H_k) < 2"),
    ("fedsgd", 3.0, 0.0, "lr·λ_max(H) < 2"),
])
def test_divergence_reason_names_the_step_size_condition_that_failed(algorithm, lr, mu, expected):
    """The drift explorer blamed lr when lr·mu > 2 was the cause."""
    federation, _, _ = make_concept_shift(4, 10, 2, seed=0)
    extra = {"local_epochs": 10} if algorithm != "fedsgd" else {}
    if algorithm == "fedprox":
        extra["mu"] = mu
    history = simulate(federation, algorithm=algorithm, lr=lr, num_rounds=20, **extra)
    assert history.diverged
    reason = experiments.divergence_reason(history, federation)
    assert expected in reason and "lr = " not in reason
    if algorithm == "fedsgd":
        factor = lr * _largest_curvature(federation.X)
    else:
        factor = lr * (max(_largest_curvature(federation.participant(k)[0])
                           for k in range(4)) + mu)
    assert f"= {factor:.3g}" in reason and factor >= 2
    if algorithm == "fedprox" and lr * mu >= 2:
        assert "lower mu" in reason


def test_divergence_reason_falls_back_to_lr_where_no_condition_is_exact():
    federation, _, _ = make_concept_shift(4, 10, 2, seed=0)
    mlp = simulate(federation, model="mlp", hidden=3, lr=50.0, num_rounds=20)
    assert mlp.diverged
    reason = experiments.divergence_reason(mlp, federation)
    assert reason == "lr = 50 is too large; try a smaller one"


def test_convergence_federation_is_the_split_convergence_run_uses(data):
    X, y = data
    a = experiments.convergence_federation(X, y, num_participants=4, scheme="quantity",
                                           alpha=0.5, seed=3)
    b = split(X, y, 4, scheme="quantity", alpha=0.5, seed=3)
    assert np.array_equal(a.index, b.index) and np.array_equal(a.offsets, b.offsets)


class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array for you")


@pytest.mark.parametrize("make, error, match", [
    (lambda fed, run: experiments.pooled_optimum(fed.X), TypeError, "^federation"),
    (lambda fed, run: experiments.excess_loss(run.loss, fed), TypeError, "^history"),
    (lambda fed, run: experiments.excess_loss(run, None), TypeError, "^federation"),
    (lambda fed, run: experiments.distance_to_optimum({"theta": 0}, fed), TypeError, "^history"),
    (lambda fed, run: experiments.distance_to_optimum(run, split(*make_linear_data(20, 3)[:2], 2)),
     ValueError, "^history and federation do not match"),
    (lambda fed, run: experiments.divergence_reason(run, "fed"), TypeError, "^federation"),
    (lambda fed, run: experiments.convergence_run(_Unconvertible(), fed.y, num_participants=2,
                                                  lr=0.1), TypeError, "^X"),
    (lambda fed, run: experiments.convergence_run(fed.X, fed.y, num_participants=2, lr=0.1,
                                                  scheme="quantity", alpha=1e308),
     ValueError, "^alpha"),
    (lambda fed, run: experiments.drift_runs(spread=1e308, mu=1.0), ValueError, "^spread"),
    (lambda fed, run: experiments.drift_runs(spread=1.0, mu=1.0, num_participants=10**9),
     ValueError, "^num_participants"),
    (lambda fed, run: experiments.local_epochs_runs(fed.X, local_epochs=2, lr=0.1), TypeError,
     "federation"),
])
def test_bad_arguments_are_named(make, error, match, data):
    federation = split(*data, 4)
    run = simulate(federation, lr=0.1, num_rounds=2)
    with pytest.raises(error, match=match):
        make(federation, run)


def test_largest_curvatures_are_each_participants_hessian_eigenvalue():
    fed, _, _ = make_concept_shift(4, 15, 3, seed=0)
    lams = experiments.largest_curvatures(fed)
    for k in range(4):
        X_k, _ = fed.participant(k)
        A = np.column_stack([X_k, np.ones(len(X_k))])
        assert np.isclose(lams[k], np.linalg.eigvalsh(A.T @ A / len(X_k)).max(), rtol=1e-12)
    with pytest.raises(TypeError, match="federation"):
        experiments.largest_curvatures(fed.X)
