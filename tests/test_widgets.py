"""fedlite.widgets without a browser: move the sliders from Python, check what is drawn.

Each explorer's lines must show exactly the numbers of the pure run in fedlite.experiments,
every slider must change the picture (its PNG), and a bad combination or a diverging run must
give a message in the status line, never an exception or a NaN on the plot.
"""
import html

import ipywidgets
import numpy as np
import pytest

import fedlite
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


def test_too_many_participants_at_the_start_is_refused_with_splits_message(data):
    X, y = data
    with pytest.raises(ValueError, match="num_participants must be at most.*5 rows"):
        widgets.convergence_explorer(X[:5], y[:5], num_participants=10, controls=("lr",))


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


# ----------------------------------------------------------------------------- bad arguments
def widget_count():
    from ipywidgets.widgets import widget
    return len(widget._instances)


def _federation(data):
    return split(*data, 4)


# (explorer call, the call of the function behind it that must give the same message)
REFUSED = {
    "participation=5": (
        lambda d: widgets.convergence_explorer(*d, participation=5, **TINY),
        lambda d: experiments.convergence_run(*d, num_participants=10, lr=0.1, participation=5)),
    "num_participants=0": (
        lambda d: widgets.convergence_explorer(*d, num_participants=0, **TINY),
        lambda d: split(*d, 0)),
    "lr=0": (
        lambda d: widgets.convergence_explorer(*d, lr=0.0, **TINY),
        lambda d: experiments.convergence_run(*d, num_participants=10, lr=0.0)),
    "num_rounds=0": (
        lambda d: widgets.convergence_explorer(*d, num_rounds=0),
        lambda d: experiments.convergence_run(*d, num_participants=10, lr=0.1, num_rounds=0)),
    "lr a string": (
        lambda d: widgets.convergence_explorer(*d, lr="fast", **TINY),
        lambda d: experiments.convergence_run(*d, num_participants=10, lr="fast")),
    "alpha=0": (
        lambda d: widgets.partition_explorer(*d, alpha=0.0),
        lambda d: split(*d, 5, scheme="quantity", alpha=0.0)),
    "alpha=-1 (covariate)": (
        lambda d: widgets.partition_explorer(*d, scheme="covariate", alpha=-1.0),
        lambda d: split(*d, 5, scheme="covariate", alpha=-1.0)),
    "scheme unknown": (
        lambda d: widgets.partition_explorer(*d, scheme="label"),
        lambda d: split(*d, 5, scheme="label", alpha=0.5)),
    "local_epochs=0": (
        lambda d: widgets.local_epochs_explorer(_federation(d), lr=0.1, local_epochs=0, **TINY),
        lambda d: experiments.local_epochs_runs(_federation(d), lr=0.1, local_epochs=0, **TINY)),
    "spread=-1": (
        lambda d: widgets.drift_explorer(spread=-1.0, **TINY),
        lambda d: experiments.drift_runs(spread=-1.0, mu=1.0, **TINY)),
    "mu=-1": (
        lambda d: widgets.drift_explorer(mu=-1.0, **TINY),
        lambda d: experiments.drift_runs(spread=1.0, mu=-1.0, **TINY)),
    "num_participants=0 (drift)": (
        lambda d: widgets.drift_explorer(num_participants=0, **TINY),
        lambda d: experiments.drift_runs(spread=1.0, mu=1.0, num_participants=0, **TINY)),
}


@pytest.mark.parametrize("name", REFUSED)
def test_invalid_arguments_are_refused_like_simulate_and_split_before_any_widget(name, data):
    """The explorers clamped them silently (participation=5 ran with 100%, alpha=0 with 0.01)."""
    explorer, function = REFUSED[name]
    with pytest.raises((ValueError, TypeError)) as expected:
        function(data)
    before = widget_count()
    with pytest.raises(expected.type) as refused:
        explorer(data)
    assert str(refused.value) == str(expected.value)
    assert widget_count() == before


