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

import math

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



# ----------------------------------------------------------------------------- classification
# Labels y arrive as float64 holding integers 0..C-1 (checked by fedlite.models; a Federation's y
# is float64 too), so each kernel has one compiled version.  L = -(1/n) Σ_i log softmax(z_i)[y_i].
# Blocks of BLOCK_ROWS rows are held transposed (features × rows), as in `mlp_rows`, so that
# every inner loop runs over the rows of a block and vectorises.
LOG2_E = 1.4426950408889634           # 1 / ln 2
LN2_HI = 6.93147180369123816490e-01   # ln 2 = LN2_HI + LN2_LO, LN2_HI with trailing zero bits so
LN2_LO = 1.90821492927058770002e-10   # that k * LN2_HI is exact (Cody and Waite; as in fdlibm)
ROUNDER = 6755399441055744.0          # 1.5 * 2**52: k + ROUNDER holds the integer k in its low bits
ROUNDER_BITS = 0x4338000000000000     # ... and these are the bits of ROUNDER itself
EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))  # 1/13!, ..., 1/1!, 1/0!
EXP_UNDERFLOW = -708.0                # exp(x) below this is under 3.3e-308: taken as 0


@jit
def exp_nonpositive(Z, m, scratch):
    """Z[c, t] = exp(Z[c, t]) for t < m, for Z <= 0 (a NaN stays NaN, -inf gives 0).

    np.exp written out so the loop vectorises (numba's np.exp is a call per value unless Intel's
    SVML is installed): exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 in [-ln2/2, ln2/2],
    exp(r) by its Taylor series to r^13 (error below 1e-17), 2^k built from its exponent bits.
    Within 1 ulp of np.exp; exactly 1 at x = 0.  scratch: (2, BLOCK_ROWS) floats.
    """
    k_rounded, scale = scratch[0], scratch[1]
    k_bits, scale_bits = k_rounded.view(np.int64), scale.view(np.int64)
    for c in range(Z.shape[0]):
        for t in range(m):
            x = Z[c, t]
            under = x < EXP_UNDERFLOW
            k = -1023.0 if under else np.floor(x * LOG2_E + 0.5)     # k = round(x / ln 2)
            r = 0.0 if under else (x - k * LN2_HI) - k * LN2_LO     # r = x - k ln 2
            p = 0.0
            for coefficient in EXP_TAYLOR:
                p = p * r + coefficient                              # p = Σ_j r^j / j!
            Z[c, t] = p
            k_rounded[t] = k + ROUNDER
        for t in range(m):
            scale_bits[t] = (k_bits[t] - ROUNDER_BITS + 1023) << 52  # 2^k (k = -1023 gives 0.0)
        for t in range(m):
            Z[c, t] *= scale[t]                                      # exp(x) = 2^k exp(r)


@jit
def cross_entropy_block(Z, y, i0, m, scratch):
    """Logits Z (C, BLOCK_ROWS) of rows i0..i0+m (row i0 + t in column t): overwrite Z with
    δ = softmax(z_t) - onehot(y_t) and return Σ_t -log softmax(z_t)[y_t].

    Stable (log-sum-exp): with s_t = max_c Z[c, t], e = exp(Z - s_t) <= 1 never overflows and
      -log softmax(z_t)[y_t] = s_t - Z[y_t, t] + log Σ_c e[c, t]   (>= 0; 0 when certain and right)
    scratch: (5, BLOCK_ROWS) floats.  A NaN or inf logit gives a NaN loss.
    """
    C = Z.shape[0]
    shift, total, z_label = scratch[0], scratch[1], scratch[2]
    for t in range(m):
        shift[t] = Z[0, t]
        total[t] = 0.0
        z_label[t] = Z[int(y[i0 + t]), t]
    for c in range(1, C):
        for t in range(m):
            z = Z[c, t]
            shift[t] = z if z > shift[t] else shift[t]   # s_t = max_c Z[c, t]
    for c in range(C):
        for t in range(m):
            Z[c, t] -= shift[t]
    exp_nonpositive(Z, m, scratch[3:])                   # e = exp(Z - s)
    for c in range(C):
        for t in range(m):
            total[t] += Z[c, t]
    loss = 0.0
    for t in range(m):
        loss += (shift[t] - z_label[t]) + np.log(total[t])
        total[t] = 1.0 / total[t]
    for c in range(C):
        for t in range(m):
            Z[c, t] *= total[t]                          # p = e / Σ_c e
    for t in range(m):
        Z[int(y[i0 + t]), t] -= 1.0                      # δ = p - onehot(y)
    return loss


