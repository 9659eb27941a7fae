"""Notebook 08's runs and explorers: experiments.digits_federation / centralised_run /
label_skew_runs, widgets.label_skew_explorer, and partition_explorer / convergence_run on the
label-skew schemes ("dirichlet", "shards")."""
import inspect

import numpy as np
import pytest

import fedlite
from fedlite import experiments

TINY = dict(num_participants=10, local_epochs=1, num_rounds=1)   # fast, also without the JIT


@pytest.fixture(scope="module")
def digits():
    return fedlite.load_digits(seed=0)


# ------------------------------------------------------------------------- digits_federation

@pytest.mark.parametrize("alpha", [0.1, 100.0])
@pytest.mark.parametrize("seed", [0, 3])
def test_digits_federation_deals_every_training_image_once(digits, alpha, seed):
    X, y, X_test, y_test = digits
    federation, (X_t, y_t) = experiments.digits_federation(alpha=alpha, num_participants=20,
                                                           seed=seed)
    expected = fedlite.split(X, y, 20, scheme="dirichlet", alpha=alpha, seed=seed)
    np.testing.assert_array_equal(federation.index, expected.index)
    np.testing.assert_array_equal(federation.offsets, expected.offsets)
    np.testing.assert_array_equal(np.sort(federation.index), np.arange(len(y)))
    np.testing.assert_array_equal(X_t, X_test)
    np.testing.assert_array_equal(y_t, y_test)


def test_digits_federation_takes_the_shards_scheme(digits):
    X, y, _, _ = digits
    federation, _ = experiments.digits_federation(alpha=None, num_participants=20,
                                                  scheme="shards", shards_per_participant=3)
    expected = fedlite.split(X, y, 20, scheme="shards", shards_per_participant=3)
    np.testing.assert_array_equal(federation.index, expected.index)
    classes = [len(np.unique(federation.participant(k)[1])) for k in range(20)]
    assert max(classes) <= 3


# -------------------------------------------------------------------------- centralised_run

def test_the_centralised_run_is_plain_gradient_descent_on_the_pooled_data(digits):
    """One participant, FedAvg: local_epochs · num_rounds full-batch steps at lr."""
    X, y, X_test, y_test = digits
    run = experiments.centralised_run(local_epochs=3, lr=0.5, num_rounds=4)
    W, b = np.zeros((64, 10)), np.zeros(10)
    for _ in range(3 * 4):
        _, (grad_W, grad_b) = fedlite.softmax_loss_grad(X, y, W, b)
        W, b = W - 0.5 * grad_W, b - 0.5 * grad_b
    np.testing.assert_allclose(run.theta, np.append(W.ravel(), b), rtol=1e-10, atol=1e-12)
    predicted = np.argmax(X_test @ W + b, axis=1)
    assert run.test_accuracy[-1] == pytest.approx(np.mean(predicted == y_test), abs=1e-12)
    assert run.test_accuracy.shape == (5,) and run.test_accuracy[0] == pytest.approx(0.1, abs=0.01)


# -------------------------------------------------------------------------- label_skew_runs

@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow_without_jit)])
def test_label_skew_runs_are_split_then_simulate(seed):
    runs = experiments.label_skew_runs(alpha=0.3, mu=0.1, server_lr=0.5, seed=seed,
                                       num_participants=10, local_epochs=2, num_rounds=2)
    assert list(runs) == ["FedAvg", "FedProx", "SCAFFOLD", "FedAvgM", "centralised"]
    federation, test = experiments.digits_federation(alpha=0.3, num_participants=10, seed=seed)
    common = dict(model="softmax", participation=0.1, local_epochs=2, lr=1.0, num_rounds=2,
                  seed=seed, test=test)
    expected = {
        "FedAvg": fedlite.simulate(federation, algorithm="fedavg", **common),
        "FedProx": fedlite.simulate(federation, algorithm="fedprox", mu=0.1, **common),
        "SCAFFOLD": fedlite.simulate(federation, algorithm="scaffold", **common),
        "FedAvgM": fedlite.simulate(federation, algorithm="fedavg", server_optimizer="momentum",
                                    server_lr=0.5, server_momentum=0.9, **common),
        "centralised": experiments.centralised_run(local_epochs=2, lr=1.0, num_rounds=2,
                                                   seed=seed),
    }
    for name, history in runs.items():
        np.testing.assert_array_equal(history.theta, expected[name].theta)
        np.testing.assert_array_equal(history.test_accuracy, expected[name].test_accuracy)
        assert history.test_accuracy.shape == (3,)
    assert runs["centralised"].participant_loss.shape[1] == 1
    assert runs["FedAvg"].selected.shape == (2, 1)   # 10 % of 10 participants per round


