"""`simulate`: run federated training on a `Federation` and return its `History`.

One round (the article's loop): the server sends the model to the selected participants; each
computes on its own data (FedSGD: one gradient; FedAvg/FedProx: a few epochs of local SGD) and
sends the result back; the server takes the n_k-weighted mean and updates the model.  The
rounds run in compiled code (`fedlite.engine`); `fedlite.federated` is the same round as
readable Python.  Nothing here prints or plots: the caller decides what to show.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import engine
from .parameters import BYTES_PER_VALUE, MODELS, init_params, num_params, pack, unpack
from .validation import as_float, as_int

ALGORITHMS = ("fedsgd", "fedavg", "fedprox")
DIVERGENCE_FACTOR = 1e6  # a loss this many times the starting loss counts as diverged
FULL_BATCH = 2**62       # what batch_size=None means to the engine


@dataclass
class History:
    """What happened in a simulated run (R = rounds completed).

    loss             (R+1,)   global training loss Σ_k n_k L_k / N after each round; [0] before training
    participant_loss (R+1, K) each participant's loss L_k on its own data under the global model
    selected         (R, m)   which participants took part in each round (ids, ascending)
    bytes_up         (R,)     bytes sent participants -> server in each round (int; parameters
                              count 8 bytes each, as float64)
    bytes_down       (R,)     bytes sent server -> participants in each round (int)
    theta            (P,)     final parameters as one flat vector; `params` gives them as a tuple
    diverged_at      None, or the round whose loss was not finite or exceeded
                     DIVERGENCE_FACTOR x loss[0]; the run stopped there and the history ends at
                     the round before it (everything stored is finite)
    config           the arguments of `simulate`
    """

    loss: np.ndarray
    participant_loss: np.ndarray
    selected: np.ndarray
    bytes_up: np.ndarray
    bytes_down: np.ndarray
    theta: np.ndarray
    diverged_at: int | None
    config: dict = field(repr=False)

    @property
    def params(self):
        """Final parameters: (w, b) for the linear model, (W1, b1, W2, b2) for the MLP."""
        c = self.config
        return unpack(self.theta, c["model"], c["num_features"], c["hidden"])

    @property
    def num_rounds(self):
        """Rounds completed (fewer than asked for if the run diverged)."""
        return len(self.loss) - 1

    @property
    def diverged(self):
        return self.diverged_at is not None

    @property
    def bytes_total(self):
        """(R+1,) cumulative bytes sent both ways up to each round; [0] = 0."""
        return np.concatenate([[0], np.cumsum(self.bytes_up + self.bytes_down)])

    def rounds_to(self, target_loss):
        """First round whose global loss is <= target_loss, or None if never reached."""
        hits = np.flatnonzero(self.loss <= target_loss)
        return int(hits[0]) if hits.size else None

    def __repr__(self):
        status = f"diverged at round {self.diverged_at}" if self.diverged else "finished"
        return (f"History({self.config['algorithm']}, {self.config['model']}, {status} after "
                f"{self.num_rounds} rounds, loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g})")


def simulate(federation, *, model="linear", algorithm="fedsgd", num_rounds, lr, local_epochs=1,
             batch_size=None, mu=0.0, participation=1.0, hidden=10, seed=0, init=None,
             aggregator=None):
    """Simulate federated training of `model` on `federation`; returns a `History`.

    federation    a `fedlite.Federation` (participant k holds rows offsets[k]:offsets[k+1])
    model         "linear" (y = w·x + b) or "mlp" (Dense(hidden, relu) -> Dense(1))
    algorithm     "fedsgd" (participants send a full-batch gradient, the server steps by lr),
                  "fedavg" (participants run local_epochs of minibatch SGD, send weights),
                  "fedprox" (FedAvg plus mu/2 ||w - w_server||² in each local objective)
    num_rounds    rounds of communication, >= 1
    lr            learning rate, > 0 (the server's step for FedSGD, the local step otherwise)
    local_epochs, batch_size   local work per round (FedAvg/FedProx); batch_size None = full batch
    mu            FedProx proximal strength, >= 0 (0 reproduces FedAvg exactly)
    participation fraction of participants selected each round, in (0, 1]; at least one
    hidden        hidden units of the MLP
    seed          int seed for everything random (MLP init, participant sampling, minibatch order)
    init          starting parameters (a tuple as in `History.params`, or a flat theta);
                  None = zeros (linear) or a seeded He initialisation (MLP)
    aggregator    None for the plain n_k-weighted mean (compiled), or an object that changes
                  what participants send and how the server combines it (secure aggregation,
                  differential privacy, compression).  It gets the participants' reports
                  (FedSGD: gradients; FedAvg/FedProx: weight changes w_k - w_server):
                    aggregator.start(num_participants, num_params, seed_sequence)  # each run
                    aggregator.aggregate(reports (m, P), num_examples (m,), selected (m,),
                                         round_number) -> (mean_report (P,), bytes_up int)
                  and its mean report replaces the weighted mean.
    """
    c = _check_config(federation, model, algorithm, num_rounds, lr, local_epochs, batch_size,
                      mu, participation, hidden, seed)
    init_seq, server_seq, participants_seq, aggregator_seq = (
        np.random.SeedSequence(c["seed"]).spawn(4))
    K, d, h = federation.num_participants, c["num_features"], c["hidden"]
    theta = _initial_theta(init, c, np.random.default_rng(init_seq))
    server_rng = np.random.default_rng(server_seq)
    keys = participant_keys(participants_seq, K)
    sizes = np.asarray(federation.sizes, dtype=np.float64)
    m = max(1, int(round(c["participation"] * K)))
    model_code = engine.LINEAR if c["model"] == "linear" else engine.MLP
    algorithm_code = engine.FEDSGD if c["algorithm"] == "fedsgd" else engine.FEDAVG
    batch = FULL_BATCH if c["batch_size"] is None else c["batch_size"]
    X, y, offsets = federation.X, federation.y, federation.offsets
    bytes_per_message = num_params(c["model"], d, h) * BYTES_PER_VALUE

    if aggregator is not None:
        aggregator.start(K, theta.size, aggregator_seq)
    losses = [engine.participant_losses(model_code, X, y, offsets, theta, d, h)]
    selected, sent_up, diverged_at = [], [], None
    with np.errstate(all="ignore"):
        loss0 = _global_loss(losses[0], sizes)
        for r in range(1, c["num_rounds"] + 1):
            chosen = (np.arange(K) if m == K
                      else np.sort(server_rng.choice(K, size=m, replace=False)))
            updates = engine.local_updates(model_code, algorithm_code, X, y, offsets, chosen,
                                           keys, r, theta, d, h, c["lr"], c["local_epochs"],
                                           batch, c["mu"])
            if aggregator is None:
                mean = engine.aggregate(updates, sizes[chosen])
                new_theta = theta - c["lr"] * mean if algorithm_code == engine.FEDSGD else mean
                sent = m * bytes_per_message
            else:  # participants report gradients (FedSGD) or weight changes (FedAvg/FedProx)
                reports = updates if algorithm_code == engine.FEDSGD else updates - theta
                mean, sent = aggregator.aggregate(reports, sizes[chosen], chosen, r)
                new_theta = (theta - c["lr"] * mean if algorithm_code == engine.FEDSGD
                             else theta + mean)
            new_losses = engine.participant_losses(model_code, X, y, offsets, new_theta, d, h)
            loss = _global_loss(new_losses, sizes)
            if not (np.isfinite(loss) and np.isfinite(new_theta).all()
                    and loss <= DIVERGENCE_FACTOR * max(loss0, np.finfo(float).tiny)):
                diverged_at = r
                break
            theta = new_theta
            losses.append(new_losses)
            selected.append(chosen)
            sent_up.append(sent)
    R = len(selected)
    participant_loss = np.array(losses)
    return History(
        loss=(participant_loss * sizes).sum(axis=1) / sizes.sum(),
        participant_loss=participant_loss,
        selected=np.array(selected, dtype=np.int64).reshape(R, m),
        bytes_up=np.array(sent_up, dtype=np.int64),
        bytes_down=np.full(R, m * bytes_per_message, dtype=np.int64),
        theta=theta,
        diverged_at=diverged_at,
        config=c,
    )


def participant_keys(seed_sequence, num_participants):
    """One 31-bit key per participant from its own child of `seed_sequence`, shape (K,) int64.

    Child k is the same whatever the number of participants, so a participant's minibatch order
    does not change when others are added.
    """
    children = seed_sequence.spawn(num_participants)
    return np.array([child.generate_state(1)[0] & engine.HASH_MASK for child in children],
                    dtype=np.int64)


def participant_keys_for_seed(seed, num_participants):
    """The participant keys `simulate(..., seed=seed)` uses, shape (K,)."""
    return participant_keys(np.random.SeedSequence(seed).spawn(4)[2], num_participants)


def _global_loss(participant_losses, sizes):
    """Σ_k n_k L_k / N: the loss on the pooled data."""
    return float((participant_losses * sizes).sum() / sizes.sum())


def _initial_theta(init, c, rng):
    P = num_params(c["model"], c["num_features"], c["hidden"])
    if init is None:
        return init_params(c["model"], c["num_features"], c["hidden"], rng)
    theta = pack(init) if isinstance(init, (tuple, list)) else np.asarray(init, dtype=np.float64)
    if theta.shape != (P,) or not np.isfinite(theta).all():
        raise ValueError(f"init must give {P} finite parameters for model={c['model']!r} "
                         f"(a tuple like History.params, or a flat vector); got shape {theta.shape}")
    return theta.copy()


def _check_config(federation, model, algorithm, num_rounds, lr, local_epochs, batch_size, mu,
                  participation, hidden, seed):
    """Validate simulate's arguments; return them as a dict of clean Python values."""
    for attr in ("X", "y", "offsets", "sizes", "num_participants"):
        if not hasattr(federation, attr):
            raise TypeError("federation must be a fedlite.Federation (make one with "
                            f"fedlite.split); got {type(federation).__name__}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}")
    lr = as_float(lr, "lr")
    if lr <= 0:
        raise ValueError(f"lr must be > 0; got {lr}")
    mu = as_float(mu, "mu")
    if mu < 0:
        raise ValueError(f"mu must be >= 0; got {mu}")
    participation = as_float(participation, "participation")
    if not 0 < participation <= 1:
        raise ValueError(f"participation must be in (0, 1]; got {participation}")
    c = dict(model=model, algorithm=algorithm, lr=lr, mu=mu, participation=participation,
             num_rounds=as_int(num_rounds, "num_rounds", minimum=1),
             local_epochs=as_int(local_epochs, "local_epochs", minimum=1),
             batch_size=None if batch_size is None else as_int(batch_size, "batch_size", 1),
             hidden=as_int(hidden, "hidden", minimum=1), seed=as_int(seed, "seed", minimum=0),
             num_features=int(federation.X.shape[1]))
    if algorithm == "fedsgd" and (c["local_epochs"] != 1 or c["batch_size"] is not None):
        raise ValueError("local_epochs and batch_size apply to fedavg and fedprox; FedSGD sends "
                         "one full-batch gradient per round (leave them at 1 and None)")
    if algorithm != "fedprox" and mu != 0:
        raise ValueError(f"mu is the FedProx proximal strength; use algorithm='fedprox' "
                         f"(got algorithm={algorithm!r}, mu={mu})")
    smallest = int(np.min(federation.sizes))
    if c["batch_size"] is not None and c["batch_size"] > smallest:
        raise ValueError(f"batch_size must be at most the smallest participant's data "
                         f"({smallest} rows); got {c['batch_size']} (use None for full batch)")
    return c
