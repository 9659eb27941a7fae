"""The runs behind every explorer of the course, as plain functions (no widgets, no plotting).

Each widget in `fedlite.widgets` calls one of these when a slider moves; a notebook or a test
can call them directly and look at the numbers.  Bad combinations (more participants than
rows, a batch bigger than a participant's data, ...) raise ValueError from `split`/`simulate`.

Client drift (`drift_runs`): with several local epochs, each participant walks towards its own
optimum before the server averages, so FedAvg settles at a point that is not the optimum of the
pooled data.  `pooled_optimum` is that optimum (least squares on all rows, what centralised
training converges to), and `distance_to_optimum`/`excess_loss` say how far a run ended from it.
"""
from __future__ import annotations

import numpy as np

from .partition import make_concept_shift, split
from .simulation import simulate


def convergence_run(X, y, *, num_participants, lr, participation=1.0, model="linear",
                    algorithm="fedsgd", scheme="iid", alpha=None, num_rounds=50, local_epochs=1,
                    batch_size=None, mu=0.0, hidden=10, seed=0):
    """Split the pooled data X (N, d), y (N,) among num_participants, then simulate: a History."""
    federation = split(X, y, num_participants, scheme=scheme, alpha=alpha, seed=seed)
    return simulate(federation, model=model, algorithm=algorithm, num_rounds=num_rounds, lr=lr,
                    local_epochs=local_epochs, batch_size=batch_size, mu=mu,
                    participation=participation, hidden=hidden, seed=seed)


def local_epochs_runs(federation, *, local_epochs, lr, num_rounds=50, batch_size=None, seed=0,
                      model="linear", hidden=10):
    """FedSGD (one gradient per round, server step lr) and FedAvg (local_epochs of local SGD at lr).

    Returns {"FedSGD": History, "FedAvg": History}: compare the rounds (and bytes) each needs to
    reach a loss, e.g. with `history.rounds_to(target)` and `history.bytes_total`.
    """
    common = dict(model=model, num_rounds=num_rounds, lr=lr, hidden=hidden, seed=seed)
    return {
        "FedSGD": simulate(federation, algorithm="fedsgd", **common),
        "FedAvg": simulate(federation, algorithm="fedavg", local_epochs=local_epochs,
                           batch_size=batch_size, **common),
    }


def drift_federation(*, spread, num_participants=10, samples_per_participant=20, num_features=5,
                     seed=0):
    """The concept-shift data of `drift_runs`: participant k's true w is w + spread · N(0, I)."""
    federation, _, _ = make_concept_shift(num_participants, samples_per_participant,
                                          num_features, spread=spread, seed=seed)
    return federation


def drift_runs(*, spread, mu, local_epochs=10, num_participants=10, samples_per_participant=20,
               num_features=5, lr=0.1, num_rounds=50, seed=0):
    """FedAvg, FedProx(mu) and FedSGD on concept-shift data: {"FedAvg", "FedProx", "FedSGD"} -> run.

    The data are `drift_federation(spread=spread, ...)` with the same arguments, so
    `distance_to_optimum(history, drift_federation(...))` says how far each run ended from the
    pooled optimum.  With the defaults (spread=1, 10 local epochs, lr=0.1, 50 rounds, seed 0)
    the final distances are about FedAvg 0.11, FedProx(mu=1) 0.097, FedSGD 0.011: FedSGD
    follows the pooled gradient, so it heads for the right point; FedAvg gets close fast but
    settles away from it; FedProx's pull towards the server's model reduces the drift.
    """
    federation = drift_federation(spread=spread, num_participants=num_participants,
                                  samples_per_participant=samples_per_participant,
                                  num_features=num_features, seed=seed)
    common = dict(model="linear", num_rounds=num_rounds, lr=lr, seed=seed)
    return {
        "FedAvg": simulate(federation, algorithm="fedavg", local_epochs=local_epochs, **common),
        "FedProx": simulate(federation, algorithm="fedprox", local_epochs=local_epochs, mu=mu,
                            **common),
        "FedSGD": simulate(federation, algorithm="fedsgd", **common),
    }


def pooled_optimum(federation):
    """(w, b) minimising the loss on all rows together: least squares on [X, 1]."""
    A = np.column_stack([federation.X, np.ones(federation.num_samples)])
    theta, *_ = np.linalg.lstsq(A, federation.y, rcond=None)
    return theta[:-1], float(theta[-1])


def distance_to_optimum(history, federation):
    """||(w, b) - (w*, b*)||: how far a linear run's final model is from the pooled optimum."""
    if history.config["model"] != "linear":
        raise ValueError("distance_to_optimum needs a run of the linear model "
                         f"(the MLP has no single optimum); got model={history.config['model']!r}")
    w_opt, b_opt = pooled_optimum(federation)
    return float(np.linalg.norm(history.theta - np.append(w_opt, b_opt)))


def excess_loss(history, federation):
    """(R+1,) loss after each round minus the pooled optimum's loss (>= 0, up to round-off)."""
    w_opt, b_opt = pooled_optimum(federation)
    r = federation.X @ w_opt + b_opt - federation.y
    return history.loss - float(r @ r) / (2 * federation.num_samples)
