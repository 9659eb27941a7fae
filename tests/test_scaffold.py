"""SCAFFOLD: control variates fix FedAvg's client drift (the engine-equality, resume and
bit-for-bit tests cover it through tests/test_algorithms.py, which runs every algorithm)."""
import numpy as np
import pytest

import fedlite
from conftest import on_one_and_all_threads
from fedlite import experiments
from fedlite.algorithms import ALGORITHMS


def drifting(seed=0):
    fed, _, _ = fedlite.make_concept_shift(10, 20, 5, spread=1.0, seed=seed)
    return fed


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("batch_size,scaffold_gap", [(None, 1e-10), (5, 0.02)])
def test_scaffold_reaches_the_pooled_optimum_where_fedavg_stalls(seed, batch_size, scaffold_gap):
    """Full batch: SCAFFOLD's fixed point is the pooled optimum (gap ~1e-15 measured on seeds
    0-4, FedAvg's 0.06-0.12).  Minibatches add noise: 0.006-0.010 against FedAvg's 0.20-0.33."""
    fed = drifting(seed)
    kwargs = dict(num_rounds=150, lr=0.05, local_epochs=10, batch_size=batch_size, seed=seed)
    fedavg = fedlite.simulate(fed, algorithm="fedavg", **kwargs)
    scaffold = fedlite.simulate(fed, algorithm="scaffold", **kwargs)
    assert not fedavg.diverged and not scaffold.diverged
    gap_fedavg = experiments.distance_to_optimum(fedavg, fed)
    gap_scaffold = experiments.distance_to_optimum(scaffold, fed)
    assert gap_scaffold < scaffold_gap and gap_fedavg > 0.05
    assert gap_scaffold < gap_fedavg / 10


def test_with_unequal_sizes_scaffold_reaches_the_pooled_optimum():
    """c is the n_k-weighted mean of the c_k, so the fixed point minimises the pooled loss
    (the paper's uniform mean would give the minimiser of the plain average of the losses)."""
    sizes = [10, 20, 40, 80, 150]
    fed, _, _ = fedlite.make_concept_shift(5, sizes, 5, spread=1.0, seed=0)
    history = fedlite.simulate(fed, algorithm="scaffold", num_rounds=300, lr=0.02,
                               local_epochs=5)
    assert experiments.distance_to_optimum(history, fed) < 1e-9


def test_participants_that_sit_out_keep_their_control_variate():
    fed = drifting()
    history = fedlite.simulate(fed, algorithm="scaffold", num_rounds=3, lr=0.05,
                               participation=0.3, batch_size=5, seed=1)
    controls = history.state.participant_state["control"]
    ever = np.unique(history.selected)
    never = np.setdiff1d(np.arange(fed.num_participants), ever)
    assert never.size and ever.size
    assert np.all(controls[never] == 0) and np.all(np.abs(controls[ever]).sum(axis=1) > 0)
    # the server's c is the n_k-weighted mean over ALL participants of the c_k (from 0)
    weights = fed.sizes / fed.num_samples
    np.testing.assert_allclose(history.state.server_state["control"], weights @ controls,
                               rtol=1e-12, atol=1e-15)


def test_scaffold_sends_a_control_variate_both_ways():
    fed = drifting()
    history = fedlite.simulate(fed, algorithm="scaffold", num_rounds=2, lr=0.05,
                               participation=0.5)
    P = fed.num_features + 1
    assert list(history.bytes_up) == list(history.bytes_down) == [5 * 2 * P * 8] * 2


def test_scaffold_refuses_an_aggregator_that_cannot_carry_control_variates():
    from fedlite.compression import TopK
    with pytest.raises(ValueError, match="control variates"):
        fedlite.simulate(drifting(), algorithm="scaffold", num_rounds=1, lr=0.05,
                         aggregator=TopK(0.5))


def test_scaffold_refuses_mu():
    with pytest.raises(ValueError, match="mu"):
        fedlite.simulate(drifting(), algorithm="scaffold", mu=0.1, num_rounds=1, lr=0.05)


@pytest.mark.skipif(not hasattr(fedlite.engine.local_updates, "stats"), reason="needs the JIT")
def test_thread_count_does_not_change_a_bit():
    fed = drifting()
    kwargs = dict(algorithm="scaffold", model="mlp", hidden=4, num_rounds=4, lr=0.02,
                  batch_size=4, participation=0.5, server_optimizer="adam")
    one, many = on_one_and_all_threads(lambda: fedlite.simulate(fed, **kwargs))
    assert np.array_equal(one.theta, many.theta) and np.array_equal(one.loss, many.loss)


def test_scaffold_is_registered():
    assert ALGORITHMS["scaffold"].name == "scaffold"
