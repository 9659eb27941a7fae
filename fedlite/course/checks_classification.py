"""Exercise checkers for classification under label skew (notebook 08).

Same contract as `fedlite.checks`: `checks_classification.softmax_gradient(my_fn)` runs your
function on fixed cases (the same on every run) and on fresh random ones, prints
"✔ Correct: ..." or "✘ Not yet: ..." naming the usual mistake when your answer fits it on every
case, returns a `CheckResult` (true when right) and never raises, whatever your function does.
An answer that calls fedlite's own softmax gradient, Dirichlet split or accuracy is told so,
and does not count.
"""
from __future__ import annotations

import numpy as np

from ._checking import RAISES, CheckResult, Exercise, decimals

__all__ = ["CheckResult", "accuracy", "dirichlet_counts", "softmax_gradient"]

SEED = 0  # the fixed cases are drawn with this seed
BIG_LOGIT = 800.0  # exp(800) overflows float64 (> 1.8e308): a softmax must subtract the max


# -------------------------------------------------------------- the softmax cross-entropy gradient

def _softmax(Z, axis=1):
    """softmax along `axis`, stable: exp(z - max z) / Σ exp(z - max z)."""
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


def _one_hot(y, C):
    return np.eye(C)[np.asarray(y, dtype=np.int64)]


def _classifier_case(rng, n, d, C, big=False):
    """dict(X, y, W, b) with labels 0..C-1; big: every logit near BIG_LOGIT."""
    X, W = rng.normal(size=(n, d)), rng.normal(size=(d, C))
    b = rng.normal(size=C) + (BIG_LOGIT if big else 0.0)
    return dict(X=X, y=rng.integers(0, C, size=n), W=W, b=b)


def _gradient_cases():
    rng = np.random.default_rng(SEED)
    cases = [(f"X of shape {(n, d)} and {C} classes", _classifier_case(rng, n, d, C))
             for n, d, C in [(6, 3, 4), (4, 4, 3), (5, 2, 3)]]   # n = d shows X vs Xᵀ
    cases.append((f"logits near {BIG_LOGIT:g} (X of shape (3, 2), 3 classes)",
                  _classifier_case(rng, 3, 2, 3, big=True)))
    return cases


def _random_classifier(rng):
    n, d, C = int(rng.integers(2, 6)), int(rng.integers(1, 4)), int(rng.integers(2, 5))
    return (f"a fresh random case, X of shape {(n, d)} and {C} classes",
            dict(X=decimals(rng, -2, 2, (n, d)), y=rng.integers(0, C, size=n),
                 W=decimals(rng, -2, 2, (d, C)), b=decimals(rng, -2, 2, C)))


def _gradient_answers(X, y, W, b):
    (n, d), C = X.shape, W.shape[1]
    Z = X @ W + b
    P, Y = _softmax(Z), _one_hot(y, C)

    def grads(G):
        """(grad_W, grad_b) for ∂L/∂Z = G (n, C)."""
        return X.T @ G, G.sum(axis=0)

    right = grads((P - Y) / n)
    naive = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)   # overflows for large logits
    return right, [
        (grads((Y - P) / n), "the sign is flipped: ∂L/∂z is the probabilities minus the "
                             "one-hot label, not the other way round."),
        (grads(P - Y), "n times too big: you summed over the examples. Divide by n (the loss "
                       "is a mean)."),
        (grads((P - Y) / C), "you divided by C, the number of classes; the mean is over the n "
                             "examples."),
        (grads(P / n), "the one-hot label is missing: you kept only the derivative of the "
                       "log-sum-exp part of the loss."),
        (grads(-Y / n), "the softmax part is missing: that is only the derivative of -z[y]; "
                        "the log-sum-exp part adds the probabilities."),
        (grads((Z - Y) / n), "you used the logits z where the probabilities softmax(z) "
                             "belong."),
        (grads((1 / (1 + np.exp(-Z)) - Y) / n),
         "that is a sigmoid for each class on its own; the softmax normalises over the "
         "classes, so that each row of probabilities sums to 1."),
        (grads((_softmax(Z, axis=0) - Y) / n),
         "the softmax runs over the wrong axis: each example's probabilities (a row) must sum "
         "to 1 over the classes (axis=1)."),
        (grads((naive - Y) / n), "your softmax overflows for large logits (exp(800) is inf): "
                                 "subtract each row's largest logit before exp; that leaves "
                                 "softmax(z) unchanged."),
        ((X @ ((P - Y) / n), right[1]) if n == d else RAISES,  # X G has Xᵀ G's shape if n = d
         "you multiplied by X instead of its transpose: X.T @ G sums over the examples."),
        ((right[0], np.zeros(C)), "the bias gradient is missing: it is the sum over the examples "
                                  "of ∂L/∂z, one value per class."),
    ], {("grad_W", (n, C)): "That is ∂L/∂Z, one row per example: multiply by X.T to get "
                            "∂L/∂W, shaped like W.",
        ("grad_b", ()): "grad_b has one value per class: sum ∂L/∂Z over the examples (axis=0).",
        ("grad_b", (n,)): "That is one value per example: sum ∂L/∂Z over the examples (axis=0), "
                          "one value per class."}