def test_label_skew_runs_take_participation():
    runs = experiments.label_skew_runs(alpha=0.5, participation=0.3, algorithms=("FedAvg",),
                                       centralised=False, **TINY)
    assert runs["FedAvg"].selected.shape == (1, 3)


def test_label_skew_runs_choose_algorithms_and_leave_out_the_ceiling():
    runs = experiments.label_skew_runs(alpha=1.0, algorithms=("SCAFFOLD", "FedAvg"),
                                       centralised=False, **TINY)
    assert list(runs) == ["SCAFFOLD", "FedAvg"]


def test_small_alpha_gives_each_participant_fewer_classes():
    def classes_per_participant(alpha):
        federation, _ = experiments.digits_federation(alpha=alpha, num_participants=50)
        return np.mean([len(np.unique(federation.participant(k)[1])) for k in range(50)])
    assert classes_per_participant(0.05) < 3 < 9 < classes_per_participant(100.0)


BAD_ARGUMENTS = [   # (kwargs, error, the words of split's / simulate's own message)
    (dict(alpha=0.0), ValueError, "alpha must be > 0"),
    (dict(alpha=None), ValueError, "alpha is required for scheme 'dirichlet'"),
    (dict(alpha="small"), TypeError, "alpha"),
    (dict(num_participants=0), ValueError, "num_participants must be at least 1"),
    (dict(num_participants=5000), ValueError, "num_participants must be at most the number"),
    (dict(num_participants=2.5), TypeError, "num_participants"),
    (dict(local_epochs=0), ValueError, "local_epochs must be at least 1"),
    (dict(lr=0.0), ValueError, "lr must be > 0"),
    (dict(lr="fast"), TypeError, "lr"),
    (dict(num_rounds=0), ValueError, "num_rounds"),
    (dict(participation=0.0), ValueError, "participation"),
    (dict(mu=-1.0), ValueError, "mu must be >= 0"),
    (dict(server_lr=0.0), ValueError, "server_lr"),
    (dict(server_momentum=1.5), ValueError, "server_momentum"),
    (dict(model="cnn"), ValueError, "model must be one of"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(data_seed=-1), ValueError, "seed"),
    (dict(algorithms=("FedAvg", "FedSGD")), ValueError, "algorithms must name some of"),
    (dict(algorithms="FedAvg"), TypeError, "algorithms must be a tuple"),
    (dict(algorithms=("FedAvg", "FedAvg")), ValueError, "algorithms must not repeat"),
    (dict(algorithms=(["FedAvg"],)), ValueError, "algorithms must name some of"),
]


# FedAvgM and FedProx first: each run checks its arguments when it starts, and these two take
# the most (mu, server_lr, server_momentum), so a bad one is refused before any work is done
FIRST_CHECKED = dict(alpha=0.5, algorithms=("FedAvgM", "FedProx", "FedAvg", "SCAFFOLD"))


@pytest.mark.parametrize("kwargs, error, match", BAD_ARGUMENTS)
def test_bad_arguments_get_splits_and_simulates_own_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        experiments.label_skew_runs(**{**FIRST_CHECKED, **TINY, **kwargs})


def test_an_unknown_model_is_refused_by_simulate_with_the_same_message():
    """The message above is simulate's, not a rewording."""
    federation, test = experiments.digits_federation(alpha=0.5, num_participants=10)
    with pytest.raises(ValueError) as direct:
        fedlite.simulate(federation, model="cnn", algorithm="fedavg", num_rounds=1, lr=1.0,
                         test=test)
    with pytest.raises(ValueError) as ours:
        experiments.label_skew_runs(alpha=0.5, model="cnn", **TINY)
    assert str(ours.value) == str(direct.value)


# ----------------------------------------------------------------------- convergence_run

def test_convergence_run_and_federation_take_the_shards_scheme(digits):
    X, y, _, _ = digits
    federation = experiments.convergence_federation(X, y, num_participants=10, scheme="shards",
                                                    shards_per_participant=1, seed=2)
    expected = fedlite.split(X, y, 10, scheme="shards", shards_per_participant=1, seed=2)
    np.testing.assert_array_equal(federation.index, expected.index)
    run = experiments.convergence_run(X, y, num_participants=10, lr=0.5, model="softmax",
                                      algorithm="fedavg", scheme="shards",
                                      shards_per_participant=1, num_rounds=2, seed=2)
    direct = fedlite.simulate(expected, model="softmax", algorithm="fedavg", lr=0.5,
                              num_rounds=2, seed=2)
    np.testing.assert_array_equal(run.theta, direct.theta)


