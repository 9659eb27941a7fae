"""Explorers: sliders that rerun a function of `fedlite.experiments` and redraw one figure.

The only module of fedlite that imports ipywidgets.  A notebook cell ending in, e.g.,
`fedlite.widgets.convergence_explorer(X, y)` shows the sliders, a status line and the figure.
Each explorer keeps ONE figure, made with `matplotlib.figure.Figure` (not pyplot, so the notebook
does not also show a static copy), updates its lines in place when a slider moves, and sends
the picture as a PNG to an Image widget (not an Output widget: see `Explorer.show`).  The
numbers behind every picture come from a pure function in `fedlite.experiments`, which tests
and notebooks call directly.

Each explorer first runs that function with the arguments it was given, before it builds a
single widget: a bad argument (participation=5, num_participants=0, alpha=0, more participants
than rows, ...) raises the very ValueError/TypeError that `split` or `simulate` raise, instead
of being clamped by a slider.  The sliders' ranges always include the values given.  Once the
explorer is shown, a combination that cannot run becomes a message in its status line.
"""
from __future__ import annotations

import html
import io
import math

import ipywidgets as widgets
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ..models import as_labels
from ..partition import ALIASES, LABEL_SCHEMES, Federation, split
from ..validation import as_data, as_float, as_int
from . import experiments
from .plotting import (ALGORITHM_NAMES, LOSS_LABEL, LossCurve, bytes_unit, count_text,
                       loss_curve, plot_label_histogram, plot_partition, plot_sizes)

COLORS = {"FedSGD": "C0", "FedAvg": "C1", "FedProx": "C2"}
EXCESS_FLOOR = 1e-12  # excess losses below this (round-off) are drawn at it, so log axes work


