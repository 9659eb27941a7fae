"""Tests of fedlite._checking, the machinery behind every exercise checker: the rule for naming
a mistake, the result a checker returns, reading any answer without raising, and watching what
a student's function does (printing, calling fedlite, replacing fedlite's functions)."""
import decimal
import fractions
import sys

import numpy as np
import pytest

from fedlite import _checking, reference
from fedlite._checking import RAISES, CheckResult, Exercise, Session, as_real, describe


# ------------------------------------------------------------------------ the naming rule

def toy(mistakes):
    """An exercise fn(x) -> 2 x on the cases x = 1, 2, 3 with the given mistakes."""
    return Exercise(
        outputs=(("y", None),),
        cases=lambda: [(f"x = {x}", dict(x=x)) for x in (1.0, 2.0, 3.0)],
        random_case=lambda rng: ("a fresh random case", dict(x=float(rng.integers(4, 9)))),
        answers=lambda x: (2 * x, mistakes(x), {}), nudge="See the toy notebook.")


SQUARE = toy(lambda x: [(x * x, "you squared x."), (3 * x, "three times.")])


@pytest.mark.parametrize("fn, words", [
    (lambda x: x * x, "you squared x."),                 # equals the truth at x = 2: fine
    (lambda x: 3 * x, "three times."),
    (lambda x: 3 * x if x == 1 else 0.0, "is off"),      # that mistake on one case only
    (lambda x: 4.0, "is off"),                           # right at x = 2 only
    (lambda x: 2 * x if x < 4 else 0.0, "a fresh random case"),
], ids=["square", "three", "three_once", "constant", "fixed_only"])
def test_a_mistake_is_named_only_when_it_fits_every_case(capsys, fn, words):
    result = SQUARE.check(fn)
    assert not result and words in capsys.readouterr().out


def test_two_mistakes_that_fit_equally_name_neither(capsys):
    twins = toy(lambda x: [(2 * (2 * x), "doubled twice?"), (4 * x, "four times.")])
    assert not twins.check(lambda x: 4 * x)
    assert "is off" in capsys.readouterr().out


def test_a_mistake_may_raise_where_the_answer_raises(capsys):
    shaped = toy(lambda x: [(RAISES if x > 1 else 5.0, "you divided by x - 1."),
                            (3 * x, "three times.")])
    assert not shaped.check(lambda x: 5.0 if x == 1 else 1 / 0)
    assert "you divided by x - 1." in capsys.readouterr().out
    assert not shaped.check(lambda x: 5.0 if x == 2 else 1 / 0)   # raises elsewhere: no name
    assert "raised ZeroDivisionError" in capsys.readouterr().out


def test_another_output_must_be_right_or_the_same_mistake():
    """A mistake in one output is named only if the other outputs are right or make it too."""
    pair = Exercise(
        outputs=(("up", None), ("down", None)),
        cases=lambda: [(f"k = {k}", dict(k=k)) for k in (2, 3)],
        random_case=lambda rng: ("fresh", dict(k=4)),
        answers=lambda k: ((8 * k, 8 * k), [((8 * k, 0), "only uploads counted."),
                                            ((0, 8 * k), "only downloads counted.")], {}),
        nudge="See the toy notebook.")
    assert "only downloads counted" in pair.check(lambda k: (0, 8 * k)).message
    assert "is off" in pair.check(lambda k: (0, 0)).message


# ------------------------------------------------------------------------------ the result

def test_the_result_is_truthy_when_solved_and_displays_nothing_in_ipython():
    formatters = pytest.importorskip("IPython.core.formatters")
    passed, failed = CheckResult(True, "fine"), CheckResult(False, "not yet", {"x": 1})
    assert passed and not failed and failed.case == {"x": 1}
    assert repr(passed) == "CheckResult(passed=True)"
    # a notebook cell ending in a checker call shows the printed verdict only, no True/False
    assert formatters.DisplayFormatter().format(failed) == ({}, {})


def test_a_checker_that_fails_itself_still_gives_a_verdict(capsys):
    @_checking.guarded
    def broken(fn):
        raise KeyError("a checker bug")
    result = broken(len)
    assert not result and "the checker itself failed" in capsys.readouterr().out


# ------------------------------------------------------------------------ reading answers

@pytest.mark.parametrize("value, want", [
    (3, 3.0), (np.int64(3), 3.0), (np.float32(0.5), 0.5), (fractions.Fraction(1, 4), 0.25),
    (decimal.Decimal("0.18"), 0.18), ([1, 2.5], [1.0, 2.5]), ((1, 2), [1.0, 2.0]),
    (np.array([fractions.Fraction(1, 2)], dtype=object), [0.5]), (10**300, 1e300),
    (np.uint64(2**63), 2.0**63), (float("nan"), float("nan")),
])
def test_real_numbers_of_any_type_are_read(value, want):
    array, problem = as_real(value)
    assert problem is None
    np.testing.assert_array_equal(array, np.asarray(want, dtype=float))