def test_convergence_run_refuses_shards_per_participant_for_other_schemes(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="shards_per_participant is used only by scheme"):
        experiments.convergence_run(X, y, num_participants=10, lr=0.5, scheme="dirichlet",
                                    alpha=0.5, shards_per_participant=2, num_rounds=1)


# --------------------------------------------------------------------------- the explorers

widgets = pytest.importorskip("fedlite.widgets")
EXPLORER = dict(num_participants=10, local_epochs=2, num_rounds=2)
TWO = ("FedAvg", "SCAFFOLD")   # fewer runs per slider move: the test also runs without the JIT


def bar_heights(ax):
    return np.array([patch.get_height() for patch in ax.patches])


def test_the_label_skew_explorer_draws_the_runs_of_its_sliders():
    ex = widgets.label_skew_explorer(alpha=0.5, algorithms=TWO, **EXPLORER)
    assert list(ex.controls) == ["alpha", "num_participants", "local_epochs", "lr"]
    assert all(c.continuous_update is False for c in ex.controls.values())
    assert ex.values == {"alpha": 0.5, "num_participants": 10, "local_epochs": 2, "lr": 1.0}
    for name, value in [("alpha", 0.05), ("num_participants", 15), ("local_epochs", 1),
                        ("lr", 0.5)]:
        before = ex.png
        ex.controls[name].value = value
        assert ex.png != before, name
        runs = experiments.label_skew_runs(**ex.values, algorithms=TWO, num_rounds=2)
        for label, history in runs.items():
            np.testing.assert_array_equal(ex.lines[label].get_ydata(), history.test_accuracy)
        federation, _ = experiments.digits_federation(alpha=ex.values["alpha"],
                                                      num_participants=ex.values[
                                                          "num_participants"])
        ax_labels = ex.axes[1]
        assert bar_heights(ax_labels).sum() == federation.num_samples
        assert len(ax_labels.patches) == 10 * federation.num_participants   # 10 classes each
    assert "15 participants (2 per round), 1 local epoch, lr = 0.5" in ex.ax.get_title()
    assert "Test accuracy after 2 rounds: FedAvg" in ex.status.value
    assert "centralised" in ex.status.value


def test_the_explorer_keeps_the_centralised_run_of_each_local_epochs_and_lr(monkeypatch):
    ex = widgets.label_skew_explorer(algorithms=("FedAvg",), **EXPLORER)
    calls = []
    original = experiments.centralised_run
    monkeypatch.setattr(experiments, "centralised_run",
                        lambda **kw: calls.append(kw) or original(**kw))
    ex.controls["alpha"].value = 1.0
    ex.controls["num_participants"].value = 12
    assert calls == []                      # neither changes the ceiling
    ex.controls["lr"].value = 0.5
    ex.controls["lr"].value = 1.0           # back to a pair already run
    assert len(calls) == 1


def test_the_labels_are_redrawn_only_when_the_split_changes():
    ex = widgets.label_skew_explorer(algorithms=("FedAvg",), **EXPLORER)
    bars = list(ex.axes[1].patches)
    ex.controls["lr"].value = 0.5
    ex.controls["local_epochs"].value = 1
    assert list(ex.axes[1].patches) == bars    # same split: the same bars
    ex.controls["alpha"].value = 1.0
    assert list(ex.axes[1].patches) != bars and len(ex.axes[1].patches) == len(bars)


def test_after_a_refused_combination_the_labels_come_back():
    """The status line's error empties the plot; the next run draws the labels again."""
    ex = widgets.label_skew_explorer(algorithms=("FedAvg",), **EXPLORER)
    compute = ex.compute

    def refused(**values):
        raise ValueError("no")

    ex.compute = refused
    ex.update()
    assert "Cannot run this combination: no" in ex.status.value and not ex.axes[1].patches
    ex.compute = compute
    ex.update()            # the same split as before the error: drawn again all the same
    assert len(ex.axes[1].patches) == 10 * 10 and "Test accuracy" in ex.status.value

    ex = widgets.label_skew_explorer(**EXPLORER)
    assert list(ex.lines) == ["FedAvg", "FedProx", "SCAFFOLD", "FedAvgM", "centralised"]
    assert all(len(line.get_ydata()) == 3 for line in ex.lines.values())


