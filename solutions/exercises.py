"""Reference solutions to the notebook exercises, one per checker in `fedlite.checks`.

Written the way a student would: plain numpy, one formula per line.  For teachers, e.g.

    from fedlite import checks
    checks.linear_gradient(linear_gradient)   # prints "✔ Correct: ..."
"""
import numpy as np


def linear_gradient(X, y, w, b):
    """Gradient of L = 1/(2n) Σ_i (x_i·w + b - y_i)²: returns (grad_w, grad_b)."""
    n = X.shape[0]
    r = X @ w + b - y          # residuals, prediction minus target, shape (n,)
    grad_w = X.T @ r / n       # shape (d,), like w
    grad_b = r.sum() / n
    return grad_w, grad_b


def linear_loss(X, y, w, b):
    """L = 1/(2n) Σ_i (x_i·w + b - y_i)², a single number."""
    n = X.shape[0]
    r = X @ w + b - y
    return (r ** 2).sum() / (2 * n)


def gradient_descent_step(w, b, grad_w, grad_b, lr):
    """One step downhill; new arrays, so the caller's w is left untouched."""
    w_new = w - lr * grad_w
    b_new = b - lr * grad_b
    return w_new, b_new


def divergence_threshold(X):
    """Largest stable learning rate 2 / λ_max(H), H = [X, 1]ᵀ [X, 1] / n (the Hessian in w and b)."""
    n = X.shape[0]
    A = np.column_stack([X, np.ones(n)])   # the column of ones is the bias
    H = A.T @ A / n
    lambda_max = np.linalg.eigvalsh(H).max()
    return 2 / lambda_max


def weighted_average(updates, num_examples):
    """FedAvg's aggregate Σ_k n_k u_k / Σ_k n_k: participants with more data count more."""
    total = sum(num_examples)
    aggregate = np.zeros_like(updates[0], dtype=float)
    for u, n in zip(updates, num_examples):
        aggregate = aggregate + n / total * u
    return aggregate


def mlp_gradient(X, y, W1, b1, W2, b2):
    """Gradients of L = 1/(2n) Σ_i (y_hat_i - y_i)² for y_hat = relu(X W1 + b1) W2 + b2."""
    n = X.shape[0]
    Z = X @ W1 + b1                      # (n, h)
    A = np.maximum(Z, 0)                 # relu
    r = A @ W2 + b2 - y                  # (n,)
    grad_W2 = A.T @ r / n                # (h,)
    grad_b2 = r.sum() / n
    delta = np.outer(r, W2) * (Z > 0)    # back through the output layer and the relu, (n, h)
    grad_W1 = X.T @ delta / n            # (d, h)
    grad_b1 = delta.sum(axis=0) / n      # (h,)
    return grad_W1, grad_b1, grad_W2, grad_b2


def fedprox_step(w, grad, w_server, lr, mu):
    """One local SGD step on f(w) + mu/2 ||w - w_server||²."""
    return w - lr * (grad + mu * (w - w_server))


def bytes_per_round(num_params, num_selected, algorithm):
    """(bytes_up, bytes_down) in one round, parameters sent as float64 (8 bytes each)."""
    if algorithm not in ("fedsgd", "fedavg"):
        raise ValueError(f"algorithm must be 'fedsgd' or 'fedavg'; got {algorithm!r}")
    bytes_per_value = 8
    # fedsgd uploads a gradient, fedavg the weights: num_params values either way
    bytes_up = num_selected * num_params * bytes_per_value
    bytes_down = num_selected * num_params * bytes_per_value   # the model, to each participant
    return bytes_up, bytes_down
