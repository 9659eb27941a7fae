"""fedlite: a federated-learning course in notebooks, backed by a small numba-accelerated package.

Start with `fedlite.warmup()` (compiles or loads the kernels), then e.g.
`loss, grad_w, grad_b = fedlite.linear_loss_grad(X, y, w, b)`.

Modules, one idea each:
  reference   the maths in plain numpy (read this first; the tests' oracle)
  kernels     the same maths compiled with numba, one fused pass over the rows
  models      checked public loss-and-gradient functions
  data        synthetic regression data sets
  partition   splitting data among participants (Federation, split, concept shift)
  parameters  models as flat parameter vectors (what crosses the network)
  federated   one round as readable Python (Participant.fit, aggregate_fit)
  engine      the same round compiled; simulation drives it (simulate, History)
  experiments the pure functions behind the notebooks' explorers
  plotting    figures (every function takes ax=None and returns the axes)
  widgets     the interactive explorers (the only module importing ipywidgets)
  checks      exercise checkers
  startup     warmup: compile or load every kernel
"""
import importlib

from . import checks, experiments, federated, parameters, reference
from .data import make_linear_data, make_sine_data, make_teacher_data
from .models import linear_loss_grad, mlp_loss_grad
from .partition import Federation, make_concept_shift, split
from .simulation import History, simulate
from .startup import WarmupReport, warmup

__version__ = "0.1.0"

# Imported on first use, so `import fedlite` stays fast (matplotlib and ipywidgets are slow to
# import): fedlite.plotting, fedlite.widgets and the later course modules.
_LAZY_MODULES = ("plotting", "widgets", "privacy", "compression", "lora")


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fedlite' has no attribute {name!r}")

__all__ = [
    "Federation", "History", "WarmupReport", "linear_loss_grad", "make_concept_shift",
    "make_linear_data", "make_sine_data", "make_teacher_data", "mlp_loss_grad", "reference",
    "simulate", "split", "warmup",
]
