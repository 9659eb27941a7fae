"""Tests of fedlite.startup: warmup covers every kernel, and a new process loads them all from
the on-disk cache (a kernel that became uncachable would be compiled again there)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fedlite
from conftest import JIT_DISABLED
from fedlite._jit import KERNELS

NEW_PROCESS = """
import json, fedlite
report = fedlite.warmup(verbose=False)
print(json.dumps({"from_cache": report.from_cache, "compiled": report.compiled}))
"""


SAME_RESULTS = """
import hashlib, fedlite
report = fedlite.warmup(verbose=False)
digest = hashlib.sha256()
for d in (1, 3):                  # where a kernel compiled in memory and its cached copy differed
    X, y, _, _ = fedlite.make_linear_data(997, d, seed=d)
    federation = fedlite.split(X, y, 7, seed=0)
    for algorithm, extra in (("fedsgd", {}), ("fedavg", {"batch_size": 4})):
        history = fedlite.simulate(federation, algorithm=algorithm, lr=0.05, num_rounds=5, **extra)
        digest.update(history.participant_loss.tobytes() + history.theta.tobytes())
print(len(report.compiled), digest.hexdigest())
"""


def jit_env():
    """This process's environment for a new Python process, with the JIT on."""
    return {key: value for key, value in os.environ.items() if key != "NUMBA_DISABLE_JIT"}


def kernel_names():
    return [getattr(kernel, "py_func", kernel).__name__ for kernel in KERNELS]


def test_entry_kernels_are_registered_once():
    names = kernel_names()
    assert len(names) == len(set(names))
    assert {"linear_loss_grad_serial", "linear_loss_grad_parallel",
            "mlp_loss_grad_serial", "mlp_loss_grad_parallel"} <= set(names)


@pytest.mark.skipif(JIT_DISABLED, reason="nothing to compile without the JIT")
def test_warmup_reports_every_entry_kernel_once():
    report = fedlite.warmup(verbose=False)
    assert not report.jit_disabled
    assert sorted(report.from_cache + report.compiled) == sorted(kernel_names())
    assert report.seconds >= 0
    assert f"{len(KERNELS)} kernels ready" in str(report)


@pytest.mark.skipif(JIT_DISABLED, reason="nothing to compile without the JIT")
def test_warmup_prints_only_when_verbose(capsys):
    fedlite.warmup(verbose=False)
    assert capsys.readouterr().out == ""
    report = fedlite.warmup(verbose=True)
    assert str(report) in capsys.readouterr().out


@pytest.mark.skipif(not JIT_DISABLED, reason="only meaningful with NUMBA_DISABLE_JIT=1")
def test_warmup_says_when_the_jit_is_disabled():
    report = fedlite.warmup(verbose=False)
    assert report.jit_disabled and report.compiled == [] and report.from_cache == []
    assert "NUMBA_DISABLE_JIT" in str(report)


@pytest.mark.skipif(JIT_DISABLED, reason="nothing to compile without the JIT")
def test_a_failed_separate_compile_is_said_and_warmup_still_finishes(monkeypatch, capsys):
    from fedlite import startup

    def failing_run(command, **kwargs):
        raise subprocess.CalledProcessError(1, command, stderr=b"Traceback ...\nImportError: boom")
    monkeypatch.setattr(startup, "_cached_on_disk", lambda kernel: kernel is not KERNELS[0])
    monkeypatch.setattr(startup.subprocess, "run", failing_run)
    report = fedlite.warmup(verbose=True)
    out = capsys.readouterr().out
    assert "separate compile failed (ImportError: boom); compiling here instead" in out
    assert sorted(report.from_cache + report.compiled) == sorted(kernel_names())
    assert report.compiled == [KERNELS[0].py_func.__name__]


@pytest.mark.skipif(JIT_DISABLED, reason="nothing is cached without the JIT")
def test_a_new_process_loads_every_kernel_from_the_cache():
    fedlite.warmup(verbose=False)  # compiles (and saves) whatever is not cached yet
    env = jit_env()
    result = subprocess.run([sys.executable, "-c", NEW_PROCESS], capture_output=True, text=True,
                            env=env, timeout=300, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["compiled"] == [], (
        f"compiled again in a new process, so not cached (dynamic globals? cache=False?): "
        f"{report['compiled']}\n{result.stderr}")
    assert sorted(report["from_cache"]) == sorted(kernel_names())


@pytest.mark.skipif(not hasattr(fedlite.engine.local_updates, "signatures"),
                    reason="needs the JIT")
def test_after_warmup_the_course_compiles_nothing_new():
    """warmup covers the array types the course really passes (a Federation's read-only data,
    every algorithm and model), so no notebook cell stalls on a surprise compile."""
    from fedlite._jit import KERNELS
    fedlite.warmup(verbose=False)
    before = {kernel: len(kernel.signatures) for kernel in KERNELS}
    X, y, _, _ = fedlite.make_linear_data(200, 3)
    fed = fedlite.split(X, y, 4)
    fedlite.linear_loss_grad(fed.X, fed.y, np.zeros(3), 0.0)
    fedlite.linear_loss_grad(X, y, np.zeros(3), 0.0)
    fedlite.mlp_loss_grad(X, y, np.ones((3, 4)), np.zeros(4), np.ones(4), 0.0)
    labels = np.arange(200) % 3
    fedlite.softmax_loss_grad(X, labels, np.zeros((3, 3)), np.zeros(3))
    fedlite.mlp_classifier_loss_grad(X, labels, np.ones((3, 4)), np.zeros(4), np.ones((4, 3)),
                                     np.zeros(3))
    classes = fedlite.Federation(fed.X, (np.arange(200) % 3).astype(float), fed.offsets,
                                 fed.index)
    for model in ("softmax", "mlp_classifier"):
        fedlite.simulate(classes, model=model, algorithm="fedavg", batch_size=5, num_rounds=2,
                         lr=0.1, test=(X, labels))
    for algorithm in fedlite.algorithms.ALGORITHMS:
        for model in ("linear", "mlp"):
            extra = {} if algorithm == "fedsgd" else dict(batch_size=5)
            fedlite.simulate(fed, model=model, algorithm=algorithm, num_rounds=2, lr=0.01,
                             participation=0.5, **extra)
    after = {kernel: len(kernel.signatures) for kernel in KERNELS}
    assert {k.py_func.__name__ for k in KERNELS if after[k] != before[k]} == set()


@pytest.mark.skipif(JIT_DISABLED, reason="nothing is compiled or cached without the JIT")
def test_the_first_start_computes_bit_for_bit_what_every_later_start_does(tmp_path):
    """On an empty cache warmup compiles in a separate process and loads from the cache, so the
    first run equals the second (numba's in-memory code and its cached copy may differ in the
    last bit: the linear model's per-participant losses did, with 1 and 3 features)."""
    env = {**jit_env(), "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}  # empty: a first start
    runs = [subprocess.run([sys.executable, "-c", SAME_RESULTS], capture_output=True, text=True,
                           env=env, timeout=900, check=True).stdout.split()
            for _ in range(2)]
    (compiled_first, first), (compiled_second, second) = runs
    assert int(compiled_first) == len(KERNELS) and int(compiled_second) == 0
    assert first == second
