"""The slowest obviously-correct versions of fedlite's losses and gradients: a second oracle.

Every sum is an explicit Python loop over examples, written as the formula reads, with no
matrix products, so a mistake in `fedlite.reference`'s vectorised numpy (a wrong transpose, a
missing 1/n) cannot be repeated here.  Only for small inputs: it is very slow.

    L = 1/(2n) Σ_i (y_hat_i - y_i)²,   r_i = y_hat_i - y_i
"""
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
