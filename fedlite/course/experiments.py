"""The runs behind every explorer of the course, as plain functions (no widgets, no plotting).

Each widget in `fedlite.widgets` calls one of these when a slider moves; a notebook or a test
can call them directly and look at the numbers.  Bad combinations (more participants than
rows, a batch bigger than a participant's data, ...) raise ValueError from `split`/`simulate`.

Client drift (`drift_runs`): with several local epochs, each participant walks towards its own
optimum before the server averages, so FedAvg settles at a point that is not the optimum of the
pooled data.  `pooled_optimum` is that optimum (least squares on all rows, what centralised
training converges to), and `distance_to_optimum`/`excess_loss` say how far a run ended from it.
`divergence_reason` says why a run diverged (for the linear model: which step-size condition
failed), so that an explorer can name the cause instead of guessing.
"""
from __future__ import annotations

import numpy as np

from ..core.model import LinearModel
from ..data import load_digits
from ..partition import Federation, make_concept_shift, split
from ..simulation import History, simulate


def convergence_federation(X, y, *, num_participants, scheme="iid", alpha=None, seed=0,
                           shards_per_participant=None):
    """The Federation `convergence_run` trains on: split(X, y, num_participants, ...) with any
    of split's schemes (the label-skew ones, "dirichlet" and "shards", need class labels y)."""
    return split(X, y, num_participants, scheme=scheme, alpha=alpha, seed=seed,
                 shards_per_participant=shards_per_participant)


def convergence_run(X, y, *, num_participants, lr, participation=1.0, model="linear",
                    algorithm="fedsgd", scheme="iid", alpha=None, num_rounds=50, local_epochs=1,
                    batch_size=None, mu=0.0, hidden=10, seed=0, shards_per_participant=None):
    """Split the pooled data X (N, d), y (N,) among num_participants, then simulate: a History."""
    federation = convergence_federation(X, y, num_participants=num_participants, scheme=scheme,
                                        alpha=alpha, seed=seed,
                                        shards_per_participant=shards_per_participant)
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
    federation = _check_federation(federation)
    A = np.column_stack([federation.X, np.ones(federation.num_samples)])
    theta, *_ = np.linalg.lstsq(A, federation.y, rcond=None)
    return theta[:-1], float(theta[-1])


def distance_to_optimum(history, federation):
    """||(w, b) - (w*, b*)||: how far a linear run's final model is from the pooled optimum."""
    _check_linear_run(history, federation, "distance_to_optimum")
    w_opt, b_opt = pooled_optimum(federation)
    return float(np.linalg.norm(history.theta - np.append(w_opt, b_opt)))


def excess_loss(history, federation):
    """(R+1,) loss after each round minus the pooled optimum's loss (>= 0, up to round-off)."""
    _check_run(history, federation)
    w_opt, b_opt = pooled_optimum(federation)
    with np.errstate(over="ignore", invalid="ignore"):
        r = federation.X @ w_opt + b_opt - federation.y
        optimum_loss = float(r @ r) / (2 * federation.num_samples)
    if not np.isfinite(optimum_loss):
        raise ValueError("the pooled optimum's loss overflows float64 (the federation's values "
                         "are too large to square); rescale X and y")
    return history.loss - optimum_loss


