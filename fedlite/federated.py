"""One federated round as readable Python, in the vocabulary of Flower.

This is the version to read: a `Participant` (Flower calls it a client) owns its data and
answers `fit(parameters, config) -> (parameters, num_examples, metrics)`; the server's
`aggregate_fit` takes the n_k-weighted mean of what came back and `server_update` turns it into
the next model.  What `fit` does and what the server does with the mean are the algorithm's two
halves (`fedlite.algorithms`); a participant keeps its own state between rounds (SCAFFOLD's
control variate).  `fedlite.simulate` runs exactly this, compiled (`fedlite.engine`), and the
tests check that the two agree round by round.

Parameters travel as flat float64 vectors (`fedlite.core.model`: `model.pack`/`model.unpack`).
"""
from __future__ import annotations

import numpy as np

from .algorithms import ALGORITHMS, make_server_optimizer
from .core.model import build_model


class Participant:
    """A data owner: rows X (n_k, d), y (n_k,) that never leave it, its shuffling key, and the
    state it keeps between rounds (e.g. SCAFFOLD's control variate)."""

    def __init__(self, participant_id, X, y, key, model="linear", hidden=10):
        self.participant_id = participant_id
        self.X, self.y = X, y
        self.key = int(key)
        self.model = build_model(model, X.shape[1], hidden)
        self.state = None

    def loss_grad(self, theta, rows=slice(None)):
        """Mean loss and flat gradient (P,) on some of this participant's rows, at theta."""
        return self.model.loss_grad(self.X[rows], self.y[rows], theta)

    def fit(self, parameters, config):
        """Train on local data from the server's parameters; return (result, n_k, metrics).

        config: {"algorithm", "lr", "local_epochs", "batch_size", "mu", "round"} and, for
        SCAFFOLD, "server_state" (the server's control variate).
        FedSGD returns the gradient; the others return the locally trained weights.
        """
        algorithm = ALGORITHMS[config["algorithm"]]
        if self.state is None:
            P = self.model.num_params
            self.state = {name: values[0] for name, values in
                          algorithm.init_participant_state(1, P).items()}
        result = algorithm.fit(self.model, self.X, self.y, parameters, config, self.key,
                               config["round"], self.state, config.get("server_state", {}))
        self.state = result.state or self.state
        return result.parameters, result.num_examples, result.metrics

    def evaluate(self, parameters):
        """Mean loss of the model `parameters` on this participant's data."""
        return self.loss_grad(parameters)[0]


def aggregate_fit(results):
    """The server's aggregation: Σ_k n_k u_k / Σ_k n_k over results [(u_k, n_k, metrics), ...]."""
    total = sum(n for _, n, _ in results)
    mean = np.zeros_like(results[0][0])
    for update, n, _ in results:
        mean += n * update
    return mean / total


class Server:
    """The server half of an algorithm with its state (SCAFFOLD's c, optimiser moments)."""

    def __init__(self, config, num_participants, num_params, total_examples=None):
        """total_examples: N, the rows of all participants (SCAFFOLD weights its control
        variates by n_k / N); None = every participant has the same number of rows."""
        self.config = config
        self.total_examples = total_examples
        self.algorithm = ALGORITHMS[config["algorithm"]]
        self.optimizer = make_server_optimizer(_full_config(config))
        self.num_participants = num_participants
        self.state = {**self.algorithm.init_server_state(num_params),
                      "optimizer": self.optimizer.init(num_params)}

    def aggregate_fit(self, parameters, results, selected):
        """New parameters from [(u_k, n_k, metrics), ...] of the participants in `selected`."""
        sizes = np.array([n for _, n, _ in results], dtype=np.float64)
        total = (self.total_examples if self.total_examples is not None
                 else sizes.mean() * self.num_participants)
        extras = {"num_participants": self.num_participants, "weights": sizes / total}
        if results and "control_delta" in results[0][2]:
            extras["control_delta"] = np.array([metrics["control_delta"]
                                                for _, _, metrics in results])
        theta, self.state = self.algorithm.aggregate_fit(
            parameters, aggregate_fit(results), extras, selected, self.config, self.state,
            self.optimizer)
        return theta


def server_update(parameters, aggregate, config):
    """FedSGD: step against the mean gradient.  FedAvg/FedProx: the mean weights are the model."""
    if config["algorithm"] == "fedsgd":
        return parameters - config["lr"] * aggregate
    return aggregate


def run_round(participants, parameters, config, selected, server=None):
    """One round: the selected participants fit, the server aggregates and updates.

    server: a `Server` keeping state between rounds (needed for SCAFFOLD and server
    optimisers); None = plain FedSGD/FedAvg/FedProx, stateless."""
    if server is not None:
        config = {**config, "server_state": server.state}
    results = [participants[k].fit(parameters, config) for k in selected]
    if server is None:
        return server_update(parameters, aggregate_fit(results), config)
    return server.aggregate_fit(parameters, results, np.asarray(selected))


def make_participants(federation, keys=None, model="linear", hidden=10, seed=0):
    """One `Participant` per participant of a `Federation`.

    keys: each participant's shuffling key; None = the keys `fedlite.simulate(..., seed=seed)`
    uses, so the participants draw the same minibatches as the simulator.
    """
    from .simulation import _build_model, participant_keys_for_seed
    if keys is None:
        keys = participant_keys_for_seed(seed, federation.num_participants)
    model = _build_model(model, federation, hidden)   # one model for all (a classifier's classes)
    return [Participant(k, *federation.participant(k), keys[k], model, hidden)
            for k in range(federation.num_participants)]


def _full_config(config):
    """A config dict with the server-optimiser defaults filled in."""
    defaults = {"server_optimizer": "sgd", "server_lr": 1.0, "server_momentum": 0.9,
                "beta1": 0.9, "beta2": 0.99, "tau": 1e-3}
    return {**defaults, **{k: v for k, v in dict(config).items() if v is not None}}
