"""simulate(test=...) and classifiers' accuracy: recorded before training and after every
round, equal to a direct numpy computation."""
import numpy as np
import pytest

import fedlite
from fedlite.core.model import SoftmaxModel


def labelled(K=4, n_per=30, d=3, classes=3, seed=0):
    fed, _, _ = fedlite.make_concept_shift(K, n_per, d, spread=0.3, seed=seed)
    labels = np.digitize(fed.y, np.quantile(fed.y, np.linspace(0, 1, classes + 1)[1:-1]))
    return fedlite.Federation(fed.X, labels.astype(np.float64), fed.offsets, fed.index)


def direct_accuracy(model, X, y, theta):
    W, b = model.unpack(theta)
    return float(np.mean(np.argmax(X @ W + b, axis=1) == y))


def test_accuracy_and_test_metrics_match_a_direct_computation():
    fed, test_fed = labelled(seed=0), labelled(seed=1)
    history = fedlite.simulate(fed, model="softmax", algorithm="fedavg", num_rounds=4, lr=0.5,
                               test=(test_fed.X, test_fed.y.astype(np.int64)))
    R = history.num_rounds
    for name in ("accuracy", "test_loss", "test_accuracy"):
        assert getattr(history, name).shape == (R + 1,), name
    assert history.participant_accuracy.shape == (R + 1, fed.num_participants)
    assert history.participant_test_accuracy is None
    model = history.model
    assert history.accuracy[-1] == direct_accuracy(model, fed.X, fed.y, history.theta)
    assert history.test_accuracy[-1] == direct_accuracy(model, test_fed.X, test_fed.y,
                                                        history.theta)
    assert history.test_accuracy[0] == direct_accuracy(model, test_fed.X, test_fed.y,
                                                       np.zeros(model.num_params))
    np.testing.assert_allclose(history.test_loss[-1],
                               model.loss_grad(test_fed.X, test_fed.y, history.theta)[0])
    for k in range(fed.num_participants):
        X_k, y_k = fed.participant(k)
        assert history.participant_accuracy[-1, k] == direct_accuracy(model, X_k, y_k,
                                                                      history.theta)


def test_a_federation_of_held_out_shares_gives_each_participants_test_accuracy():
    fed, held_out = labelled(seed=0), labelled(seed=2)
    history = fedlite.simulate(fed, model="softmax", algorithm="fedavg", num_rounds=3, lr=0.5,
                               test=held_out)
    for k in range(fed.num_participants):
        X_k, y_k = held_out.participant(k)
        assert history.participant_test_accuracy[-1, k] == direct_accuracy(
            history.model, X_k, y_k, history.theta)


def test_regression_keeps_its_losses_and_gets_a_test_loss():
    fed = fedlite.split(*fedlite.make_linear_data(80, 3, seed=0)[:2], 4)
    X_t, y_t, _, _ = fedlite.make_linear_data(40, 3, seed=1)
    history = fedlite.simulate(fed, num_rounds=3, lr=0.1, test=(X_t, y_t))
    assert history.accuracy is None and history.test_accuracy is None
    w, b = history.params
    np.testing.assert_allclose(history.test_loss[-1], np.mean((X_t @ w + b - y_t) ** 2) / 2,
                               rtol=1e-12)


def test_a_resumed_run_continues_its_evaluation():
    fed, test_fed = labelled(seed=0), labelled(seed=1)
    kwargs = dict(model="softmax", algorithm="fedavg", lr=0.5, test=test_fed)
    long = fedlite.simulate(fed, num_rounds=4, **kwargs)
    step = fedlite.simulate(fed, num_rounds=1, **kwargs)
    for _ in range(3):
        step = fedlite.simulate(fed, num_rounds=1, resume=step, **kwargs)
    for name in ("accuracy", "participant_accuracy", "test_loss", "test_accuracy",
                 "participant_test_accuracy"):
        assert np.array_equal(getattr(long, name), getattr(step, name)), name


@pytest.mark.parametrize("test,error,match", [
    ("data", TypeError, "test"),
    ((np.zeros((5, 2)), np.zeros(5)), ValueError, "X_test"),
    ((np.zeros((5, 3)), np.zeros(4)), ValueError, "y_test"),
    ((np.zeros((5, 3)), np.full(5, 0.5)), ValueError, "y_test"),
    ((np.zeros((5, 3)), np.full(5, 7.0)), ValueError, "y_test"),
])
def test_bad_test_data_is_refused_naming_it(test, error, match):
    with pytest.raises(error, match=match):
        fedlite.simulate(labelled(), model="softmax", algorithm="fedavg", num_rounds=1, lr=0.5,
                         test=test)


def test_held_out_shares_must_match_the_participants():
    with pytest.raises(ValueError, match="held-out share per participant"):
        fedlite.simulate(labelled(K=4), model="softmax", algorithm="fedavg", num_rounds=1,
                         lr=0.5, test=labelled(K=3))


def test_a_classifier_object_can_be_given_directly():
    fed = labelled()
    history = fedlite.simulate(fed, model=SoftmaxModel(3, 3), algorithm="fedavg",
                               num_rounds=2, lr=0.5)
    assert history.accuracy.shape == (3,)


def test_resume_needs_the_same_kind_of_evaluation():
    fed, test_fed = labelled(seed=0), labelled(seed=1)
    kwargs = dict(model="softmax", algorithm="fedavg", lr=0.5, num_rounds=1)
    with_test = fedlite.simulate(fed, test=test_fed, **kwargs)
    without = fedlite.simulate(fed, **kwargs)
    with pytest.raises(ValueError, match="test="):
        fedlite.simulate(fed, resume=with_test, **kwargs)
    with pytest.raises(ValueError, match="test="):
        fedlite.simulate(fed, resume=without, test=test_fed, **kwargs)
