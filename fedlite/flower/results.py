"""A Flower run's results as fedlite's `History`, so the course's plots work unchanged.

The ServerApp writes what happened to a JSON file, round by round; `history_from_result` reads
it into a History: the global loss before training and after every round, each participant's
loss, who was selected, bytes up and down as fedlite counts them (8 bytes per parameter per
message), the final parameters.  What a federation of processes adds, a History has no field
for: `FlowerRun` keeps it beside the History (which rounds had fewer participants, Flower's
own count of the bytes on the wire, time per round).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..simulation import History


class FlowerRunError(RuntimeError):
    """A Flower run that did not complete: the message says why (too few participants replied,
    a SuperNode never connected, a timeout, the ServerApp raised).

    reason   why, in words (what the ServerApp or the launcher saw)
    details  what else is known, e.g. the error a node replied ("" if nothing)
    run_id   Flower's run id, status its final status (e.g. "finished:failed"), when known
    """

    def __init__(self, reason, *, details="", run_id=None, status=None):
        self.reason, self.details, self.run_id, self.status = reason, details, run_id, status
        where = "" if run_id is None else f" (Flower run {run_id} ended {status})"
        super().__init__(f"{reason}{where}" + (f"; {details}" if details else ""))


@dataclass
class FlowerRun:
    """What one run on a Flower federation gave.

    history        the fedlite History (loss per round, bytes_up/bytes_down as fedlite counts
                   them, ...); history.metrics["participants"] (R,) is how many replied
    short_rounds   {round: [participant ids that were selected but did not reply]}: the
                   rounds that went on with fewer participants (empty when none)
    unevaluated    {round: [participant ids whose loss is missing]}: their participant_loss
                   is NaN and that round's loss is the n_k-weighted mean over the others
    traffic        Flower's own count of the run's bytes between SuperLink and SuperNodes:
                   {"inbound": nodes -> SuperLink, "outbound": SuperLink -> nodes} (None when
                   the SuperLink did not report it)
    round_seconds  (R,) wall time of each round on the server (send, wait, aggregate, evaluate)
    seconds        wall time of the whole run, from `flwr run` to its status
    engine         "deployment" or "simulation"
    run_id         Flower's run id
    """

    history: History
    short_rounds: dict = field(default_factory=dict)
    unevaluated: dict = field(default_factory=dict)
    traffic: dict | None = None
    round_seconds: np.ndarray = field(default_factory=lambda: np.empty(0))
    seconds: float = float("nan")
    engine: str = "deployment"
    run_id: int | None = None

    @property
    def traffic_total(self):
        """Bytes Flower counted both ways (None when not reported)."""
        return None if self.traffic is None else self.traffic["inbound"] + self.traffic["outbound"]

    def __repr__(self):
        short = (f", fewer participants in rounds {sorted(self.short_rounds)}"
                 if self.short_rounds else "")
        return f"FlowerRun({self.engine}, {self.history!r}{short})"


def read_result(path):
    """The JSON the ServerApp wrote (None if there is none yet)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def history_from_result(result, experiment):
    """A fedlite History from the ServerApp's result record (see `read_result`).

    The History's state is None: SCAFFOLD's control variates stay on the SuperNodes, so a
    Flower run cannot be resumed by `simulate(resume=...)`.
    """
    if not isinstance(result, dict) or "loss" not in result:
        raise TypeError("result must be the record a fedlite ServerApp wrote (read_result)")
    participant_loss = np.array(result["participant_loss"], dtype=np.float64)
    R = len(result["selected"])
    m = experiment.participants_per_round
    theta = np.array(result.get("theta", []), dtype=np.float64)
    return History(
        loss=np.array(result["loss"][:R + 1], dtype=np.float64),
        participant_loss=participant_loss[:R + 1],
        selected=np.array(result["selected"], dtype=np.int64).reshape(R, m),
        bytes_up=np.array(result["bytes_up"], dtype=np.int64),
        bytes_down=np.array(result["bytes_down"], dtype=np.int64),
        theta=theta,
        diverged_at=result.get("diverged_at"),
        config=experiment.config,
        model=experiment.model_object,
        state=None,
        metrics={"participants": np.array([len(r) for r in result["replied"]], dtype=np.int64)},
    )


def flower_run(result, experiment, **details):
    """The FlowerRun of a completed result record (details: traffic, seconds, engine, run_id)."""
    history = history_from_result(result, experiment)
    short = {r: sorted(set(asked) - set(replied)) for r, (asked, replied)
             in enumerate(zip(result["selected"], result["replied"]), start=1)
             if len(replied) < len(asked)}
    K = experiment.num_participants
    unevaluated = {r: sorted(set(range(K)) - set(ids))
                   for r, ids in enumerate(result["evaluated"]) if len(ids) < K}
    return FlowerRun(history=history, short_rounds=short, unevaluated=unevaluated,
                     round_seconds=np.array(result["round_seconds"], dtype=np.float64),
                     **details)
