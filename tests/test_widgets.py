"""fedlite.widgets without a browser: move the sliders from Python, check what is drawn.

Each explorer's lines must show exactly the numbers of the pure run in fedlite.experiments,
every slider must change the picture (its PNG), and a bad combination or a diverging run must
give a message in the status line, never an exception or a NaN on the plot.
"""
import ipywidgets
import numpy as np
import pytest

from fedlite import experiments, widgets
from fedlite.data import make_linear_data
from fedlite.partition import split

TINY = dict(num_rounds=10)


@pytest.fixture(scope="module")
def data():
    X, y, _, _ = make_linear_data(80, 2, seed=0)
    return X, y


def plotted_values(explorer):
    """Every y value on the figure: lines and line collections."""
    values = [np.asarray(line.get_ydata(), float) for ax in explorer.axes for line in ax.lines]
    for ax in explorer.axes:
        for collection in ax.collections:
            values += [segment[:, 1] for segment in collection.get_segments()]
    return np.concatenate(values) if values else np.array([])


def moves_the_picture(explorer, name, value):
    before = explorer.png
    explorer.controls[name].value = value
    return explorer.png != before


def test_convergence_explorer_draws_the_run_of_its_sliders(data):
    X, y = data
    ex = widgets.convergence_explorer(X, y, num_participants=4, **TINY)
    assert isinstance(ex.widget, ipywidgets.VBox)
    assert set(ex.controls) == {"lr", "num_participants", "participation"}
    assert all(c.continuous_update is False for c in ex.controls.values())
    for name, value in [("lr", 0.5), ("num_participants", 8), ("participation", 0.5)]:
        assert moves_the_picture(ex, name, value)
        run = experiments.convergence_run(X, y, **ex.values, **TINY)
        np.testing.assert_array_equal(ex.lines["loss"].get_ydata(), run.loss)
    assert "8 participants, 4 per round" in ex.ax.get_title()
    assert len(ex.ax.collections[0].get_segments()) == 8  # one thin line per participant


def test_convergence_explorer_takes_a_federation_and_fixed_controls(data):
    federation = split(*data, 5)
    ex = widgets.convergence_explorer(federation, controls=("lr",), lr=0.2, **TINY)
    assert list(ex.controls) == ["lr"]
    run = experiments.convergence_run(federation.X, federation.y, num_participants=5, lr=0.2,
                                      **TINY)
    np.testing.assert_array_equal(ex.lines["loss"].get_ydata(), run.loss)
    with pytest.raises(ValueError, match="controls"):
        widgets.convergence_explorer(federation, controls=("lr", "mu"))
    with pytest.raises(ValueError, match="Federation"):
        widgets.convergence_explorer(federation, data[1])


def test_too_many_participants_is_a_message_not_an_exception(data):
    X, y = data
    ex = widgets.convergence_explorer(X[:5], y[:5], num_participants=10, controls=("lr",))
    assert "Cannot run this combination" in ex.status.value
    assert "5 rows" in ex.status.value
    assert len(ex.lines["loss"].get_ydata()) == 0 and ex.png  # an empty plot is still shown


def test_a_batch_too_big_for_the_participants_is_a_message_then_recovers(data):
    X, y = data
    ex = widgets.convergence_explorer(X, y, algorithm="fedavg", batch_size=10, local_epochs=2,
                                      num_participants=4, **TINY)
    assert len(ex.lines["loss"].get_ydata()) == 11
    ex.controls["num_participants"].value = 10  # 8 rows each, batches of 10
    assert "batch_size" in ex.status.value and "#b00020" in ex.status.value
    assert len(plotted_values(ex)) == 0 and ex.ax.get_title() == ""
    ex.controls["num_participants"].value = 5
    assert "Cannot" not in ex.status.value and len(ex.lines["loss"].get_ydata()) == 11


def test_a_diverging_lr_is_reported_and_never_drawn_as_nan(data):
    X, y = data
    ex = widgets.convergence_explorer(X, y, num_participants=4, **TINY)
    ex.controls["lr"].value = 10.0
    run = experiments.convergence_run(X, y, **ex.values, **TINY)
    assert run.diverged
    message = f"diverged at round {run.diverged_at}"
    assert message in ex.status.value
    assert message in [text.get_text() for text in ex.ax.texts]
    assert np.isfinite(plotted_values(ex)).all()
    np.testing.assert_array_equal(ex.lines["loss"].get_ydata(), run.loss)


def test_an_explorer_displays_as_its_widget(data):
    ex = widgets.convergence_explorer(*data, num_participants=4, **TINY)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert ex.png.startswith(b"\x89PNG")


def test_local_epochs_explorer_compares_fedsgd_and_fedavg(data):
    federation = split(*data, 4)
    ex = widgets.local_epochs_explorer(federation, lr=0.05, local_epochs=2, **TINY)
    for name, value in [("local_epochs", 6), ("lr", 0.2)]:
        fedsgd_before = ex.lines["FedSGD"].get_ydata().copy()
        assert moves_the_picture(ex, name, value)
        runs = experiments.local_epochs_runs(federation, **ex.values, **TINY)
        for label, history in runs.items():
            np.testing.assert_array_equal(ex.lines[label].get_ydata(), history.loss)
            np.testing.assert_allclose(ex.lines[f"{label} (bytes)"].get_xdata(),
                                       history.bytes_total / 1e3)
        assert np.array_equal(ex.lines["FedSGD"].get_ydata(), fedsgd_before) == (
            name == "local_epochs")
    assert ex.axes[1].get_xlabel() == "data sent, both ways (kB)"
    assert "reaches" in ex.status.value


def test_drift_explorer_draws_the_excess_loss_of_each_run():
    small = dict(num_participants=4, samples_per_participant=10, num_features=2, **TINY)
    ex = widgets.drift_explorer(**small)
    for name, value in [("mu", 3.0), ("spread", 2.0)]:
        fedavg_before = ex.lines["FedAvg"].get_ydata().copy()
        assert moves_the_picture(ex, name, value)
        runs = experiments.drift_runs(**ex.values, **small)
        federation = experiments.drift_federation(
            spread=ex.values["spread"],
            **{k: v for k, v in small.items() if k != "num_rounds"})
        for label, history in runs.items():
            expected = np.maximum(experiments.excess_loss(history, federation),
                                  widgets.EXCESS_FLOOR)
            np.testing.assert_allclose(ex.lines[label].get_ydata(), expected, rtol=1e-12)
        # mu only changes FedProx; spread changes the data, so every run.
        assert np.array_equal(ex.lines["FedAvg"].get_ydata(), fedavg_before) == (name == "mu")
    assert "distance" in ex.status.value
    ex.controls["mu"].value = 0.0  # FedProx with mu = 0 is FedAvg
    np.testing.assert_array_equal(ex.lines["FedProx"].get_ydata(), ex.lines["FedAvg"].get_ydata())


def test_partition_explorer_redraws_the_split(data):
    X, y = data
    ex = widgets.partition_explorer(X, y, scheme="quantity", num_participants=4, alpha=1.0)
    for name, value in [("num_participants", 6), ("alpha", 0.1)]:
        assert moves_the_picture(ex, name, value)
    expected = split(X, y, 6, scheme="quantity", alpha=ex.values["alpha"])
    assert [patch.get_height() for patch in ex.axes[1].patches] == list(expected.sizes)
    assert "6 participants" in ex.ax.get_title()
    assert set(widgets.partition_explorer(X, y, scheme="iid").controls) == {"num_participants"}