class Explorer:
    """Sliders (`controls`), a status line and one figure; moving a slider reruns and redraws.

    compute(**values) -> result   the run, given each slider's value by name (may raise ValueError)
    draw(result) -> str           updates the figure's artists in place, returns the status (HTML)
    curves                        name -> plotting.LossCurve; `lines` name -> its matplotlib line
    result                        compute's result for the sliders' values, if already computed
    """

    def __init__(self, controls, compute, draw, figure, curves=None, result=None):
        self.controls = controls
        self.compute, self.draw = compute, draw
        self.figure, self.axes = figure, list(figure.axes)
        self.ax = self.axes[0]
        self.curves = curves or {}
        self.lines = {name: curve.line for name, curve in self.curves.items()}
        self.result, self.png = None, b""
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.widget = widgets.VBox([widgets.HBox(list(controls.values())), self.status,
                                    self.image])
        for control in controls.values():
            control.observe(self.update, names="value")
        if result is None:
            self.update()
        else:
            self._draw(result)
            self.show()

    @property
    def values(self):
        """Each slider's current value, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, change=None):
        """Rerun with the sliders' values and redraw; a ValueError goes to the status line."""
        try:
            self.result = self.compute(**self.values)
        except ValueError as error:
            self.result = None
            self.clear()
            self.status.value = _message(f"Cannot run this combination: {error}", "error")
        else:
            self._draw(self.result)
        self.show()

    def _draw(self, result):
        self.result = result
        self.status.value = self.draw(result)
        self.rescale()

    def clear(self):
        """Empty the plot, so that no line shows a run that did not happen."""
        for ax in self.axes:
            for line in ax.lines:
                line.set_data([], [])
            for collection in ax.collections:
                if isinstance(collection, LineCollection):
                    collection.set_segments([])
                else:
                    collection.set_offsets(np.empty((0, 2)))
            for patch in list(ax.patches):
                patch.remove()
            for text in ax.texts:
                text.set_text("")
            ax.set_title("")

    def rescale(self):
        """Fit each axis's limits to what it now shows (axes whose x range was fixed keep it)."""
        for ax in self.axes:
            ax.relim()
            for collection in ax.collections:  # relim does not look at collections
                points = _points(collection)
                if len(points):
                    ax.update_datalim(points)
            ax.autoscale_view()

    def show(self):
        """Render the figure to PNG and show it in the Image widget (replacing the old one).

        An Image widget, not an Output widget: a display() into an Output widget makes a
        headless client (nbclient, i.e. `jupyter nbconvert --execute`) echo the output back on
        the shell channel while it waits there for the cell's reply, and that echo can hide the
        reply from it until its timeout (issue 14).  Setting the Image's value sends nothing back.
        """
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        self.png = buffer.getvalue()
        self.image.value = self.png

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ----------------------------------------------------------------------------- the explorers
def convergence_explorer(data, y=None, *, model="linear", algorithm="fedsgd", lr=0.1,
                         num_participants=None, participation=1.0, num_rounds=50,
                         controls=("lr", "num_participants", "participation"), seed=0,
                         **simulate_kwargs):
    """Global loss per round (thick) and each participant's loss (thin) of one run, with sliders.

    data: X (N, d) with y (N,), or a Federation (its pooled rows are used, re-split with
    `scheme`, default "iid", whenever the run needs it; num_participants defaults to its count,
    else to 10).  controls: which of "lr", "num_participants", "participation" get a slider; the
    others stay fixed.  simulate_kwargs go to `experiments.convergence_run` (scheme, alpha,
    shards_per_participant, local_epochs, batch_size, mu, hidden).
    """
    X, y, default_count = _pooled_data(data, y)
    if num_participants is None:
        num_participants = default_count
    fixed = dict(lr=lr, num_participants=num_participants, participation=participation)
    controls = _check_controls(controls, tuple(fixed))

    def compute(**values):
        return experiments.convergence_run(X, y, **{**fixed, **values}, model=model,
                                           algorithm=algorithm, num_rounds=num_rounds,
                                           seed=seed, **simulate_kwargs)

    first = compute()   # refuses bad arguments with simulate's and split's own messages
    num_participants = as_int(num_participants, "num_participants")
    participation = as_float(participation, "participation")
    sliders = {
        "lr": lambda: _lr_slider(lr),
        "num_participants": lambda: widgets.IntSlider(
            num_participants, min=1, max=max(min(100, len(y)), num_participants),
            description="participants", **_SLIDER),
        "participation": lambda: widgets.FloatSlider(
            participation, min=min(0.1, participation), max=1.0, step=0.1,
            description="participation", readout_format=".0%", **_SLIDER),
    }
    split_kwargs = {key: simulate_kwargs[key]
                    for key in ("scheme", "alpha", "shards_per_participant")
                    if key in simulate_kwargs}
    figure = _figure()
    ax = figure.axes[0]
    participants = LineCollection([], colors="gray", linewidths=0.7, alpha=0.5,
                                  label="each participant")
    ax.add_collection(participants)
    curve = LossCurve(ax, "global loss (all data)", color="C0", linewidth=2.5)
    _loss_axes(ax, num_rounds)

    def draw(history):
        rounds = np.arange(len(history.loss))
        K, m = history.participant_loss.shape[1], history.selected.shape[1]
        participants.set_segments([np.column_stack([rounds, loss_k])
                                   for loss_k in history.participant_loss.T] if K > 1 else [])
        curve.set_data(rounds, history.loss, history.diverged_at)
        ax.legend(handles=[curve.line] + ([participants] if K > 1 else []))
        c = history.config
        name = ALGORITHM_NAMES.get(algorithm, algorithm)
        ax.set_title(f"{name}: {count_text(K, 'participant')}, {m} per round "
                     f"(participation {c['participation']:.0%}), lr = {c['lr']:.3g}")
        federation = (experiments.convergence_federation(X, y, num_participants=K, seed=seed,
                                                         **split_kwargs)
                      if history.diverged else None)
        return _run_status({name: history}, federation=federation)

    return Explorer({name: sliders[name]() for name in controls}, compute, draw, figure,
                    {"loss": curve}, first)


