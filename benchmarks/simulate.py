"""How fast is fedlite.simulate?  Against two numpy baselines, and against itself.

    .venv/bin/python benchmarks/simulate.py          (under a minute on 2 cores)

Participants hold 100 rows of d=10 each (the linear model, equal sizes); local training is one
epoch of minibatch SGD with batch 10.  Every time is per round, measured in this run: the best
(minimum) of several repeats, with the competitors of each comparison timed in turn within each
repeat, since these machines are noisy.  Compare the ratios, not the milliseconds.

1. fedlite against `numpy_loop`, a plain Python loop over participants and minibatches using
   numpy (what a student would write), for every algorithm: fedsgd, fedavg, fedprox (mu=0.1),
   scaffold and fedadam (fedavg with server_optimizer="adam"), at K = 10, 100, 1000.
   Both compute the same things each round: every participant's report, the weighted mean, the
   server's step (and SCAFFOLD's control variates), every participant's loss under the new model.
2. FedAvg against `vectorised` (benchmarks/vectorised.py), numpy over participants: all K take
   their s-th minibatch step together with einsum (only possible with equal sizes), with two
   gathers of the shuffled rows: np.take_along_axis (the idiomatic one) and np.take on flat row
   numbers (the strongest plain-numpy rival, ~9x faster to gather).  Issue 11 asked for 15x
   where "today" was about 11x: the engine it described (commit 976803c) measures 6-10x
   against take_along_axis and only 3-4x against take (benchmarks/vectorised.py times any
   fedlite checkout against both).  So the target means "1.36x that engine's speed against the
   same baseline", which needs both engines: `benchmarks/vectorised.py --against 976803c`
   checks it.  Here both ratios are printed, without a target.
3. SCAFFOLD and FedAdam against FedAvg, per round (K=1000).
4. Stepping one round per call, `simulate(..., num_rounds=1, init=previous theta)` and
   `simulate(..., num_rounds=1, resume=previous history)` (an interactive cell, the Flower
   bridge) against one call of many rounds, per round (K=1000).
5. A warm start: a new Python process that imports fedlite and calls every kernel once.

Before timing, both baselines are run with fedlite's minibatch orders and checked equal to
fedlite's results (to 1e-9), so the three are timed doing the same computation.
Targets (issue 11) are printed with PASS or MISS at the end.  On a busy machine fedlite's two
threads wait for each other's CPU at every parallel loop and its times swing by 10x; run again
when the load average is low, or with NUMBA_NUM_THREADS=1 for steadier (one-thread) figures.
"""
import os
import sys
import time

import numba
import numpy as np

import fedlite
from fedlite import engine
from fedlite.engine import shuffle_order
from fedlite.reference import linear_loss_grad
from fedlite.simulation import participant_keys_for_seed

sys.path.insert(0, os.path.dirname(__file__))
from kernels import new_process_seconds  # noqa: E402  (benchmarks/kernels.py)
from vectorised import (BATCH, D, GATHERS, ROWS, fedavg_against_vectorised,  # noqa: E402
                        linear_federation, per_round, vectorised)  # benchmarks/vectorised.py

NUM_ROUNDS = 20                   # one long fedlite call ...
REPEATS = 15                      # ... timed this many times (short and often beats the noise)
VECTORISED_REPEATS = 60           # section 2: noise here lasts seconds, so spread it over ~6 s
LOOP_ROUNDS = {10: 20, 100: 4, 1000: 1}   # the Python loop is slow: fewer rounds, same per round
STEPS = 20                        # rounds stepped one call at a time
ALGORITHMS = {                    # label: simulate's arguments
    "fedsgd": dict(algorithm="fedsgd", lr=0.1),
    "fedavg": dict(algorithm="fedavg", lr=0.01, batch_size=BATCH),
    "fedprox": dict(algorithm="fedprox", lr=0.01, batch_size=BATCH, mu=0.1),
    "scaffold": dict(algorithm="scaffold", lr=0.01, batch_size=BATCH),
    "fedadam": dict(algorithm="fedavg", lr=0.01, batch_size=BATCH, server_optimizer="adam"),
}
ADAM = dict(server_lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)   # fedlite's FedAdam defaults


