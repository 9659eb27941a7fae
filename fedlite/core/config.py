"""A run's settings as one typed, frozen record, and the run's random streams, named in one place.

`RunConfig.build(...)` checks every argument of `simulate` (a ValueError/TypeError naming the
argument) and returns the record that `History.config` keeps.  `config["lr"]` still works, as
in the dicts of earlier versions.  `RunSeeds` names the children of the run's SeedSequence;
nothing else spawns from the seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..validation import as_float, as_int

SERVER_OPTIMIZERS = ("sgd", "momentum", "adam", "yogi", "adagrad")


@dataclass(frozen=True)
class RunConfig:
    """The settings of one simulated run (see `fedlite.simulate` for their meaning)."""

    model: str
    algorithm: str
    num_rounds: int
    lr: float
    local_epochs: int
    batch_size: int | None
    mu: float
    participation: float
    hidden: int
    seed: int
    num_features: int
    server_optimizer: str = "sgd"
    server_lr: float = 1.0
    server_momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3

    def __getitem__(self, name):
        """config["lr"]: read a setting by name, as in the dicts of earlier versions."""
        if name not in _NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name, default=None):
        return getattr(self, name) if name in _NAMES else default

    @classmethod
    def names(cls):
        """The settings' names, in order."""
        return _ORDER

    def as_dict(self):
        return asdict(self)

    @classmethod
    def build(cls, *, model_name, num_features, smallest_participant, algorithm, num_rounds, lr,
              local_epochs, batch_size, mu, participation, hidden, seed, server_optimizer,
              server_lr, server_momentum, beta1, beta2, tau):
        """Check simulate's arguments and return them as a RunConfig."""
        from ..algorithms import ALGORITHMS
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {tuple(ALGORITHMS)}; got {algorithm!r}")
        accepts_optimizer = ALGORITHMS[algorithm].accepts_server_optimizer
        lr = _positive(lr, "lr")
        mu = as_float(mu, "mu")
        if mu < 0:
            raise ValueError(f"mu must be >= 0; got {mu}")
        participation = as_float(participation, "participation")
        if not 0 < participation <= 1:
            raise ValueError(f"participation must be in (0, 1]; got {participation}")
        local_epochs = as_int(local_epochs, "local_epochs", minimum=1, maximum=10**6)
        batch_size = None if batch_size is None else as_int(batch_size, "batch_size", 1)
        if algorithm == "fedsgd" and (local_epochs != 1 or batch_size is not None):
            raise ValueError("local_epochs and batch_size apply to the algorithms with local "
                             "training; FedSGD sends one full-batch gradient per round (leave "
                             "them at 1 and None)")
        if algorithm != "fedprox" and mu != 0:
            raise ValueError(f"mu is the FedProx proximal strength; use algorithm='fedprox' "
                             f"(got algorithm={algorithm!r}, mu={mu})")
        if batch_size is not None and batch_size > smallest_participant:
            raise ValueError(f"batch_size must be at most the smallest participant's data "
                             f"({smallest_participant} rows); got {batch_size} (use None for "
                             f"full batch)")
        if not isinstance(server_optimizer, str) or server_optimizer not in SERVER_OPTIMIZERS:
            raise ValueError(f"server_optimizer must be one of {SERVER_OPTIMIZERS}; got "
                             f"{server_optimizer!r}")
        if not accepts_optimizer and (server_optimizer != "sgd" or server_lr is not None):
            raise ValueError(f"server_optimizer and server_lr apply to algorithms whose "
                             f"participants send weights; {algorithm}'s server step is its own "
                             f"(FedSGD: lr times the mean gradient; got "
                             f"server_optimizer={server_optimizer!r}, server_lr={server_lr!r})")
        if server_lr is None:
            server_lr = 1.0 if server_optimizer in ("sgd", "momentum") else 0.1
        server_lr = _positive(server_lr, "server_lr")
        server_momentum = as_float(server_momentum, "server_momentum")
        if not 0 <= server_momentum < 1:
            raise ValueError(f"server_momentum must be in [0, 1); got {server_momentum}")
        beta1, beta2 = as_float(beta1, "beta1"), as_float(beta2, "beta2")
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{name} must be in [0, 1); got {beta}")
        tau = _positive(tau, "tau")
        return cls(model=model_name, algorithm=algorithm,
                   num_rounds=as_int(num_rounds, "num_rounds", minimum=1, maximum=10**7),
                   lr=lr, local_epochs=local_epochs, batch_size=batch_size, mu=mu,
                   participation=participation, hidden=hidden,
                   seed=as_int(seed, "seed", minimum=0, maximum=2**128 - 1),
                   num_features=num_features, server_optimizer=server_optimizer,
                   server_lr=server_lr, server_momentum=server_momentum, beta1=beta1,
                   beta2=beta2, tau=tau)


_ORDER = tuple(f.name for f in fields(RunConfig))
_NAMES = frozenset(_ORDER)   # looked up several times per round: built once


@dataclass(frozen=True)
class RunSeeds:
    """The independent random streams of a run, children of SeedSequence(seed), in this order:

    init          the model's initialisation (the MLP's He init; LoRA's A)
    server        which participants the server selects in round r (child r of this one)
    participants  each participant's shuffling key (child k of this one)
    aggregator    an aggregator's randomness (masks, dropouts, noise, stochastic rounding)
    """

    init: np.random.SeedSequence
    server: np.random.SeedSequence
    participants: np.random.SeedSequence
    aggregator: np.random.SeedSequence

    @classmethod
    def from_seed(cls, seed):
        return cls(*np.random.SeedSequence(seed).spawn(4))

    def round_rng(self, round_number):
        """The server's generator for round `round_number` (the same whenever it is asked for,
        so a run resumed at round r selects exactly as an unbroken run would)."""
        root = self.server
        return np.random.default_rng(
            np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, round_number)))


def _positive(value, name):
    value = as_float(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    return value
