"""The compiled simulator engine: whole federated rounds in numba, participants spread over threads.

`fedlite.simulation.simulate` drives it one round at a time.  A round is
`local_updates` (every selected participant trains from the server's theta, in parallel) then
`aggregate` (the server's n_k-weighted mean, in a fixed order) then `participant_losses`
(everyone's loss under the new model, in parallel).  `fedlite.federated` is the same round
written as readable Python, and the tests hold the two together.

Data layout: X (N, d), y (N,) with participant k's rows at offsets[k]:offsets[k+1]
(a `fedlite.Federation`).  Parameters are flat vectors theta (P,): see `fedlite.parameters`.

Randomness: minibatch order is a pure function of (participant key, round, epoch), computed by an
integer hash (`shuffle_order`), never drawn from a stateful generator.  So it cannot depend on
which thread runs a participant, and a participant's batches do not change when others join.
Each participant writes only its own row of `updates`, and the server adds rows in selection
order, so the thread count cannot change a single bit of the result.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, jit_entry, jit_parallel, prange
from .kernels import (linear_rows, linear_sum_sq, mlp_classifier_rows, mlp_rows,
                      softmax_rows)

LINEAR, MLP = 0, 1        # model codes (see fedlite.core.model: each model object carries its own)
SOFTMAX, MLP_CLASSIFIER = 2, 3  # classifiers: y holds labels 0..C-1 (float64); cross-entropy
GRADIENT, LOCAL_SGD = 0, 1  # what a participant computes: one full-batch gradient, or local SGD
FEDSGD, FEDAVG = GRADIENT, LOCAL_SGD  # the names of earlier versions
HASH_MASK = 0x7FFFFFFF    # 31-bit integer hash: products stay below 2**63, so no overflow anywhere


# ----------------------------------------------------------------------------- randomness
@jit
def mix31(z):
    """An integer hash of z in [0, 2**31) to [0, 2**31) (after Thomas Mueller's 32-bit mixer)."""
    z = ((z ^ (z >> 16)) * 0x45D9F3B) & HASH_MASK
    z = ((z ^ (z >> 16)) * 0x45D9F3B) & HASH_MASK
    return z ^ (z >> 16)


@jit_entry
def shuffle_order(key, round_number, epoch, n):
    """The order (n,) in which a participant visits its n rows in one local epoch.

    Fisher-Yates: for i = n-1 .. 1 swap i with j = hash(key, round, epoch, i) mod (i + 1).
    """
    seed = mix31((key ^ mix31(round_number & HASH_MASK)) & HASH_MASK)
    seed = mix31((seed ^ mix31((epoch + 0x5BD1E995) & HASH_MASK)) & HASH_MASK)
    swap = np.empty(n, np.int64)   # every j first: a loop without the swaps vectorises
    for i in range(1, n):
        z = mix31((seed ^ mix31(i)) & HASH_MASK)
        # j = z mod (i + 1) through a float division, which vectorises (an integer one does
        # not).  Exact: z < 2**53, so rounding leaves z / (i + 1) below the next integer.
        swap[i] = z - (i + 1) * np.int64(np.floor(z / (i + 1.0)))
    order = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = swap[i]
        order[i], order[j] = order[j], order[i]
    return order


# ----------------------------------------------------------------------------- one participant
@jit
def add_loss_grad(model, X, y, start, stop, theta, d, h, grad):
    """Add the summed gradient of rows start..stop at theta into grad (P,); return the summed
    loss: Σ r² for the regression models, Σ -log p_i[y_i] for the classifiers.

    The classifiers' number of classes C follows from P: softmax P = (d + 1) C, the MLP
    classifier P = d h + h + (h + 1) C (theta laid out as in fedlite.core.model).
    """
    P = theta.shape[0]
    if model == SOFTMAX:
        C = P // (d + 1)
        return softmax_rows(X, y, theta[: d * C].reshape((d, C)), theta[d * C:], start, stop,
                            grad[: d * C].reshape((d, C)), grad[d * C:])
    if model == MLP_CLASSIFIER:
        o = d * h + h                        # where W2 starts
        C = (P - o) // (h + 1)
        return mlp_classifier_rows(
            X, y, theta[: d * h].reshape((d, h)), theta[d * h: o],
            theta[o: o + h * C].reshape((h, C)), theta[o + h * C:], start, stop,
            grad[: d * h].reshape((d, h)), grad[d * h: o], grad[o: o + h * C].reshape((h, C)),
            grad[o + h * C:])
    if model == LINEAR:
        sum_sq, sum_r = linear_rows(X, y, theta[:d], theta[d], start, stop, grad[:d])
    else:
        W1 = theta[: d * h].reshape((d, h))
        gW1 = grad[: d * h].reshape((d, h))
        sum_sq, sum_r = mlp_rows(X, y, W1, theta[d * h: d * h + h], theta[d * h + h: P - 1],
                                 theta[P - 1], start, stop,
                                 gW1, grad[d * h: d * h + h], grad[d * h + h: P - 1])
    grad[P - 1] += sum_r
    return sum_sq


@jit
def local_update(model, algorithm, X, y, start, stop, theta, d, h, lr, local_epochs,
                 batch_size, mu, correction, key, round_number, out):
    """What one participant sends back, written into out (P,).

    GRADIENT (FedSGD): its full-batch mean gradient at theta.
    LOCAL_SGD (FedAvg/FedProx/SCAFFOLD): its weights after `local_epochs` passes of minibatch
    SGD from theta on f_k(v) + mu/2 ||v - theta||², i.e.
    v <- v - lr (∇f_batch(v) + mu (v - theta) + correction); correction (P,) is SCAFFOLD's
    c - c_k, or an empty array for none.
    """
    n = stop - start
    P = theta.shape[0]
    grad = np.zeros(P)
    if algorithm == FEDSGD:
        add_loss_grad(model, X, y, start, stop, theta, d, h, grad)
        for p in range(P):
            out[p] = grad[p] / n
        return
    out[:] = theta
    if batch_size >= n:                       # full batch: no shuffling, no copying
        for epoch in range(local_epochs):
            grad[:] = 0.0
            add_loss_grad(model, X, y, start, stop, out, d, h, grad)
            sgd_step(out, grad, n, theta, lr, mu, correction)
        return
    copied = 0 if model == LINEAR else batch_size   # the linear model reads rows in place
    Xb = np.empty((copied, d))
    yb = np.empty(copied)
    for epoch in range(local_epochs):
        order = shuffle_order(key, round_number, epoch, n)
        for b0 in range(0, n, batch_size):
            m = min(batch_size, n - b0)     # the last batch may be smaller
            grad[:] = 0.0
            if model == LINEAR:
                grad[d] += linear_rows_at(X, y, start, order, b0, b0 + m, out, out[d], grad)
            else:
                for t in range(m):          # gather this minibatch's rows
                    row = start + order[b0 + t]
                    for j in range(d):
                        Xb[t, j] = X[row, j]
                    yb[t] = y[row]
                add_loss_grad(model, Xb, yb, 0, m, out, d, h, grad)
            sgd_step(out, grad, m, theta, lr, mu, correction)


@jit
def linear_rows_at(X, y, start, rows, t0, t1, w, b, grad_w):
    """`kernels.linear_rows` over the rows start + rows[t], t = t0..t1-1, of X (a minibatch, read
    where it lies rather than copied): add Σ r_i x_i to grad_w[:d], return Σ r_i (w[:d] are the
    weights; passing whole vectors and t0, t1 rather than slices saves ~10% of FedAvg's time)."""
    d = X.shape[1]
    sum_r = 0.0
    for t in range(t0, t1):
        i = start + rows[t]
        r = b - y[i]
        for j in range(d):
            r += X[i, j] * w[j]          # r_i = w·x_i + b - y_i
        sum_r += r
        for j in range(d):
            grad_w[j] += r * X[i, j]     # Σ_i r_i x_i
    return sum_r


@jit
def sgd_step(v, grad_sum, m, theta, lr, mu, correction):
    """v <- v - lr (grad_sum / m + mu (v - theta) + correction), in place.

    The mu term is skipped when mu == 0, the correction when it is empty (shape (0,))."""
    corrected = correction.shape[0] > 0
    for p in range(v.shape[0]):
        g = grad_sum[p] / m
        if mu != 0.0:
            g += mu * (v[p] - theta[p])     # gradient of mu/2 ||v - theta||²
        if corrected:
            g += correction[p]              # SCAFFOLD: c - c_k
        v[p] -= lr * g


# ----------------------------------------------------------------------------- one round
@jit_parallel
def local_updates(model, algorithm, X, y, offsets, selected, keys, round_number, theta, d, h,
                  lr, local_epochs, batch_size, mu, corrections):
    """Every selected participant's update, shape (m, P); row s belongs to selected[s].

    corrections: (m, P), row s added to participant selected[s]'s every local gradient
    (SCAFFOLD), or shape (0, P) for none."""
    m = selected.shape[0]
    P = theta.shape[0]
    updates = np.empty((m, P))
    none = np.empty(0)
    for s in prange(m):
        k = selected[s]
        correction = corrections[s] if corrections.shape[0] > 0 else none
        local_update(model, algorithm, X, y, offsets[k], offsets[k + 1], theta, d, h, lr,
                     local_epochs, batch_size, mu, correction, keys[k], round_number, updates[s])
    return updates


@jit_entry
def aggregate(updates, num_examples):
    """The server's n_k-weighted mean Σ_s n_s u_s / Σ_s n_s, added in row order, shape (P,)."""
    m, P = updates.shape
    total = 0.0
    mean = np.zeros(P)
    for s in range(m):
        total += num_examples[s]
        for p in range(P):
            mean[p] += num_examples[s] * updates[s, p]
    for p in range(P):
        mean[p] /= total
    return mean


@jit_entry
def sum_rows(rows):
    """Σ_s rows[s], shape (P,): 0 + rows[0] + rows[1] + ..., added in row order."""
    m, P = rows.shape
    total = np.zeros(P)
    for s in range(m):
        for p in range(P):
            total[p] += rows[s, p]
    return total


@jit_parallel
def participant_losses(model, X, y, offsets, theta, d, h):
    """Each participant's mean loss at theta, shape (K,): L_k = Σ_{i in k} r_i² / (2 n_k) for
    the regression models, the mean cross-entropy Σ_{i in k} -log p_i[y_i] / n_k for the
    classifiers."""
    K = offsets.shape[0] - 1
    losses = np.empty(K)
    for k in prange(K):
        n_k = offsets[k + 1] - offsets[k]
        if model == LINEAR:  # forward pass only
            sum_sq = linear_sum_sq(X, y, theta[:d], theta[d], offsets[k], offsets[k + 1])
            losses[k] = sum_sq / (2.0 * n_k)
        else:                # the others' loss comes with its gradient (discarded)
            grad = np.zeros(theta.shape[0])
            total = add_loss_grad(model, X, y, offsets[k], offsets[k + 1], theta, d, h, grad)
            losses[k] = total / (2.0 * n_k) if model == MLP else total / n_k
    return losses


def exercise_kernels():
    """Call every engine kernel once on tiny data (for `fedlite.warmup`)."""
    X = _read_only(np.zeros((4, 2)))        # a Federation's arrays are read-only
    y = _read_only(np.zeros(4))
    offsets = _read_only(np.array([0, 2, 4], dtype=np.int64))
    selected = np.array([0, 1], dtype=np.int64)
    keys = _read_only(np.array([1, 2], dtype=np.int64))   # cached keys are read-only too
    # (labels y = 0 are valid for the classifiers: here C = 2 classes)
    for model, P, h in ((LINEAR, 3, 1), (MLP, 2 * 3 + 2 * 3 + 1, 3), (SOFTMAX, 3 * 2, 1),
                        (MLP_CLASSIFIER, 2 * 3 + 3 + 3 * 2 + 2, 3)):
        theta = np.zeros(P)
        for algorithm in (GRADIENT, LOCAL_SGD):
            for corrections in (np.empty((0, P)), np.zeros((2, P))):
                updates = local_updates(model, algorithm, X, y, offsets, selected, keys, 1,
                                        theta, 2, h, 0.1, 1, 1, 0.0, corrections)
            aggregate(updates, np.array([2.0, 2.0]))
            sum_rows(updates)
        participant_losses(model, X, y, offsets, theta, 2, h)
    shuffle_order(1, 1, 0, 3)


def _read_only(array):
    array.flags.writeable = False
    return array