@jit
def transpose_block(X, i0, m, Xt):
    """Xt[k, t] = X[i0 + t, k] for t < m: the block's rows as columns."""
    for t in range(m):
        for k in range(X.shape[1]):
            Xt[k, t] = X[i0 + t, k]


@jit
def dense_block(Xt, W, b, m, Z):
    """Z[c, t] = b_c + Σ_k W[k, c] Xt[k, t] for t < m: a dense layer on one block of rows.

    Four features k at a time for every c, so each pass over Z[c] does four multiply-adds and
    the four rows of Xt stay in L1 cache across the classes.
    """
    d, C = W.shape
    for c in range(C):
        for t in range(m):
            Z[c, t] = b[c]
    k = 0
    while k + 4 <= d:
        for c in range(C):
            w0, w1, w2, w3 = W[k, c], W[k + 1, c], W[k + 2, c], W[k + 3, c]
            for t in range(m):   # Z[c, t] += Σ_{k'=k..k+3} W[k', c] Xt[k', t]
                Z[c, t] += (w0 * Xt[k, t] + w1 * Xt[k + 1, t]
                            + w2 * Xt[k + 2, t] + w3 * Xt[k + 3, t])
        k += 4
    for k in range(k, d):       # the last d mod 4 features
        for c in range(C):
            w_kc = W[k, c]
            for t in range(m):
                Z[c, t] += w_kc * Xt[k, t]


@jit
def dense_grad_block(Xt, G, m, grad_W, grad_b):
    """The dense layer's gradient sums over one block, given G = ∂L/∂Z (C, BLOCK_ROWS):
    grad_W[k, c] += Σ_t Xt[k, t] G[c, t],  grad_b[c] += Σ_t G[c, t].

    Four classes c at a time for every k, so each row of Xt is read once per four sums.
    """
    d, C = Xt.shape[0], G.shape[0]
    for c in range(C):
        g_b = 0.0
        for t in range(m):
            g_b += G[c, t]
        grad_b[c] += g_b
    for k in range(d):
        c = 0
        while c + 4 <= C:
            g0 = g1 = g2 = g3 = 0.0
            for t in range(m):   # g_c' = Σ_t Xt[k, t] G[c', t] for c' = c..c+3
                x = Xt[k, t]
                g0 += x * G[c, t]
                g1 += x * G[c + 1, t]
                g2 += x * G[c + 2, t]
                g3 += x * G[c + 3, t]
            grad_W[k, c] += g0
            grad_W[k, c + 1] += g1
            grad_W[k, c + 2] += g2
            grad_W[k, c + 3] += g3
            c += 4
        for c in range(c, C):   # the last C mod 4 classes
            g = 0.0
            for t in range(m):
                g += Xt[k, t] * G[c, t]
            grad_W[k, c] += g


