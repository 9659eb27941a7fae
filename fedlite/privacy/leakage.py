"""What a model update leaks: recovering a participant's data from the gradient it sends.

"The data never leave the participant" is true, but the gradient does, and it is a function of
the data.  For one example (x, y) and the linear model y_hat = w·x + b, with r = y_hat - y:

    ∂L/∂w = r x,   ∂L/∂b = r,   so   x = (∂L/∂w) / (∂L/∂b)   and   y = w·x + b - ∂L/∂b.

The MLP's first layer leaks the same way: ∂L/∂W1[:, j] = x δ_j and ∂L/∂b1[j] = δ_j, so
any hidden unit j with δ_j ≠ 0 gives x = ∂L/∂W1[:, j] / ∂L/∂b1[j].  On a batch the gradient
is a mean over rows and the ratio mixes them, except (for the MLP) through a ReLU unit that
only one row switched on.  `reconstruct_from_gradient` is the general attack of "Deep Leakage from
Gradients" (Zhu et al. 2019): find rows whose gradient matches the observed one.

Parameters are tuples as in `fedlite.models`: (w, b) for the linear model, (W1, b1, W2, b2) for
the MLP; the attacker (the server) knows them, since it sent them.  Which model a tuple belongs
to is asked of the model objects (`fedlite.core.model.model_for_params`), which also check its
shapes; what each attack needs of a model is in one place per model (`_Linear`, `_MLP`, at the
end).  Row order in a batch cannot be recovered, so errors are measured after matching each true
row to a recovered one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import reference
from ..core.model import LinearModel, MLPModel, model_for_params
from ..validation import as_data, as_float, as_float_array, as_int

EXACT = 1e-6  # a recovered row within this relative error counts as recovered exactly
MAX_TRIALS = 10**6
MAX_GUESS_VALUES = 10**6   # batch_size x num_features values guessed by gradient matching
MAX_ITERATIONS = 10**7


# ----------------------------------------------------------------------------- one example
def invert_linear_gradient(grad_w, grad_b, w, b):
    """(x, y) of the single example whose linear-model gradient is (grad_w, grad_b).

    grad_w = r x and grad_b = r with r = w·x + b - y, so x = grad_w / grad_b and
    y = w·x + b - grad_b.  Fails (ValueError) when grad_b = 0: a perfectly fitted example has a
    zero gradient and leaks nothing; and when x or y would overflow float64.
    """
    grad_w = as_float_array(grad_w, "grad_w", 1)
    grad_b = as_float(grad_b, "grad_b")
    w = as_float_array(w, "w", 1, grad_w.shape)
    b = as_float(b, "b")
    if grad_b == 0:
        raise ValueError("grad_b is 0: the example is fitted exactly, its gradient is zero "
                         "and reveals nothing")
    with np.errstate(over="ignore", invalid="ignore"):
        x = grad_w / grad_b
        y = float(w @ x + b - grad_b)
    if not (np.isfinite(x).all() and np.isfinite(y)):
        raise ValueError("x = grad_w / grad_b or y = w·x + b - grad_b overflows float64: "
                         "grad_b is too small next to grad_w (or w, b too large)")
    return x, y


def invert_mlp_gradient(grads, params):
    """(x, y) of the single example whose MLP gradients are grads = (gW1, gb1, gW2, gb2).

    For hidden unit j: gW1[:, j] = x δ_j and gb1[j] = δ_j, so x = gW1[:, j] / gb1[j]; we use
    the unit with the largest |gb1[j]| (the best-conditioned division).  Then y = y_hat(x) - r
    with r = gb2 (the output bias's gradient is the residual).
    """
    model, params = _check_params(params, "params", kind=MLPModel)
    gW1, gb1, _, gb2 = _check_grads(grads, model)
    j = int(np.argmax(np.abs(gb1)))
    if gb1[j] == 0:
        raise ValueError("grad_b1 is 0 for every hidden unit: no unit was active (or the "
                         "example is fitted exactly), so the first layer reveals nothing")
    with np.errstate(over="ignore", invalid="ignore"):
        x = gW1[:, j] / gb1[j]
        y = float(reference.mlp_predict(x[None, :], *params)[0] - gb2)
    if not (np.isfinite(x).all() and np.isfinite(y)):
        raise ValueError("x = grad_W1[:, j] / grad_b1[j] or the prediction at x overflows "
                         "float64")
    return x, y


def candidate_rows(grads):
    """Every row the first layer's gradient points at: (num_candidates, d).

    Linear model, grads = (grad_w, grad_b): the one ratio grad_w / grad_b (if grad_b ≠ 0).
    MLP, grads = (gW1, gb1, gW2, gb2): gW1[:, j] / gb1[j] for every unit with gb1[j] ≠ 0 (and
    not below 1e-12 of the largest |gb1|, where the division is only noise).
    On a batch, gW1[:, j] / gb1[j] = Σ_i δ_ij x_i / Σ_i δ_ij: a mixture of the rows, which is
    exactly row i when unit j was switched on by row i alone.  A ratio past float64 (a tiny
    gb1[j]) points at no row that can be written down, and is left out.
    """
    model, grads = _check_params(grads, "grads")
    gW1, gb1 = _LEAKS[type(model)].first_layer(grads)       # (d, units), (units,)
    active = np.flatnonzero((gb1 != 0) & (np.abs(gb1) > 1e-12 * np.abs(gb1).max()))
    with np.errstate(over="ignore"):
        ratios = (gW1[:, active] / gb1[active]).T
    return ratios[np.isfinite(ratios).all(axis=1)]


def model_grads(X, y, params):
    """The gradients a participant holding rows (X, y) sends: a tuple shaped like params."""
    X, y = as_data(X, y)
    model, params = _check_params(params, "params", num_features=X.shape[1])
    with np.errstate(all="ignore"):
        grads = _LEAKS[type(model)].grads(X, y, params)
    if not all(np.isfinite(g).all() for g in grads):
        raise ValueError("the gradients overflow float64 for these X, y and params")
    return grads


# ----------------------------------------------------------------------------- checks
def _check_params(params, name, num_features=None, kind=None):
    """(model, params): the model object whose tuple form `params` is (`model_for_params`), if
    it is one the attacks read (of class `kind`, if given), and params as that model's own
    tuple (float64 arrays, float biases), every shape checked by it."""
    model = model_for_params(params, name)
    kinds = tuple(_LEAKS) if kind is None else (kind,)
    if type(model) not in kinds:
        raise TypeError(f"{name} must be {' or '.join(_LEAKS[k].form for k in kinds)}; got the "
                        f"parameters of {model!r}")
    params = _as_tuple_of(model, params, name)
    if num_features is not None and model.num_features != num_features:
        raise ValueError(f"{name} must be the parameters of a model of {num_features} features; "
                         f"got those of {model!r}")
    return model, params


def _check_grads(grads, model, name="grads"):
    """Gradients shaped like the parameters of `model`, as its own tuple."""
    found = model_for_params(grads, name)
    if type(found) is not type(model):
        raise TypeError(f"{name} must be shaped like params, {_LEAKS[type(model)].form} of "
                        f"{model!r}; got the shapes of {found!r}")
    return _as_tuple_of(model, grads, name)


def _as_tuple_of(model, params, name):
    """params through the model's pack and unpack: checked, copied, float64."""
    try:
        return model.unpack(model.pack(params))
    except (TypeError, ValueError) as exc:   # the model names the piece; we add the argument
        raise type(exc)(f"{name}: {exc}") from None


# ----------------------------------------------------------------------------- measuring
def relative_errors(X_true, X_hat):
    """For each true row, ||x_hat - x|| / ||x|| to the nearest recovered row, shape (n,).

    Computed in units of each true row's largest entry, so nothing overflows.  A zero true row
    has error 0 if a recovered row is exactly 0, else inf; with no recovered row, 1 (as bad as
    guessing zero).
    """
    X_true = _as_rows(X_true, "X_true")
    X_hat = _as_rows(X_hat, "X_hat", num_features=X_true.shape[1], allow_empty=True)
    if X_hat.shape[0] == 0:
        return np.ones(X_true.shape[0])  # nothing recovered: as bad as guessing zero
    return _relative_distances(X_true, X_hat).min(axis=1)


def match_rows(X_true, X_hat):
    """Order of X_hat's rows that best lines them up with X_true's (greedy: closest pair first).

    A gradient is a mean over rows, so it cannot tell which recovered row is which; we pair
    the closest true/recovered rows, remove both, and repeat.  Returns (n,) indices into X_hat.
    """
    X_true = _as_rows(X_true, "X_true")
    X_hat = _as_rows(X_hat, "X_hat", num_features=X_true.shape[1])
    if X_hat.shape[0] < X_true.shape[0]:
        raise ValueError(f"X_hat must have at least as many rows as X_true "
                         f"({X_true.shape[0]}) to pair each with one; got {X_hat.shape[0]}")
    return _match_rows(X_true, X_hat)


def _match_rows(X_true, X_hat):
    scale = _power_of_two_below(max(np.abs(X_true).max(), np.abs(X_hat).max()))
    distances = np.linalg.norm(X_true[:, None, :] / scale - X_hat[None, :, :] / scale, axis=2)
    order = np.empty(len(X_true), dtype=np.int64)   # (in units of scale: no overflow)
    for _ in range(len(X_true)):
        i, j = np.unravel_index(np.argmin(distances), distances.shape)
        order[i] = j
        distances[i, :] = np.inf
        distances[:, j] = np.inf
    return order


def reconstruction_error(X_true, X_hat):
    """Mean relative error ||x_hat_i - x_i|| / ||x_i|| after matching rows (see `match_rows`)."""
    X_true = _as_rows(X_true, "X_true")
    X_hat = _as_rows(X_hat, "X_hat")
    if X_true.shape != X_hat.shape:
        raise ValueError(f"X_hat must have the shape of X_true {X_true.shape}; got {X_hat.shape}")
    aligned = X_hat[_match_rows(X_true, X_hat)]
    return float(np.mean([_relative_distances(x[None, :], x_hat[None, :])[0, 0]
                          for x, x_hat in zip(X_true, aligned)]))


def _as_rows(X, name, num_features=None, allow_empty=False):
    """X as a finite float64 (n, d) array; one row (d,) is taken as (1, d)."""
    try:
        ndim = np.ndim(X)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array of rows; {exc}") from None
    if ndim == 1:
        X = np.atleast_2d(as_float_array(X, name, 1))
    if allow_empty and np.size(X) == 0 and np.ndim(X) == 2:
        return np.zeros((0, num_features or np.shape(X)[1]))
    d = "d" if num_features is None else num_features
    return as_float_array(X, name, 2, ("n", d))


def _power_of_two_below(biggest):
    """2^(e-1) <= biggest < 2^e (elementwise; 0.5 for 0): dividing by it is exact."""
    return np.ldexp(1.0, np.frexp(biggest)[1] - 1)


def _norms(A):
    """||row|| over the last axis, overflow-free (inf only past float64's range)."""
    scale = _power_of_two_below(np.abs(A).max(axis=-1, keepdims=True))
    with np.errstate(over="ignore"):
        return (scale * np.linalg.norm(A / scale, axis=-1, keepdims=True))[..., 0]


def _relative_distances(X_true, X_hat):
    """(n, m): ||x_hat_j - x_i|| / ||x_i||, computed in units of a power of two near max |x_i|
    (the ratio is the same, and nothing overflows on the way); 0 / 0 = 0, r / 0 = inf."""
    scale = _power_of_two_below(np.abs(X_true).max(axis=1))[:, None, None]     # (n, 1, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        apart = _norms(X_hat[None, :, :] / scale - X_true[:, None, :] / scale)   # (n, m)
    apart = np.where(np.isnan(apart), np.inf, apart)
    length = _norms(X_true[:, None, :] / scale)                                  # (n, 1)
    zero = length == 0
    return np.divide(apart, np.where(zero, 1.0, length),
                     out=np.where(apart == 0, 0.0, np.inf), where=~zero)


@dataclass
class LeakageCurve:
    """How much the first-layer ratio attack recovers, per batch size (mean over trials).

    error      (B,) mean over rows of the relative error to the nearest candidate row
    recovered  (B,) fraction of rows recovered exactly (relative error < EXACT)
    """

    batch_sizes: np.ndarray
    error: np.ndarray
    recovered: np.ndarray


def leakage_vs_batch_size(X, y, params, batch_sizes, *, num_trials=20, seed=0):
    """Run the ratio attack (`candidate_rows`) on random batches of (X, y) of each size.

    For each batch size B, draw num_trials batches of B distinct rows (seeded), compute the
    gradient the participant would send, and score the candidates against the true rows.
    Returns a `LeakageCurve`.  Linear model: exact at B = 1, a blend of rows from B = 2 on.
    """
    X, y = as_data(X, y)
    _, params = _check_params(params, "params", num_features=X.shape[1])
    num_trials = as_int(num_trials, "num_trials", minimum=1, maximum=MAX_TRIALS)
    if isinstance(batch_sizes, (str, bytes)) or not np.iterable(batch_sizes):
        raise TypeError(f"batch_sizes must be a list of batch sizes; got "
                        f"{type(batch_sizes).__name__}")
    sizes = np.array([as_int(B, "batch_sizes", 1, len(y)) for B in batch_sizes], dtype=np.int64)
    if sizes.size == 0:
        raise ValueError("batch_sizes must hold at least one batch size")
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    error, recovered = np.zeros((len(sizes), num_trials)), np.zeros((len(sizes), num_trials))
    for s, B in enumerate(sizes):
        for trial in range(num_trials):
            rows = rng.choice(len(y), size=B, replace=False)
            grads = model_grads(X[rows], y[rows], params)
            errors = relative_errors(X[rows], candidate_rows(grads))
            error[s, trial] = np.minimum(errors, 1.0).mean()
            recovered[s, trial] = np.mean(errors < EXACT)
    error, recovered = error.mean(axis=1), recovered.mean(axis=1)
    return LeakageCurve(sizes, error, recovered)


# ----------------------------------------------------------------------------- gradient matching
def matching_loss_grad(X, y, params, target):
    """D = ||g(X, y) - target||² summed over every gradient array, and (∂D/∂X, ∂D/∂y).

    Linear (params (w, b)): g = (Xᵀ r / n, Σ r / n), r = X w + b - y, errors e_w, e_b:
        ∂D/∂x_i = (2/n) (r_i e_w + (x_i·e_w + e_b) w),   ∂D/∂y_i = -(2/n) (x_i·e_w + e_b).
    MLP (params (W1, b1, W2, b2)): with M = [Z > 0], δ = (r W2ᵀ) ⊙ M and errors E1, e1, e2, e3
    of (gW1, gb1, gW2, gb2), differentiate once more ("double backprop"):
        c = ((X E1 + e1) ⊙ M) W2 + A e2 + e3          (how D moves with each residual r_i)
        ∂D/∂X = (2/n) (δ E1ᵀ + ((r e2ᵀ + c W2ᵀ) ⊙ M) W1ᵀ),   ∂D/∂y = -(2/n) c.
    (The ReLU mask M is piecewise constant, so it has no derivative of its own.)
    """
    X = as_float_array(X, "X", 2, ("n", "d"))
    y = as_float_array(y, "y", 1, (X.shape[0],))
    model, params = _check_params(params, "params", num_features=X.shape[1])
    target = _check_grads(target, model, name="target")
    with np.errstate(all="ignore"):
        D, dX, dy = _LEAKS[type(model)].matching_loss_grad(X, y, params, target)
    if not (np.isfinite(D) and np.isfinite(dX).all() and np.isfinite(dy).all()):
        raise ValueError("the matching loss or its gradient overflows float64 for these X, y, "
                         "params and target")
    return D, dX, dy


@dataclass
class Reconstruction:
    """The result of `reconstruct_from_gradient`: recovered rows and how the matching went."""

    X: np.ndarray           # (B, d) recovered inputs
    y: np.ndarray           # (B,) recovered targets
    matching_loss: np.ndarray  # (num_iterations + 1,) D after each step


def reconstruct_from_gradient(target, params, batch_size, num_features, *, num_iterations=1000,
                              lr=0.3, num_restarts=1, seed=0):
    """Deep Leakage from Gradients: rows (X', y') whose gradient matches `target`.

    From seeded N(0, 1) guesses, minimise D(X', y') = ||g(X', y') - target||²
    (`matching_loss_grad`) with Adam, step lr decayed to 0 along a cosine; restart
    num_restarts times from fresh guesses and keep the run with the smallest D.  Zhu et al. use
    L-BFGS on images; the idea is the same.  target: the observed gradients, a tuple shaped like
    params.  Returns a `Reconstruction`; score it with `reconstruction_error(X_true, result.X)`.
    A run whose D leaves float64's range raises ValueError (lower lr).
    """
    B = as_int(batch_size, "batch_size", minimum=1, maximum=MAX_GUESS_VALUES)
    d = as_int(num_features, "num_features", minimum=1, maximum=MAX_GUESS_VALUES // B)
    model, params = _check_params(params, "params", num_features=d)
    target = _check_grads(target, model, name="target")
    num_iterations = as_int(num_iterations, "num_iterations", minimum=1, maximum=MAX_ITERATIONS)
    lr = as_float(lr, "lr")
    if lr <= 0:
        raise ValueError(f"lr must be > 0; got {lr}")
    num_restarts = as_int(num_restarts, "num_restarts", minimum=1, maximum=MAX_TRIALS)
    children = np.random.SeedSequence(as_int(seed, "seed", minimum=0)).spawn(num_restarts)
    leaks = _LEAKS[type(model)]
    runs = [_match_gradient(leaks, target, params, B, d, num_iterations, lr,
                            np.random.default_rng(c)) for c in children]
    return min(runs, key=lambda run: run.matching_loss[-1])


def _match_gradient(leaks, target, params, B, d, num_iterations, lr, rng):
    """One run of Adam on D from a fresh N(0, 1) guess: a `Reconstruction`."""
    guess = rng.standard_normal(B * (d + 1))           # [X' row by row, y']
    m, v = np.zeros_like(guess), np.zeros_like(guess)
    losses = np.empty(num_iterations + 1)
    with np.errstate(all="ignore"):        # a run leaving float64's range is refused below
        for t in range(1, num_iterations + 2):
            D, dX, dy = leaks.matching_loss_grad(guess[:B * d].reshape(B, d), guess[B * d:],
                                                 params, target)
            if not (np.isfinite(D) and np.isfinite(dX).all() and np.isfinite(dy).all()):
                raise ValueError(f"the matching diverged (D is {D} at step {t}): lower lr "
                                 f"(got {lr}), or scale the target gradients down")
            losses[t - 1] = D
            if t == num_iterations + 1:
                break
            g = np.concatenate([dX.ravel(), dy])
            m = 0.9 * m + 0.1 * g                          # Adam: running mean of the gradient
            v = 0.999 * v + 0.001 * g * g                  # ... and of its square
            step = lr * 0.5 * (1 + np.cos(np.pi * t / num_iterations))   # cosine decay to 0
            guess -= step * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-12)
    return Reconstruction(guess[:B * d].reshape(B, d).copy(), guess[B * d:].copy(), losses)


# ----------------------------------------------------------------------------- the models attacked
class _Linear:
    """What the attacks need of the linear model y_hat = X w + b, params (w, b)."""

    form = "the linear model's (w, b)"

    @staticmethod
    def grads(X, y, params):
        """(∂L/∂w, ∂L/∂b) by the readable maths of fedlite.reference."""
        _, grad_w, grad_b = reference.linear_loss_grad(X, y, *params)
        return grad_w, grad_b

    @staticmethod
    def first_layer(grads):
        """(∂L/∂w as (d, 1), ∂L/∂b as (1,)): the linear model is a first layer of one unit."""
        grad_w, grad_b = grads
        return grad_w[:, None], np.array([grad_b])

    @staticmethod
    def matching_loss_grad(X, y, params, target):
        """D, ∂D/∂X, ∂D/∂y on checked arguments (the formulas: `matching_loss_grad`)."""
        n = X.shape[0]
        w, b = params
        r = X @ w + b - y
        e_w, e_b = X.T @ r / n - target[0], r.sum() / n - target[1]
        along = X @ e_w + e_b
        return (e_w @ e_w + e_b ** 2, 2 / n * (np.outer(r, e_w) + np.outer(along, w)),
                -2 / n * along)


class _MLP:
    """What the attacks need of the MLP y_hat = relu(X W1 + b1) W2 + b2, params (W1, b1, W2, b2)."""

    form = "the MLP's (W1, b1, W2, b2)"

    @staticmethod
    def grads(X, y, params):
        """(∂L/∂W1, ∂L/∂b1, ∂L/∂W2, ∂L/∂b2) by the readable maths of fedlite.reference."""
        return reference.mlp_loss_grad(X, y, *params)[1]

    @staticmethod
    def first_layer(grads):
        """(∂L/∂W1 (d, h), ∂L/∂b1 (h,))."""
        return grads[0], grads[1]

    @staticmethod
    def matching_loss_grad(X, y, params, target):
        """D, ∂D/∂X, ∂D/∂y on checked arguments (the formulas: `matching_loss_grad`)."""
        n = X.shape[0]
        W1, b1, W2, b2 = params
        Z = X @ W1 + b1
        M = (Z > 0).astype(np.float64)
        A = Z * M
        r = A @ W2 + b2 - y
        delta = np.outer(r, W2) * M
        E1, e1 = X.T @ delta / n - target[0], delta.sum(axis=0) / n - target[1]
        e2, e3 = A.T @ r / n - target[2], r.sum() / n - target[3]
        D = np.sum(E1 ** 2) + e1 @ e1 + e2 @ e2 + e3 ** 2
        c = ((X @ E1 + e1) * M) @ W2 + A @ e2 + e3
        dX = 2 / n * (delta @ E1.T + ((np.outer(r, e2) + np.outer(c, W2)) * M) @ W1.T)
        return D, dX, -2 / n * c


# The model objects (fedlite.core.model) whose gradients these attacks read, and what each
# attack needs of them.  Nothing above asks which model it has: it asks this table.
_LEAKS = {LinearModel: _Linear, MLPModel: _MLP}
