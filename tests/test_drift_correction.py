"""Notebook 07's runs and explorer: experiments.tracked_run / drift_correction_runs and
widgets.drift_correction_explorer (SCAFFOLD, FedProx and FedAvg under a server optimiser)."""
import inspect

import numpy as np
import pytest

import fedlite
from fedlite import experiments

TINY = dict(num_rounds=12)


@pytest.fixture(scope="module")
def federation():
    return experiments.drift_federation(spread=1.0, seed=0)


def optimum(federation):
    return np.append(*experiments.pooled_optimum(federation))


# ---------------------------------------------------------------------------- tracked_run

@pytest.mark.parametrize("algorithm, extra", [
    ("fedavg", {}), ("fedprox", {"mu": 1.0}), ("scaffold", {}),
    ("scaffold", {"server_optimizer": "adam", "server_lr": 0.1}),
    ("fedavg", {"server_optimizer": "momentum", "batch_size": 5, "participation": 0.5}),
])
def test_tracked_run_is_simulate_plus_the_distance_after_every_round(federation, algorithm,
                                                                     extra):
    kwargs = dict(algorithm=algorithm, lr=0.05, local_epochs=3, seed=1, **TINY, **extra)
    history, distance = experiments.tracked_run(federation, **kwargs)
    plain = fedlite.simulate(federation, **kwargs)
    np.testing.assert_array_equal(history.theta, plain.theta)
    np.testing.assert_array_equal(history.loss, plain.loss)
    assert history.config["model"] == "linear" and distance.shape == (TINY["num_rounds"] + 1,)
    assert distance[0] == np.linalg.norm(optimum(federation))  # the linear model starts at 0
    assert distance[-1] == experiments.distance_to_optimum(plain, federation)
    for r in (1, 5):   # the distance after round r is that of a run stopped there
        shorter = fedlite.simulate(federation, **{**kwargs, "num_rounds": r})
        assert distance[r] == np.linalg.norm(shorter.theta - optimum(federation))


def test_a_diverging_run_keeps_the_distances_of_the_rounds_it_completed(federation):
    history, distance = experiments.tracked_run(federation, algorithm="fedavg", lr=0.05,
                                                local_epochs=10, server_lr=10.0, **TINY)
    assert history.diverged
    assert distance.shape == (history.num_rounds + 1,) and np.isfinite(distance).all()


@pytest.mark.parametrize("name", ["model", "init", "resume"])
def test_tracked_run_refuses_what_it_sets_itself(federation, name):
    with pytest.raises(TypeError, match=f"do not pass {name}="):
        experiments.tracked_run(federation, algorithm="fedavg", lr=0.05, **TINY,
                                **{name: None})


def test_tracked_run_refuses_a_non_federation():
    with pytest.raises(TypeError, match="federation"):
        experiments.tracked_run(np.zeros((3, 2)), algorithm="fedavg", lr=0.05, **TINY)


# ------------------------------------------------------------------ drift_correction_runs

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaffold_removes_the_drift_that_fedprox_only_reduces(seed):
    """The docstring's numbers, on three seeds of notebook 06's data (150 rounds, full batch)."""
    runs = experiments.drift_correction_runs(seed=seed)
    assert list(runs) == ["FedAvg", "FedProx", "SCAFFOLD"]
    final = {name: distance[-1] for name, (_, distance) in runs.items()}
    assert final["SCAFFOLD"] < 1e-10 < 0.05 < final["FedProx"] < final["FedAvg"]
    data = experiments.drift_federation(spread=1.0, seed=seed)
    for history, distance in runs.values():
        assert distance[-1] == experiments.distance_to_optimum(history, data)


def test_every_run_gets_the_same_server_optimiser():
    runs = experiments.drift_correction_runs(server_optimizer="yogi", server_lr=0.05,
                                             local_epochs=2, beta1=0.5, tau=0.01, **TINY)
    for history, _ in runs.values():
        c = history.config
        assert (c["server_optimizer"], c["server_lr"], c["local_epochs"], c["beta1"],
                c["tau"]) == ("yogi", 0.05, 2, 0.5, 0.01)
    assert runs["FedProx"][0].config["mu"] == 1.0 and runs["FedAvg"][0].config["mu"] == 0.0