@jit
def softmax_rows(X, y, W, b, start, stop, grad_W, grad_b):
    """Rows start..stop of softmax regression: add the gradient sums, return Σ_i -log p_i[y_i].

    Per block (t indexes its rows):
      Z[c, t] = b_c + Σ_k W[k, c] x_tk              logits
      δ[c, t] = softmax(Z[:, t])_c - [c = y_t]       ∂(-log p_t[y_t]) / ∂Z[c, t]
      grad_W += Σ_t x_t δ[:, t]ᵀ,  grad_b += Σ_t δ[:, t]
    """
    d, C = W.shape
    Xt = np.empty((d, BLOCK_ROWS))
    Z = np.empty((C, BLOCK_ROWS))
    scratch = np.empty((5, BLOCK_ROWS))
    loss = 0.0
    for i0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - i0)
        transpose_block(X, i0, m, Xt)
        dense_block(Xt, W, b, m, Z)
        loss += cross_entropy_block(Z, y, i0, m, scratch)   # Z becomes δ
        dense_grad_block(Xt, Z, m, grad_W, grad_b)
    return loss


@jit
def mlp_classifier_rows(X, y, W1, b1, W2, b2, start, stop, grad_W1, grad_b1, grad_W2, grad_b2):
    """Rows start..stop of Dense(h, relu) -> Dense(C) -> softmax: add the gradient sums, return
    Σ_i -log p_i[y_i].

    Per block (t indexes its rows):
      A[j, t] = relu(b1_j + Σ_k W1[k, j] x_tk)        hidden activations
      Z[c, t] = b2_c + Σ_j W2[j, c] A[j, t]           logits; δ2 = softmax - onehot as for softmax
      grad_W2 += Σ_t A[:, t] δ2[:, t]ᵀ,  grad_b2 += Σ_t δ2[:, t]
      δ1[j, t] = [A[j, t] > 0] Σ_c W2[j, c] δ2[c, t]  back through ReLU (relu'(0) = 0)
      grad_W1 += Σ_t x_t δ1[:, t]ᵀ,  grad_b1 += Σ_t δ1[:, t]
    """
    d, h = W1.shape
    C = W2.shape[1]
    Xt = np.empty((d, BLOCK_ROWS))
    A = np.empty((h, BLOCK_ROWS))
    Z = np.empty((C, BLOCK_ROWS))
    delta = np.empty((h, BLOCK_ROWS))
    no_bias = np.zeros(h)
    scratch = np.empty((5, BLOCK_ROWS))
    loss = 0.0
    for i0 in range(start, stop, BLOCK_ROWS):
        m = min(BLOCK_ROWS, stop - i0)
        transpose_block(X, i0, m, Xt)
        dense_block(Xt, W1, b1, m, A)
        for j in range(h):
            for t in range(m):
                z = A[j, t]
                A[j, t] = 0.0 if z <= 0.0 else z             # relu(z); a NaN stays NaN
        dense_block(A, W2, b2, m, Z)
        loss += cross_entropy_block(Z, y, i0, m, scratch)   # Z becomes δ2
        dense_grad_block(A, Z, m, grad_W2, grad_b2)
        dense_block(Z, W2.T, no_bias, m, delta)             # δ1 before the ReLU mask: W2 δ2
        for j in range(h):
            for t in range(m):
                delta[j, t] = delta[j, t] if A[j, t] > 0.0 else 0.0
        dense_grad_block(Xt, delta, m, grad_W1, grad_b1)
    return loss


@jit
def classifier_partial(n, num_params):
    """The chunk bounds for n rows, and zeroed partial sums (num_chunks, num_params + 1)."""
    bounds = chunk_bounds(n)
    return bounds, np.zeros((bounds.shape[0] - 1, num_params + 1))


@jit
def classifier_finish(n, partial):
    """Add the chunks' partial sums [Σ gradient (P), Σ loss] in chunk order and divide by n:
    (loss, gradient (P,)), the gradient laid out like the model's flat theta."""
    P = partial.shape[1] - 1
    total = np.zeros(P + 1)
    for c in range(partial.shape[0]):
        for p in range(P + 1):
            total[p] += partial[c, p]
    return total[P] / n, total[:P] / n