# ----------------------------------------------------------------------------- baselines
def numpy_loop(federation, algorithm, lr, num_rounds, batch_size=None, mu=0.0,
               server_optimizer="sgd", seed=0, order=None):
    """The obvious implementation: Python loops over rounds, participants and minibatches.

    order(k, round, n): participant k's minibatch order; None = its own numpy generator."""
    K, P = federation.num_participants, federation.num_features + 1
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(K)]
    order = order or (lambda k, r, n: rngs[k].permutation(n))
    parts = [federation.participant(k) for k in range(K)]
    sizes = federation.sizes
    theta = np.zeros(P)
    c, c_k = np.zeros(P), np.zeros((K, P))                       # SCAFFOLD's control variates
    m, v = np.zeros(P), np.full(P, ADAM["tau"] ** 2)             # the server's Adam moments
    for r in range(1, num_rounds + 1):
        reports, control_deltas = [], []
        for k, (X, y) in enumerate(parts):
            if algorithm == "fedsgd":
                _, gw, gb = linear_loss_grad(X, y, theta[:-1], theta[-1])
                reports.append(np.append(gw, gb))
                continue
            v_k, steps, rows = theta.copy(), 0, order(k, r, len(y))
            for start in range(0, len(y), batch_size):
                batch = rows[start:start + batch_size]
                _, gw, gb = linear_loss_grad(X[batch], y[batch], v_k[:-1], v_k[-1])
                grad = np.append(gw, gb)
                if algorithm == "fedprox":
                    grad += mu * (v_k - theta)
                if algorithm == "scaffold":
                    grad += c - c_k[k]
                v_k -= lr * grad
                steps += 1
            if algorithm == "scaffold":
                new = c_k[k] - c + (theta - v_k) / (steps * lr)
                control_deltas.append(new - c_k[k])
                c_k[k] = new
            reports.append(v_k)
        mean = np.average(reports, axis=0, weights=sizes)
        if algorithm == "fedsgd":
            theta = theta - lr * mean
        elif server_optimizer == "adam":
            delta = mean - theta
            m = ADAM["beta1"] * m + (1 - ADAM["beta1"]) * delta
            v = ADAM["beta2"] * v + (1 - ADAM["beta2"]) * delta ** 2
            theta = theta + ADAM["server_lr"] * m / (np.sqrt(v) + ADAM["tau"])
        else:
            theta = mean
        if algorithm == "scaffold":
            c = c + np.sum(control_deltas, axis=0) / K
        losses = [linear_loss_grad(X, y, theta[:-1], theta[-1])[0] for X, y in parts]
    return theta, losses


def check_baselines(federation, num_rounds=3):
    """Both baselines, given fedlite's minibatch orders, give fedlite's results (to 1e-9)."""
    K, n = federation.num_participants, int(federation.sizes[0])
    keys = participant_keys_for_seed(0, K)
    fedlite_order = lambda k, r, n: shuffle_order(keys[k], r, 0, n)   # noqa: E731
    for label, kwargs in ALGORITHMS.items():
        ours = fedlite.simulate(federation, num_rounds=num_rounds, seed=0, **kwargs)
        loop_kwargs = {k: v for k, v in kwargs.items() if k != "algorithm"}
        theta, losses = numpy_loop(federation, kwargs["algorithm"], num_rounds=num_rounds,
                                   order=fedlite_order, **loop_kwargs)
        np.testing.assert_allclose(theta, ours.theta, rtol=1e-9, err_msg=label)
        np.testing.assert_allclose(losses, ours.participant_loss[-1], rtol=1e-9, err_msg=label)
    ours = fedlite.simulate(federation, num_rounds=num_rounds, seed=0, **ALGORITHMS["fedavg"])
    for gather in GATHERS:
        theta, losses = vectorised(federation, 0.01, num_rounds, BATCH, gather=gather,
                                   order=lambda r: np.array(
                                       [shuffle_order(keys[k], r, 0, n) for k in range(K)]))
        np.testing.assert_allclose(theta, ours.theta, rtol=1e-9, err_msg=gather)
        np.testing.assert_allclose(losses, ours.participant_loss[-1], rtol=1e-9, err_msg=gather)


# ----------------------------------------------------------------------------- timing
def long_run(federation, kwargs):
    """One call of NUM_ROUNDS rounds."""
    run = lambda: fedlite.simulate(federation, num_rounds=NUM_ROUNDS, seed=0, **kwargs)  # noqa
    return run, NUM_ROUNDS


def stepped(federation, kwargs, how):
    """STEPS rounds, one simulate call each, continuing with init= or resume=."""
    def run():
        history = fedlite.simulate(federation, num_rounds=1, seed=0, **kwargs)
        for _ in range(STEPS - 1):
            more = ({"init": history.theta} if how == "init" else {"resume": history})
            history = fedlite.simulate(federation, num_rounds=1, seed=0, **kwargs, **more)
    return run, STEPS


def one_pass(federation):
    """NUM_ROUNDS times every participant's loss at one theta: the engine's cheapest pass over
    all the rows (back to back, as in a run, so the threads are awake)."""
    d = federation.num_features
    theta = np.zeros(d + 1)

    def run():
        for _ in range(NUM_ROUNDS):
            engine.participant_losses(engine.LINEAR, federation.X, federation.y,
                                      federation.offsets, theta, d, 1)
    return run


def loop_run(federation, kwargs, rounds):
    loop_kwargs = {k: v for k, v in kwargs.items() if k != "algorithm"}
    return (lambda: numpy_loop(federation, kwargs["algorithm"], num_rounds=rounds,
                               **loop_kwargs)), rounds