def test_server_lr_none_is_simulates_default_for_the_optimiser():
    runs = experiments.drift_correction_runs(server_optimizer="adam", **TINY)
    assert runs["SCAFFOLD"][0].config["server_lr"] == 0.1


BAD_ARGUMENTS = [  # (arguments, the error simulate or make_concept_shift raises, its message)
    (dict(server_lr=-1.0), ValueError, "server_lr must be > 0"),
    (dict(server_lr="big"), TypeError, "server_lr"),
    (dict(server_optimizer="rmsprop"), ValueError, "server_optimizer must be one of"),
    (dict(local_epochs=0), ValueError, "local_epochs must be at least 1"),
    (dict(local_epochs=2.5), TypeError, "local_epochs"),
    (dict(lr=0.0), ValueError, "lr must be > 0"),
    (dict(mu=-1.0), ValueError, "mu must be >= 0"),
    (dict(tau=0.0), ValueError, "tau must be > 0"),
    (dict(beta1=1.0), ValueError, r"beta1 must be in \[0, 1\)"),
    (dict(server_momentum=1.5), ValueError, "server_momentum"),
    (dict(batch_size=50), ValueError, "batch_size must be at most"),
    (dict(num_rounds=0), ValueError, "num_rounds"),
    (dict(spread=-1.0), ValueError, "spread"),
    (dict(num_participants=0), ValueError, "num_participants"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_ARGUMENTS)
def test_bad_arguments_get_simulates_own_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        experiments.drift_correction_runs(**kwargs)


# --------------------------------------------------------------------------- the explorer

widgets = pytest.importorskip("fedlite.widgets")


def test_the_explorer_draws_the_runs_of_its_controls():
    ex = widgets.drift_correction_explorer(**TINY)
    assert list(ex.controls) == ["server_optimizer", "server_lr", "local_epochs"]
    assert all(c.continuous_update is False for name, c in ex.controls.items()
               if name != "server_optimizer")
    assert ex.values == {"server_optimizer": "sgd", "server_lr": 1.0, "local_epochs": 10}
    for name, value in [("server_lr", 0.5), ("local_epochs", 3), ("server_optimizer", "adam")]:
        before = ex.png
        ex.controls[name].value = value
        assert ex.png != before, name
        runs = experiments.drift_correction_runs(**ex.values, **TINY)
        for label, (_, distance) in runs.items():
            np.testing.assert_array_equal(ex.lines[label].get_ydata(),
                                          np.maximum(distance, widgets.DISTANCE_FLOOR))
    assert "Adam" in ex.ax.get_title() and "3 local epochs" in ex.ax.get_title()
    assert "Final distance" in ex.status.value


def test_a_diverging_server_lr_is_a_warning_and_never_drawn_as_nan():
    ex = widgets.drift_correction_explorer(**TINY)
    ex.controls["server_lr"].value = 10.0
    assert "diverged at round" in ex.status.value and "server_lr" in ex.status.value
    drawn = np.concatenate([line.get_ydata() for line in ex.ax.lines])
    assert np.isfinite(drawn).all()
    ex.controls["server_lr"].value = 1.0
    assert "diverged" not in ex.status.value


def test_the_explorer_starts_at_the_optimisers_default_server_lr():
    ex = widgets.drift_correction_explorer(server_optimizer="yogi", **TINY)
    assert ex.values["server_lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs, error, match", [
    bad for bad in BAD_ARGUMENTS
    if set(bad[0]) <= set(inspect.signature(widgets.drift_correction_explorer).parameters)])
def test_the_explorer_refuses_bad_arguments_with_simulates_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        widgets.drift_correction_explorer(**kwargs)
