"""python -m fedlite.flower: run a fedlite experiment on a local Flower federation and compare.

    python -m fedlite.flower --participants 3 --rounds 5 --algorithm fedavg [--model linear]
                             [--engine deployment|simulation] [--stop-supernode K:ROUND]

Starts one flower-superlink and one flower-supernode per participant on 127.0.0.1 (or Flower's
simulation engine), runs the experiment, prints its History beside `fedlite.simulate`'s on the
same federation, and stops every process it started.  Exit status 0 when every round's loss
equals simulate's to 1e-9 relative (`python3 tasks.py flower ...` runs this in .venv).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .experiment import DATA_RECIPES, FLOWER_MODELS, Experiment
from .launcher import ENGINES, check_stop_supernode, run_flower
from .results import FlowerRunError

RTOL = 1e-9


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        experiment = Experiment(
            num_participants=args.participants, num_rounds=args.rounds,
            algorithm=args.algorithm, model=args.model, data=args.data, lr=args.lr,
            local_epochs=args.local_epochs, batch_size=args.batch_size, mu=args.mu,
            participation=args.participation, seed=args.seed,
            server_optimizer=args.server_optimizer, server_lr=args.server_lr,
            min_participants=args.min_participants, round_timeout=args.round_timeout)
        stop = check_stop_supernode(_stop_supernode(args.stop_supernode), experiment,
                                    args.engine)
    except (TypeError, ValueError) as exc:
        print(f"fedlite flower: {exc}", file=sys.stderr)
        return 2
    print(f"fedlite on Flower's {args.engine} engine: {experiment.num_participants} "
          f"participants, {experiment.algorithm}, {experiment.model}, "
          f"{experiment.num_rounds} rounds (this takes a while: the engine polls)", flush=True)
    reference, simulate_seconds = _timed_simulate(experiment)
    try:
        run = run_flower(experiment, engine=args.engine, stop_supernode=stop)
    except FlowerRunError as exc:
        print(f"fedlite flower: the run failed: {exc}", file=sys.stderr)
        return 1
    print(report(run, reference, simulate_seconds))
    same = _same_losses(run, reference)
    return 0 if same or run.short_rounds else 1


def report(run, reference, simulate_seconds):
    """A printable comparison of a FlowerRun with simulate's History on the same experiment."""
    history = run.history
    lines = [f"{'round':>5}  {'loss (Flower)':>20}  {'loss (simulate)':>20}  {'rel. diff':>9}  "
             f"{'participants':>12}  {'seconds':>7}"]
    for r, loss in enumerate(history.loss):
        ref = reference.loss[r] if r < len(reference.loss) else np.nan
        diff = abs(loss - ref) / abs(ref) if ref else abs(loss - ref)
        who = ("all" if r == 0 else
               f"{history.metrics['participants'][r - 1]}/{history.selected.shape[1]}")
        seconds = "" if r == 0 else f"{run.round_seconds[r - 1]:7.2f}"
        lines.append(f"{r:>5}  {loss:>20.12g}  {ref:>20.12g}  {diff:>9.1e}  {who:>12}  "
                     f"{seconds:>7}")
    lines.append(repr(history))
    if run.short_rounds:
        lines.append("rounds with fewer participants (who did not reply): "
                     + ", ".join(f"{r}: {ids}" for r, ids in sorted(run.short_rounds.items())))
        lines.append("their loss is over the participants that answered the evaluation")
    lines.append(f"bytes as fedlite counts them: up {history.bytes_up.sum()}, down "
                 f"{history.bytes_down.sum()} (8 bytes per parameter per message)")
    if run.traffic is not None:
        lines.append(f"bytes Flower counted on the wire: from the SuperNodes "
                     f"{run.traffic['inbound']}, to them {run.traffic['outbound']} (messages "
                     f"with their framing, evaluation rounds, requests and replies)")
    per_round = simulate_seconds / max(reference.num_rounds, 1)
    if len(run.round_seconds):
        lines.append(f"time per round: Flower {run.round_seconds.mean():.2f} s, simulate "
                     f"{per_round * 1e3:.3f} ms; whole Flower run {run.seconds:.1f} s")
    verdict = ("yes" if _same_losses(run, reference) else
               "no (rounds had fewer participants)" if run.short_rounds else "NO")
    lines.append(f"same losses as simulate to {RTOL:g} relative: {verdict}")
    return "\n".join(lines)


def _same_losses(run, reference):
    loss = run.history.loss
    return loss.shape == reference.loss.shape and np.allclose(loss, reference.loss,
                                                              rtol=RTOL, atol=0)


def _timed_simulate(experiment):
    experiment.simulate()            # compiles (or loads) the kernels first
    start = time.perf_counter()
    reference = experiment.simulate()
    return reference, time.perf_counter() - start


def _stop_supernode(text):
    if text is None:
        return None
    try:
        k, after = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"--stop-supernode must be K:ROUND (participant K's SuperNode stops "
                         f"after ROUND rounds), e.g. 2:1; got {text!r}") from None
    return k, after


def _optional(kind):
    return lambda text: None if text.lower() == "none" else kind(text)


def _parser():
    parser = argparse.ArgumentParser(prog="python3 tasks.py flower",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=3, help="SuperNodes (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--algorithm", default="fedavg",
                        help="fedsgd, fedavg, fedprox, scaffold (default fedavg)")
    parser.add_argument("--model", default="linear", choices=FLOWER_MODELS)
    parser.add_argument("--engine", default="deployment", choices=ENGINES)
    parser.add_argument("--data", default="linear", choices=DATA_RECIPES)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=_optional(int), default=None,
                        help="minibatch size (default None: full batch)")
    parser.add_argument("--mu", type=float, default=0.0, help="FedProx's mu")
    parser.add_argument("--participation", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server-optimizer", default="sgd",
                        help="sgd, momentum, adam, yogi, adagrad (default sgd)")
    parser.add_argument("--server-lr", type=_optional(float), default=None)
    parser.add_argument("--min-participants", type=_optional(int), default=None,
                        help="replies a round needs (default: every selected participant)")
    parser.add_argument("--round-timeout", type=float, default=120.0,
                        help="seconds the server waits for one round's replies (default 120)")
    parser.add_argument("--stop-supernode", metavar="K:ROUND", default=None,
                        help="a fault: stop participant K's SuperNode after ROUND rounds")
    return parser


if __name__ == "__main__":
    sys.exit(main())
