"""Compiled loss-and-gradient kernels: plain loops over rows, one fused pass (X is read once).

No Python objects, no randomness, no printing, no input checks: call them through
`fedlite.models`, which validates and converts first.  `fedlite.reference` has the same maths in
numpy; the tests hold the two together.

Determinism: the rows are cut into chunks by a rule that depends only on n (never on the number
of threads).  Each chunk's partial sums are computed by the same code whether the chunks run on
one thread or many, and the partial sums are added in chunk order.  The serial and parallel
drivers therefore give the same bits for any thread count.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, jit_entry, jit_parallel, prange

CHUNK_ROWS = 4096  # rows per partial sum ...
MAX_CHUNKS = 64    # ... but never more than this many partial sums (bounds the memory)
BLOCK_ROWS = 64    # MLP rows processed together so the inner loops run over rows and vectorise


@jit
def chunk_bounds(n):
    """Start row of each chunk, shape (num_chunks + 1,); depends on n only."""
    num_chunks = min(MAX_CHUNKS, (n + CHUNK_ROWS - 1) // CHUNK_ROWS)
    num_chunks = max(num_chunks, 1)
    bounds = np.empty(num_chunks + 1, np.int64)
    for c in range(num_chunks + 1):
        bounds[c] = (n * c) // num_chunks
    return bounds


# ----------------------------------------------------------------------------- linear model
@jit
def linear_rows(X, y, w, b, start, stop, grad_w):
    """Rows start..stop of the linear model: add Σ r_i x_i to grad_w, return (Σ r_i², Σ r_i).

    r_i = w·x_i + b - y_i is the residual of row i.
    """
    d = X.shape[1]
    sum_sq = 0.0
    sum_r = 0.0
    for i in range(start, stop):
        r = b - y[i]
        for j in range(d):
            r += X[i, j] * w[j]          # r_i = w·x_i + b - y_i
        sum_sq += r * r
        sum_r += r
        for j in range(d):
            grad_w[j] += r * X[i, j]     # Σ_i r_i x_i  (row i is still in L1 cache)
    return sum_sq, sum_r


@jit
def linear_sum_sq(X, y, w, b, start, stop):
    """Σ r_i² over rows start..stop: the forward half of `linear_rows` (no gradient)."""
    sum_sq = 0.0
    for i in range(start, stop):
        r = b - y[i]
        for j in range(X.shape[1]):
            r += X[i, j] * w[j]
        sum_sq += r * r
    return sum_sq


@jit
def linear_chunk(X, y, w, b, bounds, c, partial):
    """Chunk c's partial sums into row c of partial (num_chunks, d + 2): [Σ r x, Σ r², Σ r]."""
    d = X.shape[1]
    row = partial[c]  # a 1-D row, then sliced: numba keeps it contiguous, so loops vectorise
    sum_sq, sum_r = linear_rows(X, y, w, b, bounds[c], bounds[c + 1], row[:d])
    row[d] = sum_sq
    row[d + 1] = sum_r


@jit
def linear_finish(n, partial):
    """Add the chunks' partial sums in chunk order and divide by n: (loss, grad_w, grad_b).

    L = Σ r² / (2n),  ∂L/∂w = Σ r x / n,  ∂L/∂b = Σ r / n.
    """
    d = partial.shape[1] - 2
    total = np.zeros(d + 2)
    for c in range(partial.shape[0]):
        for j in range(d + 2):
            total[j] += partial[c, j]
    return total[d] / (2.0 * n), total[:d] / n, total[d + 1] / n


@jit_entry
def linear_loss_grad_serial(X, y, w, b):
    """(loss, grad_w (d,), grad_b) of the mean squared loss, one thread."""
    bounds = chunk_bounds(X.shape[0])
    partial = np.zeros((bounds.shape[0] - 1, X.shape[1] + 2))
    for c in range(partial.shape[0]):
        linear_chunk(X, y, w, b, bounds, c, partial)
    return linear_finish(X.shape[0], partial)


@jit_parallel
def linear_loss_grad_parallel(X, y, w, b):
    """Same result as `linear_loss_grad_serial`, bit for bit, with the chunks spread over threads."""
    bounds = chunk_bounds(X.shape[0])
    partial = np.zeros((bounds.shape[0] - 1, X.shape[1] + 2))
    for c in prange(partial.shape[0]):
        linear_chunk(X, y, w, b, bounds, c, partial)
    return linear_finish(X.shape[0], partial)


