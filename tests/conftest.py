"""Shared test helpers: the `slow_without_jit` marker and a seeded `rng` fixture.

With NUMBA_DISABLE_JIT=1 (the coverage run in CI) every kernel is a plain Python loop, so big
cases would take minutes.  Mark them, either way works:

    @pytest.mark.slow_without_jit                     # no import needed
    pytest.param(10**5, 10, marks=pytest.mark.slow_without_jit)

    from conftest import JIT_DISABLED, slow_without_jit   # the same marker, and a flag
"""
import numba
import numpy as np
import pytest

JIT_DISABLED = bool(numba.config.DISABLE_JIT)  # numba's own reading of NUMBA_DISABLE_JIT
slow_without_jit = pytest.mark.slow_without_jit


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow_without_jit: skipped when NUMBA_DISABLE_JIT=1 (too slow as plain Python)")


def pytest_sessionstart(session):
    """Load every kernel (on an empty cache: compile them in a separate process first), as a
    notebook's first cell does, so the tests run the same cached machine code as the course."""
    import fedlite
    fedlite.warmup(verbose=False)


def pytest_collection_modifyitems(config, items):
    if not JIT_DISABLED:
        return
    skip = pytest.mark.skip(reason="too slow with NUMBA_DISABLE_JIT=1 (kernels run as Python loops)")
    for item in items:
        if item.get_closest_marker("slow_without_jit"):
            item.add_marker(skip)


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test sees the same numbers."""
    return np.random.default_rng(0)


def on_one_and_all_threads(run):
    """(run() on 1 numba thread, run() on all of them): for bit-equality across thread counts."""
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        return one, run()
    finally:
        numba.set_num_threads(before)
