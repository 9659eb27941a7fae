"""fedlite: a federated-learning course in notebooks, backed by a small numba-accelerated package.

Start with `fedlite.warmup()` (compiles or loads the kernels), then e.g.
`loss, grad_w, grad_b = fedlite.linear_loss_grad(X, y, w, b)` and
`history = fedlite.simulate(fedlite.split(X, y, 10), algorithm="fedavg", num_rounds=50, lr=0.05)`.

The package is in layers, one folder each; every module is reachable as `fedlite.<name>` after
`import fedlite`, by its short name too (`fedlite.leakage` is `fedlite.privacy.leakage`, the same
module; `import fedlite.leakage` works as well).  Those marked * are imported on first use, so
`import fedlite` stays fast.  One idea each:

The maths and the engine (fedlite/, fedlite/core/, fedlite/algorithms/)
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
Data (fedlite/)
  data            synthetic regression data sets and the handwritten digits (load_digits)
  partition       splitting data among participants (Federation, split: iid, quantity skew,
                  covariate shift, Dirichlet label skew, shards; concept shift; held-out shares)
Privacy (fedlite/privacy/)
  privacy *       the layer; gathers the names of its three modules
  leakage *       what a gradient reveals (exact inversion, gradient matching)
  secure_aggregation *    pairwise masks and Shamir shares: the server learns only the sum
  differential_privacy *  DP-FedAvg and the Rényi-DP accountant
Communication (fedlite/communication/)
  communication * the layer: fewer bytes per round
  compression *   top-k with error feedback, stochastic quantisation
  lora *          federated fine-tuning through a low-rank adapter
The course (fedlite/course/)
  course          the layer: what the notebooks use and nothing else imports
  experiments     the pure functions behind the notebooks' explorers
  plotting *      figures (every function takes ax=None and returns the axes)
  widgets *       the interactive explorers (the only module importing ipywidgets)
  checks          exercise checkers of notebooks 00-06, on the shared machinery of _checking
  checks_algorithms *      ... of notebook 07 (SCAFFOLD, server optimisers)
  checks_classification *  ... of notebook 08 (softmax, label skew, accuracy)
  checks_privacy *         ... of notebooks 09-11
  checks_communication *   ... of notebooks 12 and 14
Start-up (fedlite/)
  startup         warmup: compile or load every kernel
Deployment (fedlite/flower/; an optional extra: pip install -e ".[flower]")
  flower *        the same participants and server on Flower's deployment engine
"""
import importlib as _importlib
import importlib.machinery as _machinery
import sys as _sys

from . import (algorithms, core, course, data, engine, federated, kernels, models,
               parameters, partition, reference, simulation, startup, validation)
from .course import checks, experiments
from .data import load_digits, make_linear_data, make_sine_data, make_teacher_data
from .models import (linear_loss_grad, mlp_classifier_loss_grad, mlp_loss_grad,
                     softmax_loss_grad)
from .partition import Federation, make_concept_shift, split, split_held_out
from .simulation import History, simulate
from .startup import WarmupReport, warmup

# Each layer's modules by their short name: fedlite.leakage is fedlite.privacy.leakage.
_LAYERS = {"privacy": ("leakage", "secure_aggregation", "differential_privacy"),
           "communication": ("compression", "lora"),
           "course": ("experiments", "plotting", "widgets", "checks", "checks_algorithms",
                      "checks_classification", "checks_privacy", "checks_communication",
                      "_checking")}
_MOVED = {name: f"{layer}.{name}" for layer, names in _LAYERS.items() for name in names}


class _ShortNames:
    """`import fedlite.leakage` (and mock.patch, pickle, ...) gives fedlite.privacy.leakage itself.

    An import-system finder and loader: the "loaded" module is the one in its layer, imported
    on first use (so the lazy ones stay lazy), and nothing is executed twice.
    """

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package == __name__ and name in _MOVED:
            return _machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        module = _importlib.import_module(f"{__name__}.{_MOVED[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state   # the import system set the alias's


if not any(type(finder).__name__ == "_ShortNames" for finder in _sys.meta_path):
    _sys.meta_path.append(_ShortNames())

__version__ = "0.2.0"

# Imported on first use, so `import fedlite` stays fast (matplotlib and ipywidgets are slow to
# import), yet `fedlite.plotting` works at once and `dir(fedlite)` lists them.
_LAZY_MODULES = ("privacy", "communication", "flower", *_MOVED)


def __getattr__(name):
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)   # short names via _ShortNames
    raise AttributeError(f"module 'fedlite' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) - {"_importlib", "_machinery", "_sys", "_ShortNames"}
                  | set(_LAZY_MODULES))


__all__ = [
    "Federation", "History", "WarmupReport", "linear_loss_grad", "load_digits",
    "make_concept_shift", "make_linear_data", "make_sine_data", "make_teacher_data",
    "mlp_classifier_loss_grad", "mlp_loss_grad", "reference", "simulate", "softmax_loss_grad",
    "split", "split_held_out", "warmup",
]