def local_epochs_explorer(federation, *, lr, num_rounds=50, local_epochs=5, batch_size=None,
                          model="linear", hidden=10, target_loss=None, seed=0):
    """FedSGD vs FedAvg: loss against rounds (left) and against data sent (right).

    Sliders: local_epochs (FedAvg's local work per round) and lr.  target_loss (default: a
    tenth of the starting loss) is drawn dashed; the status says when, and after how much data
    sent, each run reaches it.
    """
    if target_loss is not None:
        target_loss = as_float(target_loss, "target_loss")
        if not 0 < target_loss <= 1e100:
            raise ValueError(f"target_loss must be in (0, 1e100] (a loss to reach, drawn on "
                             f"log axes); got {target_loss}")

    def compute(local_epochs, lr):
        return experiments.local_epochs_runs(federation, local_epochs=local_epochs, lr=lr,
                                             num_rounds=num_rounds, batch_size=batch_size,
                                             seed=seed, model=model, hidden=hidden)

    first = compute(local_epochs, lr)   # refuses bad arguments with simulate's own messages
    local_epochs = as_int(local_epochs, "local_epochs")
    controls = {"local_epochs": widgets.IntSlider(local_epochs, min=1, max=max(20, local_epochs),
                                                  description="local epochs", **_SLIDER),
                "lr": _lr_slider(lr)}
    figure = _figure(ncols=2, figsize=(11, 4))
    ax_rounds, ax_bytes = figure.axes
    curves = {}
    for name in ("FedSGD", "FedAvg"):
        curves[name] = LossCurve(ax_rounds, name, color=COLORS[name], linewidth=2)
        curves[f"{name} (bytes)"] = LossCurve(ax_bytes, name, color=COLORS[name], linewidth=2)
    targets = [ax.axhline(1.0, linestyle="--", color="gray", label="target loss")
               for ax in (ax_rounds, ax_bytes)]
    _loss_axes(ax_rounds, num_rounds)
    _loss_axes(ax_bytes)

    def draw(runs):
        target = 0.1 * runs["FedSGD"].loss[0] if target_loss is None else target_loss
        unit, scale = bytes_unit(max(h.bytes_total[-1] for h in runs.values()))
        for name, history in runs.items():
            curves[name].set_data(*loss_curve(history, "rounds"), history.diverged_at)
            curves[f"{name} (bytes)"].set_data(*loss_curve(history, "bytes", scale),
                                               history.diverged_at)
            label = (name if name == "FedSGD" else
                     f"FedAvg, {count_text(history.config['local_epochs'], 'local epoch')}")
            curves[name].line.set_label(label)
            curves[f"{name} (bytes)"].line.set_label(label)
        for line in targets:
            line.set_data([0, 1], [target, target])
        ax_bytes.set_xlabel(f"data sent, both ways ({unit})")
        ax_rounds.set_title(f"Loss per round, lr = {runs['FedSGD'].config['lr']:.3g}")
        ax_bytes.set_title("Loss against data sent")
        ax_rounds.legend()
        return _run_status(runs, target, federation)

    return Explorer(controls, compute, draw, figure, curves, first)


def drift_explorer(*, spread=1.0, mu=1.0, local_epochs=10, num_participants=10,
                   samples_per_participant=20, num_features=5, lr=0.1, num_rounds=50, seed=0):
    """Client drift: how far above the pooled optimum's loss FedAvg, FedProx and FedSGD end up.

    Sliders: spread (how different the participants' true w are) and mu (FedProx's pull
    towards the server's model; mu = 0 is FedAvg).  The legend gives each run's final distance
    to the pooled optimum (w*, b*).  Runs: `experiments.drift_runs`.  A run that diverges is
    explained by `experiments.divergence_reason` (FedProx's local step is stable only if
    lr·(λ_max(H_k) + mu) < 2, so a large mu can be the cause, not lr alone).
    """
    data_settings = dict(num_participants=num_participants,
                         samples_per_participant=samples_per_participant,
                         num_features=num_features, seed=seed)
    run_settings = dict(local_epochs=local_epochs, lr=lr, num_rounds=num_rounds, **data_settings)

    def compute(spread, mu):
        runs = experiments.drift_runs(spread=spread, mu=mu, **run_settings)
        return runs, experiments.drift_federation(spread=spread, **data_settings), spread

    first = compute(spread, mu)   # refuses bad arguments with their functions' own messages
    spread, mu = as_float(spread, "spread"), as_float(mu, "mu")
    controls = {"spread": widgets.FloatSlider(spread, min=0.0, max=max(3.0, spread), step=0.25,
                                              description="spread", **_SLIDER),
                "mu": widgets.FloatSlider(mu, min=0.0, max=max(10.0, mu), step=0.5,
                                          description="mu (FedProx)", **_SLIDER)}
    figure = _figure()
    ax = figure.axes[0]
    curves = {name: LossCurve(ax, name, color=COLORS[name], linewidth=2)
              for name in ("FedAvg", "FedProx", "FedSGD")}
    _loss_axes(ax, num_rounds, ylabel="loss − pooled optimum's loss")

    def draw(result):
        runs, federation, spread = result
        distances = {}
        for name, history in runs.items():
            excess = np.maximum(experiments.excess_loss(history, federation), EXCESS_FLOOR)
            curves[name].set_data(np.arange(len(excess)), excess, history.diverged_at)
            distances[name] = experiments.distance_to_optimum(history, federation)
            label = f"FedProx, mu={history.config['mu']:g}" if name == "FedProx" else name
            curves[name].line.set_label(f"{label}: ends {distances[name]:.2g} from (w*, b*)")
        ax.legend()
        ax.set_title(f"Client drift: spread {spread:g}, "
                     f"{count_text(local_epochs, 'local epoch')}, lr = {lr:g}")
        if any(history.diverged for history in runs.values()):
            return _run_status(runs, federation=federation)
        return _message("Final distance to the pooled optimum (w*, b*): " + ", ".join(
            f"{name} {distance:.3g}" for name, distance in distances.items()), "ok")

    return Explorer(controls, compute, draw, figure, curves, first)


