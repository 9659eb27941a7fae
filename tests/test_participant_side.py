"""The Aggregator protocol's participant side: clipping and compression happen in `prepare`,
on each participant, so the server's `aggregate` only ever sees what a participant sent."""
import numpy as np

import fedlite
from fedlite.compression import StochasticQuantizer, TopK
from fedlite.differential_privacy import DPAggregator


def federation():
    X, y, _, _ = fedlite.make_linear_data(60, 4, seed=0)
    return fedlite.split(X, y, 5, seed=0)


class ServerSpy:
    """Wraps an aggregator and records what reaches its server side."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def start(self, *args):
        self.inner.start(*args)

    def prepare(self, reports, selected, round_number):
        return self.inner.prepare(reports, selected, round_number)

    def aggregate(self, reports, num_examples, selected, round_number):
        self.seen.append(reports.copy())
        return self.inner.aggregate(reports, num_examples, selected, round_number)


def test_dp_clipping_happens_on_the_participants():
    spy = ServerSpy(DPAggregator(clip_norm=0.01, noise_multiplier=0.0))
    fedlite.simulate(federation(), algorithm="fedavg", num_rounds=3, lr=0.1, aggregator=spy)
    norms = np.concatenate([np.linalg.norm(r, axis=1) for r in spy.seen])
    assert norms.max() <= 0.01 * (1 + 1e-12)


def test_top_k_compression_happens_on_the_participants():
    spy = ServerSpy(TopK(0.4))
    fedlite.simulate(federation(), algorithm="fedavg", num_rounds=3, lr=0.1, aggregator=spy)
    assert all(np.count_nonzero(row) <= 2 for r in spy.seen for row in r)   # k = ceil(0.4·5)


def test_quantised_reports_reach_the_server_on_the_levels():
    spy = ServerSpy(StochasticQuantizer(2))
    fedlite.simulate(federation(), algorithm="fedavg", num_rounds=2, lr=0.1, aggregator=spy)
    assert all(len(np.unique(row)) <= 4 for r in spy.seen for row in r)


def test_prepare_then_aggregate_equals_aggregate_alone():
    rng = np.random.default_rng(0)
    reports, n, selected = rng.normal(size=(3, 5)), np.array([2.0, 3.0, 4.0]), np.arange(3)
    for make in (lambda: TopK(0.4), lambda: StochasticQuantizer(3),
                 lambda: DPAggregator(clip_norm=0.5, noise_multiplier=1.0)):
        a, b = make(), make()
        a.start(3, 5, np.random.SeedSequence(1))
        b.start(3, 5, np.random.SeedSequence(1))
        mean_a, bytes_a = a.aggregate(a.prepare(reports, selected, 1), n, selected, 1)
        mean_b, bytes_b = b.aggregate(reports, n, selected, 1)
        assert np.array_equal(mean_a, mean_b) and bytes_a == bytes_b
