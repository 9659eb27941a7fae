"""Federated fine-tuning of a large model by training and sending only a low-rank adapter (LoRA).

The "large" model is fedlite's MLP y_hat = relu(X W1 + b1) W2 + b2 made wide, e.g. d = 64
inputs and h = 384 hidden units: 25 345 parameters, 97% of them in W1 (d, h).  It is
pre-trained centrally on task A (`pretrain`), then fine-tuned by K participants on a shifted
task B (`make_shifted_tasks`).  Only an adapter on the first layer is trained and sent
(LoRA, Hu et al. 2022).  In the paper's orientation the layer is W = W1ᵀ (h, d), mapping an
input x (d) to pre-activations W x (h); fedlite multiplies rows, X W1, hence the transpose:

    W' = W + B A,   i.e.   W1' = W1 + (B A)ᵀ,     B (h, r),  A (r, d),  r = rank << min(d, h)

A reads the input (x -> A x, r numbers), B writes the hidden layer.  A message holds r (h + d)
values instead of the h d of W1.  As in LoRA, B starts at 0 (the fine-tuned model starts as
the base model) and A ~ N(0, 1/d), drawn from the seed.  The chain rule through W' gives,
with G_W = ∂L/∂W = (∂L/∂W1')ᵀ from the MLP's backpropagation,

    ∂L/∂B = G_W Aᵀ  (h, r),        ∂L/∂A = Bᵀ G_W  (r, d).

**Averaging adapters is not averaging updates.**  The server wants the mean adapter
mean_k(B_k A_k), but averaging B and A separately gives mean(B) mean(A), and

    mean(B) mean(A) - mean(B A) = -Σ_k p_k (B_k - B̄)(A_k - Ā)   (p_k = n_k / N)

which is not 0 once the participants' A_k differ (`aggregation_error` measures it).  Freezing A
(FFA-LoRA, Sun et al. 2024) removes the problem: every participant builds the same A from the
shared seed (it is never sent), trains only B, and mean(B) A = mean(B A) by linearity, exactly
up to rounding.  Messages shrink to r h values; the price is that the layer can only read the
input along the r fixed directions of A's rows.

The loop over participants is plain Python (a few participants, classroom scale); each local
gradient is one call of the compiled MLP kernel.  `lora_simulate` returns a `LoraHistory`, a
`fedlite.History` with the adapter and the aggregation error of every round added, so the
course's plotting functions accept it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import compression, engine, kernels
from .parameters import BYTES_PER_VALUE, init_params, num_params, pack, unpack
from .simulation import DIVERGENCE_FACTOR, FULL_BATCH, History, participant_keys, simulate
from .validation import as_data, as_float, as_float_array, as_int


# ----------------------------------------------------------------------------- the two tasks
def make_shifted_tasks(num_samples, num_features=64, *, teacher_hidden=8, shift_rank=2,
                       shift=1.0, noise=0.05, seed=0):
    """Two regression tasks from one random teacher network: returns (X_a, y_a, X_b, y_b).

    The teacher f(x) = relu(x W1 + b1) W2 + b2 is drawn as in `fedlite.make_teacher_data`.
    Task A:  X_a ~ N(0, 1) (n, d),  y_a = f(X_a) + noise · N(0, 1).
    Task B:  X_b ~ N(0, 1) (n, d),  y_b = f(X_b (I + M)) + noise · N(0, 1): the same teacher
    seen through inputs mixed by M = shift · U Vᵀ, U and V (d, shift_rank) with orthonormal
    columns, V spanning the input weights of the teacher's first shift_rank hidden units (so
    that the mixing changes what the teacher computes).  A model relu(x W1 + b1) W2 + b2 that
    fits task A fits task B with W1 + M W1, a change of rank <= shift_rank: a LoRA adapter of
    that rank can represent it (B A = (M W1)ᵀ needs A's rows to span the columns of U).
    """
    n = as_int(num_samples, "num_samples", minimum=1)
    d = as_int(num_features, "num_features", minimum=1)
    h = as_int(teacher_hidden, "teacher_hidden", minimum=1)
    q = as_int(shift_rank, "shift_rank", minimum=0, maximum=min(d, h))
    shift, noise = as_float(shift, "shift"), as_float(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    W1 = rng.standard_normal((d, h)) / np.sqrt(d)
    b1 = rng.standard_normal(h)
    W2 = rng.standard_normal(h) / np.sqrt(h)
    b2 = float(rng.standard_normal())
    U = np.linalg.qr(rng.standard_normal((d, q)))[0]       # the directions mixed in ...
    V = np.linalg.qr(W1[:, :q])[0]                          # ... land where the teacher reads
    M = shift * U @ V.T

    def teacher(X):
        return np.maximum(X @ W1 + b1, 0.0) @ W2 + b2

    X_a = rng.standard_normal((n, d))
    y_a = teacher(X_a) + noise * rng.standard_normal(n)
    X_b = rng.standard_normal((n, d))
    y_b = teacher(X_b + X_b @ M) + noise * rng.standard_normal(n)
    return X_a, y_a, X_b, y_b


# ----------------------------------------------------------------------------- pre-training
def pretrain(X, y, *, hidden, num_epochs, lr, batch_size=32, seed=0):
    """Train the MLP centrally by minibatch SGD: returns (params (W1, b1, W2, b2), losses).

    Starts from fedlite's seeded He initialisation (`parameters.init_params`); each epoch visits
    the rows in a fresh random order.  losses (num_epochs + 1,): the loss on all of X after
    each epoch, [0] before training.
    """
    X, y = as_data(X, y)
    h = as_int(hidden, "hidden", minimum=1)
    num_epochs = as_int(num_epochs, "num_epochs", minimum=1)
    lr = _positive(lr, "lr")
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    d = X.shape[1]
    W1, b1, W2, b2 = unpack(init_params("mlp", d, h, rng), "mlp", d, h)
    losses = [_mlp_loss_grad(X, y, W1, b1, W2, b2)[0]]
    for epoch in range(num_epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            rows = order[start:start + batch_size]
            with np.errstate(all="ignore"):
                _, gW1, gb1, gW2, gb2 = _mlp_loss_grad(X[rows], y[rows], W1, b1, W2, b2)
                W1, b1, W2, b2 = W1 - lr * gW1, b1 - lr * gb1, W2 - lr * gW2, b2 - lr * gb2
        with np.errstate(all="ignore"):
            losses.append(_mlp_loss_grad(X, y, W1, b1, W2, b2)[0])
        if not np.isfinite(losses[-1]) or losses[-1] > DIVERGENCE_FACTOR * losses[0]:
            raise ValueError(f"pre-training diverged in epoch {epoch + 1}: lr = {lr:g} is too "
                             f"large for this model; try a smaller lr")
    return (W1, b1, W2, float(b2)), np.array(losses)


# ----------------------------------------------------------------------------- the adapter
def lora_loss_grad(X, y, base_params, B, A):
    """Loss and adapter gradients of the MLP with W1 + (B A)ᵀ: returns (loss, grad_B, grad_A).

    base_params (W1 (d, h), b1, W2, b2) stay fixed; B (h, r), A (r, d).
    grad_B = G_W Aᵀ, grad_A = Bᵀ G_W, where G_W = (∂L/∂W1)ᵀ at W1 + (B A)ᵀ.
    """
    X, y = as_data(X, y)
    W1, b1, W2, b2 = _check_base(base_params, X.shape[1])
    B, A = _check_adapter(B, A, *W1.shape)
    loss, G, _, _, _ = _mlp_loss_grad(X, y, W1 + (B @ A).T, b1, W2, b2)
    G_W = G.T
    return loss, G_W @ A.T, B.T @ G_W


def merge(base_params, B, A):
    """The fine-tuned model as ordinary MLP parameters: (W1 + (B A)ᵀ, b1, W2, b2)."""
    W1, b1, W2, b2 = base_params
    return W1 + (B @ A).T, b1, W2, b2


def adapter_bytes(num_features, hidden, rank, freeze_A=False):
    """Bytes of one adapter message: 8 r (h + d) for (B, A), or 8 r h for B alone (A frozen)."""
    d = as_int(num_features, "num_features", minimum=1)
    h = as_int(hidden, "hidden", minimum=1)
    r = as_int(rank, "rank", minimum=1)
    return BYTES_PER_VALUE * r * (h if freeze_A else h + d)


def model_bytes(num_features, hidden):
    """Bytes of the whole MLP sent once as float64: 8 (d h + 2 h + 1)."""
    return BYTES_PER_VALUE * num_params("mlp", num_features, hidden)


def aggregation_error(Bs, As, num_examples):
    """How far averaging B and A separately is from averaging the adapters B_k A_k.

    Returns ‖mean(B) mean(A) - mean(B A)‖_F / ‖mean(B A)‖_F (0 if both are 0), every mean
    weighted by n_k.  Bs: K arrays (h, r); As: K arrays (r, d); num_examples: K counts.
    """
    p = np.asarray(num_examples, dtype=np.float64)
    p = p / p.sum()
    B_mean = sum(p_k * B_k for p_k, B_k in zip(p, Bs))
    A_mean = sum(p_k * A_k for p_k, A_k in zip(p, As))
    ideal = sum(p_k * (B_k @ A_k) for p_k, B_k, A_k in zip(p, Bs, As))
    return _relative_error(B_mean @ A_mean, ideal)


# ----------------------------------------------------------------------------- the simulator
@dataclass
class LoraHistory(History):
    """A `fedlite.History` of LoRA fine-tuning, plus the adapter (R = rounds completed).

    theta, params          the fine-tuned model, merged: (W1 + (B A)ᵀ, b1, W2, b2)
    bytes_up, bytes_down   adapter messages only (the base model is already on every device)
    B (h, r), A (r, d)     the final adapter
    aggregation_error (R,) per round: ‖server's B A - mean_k(B_k A_k)‖ / ‖mean_k(B_k A_k)‖
                           (Frobenius norms)
    """

    B: np.ndarray
    A: np.ndarray
    aggregation_error: np.ndarray

    def __repr__(self):
        c = self.config
        status = f"diverged at round {self.diverged_at}" if self.diverged else "finished"
        return (f"LoraHistory(rank {c['rank']}, A {'frozen' if c['freeze_A'] else 'trained'}, "
                f"{status} after {self.num_rounds} rounds, "
                f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g})")


def lora_simulate(federation, base_params, *, rank, num_rounds, lr, local_epochs=1,
                  batch_size=None, freeze_A=False, seed=0):
    """Fine-tune base_params federatedly, training only the adapter B A: a LoraHistory.

    Each round every participant starts from the server's (B, A), runs local_epochs of
    minibatch SGD on its own data (batch_size None = full batch) training B, and A too unless
    freeze_A, and sends them back.  The server takes the n_k-weighted means of B and of A,
    FedAvg applied to each factor (with freeze_A, A never changes and is never sent).
    Minibatch order is the simulator's (`engine.shuffle_order` with the same participant
    keys), and A comes from `seed`: the same arguments give the same history, bit for bit.
    A run whose loss stops being finite or grows DIVERGENCE_FACTOR-fold is stopped, as in
    `fedlite.simulate`.
    """
    for attr in ("X", "y", "offsets", "sizes", "num_participants"):
        if not hasattr(federation, attr):
            raise TypeError(f"federation must be a fedlite.Federation; got "
                            f"{type(federation).__name__}")
    d = federation.X.shape[1]
    W1, b1, W2, b2 = base = _check_base(base_params, d)
    h = W1.shape[1]
    r = as_int(rank, "rank", minimum=1, maximum=min(d, h))
    R = as_int(num_rounds, "num_rounds", minimum=1)
    lr = _positive(lr, "lr")
    local_epochs = as_int(local_epochs, "local_epochs", minimum=1)
    sizes = np.asarray(federation.sizes, dtype=np.float64)
    if batch_size is not None:
        batch_size = as_int(batch_size, "batch_size", minimum=1, maximum=int(sizes.min()))
    if not isinstance(freeze_A, (bool, np.bool_)):
        raise TypeError(f"freeze_A must be True or False; got {freeze_A!r}")
    seed = as_int(seed, "seed", minimum=0)
    config = dict(model="mlp", algorithm="fedavg", num_features=d, hidden=h, lr=lr, mu=0.0,
                  num_rounds=R, local_epochs=local_epochs, batch_size=batch_size,
                  participation=1.0, seed=seed, rank=r, freeze_A=bool(freeze_A))

    init_seq, _, participants_seq, _ = np.random.SeedSequence(seed).spawn(4)  # as simulate
    A = np.random.default_rng(init_seq).normal(0.0, np.sqrt(1.0 / d), size=(r, d))
    B = np.zeros((h, r))
    K = federation.num_participants
    keys = participant_keys(participants_seq, K)
    batch = FULL_BATCH if batch_size is None else batch_size
    message = adapter_bytes(d, h, r, freeze_A)
    losses = [_participant_losses(federation, merge(base, B, A))]
    loss0 = float(losses[0] @ sizes / sizes.sum())
    errors, diverged_at = [], None
    with np.errstate(all="ignore"):
        for round_number in range(1, R + 1):
            Bs, As = [], []
            for k in range(K):
                X_k, y_k = federation.participant(k)
                B_k, A_k = _local_fit(X_k, y_k, base, B, A, lr, local_epochs, batch, freeze_A,
                                      keys[k], round_number)
                Bs.append(B_k)
                As.append(A_k)
            p = sizes / sizes.sum()
            new_B = sum(p_k * B_k for p_k, B_k in zip(p, Bs))
            new_A = A if freeze_A else sum(p_k * A_k for p_k, A_k in zip(p, As))
            ideal = sum(p_k * (B_k @ A_k) for p_k, B_k, A_k in zip(p, Bs, As))
            new_losses = _participant_losses(federation, merge(base, new_B, new_A))
            loss = float(new_losses @ sizes / sizes.sum())
            if not (np.isfinite(loss) and np.isfinite(new_B).all() and np.isfinite(new_A).all()
                    and loss <= DIVERGENCE_FACTOR * max(loss0, np.finfo(float).tiny)):
                diverged_at = round_number
                break
            errors.append(_relative_error(new_B @ new_A, ideal))
            B, A = new_B, new_A
            losses.append(new_losses)
    done = len(errors)
    participant_loss = np.array(losses)
    return LoraHistory(
        loss=participant_loss @ sizes / sizes.sum(),
        participant_loss=participant_loss,
        selected=np.tile(np.arange(K, dtype=np.int64), (done, 1)),
        bytes_up=np.full(done, K * message, dtype=np.int64),
        bytes_down=np.full(done, K * message, dtype=np.int64),
        theta=pack(merge(base, B, A)),
        diverged_at=diverged_at,
        config=config,
        B=B, A=A, aggregation_error=np.array(errors),
    )


def communication_runs(federation, base_params, *, fraction=0.01, bits=4, rank=4,
                       num_rounds=20, lr=0.02, lora_lr=3.0, local_epochs=2, batch_size=20,
                       seed=0, cache=None):
    """Fine-tune base_params on `federation` four ways (notebook 10's explorer): {name: History}.

    "FedAvg"              the whole model, float64 uploads, learning rate lr
    "FedAvg + top-k"      the same, each upload cut to its `fraction` largest entries
                          (`compression.TopK`, with error feedback)
    "FedAvg + quantized"  the same, each upload sent with `bits` bits per value
                          (`compression.StochasticQuantizer`)
    "LoRA"                only a rank-`rank` adapter on the first layer, A trained
                          (`lora_simulate`), learning rate lora_lr
    All run num_rounds rounds of local_epochs local epochs with minibatches of batch_size.
    cache: None, or a dict the caller keeps for this federation and these settings; a run
    already in it (same fraction, bits or rank) is reused instead of rerun.
    """
    cache = {} if cache is None else cache
    W1 = _check_base(base_params, federation.X.shape[1])[0]
    fedavg = dict(model="mlp", algorithm="fedavg", hidden=W1.shape[1], init=base_params,
                  num_rounds=num_rounds, lr=lr, local_epochs=local_epochs,
                  batch_size=batch_size, seed=seed)
    settings = {
        "FedAvg": (None, lambda: simulate(federation, **fedavg)),
        "FedAvg + top-k": (fraction, lambda: simulate(
            federation, aggregator=compression.TopK(fraction), **fedavg)),
        "FedAvg + quantized": (bits, lambda: simulate(
            federation, aggregator=compression.StochasticQuantizer(bits), **fedavg)),
        "LoRA": (rank, lambda: lora_simulate(
            federation, base_params, rank=rank, num_rounds=num_rounds, lr=lora_lr,
            local_epochs=local_epochs, batch_size=batch_size, seed=seed)),
    }
    runs = {}
    for name, (value, run) in settings.items():
        if (name, value) not in cache:
            cache[name, value] = run()
        runs[name] = cache[name, value]
    return runs


def _local_fit(X, y, base, B, A, lr, local_epochs, batch_size, freeze_A, key, round_number):
    """One participant's local training of the adapter from the server's (B, A)."""
    W1, b1, W2, b2 = base
    n = len(y)
    for epoch in range(local_epochs):
        order = (np.arange(n) if batch_size >= n
                 else engine.shuffle_order(key, round_number, epoch, n))
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            _, G, _, _, _ = _mlp_loss_grad(X[rows], y[rows], W1 + (B @ A).T, b1, W2, b2)
            G_W = G.T                            # ∂L/∂W for W = W1ᵀ, shape (h, d)
            grad_B = G_W @ A.T                   # ∂L/∂B = G_W Aᵀ
            if not freeze_A:
                A = A - lr * (B.T @ G_W)         # ∂L/∂A = Bᵀ G_W, at the same (B, A)
            B = B - lr * grad_B
    return B, A


# ----------------------------------------------------------------------------- helpers
def _mlp_loss_grad(X, y, W1, b1, W2, b2):
    """(loss, G_W1, g_b1, g_W2, g_b2) from the compiled kernel (inputs already checked)."""
    return kernels.mlp_loss_grad_serial(np.ascontiguousarray(X), np.ascontiguousarray(y),
                                        np.ascontiguousarray(W1), np.ascontiguousarray(b1),
                                        np.ascontiguousarray(W2), float(b2))


def _participant_losses(federation, params):
    """Each participant's loss (K,) under the MLP params (the simulator's compiled kernel)."""
    W1 = params[0]
    d, h = W1.shape
    return engine.participant_losses(engine.MLP, federation.X, federation.y, federation.offsets,
                                     pack(params), d, h)


def _relative_error(got, want):
    scale = np.linalg.norm(want)
    difference = np.linalg.norm(got - want)
    return float(difference / scale) if scale > 0 else float(difference)


def _positive(value, name):
    value = as_float(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    return value


def _check_base(base_params, d):
    """(W1 (d, h), b1 (h,), W2 (h,), b2) checked and converted; d from the data."""
    if not isinstance(base_params, (tuple, list)) or len(base_params) != 4:
        raise TypeError("base_params must be the MLP's (W1, b1, W2, b2), as `pretrain` returns")
    W1 = as_float_array(base_params[0], "W1", 2, (d, "h"))
    h = W1.shape[1]
    b1 = as_float_array(base_params[1], "b1", 1, (h,))
    W2 = as_float_array(base_params[2], "W2", 1, (h,))
    return W1, b1, W2, as_float(base_params[3], "b2")


def _check_adapter(B, A, d, h):
    B = as_float_array(B, "B", 2, (h, "r"))
    A = as_float_array(A, "A", 2, (B.shape[1], d))
    return B, A