def partition_explorer(X, y, *, scheme="quantity", num_participants=5, alpha=0.5, feature=0,
                       seed=0, shards_per_participant=None):
    """Who holds which data (left) and how many rows each participant has (right), with sliders.

    Sliders: num_participants (1..20, or up to the value given) and, for the "quantity",
    "covariate" and "dirichlet" schemes, alpha (the Dirichlet concentration: small = very
    unequal, large = nearly iid); for "shards", shards_per_participant (1..10) instead.  With
    scheme="covariate" and alpha=None (maximal shift) there is no alpha slider.  The label-skew
    schemes ("dirichlet", "shards": y holds class labels) show each participant's labels on
    the left (`plotting.plot_label_histogram`), the others the data against x_`feature`.
    """
    X, y = as_data(X, y)
    feature = as_int(feature, "feature", minimum=0, maximum=X.shape[1] - 1)
    name = ALIASES.get(scheme, scheme) if isinstance(scheme, str) else None
    alpha = None if name in ("iid", "shards") else alpha   # (a non-string: split refuses it)
    if name == "shards" and shards_per_participant is None:
        shards_per_participant = 2

    def compute(num_participants, alpha=alpha, shards_per_participant=shards_per_participant):
        return split(X, y, num_participants, scheme=scheme, alpha=alpha, seed=seed,
                     shards_per_participant=shards_per_participant)

    first = compute(num_participants)   # refuses bad arguments with split's own messages
    num_participants = as_int(num_participants, "num_participants")
    controls = {"num_participants": widgets.IntSlider(
        num_participants, min=1, max=max(min(20, len(y)), num_participants),
        description="participants", **_SLIDER)}
    if alpha is not None:
        controls["alpha"] = _log_slider(alpha, "alpha", low=-2, high=2, step=0.1)
    if name == "shards":
        s = as_int(shards_per_participant, "shards_per_participant")
        controls["shards_per_participant"] = widgets.IntSlider(
            s, min=1, max=max(10, s), description="shards per participant", **_SLIDER)
    num_classes = int(as_labels(y).max()) + 1 if name in LABEL_SCHEMES else None
    figure = _figure(ncols=2, figsize=(12, 4))
    ax_data, ax_sizes = figure.axes

    def draw(federation):
        _remove_extra_axes(figure, (ax_data, ax_sizes))   # a colorbar of > 20 classes
        for ax in (ax_data, ax_sizes):
            ax.clear()
        if num_classes is None:
            plot_partition(federation, ax=ax_data, feature=feature)
        else:
            plot_label_histogram(federation, ax=ax_data, num_classes=num_classes)
        plot_sizes(federation, ax=ax_sizes)
        return _message(repr(federation), "ok")

    return Explorer(controls, compute, draw, figure, result=first)


# ----------------------------------------------------------------------------------- label skew
LABEL_SKEW_COLORS = {"FedAvg": "C1", "FedProx": "C2", "SCAFFOLD": "C3", "FedAvgM": "C4"}


