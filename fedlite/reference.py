"""The maths of fedlite in plain numpy: the version to read first, and the oracle the tests trust.

Shapes: X (n, d) rows are examples, y (n,), w (d,), b scalar; for the MLP W1 (d, h), b1 (h,),
W2 (h,), b2 scalar.  Both models use the mean squared loss with the article's factor 1/2:

    L = 1/(2n) Σ_i (y_hat_i - y_i)²

(the article writes the sum 1/2 Σ_i (y_i - y_hat_i)²; dividing by n keeps the same learning
rate usable whatever the number of rows).  The classifiers (softmax regression and the MLP
classifier, at the end) use the mean cross-entropy instead.  No input checking here: see
`fedlite.models`.
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


# ----------------------------------------------------------------------------- classification
# Labels y are integers 0..C-1 (int or integral float arrays); W (d, C), b (C,).  The loss is
# the mean cross-entropy  L = -(1/n) Σ_i log p_i[y_i],  p_i = softmax(z_i),  z_i the logits.

def log_softmax(Z):
    """log softmax(Z) row by row, stable: z - max(z) - log Σ_c exp(z_c - max(z)) (no overflow)."""
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_loss_grad(Z, y):
    """Mean cross-entropy of logits Z (n, C) and its gradient ∂L/∂Z = (softmax(Z) - onehot(y)) / n.
    """
    n = Z.shape[0]
    rows, labels = np.arange(n), np.asarray(y).astype(np.intp)
    log_p = log_softmax(Z)
    delta = np.exp(log_p)
    delta[rows, labels] -= 1.0
    return float(-log_p[rows, labels].sum()) / n, delta / n


def softmax_probabilities(X, W, b):
    """p = softmax(X W + b), shape (n, C): each row sums to 1."""
    return np.exp(log_softmax(X @ W + b))


def softmax_predict(X, W, b):
    """The most likely class of each row, argmax_c (X W + b)_c, shape (n,) of int."""
    return np.argmax(X @ W + b, axis=1)


def softmax_loss_grad(X, y, W, b):
    """Loss and gradients of multinomial logistic regression (Keras: Dense(C) -> softmax).

    Z = X W + b (n, C),  L = -(1/n) Σ_i log softmax(z_i)[y_i],
    G = ∂L/∂Z = (softmax(Z) - onehot(y)) / n,  ∂L/∂W = Xᵀ G,  ∂L/∂b = Σ_i G_i.
    Returns (loss, (grad_W (d, C), grad_b (C,))).
    """
    loss, G = cross_entropy_loss_grad(X @ W + b, y)
    return loss, (X.T @ G, G.sum(axis=0))


def mlp_classifier_logits(X, W1, b1, W2, b2):
    """Z = relu(X W1 + b1) W2 + b2, shape (n, C)."""
    return np.maximum(X @ W1 + b1, 0.0) @ W2 + b2


def mlp_classifier_probabilities(X, W1, b1, W2, b2):
    """p = softmax(relu(X W1 + b1) W2 + b2), shape (n, C)."""
    return np.exp(log_softmax(mlp_classifier_logits(X, W1, b1, W2, b2)))


def mlp_classifier_predict(X, W1, b1, W2, b2):
    """The most likely class of each row, shape (n,) of int."""
    return np.argmax(mlp_classifier_logits(X, W1, b1, W2, b2), axis=1)


def mlp_classifier_loss_grad(X, y, W1, b1, W2, b2):
    """Loss and gradients of Dense(h, relu) -> Dense(C) -> softmax cross-entropy.

    Forward: Z1 = X W1 + b1 (n, h), A = relu(Z1), Z2 = A W2 + b2 (n, C), L as for softmax.
    Backward: G = (softmax(Z2) - onehot(y)) / n, ∂L/∂W2 = Aᵀ G, ∂L/∂b2 = Σ_i G_i,
    δ = (G W2ᵀ) ⊙ [Z1 > 0], ∂L/∂W1 = Xᵀ δ, ∂L/∂b1 = Σ_i δ_i.  relu'(0) is taken as 0.
    Returns (loss, (grad_W1, grad_b1, grad_W2, grad_b2)).
    """
    Z1 = X @ W1 + b1
    A = np.maximum(Z1, 0.0)
    loss, G = cross_entropy_loss_grad(A @ W2 + b2, y)
    delta = (G @ W2.T) * (Z1 > 0)
    return loss, (X.T @ delta, delta.sum(axis=0), A.T @ G, G.sum(axis=0))


def accuracy(y_pred, y):
    """The fraction of rows whose predicted class equals the label: mean(y_pred == y)."""
    return float(np.mean(np.asarray(y_pred) == np.asarray(y)))