EXPLORER_ARGUMENTS = set(inspect.signature(widgets.label_skew_explorer).parameters)


@pytest.mark.parametrize("kwargs, error, match", [
    bad for bad in BAD_ARGUMENTS if set(bad[0]) <= EXPLORER_ARGUMENTS])
def test_the_explorer_refuses_bad_arguments_with_the_runs_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        widgets.label_skew_explorer(**{**FIRST_CHECKED, **EXPLORER, **kwargs})


def test_convergence_explorer_passes_the_shards_scheme_on(digits):
    X, y, _, _ = digits
    ex = widgets.convergence_explorer(X, y, model="softmax", algorithm="fedavg", lr=0.5,
                                      num_participants=10, num_rounds=2, scheme="shards",
                                      shards_per_participant=1, controls=("num_participants",))
    ex.controls["num_participants"].value = 5
    run = experiments.convergence_run(X, y, num_participants=5, lr=0.5, model="softmax",
                                      algorithm="fedavg", num_rounds=2, scheme="shards",
                                      shards_per_participant=1)
    np.testing.assert_array_equal(ex.lines["loss"].get_ydata(), run.loss)


def test_partition_explorer_shows_the_labels_of_a_dirichlet_split(digits):
    X, y, _, _ = digits
    ex = widgets.partition_explorer(X, y, scheme="dirichlet", num_participants=8, alpha=1.0)
    assert set(ex.controls) == {"num_participants", "alpha"}
    for name, value in [("alpha", 0.1), ("num_participants", 12)]:
        before = ex.png
        ex.controls[name].value = value
        assert ex.png != before, name
    expected = fedlite.split(X, y, 12, scheme="dirichlet", alpha=ex.values["alpha"])
    assert len(ex.ax.patches) == 10 * 12
    assert bar_heights(ex.ax).sum() == len(y)
    np.testing.assert_array_equal(bar_heights(ex.axes[1]), expected.sizes)
    assert "Labels of each participant (12 participants, 10 classes)" in ex.ax.get_title()


def test_partition_explorer_has_a_shards_slider_for_the_shards_scheme(digits):
    X, y, _, _ = digits
    ex = widgets.partition_explorer(X, y, scheme="shards", num_participants=10)
    assert set(ex.controls) == {"num_participants", "shards_per_participant"}
    assert ex.values["shards_per_participant"] == 2
    ex.controls["shards_per_participant"].value = 1
    expected = fedlite.split(X, y, 10, scheme="shards", shards_per_participant=1)
    np.testing.assert_array_equal(bar_heights(ex.axes[1]), expected.sizes)
    counts = bar_heights(ex.ax).reshape(10, 10)   # (class, participant): one class each
    assert ((counts > 0).sum(axis=0) == 1).all()


def test_partition_explorer_redraws_a_colorbar_only_once():
    """More than 20 classes get a colorbar, replaced (not piled up) when a slider moves."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 2)), np.repeat(np.arange(24), 5)
    ex = widgets.partition_explorer(X, y, scheme="dirichlet", num_participants=4, alpha=1.0)
    ex.controls["alpha"].value = 0.1
    ex.controls["num_participants"].value = 6
    assert len(ex.figure.axes) == 3     # the two plots and one colorbar


@pytest.mark.parametrize("kwargs, match", [
    (dict(scheme="dirichlet", alpha=0.0), "alpha must be > 0"),
    (dict(scheme="shards", shards_per_participant=0), "shards_per_participant must be at least"),
    (dict(scheme="shards", num_participants=100, shards_per_participant=10), "shards is more"),
])
def test_partition_explorer_refuses_bad_label_splits_with_splits_messages(digits, kwargs,
                                                                         match):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match=match):
        widgets.partition_explorer(X[:500], y[:500], **kwargs)


def test_partition_explorer_refuses_a_label_scheme_on_regression_data():
    X, y, _, _ = fedlite.make_linear_data(50, 2, seed=0)
    with pytest.raises(ValueError) as ours:
        widgets.partition_explorer(X, y, scheme="dirichlet", alpha=0.5)
    with pytest.raises(ValueError) as direct:
        fedlite.split(X, y, 5, scheme="dirichlet", alpha=0.5)
    assert str(ours.value) == str(direct.value)