LIBRARY_SOFTMAX = ("fedlite.models.softmax_loss_grad", "fedlite.reference.softmax_loss_grad",
                   "fedlite.reference.cross_entropy_loss_grad", "fedlite.reference.log_softmax",
                   "fedlite.reference.softmax_probabilities",
                   "fedlite.kernels.softmax_loss_grad_serial",
                   "fedlite.kernels.softmax_loss_grad_parallel",
                   "fedlite.core.model.SoftmaxModel.loss_grad",
                   "fedlite.core.model.Classifier.probabilities")

_SOFTMAX_GRADIENT = Exercise(
    outputs=(("grad_W", "W"), ("grad_b", "b")),
    cases=_gradient_cases, random_case=_random_classifier, answers=_gradient_answers,
    library=LIBRARY_SOFTMAX,
    praise="The same softmax(z) - onehot(y) drives every classifier's last layer.",
    nudge='Go back to "3. Softmax regression and its gradient" in notebook 08: compute the '
          'probabilities first, then the signal for each logit, then compare each product\'s '
          'shape with W and b.')


def softmax_gradient(fn):
    """Check fn(X, y, W, b) -> (grad_W, grad_b), the gradient of the mean cross-entropy of
    p = softmax(X W + b), labels y in 0..C-1."""
    return _SOFTMAX_GRADIENT.check(fn)


# ------------------------------------------------------------------ the Dirichlet label-skew split

def _largest_remainder(exact):
    """Round each column of exact (K, C) down, then give each column's missing units to its
    largest fractional parts."""
    counts = np.floor(exact)
    for c in range(exact.shape[1]):
        missing = int(round(exact[:, c].sum() - counts[:, c].sum()))
        order = np.argsort(-(exact[:, c] - counts[:, c]), kind="stable")
        counts[order[:missing], c] += 1
    return counts


def _ambiguous(class_sizes, proportions):
    """True if rounding could go two ways: a share within 1e-6 of a whole number, or two
    fractional parts within 1e-6 at the edge between rounded up and rounded down."""
    exact = proportions * class_sizes
    fractions = exact - np.floor(exact)
    if np.any(np.minimum(fractions, 1 - fractions) < 1e-6):
        return True
    for c in range(exact.shape[1]):
        missing = int(round(exact[:, c].sum() - np.floor(exact[:, c]).sum()))
        ranked = np.sort(fractions[:, c])[::-1]
        if 0 < missing < len(ranked) and ranked[missing - 1] - ranked[missing] < 1e-6:
            return True
    return False


def _proportions(rng, K, C):
    """(K, C), each column a Dirichlet draw over the K participants, in thousandths that add
    up to exactly 1000."""
    columns = []
    for _ in range(C):
        thousandths = np.floor(rng.dirichlet(np.ones(K)) * 1000).astype(np.int64)
        thousandths[np.argmax(thousandths)] += 1000 - thousandths.sum()
        columns.append(thousandths / 1000)
    return np.column_stack(columns)


def _split_case(rng, K, C, low, high):
    while True:
        class_sizes = rng.integers(low, high + 1, size=C)
        proportions = _proportions(rng, K, C)
        if not _ambiguous(class_sizes, proportions):
            return dict(class_sizes=class_sizes, proportions=proportions)


def _split_cases():
    rng = np.random.default_rng(SEED)
    return [(f"{K} participants, {C} classes", _split_case(rng, K, C, 5, 30))
            for K, C in [(4, 3), (5, 2), (3, 4)]]


def _random_split(rng):
    K, C = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    return (f"a fresh random case, {K} participants and {C} classes",
            _split_case(rng, K, C, 3, 20))


