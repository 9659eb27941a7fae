"""The engine's parts: every algorithm's compiled half equals its readable half for every model,
server optimisers against their formulas, resuming a run, the typed settings, model objects."""
import numpy as np
import pytest

import fedlite
from fedlite import federated
from fedlite.algorithms import ALGORITHMS, SERVER_OPTIMIZERS, make_server_optimizer
from fedlite.core.config import RunConfig, RunSeeds
from fedlite.core.model import MODELS, LinearModel, MLPModel, build_model, model_for_params

LOCAL = [name for name, algo in ALGORITHMS.items() if algo.reports == "weights"]


def federation(K=5, n_per=12, d=3, seed=0, spread=1.0, classes=None):
    """Concept-shift data; with `classes`, y cut at its quantiles into labels 0..classes-1."""
    fed, _, _ = fedlite.make_concept_shift(K, n_per, d, spread=spread, seed=seed)
    if classes is None:
        return fed
    labels = np.digitize(fed.y, np.quantile(fed.y, np.linspace(0, 1, classes + 1)[1:-1]))
    return fedlite.Federation(fed.X, labels.astype(np.float64), fed.offsets, fed.index)


def data_for(model):
    """A federation the model can learn: labels for classifiers, numbers otherwise."""
    return federation(classes=3 if hasattr(MODELS[model], "from_data") else None)


def settings(algorithm):
    if algorithm == "fedsgd":
        return dict(algorithm=algorithm, lr=0.05)
    mu = 0.3 if algorithm == "fedprox" else 0.0
    return dict(algorithm=algorithm, lr=0.05, local_epochs=2, batch_size=5, mu=mu)


