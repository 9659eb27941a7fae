"""The benchmarks' baselines compute what fedlite computes, so their speed ratios compare equal
work (benchmarks/simulate.py checks this before timing; here it is checked in CI too)."""
import os
import subprocess
import sys

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")
sys.path.insert(0, BENCHMARKS)

import simulate  # noqa: E402  (benchmarks/simulate.py)


def test_both_baselines_give_fedlites_results_with_fedlites_orders():
    simulate.check_baselines(simulate.linear_federation(20), num_rounds=2)   # raises if not


def test_the_engine_comparison_script_starts():
    result = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "vectorised.py"),
                             "--help"], capture_output=True, text=True, timeout=120, check=True)
    assert "--against" in result.stdout
