"""The server side on Flower: a ServerApp whose strategy is fedlite's server half.

`FedliteStrategy` is a Flower `Strategy` (Message API): Flower's `Strategy.start` runs the
rounds, sending and waiting; the strategy says what to send and what to do with the replies.

  configure_train     the participants `simulate` would select this round (everyone, or
                      RunSeeds.round_rng(r)'s choice), each sent the model (SCAFFOLD: and c)
  aggregate_train     fedlite.federated.Server.aggregate_fit: the n_k-weighted mean of the
                      reports, then the algorithm's server half with the server optimiser
  configure_evaluate  every participant gets the new model ...
  aggregate_evaluate  ... and replies its loss: the global loss is Σ n_k L_k / Σ n_k, the
                      number `History.loss` holds

Before round 1 the server waits for one SuperNode per participant and evaluates the starting
model on each (round 0), which also tells it which node plays which participant.  A round
with fewer replies than the minimum, or no node to evaluate on, stops the run with a message
that says so; what happened is written, round by round, to the run config's result-path (an
absolute path: the ServerApp runs from a copy of the app), which `fedlite.flower.results`
reads back into a `History`.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from logging import INFO
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord
from flwr.app import RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy
from flwr.supercore import log

from ..core.config import RunSeeds
from ..core.model import BYTES_PER_VALUE
from ..federated import Server
from ..simulation import DIVERGENCE_FACTOR, algo_values
from .experiment import Experiment
from .messages import array_dict, numpy_dict
from .results import FlowerRunError

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the experiment named by the run config; write what happened to result-path."""
    path = context.run_config.get("result-path", "")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ValueError(f"the run config's result-path must be an absolute path (the "
                         f"ServerApp runs from a copy of the app); got {path!r}")
    strategy = None
    try:
        strategy = FedliteStrategy(Experiment.from_run_config(context.run_config), Path(path))
        strategy.run(grid)
    except BaseException as exc:
        record = strategy.record if strategy is not None else {}
        known = isinstance(exc, FlowerRunError)
        _write(Path(path), {**record, "status": "failed",
                            "error": (exc.reason if known
                                      else f"the ServerApp raised {type(exc).__name__}: {exc}"),
                            "error_details": exc.details if known else traceback.format_exc()})
        raise


class Diverged(Exception):
    """The global loss left the finite range (or grew past DIVERGENCE_FACTOR x its start)."""