def readable_run(fed, history, model, hidden, seed, config):
    """Replay `history`'s rounds with fedlite.federated's Participant and Server objects."""
    participants = federated.make_participants(fed, model=model, hidden=hidden, seed=seed)
    model_obj = participants[0].model
    theta = model_obj.init(np.random.default_rng(RunSeeds.from_seed(seed).init))
    server = federated.Server({**config, **history.config.as_dict()}, fed.num_participants,
                              theta.size, total_examples=fed.num_samples)
    for r, selected in enumerate(history.selected, start=1):
        round_config = {**history.config.as_dict(), "round": r}
        theta = federated.run_round(participants, theta, round_config, selected, server)
        losses = [p.evaluate(theta) for p in participants]
        np.testing.assert_allclose(history.participant_loss[r], losses, rtol=1e-12, atol=1e-14)
    return theta


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_the_compiled_engine_equals_the_readable_halves(model, algorithm):
    fed = data_for(model)
    config = settings(algorithm)
    history = fedlite.simulate(fed, model=model, hidden=3, num_rounds=4, participation=0.6,
                               seed=2, **config)
    theta = readable_run(fed, history, model, 3, 2, config)
    np.testing.assert_allclose(history.theta, theta, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("optimizer", ["momentum", "adam", "yogi", "adagrad"])
@pytest.mark.parametrize("algorithm", LOCAL)
def test_server_optimisers_equal_the_readable_server(optimizer, algorithm):
    fed = federation()
    config = {**settings(algorithm), "server_optimizer": optimizer}
    history = fedlite.simulate(fed, model="linear", num_rounds=4, participation=0.6, seed=1,
                               **config)
    theta = readable_run(fed, history, "linear", 10, 1, config)
    np.testing.assert_allclose(history.theta, theta, rtol=1e-12, atol=1e-13)


def test_server_sgd_with_lr_one_is_plain_fedavg_bit_for_bit():
    fed = federation()
    plain = fedlite.simulate(fed, algorithm="fedavg", num_rounds=5, lr=0.05, batch_size=4)
    sgd = fedlite.simulate(fed, algorithm="fedavg", num_rounds=5, lr=0.05, batch_size=4,
                           server_optimizer="sgd", server_lr=1.0)
    assert np.array_equal(plain.theta, sgd.theta) and np.array_equal(plain.loss, sgd.loss)


def by_hand(name, theta, means, server_lr, b1=0.9, b2=0.99, tau=1e-3, beta=0.9):
    """The optimisers of Reddi et al. (2021), Algorithm 2, one coordinate at a time."""
    theta = list(theta)
    P = len(theta)
    m, v = [0.0] * P, [tau * tau] * P
    for mean in means:
        for p in range(P):
            delta = mean[p] - theta[p]
            if name == "momentum":
                m[p] = beta * m[p] - delta
                theta[p] -= server_lr * m[p]
                continue
            m[p] = b1 * m[p] + (1 - b1) * delta
            if name == "adagrad":
                v[p] = v[p] + delta ** 2
            elif name == "adam":
                v[p] = b2 * v[p] + (1 - b2) * delta ** 2
            else:
                v[p] = v[p] - (1 - b2) * delta ** 2 * np.sign(v[p] - delta ** 2)
            theta[p] += server_lr * m[p] / (np.sqrt(v[p]) + tau)
    return np.array(theta)


@pytest.mark.parametrize("name", ["momentum", "adam", "yogi", "adagrad"])
def test_each_optimiser_follows_the_paper(name, rng):
    theta0 = rng.normal(size=6)
    means = [theta0 + rng.normal(scale=0.1, size=6) * (t + 1) for t in range(5)]
    optimizer = SERVER_OPTIMIZERS[name](0.3) if name != "momentum" else \
        SERVER_OPTIMIZERS[name](0.3, 0.9)
    theta, state = theta0.copy(), optimizer.init(6)
    for mean in means:
        theta, state = optimizer.step(theta, mean, state)
    np.testing.assert_allclose(theta, by_hand(name, theta0, means, 0.3), rtol=1e-12)


def test_an_adaptive_server_optimiser_helps_on_a_slow_problem():
    fed = federation(K=10, n_per=20, spread=0.0, seed=3)
    kwargs = dict(algorithm="fedavg", num_rounds=40, lr=0.005, local_epochs=1)
    plain = fedlite.simulate(fed, **kwargs)
    adam = fedlite.simulate(fed, server_optimizer="adam", server_lr=0.3, **kwargs)
    assert adam.loss[-1] < plain.loss[-1]


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_run_resumed_round_by_round_equals_one_long_run(algorithm, optimizer):
    if algorithm == "fedsgd" and optimizer != "sgd":
        pytest.skip("FedSGD has no server optimiser")
    fed = federation()
    config = settings(algorithm)
    if optimizer != "sgd":
        config["server_optimizer"] = optimizer
    kwargs = dict(model="mlp", hidden=3, participation=0.6, seed=4, **config)
    long = fedlite.simulate(fed, num_rounds=5, **kwargs)
    step = fedlite.simulate(fed, num_rounds=2, **kwargs)
    for _ in range(3):
        step = fedlite.simulate(fed, num_rounds=1, resume=step, **kwargs)
    for field in ("loss", "participant_loss", "selected", "bytes_up", "bytes_down", "theta"):
        assert np.array_equal(getattr(long, field), getattr(step, field)), field
    assert step.state.round == 5


def test_resume_refuses_a_different_run():
    fed = federation()
    first = fedlite.simulate(fed, algorithm="fedavg", num_rounds=2, lr=0.05)
    with pytest.raises(ValueError, match="algorithm"):
        fedlite.simulate(fed, algorithm="fedprox", mu=0.1, num_rounds=1, lr=0.05, resume=first)
    with pytest.raises(ValueError, match="init or resume"):
        fedlite.simulate(fed, algorithm="fedavg", num_rounds=1, lr=0.05, resume=first,
                         init=first.theta)
    with pytest.raises(TypeError, match="resume"):
        fedlite.simulate(fed, num_rounds=1, lr=0.05, resume=first.theta)


@pytest.mark.parametrize("kwargs,match", [
    (dict(algorithm="fedsgd", server_optimizer="adam"), "server_optimizer"),
    (dict(algorithm="fedsgd", server_lr=0.5), "server_lr"),
    (dict(algorithm="fedavg", server_optimizer="nesterov"), "server_optimizer"),
    (dict(algorithm="fedavg", server_lr=-1.0), "server_lr"),
    (dict(algorithm="fedavg", server_lr=float("nan")), "server_lr"),
    (dict(algorithm="fedavg", server_momentum=1.0), "server_momentum"),
    (dict(algorithm="fedavg", beta1=-0.1), "beta1"),
    (dict(algorithm="fedavg", beta2=1.5), "beta2"),
    (dict(algorithm="fedavg", tau=0.0), "tau"),
    (dict(algorithm="sgd"), "algorithm"),
])
def test_bad_engine_settings_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fedlite.simulate(federation(), num_rounds=1, lr=0.1, **kwargs)


def test_the_settings_are_one_frozen_record():
    history = fedlite.simulate(federation(), algorithm="fedavg", num_rounds=1, lr=0.1)
    assert isinstance(history.config, RunConfig)
    assert history.config["lr"] == history.config.lr == 0.1
    with pytest.raises(Exception):
        history.config.lr = 1.0
    with pytest.raises(KeyError):
        history.config["no such setting"]


@pytest.mark.parametrize("model_class,hidden", [(LinearModel, None), (MLPModel, 4)])
def test_a_model_object_packs_inits_and_differentiates(model_class, hidden, rng):
    model = model_class(3, hidden) if hidden else model_class(3)
    theta = model.init(np.random.default_rng(0))
    assert theta.shape == (model.num_params,)
    assert np.array_equal(model.pack(model.unpack(theta)), theta)
    assert model_for_params(model.unpack(theta)).num_params == model.num_params
    X, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    theta = theta + rng.normal(scale=0.1, size=theta.size)
    loss, grad = model.loss_grad(X, y, theta)
    eps = 1e-6
    for p in range(theta.size):
        e = np.zeros(theta.size)
        e[p] = eps
        numeric = (model.loss_grad(X, y, theta + e)[0] - model.loss_grad(X, y, theta - e)[0]) / (2 * eps)
        assert abs(numeric - grad[p]) < 1e-6 * max(1, abs(grad[p]))


@pytest.mark.parametrize("bad,error", [
    ("mlp2", ValueError), (3, TypeError), (object(), TypeError)])
def test_an_unknown_model_is_refused(bad, error):
    with pytest.raises(error, match="model"):
        fedlite.simulate(federation(), model=bad, num_rounds=1, lr=0.1)


def test_make_server_optimizer_reads_the_config():
    config = RunConfig.build(model_name="linear", num_features=2, smallest_participant=5,
                             algorithm="fedavg", num_rounds=1, lr=0.1, local_epochs=1,
                             batch_size=None, mu=0.0, participation=1.0, hidden=0, seed=0,
                             server_optimizer="yogi", server_lr=None, server_momentum=0.9,
                             beta1=0.8, beta2=0.95, tau=1e-2)
    optimizer = make_server_optimizer(config)
    assert (optimizer.name, optimizer.server_lr, optimizer.beta1, optimizer.tau) == \
        ("yogi", 0.1, 0.8, 1e-2)
