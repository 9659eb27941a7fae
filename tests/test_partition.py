"""Tests of fedlite.partition: the Federation invariants, each scheme, concept shift, checks."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fedlite.data import make_linear_data
from fedlite.partition import Federation, make_concept_shift, split

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
