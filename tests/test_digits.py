"""fedlite.load_digits: the real data set of the course, its split, and label skew on it."""
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fedlite
from fedlite.data import load_digits
from fedlite.partition import split, split_held_out

NUM_IMAGES, NUM_PIXELS, NUM_CLASSES = 1797, 64, 10


def _sklearn_digits():
    from sklearn.datasets import load_digits as sklearn_load_digits
    return sklearn_load_digits(return_X_y=True)


def _sorted_rows(X, y):
    """The images with their labels, as a sorted list of tuples (a multiset of rows)."""
    return sorted(map(tuple, np.column_stack([X, y])))


@pytest.mark.parametrize("test_fraction", [0.1, 0.25, 0.5, 0.9])
def test_shapes_dtypes_and_scale(test_fraction):
    X_train, y_train, X_test, y_test = load_digits(test_fraction=test_fraction)
    assert len(X_train) + len(X_test) == NUM_IMAGES
    assert len(X_test) == pytest.approx(test_fraction * NUM_IMAGES, abs=NUM_CLASSES / 2)
    for X, y in [(X_train, y_train), (X_test, y_test)]:
        assert X.shape == (len(y), NUM_PIXELS) and y.shape == (len(X),)
        assert X.dtype == np.float64 and y.dtype == np.int64
        assert X.flags.c_contiguous and y.flags.c_contiguous
        assert X.min() == 0.0 and X.max() == 1.0                  # intensities 0..16, over 16
        assert_array_equal(X * 16, np.round(X * 16))
        assert set(np.unique(y)) == set(range(NUM_CLASSES))


def test_every_image_once_in_train_or_test_with_its_label():
    """No overlap and nothing lost: train + test is the data set, each image scaled by 1/16."""
    X_train, y_train, X_test, y_test = load_digits(seed=3)
    pixels, digits = _sklearn_digits()
    ours = _sorted_rows(np.concatenate([X_train, X_test]) * 16, np.concatenate([y_train, y_test]))
    assert ours == _sorted_rows(pixels, digits)
    train_rows, test_rows = set(_sorted_rows(X_train, y_train)), set(_sorted_rows(X_test, y_test))
    assert not train_rows & test_rows


@pytest.mark.parametrize("test_fraction", [0.2, 0.25, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_split_is_stratified(test_fraction, seed):
    """Each digit sends round(test_fraction · n_c) (half up) of its images to the test data."""
    _, y_train, _, y_test = load_digits(test_fraction=test_fraction, seed=seed)
    class_sizes = np.bincount(_sklearn_digits()[1])
    expected = np.floor(test_fraction * class_sizes + 0.5)
    assert_array_equal(np.bincount(y_test, minlength=NUM_CLASSES), expected)
    assert_array_equal(np.bincount(y_train, minlength=NUM_CLASSES), class_sizes - expected)


def test_the_rows_come_in_random_order():
    """Not sorted by class: the first rows of either half hold many digits."""
    _, y_train, _, y_test = load_digits(seed=0)
    assert len(np.unique(y_train[:50])) >= 8 and len(np.unique(y_test[:50])) >= 8


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_same_seed_same_bits_other_seed_other_split(seed):
    a, b, c = load_digits(seed=seed), load_digits(seed=seed), load_digits(seed=seed + 1)
    for x, y in zip(a, b):
        assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_randomness_does_not_touch_global_state():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    load_digits(seed=3)
    assert np.random.random() == before


def test_exported_from_fedlite():
    assert fedlite.load_digits is load_digits and "load_digits" in fedlite.__all__
    assert fedlite.split_held_out is split_held_out and "split_held_out" in fedlite.__all__


@pytest.mark.parametrize("kwargs, error, match", [
    ({"test_fraction": 0.0}, ValueError, "^test_fraction must be between 0 and 1"),
    ({"test_fraction": 1.0}, ValueError, "^test_fraction must be between 0 and 1"),
    ({"test_fraction": -0.1}, ValueError, "^test_fraction"),
    ({"test_fraction": np.nan}, ValueError, "^test_fraction"),
    ({"test_fraction": "0.25"}, TypeError, "^test_fraction"),
    ({"test_fraction": True}, TypeError, "^test_fraction"),
    ({"test_fraction": 0.001}, ValueError, "^test_fraction = 0.001 leaves class 0 with no test"),
    ({"test_fraction": 0.999}, ValueError, "^test_fraction = 0.999 leaves class 0 with no "
                                           "training"),
    ({"seed": -1}, ValueError, "^seed"),
    ({"seed": None}, TypeError, "^seed"),
    ({"seed": 1.5}, TypeError, "^seed"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_digits(**kwargs)


def test_without_scikit_learn_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)   # import now raises ImportError
    with pytest.raises(ImportError, match="needs scikit-learn.*pip install scikit-learn"):
        load_digits()


# ---- label skew on the digits -----------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def _classes_per_participant(fed):
    return np.array([len(np.unique(fed.participant(k)[1])) for k in range(fed.num_participants)])


@pytest.mark.parametrize("K", [10, 100])
def test_digits_under_dirichlet_label_skew(digits, K):
    X, y = digits[:2]
    skewed = [_classes_per_participant(split(X, y, K, scheme="dirichlet", alpha=0.01, seed=s))
              for s in range(3)]
    near_iid = split(X, y, K, scheme="dirichlet", alpha=1e4, seed=0)
    assert np.mean(skewed) <= 2.0
    assert (_classes_per_participant(near_iid) == NUM_CLASSES).all()
    assert np.sort(near_iid.index).tolist() == list(range(len(y)))


def test_digits_in_shards_as_mcmahan_et_al(digits):
    """100 participants, 2 shards each: no participant sees more than 2 digits."""
    X, y = digits[:2]
    fed = split(X, y, 100, scheme="shards", shards_per_participant=2, seed=0)
    assert (_classes_per_participant(fed) <= 2).all() and fed.sizes.sum() == len(y)


def test_digits_held_out_shares_for_each_participant(digits):
    X, y = digits[:2]
    train, held_out = split_held_out(split(X, y, 20, scheme="dirichlet", alpha=0.5, seed=0),
                                     0.2, seed=0)
    assert train.num_participants == held_out.num_participants == 20
    assert train.num_samples + held_out.num_samples == len(y)
    assert (train.sizes >= 1).all() and (held_out.sizes >= 1).all()
    assert_array_equal(held_out.sizes, np.maximum(1, np.floor(0.2 * (train.sizes +
                                                                     held_out.sizes) + 0.5)))
