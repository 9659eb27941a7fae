"""Server optimisers (Reddi et al., 2021, "Adaptive Federated Optimization", Algorithm 2).

The server treats the mean weight change of a round, Δ = Σ n_k y_k / Σ n_k - x, as a step to
take; the pseudo-gradient is g = -Δ.  Each optimiser is an `init`/`step` pair (optax's shape):
its state (P,) arrays live in the run's server state, so a resumed run continues exactly.

  sgd       x <- x + eta Δ                       eta = server_lr (1: plain FedAvg, bit for bit)
  momentum  m <- beta m + g;  x <- x - eta m      (FedAvgM, Hsu et al. 2019; beta = server_momentum)
  adagrad   m <- b1 m + (1 - b1) Δ;  v <- v + Δ²
  adam      m <- b1 m + (1 - b1) Δ;  v <- b2 v + (1 - b2) Δ²
  yogi      m <- b1 m + (1 - b1) Δ;  v <- v - (1 - b2) Δ² sign(v - Δ²)
            and for these three  x <- x + eta m / (sqrt(v) + tau),   m_0 = 0, v_0 = tau²
Defaults as in the paper: b1 = 0.9, b2 = 0.99, tau = 1e-3; server_lr 1 for sgd and momentum,
0.1 for the adaptive ones (the paper tunes eta per task: try a few).  No bias correction, as in
the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ServerSGD:
    server_lr: float = 1.0
    name = "sgd"

    def init(self, num_params):
        return {}

    def step(self, theta, mean_weights, state):
        if self.server_lr == 1.0:
            return mean_weights.copy(), state         # FedAvg: the mean is the model
        return theta + self.server_lr * (mean_weights - theta), state


@dataclass(frozen=True)
class ServerMomentum:
    server_lr: float = 1.0
    server_momentum: float = 0.9
    name = "momentum"

    def init(self, num_params):
        return {"momentum": np.zeros(num_params)}

    def step(self, theta, mean_weights, state):
        g = theta - mean_weights                      # pseudo-gradient
        m = self.server_momentum * state["momentum"] + g
        return theta - self.server_lr * m, {"momentum": m}


@dataclass(frozen=True)
class ServerAdaptive:
    """FedAdagrad, FedAdam and FedYogi: they differ only in how v is updated (`second_moment`)."""

    server_lr: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3
    name = "adaptive"

    def init(self, num_params):
        return {"m": np.zeros(num_params), "v": np.full(num_params, self.tau ** 2)}

    def step(self, theta, mean_weights, state):
        delta = mean_weights - theta                  # = -pseudo-gradient
        m = self.beta1 * state["m"] + (1.0 - self.beta1) * delta
        v = self.second_moment(state["v"], delta * delta)
        return theta + self.server_lr * m / (np.sqrt(v) + self.tau), {"m": m, "v": v}


class ServerAdagrad(ServerAdaptive):
    name = "adagrad"

    def second_moment(self, v, delta_sq):
        return v + delta_sq


class ServerAdam(ServerAdaptive):
    name = "adam"

    def second_moment(self, v, delta_sq):
        return self.beta2 * v + (1.0 - self.beta2) * delta_sq


class ServerYogi(ServerAdaptive):
    name = "yogi"

    def second_moment(self, v, delta_sq):
        return v - (1.0 - self.beta2) * delta_sq * np.sign(v - delta_sq)


SERVER_OPTIMIZERS = {"sgd": ServerSGD, "momentum": ServerMomentum, "adagrad": ServerAdagrad,
                     "adam": ServerAdam, "yogi": ServerYogi}


def make_server_optimizer(config):
    """The optimiser a RunConfig asks for, with its settings."""
    name = config["server_optimizer"]
    if name == "sgd":
        return ServerSGD(config["server_lr"])
    if name == "momentum":
        return ServerMomentum(config["server_lr"], config["server_momentum"])
    return SERVER_OPTIMIZERS[name](config["server_lr"], config["beta1"], config["beta2"],
                                   config["tau"])
