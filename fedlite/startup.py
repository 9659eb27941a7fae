"""`warmup()`: compile or load every kernel before the first slider moves, and say which it was.

numba compiles a kernel the first time it is called.  With `cache=True` the machine code is
saved on disk, so the first start of the course compiles (~15 s for all kernels) and every
later start loads them (~0.2 s).  A notebook's setup cell calls `fedlite.warmup()`, which prints
what it is doing (so a student on a cold start knows why the cell takes a while) and returns a
`WarmupReport`.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._jit import KERNELS


@dataclass
class WarmupReport:
    """What `warmup` found: kernel names loaded from the on-disk cache and compiled afresh."""

    from_cache: list = field(default_factory=list)
    compiled: list = field(default_factory=list)
    seconds: float = 0.0
    jit_disabled: bool = False

    def __str__(self):
        if self.jit_disabled:
            return "fedlite: NUMBA_DISABLE_JIT is set, kernels run as plain Python (slow)"
        total = len(self.from_cache) + len(self.compiled)
        return (f"fedlite: {total} kernels ready ({len(self.from_cache)} loaded from cache, "
                f"{len(self.compiled)} compiled) in {self.seconds:.1f} s")


def _exercise_every_kernel():
    """Call each public entry point once on tiny data (both serial and parallel kernels)."""
    from . import engine, kernels, models

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3, 2)), rng.normal(size=3)
    W1, b1, W2 = rng.normal(size=(2, 4)), np.zeros(4), rng.normal(size=4)
    # The public functions hand the kernels read-only views (fedlite.models), a type of their
    # own to numba: warm up exactly that.
    X, y, w, W1, b1, W2 = models._read_only(X, y, np.zeros(2), W1, b1, W2)
    for linear in (kernels.linear_loss_grad_serial, kernels.linear_loss_grad_parallel):
        linear(X, y, w, 0.0)
    for mlp in (kernels.mlp_loss_grad_serial, kernels.mlp_loss_grad_parallel):
        mlp(X, y, W1, b1, W2, 0.0)
    # the classifiers: labels as float64 (one compiled version whatever the caller's dtype)
    labels, = models._read_only(np.array([0.0, 1.0, 2.0]))
    W, bC, W2C = models._read_only(rng.normal(size=(2, 3)), np.zeros(3), rng.normal(size=(4, 3)))
    for softmax in (kernels.softmax_loss_grad_serial, kernels.softmax_loss_grad_parallel):
        softmax(X, labels, W, bC)
    for classifier in (kernels.mlp_classifier_loss_grad_serial,
                       kernels.mlp_classifier_loss_grad_parallel):
        classifier(X, labels, W1, b1, W2C, bC)
    engine.exercise_kernels()


def _counts(dispatcher):
    stats = dispatcher.stats
    return sum(stats.cache_hits.values()), sum(stats.cache_misses.values())


def warmup(verbose=True):
    """Compile or load every fedlite kernel; print progress if `verbose`; return a WarmupReport."""
    report = WarmupReport()
    if not all(hasattr(k, "stats") for k in KERNELS):
        report.jit_disabled = True
        return report
    start = time.perf_counter()
    before = {k: _counts(k) for k in KERNELS}
    if verbose:
        print("fedlite: loading compiled kernels (the very first start compiles them, "
              "which takes about 15 s) ...", file=sys.stdout, flush=True)
    _exercise_every_kernel()
    for kernel in KERNELS:
        hits, misses = _counts(kernel)
        name = kernel.py_func.__name__
        if misses > before[kernel][1]:
            report.compiled.append(name)
        else:
            report.from_cache.append(name)
    report.seconds = time.perf_counter() - start
    if verbose:
        print(report, flush=True)
    return report
