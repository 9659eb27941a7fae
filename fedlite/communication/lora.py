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

The adapter is a fedlite model (`LoraModel`), so `fedlite.simulate` runs LoRA fine-tuning with
the same round loop as everything else; having no compiled engine kernel, its participants run
in Python (a few participants, classroom scale), each local gradient one call of the compiled
MLP kernel.  `lora_simulate` returns a `LoraHistory`: the run's History with the adapter and the
aggregation error of every round added, so the course's plotting functions accept it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import engine, kernels, models
from ..core.config import RunSeeds
from ..parameters import BYTES_PER_VALUE, init_params, num_params, pack, unpack
from ..partition import Federation
from ..simulation import DIVERGENCE_FACTOR, History, simulate
from ..validation import as_data, as_float, as_float_array, as_int
from . import compression


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


# ----------------------------------------------------------------------------- the model
class LoraModel:
    """The MLP base_params with a trainable rank-r adapter on its first layer, as a fedlite model.

    theta = [B (h r) row by row, A (r d) row by row], or only B when A is frozen (then A is
    part of the model, built by every participant from the shared seed, never sent).  The
    loss is the MLP's on the merged weights W1 + (B A)ᵀ; B starts at 0, A ~ N(0, 1/d).
    It has no compiled engine kernel: `simulate` runs its participants in Python, each local
    gradient one call of the compiled MLP kernel.
    """

    name = "lora"
    loss_name = "mean squared error / 2"
    engine_code = None

    def __init__(self, base_params, rank, *, freeze_A=False, A=None):
        W1 = as_float_array(_base_tuple(base_params)[0], "W1", 2)
        self.base = _check_base(base_params, W1.shape[0])
        self.num_features, self.hidden = W1.shape
        d, h = self.num_features, self.hidden
        self.rank = as_int(rank, "rank", minimum=1, maximum=min(d, h))
        if not isinstance(freeze_A, (bool, np.bool_)):
            raise TypeError(f"freeze_A must be True or False; got {freeze_A!r}")
        self.freeze_A = bool(freeze_A)
        if self.freeze_A and A is None:
            raise ValueError("a frozen A must be given (every participant builds it from the "
                             "shared seed; lora_simulate does)")
        self.A_frozen = None if A is None else as_float_array(A, "A", 2, (self.rank, d))
        self.num_params = h * self.rank + (0 if self.freeze_A else self.rank * d)

    def init(self, rng):
        """B = 0 (the fine-tuned model starts as the base model), A ~ N(0, 1/d)."""
        d, h, r = self.num_features, self.hidden, self.rank
        if self.freeze_A:
            return np.zeros(h * r)
        A = rng.normal(0.0, np.sqrt(1.0 / d), size=(r, d))
        return self.pack((np.zeros((h, r)), A))

    def pack(self, params):
        B, A = params
        B, A = _check_adapter(B, A, self.num_features, self.hidden)
        return B.ravel().copy() if self.freeze_A else np.concatenate([B.ravel(), A.ravel()])

    def unpack(self, theta):
        """theta -> (B (h, r), A (r, d)) (copies)."""
        d, h, r = self.num_features, self.hidden, self.rank
        theta = as_float_array(theta, "theta", 1, (self.num_params,), check_finite=False)
        B = theta[: h * r].reshape(h, r).copy()
        A = self.A_frozen.copy() if self.freeze_A else theta[h * r:].reshape(r, d).copy()
        return B, A

    def merged(self, theta):
        """The fine-tuned MLP's (W1 + (B A)ᵀ, b1, W2, b2)."""
        return merge(self.base, *self.unpack(theta))

    def loss_grad(self, X, y, theta):
        """Mean loss and gradient (P,): ∂L/∂B = G_W Aᵀ, ∂L/∂A = Bᵀ G_W, G_W = (∂L/∂W1')ᵀ."""
        B, A = self.unpack(theta)
        W1, b1, W2, b2 = self.base
        loss, G, _, _, _ = _mlp_loss_grad(X, y, W1 + (B @ A).T, b1, W2, b2)
        G_W = G.T                                   # ∂L/∂W for W = W1ᵀ, shape (h, d)
        grad_B = G_W @ A.T
        if self.freeze_A:
            return float(loss), grad_B.ravel()
        return float(loss), np.concatenate([grad_B.ravel(), (B.T @ G_W).ravel()])

    def participant_losses(self, federation, theta):
        return _participant_losses(federation, self.merged(theta))

    def round_metrics(self, reports, num_examples, theta, new_theta):
        """The aggregation error of the round: ‖B̄ Ā - mean_k(B_k A_k)‖ / ‖mean_k(B_k A_k)‖."""
        adapters = [self.unpack(report) for report in reports]
        Bs, As = [B for B, _ in adapters], [A for _, A in adapters]
        B, A = self.unpack(new_theta)
        p = num_examples / num_examples.sum()
        ideal = sum(p_k * (B_k @ A_k) for p_k, B_k, A_k in zip(p, Bs, As))
        return {"aggregation_error": _relative_error(B @ A, ideal)}

    def __repr__(self):
        return (f"LoraModel(rank={self.rank}, A {'frozen' if self.freeze_A else 'trained'}, "
                f"d={self.num_features}, h={self.hidden})")


