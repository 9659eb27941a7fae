"""Tests of fedlite.checks_classification (notebook 08): each checker accepts the reference
solution and other correct forms, names each typical mistake, survives stubs, crashes and
hostile answers, catches cheats (a table of the fixed answers, fedlite's own softmax gradient,
split or accuracy), and prints the same text every time for a wrong answer."""
import numpy as np
import pytest

import checker_contract as contract
from checker_contract import load_solutions

import fedlite
from fedlite import checks_classification as checks
from fedlite import reference
from fedlite.core.model import SoftmaxModel
from fedlite.partition import _round_to_total

solutions = load_solutions("classification_exercises.py")

CHECKERS = ["softmax_gradient", "dirichlet_counts", "accuracy"]


# ------------------------------------------------------------------ typical wrong answers

def softmax(Z, axis=1):
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


def gradient_from(signal, bias=True, transpose=True):
    """A softmax gradient whose ∂L/∂Z is signal(Z, Y, n, C)."""
    def fn(X, y, W, b):
        n, C = X.shape[0], W.shape[1]
        Z = X @ W + b
        G = signal(Z, np.eye(C)[y], n, C)
        grad_W = X.T @ G if transpose else X @ G
        return grad_W, G.sum(axis=0) if bias else np.zeros(C)
    return fn


grad_flipped = gradient_from(lambda Z, Y, n, C: (Y - softmax(Z)) / n)
grad_summed = gradient_from(lambda Z, Y, n, C: softmax(Z) - Y)
grad_by_classes = gradient_from(lambda Z, Y, n, C: (softmax(Z) - Y) / C)
grad_no_one_hot = gradient_from(lambda Z, Y, n, C: softmax(Z) / n)
grad_no_softmax = gradient_from(lambda Z, Y, n, C: -Y / n)
grad_logits = gradient_from(lambda Z, Y, n, C: (Z - Y) / n)
grad_sigmoid = gradient_from(lambda Z, Y, n, C: (1 / (1 + np.exp(-Z)) - Y) / n)
grad_wrong_axis = gradient_from(lambda Z, Y, n, C: (softmax(Z, axis=0) - Y) / n)
grad_overflows = gradient_from(
    lambda Z, Y, n, C: (np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True) - Y) / n)
grad_overflows_other_form = gradient_from(   # another naive softmax: exp(z) / Σ exp(z), per row
    lambda Z, Y, n, C: (np.array([np.exp(z) / sum(np.exp(z)) for z in Z]) - Y) / n)
grad_not_transposed = gradient_from(lambda Z, Y, n, C: (softmax(Z) - Y) / n, transpose=False)
grad_no_bias = gradient_from(lambda Z, Y, n, C: (softmax(Z) - Y) / n, bias=False)


def grad_in_place(X, y, W, b):
    grad_W, grad_b = solutions.softmax_gradient(X, y, W, b)
    W -= grad_W    # changes the caller's W
    return grad_W, grad_b


def grad_dZ_only(X, y, W, b):
    Z = X @ W + b
    G = (softmax(Z) - np.eye(W.shape[1])[y]) / X.shape[0]
    return G, G.sum(axis=0)


def counts_by(leftover_order, scale=None):
    """A Dirichlet deal: round down, then the rows left over to leftover_order(column data)."""
    def fn(class_sizes, proportions):
        exact = proportions * (class_sizes if scale is None else scale(class_sizes))
        counts = np.floor(exact)
        for c in range(exact.shape[1]):
            missing = int(round(exact[:, c].sum() - counts[:, c].sum()))
            order = leftover_order(exact[:, c] - counts[:, c], proportions[:, c])
            counts[order[:missing], c] += 1
        return counts
    return fn


counts_smallest = counts_by(lambda frac, p: np.argsort(frac))
counts_largest_share = counts_by(lambda frac, p: np.argsort(-p))
counts_first = counts_by(lambda frac, p: np.arange(len(p)))
counts_total = counts_by(lambda frac, p: np.argsort(-frac), scale=lambda sizes: sizes.sum())


def counts_rounded(class_sizes, proportions):
    return np.round(proportions * class_sizes)


def counts_floor(class_sizes, proportions):
    return np.floor(proportions * class_sizes).astype(int)


def counts_ceil(class_sizes, proportions):
    return np.ceil(proportions * class_sizes)


def counts_transposed(class_sizes, proportions):
    return solutions.dirichlet_counts(class_sizes, proportions).T


def accuracy_error_rate(X, y, W, b):
    return 1 - solutions.accuracy(X, y, W, b)


def accuracy_count(X, y, W, b):
    return np.sum(np.argmax(X @ W + b, axis=1) == y)


def accuracy_percent(X, y, W, b):
    return 100 * solutions.accuracy(X, y, W, b)


def accuracy_argmin(X, y, W, b):
    return np.mean(np.argmin(X @ W + b, axis=1) == y)


