"""One federated round as readable Python, in the vocabulary of Flower.

This is the version to read: a `Participant` (Flower calls it a client) owns its data and
answers `fit(parameters, config) -> (parameters, num_examples, metrics)`; the server's
`aggregate_fit` takes the n_k-weighted mean of what came back and `server_update` turns it into
the next model.  `fedlite.simulate` runs exactly this, compiled (`fedlite.engine`), and the
tests check that the two agree round by round.

Parameters travel as flat float64 vectors (`fedlite.parameters`).
"""
from __future__ import annotations

import numpy as np

from . import engine
from .models import linear_loss_grad, mlp_loss_grad
from .parameters import pack, unpack


class Participant:
    """A data owner: rows X (n_k, d), y (n_k,) that never leave it, and its shuffling key."""

    def __init__(self, participant_id, X, y, key, model="linear", hidden=10):
        self.participant_id = participant_id
        self.X, self.y = X, y
        self.key = int(key)
        self.model, self.hidden = model, hidden

    def loss_grad(self, theta, rows=slice(None)):
        """Mean loss and flat gradient (P,) on some of this participant's rows, at theta."""
        X, y = self.X[rows], self.y[rows]
        params = unpack(theta, self.model, X.shape[1], self.hidden)
        if self.model == "linear":
            loss, grad_w, grad_b = linear_loss_grad(X, y, *params)
            return loss, pack((grad_w, grad_b))
        loss, grads = mlp_loss_grad(X, y, *params)
        return loss, pack(grads)

    def fit(self, parameters, config):
        """Train on local data from the server's parameters; return (result, n_k, metrics).

        config: {"algorithm", "lr", "local_epochs", "batch_size", "mu", "round"}.
        FedSGD returns the gradient; FedAvg/FedProx return the locally trained weights.
        """
        n = len(self.y)
        if config["algorithm"] == "fedsgd":
            loss, grad = self.loss_grad(parameters)
            return grad, n, {"loss": loss}
        batch_size = config["batch_size"] or n
        mu, lr = config["mu"], config["lr"]
        theta = parameters.copy()
        for epoch in range(config["local_epochs"]):
            order = (np.arange(n) if batch_size >= n
                     else engine.shuffle_order(self.key, config["round"], epoch, n))
            for start in range(0, n, batch_size):
                _, grad = self.loss_grad(theta, order[start:start + batch_size])
                if mu != 0:
                    grad = grad + mu * (theta - parameters)   # from mu/2 ||theta - parameters||²
                theta = theta - lr * grad
        return theta, n, {}

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


def server_update(parameters, aggregate, config):
    """FedSGD: step against the mean gradient.  FedAvg/FedProx: the mean weights are the model."""
    if config["algorithm"] == "fedsgd":
        return parameters - config["lr"] * aggregate
    return aggregate


def run_round(participants, parameters, config, selected):
    """One round: the selected participants fit, the server aggregates and updates."""
    results = [participants[k].fit(parameters, config) for k in selected]
    return server_update(parameters, aggregate_fit(results), config)


def make_participants(federation, keys=None, model="linear", hidden=10, seed=0):
    """One `Participant` per participant of a `Federation`.

    keys: each participant's shuffling key; None = the keys `fedlite.simulate(..., seed=seed)`
    uses, so the participants draw the same minibatches as the simulator.
    """
    if keys is None:
        from .simulation import participant_keys_for_seed
        keys = participant_keys_for_seed(seed, federation.num_participants)
    return [Participant(k, *federation.participant(k), keys[k], model, hidden)
            for k in range(federation.num_participants)]