def _split_answers(class_sizes, proportions):
    K, C = proportions.shape
    exact = proportions * class_sizes
    down = np.floor(exact)
    fractions = exact - down
    missing = np.rint(class_sizes - down.sum(axis=0)).astype(np.int64)

    def give_to(order_of_column):
        counts = down.copy()
        for c in range(C):
            counts[order_of_column(c)[:missing[c]], c] += 1
        return counts

    leftover = ("Give the rows left over, one each, to the participants with the largest "
                "fractional parts.")
    return _largest_remainder(exact), [
        (np.round(exact), f"np.round does not keep each class's total: the counts of class c "
                          f"must add up to its n_c rows. Round down first. {leftover}"),
        (down, f"rows are left over: after rounding down, a class's counts add up to less "
               f"than its n_c rows. {leftover}"),
        (np.ceil(exact), "too many rows: rounding up deals more rows of a class than it has. "
                         "Round down, then deal the rows left over."),
        (give_to(lambda c: np.argsort(fractions[:, c], kind="stable")),
         "the rows left over go to the largest fractional parts, not the smallest."),
        (give_to(lambda c: np.argsort(-proportions[:, c], kind="stable")),
         "the rows left over go to the largest fractional parts (what rounding down took "
         "away), not to the largest proportions."),
        (give_to(lambda c: np.arange(K)),
         "the rows left over go to the largest fractional parts, not to the first "
         "participants."),
        (_largest_remainder(proportions * class_sizes.sum()),
         "each class deals its own rows: multiply class c's column by n_c, its number of "
         "rows, not by the total N."),
    ], {("counts", (C, K)): "That is the transpose: one row per participant, one column per "
                            "class, like proportions."}


_DIRICHLET_COUNTS = Exercise(
    outputs=(("counts", "proportions"),),
    cases=_split_cases, random_case=_random_split, answers=_split_answers,
    library=("fedlite.partition.split", "fedlite.partition._dirichlet_owner",
             "fedlite.partition._round_to_total"),
    praise="These are the counts fedlite.split(..., scheme='dirichlet') deals.",
    nudge='See "2. Label skew: a Dirichlet over the participants" in notebook 08: how many '
          'rows of one class each participant gets, and what they must add up to.')


def dirichlet_counts(fn):
    """Check fn(class_sizes, proportions) -> counts (K, C): class c's n_c rows dealt to the K
    participants in the proportions proportions[:, c], rounded so that they add up to n_c
    (rounded down, the rows left over to the largest fractional parts)."""
    return _DIRICHLET_COUNTS.check(fn)


# ---------------------------------------------------------------------------- the accuracy

def _accuracy_cases():
    rng = np.random.default_rng(SEED)
    return [(f"X of shape {(n, d)} and {C} classes", _classifier_case(rng, n, d, C))
            for n, d, C in [(8, 3, 4), (3, 2, 3), (6, 2, 3)]]   # n = C shows the wrong axis


def _accuracy_answers(X, y, W, b):
    n, C = X.shape[0], W.shape[1]
    Z = X @ W + b
    right = np.mean(np.argmax(Z, axis=1) == y)
    return right, [
        (1 - right, "that is the error rate, the fraction of wrong predictions; accuracy is "
                    "the fraction of right ones."),
        (n * right, "that is the number of right predictions; divide by n for the fraction."),
        (100 * right, "that is a percentage; return the fraction, between 0 and 1."),
        (np.mean(np.argmin(Z, axis=1) == y), "the prediction is the class with the LARGEST "
                                             "logit (argmax), not the smallest."),
        (np.mean(np.argmax(X @ W, axis=1) == y), "the bias is missing from the logits: use "
                                                 "z = X W + b."),
        (np.mean(np.argmax(Z, axis=0) == y) if n == C else RAISES,
         "argmax runs over the wrong axis: each example's prediction is the largest of its own "
         "logits (a row, axis=1)."),
        (np.mean(_softmax(Z)[np.arange(n), y]),
         "that is the mean probability of the right class; accuracy counts how often the "
         "most likely class (argmax) is the label."),
    ], {("accuracy", (n,)): "That is one value per example: take their mean."}


_ACCURACY = Exercise(
    outputs=(("accuracy", None),),
    cases=_accuracy_cases, random_case=_random_classifier, answers=_accuracy_answers,
    library=("fedlite.reference.accuracy", "fedlite.reference.softmax_predict",
             "fedlite.core.model.Classifier.accuracy", "fedlite.core.model.Classifier.predict",
             "fedlite.simulation._correct"),
    praise="History.test_accuracy is this number for the global model after every round.",
    nudge='See "From probabilities to a prediction" in notebook 08: which class the model '
          'predicts for each example, and what fraction to count.')


def accuracy(fn):
    """Check fn(X, y, W, b) -> the accuracy of p = softmax(X W + b) on labels y: the fraction
    of examples whose most likely class is their label."""
    return _ACCURACY.check(fn)


_EXERCISES = {"softmax_gradient": _SOFTMAX_GRADIENT, "dirichlet_counts": _DIRICHLET_COUNTS,
              "accuracy": _ACCURACY}