# ----------------------------------------------------------------------------- the simulator
@dataclass
class LoraHistory:
    """A `fedlite.History` of LoRA fine-tuning, plus the adapter (R = rounds completed).

    It has every attribute of the History of the run (`run`), except:
    theta, params          the fine-tuned model, merged: (W1 + (B A)ᵀ, b1, W2, b2)
    bytes_up, bytes_down   adapter messages only (the base model is already on every device)
    B (h, r), A (r, d)     the final adapter
    aggregation_error (R,) per round: ‖server's B A - mean_k(B_k A_k)‖ / ‖mean_k(B_k A_k)‖
                           (Frobenius norms)
    """

    run: History
    rank: int
    freeze_A: bool

    def __getattr__(self, name):
        if name == "run":
            raise AttributeError(name)
        return getattr(self.run, name)

    @property
    def B(self):
        return self.run.model.unpack(self.run.theta)[0]

    @property
    def A(self):
        return self.run.model.unpack(self.run.theta)[1]

    @property
    def theta(self):
        return pack(self.params)

    @property
    def params(self):
        return self.run.model.merged(self.run.theta)

    @property
    def aggregation_error(self):
        return self.run.metrics.get("aggregation_error", np.empty(0))

    def __repr__(self):
        status = (f"diverged at round {self.diverged_at}" if self.diverged else "finished")
        return (f"LoraHistory(rank {self.rank}, A {'frozen' if self.freeze_A else 'trained'}, "
                f"{status} after {self.num_rounds} rounds, "
                f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g})")


def lora_simulate(federation, base_params, *, rank, num_rounds, lr, local_epochs=1,
                  batch_size=None, freeze_A=False, seed=0):
    """Fine-tune base_params federatedly, training only the adapter B A: a LoraHistory.

    Each round every participant starts from the server's (B, A), runs local_epochs of
    minibatch SGD on its own data (batch_size None = full batch) training B, and A too unless
    freeze_A, and sends them back.  The server takes the n_k-weighted means of B and of A,
    FedAvg applied to each factor (with freeze_A, A never changes and is never sent).
    This is `fedlite.simulate(federation, model=LoraModel(...), algorithm="fedavg", ...)`: the
    same round loop, minibatch order, divergence rule and History as every other run; A comes
    from `seed`, so the same arguments give the same history, bit for bit.
    """
    if not isinstance(federation, Federation):
        raise TypeError(f"federation must be a fedlite.Federation; got "
                        f"{type(federation).__name__}")
    d = federation.num_features
    _check_base(base_params, d)
    if not isinstance(freeze_A, (bool, np.bool_)):
        raise TypeError(f"freeze_A must be True or False; got {freeze_A!r}")
    A = None
    if freeze_A:
        W1 = as_float_array(base_params[0], "W1", 2, (d, "h"))
        r = as_int(rank, "rank", minimum=1, maximum=min(W1.shape))
        init_seq = RunSeeds.from_seed(as_int(seed, "seed", minimum=0)).init
        A = np.random.default_rng(init_seq).normal(0.0, np.sqrt(1.0 / d), size=(r, d))
    model = LoraModel(base_params, rank, freeze_A=freeze_A, A=A)
    run = simulate(federation, model=model, algorithm="fedavg", num_rounds=num_rounds, lr=lr,
                   local_epochs=local_epochs, batch_size=batch_size, seed=seed)
    return LoraHistory(run, model.rank, model.freeze_A)


def communication_runs(federation, base_params, *, fraction=0.01, bits=4, rank=4,
                       num_rounds=20, lr=0.02, lora_lr=3.0, local_epochs=2, batch_size=20,
                       seed=0, cache=None):
    """Fine-tune base_params on `federation` four ways (notebook 12's explorer): {name: History}.

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


# ----------------------------------------------------------------------------- helpers
def _mlp_loss_grad(X, y, W1, b1, W2, b2):
    """(loss, G_W1, g_b1, g_W2, g_b2) from the compiled kernel (inputs already checked), given
    read-only views as the public functions do (one compiled version of the kernel)."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (X, y, W1, b1, W2)]
    return kernels.mlp_loss_grad_serial(*models._read_only(*arrays), float(b2))


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


def _base_tuple(base_params):
    if not isinstance(base_params, (tuple, list)) or len(base_params) != 4:
        raise TypeError("base_params must be the MLP's (W1, b1, W2, b2), as `pretrain` returns")
    return base_params


def _check_base(base_params, d):
    """(W1 (d, h), b1 (h,), W2 (h,), b2) checked and converted; d from the data."""
    _base_tuple(base_params)
    W1 = as_float_array(base_params[0], "W1", 2, (d, "h"))
    h = W1.shape[1]
    b1 = as_float_array(base_params[1], "b1", 1, (h,))
    W2 = as_float_array(base_params[2], "W2", 1, (h,))
    return W1, b1, W2, as_float(base_params[3], "b2")


def _check_adapter(B, A, d, h):
    B = as_float_array(B, "B", 2, (h, "r"))
    A = as_float_array(A, "A", 2, (B.shape[1], d))
    return B, A
