"""fedlite.lora: adapter gradients against finite differences, the averaging error of B and A
(and its exact absence when A is frozen), byte counts, determinism, and that fine-tuning works."""
import numpy as np
import pytest

import fedlite
from fedlite import lora, reference
from fedlite.compression import message_bytes as compression_bytes
from fedlite.parameters import pack

D, H = 4, 12   # small enough for NUMBA_DISABLE_JIT=1


@pytest.fixture(scope="module")
def tasks():
    """A small base model pre-trained on task A, and task B split among 4 participants."""
    X_a, y_a, X_b, y_b = lora.make_shifted_tasks(160, D, teacher_hidden=4, shift=2.0, seed=0)
    base, losses = lora.pretrain(X_a, y_a, hidden=H, num_epochs=15, lr=0.05, batch_size=16)
    return base, losses, fedlite.split(X_b, y_b, 4, seed=0)


def random_adapter(rng, r=2):
    return rng.normal(size=(H, r)), rng.normal(size=(r, D))


# ----------------------------------------------------------------------------- the adapter
@pytest.mark.parametrize("r", [1, 3])
def test_adapter_gradients_match_finite_differences(r):
    rng = np.random.default_rng(r)
    X, y = rng.normal(size=(9, D)), rng.normal(size=9)
    base = (rng.normal(size=(D, H)), rng.normal(size=H), rng.normal(size=H), 0.3)
    B, A = 0.3 * rng.normal(size=(H, r)), rng.normal(size=(r, D))
    loss, grad_B, grad_A = lora.lora_loss_grad(X, y, base, B, A)
    assert grad_B.shape == B.shape and grad_A.shape == A.shape
    assert loss == pytest.approx(reference.mlp_loss_grad(X, y, *lora.merge(base, B, A))[0])
    eps = 1e-6
    for matrix, grad, which in ((B, grad_B, "B"), (A, grad_A, "A")):
        numeric = np.zeros_like(matrix)
        for index in np.ndindex(matrix.shape):
            step = np.zeros_like(matrix)
            step[index] = eps
            f = [lora.lora_loss_grad(X, y, base, *((B + s, A) if which == "B" else (B, A + s)))[0]
                 for s in (step, -step)]
            numeric[index] = (f[0] - f[1]) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_adapter_gradients_are_the_chain_rule_through_the_full_gradient():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, D)), rng.normal(size=7)
    base = (rng.normal(size=(D, H)), rng.normal(size=H), rng.normal(size=H), 0.0)
    B, A = random_adapter(rng)
    G = reference.mlp_loss_grad(X, y, *lora.merge(base, B, A))[1][0]   # ∂L/∂W1, (d, h)
    _, grad_B, grad_A = lora.lora_loss_grad(X, y, base, B, A)
    np.testing.assert_allclose(grad_B, G.T @ A.T, rtol=1e-10)
    np.testing.assert_allclose(grad_A, B.T @ G.T, rtol=1e-10)


def test_a_zero_B_leaves_the_base_model_unchanged():
    rng = np.random.default_rng(0)
    base = (rng.normal(size=(D, H)), rng.normal(size=H), rng.normal(size=H), 0.5)
    merged = lora.merge(base, np.zeros((H, 2)), rng.normal(size=(2, D)))
    np.testing.assert_array_equal(pack(merged), pack(base))


# ----------------------------------------------------------------------------- aggregation
def test_averaging_B_and_A_separately_is_not_averaging_B_A():
    rng = np.random.default_rng(0)
    Bs, As = zip(*(random_adapter(rng) for _ in range(5)))
    n = np.array([10.0, 20.0, 5.0, 40.0, 25.0])
    assert lora.aggregation_error(Bs, As, n) > 0.1
    # the identity behind it: mean(B) mean(A) - mean(B A) = -Σ p_k (B_k - B̄)(A_k - Ā)
    p = n / n.sum()
    B_bar, A_bar = sum(pk * B for pk, B in zip(p, Bs)), sum(pk * A for pk, A in zip(p, As))
    gap = B_bar @ A_bar - sum(pk * B @ A for pk, B, A in zip(p, Bs, As))
    covariance = sum(pk * (B - B_bar) @ (A - A_bar) for pk, B, A in zip(p, Bs, As))
    np.testing.assert_allclose(gap, -covariance, atol=1e-12)