def divergence_reason(history, federation):
    """Why a run diverged, in words: the step-size condition that failed, or "lr is too large".

    For the linear model trained with full batches the cause is exact.  Gradient descent on a
    quadratic with Hessian H is stable only if lr·λ_max(H) < 2.  Participant k's loss has
    H_k = A_kᵀ A_k / n_k with A_k = [X_k, 1], and FedProx's proximal term adds mu·I, so:
      FedSGD   (the server steps along the pooled gradient)   lr·λ_max(H) < 2, H pooled;
      FedAvg   (local steps)                                   lr·λ_max(H_k) < 2 for every k;
      FedProx  (local steps with the pull towards the server)  lr·(λ_max(H_k) + mu) < 2.
    In any other case (MLP, minibatches, other algorithms) the text blames lr, as a hint.
    """
    _check_run(history, federation)
    c = history.config
    algorithm, lr, mu = c["algorithm"], c["lr"], c.get("mu", 0.0)
    generic = f"lr = {lr:.3g} is too large; try a smaller one"
    if (c["model"] != "linear" or algorithm not in ("fedsgd", "fedavg", "fedprox")
            or c.get("batch_size") is not None):
        return generic
    if algorithm == "fedsgd":
        lam = _largest_curvature(federation.X)
        if lr * lam < 2:
            return generic
        return (f"FedSGD's step is stable only if lr·λ_max(H) < 2 (H: the Hessian of the pooled "
                f"loss); here {lr:.3g} × {lam:.3g} = {lr * lam:.3g}: lower lr")
    lams = [_largest_curvature(federation.participant(k)[0])
            for k in range(federation.num_participants)]
    k = int(np.argmax(lams))
    factor = lr * (lams[k] + mu)
    if factor < 2:
        return generic
    if algorithm == "fedavg" or mu == 0:
        return (f"the local step is stable only if lr·λ_max(H_k) < 2 for every participant k; "
                f"here {lr:.3g} × {lams[k]:.3g} = {factor:.3g} for participant {k}: lower lr")
    hint = (f"lr·mu alone is {lr * mu:.3g}, so lower mu (or lr)" if lr * mu >= 2
            else "lower lr or mu")
    return (f"FedProx's local step is stable only if lr·(λ_max(H_k) + mu) < 2 for every "
            f"participant k; here {lr:.3g} × ({lams[k]:.3g} + {mu:g}) = {factor:.3g} for "
            f"participant {k}: {hint}")


def largest_curvatures(federation):
    """λ_max(H_k) of each participant's squared loss for the linear model with bias, (K,).

    H_k = A_kᵀA_k / n_k with A_k = [X_k, 1]: local gradient steps are stable only while
    lr · (λ_max(H_k) + mu) < 2 (notebook 06)."""
    federation = _check_federation(federation)
    return np.array([_largest_curvature(federation.participant(k)[0])
                     for k in range(federation.num_participants)])


def _largest_curvature(X):
    """λ_max of the squared loss's Hessian AᵀA / n, A = [X, 1] (the linear model with bias)."""
    A = np.column_stack([X, np.ones(len(X))])
    return float(np.linalg.eigvalsh(A.T @ A / len(X))[-1])


def _check_federation(federation):
    if not isinstance(federation, Federation):
        raise TypeError(f"federation must be a fedlite Federation (e.g. from fedlite.split); "
                        f"got {type(federation).__name__}")
    return federation


def _check_run(history, federation):
    """A History (from simulate) and the Federation it was trained on (same number of features)."""
    if not isinstance(history, History):
        raise TypeError(f"history must be a fedlite History (the result of fedlite.simulate); "
                        f"got {type(history).__name__}")
    _check_federation(federation)
    if history.config["num_features"] != federation.num_features:
        raise ValueError(f"history and federation do not match: the run had "
                         f"{history.config['num_features']} features, the federation has "
                         f"{federation.num_features}")


def _check_linear_run(history, federation, function):
    _check_run(history, federation)
    if history.config["model"] != "linear":
        raise ValueError(f"{function} needs a run of the linear model (the MLP has no single "
                         f"optimum); got model={history.config['model']!r}")


# ----------------------------------------------------------------------------- drift correction
# Notebook 07: SCAFFOLD's control variates remove the drift that FedProx only reduces, and a
# server optimiser (momentum, Adam, Yogi, Adagrad) changes what the server does with the mean
# weight change.  `tracked_run` records the distance to the pooled optimum after every round.

DRIFT_CORRECTION_ALGORITHMS = {"FedAvg": "fedavg", "FedProx": "fedprox", "SCAFFOLD": "scaffold"}


class DistanceTracking(LinearModel):
    """The linear model, also recording after each round how far the server's model is from
    `target` (simulate stores what a model's `round_metrics` returns in History.metrics)."""

    def __init__(self, num_features, target):
        super().__init__(num_features)
        self.target = np.array(target, dtype=np.float64)

    def round_metrics(self, reports, num_examples, theta, new_theta):
        return {"distance": float(np.linalg.norm(new_theta - self.target))}


