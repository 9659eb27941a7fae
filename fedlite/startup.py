"""`warmup()`: compile or load every kernel before the first slider moves, and say which it was.

numba compiles a kernel the first time it is called.  With `cache=True` the machine code is
saved on disk, so the first start of the course compiles (about a minute for all kernels) and
every later start loads them (~0.2 s).  A notebook's setup cell calls `fedlite.warmup()`, which
prints what it is doing (so a student on a cold start knows why the cell takes a while) and
returns a `WarmupReport`.

Run after run, bit for bit: the code numba loads from its cache can differ in the last bit
from the code it compiled in memory in the same process (measured: the linear model's
per-participant losses, 1 ulp, with 1 and 3 features; only with re-association allowed,
`_jit.FASTMATH_FLAGS`; the cause inside numba is not traced).  So when a kernel is not cached
yet, `warmup` compiles every kernel in a separate Python process, always in the same order, and
then loads them from the cache: the first start computes exactly what every later one does.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
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
    """Compile or load every fedlite kernel; print progress if `verbose`; return a WarmupReport.

    Kernels not yet in numba's on-disk cache are compiled in a separate process first, so that
    this process, like every later one, runs the cached code (see the module docstring)."""
    report = WarmupReport()
    if not all(hasattr(k, "stats") for k in KERNELS):
        report.jit_disabled = True
        return report
    start = time.perf_counter()
    missing = [k for k in KERNELS if not _cached_on_disk(k)]
    if missing:
        if verbose:
            print(f"fedlite: first start: compiling {len(missing)} kernels in a separate process "
                  f"(about a minute, once; later starts load them from the cache) ...",
                  file=sys.stdout, flush=True)
        failure = _compile_in_new_process()
        if failure and verbose:
            print(f"fedlite: the separate compile failed ({failure}); compiling here instead "
                  f"(this first start may differ from later ones in the last digits)",
                  file=sys.stdout, flush=True)
    elif verbose:
        print("fedlite: loading compiled kernels ...", file=sys.stdout, flush=True)
    before = {k: _counts(k) for k in KERNELS}
    _exercise_every_kernel()
    for kernel in KERNELS:
        hits, misses = _counts(kernel)
        name = kernel.py_func.__name__
        if kernel in missing or misses > before[kernel][1]:
            report.compiled.append(name)
        else:
            report.from_cache.append(name)
    report.seconds = time.perf_counter() - start
    if verbose:
        print(report, flush=True)
    return report


def _cached_on_disk(kernel):
    """Has numba's cache an index file for `kernel`?  (True when that cannot be told: then
    warmup compiles in this process, as numba would.)"""
    try:
        return os.path.exists(kernel._cache._cache_file._index_path)
    except AttributeError:   # another numba's internals, or a kernel without a cache
        return True


def _compile_in_new_process():
    """Call every kernel once in a new Python process, which saves them to numba's cache.  The
    new process imports this very fedlite (its folder first on the path).  Returns None, or
    why it failed in one line (then `warmup` compiles the kernels here instead, as numba
    would)."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent,
                                                       os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c",
               "from fedlite.startup import _exercise_every_kernel; _exercise_every_kernel()"]
    try:
        subprocess.run(command, env=env, check=True, timeout=900, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except subprocess.CalledProcessError as error:
        lines = error.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {error.returncode}"
    except (OSError, subprocess.SubprocessError) as error:
        return f"{type(error).__name__}: {error}"
    return None
