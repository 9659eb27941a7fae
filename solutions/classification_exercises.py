"""Reference solutions to the exercises of notebook 08, one per checker in
`fedlite.checks_classification`.  Written the way a student would: plain numpy.

    from fedlite import checks_classification as checks
    checks.softmax_gradient(softmax_gradient)   # prints "✔ Correct: ..."
"""
import numpy as np


def softmax_gradient(X, y, W, b):
    """∂L/∂Z = (softmax(Z) - onehot(y)) / n, then the chain rule through Z = X W + b."""
    n, C = X.shape[0], W.shape[1]
    Z = X @ W + b
    Z = Z - Z.max(axis=1, keepdims=True)          # same softmax, no overflow
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    G = (P - np.eye(C)[y]) / n
    return X.T @ G, G.sum(axis=0)


def dirichlet_counts(class_sizes, proportions):
    """Class c's n_c rows in the proportions proportions[:, c]: round down, then one more row
    each to the largest fractional parts until the column adds up to n_c."""
    exact = proportions * class_sizes
    counts = np.floor(exact).astype(int)
    for c in range(len(class_sizes)):
        missing = class_sizes[c] - counts[:, c].sum()
        largest = np.argsort(counts[:, c] - exact[:, c])[:missing]
        counts[largest, c] += 1
    return counts


def accuracy(X, y, W, b):
    """The fraction of examples whose largest logit is at their label."""
    return np.mean(np.argmax(X @ W + b, axis=1) == y)
