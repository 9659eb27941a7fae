"""Every numba option fedlite uses, in one place.

- `cache=True`: compiled machine code is kept on disk (numba's cache beside the source, or in
  NUMBA_CACHE_DIR), so only the very first start pays the compile (~1 min); later starts load it
  (~0.2 s).  Nothing in a kernel may read dynamic globals (e.g. `numba.get_num_threads()`),
  which would make the kernel uncachable.
- No `fastmath=True`: it lets LLVM assume there are no NaNs, so `np.isnan` answers False and
  divergence detection breaks.  We allow only re-association and fused multiply-add
  (`reassoc`, `contract`), which let the inner loops vectorise and keep NaN and inf semantics.
- `error_model="numpy"`: division by zero gives inf/NaN like numpy, instead of raising.

`KERNELS` lists the entry points (kernels called from Python, as opposed to helpers called only
from other kernels) so `fedlite.warmup()` can report whether each came from the cache.
"""
from __future__ import annotations

import numba

FASTMATH_FLAGS = {"reassoc", "contract"}
KERNELS: list = []


def _register(dispatcher):
    KERNELS.append(dispatcher)
    return dispatcher


def jit(function):
    """Compile `function` for one thread, cached (a helper called from other kernels)."""
    return numba.njit(cache=True, fastmath=FASTMATH_FLAGS, error_model="numpy")(function)


def jit_entry(function):
    """Like `jit`, for a kernel called from Python (listed in KERNELS)."""
    return _register(jit(function))


def jit_parallel(function):
    """Compile `function` with `prange` loops spread over threads, cached (an entry point)."""
    return _register(
        numba.njit(cache=True, parallel=True, fastmath=FASTMATH_FLAGS, error_model="numpy")(function)
    )


prange = numba.prange
