"""One fedlite experiment as every process of a Flower federation sees it.

A Flower run hands each process the same run config (a flat table of numbers and strings) and
each SuperNode its own node config (partition-id, num-partitions).  `Experiment` is that run
config in fedlite's words: a data recipe (every process builds the same `Federation` from it,
so the SuperNode with partition-id k takes participant k's rows and nothing travels but
parameters) followed by `simulate`'s settings.  `Experiment.simulate()` runs the same
experiment in one process: the numbers a Flower run must reproduce.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields

from ..core.config import RunConfig
from ..core.model import build_model
from ..data import make_linear_data
from ..partition import make_concept_shift, split
from ..validation import as_float, as_int

DATA_RECIPES = ("linear", "concept_shift")
FLOWER_MODELS = ("linear", "mlp")      # regression models: the recipes make real-valued y
MAX_SEED = 2**63 - 1                    # a TOML integer is a signed 64-bit number


@dataclass(frozen=True)
class Experiment:
    """A fedlite experiment that a Flower federation can run (and `simulate` can check).

    The data (every process builds the same Federation from these):
    num_participants  K, one SuperNode each (its node config: partition-id=k num-partitions=K)
    data              "linear": make_linear_data(num_samples, num_features, noise, data_seed)
                      split among K participants (scheme, alpha, seed=data_seed);
                      "concept_shift": make_concept_shift(K, num_samples per participant,
                      num_features, spread, noise, data_seed)
    The run: model ("linear" or "mlp"), hidden, algorithm, num_rounds, lr, local_epochs,
    batch_size, mu, participation, seed, server_optimizer, server_lr, server_momentum, beta1,
    beta2, tau: as in `fedlite.simulate`.
    Flower only:
    min_participants  a round goes on with this many replies (None = every selected
                      participant must reply); fewer and the run stops with a clear error
    round_timeout     seconds the server waits for replies to one round's messages
    """

    num_participants: int = 3
    data: str = "linear"
    num_samples: int = 240
    num_features: int = 5
    noise: float = 0.1
    scheme: str = "iid"
    alpha: float | None = None
    spread: float = 1.0
    data_seed: int = 0
    model: str = "linear"
    hidden: int = 10
    algorithm: str = "fedavg"
    num_rounds: int = 3
    lr: float = 0.05
    local_epochs: int = 1
    batch_size: int | None = None
    mu: float = 0.0
    participation: float = 1.0
    seed: int = 0
    server_optimizer: str = "sgd"
    server_lr: float | None = None
    server_momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3
    min_participants: int | None = None
    round_timeout: float = 120.0

    def __post_init__(self):
        _choice(self.data, "data", DATA_RECIPES)
        _choice(self.model, "model", FLOWER_MODELS)
        _choice(self.scheme, "scheme", ("iid", "quantity", "quantity_skew", "covariate",
                                        "covariate_shift"))
        for name in ("num_participants", "num_samples", "num_features", "hidden"):
            as_int(getattr(self, name), name, minimum=1, maximum=10**7)
        for name in ("seed", "data_seed"):
            as_int(getattr(self, name), name, minimum=0, maximum=MAX_SEED)
        if as_float(self.round_timeout, "round_timeout") <= 0:
            raise ValueError(f"round_timeout must be > 0 seconds; got {self.round_timeout}")
        self.config        # noqa: B018  builds the federation and checks simulate's settings
        m = self.participants_per_round
        if self.min_participants is not None:
            as_int(self.min_participants, "min_participants", minimum=1, maximum=m)

    # -- what every process builds from the recipe
    @functools.cached_property
    def federation(self):
        """The Federation every process builds (participant k's rows go to partition-id k)."""
        K = self.num_participants
        if self.data == "concept_shift":
            return make_concept_shift(K, self.num_samples, self.num_features, spread=self.spread,
                                      noise=self.noise, seed=self.data_seed)[0]
        X, y, _, _ = make_linear_data(self.num_samples, self.num_features, noise=self.noise,
                                      seed=self.data_seed)
        return split(X, y, K, scheme=self.scheme, alpha=self.alpha, seed=self.data_seed)

    @functools.cached_property
    def model_object(self):
        """The model (`fedlite.core.model`): the same object on the server and every node."""
        return build_model(self.model, self.num_features, self.hidden)

    @functools.cached_property
    def config(self):
        """The run's settings as `simulate` checks them (a RunConfig; its errors name the
        argument)."""
        model = self.model_object
        return RunConfig.build(
            model_name=model.name, num_features=self.num_features,
            smallest_participant=int(self.federation.sizes.min()), **self._run_settings(),
            hidden=model.hidden)

    @property
    def participants_per_round(self):
        """m = max(1, round(participation * K)), as in `simulate`."""
        return max(1, int(round(self.participation * self.num_participants)))

    @property
    def min_replies(self):
        """Replies a training round needs: min_participants, or every selected participant."""
        m = self.participants_per_round
        return m if self.min_participants is None else self.min_participants

    # -- the same experiment in one process
    def simulate_kwargs(self):
        """The keyword arguments of `fedlite.simulate` for this experiment (with federation)."""
        return {"model": self.model, "hidden": self.hidden, **self._run_settings()}

    def simulate(self):
        """Run the experiment in this process with `fedlite.simulate`: the reference numbers."""
        from ..simulation import simulate
        return simulate(self.federation, **self.simulate_kwargs())

    def _run_settings(self):
        names = ("algorithm", "num_rounds", "lr", "local_epochs", "batch_size", "mu",
                 "participation", "seed", "server_optimizer", "server_lr", "server_momentum",
                 "beta1", "beta2", "tau")
        return {name: getattr(self, name) for name in names}

    # -- Flower's run config: dashed keys, int/float/str values, 0 for None
    def run_config(self):
        """This experiment as Flower run config: {"num-participants": 3, "lr": 0.05, ...}."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                value = 0
            if f.name in _FLOAT_FIELDS:
                value = float(value)
            values[f.name.replace("_", "-")] = value
        return values

    @classmethod
    def from_run_config(cls, run_config):
        """The Experiment of a Flower run config (keys it does not know are ignored, e.g.
        the launcher's result-path)."""
        if not hasattr(run_config, "get"):
            raise TypeError(f"run_config must be a mapping like Context.run_config; got "
                            f"{type(run_config).__name__}")
        values = {}
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key not in run_config:
                continue
            value = run_config[key]
            if f.name in ZERO_MEANS_NONE and value == 0:
                value = None
            elif f.name in _FLOAT_FIELDS and isinstance(value, int) and not isinstance(value,
                                                                                   bool):
                value = float(value)
            values[f.name] = value
        return cls(**values)


# Read from the annotations: floats travel as TOML floats, and the optional settings (alpha,
# batch_size, server_lr, min_participants) as 0, since TOML has no None.
_FLOAT_FIELDS = tuple(f.name for f in fields(Experiment) if f.type.startswith("float"))
ZERO_MEANS_NONE = tuple(f.name for f in fields(Experiment) if f.type.endswith("| None"))


def _choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