def test_with_a_shared_A_averaging_is_exact():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(2, D))
    Bs = [rng.normal(size=(H, 2)) for _ in range(5)]
    assert lora.aggregation_error(Bs, [A] * 5, np.arange(1.0, 6.0)) < 1e-14


def test_frozen_A_aggregates_exactly_in_every_round_and_trained_A_does_not(tasks):
    base, _, fed = tasks
    kwargs = dict(rank=2, num_rounds=4, lr=0.5, local_epochs=2, batch_size=10, seed=0)
    frozen = lora.lora_simulate(fed, base, freeze_A=True, **kwargs)
    trained = lora.lora_simulate(fed, base, freeze_A=False, **kwargs)
    assert frozen.aggregation_error.shape == trained.aggregation_error.shape == (4,)
    assert np.all(frozen.aggregation_error < 1e-13)
    assert np.all(trained.aggregation_error > 1e-6)
    seed_A = np.random.SeedSequence(0).spawn(4)[0]   # A is drawn from the seed, never changed
    np.testing.assert_array_equal(
        frozen.A, np.random.default_rng(seed_A).normal(0.0, np.sqrt(1 / D), size=(2, D)))
    assert not np.array_equal(trained.A, frozen.A)


# ----------------------------------------------------------------------------- simulation
@pytest.mark.parametrize("freeze_A", [False, True])
def test_bytes_count_the_adapter_arrays_actually_sent(tasks, freeze_A):
    base, _, fed = tasks
    history = lora.lora_simulate(fed, base, rank=3, num_rounds=2, lr=0.1, freeze_A=freeze_A)
    message = history.B.nbytes + (0 if freeze_A else history.A.nbytes)
    assert message == lora.adapter_bytes(D, H, 3, freeze_A) == 8 * 3 * (H if freeze_A else H + D)
    assert list(history.bytes_up) == list(history.bytes_down) == [4 * message] * 2
    assert history.bytes_total[-1] == 2 * 2 * 4 * message
    assert lora.model_bytes(D, H) == 8 * (D * H + 2 * H + 1)