def accuracy_no_bias(X, y, W, b):
    return np.mean(np.argmax(X @ W, axis=1) == y)


def accuracy_wrong_axis(X, y, W, b):
    return np.mean(np.argmax(X @ W + b, axis=0) == y)


def accuracy_mean_probability(X, y, W, b):
    return np.mean(softmax(X @ W + b)[np.arange(len(y)), y])


def accuracy_per_example(X, y, W, b):
    return (np.argmax(X @ W + b, axis=1) == y).astype(float)


WRONG = [  # (checker, wrong answer, words the verdict must contain, words it must not)
    ("softmax_gradient", grad_flipped, ["sign is flipped"], []),
    ("softmax_gradient", grad_summed, ["n times too big"], []),
    ("softmax_gradient", grad_by_classes, ["divided by C"], []),
    ("softmax_gradient", grad_no_one_hot, ["one-hot label is missing"], []),
    ("softmax_gradient", grad_no_softmax, ["softmax part is missing"], []),
    ("softmax_gradient", grad_logits, ["used the logits"], []),
    ("softmax_gradient", grad_sigmoid, ["sigmoid"], []),
    ("softmax_gradient", grad_wrong_axis, ["wrong axis"], []),
    ("softmax_gradient", grad_overflows, ["overflows", "largest logit"], []),
    ("softmax_gradient", grad_overflows_other_form, ["overflows", "largest logit"], []),
    ("softmax_gradient", grad_not_transposed, ["instead of its transpose"], []),
    ("softmax_gradient", grad_no_bias, ["bias gradient is missing"], []),
    ("softmax_gradient", grad_in_place, ["in place", "caller's W"], []),
    ("softmax_gradient", grad_dZ_only, ["grad_W has shape (6, 4)", "multiply by X.T"], []),
    ("dirichlet_counts", counts_rounded, ["np.round", "add up"], []),
    ("dirichlet_counts", counts_floor, ["rows are left over"], []),
    ("dirichlet_counts", counts_ceil, ["too many rows"], []),
    ("dirichlet_counts", counts_smallest, ["not the smallest"], []),
    ("dirichlet_counts", counts_largest_share, ["not to the largest proportions"], []),
    ("dirichlet_counts", counts_first, ["not to the first participants"], []),
    ("dirichlet_counts", counts_total, ["not by the total N"], []),
    ("dirichlet_counts", counts_transposed, ["transpose"], []),
    ("accuracy", accuracy_error_rate, ["error rate"], []),
    ("accuracy", accuracy_count, ["number of right predictions"], []),
    ("accuracy", accuracy_percent, ["percentage"], []),
    ("accuracy", accuracy_argmin, ["LARGEST"], []),
    ("accuracy", accuracy_no_bias, ["bias is missing"], []),
    ("accuracy", accuracy_wrong_axis, ["wrong axis"], []),
    ("accuracy", accuracy_mean_probability, ["mean probability"], []),
    ("accuracy", accuracy_per_example, ["one value per example"], []),
]


# --------------------------------------------------------------------------------- tests

def grad_with_log_softmax(X, y, W, b):
    """Probabilities through a stable log-softmax, the one-hot by index."""
    n = X.shape[0]
    Z = X @ W + b
    log_p = Z - Z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    G = np.exp(log_p)
    G[np.arange(n), y] -= 1
    return (X.T @ G / n).tolist(), list(G.mean(axis=0))


def grad_by_loops(X, y, W, b):
    """Example by example, as the derivation reads."""
    grad_W, grad_b = np.zeros_like(W), np.zeros_like(b)
    for x_i, y_i in zip(X, y):
        z = x_i @ W + b
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        p[y_i] -= 1
        grad_W += np.outer(x_i, p) / len(y)
        grad_b += p / len(y)
    return grad_W, grad_b


def counts_with_round_to_total_by_hand(class_sizes, proportions):
    """Column by column, the leftover rows handed out in a while loop."""
    counts = np.zeros(proportions.shape, dtype=np.int64)
    for c, n_c in enumerate(class_sizes):
        share = proportions[:, c] * n_c
        column = np.floor(share).astype(np.int64)
        left = share - column
        while column.sum() < n_c:
            k = int(np.argmax(left))
            column[k] += 1
            left[k] = -1.0
        counts[:, c] = column
    return counts.tolist()


OTHER_FORMS = [  # correct answers written differently from the solution
    ("softmax_gradient", grad_with_log_softmax),
    ("softmax_gradient", grad_by_loops),
    ("dirichlet_counts", counts_with_round_to_total_by_hand),
    ("dirichlet_counts", lambda sizes, p: solutions.dirichlet_counts(sizes, p).astype(float)),
    ("accuracy", lambda X, y, W, b: float(np.count_nonzero(
        np.argmax(softmax(X @ W + b), axis=1) == y)) / len(y)),
    ("accuracy", lambda X, y, W, b: np.array([solutions.accuracy(X, y, W, b)])),
]


