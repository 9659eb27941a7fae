"""FedSGD: each participant sends its full-batch mean gradient; the server steps against the
n_k-weighted mean, theta <- theta - lr Σ_k n_k g_k / Σ_k n_k, which with everyone taking part
is exactly gradient descent on the pooled data (notebook 03)."""
from __future__ import annotations

import numpy as np

from .. import engine
from .base import FitResult


class FedSGD:
    name = "fedsgd"
    reports = "gradient"
    accepts_server_optimizer = False

    def init_participant_state(self, num_participants, num_params):
        return {}

    def init_server_state(self, num_params):
        return {}

    def fit(self, model, X, y, theta, config, key, round_number, state_k, server_state):
        """The participant half, readable: the mean gradient of the local loss at theta."""
        loss, grad = model.loss_grad(X, y, theta)
        return FitResult(grad, len(y), {"loss": loss})

    def fit_selected(self, model, federation, selected, keys, round_number, theta, config,
                     participant_state, server_state):
        if model.engine_code is None:
            reports = np.array([self.fit(model, *federation.participant(k), theta, config,
                                         keys[k], round_number, {}, server_state).parameters
                                for k in selected]).reshape(len(selected), theta.size)
        else:
            reports = engine.local_updates(
                model.engine_code, engine.GRADIENT, federation.X, federation.y,
                federation.offsets, selected, keys, round_number, theta, model.num_features,
                max(model.hidden, 1), config["lr"], 1, 1, 0.0, np.empty((0, theta.size)))
        return reports, {}, participant_state

    def aggregate_fit(self, theta, mean_report, extras, selected, config, server_state,
                      optimizer):
        """The server half: one gradient step, theta - lr · mean gradient."""
        return theta - config["lr"] * mean_report, server_state
