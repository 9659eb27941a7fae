"""Tests of the classification model objects (fedlite.core.model.SoftmaxModel and
MLPClassifierModel): packing, init, loss and gradient, predictions and accuracy against direct
numpy, participant losses, counting the classes in the labels, and running in simulate."""
import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fedlite
from fedlite import reference
from fedlite.core.model import (MODELS, LinearModel, MLPClassifierModel, MLPModel, SoftmaxModel,
                                build_model, model_for_params)

D, H, C = 4, 5, 3


def classification_data(n=120, d=D, C=C, seed=0):
    """Gaussian blobs, one per class, labels as int64."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    centres = 2.0 * rng.normal(size=(C, d))
    return centres[y] + rng.normal(size=(n, d)), y


def federation(seed=0, K=4):
    X, y = classification_data(seed=seed)
    return fedlite.split(X, y, K, seed=seed)


def models():
    return [SoftmaxModel(D, C), MLPClassifierModel(D, H, C)]


def random_theta(model, seed=1):
    return np.random.default_rng(seed).normal(size=model.num_params)


@pytest.mark.parametrize("model", models(), ids=repr)
def test_pack_and_unpack_are_inverse(model):
    theta = random_theta(model)
    params = model.unpack(theta)
    assert np.array_equal(model.pack(params), theta)
    assert model_for_params(params).num_params == model.num_params
    assert type(model_for_params(params)) is type(model)


def test_num_params_and_starting_points():
    softmax, mlp = models()
    assert softmax.num_params == D * C + C and mlp.num_params == D * H + H + H * C + C
    assert np.array_equal(softmax.init(None), np.zeros(softmax.num_params))
    first, second = (mlp.init(np.random.default_rng(3)) for _ in range(2))
    assert np.array_equal(first, second) and np.abs(first).sum() > 0
    W1, b1, W2, b2 = mlp.unpack(first)
    assert not b1.any() and not b2.any() and W2.shape == (H, C)


@pytest.mark.parametrize("model", models(), ids=repr)
def test_loss_grad_is_the_public_function_flattened(model):
    X, y = classification_data()
    theta = random_theta(model)
    loss, grad = model.loss_grad(X, y, theta)
    function = (fedlite.softmax_loss_grad if model.name == "softmax"
                else fedlite.mlp_classifier_loss_grad)
    want_loss, want_grads = function(X, y, *model.unpack(theta))
    assert loss == want_loss
    assert np.array_equal(grad, np.concatenate([np.ravel(g) for g in want_grads]))


@pytest.mark.parametrize("model", models(), ids=repr)
def test_predictions_and_accuracy_match_direct_numpy(model):
    X, y = classification_data()
    theta = random_theta(model)
    if model.name == "softmax":
        W, b = model.unpack(theta)
        Z = X @ W + b
    else:
        W1, b1, W2, b2 = model.unpack(theta)
        Z = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    p = np.exp(Z - Z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert_allclose(model.probabilities(X, theta), p, rtol=1e-12, atol=1e-15)
    assert np.array_equal(model.predict(X, theta), np.argmax(Z, axis=1))
    assert model.accuracy(X, y, theta) == np.mean(np.argmax(Z, axis=1) == y)
    assert model.accuracy(X, y.astype(np.float64), theta) == model.accuracy(X, y, theta)


def test_accuracy_checks_its_arguments():
    model = SoftmaxModel(D, C)
    X, y = classification_data()
    theta = np.zeros(model.num_params)
    with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.2 \(the model has 3 "
                                         r"classes\); got y\[0\] = 3"):
        model.accuracy(X, np.where(np.arange(len(y)) == 0, 3, y), theta)
    with pytest.raises(ValueError, match="y must hold whole-number"):
        model.accuracy(X, y + 0.5, theta)
    with pytest.raises(ValueError, match="120 class labels"):
        model.accuracy(X, y[:-1], theta)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 4\)"):
        model.accuracy(X[:, :2], y, theta)
    with pytest.raises(ValueError, match=r"theta must have shape"):
        model.accuracy(X, y, theta[:-1])


@pytest.mark.parametrize("model", [LinearModel(D), MLPModel(D, H)], ids=repr)
def test_regression_models_predict_like_the_reference(model):
    X, _ = classification_data()
    theta = random_theta(model)
    function = reference.linear_predict if model.name == "linear" else reference.mlp_predict
    assert np.array_equal(model.predict(X, theta), function(X, *model.unpack(theta)))


@pytest.mark.parametrize("model", models(), ids=repr)
def test_participant_losses_are_each_participants_mean_cross_entropy(model):
    fed = federation()
    theta = random_theta(model)
    losses = model.participant_losses(fed, theta)
    oracle = (reference.softmax_loss_grad if model.name == "softmax"
              else reference.mlp_classifier_loss_grad)
    want = [oracle(*fed.participant(k), *model.unpack(theta))[0]
            for k in range(fed.num_participants)]
    assert_allclose(losses, want, rtol=1e-12)


@pytest.mark.parametrize("model", models(), ids=repr)
def test_compiled_participant_losses_equal_the_readable_path(model):
    fed = federation()
    theta = random_theta(model)
    readable = copy.copy(model)
    readable.engine_code = None  # participant by participant through the public function
    assert model.engine_code is not None
    assert_allclose(model.participant_losses(fed, theta), readable.participant_losses(fed, theta),
                    rtol=1e-13)


def test_participant_losses_refuse_labels_beyond_the_models_classes():
    fed = federation()  # labels 0..2
    with pytest.raises(ValueError, match=r"the federation's y must hold class labels 0\.\.1"):
        SoftmaxModel(D, 2).participant_losses(fed, np.zeros(SoftmaxModel(D, 2).num_params))


# ----------------------------------------------------------------------------- build_model
@pytest.mark.parametrize("name, cls", [("softmax", SoftmaxModel),
                                       ("mlp_classifier", MLPClassifierModel)])
def test_a_name_counts_the_classes_in_the_labels(name, cls):
    assert MODELS[name] is cls
    fed = federation()
    model = build_model(name, D, H, y=fed.y)
    assert type(model) is cls and model.num_classes == 3 and model.name == name
    assert model.loss_name == "cross-entropy"
    assert build_model(name, D, H, y=np.array([0, 6, 2])).num_classes == 7


@pytest.mark.parametrize("name", ["softmax", "mlp_classifier"])
@pytest.mark.parametrize("y, error, text", [
    (None, ValueError, "counts its classes in the labels y, and none were given"),
    (np.array([0.0, 1.5, 2.0]), ValueError, r"y must hold whole-number class labels.*y\[1\] = 1.5"),
    (np.array([0.0, np.nan]), ValueError, "y must contain only finite"),
    (np.array([0, -1, 2]), ValueError,
     r"y must hold class labels 0, 1, 2, \.\.\.; got y\[1\] = -1"),
    (np.array([True, False]), TypeError, "y must hold integer class labels"),
    (np.zeros(5), ValueError, "y holds only the label 0"),
    (np.array([0, 10**9]), ValueError, "too large"),
])
def test_a_name_refuses_labels_it_cannot_count(name, y, error, text):
    with pytest.raises(error, match=text):
        build_model(name, D, H, y=y)


def test_a_model_object_checks_the_labels_against_its_classes():
    fed = federation()
    assert build_model(SoftmaxModel(D, 5), D, y=fed.y).num_classes == 5  # unused classes: fine
    with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.1 \(the model has 2"):
        build_model(SoftmaxModel(D, 2), D, y=fed.y)
    assert build_model("linear", D, y=fed.y).name == "linear"  # regression ignores y


@pytest.mark.parametrize("make, text", [
    (lambda: SoftmaxModel(D, 1), "num_classes must be at least 2"),
    (lambda: SoftmaxModel(D, 2.0), "num_classes must be an integer"),
    (lambda: SoftmaxModel(0, 3), "num_features must be at least 1"),
    (lambda: MLPClassifierModel(D, 0, 3), "hidden must be at least 1"),
    (lambda: MLPClassifierModel(D, H, True), "num_classes must be an integer"),
    (lambda: SoftmaxModel(D, 10**9), "num_classes is too large"),
])
def test_constructors_check_their_arguments(make, text):
    with pytest.raises((TypeError, ValueError), match=text):
        make()


@pytest.mark.parametrize("model", models(), ids=repr)
def test_pack_refuses_wrong_pieces_naming_them(model):
    pieces = list(model.unpack(random_theta(model)))
    pieces[-2] = np.zeros(3)  # W (softmax) or W2 (MLP classifier): wrong shape
    with pytest.raises((TypeError, ValueError), match="^W2? must be 2-D"):
        model.pack(tuple(pieces))


# ----------------------------------------------------------------------------- in simulate
@pytest.mark.parametrize("algorithm", ["fedsgd", "fedavg", "fedprox", "scaffold"])
@pytest.mark.parametrize("model", models(), ids=repr)
def test_simulate_trains_a_classifier_object(model, algorithm):
    fed = federation()
    extra = {} if algorithm == "fedsgd" else dict(local_epochs=2, batch_size=8)
    history = fedlite.simulate(fed, model=model, algorithm=algorithm, lr=0.2,
                               num_rounds=60 if algorithm == "fedsgd" else 15,
                               seed=0, mu=0.1 if algorithm == "fedprox" else 0.0, **extra)
    assert history.loss[-1] < history.loss[0]
    X, y = classification_data()
    assert model.accuracy(X, y, history.theta) > 0.8


@pytest.mark.parametrize("name", ["softmax", "mlp_classifier"])
def test_simulate_by_name_counts_the_classes_and_runs_compiled(name):
    fed = federation()
    history = fedlite.simulate(fed, model=name, algorithm="fedavg", num_rounds=15, lr=0.2,
                               local_epochs=2, batch_size=8, hidden=H, seed=0)
    assert history.model.name == name and history.model.num_classes == 3
    assert history.model.engine_code is not None
    assert history.loss[-1] < history.loss[0]
    X, y = classification_data()
    assert history.model.accuracy(X, y, history.theta) > 0.8