def main():
    started = time.perf_counter()
    fedlite.warmup(verbose=False)
    print(f"fedlite {fedlite.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"{numba.get_num_threads()} threads, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    if os.getloadavg()[0] > 0.5:
        print("WARNING: other processes are busy; fedlite's threads wait for each other's "
              "CPUs, so its times (not the baselines') will be too high")
    print(f"{ROWS} rows x d={D} per participant, linear model, batch {BATCH}; "
          f"times per round\n")
    check_baselines(linear_federation(20))

    print("1. fedlite against a Python loop over participants (numpy inside)")
    print(f"{'K':>5} {'algorithm':>9} {'fedlite ms':>11} {'numpy loop ms':>14} {'speed-up':>9}")
    loop_ratio = {}
    for K in (10, 100, 1000):
        federation = linear_federation(K)
        for label, kwargs in ALGORITHMS.items():
            ours = per_round({"": long_run(federation, kwargs)}, REPEATS)[""]
            theirs = per_round({"": loop_run(federation, kwargs, LOOP_ROUNDS[K])}, 3)[""]
            loop_ratio[K, label] = theirs / ours
            print(f"{K:>5} {label:>9} {ours * 1e3:>11.3f} {theirs * 1e3:>14.2f} "
                  f"{theirs / ours:>8.1f}x", flush=True)

    K = 1000
    federation = linear_federation(K)
    print(f"\n2. FedAvg against numpy vectorised over participants (einsum), K={K}")
    times = fedavg_against_vectorised(federation, NUM_ROUNDS, VECTORISED_REPEATS,
                                      also={"pass": (one_pass(federation), NUM_ROUNDS)})
    vectorised_ratio = {gather: times[gather] / times["fedlite"] for gather in GATHERS}
    print(f"fedlite {times['fedlite'] * 1e3:.3f} ms; vectorised numpy gathering with " + ", ".join(
        f"{gather} {times[gather] * 1e3:.3f} ms ({vectorised_ratio[gather]:.1f}x)"
        for gather in GATHERS))
    print(f"  for scale: one compiled pass over all the data (every participant's loss) takes "
          f"{times['pass'] * 1e3:.3f} ms, so a FedAvg round costs "
          f"{times['fedlite'] / times['pass']:.1f} passes; it does three such products per row "
          f"(residual, gradient, the new model's loss); 15x the take baseline would need <= "
          f"{times['take'] / 15 / times['pass']:.1f} passes")

    print(f"\n3. per round against FedAvg, K={K}")
    times = per_round({label: long_run(federation, ALGORITHMS[label])
                       for label in ("fedavg", "scaffold", "fedadam")}, REPEATS)
    relative = {label: times[label] / times["fedavg"] for label in ("scaffold", "fedadam")}
    for label, ratio in relative.items():
        print(f"{label:>9} {times[label] * 1e3:.3f} ms / fedavg {times['fedavg'] * 1e3:.3f} ms "
              f"= {ratio:.2f}x")

    print(f"\n4. {STEPS} rounds one call each against one call of {NUM_ROUNDS} rounds, per "
          f"round, K={K}")
    print(f"{'algorithm':>9} {'long ms':>8} {'init= ms':>9} {'ratio':>6} {'resume= ms':>11} "
          f"{'ratio':>6}")
    stepping = {}
    for label, kwargs in ALGORITHMS.items():
        times = per_round({"long": long_run(federation, kwargs),
                           "init": stepped(federation, kwargs, "init"),
                           "resume": stepped(federation, kwargs, "resume")}, REPEATS)
        long, init, resume = times["long"], times["init"], times["resume"]
        stepping[label] = (init / long, resume / long)
        print(f"{label:>9} {long * 1e3:>8.3f} {init * 1e3:>9.3f} {init / long:>5.2f}x "
              f"{resume * 1e3:>11.3f} {resume / long:>5.2f}x", flush=True)

    inside, wall, compiled = new_process_seconds()
    print(f"\n5. new process, import fedlite + call every kernel once: {inside:.2f} s "
          f"({wall:.2f} s with Python's own start-up; {compiled} kernels compiled)")

    print("\ntargets (issue 11)")
    checks = [(f"{label} K=1000 vs Python loop >= 40x", f"{loop_ratio[1000, label]:.1f}x",
               loop_ratio[1000, label] >= 40) for label in ALGORITHMS]
    checks += [(f"{label} per round <= 1.5x fedavg", f"{ratio:.2f}x", ratio <= 1.5)
               for label, ratio in relative.items()]
    for label, (init, resume) in stepping.items():
        checks.append((f"{label} stepping init=/resume= <= 1.5x", f"{init:.2f}x/{resume:.2f}x",
                       max(init, resume) <= 1.5))
    checks.append(("new process (warm start) < 1 s", f"{inside:.2f} s",
                   inside < 1 and compiled == 0))
    for name, value, ok in checks:
        print(f"  {name:<52} {value:>12}  {'PASS' if ok else 'MISS'}")
    for gather in GATHERS:
        print(f"  {f'(fedavg K=1000 vs vectorised ({gather}))':<52} "
              f"{vectorised_ratio[gather]:>11.1f}x")
    print("  (the 15x target, 15/11 = 1.36x the engine issue 11 described against the same "
          "baseline: benchmarks/vectorised.py --against 976803c)")
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