def label_skew_explorer(*, alpha=0.1, num_participants=100, participation=0.1, local_epochs=10,
                        lr=1.0, num_rounds=30, mu=0.01, server_lr=0.3, server_momentum=0.9,
                        model="softmax", hidden=32,
                        algorithms=tuple(experiments.LABEL_SKEW_RUNS), seed=0, data_seed=0):
    """The digits under label skew: test accuracy per round (left) of FedAvg, FedProx(mu),
    SCAFFOLD and FedAvgM, with centralised training dashed as the ceiling, and each
    participant's labels (right).

    Sliders: alpha (the Dirichlet concentration, log scale), the number of participants, local
    epochs and lr (log scale).  Runs: `experiments.label_skew_runs` (the other arguments are
    passed to it unchanged); the centralised run depends only on local_epochs and lr, and is
    kept for each pair already run.  num_rounds is smaller than the notebook's 50 so that a
    slider's move is redrawn in about a second.
    """
    settings = dict(num_rounds=num_rounds, model=model, hidden=hidden, seed=seed,
                    data_seed=data_seed)
    centralised = {}

    def compute(alpha, num_participants, local_epochs, lr):
        runs = experiments.label_skew_runs(
            alpha=alpha, num_participants=num_participants, participation=participation,
            local_epochs=local_epochs, lr=lr, mu=mu, server_lr=server_lr, server_momentum=server_momentum, algorithms=algorithms,
            centralised=False, **settings)
        if (local_epochs, lr) not in centralised:
            centralised[local_epochs, lr] = experiments.centralised_run(
                local_epochs=local_epochs, lr=lr, **settings)
        federation, _ = experiments.digits_federation(
            alpha=alpha, num_participants=num_participants, seed=seed, data_seed=data_seed)
        return runs, centralised[local_epochs, lr], federation

    first = compute(alpha, num_participants, local_epochs, lr)  # split's and simulate's messages
    num_participants = as_int(num_participants, "num_participants")
    local_epochs = as_int(local_epochs, "local_epochs")
    num_rows = first[2].num_samples
    controls = {
        "alpha": _log_slider(alpha, "alpha", low=-2, high=2, step=0.1),
        "num_participants": widgets.IntSlider(
            num_participants, min=1, max=max(min(100, num_rows), num_participants),
            description="participants", **_SLIDER),
        "local_epochs": widgets.IntSlider(local_epochs, min=1, max=max(30, local_epochs),
                                          description="local epochs", **_SLIDER),
        "lr": _lr_slider(lr)}
    num_classes = int(first[2].y.max()) + 1
    figure = _figure(ncols=2, figsize=(12, 4.2))
    ax, ax_labels = figure.axes
    curves = {name: LossCurve(ax, name, color=LABEL_SKEW_COLORS[name], linewidth=2)
              for name in first[0]}
    curves[experiments.CENTRALISED] = LossCurve(ax, "centralised (the ceiling)", color="black",
                                                linestyle="--", linewidth=1.5)
    ax.set(xlabel="round", ylabel="test accuracy", xlim=(0, num_rounds))
    shown = {}   # the federation whose labels ax_labels shows

    def draw(result):
        runs, ceiling, federation = result
        for name, history in {**runs, experiments.CENTRALISED: ceiling}.items():
            curves[name].set_data(np.arange(len(history.test_accuracy)),
                                  history.test_accuracy, history.diverged_at)
        ax.legend(loc="lower right")
        ax.set_ylim(_accuracy_floor([*runs.values(), ceiling]), 1.0)
        c = ceiling.config
        per_round = next(iter(runs.values())).selected.shape[1] if runs else 1
        ax.set_title(f"{count_text(federation.num_participants, 'participant')} "
                     f"({per_round} per round), "
                     f"{count_text(c['local_epochs'], 'local epoch')}, lr = {c['lr']:.3g}")
        if not (_same_split(shown.get("federation"), federation) and ax_labels.patches):
            ax_labels.clear()     # a new split (1000 bars take a while: only when it changed)
            plot_label_histogram(federation, ax=ax_labels, num_classes=num_classes)
            shown["federation"] = federation
        diverged = [f"{name} diverged at round {history.diverged_at}"
                    for name, history in {**runs, "centralised": ceiling}.items()
                    if history.diverged]
        if diverged:
            return _message("; ".join(diverged) + f": lr = {c['lr']:.3g} is too large for "
                            f"{count_text(c['local_epochs'], 'local epoch')}; try a smaller "
                            f"one", "warning")
        return _message(f"Test accuracy after {count_text(num_rounds, 'round')}: " + ", ".join(
            f"{name} {history.test_accuracy[-1]:.1%}" for name, history in runs.items())
            + f"; centralised {ceiling.test_accuracy[-1]:.1%}", "ok")

    return Explorer(controls, compute, draw, figure, curves, first)


# ----------------------------------------------------------------------------- helpers
_SLIDER = dict(continuous_update=False, style={"description_width": "initial"})


def _lr_slider(lr):
    """A log-scale lr slider from 0.001 to 10 (widened to include lr): large values diverge."""
    return _log_slider(lr, "lr", low=-3, high=1, step=0.1)