# ----------------------------------------------------------------------------- MLP
@jit
def mlp_rows(X, y, W1, b1, W2, b2, start, stop, grad_W1, grad_b1, grad_W2):
    """Rows start..stop of y_hat = relu(X W1 + b1) W2 + b2: add the gradient sums, return (Σ r², Σ r).

    Works on blocks of BLOCK_ROWS rows held transposed (features × rows), so every inner loop
    runs over the rows of a block and vectorises.  Per block (t indexes its rows):
      Z[j, t] = b1_j + Σ_k W1[k, j] X[t, k]          pre-activation of hidden unit j
      r[t]    = Σ_j W2_j relu(Z[j, t]) + b2 - y[t]     residual
      δ[j, t] = r[t] W2_j [Z[j, t] > 0]                back through ReLU (relu'(0) = 0)
      grad_W2 += Σ_t relu(Z[:, t]) r[t],  grad_b1 += Σ_t δ[:, t],  grad_W1 += Σ_t x_t δ[:, t]ᵀ
    """
    d, h = W1.shape
    Xt = np.empty((d, BLOCK_ROWS))
    Z = np.empty((h, BLOCK_ROWS))
    r = np.empty(BLOCK_ROWS)
    sum_sq = 0.0
    sum_r = 0.0
    for i0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - i0)
        for t in range(m):
            for k in range(d):
                Xt[k, t] = X[i0 + t, k]
        # forward
        for t in range(m):
            r[t] = b2 - y[i0 + t]
        for j in range(h):
            for t in range(m):
                Z[j, t] = b1[j]
            for k in range(d):
                w_kj = W1[k, j]
                for t in range(m):
                    Z[j, t] += w_kj * Xt[k, t]
            for t in range(m):
                z = Z[j, t]
                r[t] += W2[j] * (0.0 if z <= 0.0 else z)   # relu(z); a NaN stays NaN
        for t in range(m):
            sum_sq += r[t] * r[t]
            sum_r += r[t]
        # backward: Z is overwritten by δ
        for j in range(h):
            g_w2 = 0.0
            g_b1 = 0.0
            for t in range(m):
                z = Z[j, t]
                active = z > 0.0
                g_w2 += r[t] * (z if active else 0.0)
                delta = r[t] * W2[j] if active else 0.0
                Z[j, t] = delta
                g_b1 += delta
            grad_W2[j] += g_w2
            grad_b1[j] += g_b1
            for k in range(d):
                g = 0.0
                for t in range(m):
                    g += Xt[k, t] * Z[j, t]
                grad_W1[k, j] += g
    return sum_sq, sum_r


@jit
def mlp_chunk(X, y, W1, b1, W2, b2, bounds, c, partial):
    """Chunk c's partial sums into row c of partial (num_chunks, d*h + 2h + 2):
    [Σ ∂/∂W1 (row by row), Σ ∂/∂b1, Σ ∂/∂W2, Σ r², Σ r]."""
    d, h = W1.shape
    row = partial[c]
    sum_sq, sum_r = mlp_rows(X, y, W1, b1, W2, b2, bounds[c], bounds[c + 1],
                             row[:d * h].reshape((d, h)), row[d * h:d * h + h],
                             row[d * h + h:d * h + 2 * h])
    row[d * h + 2 * h] = sum_sq
    row[d * h + 2 * h + 1] = sum_r


@jit
def mlp_finish(n, partial, d, h):
    """Add the chunks' partial sums in chunk order and divide by n."""
    P = partial.shape[1]
    total = np.zeros(P)
    for c in range(partial.shape[0]):
        for p in range(P):
            total[p] += partial[c, p]
    grad_W1 = total[:d * h].reshape((d, h)) / n
    return (total[P - 2] / (2.0 * n), grad_W1, total[d * h:d * h + h] / n,
            total[d * h + h:d * h + 2 * h] / n, total[P - 1] / n)


@jit_entry
def mlp_loss_grad_serial(X, y, W1, b1, W2, b2):
    """(loss, grad_W1, grad_b1, grad_W2, grad_b2) of the mean squared loss, one thread."""
    d, h = W1.shape
    bounds = chunk_bounds(X.shape[0])
    partial = np.zeros((bounds.shape[0] - 1, d * h + 2 * h + 2))
    for c in range(partial.shape[0]):
        mlp_chunk(X, y, W1, b1, W2, b2, bounds, c, partial)
    return mlp_finish(X.shape[0], partial, d, h)


@jit_parallel
def mlp_loss_grad_parallel(X, y, W1, b1, W2, b2):
    """Same result as `mlp_loss_grad_serial`, bit for bit, with the chunks spread over threads."""
    d, h = W1.shape
    bounds = chunk_bounds(X.shape[0])
    partial = np.zeros((bounds.shape[0] - 1, d * h + 2 * h + 2))
    for c in prange(partial.shape[0]):
        mlp_chunk(X, y, W1, b1, W2, b2, bounds, c, partial)
    return mlp_finish(X.shape[0], partial, d, h)