def grad_via_fedlite(X, y, W, b):
    return fedlite.softmax_loss_grad(X, y, W, b)[1]


def grad_via_model(X, y, W, b):
    model = SoftmaxModel(X.shape[1], W.shape[1])
    _, flat = model.loss_grad(X, y, model.pack((W, b)))
    return model.unpack(flat)


def grad_via_reference_log_softmax(X, y, W, b):
    G = np.exp(reference.log_softmax(X @ W + b)) - np.eye(W.shape[1])[y]
    return X.T @ G / len(y), G.mean(axis=0)


def counts_via_fedlite(class_sizes, proportions):
    return np.column_stack([_round_to_total(proportions[:, c], n_c)
                            for c, n_c in enumerate(class_sizes)])


def accuracy_via_reference(X, y, W, b):
    return reference.accuracy(reference.softmax_predict(X, W, b), y)


def accuracy_via_model(X, y, W, b):
    model = SoftmaxModel(X.shape[1], W.shape[1])
    return model.accuracy(X, y, model.pack((W, b)))


CALLS_FEDLITE = [  # (checker, an answer that calls the library, the name the verdict gives)
    ("softmax_gradient", grad_via_fedlite, "fedlite.models.softmax_loss_grad"),
    ("softmax_gradient", grad_via_model, "fedlite.core.model.SoftmaxModel.loss_grad"),
    ("softmax_gradient", grad_via_reference_log_softmax, "fedlite.reference.log_softmax"),
    ("dirichlet_counts", counts_via_fedlite, "fedlite.partition._round_to_total"),
    ("accuracy", accuracy_via_reference, "fedlite.reference.softmax_predict"),
    ("accuracy", accuracy_via_model, "fedlite.core.model.Classifier.accuracy"),
]


class TestContract(contract.CheckerContract):
    checks, solutions, checkers = checks, solutions, CHECKERS
    wrong, calls_fedlite, other_forms = WRONG, CALLS_FEDLITE, OTHER_FORMS


def test_the_cheats_compute_the_right_answer_so_only_the_call_is_caught():
    """The answers that call fedlite would pass on their values: the verdict is about the
    call."""
    pairs = [("softmax_gradient", fn) for fn in (grad_via_fedlite, grad_via_model,
                                                  grad_via_reference_log_softmax)]
    pairs += [("dirichlet_counts", counts_via_fedlite), ("accuracy", accuracy_via_reference),
              ("accuracy", accuracy_via_model)]
    for checker, fn in pairs:
        for _, args in checks._EXERCISES[checker].cases():
            got, want = fn(**args), getattr(solutions, checker)(**args)
            for a, b in zip(np.atleast_1d(got) if checker == "accuracy" else got,
                            np.atleast_1d(want) if checker == "accuracy" else want):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_the_large_logit_case_overflows_a_naive_softmax():
    """One fixed case has logits near 800, where exp overflows: a softmax without the shift
    gives NaN there and only there, so the overflow mistake is told apart from a right answer."""
    cases = checks._EXERCISES["softmax_gradient"].cases()
    with np.errstate(over="ignore", invalid="ignore"):
        naive = [np.isnan(grad_overflows(**args)[0]).any() for _, args in cases]
    assert naive == [False] * (len(cases) - 1) + [True]
    assert all(np.isfinite(g).all() for _, args in cases
               for g in solutions.softmax_gradient(**args))


@pytest.mark.parametrize("seed", range(5))
def test_the_dirichlet_cases_are_never_ambiguous(seed):
    """Every case's rounding has one answer: no share within 1e-6 of a whole number and no
    tie at the edge, so any correct tie rule gives the same counts."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        _, args = checks._random_split(rng)
        assert not checks._ambiguous(args["class_sizes"], args["proportions"])
        counts = solutions.dirichlet_counts(**args)
        np.testing.assert_array_equal(counts.sum(axis=0), args["class_sizes"])
        np.testing.assert_allclose(args["proportions"].sum(axis=0), 1.0, atol=1e-12)


def test_the_reference_deal_is_what_split_deals():
    """The exercise's counts are fedlite.split's (steps 1-2 of scheme 'dirichlet') when no
    participant is left empty: the notebook's replay cell relies on it."""
    X, y, _, _ = fedlite.load_digits(seed=0)
    K, alpha = 10, 1.0
    class_sizes = np.bincount(y)
    rng = np.random.default_rng(3)
    proportions = np.column_stack([rng.dirichlet(np.full(K, alpha)) for _ in class_sizes])
    federation = fedlite.split(X, y, K, scheme="dirichlet", alpha=alpha, seed=3)
    dealt = np.bincount(federation.owner * 10 + federation.y.astype(int),
                        minlength=K * 10).reshape(K, 10)
    np.testing.assert_array_equal(solutions.dirichlet_counts(class_sizes, proportions), dealt)
