"""fedlite.plotting: every plot returns labelled Axes, draws the run's numbers, and never a NaN."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import fedlite
from fedlite import plotting
from fedlite.data import make_linear_data, make_sine_data
from fedlite.partition import split
from fedlite.simulation import simulate


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def federation():
    X, y, _, _ = make_linear_data(80, 2, seed=0)
    return split(X, y, 4)


@pytest.fixture(scope="module")
def runs(federation):
    return {"slow": simulate(federation, lr=0.05, num_rounds=10),
            "fast": simulate(federation, lr=0.5, num_rounds=10),
            "too fast": simulate(federation, lr=20.0, num_rounds=10)}


def new_ax():
    return Figure().subplots()


def assert_labelled(ax):
    assert isinstance(ax, Axes)
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def all_ydata(ax):
    return np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.lines])


@pytest.mark.parametrize("x", ["rounds", "bytes"])
def test_plot_loss_draws_each_history(runs, x):
    ax = plotting.plot_loss(runs, x=x)
    assert_labelled(ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(runs)
    assert ax.get_yscale() == "log"
    drawn = {line.get_label(): line for line in ax.lines}
    for label, history in runs.items():
        np.testing.assert_array_equal(drawn[label].get_ydata(), history.loss)
    expected_x = (np.arange(11) if x == "rounds" else runs["slow"].bytes_total / 1e3)
    np.testing.assert_allclose(drawn["slow"].get_xdata(), expected_x)
    assert ax.get_xlabel() == ("round" if x == "rounds" else "data sent, both ways (kB)")
    assert ax.get_ylabel() == "training loss (mean squared error / 2)"


def test_plot_loss_marks_a_diverged_run_without_nan(runs):
    diverged = runs["too fast"]
    assert diverged.diverged
    ax = plotting.plot_loss(diverged, ax=new_ax(), logy=False)
    assert np.isfinite(all_ydata(ax)).all()
    texts = [t.get_text() for t in ax.texts]
    assert f"diverged at round {diverged.diverged_at}" in texts
    marker = [line for line in ax.lines if line.get_marker() == "x"][0]
    assert marker.get_xdata()[0] == diverged.diverged_at - 1  # the last finite round
    assert marker.get_ydata()[0] == diverged.loss[-1]
    assert ax.get_yscale() == "linear"


def test_plot_loss_takes_one_history_a_list_or_labels(runs):
    one = plotting.plot_loss(runs["slow"], ax=new_ax())
    assert one.get_legend().get_texts()[0].get_text() == "FedSGD, lr=0.05"
    two = plotting.plot_loss([runs["slow"], runs["fast"]], ax=new_ax(), labels=["a", "b"])
    assert [t.get_text() for t in two.get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="x must be"):
        plotting.plot_loss(runs["slow"], ax=new_ax(), x="seconds")


def test_bytes_unit_reads_well():
    assert plotting.bytes_unit(999_999) == ("kB", 1e3)
    assert plotting.bytes_unit(2e6) == ("MB", 1e6)


def test_plot_participant_losses(runs):
    history = runs["too fast"]
    ax = plotting.plot_participant_losses(history)
    assert_labelled(ax)
    drawn = [line for line in ax.lines if len(line.get_ydata()) == len(history.loss)]
    assert len(drawn) == 4 + 1  # every participant, then the global loss
    np.testing.assert_array_equal(drawn[-1].get_ydata(), history.loss)
    for k in range(4):
        np.testing.assert_array_equal(drawn[k].get_ydata(), history.participant_loss[:, k])
    assert np.isfinite(all_ydata(ax)).all()


@pytest.mark.parametrize("K", [3, 12, 25])
def test_plot_partition_colours_rows_by_owner(K):
    X, y, _, _ = make_linear_data(60, 3, seed=1)
    federation = split(X, y, K, scheme="quantity", alpha=1.0)
    ax = plotting.plot_partition(federation, ax=new_ax(), feature=2)
    assert_labelled(ax)
    assert f"{K} participants" in ax.get_title()
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(points) == 60
    assert set(map(tuple, points)) == set(zip(federation.X[:, 2], federation.y))
    if K <= 20:
        assert len(ax.get_legend().get_texts()) == K
    else:
        assert len(ax.figure.axes) == 2  # the colorbar
    with pytest.raises(ValueError, match="feature"):
        plotting.plot_partition(federation, ax=new_ax(), feature=3)


def test_plot_sizes(federation):
    ax = plotting.plot_sizes(federation)
    assert_labelled(ax)
    assert [patch.get_height() for patch in ax.patches] == list(federation.sizes)


def test_plot_fit_1d_draws_the_prediction():
    X, y = make_sine_data(30, seed=0)
    ax = plotting.plot_fit_1d(X, y, np.sin)
    assert_labelled(ax)
    (curve,) = ax.lines
    np.testing.assert_allclose(curve.get_ydata(), np.sin(curve.get_xdata()))
    assert curve.get_xdata().min() == X.min() and curve.get_xdata().max() == X.max()
    with pytest.raises(ValueError, match="1-feature"):
        plotting.plot_fit_1d(np.ones((5, 2)), np.ones(5), np.sin)


@pytest.mark.parametrize("K", [2, 3, 5])
def test_plot_sizes_ticks_only_whole_participants_and_rows(K):
    """The bar chart had ticks at participant 2.5 (and rows 0.5)."""
    X, y, _, _ = make_linear_data(K + 1, 1, seed=0)
    ax = plotting.plot_sizes(split(X, y, K), ax=new_ax())
    ax.figure.canvas.draw()
    for ticks in (ax.get_xticks(), ax.get_yticks()):
        assert np.array_equal(ticks, np.round(ticks))


@pytest.mark.parametrize("n, K, title", [(8, 8, "8 participants, 1 row each"),
                                         (5, 1, "1 participant, 5 rows each")])
def test_plot_partition_title_is_in_good_english(n, K, title):
    """The title read "8 participants, 1 rows each"."""
    X, y, _, _ = make_linear_data(n, 1, seed=0)
    assert plotting.plot_partition(split(X, y, K), ax=new_ax()).get_title() == title


# ---- classification data: label histograms and digit images -------------------------------

def _labelled_federation(K=6, num_classes=10, n=300, scheme="dirichlet", seed=0):
    X = np.random.default_rng(seed).standard_normal((n, 64))
    y = np.arange(n) % num_classes
    return split(X, y, K, scheme=scheme, alpha=0.3 if scheme == "dirichlet" else None, seed=seed)


def _bar_heights(ax, K, C):
    """(K, C): the height of the bar of class c over participant k, from the drawn patches."""
    heights = np.zeros((K, C))
    for c, container in enumerate(ax.containers):
        for k, patch in enumerate(container.patches):
            heights[k, c] = patch.get_height()
    return heights


@pytest.mark.parametrize("K, num_classes", [(1, 2), (6, 10), (20, 15), (4, 25)])
def test_plot_label_histogram_stacks_each_participants_classes(K, num_classes):
    fed = _labelled_federation(K, num_classes)
    ax = plotting.plot_label_histogram(fed, ax=new_ax() if K > 1 else None)
    assert_labelled(ax)
    expected = np.array([np.bincount(fed.participant(k)[1].astype(int), minlength=num_classes)
                         for k in range(K)])
    np.testing.assert_array_equal(_bar_heights(ax, K, num_classes), expected)
    for c, container in enumerate(ax.containers):      # stacked: class c starts where c-1 ended
        bottoms = [patch.get_y() for patch in container.patches]
        np.testing.assert_array_equal(bottoms, expected[:, :c].sum(axis=1))
    if num_classes <= 20:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            str(c) for c in range(num_classes)]
    else:
        assert len(ax.figure.axes) == 2  # the colorbar
    assert f"{K} participant" in ax.get_title() and f"{num_classes} classes" in ax.get_title()


def test_plot_label_histogram_with_more_classes_than_the_labels_show():
    fed = _labelled_federation(3, 4)
    ax = plotting.plot_label_histogram(fed, ax=new_ax(), num_classes=10)
    assert len(ax.containers) == 10
    assert _bar_heights(ax, 3, 10)[:, 4:].sum() == 0


def test_plot_digits_draws_each_image_in_its_cell():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(size=(7, 64)), np.arange(7) % 10
    ax = plotting.plot_digits(X, y, num_images=5, ncols=3)
    assert isinstance(ax, Axes) and ax.get_title() == "5 images (8x8 pixels)"
    (image,) = ax.images
    mosaic = image.get_array()
    assert mosaic.shape == (2 * 11, 3 * 9 - 1)          # 2 rows of 3 cells, 3 pixels for a label
    for i in range(5):
        row, col = divmod(i, 3)
        cell = mosaic[row * 11 + 3: row * 11 + 11, col * 9: col * 9 + 8]
        np.testing.assert_array_equal(cell, X[i].reshape(8, 8))
    assert mosaic.mask[:, 8].all() and mosaic.mask[-8:, -8:].all()   # gaps, the empty 6th cell
    assert [t.get_text() for t in ax.texts] == [str(label) for label in y[:5]]


def test_plot_digits_marks_wrong_predictions_in_red():
    y, y_hat = np.array([1, 2, 3, 4]), np.array([1, 7, 3, 0])
    ax = plotting.plot_digits(np.ones((4, 16)), y, ax=new_ax(), y_hat=y_hat)
    assert [t.get_text() for t in ax.texts] == ["1", "7", "3", "0"]
    assert [t.get_color() for t in ax.texts] == ["black", "red", "black", "red"]
    assert "4x4 pixels" in ax.get_title() and "red: wrong, 2 of 4" in ax.get_title()


def test_plot_digits_without_labels_and_with_fewer_images_than_asked():
    ax = plotting.plot_digits(np.zeros((3, 64)), num_images=20)
    assert len(ax.texts) == 0 and ax.get_title() == "3 images (8x8 pixels)"
    assert ax.images[0].get_array().shape == (8, 3 * 9 - 1)


class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array for you")


BAD_PLOTS = {
    "no histories": (lambda runs, fed: plotting.plot_loss([]), ValueError, "^histories"),
    "a string as history": (lambda runs, fed: plotting.plot_loss("run"), TypeError,
                            r"^histories\[0\] must be a fedlite History"),
    "labels too short": (lambda runs, fed: plotting.plot_loss(runs, labels=["a"]), ValueError,
                         "^labels must have one label per history"),
    "labels a string": (lambda runs, fed: plotting.plot_loss(runs, labels="abc"), TypeError,
                        "^labels"),
    "x unknown": (lambda runs, fed: plotting.plot_loss(runs, x="time"), ValueError, "^x must"),
    "logy not a bool": (lambda runs, fed: plotting.plot_loss(runs, logy="no"), TypeError,
                        "^logy"),
    "ax not an Axes": (lambda runs, fed: plotting.plot_loss(runs, ax="left"), TypeError, "^ax"),
    "participant losses of a dict": (lambda runs, fed: plotting.plot_participant_losses(runs),
                                     TypeError, "^history"),
    "partition of arrays": (lambda runs, fed: plotting.plot_partition(fed.X), TypeError,
                            "^federation"),
    "feature out of range": (lambda runs, fed: plotting.plot_partition(fed, feature=5),
                             ValueError, "^feature"),
    "feature a float": (lambda runs, fed: plotting.plot_partition(fed, feature=0.0), TypeError,
                        "^feature"),
    "sizes of None": (lambda runs, fed: plotting.plot_sizes(None), TypeError, "^federation"),
    "bytes_unit string": (lambda runs, fed: plotting.bytes_unit("1e6"), TypeError, "^num_bytes"),
    "bytes_unit NaN": (lambda runs, fed: plotting.bytes_unit(np.nan), ValueError, "^num_bytes"),
    "bytes_unit negative": (lambda runs, fed: plotting.bytes_unit(-1), ValueError, "^num_bytes"),
    "bytes_scale zero": (lambda runs, fed: plotting.loss_curve(runs["slow"], "bytes", 0),
                         ValueError, "^bytes_scale"),
    "describe None": (lambda runs, fed: plotting.describe(None), TypeError, "^history"),
    "fit X strings": (lambda runs, fed: plotting.plot_fit_1d([["a"]], [1.0], np.sin), TypeError,
                      "^X"),
    "fit X unconvertible": (lambda runs, fed: plotting.plot_fit_1d(_Unconvertible(), [1.0],
                                                                   np.sin), TypeError, "^X"),
    "fit X NaN": (lambda runs, fed: plotting.plot_fit_1d([np.nan, 1.0], [1.0, 2.0], np.sin),
                  ValueError, "^X"),
    "fit y too short": (lambda runs, fed: plotting.plot_fit_1d([0.0, 1.0], [1.0], np.sin),
                        ValueError, "^y"),
    "fit predict not callable": (lambda runs, fed: plotting.plot_fit_1d([0.0, 1.0], [1.0, 2.0],
                                                                        "sin"), TypeError,
                                 "^predict"),
    "fit label not a string": (lambda runs, fed: plotting.plot_fit_1d(
        [0.0, 1.0], [1.0, 2.0], np.sin, label=_Unconvertible()), TypeError, "^label"),
    "curve on no Axes": (lambda runs, fed: plotting.LossCurve(None), TypeError, "^ax"),
    "curve lengths differ": (lambda runs, fed: plotting.LossCurve(new_ax()).set_data(
        [0.0, 1.0], [1.0]), ValueError, "^loss"),
    "curve NaN loss": (lambda runs, fed: plotting.LossCurve(new_ax()).set_data(
        [0.0, 1.0], [1.0, np.nan]), ValueError, "^loss"),
    "curve diverged_at float": (lambda runs, fed: plotting.LossCurve(new_ax()).set_data(
        [0.0, 1.0], [1.0, 2.0], 1.5), TypeError, "^diverged_at"),
    "fit predict wrong shape": (lambda runs, fed: plotting.plot_fit_1d(
        [0.0, 1.0], [1.0, 2.0], lambda X: np.ones(3)), ValueError, r"^predict\(X\)"),
    "histogram of arrays": (lambda runs, fed: plotting.plot_label_histogram(fed.y), TypeError,
                            "^federation"),
    "histogram of regression data": (lambda runs, fed: plotting.plot_label_histogram(fed),
                                     ValueError, "^the federation's y must hold whole-number "
                                                 "class labels.*plot_partition"),
    "histogram num_classes too small": (lambda runs, fed: plotting.plot_label_histogram(
        _labelled_federation(), num_classes=5), ValueError,
        r"^the federation's y must hold class labels 0..4 \(num_classes = 5\)"),
    "histogram num_classes a float": (lambda runs, fed: plotting.plot_label_histogram(
        _labelled_federation(), num_classes=10.0), TypeError, "^num_classes"),
    "histogram num_classes zero": (lambda runs, fed: plotting.plot_label_histogram(
        _labelled_federation(), num_classes=0), ValueError, "^num_classes"),
    "histogram ax": (lambda runs, fed: plotting.plot_label_histogram(_labelled_federation(),
                                                                     ax="left"), TypeError, "^ax"),
    "histogram of a label of 10**9": (lambda runs, fed: plotting.plot_label_histogram(
        fedlite.Federation(np.zeros((2, 1)), [0, 10**9], [0, 1, 2], [0, 1])), ValueError,
        "^the largest label too large: 2,000,000,002 values"),
    "histogram num_classes huge": (lambda runs, fed: plotting.plot_label_histogram(
        _labelled_federation(), num_classes=10**12), ValueError, "^num_classes too large"),
    "digits not square": (lambda runs, fed: plotting.plot_digits(np.ones((3, 10))), ValueError,
                          "^X must hold square images"),
    "digits X 1-D": (lambda runs, fed: plotting.plot_digits(np.ones(64)), ValueError, "^X"),
    "digits X NaN": (lambda runs, fed: plotting.plot_digits(np.full((2, 4), np.nan)), ValueError,
                     "^X"),
    "digits X unconvertible": (lambda runs, fed: plotting.plot_digits(_Unconvertible()),
                               TypeError, "^X"),
    "digits y too short": (lambda runs, fed: plotting.plot_digits(np.ones((3, 4)), [1, 2]),
                           ValueError, "^y must be"),
    "digits y fractional": (lambda runs, fed: plotting.plot_digits(np.ones((2, 4)), [1, 2.5]),
                            ValueError, "^y must hold whole-number"),
    "digits y_hat strings": (lambda runs, fed: plotting.plot_digits(np.ones((2, 4)), [1, 2],
                                                                    y_hat=["a", "b"]),
                             TypeError, "^y_hat"),
    "digits num_images zero": (lambda runs, fed: plotting.plot_digits(np.ones((2, 4)),
                                                                      num_images=0),
                               ValueError, "^num_images"),
    "digits ncols a float": (lambda runs, fed: plotting.plot_digits(np.ones((2, 4)), ncols=2.0),
                             TypeError, "^ncols"),
    "digits ax": (lambda runs, fed: plotting.plot_digits(np.ones((2, 4)), ax=[]), TypeError,
                  "^ax"),
}


@pytest.mark.parametrize("name", BAD_PLOTS)
def test_bad_arguments_are_named_and_leave_no_figure_behind(name, runs, federation):
    make, error, match = BAD_PLOTS[name]
    figures = plt.get_fignums()
    with pytest.raises(error, match=match):
        make(runs, federation)
    assert plt.get_fignums() == figures


def test_describe_names_scaffold_and_the_server_optimiser():
    X, y, _, _ = fedlite.make_linear_data(40, 2, seed=0)
    fed = fedlite.split(X, y, 4)
    run = fedlite.simulate(fed, algorithm="scaffold", num_rounds=1, lr=0.1,
                           server_optimizer="adam", server_lr=0.05)
    assert plotting.describe(run) == "SCAFFOLD, lr=0.1, 1 local epoch, server adam lr=0.05"