@pytest.mark.parametrize("make, error, match", [
    (lambda d: widgets.convergence_explorer(*d, controls="lr"), TypeError, "^controls"),
    (lambda d: widgets.convergence_explorer(*d, controls=("lr", "mu")), ValueError, "^controls"),
    (lambda d: widgets.convergence_explorer(object(), d[1]), TypeError, "^X"),
    (lambda d: widgets.partition_explorer(*d, feature=2), ValueError, "^feature"),
    (lambda d: widgets.partition_explorer(_federation(d), d[1]), TypeError, "^X"),
    (lambda d: widgets.local_epochs_explorer(_federation(d), lr=0.1, target_loss="low"),
     TypeError, "^target_loss"),
    (lambda d: widgets.local_epochs_explorer(_federation(d), lr=0.1, target_loss=0.0),
     ValueError, "^target_loss"),
    (lambda d: widgets.compression_explorer(_federation(d), None, cache=[]), TypeError,
     "^cache"),
    (lambda d: widgets.local_epochs_explorer(_federation(d), lr=0.1, target_loss=1e308),
     ValueError, "^target_loss"),
    (lambda d: widgets.partition_explorer(*d, scheme=np.array(["iid", "iid"])), TypeError,
     "^scheme"),
])
def test_other_bad_arguments_are_named(make, error, match, data):
    before = widget_count()
    with pytest.raises(error, match=match):
        make(data)
    assert widget_count() == before


def test_valid_values_outside_the_default_slider_ranges_are_kept(data):
    ex = widgets.convergence_explorer(*data, participation=0.05, lr=50.0, num_participants=20,
                                      **TINY)
    assert ex.values == {"lr": 50.0, "num_participants": 20, "participation": 0.05}
    assert "1 per round (participation 5%)" in ex.ax.get_title()
    ex = widgets.partition_explorer(*data, alpha=1000.0)
    assert ex.values["alpha"] == 1000.0
    ex = widgets.partition_explorer(*data, scheme="covariate", alpha=None)
    assert set(ex.controls) == {"num_participants"}


def test_explorer_texts_use_singular_for_one(data):
    """"1 participants" and "8 participants, 1 rows each" were shown."""
    X, y = data
    ex = widgets.partition_explorer(X[:8], y[:8], scheme="iid", num_participants=8)
    assert ex.ax.get_title() == "8 participants, 1 row each"
    ex.controls["num_participants"].value = 1
    assert ex.ax.get_title() == "1 participant, 8 rows each"
    assert "Federation(1 participant," in ex.status.value
    ex = widgets.convergence_explorer(X, y, num_participants=1, **TINY)
    assert ex.ax.get_title().startswith("FedSGD: 1 participant, 1 per round")


def test_drift_explorer_names_mu_when_fedprox_diverges_because_of_it():
    """It said "lr = 0.1 is too large" when lr·mu > 2 made FedProx diverge."""
    small = dict(num_participants=4, samples_per_participant=10, num_features=2, **TINY)
    ex = widgets.drift_explorer(mu=25.0, **small)
    status = html.unescape(ex.status.value)
    assert "FedProx diverged at round" in status
    assert "stable only if lr·(λ_max(H_k) + mu) < 2" in status and "lower mu" in status
    assert "lr = 0.1 is too large" not in status
    ex.controls["mu"].value = 1.0
    assert "diverged" not in ex.status.value


def test_a_diverging_fedavg_names_the_local_step_condition(data):
    ex = widgets.convergence_explorer(*data, algorithm="fedavg", lr=3.0, local_epochs=2, **TINY)
    status = html.unescape(ex.status.value)
    assert "FedAvg diverged at round" in status and "lr·λ_max(H_k) < 2" in status


def test_explorers_draw_into_an_image_widget_not_an_output_widget():
    """An Output widget made nbclient (nbconvert --execute) wait for its timeout now and then
    (notebook 05's stall, issue 14): the picture goes into an Image widget instead."""
    import ipywidgets
    X, y, _, _ = fedlite.make_linear_data(60, 2, seed=0)
    explorer = widgets.convergence_explorer(X, y, num_participants=3, lr=0.1, num_rounds=5)

    def walk(widget):
        yield widget
        for child in getattr(widget, "children", ()):
            yield from walk(child)

    found = list(walk(explorer.widget))
    assert not any(isinstance(w, ipywidgets.Output) for w in found)
    images = [w for w in found if isinstance(w, ipywidgets.Image)]
    assert len(images) == 1 and images[0].value == explorer.png
