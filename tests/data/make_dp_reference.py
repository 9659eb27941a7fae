"""Make tests/data/dp_reference.json: epsilons from Google's dp-accounting, the test's oracle.

Not run in CI, and dp-accounting is NOT a dependency of fedlite (it needs scipy).  To regenerate,
in a scratch virtual environment outside the project:

    python3 -m venv /tmp/dpref-venv
    /tmp/dpref-venv/bin/pip install dp-accounting==0.6.0
    /tmp/dpref-venv/bin/python tests/data/make_dp_reference.py

For each (q, z, rounds, delta) of the grid it composes `rounds` Poisson-subsampled Gaussian
mechanisms (sampling rate q, noise multiplier z) with dp-accounting's RdpAccountant, twice:
- eps_integer_orders: with the integer orders of `fedlite.differential_privacy.ORDERS`, the
  same orders as fedlite, so the two must agree to round-off (tests/test_differential_privacy.py
  asks for 1%);
- eps_default_orders: with dp-accounting's default orders, which add fractional orders 1.1 ..
  10.9; a bigger set of orders gives a smaller (tighter) epsilon, so fedlite's is never below it.
"""
import json
from importlib.metadata import version
from pathlib import Path

import dp_accounting
from dp_accounting import rdp

ORDERS = list(range(2, 64)) + [128, 256, 512, 1024]   # = fedlite.differential_privacy.ORDERS
GRID = dict(q=[0.001, 0.01, 0.05, 0.1, 0.5, 1.0], z=[0.5, 0.8, 1.0, 1.5, 3.0, 10.0],
            rounds=[1, 10, 100, 1000], delta=[1e-5, 1e-3])


def epsilon(q, z, rounds, delta, orders=None):
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds)
    accountant = rdp.RdpAccountant(orders)
    accountant.compose(event)
    return accountant.get_epsilon(delta)


def main():
    rows = [dict(q=q, z=z, rounds=rounds, delta=delta,
                 eps_integer_orders=epsilon(q, z, rounds, delta, ORDERS),
                 eps_default_orders=epsilon(q, z, rounds, delta))
            for q in GRID["q"] for z in GRID["z"] for rounds in GRID["rounds"]
            for delta in GRID["delta"]]
    out = Path(__file__).with_name("dp_reference.json")
    lines = ",\n  ".join(json.dumps(row) for row in rows)
    out.write_text(f'{{"generator": "dp-accounting {version("dp-accounting")}",\n'
                   f' "orders": {json.dumps(ORDERS)},\n "rows": [\n  {lines}\n ]}}\n')
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
