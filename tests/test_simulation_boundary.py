"""simulate's boundary (issue 10): nothing unchecked reaches the compiled engine, no silent
wrong value, divergence reported as diverged_at, custom aggregators checked."""
import types

import numpy as np
import pytest

import fedlite
from fedlite.validation import UpdateOverflowError


def small_federation(K=4, n_per=10, d=3, seed=0):
    X, y, _, _ = fedlite.make_linear_data(K * n_per, d, seed=seed)
    return fedlite.split(X, y, K, seed=seed)


def test_an_object_that_only_looks_like_a_federation_is_refused():
    fed = small_federation()
    fake = types.SimpleNamespace(X=fed.X, y=fed.y, offsets=np.array([0, 5, 10**9]),
                                 sizes=np.array([5, 10**9 - 5]), num_participants=2)
    with pytest.raises(TypeError, match="federation"):
        fedlite.simulate(fake, num_rounds=1, lr=0.1)


def test_offsets_changed_behind_the_federations_back_are_refused():
    fed = small_federation()
    offsets = fed.offsets.copy()
    offsets[-1] = 10**9
    object.__setattr__(fed, "offsets", offsets)       # what no user code should do
    with pytest.raises(ValueError, match="federation"):
        fedlite.simulate(fed, num_rounds=1, lr=0.1)


@pytest.mark.parametrize("init,error,match", [
    ("zeros", TypeError, "init"),
    (True, TypeError, "init"),
    ({"w": 0}, TypeError, "init"),
    (np.zeros(4, dtype=complex), TypeError, "init"),
    (np.zeros(5), ValueError, "init"),
    (np.array([0.0, np.nan, 0.0, 0.0]), ValueError, "init"),
    ((np.zeros(2), np.zeros(2)), ValueError, "init"),      # right total size, wrong pieces
    ((np.zeros(3), 0.0, 1.0), TypeError, "init"),
    ((np.zeros(3), "b"), TypeError, "init"),
])
def test_init_is_checked_and_errors_name_it(init, error, match):
    with pytest.raises(error, match=match):
        fedlite.simulate(small_federation(), num_rounds=1, lr=0.1, init=init)


def test_a_flat_sequence_of_numbers_is_a_valid_init():
    fed = small_federation()
    a = fedlite.simulate(fed, num_rounds=2, lr=0.1, init=[0.1, 0.2, 0.3, 0.4])
    b = fedlite.simulate(fed, num_rounds=2, lr=0.1, init=np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.array_equal(a.theta, b.theta)


@pytest.mark.parametrize("kwargs", [dict(init=(np.full(3, 1e300), 0.0)), dict(scale=1e200)])
def test_a_loss_that_overflows_at_the_start_is_refused_not_a_history_of_inf(kwargs):
    fed = small_federation()
    if "scale" in kwargs:
        fed = fedlite.Federation(fed.X, fed.y * kwargs.pop("scale"), fed.offsets, fed.index)
    with np.errstate(all="raise"), pytest.raises(ValueError, match="overflow"):
        fedlite.simulate(fed, num_rounds=3, lr=0.1, **kwargs)


def test_a_loss_that_overflows_later_is_diverged_at_with_a_finite_history():
    fed = small_federation()
    fed = fedlite.Federation(fed.X * 1e60, fed.y, fed.offsets, fed.index)
    with np.errstate(all="raise"):
        history = fedlite.simulate(fed, num_rounds=5, lr=1.0)
    assert history.diverged_at == 1
    assert np.isfinite(history.loss).all() and np.isfinite(history.theta).all()


def test_a_huge_hidden_layer_is_refused_before_allocating():
    with pytest.raises(ValueError, match="hidden"):
        fedlite.simulate(small_federation(), model="mlp", hidden=10**9, num_rounds=1, lr=0.1)


class WrongShape:
    def start(self, num_participants, num_params, seed_sequence):
        pass

    def aggregate(self, reports, num_examples, selected, round_number):
        return np.zeros(reports.shape[1] + 1), 8


class WrongBytes(WrongShape):
    def aggregate(self, reports, num_examples, selected, round_number):
        return reports.mean(axis=0), -1.5


class NotATuple(WrongShape):
    def aggregate(self, reports, num_examples, selected, round_number):
        return reports.mean(axis=0)


class Overflowing(WrongShape):
    def aggregate(self, reports, num_examples, selected, round_number):
        if round_number == 3:
            raise UpdateOverflowError("values too large for the modulus")
        return reports.mean(axis=0), 8


@pytest.mark.parametrize("aggregator,error,match", [
    (object(), TypeError, "aggregator"),
    (WrongShape(), TypeError, "shape"),
    (WrongBytes(), TypeError, "bytes_up"),
    (NotATuple(), TypeError, "aggregate must return"),
])
def test_custom_aggregators_are_checked(aggregator, error, match):
    with pytest.raises(error, match=match):
        fedlite.simulate(small_federation(), algorithm="fedavg", num_rounds=2, lr=0.1,
                         aggregator=aggregator)


def test_an_update_too_large_to_aggregate_is_reported_as_divergence():
    history = fedlite.simulate(small_federation(), algorithm="fedavg", num_rounds=5, lr=0.1,
                               aggregator=Overflowing())
    assert history.diverged_at == 3 and history.num_rounds == 2


@pytest.mark.parametrize("make", ["secure", "dp"])
def test_divergence_under_secure_aggregation_or_dp_is_diverged_at(make):
    from fedlite import privacy
    aggregator = (privacy.SecureAggregator() if make == "secure"
                  else privacy.DPAggregator(clip_norm=1e6, noise_multiplier=0.0))
    with np.errstate(all="raise"):
        history = fedlite.simulate(small_federation(), algorithm="fedavg", num_rounds=200,
                                   lr=50.0, local_epochs=3, aggregator=aggregator)
    assert history.diverged and np.isfinite(history.loss).all()


@pytest.mark.parametrize("target,error", [("low", TypeError), (float("nan"), ValueError),
                                          (None, TypeError)])
def test_rounds_to_names_its_argument(target, error):
    history = fedlite.simulate(small_federation(), num_rounds=2, lr=0.1)
    with pytest.raises(error, match="target_loss"):
        history.rounds_to(target)
