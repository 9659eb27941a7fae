"""Plots of the course: each function takes `ax=None`, draws, and returns the matplotlib Axes.

With ax=None a new figure is made with `plt.subplots()` (a notebook shows it below the cell);
pass an ax to draw into a figure of your own.  Nothing here runs a simulation: give the
functions a `History` from `fedlite.simulation.simulate`, a `Federation` from `fedlite.split`,
or images such as `fedlite.load_digits`'s.

A run that diverged is drawn up to its last finite round and marked with an "x" and the words
"diverged at round r" (the History never holds NaN or inf, so neither does a plot).
Arguments are checked before anything is drawn (a TypeError/ValueError naming the argument),
so a bad call leaves no half-made figure behind.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from ..models import as_labels
from ..partition import Federation
from ..simulation import History
from ..validation import as_float, as_float_array, as_int, check_allocation

LOSS_LABEL = "training loss (mean squared error / 2)"
ALGORITHM_NAMES = {"fedsgd": "FedSGD", "fedavg": "FedAvg", "fedprox": "FedProx",
                   "scaffold": "SCAFFOLD"}


class LossCurve:
    """A run's loss curve, redrawable in place: a line, plus an "x" and a note if it diverged.

    The widgets keep one LossCurve per run and call `set_data` when a slider moves.
    """

    def __init__(self, ax, label=None, **style):
        ax = _check_ax(ax, allow_none=False)
        _check_label(label, allow_none=True)
        (self.line,) = ax.plot([], [], label=label, **style)
        color = self.line.get_color()
        (self.marker,) = ax.plot([], [], "x", color=color, markersize=10, markeredgewidth=2)
        # left of the "x", at its height: clear of the title, and above a line that climbed to it
        self.note = ax.annotate("", (0, 1), xytext=(-10, 0), textcoords="offset points",
                                ha="right", va="center", color=color, fontsize=9)

    def set_data(self, xs, loss, diverged_at=None):
        """Draw loss against xs; if diverged_at is a round, mark the last point as the stop.

        xs and loss: 1-D, the same length, finite (a History's loss always is).
        """
        xs = _as_curve(xs, "xs")
        loss = _as_curve(loss, "loss", len(xs))
        if diverged_at is not None:
            diverged_at = as_int(diverged_at, "diverged_at", minimum=1)
        self.line.set_data(xs, loss)
        if diverged_at is None or len(xs) == 0:
            self.marker.set_data([], [])
            self.note.set_text("")
            return
        self.marker.set_data(xs[-1:], loss[-1:])
        self.note.xy = (xs[-1], loss[-1])
        self.note.set_text(f"diverged at round {diverged_at}")


def loss_curve(history, x="rounds", bytes_scale=1.0):
    """(xs, loss) of a run: xs = rounds 0..R, or the cumulative data sent (bytes / bytes_scale)."""
    history = check_history(history)
    x = _check_x(x)
    if x == "rounds":
        return np.arange(len(history.loss)), history.loss
    bytes_scale = as_float(bytes_scale, "bytes_scale")
    if bytes_scale <= 0:
        raise ValueError(f"bytes_scale must be > 0 (e.g. 1e3 for kB); got {bytes_scale}")
    return history.bytes_total / bytes_scale, history.loss


def bytes_unit(num_bytes):
    """("kB", 1e3) or ("MB", 1e6): the unit in which num_bytes reads best (decimal units)."""
    num_bytes = as_float(num_bytes, "num_bytes")
    if num_bytes < 0:
        raise ValueError(f"num_bytes must be >= 0; got {num_bytes}")
    return ("MB", 1e6) if num_bytes >= 1e6 else ("kB", 1e3)


def describe(history):
    """A short legend label for a run, e.g. "FedAvg, lr=0.1, 5 local epochs"."""
    c = check_history(history).config
    algorithm = c["algorithm"]
    label = f"{ALGORITHM_NAMES.get(algorithm, algorithm)}, lr={c['lr']:g}"
    if algorithm != "fedsgd":
        label += f", {count_text(c['local_epochs'], 'local epoch')}"
    if algorithm == "fedprox":
        label += f", mu={c['mu']:g}"
    optimizer = c.get("server_optimizer", "sgd") if hasattr(c, "get") else "sgd"
    if optimizer != "sgd" or c.get("server_lr", 1.0) != 1.0:
        label += f", server {optimizer} lr={c['server_lr']:g}"
    return label


def plot_loss(histories, ax=None, x="rounds", logy=True, labels=None):
    """Global training loss of runs against the round (x="rounds") or the data sent (x="bytes").

    histories: a History, a list of them, or a dict label -> History (labels= overrides labels).
    """
    if isinstance(histories, dict):
        labels = list(histories) if labels is None else labels
        histories = list(histories.values())
    elif not isinstance(histories, (list, tuple)):
        histories = [histories]
    if not histories:
        raise ValueError("histories must hold at least one History")
    for i, history in enumerate(histories):
        check_history(history, f"histories[{i}]")
    labels = [describe(h) for h in histories] if labels is None else _check_labels(labels,
                                                                                   len(histories))
    x = _check_x(x)
    if not isinstance(logy, (bool, np.bool_)):
        raise TypeError(f"logy must be True or False; got {logy!r}")
    ax = _check_ax(ax)
    unit, scale = bytes_unit(max(h.bytes_total[-1] for h in histories))
    for history, label in zip(histories, labels):
        LossCurve(ax, label).set_data(*loss_curve(history, x, scale), history.diverged_at)
    ax.relim()
    ax.autoscale_view()
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("round" if x == "rounds" else f"data sent, both ways ({unit})")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("Training loss per round" if x == "rounds" else "Training loss against data sent")
    ax.legend()
    return ax


def plot_participant_losses(history, ax=None):
    """Each participant's loss on its own data under the global model (thin); the global loss."""
    history = check_history(history)
    ax = _check_ax(ax)
    rounds = np.arange(len(history.loss))
    lines = ax.plot(rounds, history.participant_loss, linewidth=0.8, alpha=0.6)
    lines[0].set_label(f"each participant ({len(lines)})")
    LossCurve(ax, "global (all data)", color="black", linewidth=2.5).set_data(
        rounds, history.loss, history.diverged_at)
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(f"Loss of each participant: {describe(history)}")
    ax.legend()
    return ax


def plot_partition(federation, ax=None, feature=0):
    """Who holds which data: y against X[:, feature], one colour per participant."""
    federation = check_federation(federation)
    feature = as_int(feature, "feature", minimum=0, maximum=federation.num_features - 1)
    ax = _check_ax(ax)
    K, x = federation.num_participants, federation.X[:, feature]
    if K <= 20:
        colors = plt.get_cmap("tab10" if K <= 10 else "tab20").colors
        for k in range(K):
            rows = slice(federation.offsets[k], federation.offsets[k + 1])
            ax.scatter(x[rows], federation.y[rows], s=12, color=colors[k], label=f"{k}")
        ax.legend(title="participant", fontsize=8, ncol=2 if K > 10 else 1)
    else:
        points = ax.scatter(x, federation.y, s=12, c=federation.owner, cmap="viridis")
        ax.figure.colorbar(points, ax=ax, label="participant")
    ax.set_xlabel(f"feature x_{feature}")
    ax.set_ylabel("target y")
    ax.set_title(f"{count_text(K, 'participant')}, {_sizes_text(federation.sizes)}")
    return ax


def plot_sizes(federation, ax=None):
    """A bar chart of the number of rows each participant holds."""
    federation = check_federation(federation)
    ax = _check_ax(ax)
    ax.bar(np.arange(federation.num_participants), federation.sizes)
    for axis in (ax.xaxis, ax.yaxis):   # participants and rows are whole numbers
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("participant")
    ax.set_ylabel("rows")
    ax.set_title(f"Rows per participant ({federation.num_samples} in total)")
    return ax


def plot_label_histogram(federation, ax=None, num_classes=None):
    """Label skew at a glance: one bar per participant, its rows of each class stacked.

    The federation's y must hold class labels 0..C-1 (e.g. from `split(..., scheme="dirichlet")`
    on `load_digits`); C = num_classes, or the largest label + 1 when None.  Up to 20 classes get
    a legend, more a colorbar.
    """
    federation = check_federation(federation)
    if num_classes is not None:
        num_classes = as_int(num_classes, "num_classes", minimum=1)
    why = None if num_classes is None else f"num_classes = {num_classes}"
    try:
        labels = as_labels(federation.y, num_classes, name="the federation's y", why=why)
    except ValueError as exc:
        raise ValueError(f"{exc} (a label histogram needs classification data; for regression "
                         f"data see plot_partition)") from None
    labels = labels.astype(np.int64)
    C = int(labels.max()) + 1 if num_classes is None else num_classes
    K = federation.num_participants
    check_allocation(K * C, "num_classes" if num_classes is not None else "the largest label")
    counts = np.bincount(federation.owner * C + labels, minlength=K * C).reshape(K, C)
    ax = _check_ax(ax)
    colors = _class_colors(C)
    bottom = np.zeros(K, dtype=np.int64)
    for c in range(C):
        ax.bar(np.arange(K), counts[:, c], bottom=bottom, width=0.85, color=colors[c],
               label=f"{c}", linewidth=0)
        bottom += counts[:, c]
    if C <= 20:
        ax.legend(title="class", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  ncol=2 if C > 10 else 1)
    else:
        mappable = plt.cm.ScalarMappable(plt.Normalize(-0.5, C - 0.5), cmap="viridis")
        ax.figure.colorbar(mappable, ax=ax, label="class")
    for axis in (ax.xaxis, ax.yaxis):   # participants and rows are whole numbers
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("participant")
    ax.set_ylabel("rows of each class")
    ax.set_title(f"Labels of each participant ({count_text(K, 'participant')}, "
                 f"{count_text(C, 'class', 'classes')})")
    return ax


def plot_digits(X, y=None, ax=None, num_images=20, ncols=10, y_hat=None):
    """The first num_images rows of X drawn as square images (8x8 for the digits), in a grid.

    X (n, d) with d a square (64 = 8x8): each row is an image, its pixel rows one after another.
    y (n,): labels written above the images; y_hat (n,): predicted labels, written instead, in
    red where they differ from y.  Dark = large values (ink).  ncols: images per grid row.
    """
    X = as_float_array(X, "X", 2, ("n", "d"))
    n, d = X.shape
    side = math.isqrt(d)
    if side * side != d:
        raise ValueError(f"X must hold square images, one per row (d = side², e.g. 64 for 8x8 "
                         f"pixels); got rows of {d} values")
    if y is not None:
        y = as_labels(y, n=n, name="y").astype(np.int64)
    if y_hat is not None:
        y_hat = as_labels(y_hat, n=n, name="y_hat").astype(np.int64)
    num_images = min(as_int(num_images, "num_images", minimum=1), n)
    ncols = min(as_int(ncols, "ncols", minimum=1), num_images)
    nrows = -(-num_images // ncols)
    labelled = y is not None or y_hat is not None
    top = 3 if labelled else 1      # pixels above each image: room for its label, or a gap
    cell_w, cell_h = side + 1, side + top
    shape = (nrows * cell_h - (0 if labelled else 1), ncols * cell_w - 1)
    mosaic = np.ma.masked_array(np.zeros(shape), mask=True)   # the gaps stay masked (grey)
    if ax is None:                  # a figure of our own, fitted to the grid: 0.56 in per image
        width, height = shape[1] * 0.56 / side + 0.2, shape[0] * 0.56 / side + 0.45
        ax = _check_ax(ax, figsize=(width, height))
        ax.figure.subplots_adjust(left=0.1 / width, right=1 - 0.1 / width,
                                  bottom=0.05 / height, top=1 - 0.4 / height)
    ax = _check_ax(ax)
    for i in range(num_images):
        row, col = divmod(i, ncols)
        y0, x0 = row * cell_h + (top if labelled else 0), col * cell_w
        mosaic[y0:y0 + side, x0:x0 + side] = X[i].reshape(side, side)
    images = X[:num_images]
    ax.imshow(mosaic, cmap=plt.get_cmap("gray_r").with_extremes(bad="0.85"),
              vmin=images.min(), vmax=images.max(), interpolation="nearest")
    wrong = 0
    for i in range(num_images if labelled else 0):
        row, col = divmod(i, ncols)
        label = y[i] if y_hat is None else y_hat[i]
        is_wrong = y is not None and y_hat is not None and y_hat[i] != y[i]
        wrong += is_wrong
        ax.text(col * cell_w + (side - 1) / 2, row * cell_h + top - 0.7, f"{label}",
                ha="center", va="bottom", fontsize=8, color="red" if is_wrong else "black",
                fontweight="bold" if is_wrong else "normal")
    ax.set_xticks([])
    ax.set_yticks([])
    title = f"{count_text(num_images, 'image')} ({side}x{side} pixels)"
    if y_hat is not None:
        title += ", predicted labels" + (f" (red: wrong, {wrong} of {num_images})"
                                         if y is not None else "")
    ax.set_title(title, fontsize=10)
    return ax


def plot_fit_1d(X, y, predict, ax=None, label="model"):
    """1-feature data (points) and a model's prediction y_hat = predict(X) along x (a curve).

    X: (n, 1) or (n,); y: (n,); predict: a function of a (200, 1) grid returning 200 values.
    """
    try:
        X = np.asarray(X)
    except Exception as exc:  # ragged lists, objects whose __array__ raises
        raise TypeError(f"X must be a numeric array of shape (n, 1) or (n,); {exc}") from None
    X = as_float_array(X[:, None] if X.ndim == 1 else X, "X", 2, ("n", "d"))
    if X.shape[1] != 1:
        raise ValueError(f"X must be 1-feature data for plot_fit_1d, shape (n, 1) or (n,); "
                         f"got shape {X.shape}")
    y = as_float_array(y, "y", 1, (X.shape[0],))
    if not callable(predict):
        raise TypeError(f"predict must be a function of X, e.g. lambda X: X @ w + b; "
                        f"got {type(predict).__name__}")
    _check_label(label)
    grid = np.linspace(X.min(), X.max(), 200)[:, None]
    y_hat = as_float_array(np.ravel(predict(grid)), "predict(X)", 1, (200,))
    ax = _check_ax(ax)
    ax.scatter(X[:, 0], y, s=12, alpha=0.5, color="gray", label="data")
    ax.plot(grid[:, 0], y_hat, color="C1", linewidth=2.5, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Data and the model's prediction")
    ax.legend()
    return ax


def count_text(n, noun, plural=None):
    """ "1 participant", "8 participants": a count with its noun, singular only for 1.

    plural: the plural where it is not noun + "s" (e.g. "classes")."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def check_history(history, name="history"):
    """`history` if it is a fedlite History (the result of `simulate`), else TypeError."""
    if not isinstance(history, History):
        raise TypeError(f"{name} must be a fedlite History (the result of fedlite.simulate); "
                        f"got {type(history).__name__}")
    return history


def check_federation(federation, name="federation"):
    """`federation` if it is a fedlite Federation (e.g. from fedlite.split), else TypeError."""
    if not isinstance(federation, Federation):
        raise TypeError(f"{name} must be a fedlite Federation (make one with fedlite.split); "
                        f"got {type(federation).__name__}")
    return federation


def _check_ax(ax, allow_none=True, figsize=None):
    """A new Axes (ax=None; of figsize inches, None = matplotlib's default) or the Axes given."""
    if ax is None and allow_none:
        _, ax = plt.subplots(figsize=figsize)
        return ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()) or None; "
                        f"got {type(ax).__name__}")
    return ax


def _class_colors(num_classes):
    """num_classes distinct colours: tab10 or tab20 for up to 20 classes, else viridis."""
    if num_classes <= 20:
        return plt.get_cmap("tab10" if num_classes <= 10 else "tab20").colors
    return plt.get_cmap("viridis")(np.linspace(0, 1, num_classes))


def _as_curve(values, name, length="n"):
    """1-D finite float64 values of the given length; no values at all is an empty curve."""
    try:
        empty = np.asarray(values).size == 0
    except Exception:   # as_float_array says what is wrong, naming the argument
        empty = False
    if empty and length in ("n", 0):
        return np.empty(0)
    return as_float_array(values, name, 1, (length,))


def _check_label(label, allow_none=False):
    if not (isinstance(label, str) or (label is None and allow_none)):
        raise TypeError(f"label must be a string; got {type(label).__name__}")


def _check_x(x):
    if not isinstance(x, str) or x not in ("rounds", "bytes"):
        raise ValueError(f"x must be 'rounds' or 'bytes'; got {x!r}")
    return x


def _check_labels(labels, count):
    if isinstance(labels, str) or not isinstance(labels, (list, tuple)):
        raise TypeError(f"labels must be a list of {count} strings; got {type(labels).__name__}")
    if len(labels) != count:
        raise ValueError(f"labels must have one label per history ({count}); got {len(labels)}")
    return [str(label) for label in labels]


def _sizes_text(sizes):
    """ "20 rows each", "1 row each" or "3 to 41 rows each (mean 20)"."""
    if sizes.min() == sizes.max():
        return f"{count_text(int(sizes.min()), 'row')} each"
    return f"{sizes.min()} to {sizes.max()} rows each (mean {sizes.mean():.3g})"
