"""Tests of fedlite.partition: the Federation invariants, each scheme, concept shift, checks."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fedlite.data import make_linear_data
from fedlite.partition import Federation, make_concept_shift, split, split_held_out

SCHEMES = [("iid", None), ("quantity", 0.5), ("covariate", None), ("covariate", 1.0)]


def _data(n=200, d=3, seed=0):
    X, y, _, _ = make_linear_data(n, d, seed=seed)
    return X, y


def assert_valid_federation(fed, X, y, K):
    """The invariants every Federation made by `split` must satisfy."""
    N, d = X.shape
    assert fed.num_participants == K and fed.num_samples == N and fed.num_features == d
    for array, dtype in [(fed.X, np.float64), (fed.y, np.float64),
                         (fed.offsets, np.int64), (fed.index, np.int64)]:
        assert array.dtype == dtype and array.flags.c_contiguous
    assert fed.offsets.shape == (K + 1,) and fed.offsets[0] == 0 and fed.offsets[-1] == N
    assert (fed.sizes >= 1).all() and fed.sizes.dtype == np.int64 and fed.sizes.sum() == N
    assert_array_equal(np.sort(fed.index), np.arange(N))       # every row exactly once
    assert_array_equal(fed.X, X[fed.index])
    assert_array_equal(fed.y, y[fed.index])
    assert_array_equal(fed.owner, np.repeat(np.arange(K), fed.sizes))


@pytest.mark.parametrize("scheme, alpha", SCHEMES)
@pytest.mark.parametrize("K", [1, 2, 7, 200])
@pytest.mark.parametrize("seed", [0, 1])
def test_split_is_a_valid_federation(scheme, alpha, K, seed):
    X, y = _data()
    fed = split(X, y, K, scheme=scheme, alpha=alpha, seed=seed)
    assert_valid_federation(fed, X, y, K)


@pytest.mark.parametrize("scheme, alpha", SCHEMES)
@pytest.mark.parametrize("seed", [0, 3])
def test_same_seed_gives_the_same_split_bit_for_bit(scheme, alpha, seed):
    X, y = _data()
    a = split(X, y, 5, scheme=scheme, alpha=alpha, seed=seed)
    b = split(X, y, 5, scheme=scheme, alpha=alpha, seed=seed)
    for name in ["X", "y", "offsets", "index"]:
        assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("scheme, alpha", SCHEMES)
def test_different_seeds_give_different_splits(scheme, alpha):
    X, y = _data()
    a = split(X, y, 5, scheme=scheme, alpha=alpha, seed=0)
    b = split(X, y, 5, scheme=scheme, alpha=alpha, seed=1)
    assert not np.array_equal(a.index, b.index)


@pytest.mark.parametrize("N, K", [(10, 3), (100, 10), (7, 7)])
def test_iid_sizes_are_as_equal_as_possible(N, K):
    X, y = _data(N)
    sizes = split(X, y, K, seed=0).sizes
    assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantity_small_alpha_gives_unequal_sizes(seed):
    X, y = _data(1000)
    sizes = split(X, y, 10, scheme="quantity", alpha=0.1, seed=seed).sizes
    assert sizes.max() >= 10 * sizes.min()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantity_large_alpha_gives_nearly_equal_sizes(seed):
    X, y = _data(1000)
    sizes = split(X, y, 10, scheme="quantity", alpha=1e4, seed=seed).sizes
    assert sizes.min() >= 95 and sizes.max() <= 105


@pytest.mark.parametrize("N", [10, 1000])
def test_quantity_tiny_alpha_still_gives_everyone_a_row(N):
    X, y = _data(N)
    fed = split(X, y, 10, scheme="quantity", alpha=1e-3, seed=0)
    assert_valid_federation(fed, X, y, 10)
    assert fed.sizes.min() == 1 and fed.sizes.max() >= N - 10 - 1


def _x0_ranges(fed):
    """(K, 2): the smallest and largest x_0 of each participant."""
    return np.array([[fed.participant(k)[0][:, 0].min(), fed.participant(k)[0][:, 0].max()]
                     for k in range(fed.num_participants)])


@pytest.mark.parametrize("K", [2, 5, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_covariate_without_alpha_gives_disjoint_ordered_ranges(K, seed):
    X, y = _data(seed=seed)
    fed = split(X, y, K, scheme="covariate", seed=seed)
    ranges = _x0_ranges(fed)
    assert (ranges[:-1, 1] < ranges[1:, 0]).all()               # max of k < min of k + 1
    assert fed.sizes.max() - fed.sizes.min() <= 1


@pytest.mark.parametrize("seed", [0, 1])
def test_covariate_large_alpha_gives_overlapping_ranges(seed):
    X, y = _data(seed=seed)
    fed = split(X, y, 5, scheme="covariate", alpha=1e3, seed=seed)
    ranges = _x0_ranges(fed)
    assert ranges[:, 0].max() < ranges[:, 1].min()              # one x_0 interval shared by all
    assert fed.sizes.max() - fed.sizes.min() <= 1


def test_covariate_alpha_moves_from_region_split_to_iid():
    """The mean x_0 of the participants spreads out less and less as alpha grows."""
    X, y = _data(1000)
    spreads = []
    for alpha in [None, 0.1, 1.0, 1e3]:
        fed = split(X, y, 10, scheme="covariate", alpha=alpha, seed=0)
        means = [fed.participant(k)[0][:, 0].mean() for k in range(10)]
        spreads.append(np.std(means))
    assert spreads == sorted(spreads, reverse=True)
    assert spreads[-1] < 0.1 * spreads[0]


@pytest.mark.parametrize("scheme, alpha", SCHEMES)
def test_participant_returns_its_original_rows(scheme, alpha):
    X, y = _data(60)
    fed = split(X, y, 4, scheme=scheme, alpha=alpha, seed=0)
    for k in range(4):
        X_k, y_k = fed.participant(k)
        rows = fed.index[fed.offsets[k]:fed.offsets[k + 1]]
        assert_array_equal(X_k, X[rows])
        assert_array_equal(y_k, y[rows])
        assert np.shares_memory(X_k, fed.X)                      # a view, not a copy


def test_participant_rejects_bad_ids():
    fed = split(*_data(20), 4)
    with pytest.raises(IndexError, match="participant_id"):
        fed.participant(4)
    with pytest.raises(IndexError, match="participant_id"):
        fed.participant(-1)
    with pytest.raises(TypeError, match="participant_id"):
        fed.participant(1.0)


def test_repr_is_short_and_deterministic():
    X, y = _data(100)
    assert repr(split(X, y, 3)) == "Federation(3 participants, 100 rows, 3 features, sizes 33..34)"
    one = "Federation(1 participant, 100 rows, 1 feature, sizes 100..100)"
    assert repr(split(X[:, :1], y, 1)) == one


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32])
def test_ints_and_float32_become_float64(dtype):
    X = np.arange(24).reshape(12, 2).astype(dtype)
    y = np.arange(12).astype(dtype)
    fed = split(X, y, 3, scheme="covariate", seed=0)
    assert fed.X.dtype == np.float64 and fed.y.dtype == np.float64
    assert_valid_federation(fed, X.astype(np.float64), y.astype(np.float64), 3)


def test_aliases_give_the_same_split():
    X, y = _data()
    a = split(X, y, 4, scheme="quantity_skew", alpha=0.3, seed=0)
    b = split(X, y, 4, scheme="quantity", alpha=0.3, seed=0)
    assert_array_equal(a.index, b.index)
    c = split(X, y, 4, scheme="covariate_shift", seed=0)
    assert_array_equal(c.index, split(X, y, 4, scheme="covariate", seed=0).index)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"X": [[1.0, 2.0], [3.0, 4.0]], "y": [1.0, 2.0, 3.0]}, ValueError, "y"),
    ({"X": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}, ValueError, "X"),
    ({"X": [["a"], ["b"]], "y": [1.0, 2.0]}, TypeError, "X"),
    ({"X": [[1.0], [np.nan]], "y": [1.0, 2.0]}, ValueError, "X"),
    ({"y": [1.0] * 9 + [np.inf]}, ValueError, "y"),
    ({"num_participants": 0}, ValueError, "num_participants"),
    ({"num_participants": 11}, ValueError, "num_participants.*10 rows"),
    ({"num_participants": 2.0}, TypeError, "num_participants"),
    ({"scheme": "label"}, ValueError, "scheme.*'iid', 'quantity', 'covariate'"),
    ({"scheme": None}, TypeError, "scheme"),
    ({"scheme": "quantity"}, ValueError, "alpha"),
    ({"scheme": "quantity", "alpha": 0.0}, ValueError, "alpha"),
    ({"scheme": "covariate", "alpha": -1.0}, ValueError, "alpha"),
    ({"scheme": "quantity", "alpha": "small"}, TypeError, "alpha"),
    ({"scheme": "iid", "alpha": 0.5}, ValueError, "alpha"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": None}, TypeError, "seed"),
])
def test_split_bad_arguments_are_named(kwargs, error, match):
    args = {"X": np.zeros((10, 2)), "y": np.zeros(10), "num_participants": 2, **kwargs}
    X, y, K = args.pop("X"), args.pop("y"), args.pop("num_participants")
    with pytest.raises(error, match=match):
        split(X, y, K, **args)


def test_federation_checks_its_fields():
    X, y = np.zeros((4, 1)), np.zeros(4)
    Federation(X, y, [0, 1, 4], [3, 2, 1, 0])                   # fine
    with pytest.raises(ValueError, match="offsets"):
        Federation(X, y, [0, 2, 2, 4], np.arange(4))            # an empty participant
    with pytest.raises(ValueError, match="offsets"):
        Federation(X, y, [0, 3], np.arange(4))                  # does not end at N
    with pytest.raises(ValueError, match="index"):
        Federation(X, y, [0, 4], [0, 0, 1, 2])                  # not a permutation
    with pytest.raises(TypeError, match="offsets"):
        Federation(X, y, [0.0, 4.0], np.arange(4))


def test_federation_from_participants():
    fed = Federation.from_participants([np.ones((2, 3)), np.zeros((3, 3))], [[1, 2], [3, 4, 5]])
    assert_array_equal(fed.sizes, [2, 3])
    assert_array_equal(fed.index, np.arange(5))
    assert_array_equal(fed.participant(1)[1], [3.0, 4.0, 5.0])


# ---- concept shift ---------------------------------------------------------------------

@pytest.mark.parametrize("K, n, d", [(1, 5, 1), (4, 10, 3), (3, [2, 5, 1], 2)])
def test_concept_shift_shapes(K, n, d):
    fed, W_true, b_true = make_concept_shift(K, n, d, seed=0)
    sizes = np.broadcast_to(n, (K,))
    assert W_true.shape == (K, d) and isinstance(b_true, float)
    assert_array_equal(fed.sizes, sizes)
    assert fed.num_features == d
    assert_valid_federation(fed, fed.X, fed.y, K)


def test_concept_shift_without_noise_follows_each_participants_w():
    fed, W_true, b_true = make_concept_shift(3, 8, 2, spread=2.0, noise=0.0, seed=1)
    for k in range(3):
        X_k, y_k = fed.participant(k)
        np.testing.assert_allclose(y_k, X_k @ W_true[k] + b_true)


def test_concept_shift_spread_zero_gives_identical_w():
    _, W_true, _ = make_concept_shift(5, 4, 3, spread=0.0, seed=0)
    assert_array_equal(W_true, np.broadcast_to(W_true[0], W_true.shape))
    _, W_spread, _ = make_concept_shift(5, 4, 3, spread=1.0, seed=0)
    assert not np.allclose(W_spread, W_spread[0])


def test_concept_shift_is_reproducible_and_participants_are_independent():
    a, Wa, _ = make_concept_shift(3, [4, 5, 6], 2, seed=7)
    b, Wb, _ = make_concept_shift(3, [4, 5, 6], 2, seed=7)
    assert_array_equal(a.X, b.X)
    assert_array_equal(a.y, b.y)
    assert_array_equal(Wa, Wb)
    c, _, _ = make_concept_shift(3, [9, 5, 6], 2, seed=7)        # only participant 0 changed
    assert_array_equal(a.participant(1)[0], c.participant(1)[0])
    assert_array_equal(a.participant(0)[0], c.participant(0)[0][:4])


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0, 5, 2), {}, ValueError, "num_participants"),
    ((3, 0, 2), {}, ValueError, "samples_per_participant"),
    ((3, [5, 5], 2), {}, ValueError, "samples_per_participant"),
    ((3, 2.5, 2), {}, TypeError, "samples_per_participant"),
    ((2, [5, 1.5], 2), {}, TypeError, "samples_per_participant"),
    ((3, 5, 0), {}, ValueError, "num_features"),
    ((3, 5, 2), {"spread": -1.0}, ValueError, "spread"),
    ((3, 5, 2), {"noise": -1.0}, ValueError, "noise"),
    ((3, 5, 2), {"seed": "x"}, TypeError, "seed"),
])
def test_concept_shift_bad_arguments_are_named(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_concept_shift(*args, **kwargs)


# ---- a federation's data are its own and read-only --------------------------------------

def _federations():
    X, y = _data(30)
    return {
        "split": split(X, y, 3, seed=0),
        "constructor": Federation(X, y, [0, 10, 30], np.arange(30)),
        "from_participants": Federation.from_participants([X[:10], X[10:]], [y[:10], y[10:]]),
        "concept_shift": make_concept_shift(3, 10, 3, seed=0)[0],
    }


@pytest.mark.parametrize("how", ["split", "constructor", "from_participants", "concept_shift"])
def test_federation_arrays_and_participant_views_are_read_only(how):
    """Compiled code trusts offsets: `fed.offsets[-1] = 10**9` made simulate segfault."""
    import copy
    import pickle

    fed = _federations()[how]
    X_k, y_k = fed.participant(1)
    for copied in (fed, copy.copy(fed), copy.deepcopy(fed), pickle.loads(pickle.dumps(fed))):
        for name in ["X", "y", "offsets", "index"]:
            array = getattr(copied, name)
            assert not array.flags.writeable, name
            with pytest.raises(ValueError, match="read-only"):
                array[-1] = 10**9
    for array in (X_k, y_k):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0
        with pytest.raises(ValueError):
            array.flags.writeable = True        # not even by flipping the flag back


def test_federation_keeps_its_own_copy_of_what_it_was_given():
    X, y = _data(10)
    offsets, index = np.array([0, 4, 10]), np.arange(10)
    fed = Federation(X, y, offsets, index)
    X_before, y_before = X.copy(), y.copy()
    X[:] = 0.0
    y[:] = 0.0
    offsets[1] = 9
    index[:2] = index[1::-1]
    assert_array_equal(fed.X, X_before)
    assert_array_equal(fed.y, y_before)
    assert_array_equal(fed.offsets, [0, 4, 10])
    assert_array_equal(fed.index, np.arange(10))
    assert X.flags.writeable                                    # the caller's arrays untouched


@pytest.mark.parametrize("X_parts, y_parts, match", [
    ([np.ones((2, 3)), np.ones((3, 3))], [np.ones(2), np.ones(2)],
     r"y_parts\[1\] has 2 values but X_parts\[1\] has 3 rows"),
    ([np.ones((2, 3)), np.ones((3, 3))], [np.ones(3), np.ones(2)],
     r"y_parts\[0\] has 3 values but X_parts\[0\] has 2 rows"),
    ([np.ones((2, 3)), np.ones((3, 2))], [np.ones(2), np.ones(3)],
     r"X_parts\[1\] must have shape \(n_k, 3\)"),
    ([np.ones((2, 3)), np.ones((0, 3))], [np.ones(2), np.ones(0)],
     r"X_parts\[1\] must not be empty"),
    ([np.ones(3)], [np.ones(3)], r"X_parts\[0\] must be 2-D"),
    ([np.ones((2, 1))], [np.ones((2, 1))], r"y_parts\[0\] must be 1-D"),
    ([np.array([[1.0], [np.nan]])], [np.ones(2)], r"X_parts\[0\] must contain only finite"),
    ([], [], "non-empty"),
    ([np.ones((2, 1))], [np.ones(2), np.ones(2)], "same length"),
])
def test_from_participants_checks_each_piece_naming_it(X_parts, y_parts, match):
    with pytest.raises(ValueError, match=match):
        Federation.from_participants(X_parts, y_parts)


@pytest.mark.parametrize("X_parts, y_parts, match", [
    (5, [np.ones(2)], "X_parts must be a list"),
    ([np.ones((2, 1))], None, "y_parts must be a list"),
    ("ab", [np.ones(2)], "X_parts must be a list"),
    ([[["a"], ["b"]]], [np.ones(2)], r"X_parts\[0\] must hold real numbers"),
])
def test_from_participants_refuses_non_lists_naming_them(X_parts, y_parts, match):
    with pytest.raises(TypeError, match=match):
        Federation.from_participants(X_parts, y_parts)


def test_a_bad_participant_id_is_also_a_value_error():
    fed = split(*_data(20), 4)
    for bad in (4, -1, 10**400):
        with pytest.raises(ValueError, match="participant_id"):
            fed.participant(bad)


# ---- arguments at the edge of what float64 and memory hold ---------------------------------

@pytest.mark.parametrize("scheme", ["quantity", "covariate"])
@pytest.mark.parametrize("alpha", [1e308, 1e101])
def test_a_huge_alpha_is_refused_naming_alpha(scheme, alpha):
    """alpha=1e308 made the Dirichlet draw NaN: a RuntimeWarning, then an error on the sizes."""
    with pytest.raises(ValueError, match="^alpha must be at most 1e.100"):
        split(*_data(50), 5, scheme=scheme, alpha=alpha)


@pytest.mark.parametrize("scheme", ["quantity", "covariate"])
@pytest.mark.parametrize("alpha", [1e100, 1e-300])
def test_extreme_alphas_inside_the_range_still_split(scheme, alpha):
    X, y = _data(50)
    assert_valid_federation(split(X, y, 5, scheme=scheme, alpha=alpha), X, y, 5)


@pytest.mark.parametrize("kwargs, match", [
    ({"spread": 1e308}, "^spread = 1e.308 is so large"),
    ({"spread": 5e307}, "^spread = 5e.307 is so large"),        # w finite, X w overflows
    ({"noise": 1e308}, "^noise = 1e.308 is so large"),
])
def test_concept_shift_refuses_data_that_overflow_naming_the_cause(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_concept_shift(3, 100, 4, seed=0, **kwargs)


@pytest.mark.parametrize("args, match", [
    pytest.param((10**9, 1, 1), "^num_participants too large", id="10**9 participants (hung)"),
    pytest.param((10**7, 1, 1), "^num_participants too large", id="10**7 participants"),
    pytest.param((3, 10**9, 1), "^num_participants, samples_per_participant or num_features "
                                "too large", id="3e9 rows"),
    pytest.param((2, 1, 10**9), "^num_participants or num_features too large", id="wide W_true"),
    pytest.param((2, [1, 10**400], 1), "samples_per_participant or num_features too large",
                 id="10**400 rows"),
])
def test_concept_shift_refuses_what_cannot_fit_in_memory_before_allocating(args, match):
    with pytest.raises(ValueError, match=match):
        make_concept_shift(*args)


def test_covariate_split_refuses_a_region_table_too_large_for_memory():
    X, y = np.zeros((20_000, 1)), np.zeros(20_000)     # K = 20 000: a (K, K) table of 3.2 GB
    with pytest.raises(ValueError, match="^num_participants too large"):
        split(X, y, 20_000, scheme="covariate")


class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array for you")


@pytest.mark.parametrize("make, error, match", [
    (lambda X, y: split(_Unconvertible(), y, 2), TypeError, "^X must"),
    (lambda X, y: split(X, _Unconvertible(), 2), TypeError, "^y must"),
    (lambda X, y: split(X, y, 10**400), ValueError, "^num_participants must be at most"),
    (lambda X, y: split(X, y, np.nan), TypeError, "^num_participants"),
    (lambda X, y: split(X, y, 2, scheme="quantity", alpha=np.nan), ValueError, "^alpha"),
    (lambda X, y: split(X, y, 2, scheme="quantity", alpha=1j), TypeError, "^alpha"),
    (lambda X, y: split(X, y, 2, scheme="quantity", alpha=10**400), ValueError, "^alpha"),
    (lambda X, y: split(X.astype(complex), y, 2), TypeError, "^X must"),
    (lambda X, y: Federation(X, y, _Unconvertible(), np.arange(10)), TypeError, "^offsets"),
    (lambda X, y: Federation(X, y, [0, 10], [[0] * 10]), ValueError, "^index must be 1-D"),
    (lambda X, y: Federation(X, y, [0, True], np.arange(10)), ValueError, "^offsets"),
    (lambda X, y: Federation(X, y, np.array([0, 2**64 - 1], dtype=np.uint64), np.arange(10)),
     ValueError, "^offsets"),
    (lambda X, y: make_concept_shift(2, 3, 2, spread=np.inf), ValueError, "^spread"),
    (lambda X, y: make_concept_shift(2, 3, 2, noise=True), TypeError, "^noise"),
    (lambda X, y: make_concept_shift(2, np.ones((2, 2), int), 2), TypeError,
     "^samples_per_participant"),
    (lambda X, y: make_concept_shift(2, "ab", 2), TypeError, "^samples_per_participant"),
    (lambda X, y: make_concept_shift(2, _Unconvertible(), 2), TypeError,
     "^samples_per_participant"),
    (lambda X, y: make_concept_shift(2, [1, [2]], 2), TypeError, "^samples_per_participant"),
    (lambda X, y: Federation.from_participants(_Unconvertible(), [y]), TypeError, "^X_parts"),
])
def test_hostile_arguments_are_refused_naming_them(make, error, match):
    X, y = _data(10)
    with pytest.raises(error, match=match):
        make(X, y)


# ---- label skew: "dirichlet" and "shards" ---------------------------------------------------

def _labelled(n=1000, num_classes=10, d=2, seed=0):
    """X (n, d) with distinct rows, y the labels 0..C-1 in turn (n / C rows per class)."""
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X, (np.arange(n) % num_classes).astype(np.float64)


def _class_counts(fed, num_classes=10):
    """(K, C): the rows of each class held by each participant."""
    return np.array([np.bincount(fed.participant(k)[1].astype(np.int64), minlength=num_classes)
                     for k in range(fed.num_participants)])


LABEL_SCHEMES = [("dirichlet", 0.5, None), ("dirichlet", 1e-3, None), ("dirichlet", 1e4, None),
                 ("shards", None, None), ("shards", None, 1), ("shards", None, 3)]


@pytest.mark.parametrize("scheme, alpha, s", LABEL_SCHEMES)
@pytest.mark.parametrize("K", [1, 3, 10, 100])
@pytest.mark.parametrize("seed", [0, 1])
def test_label_schemes_give_a_valid_federation(scheme, alpha, s, K, seed):
    """Every row dealt exactly once, every participant at least one row."""
    X, y = _labelled(300)
    fed = split(X, y, K, scheme=scheme, alpha=alpha, shards_per_participant=s, seed=seed)
    assert_valid_federation(fed, X, y, K)


@pytest.mark.parametrize("scheme, alpha, s", LABEL_SCHEMES)
def test_label_schemes_same_seed_same_bits_other_seed_other_split(scheme, alpha, s):
    X, y = _labelled(300)
    a, b, c = (split(X, y, 10, scheme=scheme, alpha=alpha, shards_per_participant=s, seed=seed)
               for seed in (4, 4, 5))
    for name in ["X", "y", "offsets", "index"]:
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.index, c.index)


@pytest.mark.parametrize("alpha, tolerance", [(1e4, 0.01), (100.0, 0.06)])
@pytest.mark.parametrize("seed", range(5))
def test_dirichlet_large_alpha_gives_every_participant_the_overall_class_mix(alpha, tolerance,
                                                                             seed):
    counts = _class_counts(split(*_labelled(), 10, scheme="dirichlet", alpha=alpha, seed=seed))
    proportions = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(proportions - 0.1).max() <= tolerance


@pytest.mark.parametrize("K", [10, 20])
def test_dirichlet_small_alpha_gives_one_or_two_classes_per_participant(K):
    """Measured over 10 seeds: few classes each, and two classes hold almost all the rows."""
    num_classes, top_two = [], []
    for seed in range(10):
        counts = _class_counts(split(*_labelled(), K, scheme="dirichlet", alpha=0.01, seed=seed))
        num_classes.extend((counts > 0).sum(axis=1))
        top_two.extend(np.sort(counts, axis=1)[:, -2:].sum(axis=1) / counts.sum(axis=1))
    assert np.mean(num_classes) <= 2.0 and np.median(num_classes) <= 2
    assert np.mean(top_two) >= 0.95


def test_dirichlet_classes_per_participant_grow_with_alpha():
    mean_classes = [np.mean([(_class_counts(split(*_labelled(), 10, scheme="dirichlet",
                                                  alpha=alpha, seed=seed)) > 0).sum(axis=1)
                             for seed in range(3)])
                    for alpha in [0.01, 0.1, 1.0, 100.0]]
    assert mean_classes == sorted(mean_classes) and mean_classes[-1] == 10


@pytest.mark.parametrize("N, K", [(100, 100), (1000, 200), (20, 7)])
def test_dirichlet_tiny_alpha_still_gives_everyone_a_row(N, K):
    X, y = _labelled(N)
    fed = split(X, y, K, scheme="dirichlet", alpha=1e-6, seed=0)
    assert_valid_federation(fed, X, y, K)
    assert fed.sizes.min() >= 1


def test_empty_participants_take_a_row_from_the_largest_deterministically():
    """Step 3 of "dirichlet": in order of id, from the largest (lowest id on ties), its
    most common class (lowest label on ties)."""
    from fedlite.partition import _give_everyone_a_row
    counts = np.array([[0, 0], [5, 1], [0, 0], [2, 3]])
    _give_everyone_a_row(counts)
    assert_array_equal(counts, [[1, 0], [3, 1], [1, 0], [2, 3]])


@pytest.mark.parametrize("K, s", [(10, 1), (10, 2), (50, 2), (7, 3), (100, 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shards_give_at_most_shards_per_participant_classes(K, s, seed):
    X, y = _labelled(1000)
    fed = split(X, y, K, scheme="shards", shards_per_participant=s, seed=seed)
    assert_valid_federation(fed, X, y, K)
    assert ((_class_counts(fed) > 0).sum(axis=1) <= s).all()
    if K * s % 10 == 0:                     # the same number of shards per class: equal sizes
        assert fed.sizes.max() - fed.sizes.min() <= s


@pytest.mark.parametrize("seed", [0, 1])
def test_shards_of_unequal_classes_still_hold_one_class_each(seed):
    y = np.repeat(np.arange(4), [5, 40, 13, 2]).astype(np.float64)
    X = np.random.default_rng(seed).standard_normal((len(y), 1))
    fed = split(X, y, 6, scheme="shards", shards_per_participant=2, seed=seed)
    assert_valid_federation(fed, X, y, 6)
    assert ((_class_counts(fed, 4) > 0).sum(axis=1) <= 2).all()


@pytest.mark.parametrize("K, s", [(1, 1), (1, 2), (2, 2), (3, 2), (4, 2), (3, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_shards_with_fewer_shards_than_classes_hold_whole_classes(K, s, seed):
    """K·s < C: each shard holds C/(K·s) whole classes, rounded up or down."""
    X, y = _labelled(100)
    fed = split(X, y, K, scheme="shards", shards_per_participant=s, seed=seed)
    assert_valid_federation(fed, X, y, K)
    counts = _class_counts(fed)
    assert ((counts == 0) | (counts == 10)).all()                 # whole classes only
    assert (counts > 0).sum(axis=1).max() <= s * -(-10 // (K * s))


def test_shards_default_is_two_per_participant_as_in_mcmahan_et_al():
    X, y = _labelled(1000)
    assert_array_equal(split(X, y, 10, scheme="shards", seed=0).index,
                       split(X, y, 10, scheme="shards", shards_per_participant=2, seed=0).index)


@pytest.mark.parametrize("class_sizes, num_shards, expected", [
    ([10, 3, 7], 3, [1, 1, 1]),
    ([10, 3, 7], 5, [2, 1, 2]),             # 10 -> 5 + 5, then 7 -> 4 + 3
    ([4, 4], 5, [3, 2]),                    # ties to the lowest label
    ([3, 1], 4, [3, 1]),                    # one row per shard: no class gets more than n_c
])
def test_shards_per_class_keeps_the_largest_shard_small(class_sizes, num_shards, expected):
    from fedlite.partition import _shards_per_class
    assert _shards_per_class(np.array(class_sizes), num_shards) == expected


def test_label_skew_alias():
    X, y = _labelled(200)
    assert_array_equal(split(X, y, 4, scheme="label_skew", alpha=0.3, seed=0).index,
                       split(X, y, 4, scheme="dirichlet", alpha=0.3, seed=0).index)


@pytest.mark.parametrize("scheme, kwargs", [("dirichlet", {"alpha": 0.5}), ("shards", {})])
@pytest.mark.parametrize("y, match", [
    pytest.param(make_linear_data(10, 2, seed=0)[1], r"^y must hold whole-number class labels",
                 id="regression targets"),
    pytest.param(np.array([0.0, 1.0, 2.5] + [1.0] * 7), r"^y must hold whole-number.*y\[2\] = 2.5",
                 id="one fraction"),
    pytest.param(-np.ones(10), r"^y must hold class labels 0, 1, 2", id="negative labels"),
])
def test_label_schemes_refuse_data_without_labels_naming_y_and_the_scheme(scheme, kwargs, y,
                                                                          match):
    with pytest.raises(ValueError, match=match) as error:
        split(np.zeros((10, 2)), y, 2, scheme=scheme, **kwargs)
    assert f"scheme '{scheme}' splits the rows by class label" in str(error.value)
    assert "for regression data use scheme 'iid', 'quantity' or 'covariate'" in str(error.value)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scheme": "dirichlet"}, ValueError, "^alpha is required for scheme 'dirichlet'"),
    ({"scheme": "dirichlet", "alpha": 0.0}, ValueError, "^alpha must be > 0"),
    ({"scheme": "dirichlet", "alpha": 1e101}, ValueError, "^alpha must be at most"),
    ({"scheme": "shards", "alpha": 0.5}, ValueError, "^alpha is not used by scheme 'shards'"),
    ({"scheme": "shards", "shards_per_participant": 0}, ValueError, "^shards_per_participant"),
    ({"scheme": "shards", "shards_per_participant": 2.0}, TypeError, "^shards_per_participant"),
    ({"scheme": "shards", "shards_per_participant": 6}, ValueError,
     r"^num_participants · shards_per_participant = 2 · 6 = 12 shards is more than the 10 rows"),
    ({"scheme": "iid", "shards_per_participant": 2}, ValueError,
     "^shards_per_participant is used only by scheme 'shards'"),
    ({"scheme": "dirichlet", "alpha": 1.0, "shards_per_participant": 2}, ValueError,
     "^shards_per_participant is used only by scheme 'shards'"),
    ({"scheme": "dirichlet", "alpha": 1.0, "num_participants": 11}, ValueError,
     "^num_participants must be at most"),
])
def test_label_scheme_bad_arguments_are_named(kwargs, error, match):
    args = {"num_participants": 2, **kwargs}
    X, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(error, match=match):
        split(X, y, args.pop("num_participants"), **args)


def test_dirichlet_refuses_a_count_table_too_large_for_memory():
    """K participants x C classes of counts: 10^5 x 10^5 would take 80 GB."""
    y = np.arange(100_000, dtype=np.float64)
    with pytest.raises(ValueError, match="^num_participants too large"):
        split(np.zeros((100_000, 1)), y, 100_000, scheme="dirichlet", alpha=1.0)


@pytest.mark.parametrize("scheme, alpha, first_rows, sizes", [
    ("iid", None, [82, 185, 136, 23, 151, 54, 61, 37], [29, 29, 29, 29, 28, 28, 28]),
    ("quantity", 0.5, [79, 195, 7, 67, 28, 125, 41, 118], [20, 1, 45, 18, 14, 45, 57]),
    ("covariate", 1.0, [147, 19, 181, 7, 28, 36, 160, 152], [29, 29, 29, 29, 28, 28, 28]),
])
def test_the_older_schemes_split_exactly_as_before_the_label_schemes(scheme, alpha, first_rows,
                                                                      sizes):
    """Pinned from the code before "dirichlet" and "shards": same seed, same bits."""
    fed = split(*_data(), 7, scheme=scheme, alpha=alpha, seed=0)
    assert_array_equal(fed.index[:8], first_rows)
    assert_array_equal(fed.sizes, sizes)


# ---- held-out shares ------------------------------------------------------------------------

def _rows(X, y):
    """The rows (x, y) as a sorted list of tuples: compares data sets as multisets."""
    return sorted(map(tuple, np.column_stack([X, y])))


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("scheme, alpha", [("iid", None), ("dirichlet", 0.1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_split_held_out_cuts_each_participants_rows_in_two(fraction, scheme, alpha, seed):
    X, y = _labelled(500)
    fed = split(X, y, 10, scheme=scheme, alpha=alpha, seed=seed)
    train, held_out = split_held_out(fed, fraction, seed=seed)
    assert train.num_participants == held_out.num_participants == 10
    expected_held = np.clip(np.floor(fraction * fed.sizes + 0.5), 1, fed.sizes - 1)
    assert_array_equal(held_out.sizes, expected_held)
    assert_array_equal(train.sizes + held_out.sizes, fed.sizes)
    for federation in (train, held_out):
        assert_valid_federation(federation, federation.X, federation.y, 10)
        assert_array_equal(federation.index, np.arange(federation.num_samples))
    for k in range(10):                     # participant k's rows, each in exactly one share
        both = [np.concatenate(parts) for parts in zip(train.participant(k),
                                                       held_out.participant(k))]
        assert _rows(*both) == _rows(*fed.participant(k))


def test_split_held_out_is_seeded():
    fed = split(*_labelled(300), 5, seed=0)
    a, b, c = (split_held_out(fed, 0.3, seed=seed)[1] for seed in (2, 2, 3))
    assert_array_equal(a.X, b.X)
    assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_split_held_out_keeps_a_row_on_each_side_of_a_two_row_participant():
    X, y = _labelled(4)
    fed = Federation(X, y, [0, 2, 4], np.arange(4))
    train, held_out = split_held_out(fed, 0.01)
    assert_array_equal(train.sizes, [1, 1])
    assert_array_equal(held_out.sizes, [1, 1])


@pytest.mark.parametrize("args, kwargs, error, match", [
    (("federation",), {}, TypeError, "^federation must be a fedlite Federation"),
    ((None, 0.2), {}, TypeError, "^federation"),
    ((), {"fraction": 0.0}, ValueError, "^fraction must be between 0 and 1"),
    ((), {"fraction": 1.0}, ValueError, "^fraction must be between 0 and 1"),
    ((), {"fraction": np.nan}, ValueError, "^fraction"),
    ((), {"fraction": "0.2"}, TypeError, "^fraction"),
    ((), {"seed": -1}, ValueError, "^seed"),
    ((), {"seed": 0.5}, TypeError, "^seed"),
])
def test_split_held_out_bad_arguments_are_named(args, kwargs, error, match):
    fed = split(*_labelled(20), 2)
    with pytest.raises(error, match=match):
        split_held_out(*(args or (fed,)), **kwargs)


def test_split_held_out_refuses_a_participant_with_one_row_naming_fraction():
    X, y = _labelled(5)
    fed = Federation(X, y, [0, 3, 4, 5], np.arange(5))
    with pytest.raises(ValueError, match=r"^fraction = 0.2 of participant 1's rows cannot be "
                                         r"held out: it has only 1 row.*\(2 of the 3"):
        split_held_out(fed)