def test_same_seed_same_history_bit_for_bit(tasks):
    base, _, fed = tasks
    kwargs = dict(rank=2, num_rounds=3, lr=0.3, local_epochs=2, batch_size=10, seed=4)
    a, b = lora.lora_simulate(fed, base, **kwargs), lora.lora_simulate(fed, base, **kwargs)
    for field in ("loss", "participant_loss", "theta", "B", "A", "aggregation_error"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    c = lora.lora_simulate(fed, base, **{**kwargs, "seed": 5})
    assert not np.array_equal(a.theta, c.theta)


def test_pretraining_learns_task_A_and_fine_tuning_learns_task_B(tasks):
    base, losses, fed = tasks
    assert losses[-1] < 0.3 * losses[0]
    history = lora.lora_simulate(fed, base, rank=2, num_rounds=10, lr=1.0, local_epochs=2,
                                 batch_size=10)
    assert not history.diverged and history.num_rounds == 10
    assert history.loss[-1] < 0.7 * history.loss[0]
    assert history.selected.shape == (10, 4)
    np.testing.assert_array_equal(history.theta, pack(lora.merge(base, history.B, history.A)))
    W1, b1, W2, b2 = history.params
    loss = reference.mlp_loss_grad(fed.X, fed.y, W1, b1, W2, b2)[0]
    assert loss == pytest.approx(history.loss[-1], rel=1e-10)
    assert "rank 2, A trained" in repr(history)


def test_divergence_is_reported_and_the_history_stays_finite(tasks):
    base, _, fed = tasks
    with np.errstate(all="raise"):
        history = lora.lora_simulate(fed, base, rank=2, num_rounds=30, lr=1e4)
    assert history.diverged and history.num_rounds == history.diverged_at - 1
    assert np.isfinite(history.loss).all() and np.isfinite(history.theta).all()


def test_shifted_tasks_are_seeded_and_shift_changes_only_task_B():
    a = lora.make_shifted_tasks(20, 5, seed=3)
    b = lora.make_shifted_tasks(20, 5, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    unshifted = lora.make_shifted_tasks(20, 5, shift=0.0, seed=3)
    np.testing.assert_array_equal(unshifted[1], a[1])      # task A does not depend on shift
    assert not np.array_equal(unshifted[3], a[3])


@pytest.mark.parametrize("kwargs,match", [
    (dict(rank=0), "rank"), (dict(rank=D + 1), "rank"), (dict(lr=0.0), "lr"),
    (dict(num_rounds=0), "num_rounds"), (dict(batch_size=1000), "batch_size"),
    (dict(freeze_A="yes"), "freeze_A"), (dict(local_epochs=0), "local_epochs"),
])
def test_bad_arguments_raise_errors_naming_them(tasks, kwargs, match):
    base, _, fed = tasks
    args = {**dict(rank=2, num_rounds=1, lr=0.1), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        lora.lora_simulate(fed, base, **args)


def test_a_base_model_of_the_wrong_shape_is_refused(tasks):
    base, _, fed = tasks
    with pytest.raises(TypeError, match="base_params"):
        lora.lora_simulate(fed, base[:3], rank=1, num_rounds=1, lr=0.1)
    with pytest.raises(ValueError, match="W1"):
        lora.lora_simulate(fed, (np.ones((D + 1, H)),) + base[1:], rank=1, num_rounds=1, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        lora.pretrain(*lora.make_shifted_tasks(40, D)[:2], hidden=H, num_epochs=3, lr=1e6)


def test_communication_runs_reuse_the_callers_cache(tasks):
    base, _, fed = tasks
    settings = dict(num_rounds=3, lr=0.05, lora_lr=0.5, batch_size=10, fraction=0.1, bits=4,
                    rank=2)
    cache = {}
    runs = lora.communication_runs(fed, base, cache=cache, **settings)
    assert list(runs) == ["FedAvg", "FedAvg + top-k", "FedAvg + quantized", "LoRA"]
    P = fedlite.parameters.num_params("mlp", D, H)
    assert runs["FedAvg"].bytes_up[0] == 4 * 8 * P
    assert runs["FedAvg + top-k"].bytes_up[0] == 4 * compression_bytes(P, k=-(-P // 10))
    assert runs["FedAvg + quantized"].bytes_up[0] == 4 * compression_bytes(P, bits=4)
    assert runs["LoRA"].bytes_up[0] == 4 * lora.adapter_bytes(D, H, 2)
    again = lora.communication_runs(fed, base, cache=cache, **{**settings, "bits": 2})
    assert len(cache) == 5
    assert all(again[name] is runs[name] for name in ("FedAvg", "FedAvg + top-k", "LoRA"))
    assert again["FedAvg + quantized"].bytes_up[0] == 4 * compression_bytes(P, bits=2)
    fresh = lora.communication_runs(fed, base, **settings)
    for name in runs:
        np.testing.assert_array_equal(fresh[name].loss, runs[name].loss)


def test_the_compression_explorer_reruns_only_the_moved_slider(tasks):
    pytest.importorskip("ipywidgets")
    from fedlite import widgets
    base, _, fed = tasks
    explorer = widgets.compression_explorer(fed, base, num_rounds=3, lr=0.05, lora_lr=0.5,
                                            batch_size=10, fraction=0.1, bits=4, rank=2)
    assert set(explorer.result) == {"FedAvg", "FedAvg + top-k", "FedAvg + quantized", "LoRA"}
    assert len(explorer.lines["LoRA"].get_xdata()) == 3 and explorer.png
    before = explorer.png
    explorer.controls["bits"].value = 2
    assert explorer.png != before and "2 bits" in explorer.lines["FedAvg + quantized"].get_label()
    assert explorer.result["LoRA"] is not None and "MB up" in explorer.status.value
