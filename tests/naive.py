"""The slowest obviously-correct versions of fedlite's losses and gradients: a second oracle.

Every sum is an explicit Python loop over examples, written as the formula reads, with no
matrix products, so a mistake in `fedlite.reference`'s vectorised numpy (a wrong transpose, a
missing 1/n) cannot be repeated here.  Only for small inputs: it is very slow.

    L = 1/(2n) Σ_i (y_hat_i - y_i)²,   r_i = y_hat_i - y_i

and, for the classifiers at the end, L = -(1/n) Σ_i log softmax(z_i)[y_i] (z_i the logits).
"""
import math

import numpy as np


def linear_loss_grad(X, y, w, b):
    """(loss, grad_w, grad_b) of y_hat_i = Σ_j w_j x_ij + b, one example at a time.

    ∂L/∂w_j = (1/n) Σ_i r_i x_ij,  ∂L/∂b = (1/n) Σ_i r_i.
    """
    n, d = len(X), len(w)
    loss, grad_w, grad_b = 0.0, [0.0] * d, 0.0
    for i in range(n):
        y_hat = b
        for j in range(d):
            y_hat += w[j] * X[i][j]
        r = y_hat - y[i]
        loss += r * r / (2 * n)
        for j in range(d):
            grad_w[j] += r * X[i][j] / n
        grad_b += r / n
    return loss, np.array(grad_w), grad_b


def relu(z):
    return z if z > 0 else 0.0


def relu_grad(z):
    """relu'(z), with relu'(0) = 0."""
    return 1.0 if z > 0 else 0.0


def mlp_loss_grad(X, y, W1, b1, W2, b2):
    """(loss, (grad_W1, grad_b1, grad_W2, grad_b2)) of y_hat = relu(X W1 + b1) W2 + b2, one example at a time.

    For example i:  z_j = Σ_k x_ik W1_kj + b1_j,  a_j = relu(z_j),  y_hat = Σ_j a_j W2_j + b2.
    ∂L/∂W2_j = (1/n) Σ_i r_i a_j,  ∂L/∂b2 = (1/n) Σ_i r_i,
    ∂L/∂b1_j = (1/n) Σ_i r_i W2_j relu'(z_j),  ∂L/∂W1_kj = (1/n) Σ_i r_i W2_j relu'(z_j) x_ik.
    """
    n, d, h = len(X), len(W1), len(W2)
    loss = 0.0
    grad_W1 = [[0.0] * h for _ in range(d)]
    grad_b1, grad_W2, grad_b2 = [0.0] * h, [0.0] * h, 0.0
    for i in range(n):
        z = [b1[j] + sum(X[i][k] * W1[k][j] for k in range(d)) for j in range(h)]
        a = [relu(z_j) for z_j in z]
        y_hat = sum(a[j] * W2[j] for j in range(h)) + b2
        r = y_hat - y[i]
        loss += r * r / (2 * n)
        grad_b2 += r / n
        for j in range(h):
            grad_W2[j] += r * a[j] / n
            delta = r * W2[j] * relu_grad(z[j])
            grad_b1[j] += delta / n
            for k in range(d):
                grad_W1[k][j] += delta * X[i][k] / n
    return loss, (np.array(grad_W1), np.array(grad_b1), np.array(grad_W2), grad_b2)


# ----------------------------------------------------------------------------- classification
def cross_entropy(z, label):
    """-log softmax(z)[label] for one example's logits z (a list), and softmax(z) - onehot(label).

    Shifting every logit by max(z) changes neither: it only keeps exp from overflowing.
    """
    top = max(z)
    exps = [math.exp(z_c - top) for z_c in z]
    total = sum(exps)
    loss = top + math.log(total) - z[label]
    delta = [e / total - (1.0 if c == label else 0.0) for c, e in enumerate(exps)]
    return loss, delta


def softmax_loss_grad(X, y, W, b):
    """(loss, (grad_W, grad_b)) of softmax regression, one example at a time.

    z_c = Σ_j x_ij W_jc + b_c,  L = (1/n) Σ_i -log softmax(z)_{y_i},
    ∂L/∂W_jc = (1/n) Σ_i (p_c - [c = y_i]) x_ij,  ∂L/∂b_c = (1/n) Σ_i (p_c - [c = y_i]).
    """
    n, d, C = len(X), len(W), len(b)
    loss = 0.0
    grad_W = [[0.0] * C for _ in range(d)]
    grad_b = [0.0] * C
    for i in range(n):
        z = [b[c] + sum(X[i][j] * W[j][c] for j in range(d)) for c in range(C)]
        loss_i, delta = cross_entropy(z, int(y[i]))
        loss += loss_i / n
        for c in range(C):
            grad_b[c] += delta[c] / n
            for j in range(d):
                grad_W[j][c] += delta[c] * X[i][j] / n
    return loss, (np.array(grad_W), np.array(grad_b))


def mlp_classifier_loss_grad(X, y, W1, b1, W2, b2):
    """(loss, (grad_W1, grad_b1, grad_W2, grad_b2)) of Dense(h, relu) -> Dense(C) -> softmax,
    one example at a time.

    z_j = Σ_k x_ik W1_kj + b1_j,  a_j = relu(z_j),  o_c = Σ_j a_j W2_jc + b2_c,
    g_c = p_c - [c = y_i] (p = softmax(o)),
    ∂L/∂W2_jc = (1/n) Σ_i a_j g_c,  ∂L/∂b2_c = (1/n) Σ_i g_c,
    ∂L/∂b1_j = (1/n) Σ_i relu'(z_j) Σ_c W2_jc g_c,  ∂L/∂W1_kj = that times x_ik.
    """
    n, d, h, C = len(X), len(W1), len(b1), len(b2)
    loss = 0.0
    grad_W1 = [[0.0] * h for _ in range(d)]
    grad_W2 = [[0.0] * C for _ in range(h)]
    grad_b1, grad_b2 = [0.0] * h, [0.0] * C
    for i in range(n):
        z = [b1[j] + sum(X[i][k] * W1[k][j] for k in range(d)) for j in range(h)]
        a = [relu(z_j) for z_j in z]
        o = [b2[c] + sum(a[j] * W2[j][c] for j in range(h)) for c in range(C)]
        loss_i, g = cross_entropy(o, int(y[i]))
        loss += loss_i / n
        for c in range(C):
            grad_b2[c] += g[c] / n
        for j in range(h):
            for c in range(C):
                grad_W2[j][c] += a[j] * g[c] / n
            delta = relu_grad(z[j]) * sum(W2[j][c] * g[c] for c in range(C))
            grad_b1[j] += delta / n
            for k in range(d):
                grad_W1[k][j] += delta * X[i][k] / n
    return loss, (np.array(grad_W1), np.array(grad_b1), np.array(grad_W2), np.array(grad_b2))
