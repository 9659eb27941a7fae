"""FedAvg against numpy vectorised over participants, with two ways of gathering the shuffled rows.

    .venv/bin/python benchmarks/vectorised.py          (about a minute on 2 cores)

The baseline: all K participants take their s-th minibatch step together with einsum (only
possible with equal sizes).  Each round first gathers every participant's rows in its shuffled
order, and the gather is most of the difference between a fast and a slow numpy version:

    take_along_axis  np.take_along_axis(Xs, order[:, :, None], axis=1) on X seen as (K, n, d):
                     the idiomatic numpy for "permute each participant's rows"
    take             X.take(flat row numbers, axis=0): the same rows, about 9x faster to gather
                     (fancy indexing Xs[arange(K)[:, None], order] sits in between: 3x slower
                     than take)

The rest of the round (10 einsum steps and the loss pass) is the same in both.
`benchmarks/simulate.py` imports `vectorised` from here and checks it equal to fedlite's results.

Comparing engines.  This script uses only what every fedlite version has (make_linear_data,
split, simulate, warmup), so it can time an earlier fedlite against the same baselines:

    .venv/bin/python benchmarks/vectorised.py --against 976803c     (about 2 minutes)

extracts that commit's fedlite (git archive) into a temporary folder and alternates new Python
processes of the two engines (`--processes` each, three comparisons per process), then prints
medians and ranges, and how much faster this fedlite is than the other against each baseline.
976803c is the engine as it stood when issue 11 was written.  The issue's target, 15x where
"today" is about 11x, asks for 15/11 = 1.36x that engine's speed against the same baseline:
the last line checks that.  (Against take the old engine measures about 3.7x, so the issue's
11x was not measured against take; take_along_axis comes closer, about 8x on these machines.)

Times are per round, the best (minimum) of repeats taken in turn; compare ratios, not ms.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fedlite

K, ROWS, D, BATCH, LR = 1000, 100, 10, 10, 0.01
GATHERS = ("take_along_axis", "take")
ISSUE_TARGET = 15 / 11            # issue 11: "about 11x today; reach 15x"
COMPARISONS = 3                   # per process


def vectorised(federation, lr, num_rounds, batch_size, seed=0, order=None, gather="take"):
    """FedAvg in numpy over participants: all K take their s-th minibatch step together.

    Needs equal sizes n.  order(round) -> (K, n) minibatch orders; None = numpy's generator.
    gather: "take" or "take_along_axis" (module docstring).  Returns theta (d+1,) and the
    participants' losses (K,) under it."""
    K, d = federation.num_participants, federation.num_features
    n = int(federation.sizes[0])
    assert (federation.sizes == n).all(), "the vectorised baseline needs equal sizes"
    assert gather in GATHERS, gather
    Xs, ys = federation.X.reshape(K, n, d), federation.y.reshape(K, n)
    first_row = n * np.arange(K)[:, None]
    rng = np.random.default_rng(seed)
    order = order or (lambda r: rng.permuted(np.broadcast_to(np.arange(n), (K, n)), axis=1))
    theta = np.zeros(d + 1)
    for r in range(1, num_rounds + 1):
        rows = order(r)
        if gather == "take":                                     # each participant's, shuffled
            flat = (first_row + rows).ravel()
            X_o = federation.X.take(flat, axis=0).reshape(K, n, d)
            y_o = federation.y.take(flat).reshape(K, n)
        else:
            X_o = np.take_along_axis(Xs, rows[:, :, None], axis=1)
            y_o = np.take_along_axis(ys, rows, axis=1)
        W = np.tile(theta, (K, 1))                               # row k: participant k's [w, b]
        for start in range(0, n, batch_size):
            Xb, yb = X_o[:, start:start + batch_size], y_o[:, start:start + batch_size]
            residual = np.einsum("kbj,kj->kb", Xb, W[:, :d]) + W[:, d:] - yb
            W[:, :d] -= lr * np.einsum("kbj,kb->kj", Xb, residual) / yb.shape[1]
            W[:, d] -= lr * residual.mean(axis=1)
        theta = W.mean(axis=0)                                   # equal sizes: the plain mean
        losses = 0.5 * np.mean((np.einsum("knj,j->kn", Xs, theta[:d]) + theta[d] - ys) ** 2,
                               axis=1)
    return theta, losses


def per_round(runs, repeats):
    """{name: seconds per round}: runs = {name: (function, rounds it simulates)}, each timed
    `repeats` times, the runs taken in turn; the minimum (noise only ever adds time)."""
    best = {name: np.inf for name in runs}
    for _ in range(repeats):
        for name, (run, rounds) in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) / rounds)
    return best