@jit
def softmax_chunk(X, y, W, b, bounds, c, partial):
    """Chunk c's partial sums into row c of partial (num_chunks, d*C + C + 1):
    [Σ ∂/∂W (row by row), Σ ∂/∂b, Σ loss]."""
    d, C = W.shape
    row = partial[c]
    row[d * C + C] = softmax_rows(X, y, W, b, bounds[c], bounds[c + 1],
                                  row[:d * C].reshape((d, C)), row[d * C:d * C + C])


@jit
def softmax_finish(n, partial, W):
    """(loss, grad_W, grad_b) from the chunks' partial sums."""
    d, C = W.shape
    loss, grad = classifier_finish(n, partial)
    return loss, grad[:d * C].reshape((d, C)), grad[d * C:]


@jit_entry
def softmax_loss_grad_serial(X, y, W, b):
    """(loss, grad_W (d, C), grad_b (C,)) of the mean cross-entropy of softmax(X W + b), one
    thread."""
    bounds, partial = classifier_partial(X.shape[0], W.size + b.size)
    for c in range(partial.shape[0]):
        softmax_chunk(X, y, W, b, bounds, c, partial)
    return softmax_finish(X.shape[0], partial, W)


@jit_parallel
def softmax_loss_grad_parallel(X, y, W, b):
    """Same result as `softmax_loss_grad_serial`, bit for bit, with the chunks spread over
    threads."""
    bounds, partial = classifier_partial(X.shape[0], W.size + b.size)
    for c in prange(partial.shape[0]):
        softmax_chunk(X, y, W, b, bounds, c, partial)
    return softmax_finish(X.shape[0], partial, W)


@jit
def mlp_classifier_chunk(X, y, W1, b1, W2, b2, bounds, c, partial):
    """Chunk c's partial sums into row c of partial (num_chunks, P + 1), P = d h + h + h C + C:
    [Σ ∂/∂W1, Σ ∂/∂b1, Σ ∂/∂W2, Σ ∂/∂b2 (matrices row by row), Σ loss]."""
    d, h = W1.shape
    C = W2.shape[1]
    row = partial[c]
    o = d * h + h   # where W2's gradient starts
    row[o + h * C + C] = mlp_classifier_rows(
        X, y, W1, b1, W2, b2, bounds[c], bounds[c + 1], row[:d * h].reshape((d, h)),
        row[d * h:o], row[o:o + h * C].reshape((h, C)), row[o + h * C:o + h * C + C])


@jit
def mlp_classifier_finish(n, partial, W1, W2):
    """(loss, grad_W1, grad_b1, grad_W2, grad_b2) from the chunks' partial sums."""
    d, h = W1.shape
    C = W2.shape[1]
    o = d * h + h
    loss, grad = classifier_finish(n, partial)
    return (loss, grad[:d * h].reshape((d, h)), grad[d * h:o], grad[o:o + h * C].reshape((h, C)),
            grad[o + h * C:])


@jit_entry
def mlp_classifier_loss_grad_serial(X, y, W1, b1, W2, b2):
    """(loss, grad_W1, grad_b1, grad_W2, grad_b2) of the mean cross-entropy, one thread."""
    bounds, partial = classifier_partial(X.shape[0], W1.size + b1.size + W2.size + b2.size)
    for c in range(partial.shape[0]):
        mlp_classifier_chunk(X, y, W1, b1, W2, b2, bounds, c, partial)
    return mlp_classifier_finish(X.shape[0], partial, W1, W2)


@jit_parallel
def mlp_classifier_loss_grad_parallel(X, y, W1, b1, W2, b2):
    """Same result as `mlp_classifier_loss_grad_serial`, bit for bit, with the chunks spread over
    threads."""
    bounds, partial = classifier_partial(X.shape[0], W1.size + b1.size + W2.size + b2.size)
    for c in prange(partial.shape[0]):
        mlp_classifier_chunk(X, y, W1, b1, W2, b2, bounds, c, partial)
    return mlp_classifier_finish(X.shape[0], partial, W1, W2)