class FedliteStrategy(Strategy):
    """A Flower strategy whose aggregation is a fedlite algorithm's server half."""

    def __init__(self, experiment, result_path=None):
        self.experiment = experiment
        config = experiment.config
        model = experiment.model_object
        self.K, self.P = experiment.num_participants, model.num_params
        self.server = Server(config.as_dict(), self.K, self.P)
        self.seeds = RunSeeds.from_seed(config.seed)
        self.theta = model.init(np.random.default_rng(self.seeds.init))
        self.evaluating = self.accepted = self.theta   # the last model whose loss was fine
        self.per_message = algo_values(self.server.algorithm, self.P) * BYTES_PER_VALUE
        self.result_path = result_path
        self.node_of = {}          # participant id -> Flower node id
        self.sizes = np.zeros(self.K)
        self.asked, self.errors, self.started = [], [], time.monotonic()
        self.record = {"status": "running", "error": None, "loss": [], "participant_loss": [],
                       "selected": [], "replied": [], "evaluated": [], "bytes_up": [],
                       "bytes_down": [], "round_seconds": [], "diverged_at": None}

    # -- the run: wait for the nodes, evaluate the start (round 0), then Flower's rounds
    def run(self, grid):
        timeout = self.experiment.round_timeout
        grid = PromptGrid(grid)
        self.connect(grid, timeout)
        try:
            self.start(grid, ArrayRecord(array_dict({"theta": self.theta})),
                       num_rounds=self.experiment.num_rounds, timeout=timeout)
        except Diverged:
            pass
        self.record.update(status="completed", theta=self.accepted.tolist(),
                           node_of={str(k): node for k, node in self.node_of.items()})
        self.save()

    def connect(self, grid, timeout):
        """Wait (at most `timeout` s) for one SuperNode per participant, then evaluate the
        starting model on each: its reply names the participant it plays (partition-id)."""
        deadline = time.monotonic() + timeout
        while len(nodes := list(grid.get_node_ids())) < self.K:
            if time.monotonic() > deadline:
                raise FlowerRunError(
                    f"only {len(nodes)} of {self.K} SuperNodes connected to the SuperLink "
                    f"within {timeout:g} s; start one per participant with --node-config "
                    f"'partition-id=k num-partitions={self.K}'")
            time.sleep(0.5)
        messages = [self._message(node, MessageType.EVALUATE, {"theta": self.theta}, 0)
                    for node in nodes]
        replies = grid.send_and_receive(messages, timeout=timeout)
        for msg in self._answered(replies, "round 0 (evaluating the starting model)"):
            k = int(msg.content["metrics"]["partition-id"])
            if k in self.node_of:
                raise self._failed(f"two SuperNodes say they are partition-id={k}; give "
                                   f"each its own partition-id in 0..{self.K - 1}")
            self.node_of[k] = msg.metadata.src_node_id
            self.sizes[k] = msg.content["metrics"]["num-examples"]
        missing = sorted(set(range(self.K)) - set(self.node_of))
        if missing:
            raise self._failed(f"no SuperNode answered as participant(s) {missing} in round "
                               f"0 (within {timeout:g} s)")
        self.aggregate_evaluate(0, replies)

    # -- training: the participant half runs on the nodes, the server half here
    def configure_train(self, server_round, arrays, config, grid):
        self.started = time.monotonic()
        self.theta = numpy_dict(arrays)["theta"]
        K, m = self.K, self.experiment.participants_per_round
        chosen = (np.arange(K) if m == K
                  else np.sort(self.seeds.round_rng(server_round).choice(K, size=m,
                                                                         replace=False)))
        self.asked = [int(k) for k in chosen]
        online = set(grid.get_node_ids())    # a stopped SuperNode gets no more messages
        sent = {"theta": self.theta, **{name: value for name, value in self.server.state.items()
                                        if isinstance(value, np.ndarray)}}   # SCAFFOLD's c
        return [self._message(self.node_of[k], MessageType.TRAIN, sent, server_round)
                for k in self.asked if self.node_of[k] in online]

    def aggregate_train(self, server_round, replies):
        results = {}
        for msg in self._answered(replies, f"round {server_round} (training)"):
            metrics, arrays = msg.content["metrics"], numpy_dict(msg.content["arrays"])
            k = int(metrics["partition-id"])
            extras = {"control_delta": arrays["control_delta"]} if "control_delta" in arrays \
                else {}
            results[k] = (arrays["report"], int(metrics["num-examples"]), extras)
        replied = [k for k in self.asked if k in results]
        needed = self.experiment.min_replies
        if len(replied) < needed:
            missing = sorted(set(self.asked) - set(replied))
            raise self._failed(
                f"round {server_round}: only {len(replied)} of the {len(self.asked)} selected "
                f"participants replied (participant(s) {missing}: SuperNode stopped, or no "
                f"reply within round_timeout={self.experiment.round_timeout:g} s); the run "
                f"needs at least {needed} (Experiment.min_participants)")
        if not all(np.isfinite(results[k][0]).all() for k in replied):
            self._diverged(server_round)
        self.theta = self.server.aggregate_fit(self.theta, [results[k] for k in replied],
                                               np.array(replied))
        record = self.record
        record["selected"].append(self.asked)
        record["replied"].append(replied)
        record["bytes_up"].append(len(replied) * self.per_message)
        record["bytes_down"].append(len(self.asked) * self.per_message)
        return (ArrayRecord(array_dict({"theta": self.theta})),
                MetricRecord({"participants": len(replied)}))

    # -- evaluation: every participant's loss on its own data, weighted by n_k
    def configure_evaluate(self, server_round, arrays, config, grid):
        self.evaluating = theta = numpy_dict(arrays)["theta"]
        online = set(grid.get_node_ids())
        return [self._message(node, MessageType.EVALUATE, {"theta": theta}, server_round)
                for k, node in sorted(self.node_of.items()) if node in online]

    def aggregate_evaluate(self, server_round, replies):
        losses = np.full(self.K, np.nan)
        for msg in self._answered(replies, f"round {server_round} (evaluation)"):
            losses[int(msg.content["metrics"]["partition-id"])] = msg.content["metrics"]["loss"]
        evaluated = np.flatnonzero(~np.isnan(losses))
        if evaluated.size == 0:
            raise self._failed(f"round {server_round}: no participant answered the "
                               f"evaluation (every SuperNode stopped?)")
        weights = self.sizes[evaluated]
        loss = float((losses[evaluated] * weights).sum() / weights.sum())
        record = self.record
        if server_round > 0 and not (
                np.isfinite(loss) and np.isfinite(self.evaluating).all()
                and loss <= DIVERGENCE_FACTOR * max(record["loss"][0], np.finfo(float).tiny)):
            self._diverged(server_round)
        self.accepted = self.evaluating
        record["loss"].append(loss)
        record["participant_loss"].append(losses.tolist())
        record["evaluated"].append(evaluated.tolist())
        if server_round > 0:
            record["round_seconds"].append(time.monotonic() - self.started)
        self.save()
        return MetricRecord({"loss": loss})

    def summary(self):
        e = self.experiment
        log(INFO, "\t└──> fedlite: %s on %s, %d participants, %s", e.algorithm, e.model,
            e.num_participants, f"at least {e.min_replies} replies per round")

    # -- helpers
    def _answered(self, replies, what):
        """The replies that carry content; the others (a node stopped, a ClientApp raised)
        are logged, and their reasons kept for the error message (self.errors)."""
        good, self.errors = [], []
        for msg in replies:
            if msg.has_error():
                log(INFO, "fedlite: %s: node %s replied an error: %s", what,
                    msg.metadata.src_node_id, msg.error.reason)
                self.errors.append(msg.error.reason)
            else:
                good.append(msg)
        return good

    def _failed(self, text):
        """A FlowerRunError saying `text`, with the first error a node replied, if any."""
        details = f"a node replied: {self.errors[0][-500:]}" if self.errors else ""
        return FlowerRunError(text, details=details)

    def _diverged(self, server_round):
        record = self.record
        record["diverged_at"] = server_round
        for name in ("selected", "replied", "bytes_up", "bytes_down"):
            del record[name][len(record["loss"]) - 1:]       # keep completed rounds only
        raise Diverged(f"round {server_round}")

    def _message(self, node, message_type, arrays, server_round):
        content = RecordDict({"arrays": ArrayRecord(array_dict(arrays)),
                              "config": ConfigRecord({"server-round": server_round})})
        return Message(content=content, message_type=message_type, dst_node_id=node)

    def save(self):
        if self.result_path is not None:
            _write(self.result_path, {**self.record, "sizes": self.sizes.tolist()})


class PromptGrid:
    """Flower's Grid, but checking for replies every `poll_interval` seconds (Flower's own
    send_and_receive checks every 3 s, which would add up to 3 s to every exchange)."""

    def __init__(self, grid, poll_interval=0.2):
        self.grid, self.poll_interval = grid, poll_interval

    def __getattr__(self, name):
        return getattr(self.grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        """Push the messages; pull replies until all came or `timeout` seconds passed."""
        waiting = {message_id for message_id in self.grid.push_messages(messages)
                   if message_id is not None}
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        replies = []
        while waiting:
            received = list(self.grid.pull_messages(waiting))
            replies.extend(received)
            waiting -= {msg.metadata.reply_to_message_id for msg in received}
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(self.poll_interval)
        return replies


def _write(path, record):
    """Write the record as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record))
    os.replace(partial, path)
