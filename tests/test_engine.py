"""fedlite.engine's own contracts, where its fast paths could drift from what it documents: the
minibatch order is exactly the integer Fisher-Yates of its docstring, and the linear model's
minibatches (read where they lie in X) give the same bits as copying them out first."""
import numpy as np
import pytest

import fedlite
from fedlite import engine, kernels
from fedlite.simulation import participant_keys_for_seed


def mix31(z):
    z = ((z ^ (z >> 16)) * 0x45D9F3B) & engine.HASH_MASK
    z = ((z ^ (z >> 16)) * 0x45D9F3B) & engine.HASH_MASK
    return z ^ (z >> 16)


def naive_shuffle_order(key, round_number, epoch, n):
    """Fisher-Yates as documented: swap i with hash(key, round, epoch, i) mod (i + 1)."""
    mask = engine.HASH_MASK
    seed = mix31((key ^ mix31(round_number & mask)) & mask)
    seed = mix31((seed ^ mix31((epoch + 0x5BD1E995) & mask)) & mask)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = mix31((seed ^ mix31(i)) & mask) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


@pytest.mark.parametrize("n", [1, 2, 3, 10, 100, 1001, 5000])
@pytest.mark.parametrize("key", [0, 1, 987654321, engine.HASH_MASK])
def test_shuffle_order_is_the_integer_fisher_yates(n, key):
    """shuffle_order takes each mod through a float division (so it vectorises): same orders."""
    for round_number, epoch in ((1, 0), (7, 3), (2**40, 12)):
        assert engine.shuffle_order(key, round_number, epoch, n).tolist() == \
            naive_shuffle_order(key, round_number, epoch, n)


def copying_local_sgd(fed, k, key, theta, lr, batch_size, round_number, epochs):
    """The linear local SGD with each minibatch copied out of X first (what the engine did
    before it read the linear model's rows in place), built from the same compiled pieces."""
    start, stop = fed.offsets[k], fed.offsets[k + 1]
    n, d = stop - start, fed.num_features
    v = theta.copy()
    for epoch in range(epochs):
        order = engine.shuffle_order(key, round_number, epoch, n)
        for b0 in range(0, n, batch_size):
            rows = start + order[b0:b0 + batch_size]
            grad = np.zeros(d + 1)
            _, sum_r = kernels.linear_rows(fed.X[rows], fed.y[rows], v[:d], v[d], 0,
                                           len(rows), grad[:d])
            grad[d] += sum_r
            engine.sgd_step(v, grad, len(rows), theta, lr, 0.0, np.empty(0))
    return v


@pytest.mark.parametrize("d,batch_size", [(1, 3), (3, 4), (10, 10), (17, 7)])
def test_linear_minibatches_read_in_place_give_the_copied_bits(d, batch_size):
    X, y, _, _ = fedlite.make_linear_data(6 * 40, d, seed=d)
    fed = fedlite.split(X, y, 6, scheme="quantity", alpha=5.0, seed=1)
    keys = participant_keys_for_seed(3, 6)
    theta = np.random.default_rng(d).normal(size=d + 1)
    selected = np.arange(6)
    updates = engine.local_updates(engine.LINEAR, engine.LOCAL_SGD, fed.X, fed.y, fed.offsets,
                                   selected, keys, 2, theta, d, 1, 0.05, 2, batch_size, 0.0,
                                   np.empty((0, d + 1)))
    for k in selected:
        expected = copying_local_sgd(fed, k, keys[k], theta, 0.05, batch_size, 2, 2)
        np.testing.assert_array_equal(updates[k], expected)


@pytest.mark.parametrize("m,P", [(1, 1), (3, 4), (1000, 11)])
def test_sum_rows_adds_in_row_order(m, P):
    """SCAFFOLD's server sums the control variate changes with it: the plain loop's bits."""
    rows = np.random.default_rng(m).normal(size=(m, P)) * 10.0 ** (np.arange(P) - P // 2)
    rows[0, 0] = -0.0
    total = np.zeros(P)
    for row in rows:
        total += row
    assert engine.sum_rows(rows).tobytes() == total.tobytes()
