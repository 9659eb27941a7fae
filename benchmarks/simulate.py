"""How fast is fedlite.simulate against a straightforward numpy loop over participants?

    .venv/bin/python benchmarks/simulate.py

For K in {10, 100, 1000} participants with 100 rows of d=10 each and 100 rounds, it times
`fedlite.simulate` (FedSGD; FedAvg with local_epochs=1, batch_size=10) and `baseline`, a plain
Python loop over participants and minibatches using numpy (what a student would write), in the
same run, and prints both times and the speed-up.  Both compute the same things each round:
every participant's update, the weighted mean, every participant's loss under the new model.
Times are the best of a few repeats (these machines are noisy); compare ratios, not seconds.
Targets (2 cores): >= 15x for FedSGD and >= 40x for FedAvg at K=1000; a classroom run
(K = 10..100, 100 rounds, linear) well under 50 ms.
"""
import time

import numba
import numpy as np

import fedlite
from fedlite.reference import linear_loss_grad

NUM_ROUNDS, ROWS, D = 100, 100, 10


def baseline(federation, algorithm, lr, num_rounds, batch_size=10, seed=0):
    """The obvious implementation: Python loops over rounds, participants and minibatches."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(
        federation.num_participants)]
    parts = [federation.participant(k) for k in range(federation.num_participants)]
    sizes = federation.sizes
    w, b = np.zeros(federation.num_features), 0.0
    history = []
    for _ in range(num_rounds):
        updates = []
        for (X, y), rng in zip(parts, rngs):
            if algorithm == "fedsgd":
                _, gw, gb = linear_loss_grad(X, y, w, b)
                updates.append(np.append(gw, gb))
                continue
            wk, bk = w.copy(), b
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch_size):
                rows = order[start:start + batch_size]
                _, gw, gb = linear_loss_grad(X[rows], y[rows], wk, bk)
                wk, bk = wk - lr * gw, bk - lr * gb
            updates.append(np.append(wk, bk))
        mean = np.average(updates, axis=0, weights=sizes)
        if algorithm == "fedsgd":
            mean = np.append(w, b) - lr * mean
        w, b = mean[:-1], mean[-1]
        history.append([linear_loss_grad(X, y, w, b)[0] for X, y in parts])
    return w, b, history


def best_time(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    fedlite.warmup(verbose=False)
    print(f"numba {numba.__version__}, numpy {np.__version__}, threads {numba.get_num_threads()}")
    print(f"{NUM_ROUNDS} rounds, {ROWS} rows x d={D} per participant, linear model\n")
    print(f"{'K':>5} {'algorithm':>9} {'fedlite ms':>11} {'numpy loop ms':>14} {'speed-up':>9}")
    ratios = {}
    for K in (10, 100, 1000):
        X, y, _, _ = fedlite.make_linear_data(K * ROWS, D, seed=0)
        federation = fedlite.split(X, y, K, seed=0)
        for algorithm, kwargs in (("fedsgd", {}), ("fedavg", dict(batch_size=10))):
            lr = 0.1 if algorithm == "fedsgd" else 0.01
            ours = best_time(lambda: fedlite.simulate(federation, algorithm=algorithm, lr=lr,
                                                      num_rounds=NUM_ROUNDS, **kwargs), 5)
            theirs = best_time(lambda: baseline(federation, algorithm, lr, NUM_ROUNDS),
                               1 if K == 1000 else 2)
            ratios[K, algorithm] = theirs / ours
            print(f"{K:>5} {algorithm:>9} {ours * 1e3:>11.1f} {theirs * 1e3:>14.1f} "
                  f"{theirs / ours:>8.1f}x", flush=True)
    print()
    for algorithm, target in (("fedsgd", 15), ("fedavg", 40)):
        ratio = ratios[1000, algorithm]
        print(f"target {algorithm} K=1000 >= {target}x: {ratio:.1f}x "
              f"{'PASS' if ratio >= target else 'MISS'}")


if __name__ == "__main__":
    main()
