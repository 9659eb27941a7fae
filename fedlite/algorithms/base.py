"""What an algorithm is: a participant half and a server half, in Flower's vocabulary.

Participant half (Flower: the client's `fit`): from the server's parameters and the round's
config, train on local data and report back.  It may keep state between rounds (SCAFFOLD's
control variate c_k), which lives in `participant_state`: a dict of (K, P) arrays, row k
belonging to participant k; a participant that sits a round out keeps its row.
  fit(model, X, y, theta, config, key, round_number, state_k, server_state) -> FitResult
      the readable Python version, one participant (what `fedlite.federated` shows)
  fit_selected(model, federation, selected, keys, round_number, theta, config,
               participant_state, server_state) -> (reports (m, P), extras, participant_state)
      every selected participant at once: the compiled engine when the model has a compiled
      kernel, else `fit` in a loop.  Tested equal to `fit` to 1e-12 for every model.

Server half (Flower: the strategy's `aggregate_fit`): turn the n_k-weighted mean of the
reports (computed by the engine in a fixed order, or by an aggregator) into the next model,
and update the server's state (control variate c, optimiser moments), a dict of (P,) arrays.
  aggregate_fit(theta, mean_report, extras, selected, config, server_state, optimizer)
      -> (new theta, new server_state)

`reports` says what participants send: "gradient" (FedSGD) or "weights" (the rest: their
locally trained parameters; aggregators such as secure aggregation get weights - theta).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .. import engine

FULL_BATCH = 2**62  # what batch_size=None means to the engine


@dataclass
class FitResult:
    """What one participant sends back: Flower's (parameters, num_examples, metrics)."""

    parameters: np.ndarray
    num_examples: int
    metrics: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # the participant's own state after this round


@runtime_checkable
class Algorithm(Protocol):
    name: str
    reports: str                      # "gradient" or "weights"
    accepts_server_optimizer: bool

    def init_participant_state(self, num_participants: int, num_params: int) -> dict: ...
    def init_server_state(self, num_params: int) -> dict: ...
    def fit(self, model, X, y, theta, config, key, round_number, state_k, server_state): ...
    def fit_selected(self, model, federation, selected, keys, round_number, theta, config,
                     participant_state, server_state): ...
    def aggregate_fit(self, theta, mean_report, extras, selected, config, server_state,
                      optimizer): ...


class LocalSGD:
    """The participant half shared by FedAvg, FedProx and SCAFFOLD: local epochs of minibatch SGD.

    v <- v - lr (∇f_batch(v) + mu (v - theta) + correction), from v = theta, visiting the rows
    in the order `engine.shuffle_order(key, round, epoch, n)`; batch_size None = full batch.
    mu = 0 and correction = 0 is FedAvg.  Subclasses say what the correction is.
    """

    reports = "weights"
    accepts_server_optimizer = True

    def init_participant_state(self, num_participants, num_params):
        return {}

    def init_server_state(self, num_params):
        return {}

    # -- the readable version: one participant, plain Python over minibatches
    def local_sgd(self, model, X, y, theta, config, key, round_number, correction=None):
        """Return (trained parameters (P,), number of local steps taken)."""
        n = len(y)
        batch_size = config["batch_size"] or n
        mu, lr = config["mu"], config["lr"]
        v = theta.copy()
        steps = 0
        for epoch in range(config["local_epochs"]):
            order = (np.arange(n) if batch_size >= n
                     else engine.shuffle_order(key, round_number, epoch, n))
            for start in range(0, n, batch_size):
                _, grad = model.loss_grad(X[order[start:start + batch_size]],
                                          y[order[start:start + batch_size]], v)
                if mu != 0:
                    grad = grad + mu * (v - theta)        # from mu/2 ||v - theta||²
                if correction is not None:
                    grad = grad + correction              # SCAFFOLD: c - c_k
                v = v - lr * grad
                steps += 1
        return v, steps

    def fit(self, model, X, y, theta, config, key, round_number, state_k, server_state):
        v, _ = self.local_sgd(model, X, y, theta, config, key, round_number)
        return FitResult(v, len(y))

    # -- every selected participant at once
    def corrections(self, selected, participant_state, server_state, num_params):
        """(m, P) per-participant gradient corrections, or None (FedAvg, FedProx)."""
        return None

    def fit_selected(self, model, federation, selected, keys, round_number, theta, config,
                     participant_state, server_state):
        corrections = self.corrections(selected, participant_state, server_state, theta.size)
        if model.engine_code is None:
            reports = np.empty((len(selected), theta.size))
            for s, k in enumerate(selected):
                X_k, y_k = federation.participant(k)
                correction = None if corrections is None else corrections[s]
                reports[s] = self.local_sgd(model, X_k, y_k, theta, config, keys[k],
                                            round_number, correction)[0]
        else:
            batch = FULL_BATCH if config["batch_size"] is None else config["batch_size"]
            reports = engine.local_updates(
                model.engine_code, engine.LOCAL_SGD, federation.X, federation.y,
                federation.offsets, selected, keys, round_number, theta, model.num_features,
                max(model.hidden, 1), config["lr"], config["local_epochs"], batch, config["mu"],
                np.empty((0, theta.size)) if corrections is None else corrections)
        return reports, {}, participant_state

    # -- the server half
    def aggregate_fit(self, theta, mean_report, extras, selected, config, server_state,
                      optimizer):
        """The mean of the participants' weights is the new model (FedAvg), or, with a server
        optimiser, pseudo-gradient g = theta - mean weights = minus the mean weight change."""
        new_theta, moments = optimizer.step(theta, mean_report, server_state.get("optimizer", {}))
        return new_theta, {**server_state, "optimizer": moments}


def local_steps(sizes, batch_size, local_epochs):
    """Local SGD steps each participant takes in a round: epochs x ceil(n_k / batch), (m,)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if batch_size is None:
        return np.full(sizes.shape, local_epochs, dtype=np.int64)
    return local_epochs * (-(-sizes // batch_size))