def tracked_run(federation, **simulate_kwargs):
    """simulate the linear model on `federation` from zero, keeping its distance to the pooled
    optimum after every round: returns (History, distance (R+1,)) with distance[r] =
    ||theta_r - (w*, b*)||, distance[0] = ||(w*, b*)|| (the start).  simulate_kwargs go to
    `fedlite.simulate` (all but model, init and resume)."""
    for name in ("model", "init", "resume"):
        if name in simulate_kwargs:
            raise TypeError(f"tracked_run trains the linear model from zero; do not pass {name}=")
    w_opt, b_opt = pooled_optimum(federation)
    target = np.append(w_opt, b_opt)
    history = simulate(federation, model=DistanceTracking(federation.num_features, target),
                       **simulate_kwargs)
    distance = np.concatenate([[np.linalg.norm(target)],
                               history.metrics.get("distance", np.empty(0))])
    return history, distance


def drift_correction_runs(*, server_optimizer="sgd", server_lr=None, local_epochs=10, mu=1.0,
                          lr=0.05, num_rounds=150, batch_size=None, spread=1.0,
                          num_participants=10, samples_per_participant=20, num_features=5,
                          seed=0, server_momentum=0.9, beta1=0.9, beta2=0.99, tau=1e-3):
    """FedAvg, FedProx(mu) and SCAFFOLD on concept-shift data, all with the same server optimiser.

    Returns {"FedAvg": (History, distance), "FedProx": ..., "SCAFFOLD": ...}, distance (R+1,)
    the distance to the pooled optimum (w*, b*) after each round (`tracked_run`).  The data are
    `drift_federation(spread=spread, ...)` with the same arguments.  server_optimizer,
    server_lr (None: simulate's default for that optimiser), server_momentum, beta1, beta2 and
    tau go to `fedlite.simulate`, which checks them all, as it checks the rest.
    With the defaults (notebook 06's data, 10 local epochs, lr 0.05, 150 rounds) FedAvg ends
    about 0.06 from (w*, b*), FedProx(mu=1) 0.056 and SCAFFOLD 1e-14 or closer.
    """
    federation = drift_federation(spread=spread, num_participants=num_participants,
                                  samples_per_participant=samples_per_participant,
                                  num_features=num_features, seed=seed)
    common = dict(num_rounds=num_rounds, lr=lr, local_epochs=local_epochs,
                  batch_size=batch_size, seed=seed, server_optimizer=server_optimizer,
                  server_lr=server_lr, server_momentum=server_momentum, beta1=beta1,
                  beta2=beta2, tau=tau)
    return {name: tracked_run(federation, algorithm=algorithm,
                              mu=mu if algorithm == "fedprox" else 0.0, **common)
            for name, algorithm in DRIFT_CORRECTION_ALGORITHMS.items()}


# ----------------------------------------------------------------------------------- label skew
# Notebook 08: the handwritten digits split among participants by label (each class spread over
# them by a Dirichlet(alpha)), softmax regression trained by FedAvg, FedProx, SCAFFOLD and
# FedAvgM, measured by accuracy on the held-out test images.  The ceiling is centralised
# training: one participant holding every training image (`centralised_run`).

LABEL_SKEW_RUNS = {  # name -> what simulate gets besides the shared settings
    "FedAvg": dict(algorithm="fedavg"),
    "FedProx": dict(algorithm="fedprox"),           # with label_skew_runs' mu
    "SCAFFOLD": dict(algorithm="scaffold"),
    "FedAvgM": dict(algorithm="fedavg", server_optimizer="momentum"),  # with its server_lr
}
CENTRALISED = "centralised"


def digits_federation(*, alpha, num_participants=100, scheme="dirichlet",
                      shards_per_participant=None, seed=0, data_seed=0):
    """(federation, (X_test, y_test)): the training images of `load_digits(seed=data_seed)`
    split among num_participants by `split(..., scheme, alpha, seed)` (label skew: "dirichlet",
    the default, or "shards"; alpha None for "shards"), and the test images."""
    X, y, X_test, y_test = load_digits(seed=data_seed)
    federation = split(X, y, num_participants, scheme=scheme, alpha=alpha, seed=seed,
                       shards_per_participant=shards_per_participant)
    return federation, (X_test, y_test)