class Hostile:
    """Everything numpy or the checker might touch raises."""
    def __array__(self, *args, **kwargs):
        raise RuntimeError

    def __len__(self):
        raise RuntimeError

    def __float__(self):
        raise RuntimeError

    def __repr__(self):
        raise RuntimeError

    def __format__(self, spec):
        raise RuntimeError


@pytest.mark.parametrize("value, words", [
    (10**400, "an integer of about 401 digits, too large for a float"),
    (0.18 + 0j, "the complex number 0.18+0j"),
    (decimal.Decimal("0.18") + 0, None),
    (True, "a bool (True)"),
    ("0.5", "a str, '0.5'"),
    (["a", "b"], "an array of strings"),
    ([1.0, None], "a sequence holding None"),
    ([[1.0], [2.0, 3.0]], "a list of 2 items that numpy cannot read as numbers"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "an array of datetime64[D]"),
    (Hostile(), "a Hostile that numpy cannot read as numbers"),
    (object(), "an object"),
])
def test_anything_else_is_described_not_raised(value, words):
    array, problem = as_real(value)
    if words is None:
        assert problem is None
    else:
        assert array is None and words in problem


def test_describe_never_raises():
    class NoName(type):
        @property
        def __name__(cls):
            raise RuntimeError
    for value in (Hostile(), NoName("X", (), {})(), 10**5000, fractions.Fraction(10**400, 3)):
        assert isinstance(describe(value), str)


# ---------------------------------------------------------------- watching a student's call

def test_a_call_captures_printing_and_restores_the_profiler(capsys):
    def profiler(frame, event, arg):
        pass
    sys.setprofile(profiler)
    try:
        outcome = Session().call(lambda x: print("hello", x) or x, dict(x=1))
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert outcome.value == 1 and capsys.readouterr().out == ""


def test_a_call_of_a_library_function_is_seen_however_it_was_imported():
    from fedlite.reference import linear_loss_grad as renamed
    session = Session(_checking.library_codes(["fedlite.reference.linear_loss_grad"]))
    X, y, w = np.ones((2, 1)), np.ones(2), np.ones(1)
    session.call(lambda: [renamed(X, y, w, 0.0)][0], {})
    assert session.used == ["fedlite.reference.linear_loss_grad"]
    assert "calls fedlite.reference.linear_loss_grad" in session.cheat()


def test_a_replaced_function_is_put_back_and_reported():
    original, session = reference.linear_loss_grad, Session()

    def replace():
        reference.linear_loss_grad = None
        np.linalg.eigvalsh = None
    outcome = session.call(replace, {})
    assert outcome.error is None
    message = session.cheat()
    assert "replaced fedlite.reference.linear_loss_grad" in message
    assert reference.linear_loss_grad is original and np.linalg.eigvalsh is not None


def test_a_call_that_exits_or_raises_is_an_outcome():
    session = Session()
    assert "raised SystemExit" in session.call(sys.exit, {}).error

    class Odd(BaseException):
        pass
    assert "raised Odd" in session.call(lambda: (_ for _ in ()).throw(Odd), {}).error
    assert session.call(lambda: 1 / 0, {}).error.startswith("your function raised Zero")
    stub = session.call(lambda: (_ for _ in ()).throw(NotImplementedError), {})
    assert stub.stub and "still the stub" in stub.error


def test_inputs_changed_in_place_are_named():
    session = Session()
    outcome = session.call(lambda a, d: (a.fill(0), d.pop("k")), dict(a=np.ones(2), d={"k": 1}))
    assert outcome.changed == ("a", "d")


def test_a_printed_case_rebuilds_the_same_inputs():
    args = dict(X=np.array([[0.1, -2.0]]), masks={(0, 1): np.array([3, 4])}, k=3, flag=True,
                updates=[np.array([0.5]), np.array([1.5])], scale=np.float64(0.3))
    seen = {}
    eval(_checking.format_call(lambda: None, args),  # noqa: S307
         {"np": np, "your_function": lambda **kwargs: seen.update(kwargs)})
    assert seen.keys() == args.keys()
    for name in args:
        assert repr(seen[name]) == repr(args[name]) or np.array_equal(seen[name], args[name]) \
            or all(np.array_equal(a, b) for a, b in zip(seen[name], args[name]))