def linear_federation(num_participants):
    """The benchmark case: num_participants x ROWS rows of linear data with D features."""
    X, y, _, _ = fedlite.make_linear_data(num_participants * ROWS, D, seed=0)
    return fedlite.split(X, y, num_participants, seed=0)


def fedavg_against_vectorised(federation, num_rounds=20, repeats=15, also=None):
    """{"fedlite": s, "take": s, "take_along_axis": s} per round for FedAvg on `federation`,
    plus `also` ({name: (function, rounds)}, timed in turn with them)."""
    runs = {"fedlite": (lambda: fedlite.simulate(federation, algorithm="fedavg", lr=LR,
                                                 batch_size=BATCH, num_rounds=num_rounds,
                                                 seed=0), num_rounds)}
    for gather in GATHERS:
        runs[gather] = ((lambda g=gather: vectorised(federation, LR, 5, BATCH, gather=g)), 5)
    return per_round({**runs, **(also or {})}, repeats)


def measure(comparisons=COMPARISONS, as_json=False):
    """Time this process's fedlite against both baselines `comparisons` times; print each."""
    try:
        fedlite.warmup(verbose=False)
    except TypeError:                       # fedlite before 0.2: warmup() took no arguments
        fedlite.warmup()
    federation = linear_federation(K)
    if not as_json:
        print(f"fedlite {getattr(fedlite, '__version__', '?')} from "
              f"{os.path.dirname(fedlite.__file__)}, load average {os.getloadavg()[0]:.1f}")
        print(f"FedAvg, K={K} x {ROWS} rows, d={D}, batch {BATCH}; ms per round (best of "
              f"repeats)")
    for _ in range(comparisons):
        times = fedavg_against_vectorised(federation)
        ours = times["fedlite"]
        if as_json:
            print(json.dumps(times), flush=True)
            continue
        print(f"  fedlite {ours * 1e3:.3f}   " + "   ".join(
            f"{gather} {times[gather] * 1e3:.3f} ({times[gather] / ours:.1f}x)"
            for gather in GATHERS), flush=True)


def compare_engines(revision, processes):
    """This checkout's fedlite against `revision`'s, in alternating new processes (see the
    module docstring); prints the table and returns the smaller of the two speed-ups."""
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "-C", repository, "archive", revision, "fedlite"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        engines = {revision: (folder, os.path.join(folder, "numba_cache")),
                   "this checkout": (repository, os.environ.get("NUMBA_CACHE_DIR"))}
        found = {name: [] for name in engines}
        for _ in range(processes):
            for name, (path, cache) in engines.items():
                env = {**os.environ, "PYTHONPATH": path}
                if cache:
                    env["NUMBA_CACHE_DIR"] = cache
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--json"],
                                     env=env, check=True, capture_output=True, text=True).stdout
                found[name] += [json.loads(line) for line in out.splitlines()
                                if line.startswith("{")]
    print(f"FedAvg, K={K} x {ROWS} rows, d={D}, batch {BATCH}: {processes} processes x "
          f"{COMPARISONS} comparisons per engine, median (range)")
    ratios = {}
    for name, runs in found.items():
        ours = [run["fedlite"] for run in runs]
        ratios[name] = {g: [run[g] / run["fedlite"] for run in runs] for g in GATHERS}
        print(f"  {name:>14}: fedlite {_spread(ours, 1e3)} ms; against " + ", ".join(
            f"{g} {_spread(ratios[name][g])}x" for g in GATHERS))
    old, new = revision, "this checkout"
    speedups = {g: statistics.median(ratios[new][g]) / statistics.median(ratios[old][g])
                for g in GATHERS}
    print("  this checkout / " + revision + ", ratio of median ratios: " + ", ".join(
        f"{g} {speedups[g]:.2f}x" for g in GATHERS))
    worst = min(speedups.values())
    print(f"  issue 11's target, 15/11 = {ISSUE_TARGET:.2f}x the engine it described: "
          f"{worst:.2f}x  {'PASS' if worst >= ISSUE_TARGET else 'MISS'}")
    return worst


def _spread(values, scale=1.0):
    """'median (min-max)' of values * scale: 3 decimals for milliseconds, 1 for ratios."""
    values = [value * scale for value in values]
    digits = 3 if scale > 1 else 1
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REVISION",
                        help="also time this git revision's fedlite (e.g. 976803c)")
    parser.add_argument("--processes", type=int, default=4,
                        help="new processes per engine with --against (default 4)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against:
        compare_engines(args.against, args.processes)
    else:
        measure(as_json=args.json)


if __name__ == "__main__":
    main()