def _log_slider(value, name, *, low, high, step, description=None):
    """A FloatLogSlider over 10^low..10^high, widened to include `value` (> 0) if it is outside."""
    value = as_float(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    exponent = math.log10(value)
    return widgets.FloatLogSlider(value, base=10, min=min(low, math.floor(exponent)),
                                  max=max(high, math.ceil(exponent)), step=step,
                                  description=description or name, readout_format=".3g",
                                  **_SLIDER)


def _check_controls(controls, names):
    """The controls to show, a tuple of some of `names`."""
    if isinstance(controls, str) or not isinstance(controls, (tuple, list)):
        raise TypeError(f"controls must be a tuple of names, some of {names}; "
                        f"got {controls!r}")
    unknown = [name for name in controls if name not in names]
    if unknown:
        raise ValueError(f"controls must name some of {names}; got {unknown}")
    return tuple(controls)


def _figure(ncols=1, figsize=(7, 4.5)):
    figure = Figure(figsize=figsize, layout="constrained")
    figure.subplots(1, ncols)
    return figure


def _loss_axes(ax, num_rounds=None, ylabel=LOSS_LABEL):
    """Log-scale loss axes; with num_rounds, the x axis is rounds 0..num_rounds (fixed)."""
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if num_rounds is not None:
        ax.set_xlabel("round")
        ax.set_xlim(0, num_rounds)


def _pooled_data(data, y):
    """(X, y, default number of participants) from a Federation, or from X and y."""
    if isinstance(data, Federation):
        if y is not None:
            raise ValueError("give either a Federation, or X and y; not a Federation and y")
        return data.X, data.y, data.num_participants
    if y is None:
        raise ValueError("give y with X (or a Federation instead of X)")
    X, y = as_data(data, y)
    return X, y, 10


def _same_split(a, b):
    """True if Federations a and b hold the same rows for the same participants."""
    return (a is not None and a.num_participants == b.num_participants
            and np.array_equal(a.offsets, b.offsets) and np.array_equal(a.index, b.index))


def _accuracy_floor(histories, skip=3):
    """The bottom of an accuracy axis that shows where runs end, not where they start: a
    little below the lowest test accuracy after the first `skip` rounds (0 at the lowest)."""
    lowest = min(float(np.min(h.test_accuracy[min(skip, len(h.test_accuracy) - 1):]))
                 for h in histories)
    return max(0.0, math.floor(lowest * 20) / 20 - 0.02)


def _remove_extra_axes(figure, keep):
    """Remove the axes of `figure` not in `keep` (e.g. a colorbar added by the last drawing)."""
    for ax in list(figure.axes):
        if ax not in keep:
            ax.remove()


def _points(collection):
    """The data points of a collection: a scatter's offsets or the vertices of a LineCollection."""
    if isinstance(collection, LineCollection):
        segments = collection.get_segments()
        return np.concatenate(segments) if segments else np.empty((0, 2))
    return collection.get_offsets()


def _run_status(runs, target=None, federation=None):
    """Status HTML for named runs: their final losses, divergence and its cause (given the
    federation, see `experiments.divergence_reason`), and when they reach target."""
    parts, diverged = [], False
    for name, history in runs.items():
        if history.diverged:
            diverged = True
            reason = (experiments.divergence_reason(history, federation)
                      if federation is not None
                      else f"lr = {history.config['lr']:.3g} is too large; try a smaller one")
            parts.append(f"{name} diverged at round {history.diverged_at}: {reason}")
            continue
        text = (f"{name}: loss {history.loss[0]:.3g} → {history.loss[-1]:.3g} "
                f"after {history.num_rounds} rounds")
        if target is not None:
            r = history.rounds_to(target)
            unit, scale = bytes_unit(history.bytes_total[-1])
            text += (f", reaches {target:.3g} at round {r} "
                     f"({history.bytes_total[r] / scale:.3g} {unit} sent)" if r is not None
                     else f", does not reach {target:.3g}")
        parts.append(text)
    return _message("; ".join(parts), "warning" if diverged else "ok")


def _message(text, kind):
    color = {"error": "#b00020", "warning": "#b45309", "ok": "#1f2937"}[kind]
    return f'<span style="color:{color}">{html.escape(text)}</span>'


def compression_explorer(federation, base_params, *, fraction=0.01, bits=4, rank=4,
                         num_rounds=20, lr=0.02, lora_lr=3.0, local_epochs=2, batch_size=20,
                         seed=0, cache=None):
    """Fine-tuning a large model four ways: loss against the bytes participants upload.

    Sliders: the top-k fraction kept (log scale), the bits per value of the quantizer, and the
    LoRA rank.  Runs: `lora.communication_runs` (FedAvg, FedAvg + top-k with error feedback,
    FedAvg + stochastic quantisation, LoRA with A trained), cached, so that moving one slider
    reruns only its own run; pass cache= the dict given to earlier `communication_runs` calls
    with the same settings to reuse their runs.  The dashed line is the pre-trained model's loss.
    """
    from ..communication import lora  # imported here: the course's later modules load on first use

    if cache is not None and not isinstance(cache, dict):
        raise TypeError(f"cache must be None or a dict; got {type(cache).__name__}")
    cache = {} if cache is None else cache

    def compute(fraction, bits, rank):
        return lora.communication_runs(federation, base_params, fraction=fraction, bits=bits,
                                       rank=rank, num_rounds=num_rounds, lr=lr, lora_lr=lora_lr,
                                       local_epochs=local_epochs, batch_size=batch_size,
                                       seed=seed, cache=cache)

    first = compute(fraction, bits, rank)   # refuses bad arguments with their own messages
    bits, rank = as_int(bits, "bits"), as_int(rank, "rank")
    controls = {
        "fraction": _log_slider(fraction, "fraction", low=-3, high=0, step=0.25,
                                description="top-k fraction"),
        "bits": widgets.IntSlider(bits, min=1, max=max(16, bits), description="bits per value",
                                  **_SLIDER),
        "rank": widgets.IntSlider(rank, min=1, max=max(16, rank), description="LoRA rank",
                                  **_SLIDER),
    }
    figure = _figure(figsize=(8, 4.5))
    ax = figure.axes[0]
    colors = {"FedAvg": "C1", "FedAvg + top-k": "C2", "FedAvg + quantized": "C3", "LoRA": "C4"}
    curves = {name: LossCurve(ax, name, color=color, linewidth=2, marker=".")
              for name, color in colors.items()}
    start = ax.axhline(1.0, color="gray", linestyle="--", label="pre-trained model")
    ax.set_xscale("log")
    _loss_axes(ax)
    ax.set_xlabel("data uploaded so far, participants → server (bytes)")

    def draw(runs):
        labels = {"FedAvg": "FedAvg (float64)",
                  "FedAvg + top-k": f"FedAvg + top-k {controls['fraction'].value:.3g}",
                  "FedAvg + quantized": f"FedAvg + {controls['bits'].value} bits",
                  "LoRA": f"LoRA rank {controls['rank'].value}"}
        for name, history in runs.items():
            curves[name].set_data(np.cumsum(history.bytes_up), history.loss[1:],
                                  history.diverged_at)
            curves[name].line.set_label(labels[name])
        loss0 = runs["FedAvg"].loss[0]
        start.set_data([0, 1], [loss0, loss0])
        ax.legend(fontsize=8)
        ax.set_title(f"Fine-tuning {count_text(federation.num_participants, 'participant')}, "
                     f"{count_text(num_rounds, 'round')}: loss against data uploaded")
        if any(history.diverged for history in runs.values()):
            return _run_status(runs)
        return _message("; ".join(
            f"{labels[name]}: loss {history.loss[-1]:.3g}, "
            f"{history.bytes_up.sum() / 1e6:.3g} MB up" for name, history in runs.items()), "ok")

    return Explorer(controls, compute, draw, figure, curves, first)


def dp_explorer(federation, *, clip_norm=0.1, noise_multiplier=1.0, sampling_rate=0.04,
                num_rounds=100, lr=0.1, delta=1e-4, local_epochs=1, batch_size=None, seed=0):
    """DP-FedAvg against FedAvg without privacy: loss above the pooled optimum's, per round.

    Sliders: the noise multiplier z and the clipping norm S (log scale).  Runs:
    `differential_privacy.dp_fedavg_run` (sampling rate q, noise z S on the sum) and plain FedAvg
    with the same fraction q of participants per round (run once).  The status line gives ε at
    `delta` after num_rounds rounds, and how many updates were clipped.
    """
    from ..privacy import differential_privacy as dp  # imported here: later modules load on first use
    from ..simulation import simulate

    common = dict(num_rounds=num_rounds, lr=lr, local_epochs=local_epochs,
                  batch_size=batch_size, seed=seed)

    def compute(noise_multiplier, clip_norm):
        return dp.dp_fedavg_run(federation, clip_norm=clip_norm,
                                noise_multiplier=noise_multiplier, sampling_rate=sampling_rate,
                                delta=delta, **common)

    first = compute(noise_multiplier, clip_norm)   # refuses bad arguments with their messages
    plain = simulate(federation, algorithm="fedavg", participation=sampling_rate, **common)
    noise_multiplier = as_float(noise_multiplier, "noise_multiplier")
    controls = {
        "noise_multiplier": widgets.FloatSlider(noise_multiplier, min=0.0,
                                                max=max(8.0, noise_multiplier), step=0.25,
                                                description="noise multiplier z", **_SLIDER),
        "clip_norm": _log_slider(clip_norm, "clip_norm", low=-3, high=1, step=0.25,
                                 description="clip norm S")}
    figure = _figure(figsize=(8, 4.5))
    ax = figure.axes[0]
    curves = {"FedAvg": LossCurve(ax, "FedAvg, no privacy", color="C1", linewidth=2),
              "DP-FedAvg": LossCurve(ax, "DP-FedAvg", color="C3", linewidth=2)}
    _loss_axes(ax, num_rounds, ylabel="loss − pooled optimum's loss")

    def draw(run):
        for name, history in (("FedAvg", plain), ("DP-FedAvg", run.history)):
            excess = np.maximum(experiments.excess_loss(history, federation), EXCESS_FLOOR)
            curves[name].set_data(np.arange(len(excess)), excess, history.diverged_at)
        z, S = controls["noise_multiplier"].value, controls["clip_norm"].value
        curves["DP-FedAvg"].line.set_label(f"DP-FedAvg, z = {z:g}, S = {S:.3g}")
        ax.legend()
        ax.set_title(f"DP-FedAvg: {count_text(federation.num_participants, 'participant')}, "
                     f"sampling rate q = {sampling_rate:g}, lr = {lr:g}")
        if run.history.diverged:
            return _run_status({"DP-FedAvg": run.history})
        privacy = ("ε = ∞ (z = 0 adds no noise: no privacy)" if math.isinf(run.epsilon)
                   else f"ε = {run.epsilon:.3g} at δ = {delta:g}")
        return _message(f"{privacy} after {run.history.num_rounds} rounds. Final loss "
                        f"{run.history.loss[-1]:.3g} (without privacy {plain.loss[-1]:.3g}); "
                        f"{run.clipped.mean():.0%} of the updates were clipped", "ok")

    return Explorer(controls, compute, draw, figure, curves, first)


# ----------------------------------------------------------------------------- drift correction
DRIFT_CORRECTION_COLORS = {"FedAvg": "C1", "FedProx": "C2", "SCAFFOLD": "C3"}
DISTANCE_FLOOR = 1e-16  # distances below this (round-off) are drawn at it, so log axes work
SERVER_OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "momentum (FedAvgM)",
                          "adam": "Adam (FedAdam)", "yogi": "Yogi (FedYogi)",
                          "adagrad": "Adagrad (FedAdagrad)"}


