"""FedAvg (McMahan et al., 2017) and FedProx (Li et al., 2020).

FedAvg: each selected participant runs `local_epochs` epochs of minibatch SGD from the server's
model and sends back its weights; the new model is their n_k-weighted mean (or, with a server
optimiser, a step along the mean weight change).  FedProx adds mu/2 ||v - theta||² to every
local objective, pulling local models back towards the server's (mu = 0 is FedAvg, bit for bit).
The participant and server halves are `LocalSGD`'s (fedlite.algorithms.base).
"""
from __future__ import annotations

from .base import LocalSGD


class FedAvg(LocalSGD):
    name = "fedavg"


class FedProx(LocalSGD):
    name = "fedprox"
