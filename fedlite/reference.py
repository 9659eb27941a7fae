"""The maths of fedlite in plain numpy: the version to read first, and the oracle the tests trust.

Shapes: X (n, d) rows are examples, y (n,), w (d,), b scalar; for the MLP W1 (d, h), b1 (h,),
W2 (h,), b2 scalar.  Both models use the mean squared loss with the article's factor 1/2:

    L = 1/(2n) Σ_i (y_hat_i - y_i)²

(the article writes the sum 1/2 Σ_i (y_i - y_hat_i)²; dividing by n keeps the same learning
rate usable whatever the number of rows).  No input checking here: see `fedlite.models`.
"""
from __future__ import annotations

import numpy as np


def linear_predict(X, w, b):
    """y_hat = X w + b, shape (n,)."""
    return X @ w + b


def linear_loss_grad(X, y, w, b):
    """Loss and gradient of the linear model: returns (loss, grad_w (d,), grad_b float).

    r = X w + b - y,  L = r·r / (2n),  ∂L/∂w = Xᵀ r / n,  ∂L/∂b = Σ r / n.
    """
    n = X.shape[0]
    r = X @ w + b - y
    return float(r @ r) / (2 * n), X.T @ r / n, float(r.sum()) / n


def mlp_predict(X, W1, b1, W2, b2):
    """y_hat = relu(X W1 + b1) W2 + b2, shape (n,)."""
    return np.maximum(X @ W1 + b1, 0.0) @ W2 + b2


def mlp_loss_grad(X, y, W1, b1, W2, b2):
    """Loss and gradients of the one-hidden-layer ReLU network (Keras Dense(h, relu) -> Dense(1)).

    Forward: Z = X W1 + b1 (n, h), A = relu(Z), y_hat = A W2 + b2, r = y_hat - y.
    Backward: ∂L/∂W2 = Aᵀ r / n, ∂L/∂b2 = Σ r / n, δ = (r W2ᵀ) ⊙ [Z > 0] (n, h),
    ∂L/∂W1 = Xᵀ δ / n, ∂L/∂b1 = Σ_i δ_i / n.  relu'(0) is taken as 0.
    Returns (loss, (grad_W1, grad_b1, grad_W2, grad_b2)).
    """
    n = X.shape[0]
    Z = X @ W1 + b1
    A = np.maximum(Z, 0.0)
    r = A @ W2 + b2 - y
    delta = np.outer(r, W2) * (Z > 0)
    grads = (X.T @ delta / n, delta.sum(axis=0) / n, A.T @ r / n, float(r.sum()) / n)
    return float(r @ r) / (2 * n), grads