def centralised_run(*, local_epochs=10, lr=1.0, num_rounds=50, model="softmax", hidden=32,
                    seed=0, data_seed=0):
    """The ceiling: one participant holds every training image, so a FedAvg round is
    local_epochs full-batch gradient steps on the pooled data, and the run is
    local_epochs · num_rounds steps of plain gradient descent at lr (the same steps per round as
    each participant of a federated run takes).  A History with test_accuracy per round."""
    federation, test = digits_federation(alpha=None, num_participants=1, scheme="iid",
                                         seed=seed, data_seed=data_seed)
    return simulate(federation, model=model, hidden=hidden, algorithm="fedavg",
                    local_epochs=local_epochs, lr=lr, num_rounds=num_rounds, seed=seed,
                    test=test)


def label_skew_runs(*, alpha, num_participants=100, participation=0.1, local_epochs=10, lr=1.0,
                    num_rounds=50, mu=0.01, server_lr=0.3, server_momentum=0.9,
                    model="softmax", hidden=32, algorithms=tuple(LABEL_SKEW_RUNS),
                    centralised=True, scheme="dirichlet", shards_per_participant=None, seed=0,
                    data_seed=0):
    """FedAvg, FedProx(mu), SCAFFOLD and FedAvgM (server momentum) on the digits under label
    skew: {name: History}, each with History.test_accuracy (R+1,) on the test images.

    The data are `digits_federation(alpha=alpha, ...)` with the same arguments.  Each round a
    fraction `participation` of the participants (10 of 100 by default, as in McMahan et al.,
    2017) takes local_epochs full-batch local steps at lr; FedAvgM's server adds
    server_momentum times its last step to each mean weight change, and steps by server_lr.
    mu = 0.01 and server_lr = 0.3 are the best of the grids mu in {0.01, 0.03, 0.1, 0.3, 1}
    and server_lr in {0.1, 0.3, 1, 2, 3} (the median over seeds 10, 11 and 12, not those
    notebook 08 reports, of the test accuracy averaged over rounds 41 to 50, at alpha = 0.1
    and the other defaults); FedProx does best with the grid's smallest mu, closest to FedAvg.
    algorithms: some of the names of LABEL_SKEW_RUNS.  centralised: also run `centralised_run`
    with the same local_epochs, lr and num_rounds, under the name "centralised".
    simulate and split check every argument and refuse bad ones with their own messages.
    """
    algorithms = _check_names(algorithms, "algorithms", LABEL_SKEW_RUNS)
    federation, test = digits_federation(alpha=alpha, num_participants=num_participants,
                                         scheme=scheme,
                                         shards_per_participant=shards_per_participant,
                                         seed=seed, data_seed=data_seed)
    common = dict(model=model, hidden=hidden, participation=participation,
                  local_epochs=local_epochs, lr=lr, num_rounds=num_rounds, seed=seed, test=test)
    runs = {}
    for name in algorithms:
        extra = dict(LABEL_SKEW_RUNS[name])
        if extra["algorithm"] == "fedprox":
            extra["mu"] = mu
        if extra.get("server_optimizer") == "momentum":
            extra.update(server_lr=server_lr, server_momentum=server_momentum)
        runs[name] = simulate(federation, **common, **extra)
    if centralised:
        runs[CENTRALISED] = centralised_run(local_epochs=local_epochs, lr=lr,
                                            num_rounds=num_rounds, model=model, hidden=hidden,
                                            seed=seed, data_seed=data_seed)
    return runs


def _check_names(names, argument, known):
    """A tuple of names, each a key of `known` (no repeats), or TypeError/ValueError naming
    `argument`."""
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise TypeError(f"{argument} must be a tuple of names, some of {tuple(known)}; "
                        f"got {type(names).__name__}")
    unknown = [name for name in names if not isinstance(name, str) or name not in known]
    if unknown:
        raise ValueError(f"{argument} must name some of {tuple(known)}; got {unknown[0]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{argument} must not repeat a name; got {list(names)}")
    return tuple(names)
