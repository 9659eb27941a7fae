"""fedlite: a federated-learning course in notebooks, backed by a small numba-accelerated package.

Start with `fedlite.warmup()` (compiles or loads the kernels), then e.g.
`loss, grad_w, grad_b = fedlite.linear_loss_grad(X, y, w, b)` and
`history = fedlite.simulate(fedlite.split(X, y, 10), algorithm="fedavg", num_rounds=50, lr=0.05)`.

Every module is reachable as `fedlite.<name>` after `import fedlite` (the ones marked * are
imported on first use, so `import fedlite` stays fast).  One idea each:

The maths and the engine
  reference       the maths in plain numpy (read this first; the tests' oracle)
  kernels         the same maths compiled with numba, one fused pass over the rows
  models          checked public loss-and-gradient functions; MODELS, the model objects
  core            the engine's parts: core.model (a model is one object), core.config (a run's
                  settings, RunConfig, and its named seeds, RunSeeds)
  algorithms      FedSGD, FedAvg, FedProx, SCAFFOLD and the server optimisers, each a
                  participant half and a server half (Flower's fit / aggregate_fit)
  engine          the compiled round: every participant's local work, the weighted mean
  simulation      the one round loop: simulate, History, the Aggregator protocol
  federated       one round as readable Python (Participant.fit, aggregate_fit, Server)
  parameters      models as flat parameter vectors (what crosses the network)
  validation      the checks at the public boundary
Data
  data            synthetic regression data sets and the handwritten digits (load_digits)
  partition       splitting data among participants (Federation, split: iid, quantity skew,
                  covariate shift, Dirichlet label skew, shards; concept shift; held-out shares)
Privacy and communication
  privacy *       gathers leakage, secure_aggregation and differential_privacy
  leakage *       what a gradient reveals (exact inversion, gradient matching)
  secure_aggregation *    pairwise masks and Shamir shares: the server learns only the sum
  differential_privacy *  DP-FedAvg and the Rényi-DP accountant
  compression *   top-k with error feedback, stochastic quantisation
  lora *          federated fine-tuning through a low-rank adapter
The course
  experiments     the pure functions behind the notebooks' explorers
  plotting *      figures (every function takes ax=None and returns the axes)
  widgets *       the interactive explorers (the only module importing ipywidgets)
  checks          exercise checkers of notebooks 00-06, on the shared machinery of _checking
  checks_algorithms *      ... of notebook 07 (SCAFFOLD, server optimisers)
  checks_classification *  ... of notebook 08 (softmax, label skew, accuracy)
  checks_privacy *         ... of notebooks 09-11
  checks_communication *   ... of notebooks 12 and 14
  startup         warmup: compile or load every kernel
Deployment (an optional extra: pip install -e ".[flower]")
  flower *        the same participants and server on Flower's deployment engine
"""
import importlib as _importlib

from . import (algorithms, checks, core, data, engine, experiments, federated, kernels, models,
               parameters, partition, reference, simulation, startup, validation)
from .data import load_digits, make_linear_data, make_sine_data, make_teacher_data
from .models import (linear_loss_grad, mlp_classifier_loss_grad, mlp_loss_grad,
                     softmax_loss_grad)
from .partition import Federation, make_concept_shift, split, split_held_out
from .simulation import History, simulate
from .startup import WarmupReport, warmup

__version__ = "0.2.0"

# Imported on first use, so `import fedlite` stays fast (matplotlib and ipywidgets are slow to
# import), yet `fedlite.plotting` works at once and `dir(fedlite)` lists them.
_LAZY_MODULES = ("plotting", "widgets", "privacy", "leakage", "secure_aggregation",
                 "differential_privacy", "compression", "lora", "checks_privacy",
                 "checks_communication", "checks_algorithms", "checks_classification",
                 "flower")


def __getattr__(name):
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fedlite' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) - {"_importlib"} | set(_LAZY_MODULES))


__all__ = [
    "Federation", "History", "WarmupReport", "linear_loss_grad", "load_digits",
    "make_concept_shift", "make_linear_data", "make_sine_data", "make_teacher_data",
    "mlp_classifier_loss_grad", "mlp_loss_grad", "reference", "simulate", "softmax_loss_grad",
    "split", "split_held_out", "warmup",
]
