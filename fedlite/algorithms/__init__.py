"""Federated algorithms, one module each, each a participant half and a server half (see `base`).

  fedsgd             FedSGD: one full-batch gradient per participant per round
  fedavg             FedAvg and FedProx: local epochs of SGD, the server averages the weights
  scaffold           SCAFFOLD: local steps corrected by control variates
  server_optimizers  what the server does with the mean weight change: sgd, momentum (FedAvgM),
                     adagrad, adam, yogi (Reddi et al. 2021)

`ALGORITHMS` maps the names `simulate(algorithm=...)` accepts to the algorithm objects.  A new
algorithm is one module here plus one line in `ALGORITHMS`.
"""
from .base import Algorithm, FitResult, LocalSGD
from .fedavg import FedAvg, FedProx
from .fedsgd import FedSGD
from .scaffold import Scaffold
from .server_optimizers import SERVER_OPTIMIZERS, make_server_optimizer

ALGORITHMS = {"fedsgd": FedSGD(), "fedavg": FedAvg(), "fedprox": FedProx(),
              "scaffold": Scaffold()}

__all__ = ["ALGORITHMS", "Algorithm", "FedAvg", "FedProx", "FedSGD", "FitResult", "LocalSGD",
           "SERVER_OPTIMIZERS", "Scaffold", "make_server_optimizer"]