def drift_correction_explorer(*, server_optimizer="sgd", server_lr=None, local_epochs=10,
                              mu=1.0, lr=0.05, num_rounds=150, batch_size=None, spread=1.0,
                              num_participants=10, samples_per_participant=20, num_features=5,
                              seed=0):
    """Client drift corrected: distance to the pooled optimum (w*, b*) per round of FedAvg,
    FedProx(mu) and SCAFFOLD on concept-shift data, all with the same server optimiser.

    Controls: the server optimiser (a dropdown), server_lr (log scale; None = simulate's
    default for the optimiser) and local_epochs.  Runs: `experiments.drift_correction_runs`
    (the other arguments are passed to it unchanged).
    """
    settings = dict(mu=mu, lr=lr, num_rounds=num_rounds, batch_size=batch_size, spread=spread,
                    num_participants=num_participants,
                    samples_per_participant=samples_per_participant,
                    num_features=num_features, seed=seed)

    def compute(server_optimizer, server_lr, local_epochs):
        return experiments.drift_correction_runs(
            server_optimizer=server_optimizer, server_lr=server_lr, local_epochs=local_epochs,
            **settings)

    first = compute(server_optimizer, server_lr, local_epochs)  # simulate's own messages
    config = first["FedAvg"][0].config
    controls = {
        "server_optimizer": widgets.Dropdown(
            options=[(label, name) for name, label in SERVER_OPTIMIZER_NAMES.items()],
            value=config["server_optimizer"], description="server optimiser",
            style=_SLIDER["style"]),
        "server_lr": _log_slider(config["server_lr"], "server_lr", low=-2, high=1, step=0.1),
        "local_epochs": widgets.IntSlider(config["local_epochs"], min=1,
                                          max=max(30, config["local_epochs"]),
                                          description="local epochs", **_SLIDER)}
    figure = _figure(figsize=(8, 4.5))
    ax = figure.axes[0]
    curves = {name: LossCurve(ax, name, color=color, linewidth=2)
              for name, color in DRIFT_CORRECTION_COLORS.items()}
    _loss_axes(ax, num_rounds, ylabel="distance to the pooled optimum (w*, b*)")

    def draw(runs):
        c = runs["FedAvg"][0].config
        for name, (history, distance) in runs.items():
            curves[name].set_data(np.arange(len(distance)),
                                  np.maximum(distance, DISTANCE_FLOOR), history.diverged_at)
            label = f"FedProx, mu={history.config['mu']:g}" if name == "FedProx" else name
            curves[name].line.set_label(f"{label}: ends {distance[-1]:.2g} from (w*, b*)")
        ax.legend()
        ax.set_title(f"Server: {SERVER_OPTIMIZER_NAMES[c['server_optimizer']]}, "
                     f"server_lr = {c['server_lr']:.3g}; "
                     f"{count_text(c['local_epochs'], 'local epoch')}, lr = {c['lr']:g}")
        diverged = [f"{name} diverged at round {history.diverged_at}"
                    for name, (history, _) in runs.items() if history.diverged]
        if diverged:
            return _message("; ".join(diverged) + f": its steps are too large (lr = "
                            f"{c['lr']:.3g} with {count_text(c['local_epochs'], 'local epoch')},"
                            f" server_lr = {c['server_lr']:.3g}); try a smaller server_lr",
                            "warning")
        return _message("Final distance to the pooled optimum (w*, b*): " + ", ".join(
            f"{name} {distance[-1]:.2g}" for name, (_, distance) in runs.items()), "ok")

    return Explorer(controls, compute, draw, figure, curves, first)
