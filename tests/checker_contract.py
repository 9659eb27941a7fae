"""What every exercise checker promises, shared by the tests of fedlite.checks,
fedlite.checks_privacy and fedlite.checks_communication.

A checker takes the student's function, prints "✔ Correct ..." or "✘ Not yet: ..." (one to
three lines, no memory addresses, the same text every time for an answer wrong on the fixed
cases: nbval compares it) and returns a CheckResult, true when the answer is right; it never
raises, whatever the student's function does.  A named mistake must fit the answer on every
fixed case, so the fixed cases must tell the mistakes apart (`assert_cases_tell_mistakes_apart`).
"""
import decimal
import json
import fractions
import importlib.util
import itertools
import re
from pathlib import Path

import numpy as np

from fedlite._checking import RAISES, CheckResult, close

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def load_solutions(filename):
    """The teachers' reference solutions, solutions/<filename> (not part of the package)."""
    spec = importlib.util.spec_from_file_location(Path(filename).stem, SOLUTIONS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(capsys, checks, checker, fn):
    """(returned value, printed text) of checks.<checker>(fn)."""
    result = getattr(checks, checker)(fn)
    return result, capsys.readouterr().out


def assert_accepted(result, out):
    assert isinstance(result, CheckResult) and result.passed is True and bool(result)
    assert out.startswith("✔ Correct") and out.count("\n") == 1, out


def assert_rejected(result, out, words=(), absent=()):
    """Rejected with a short verdict that contains each of `words` and none of `absent`."""
    assert isinstance(result, CheckResult) and result.passed is False and not result
    assert out.startswith("✘ Not yet:") and "0x" not in out, out
    assert 1 <= len(out.splitlines()) <= 3, out
    for word in words:
        assert word in out, f"{word!r} not in {out!r}"
    for word in absent:
        assert word not in out, f"{word!r} in {out!r}"


def stub_none(*args):
    return None  # your code here


def stub_not_implemented(*args):
    raise NotImplementedError


def crashes(*args):
    return 1 / 0


def exits(*args):
    raise SystemExit(1)


def nudged(solution):
    """A numerically wrong answer: the solution's (first) result a little off."""
    def wrong(*args):
        result = solution(*args)
        if isinstance(result, tuple):
            return (result[0] * 1.001 + 0.01, *result[1:])
        return result * 1.001 + 0.01
    return wrong


def assert_deterministic(capsys, checks, checker, solution):
    """Stubs, crashes and a numerically wrong answer print the same text on every call."""
    for fn in (stub_none, crashes, nudged(solution)):
        first, second = run(capsys, checks, checker, fn), run(capsys, checks, checker, fn)
        assert first[1] == second[1]
        assert not first[0] and not second[0]


# ------------------------------------------------------------------- answers hostile to read

class ArrayRaises:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("no array for you")


class LengthRaises:
    def __len__(self):
        raise RuntimeError("no length")

    def __iter__(self):
        raise RuntimeError("no items")


HOSTILE = [  # (a value a student's function may return, words the verdict must contain)
    (10**400, ["too large for a float"]),
    (-10**5000, ["too large for a float"]),
    (0.18 + 0j, ["complex number 0.18+0j"]),
    (np.array([1 + 2j, 3j]), ["complex"]),
    (ArrayRaises(), ["ArrayRaises"]),
    (LengthRaises(), ["LengthRaises"]),
    ("0.5", ["a str"]),
    (True, ["bool"]),
    ({"x": 1.0}, ["dict"]),
    ((x for x in range(3)), ["generator"]),
    ([1.0, "a"], ["str"]),
    ([[1.0], [2.0, 3.0]], ["cannot read"]),
    (fractions.Fraction(10**400, 3), ["too large"]),
    (decimal.Decimal("sNaN"), ["sNaN"]),
    (object(), ["an object"]),
]


def assert_hostile_answers_get_a_verdict(capsys, checks, checker, num_outputs):
    """Every hostile value, returned alone or as each of the outputs, gives a verdict that
    says what the value is (checked where the value is read as one output)."""
    for value, words in HOSTILE:
        alone, tupled = value, (value,) * num_outputs
        for answer in (alone, tupled):
            result, out = run(capsys, checks, checker, lambda *args, answer=answer: answer)
            assert_rejected(result, out)
            if (answer is alone) == (num_outputs == 1):
                for word in words:
                    assert word in out, f"{word!r} not in {out!r} for {value!r}"


# ---------------------------------------------------------------- the fixed cases' design

def _differ(a, b, i):
    """True if mistake values a and b (per-output tuples, RAISES, or None) are told apart on
    output i on this case."""
    if a is RAISES or b is RAISES:
        return (a is RAISES) != (b is RAISES)
    return not close(a[i], b[i], nan=True)


def assert_cases_tell_mistakes_apart(exercise):
    """Every mistake differs from the right answer on some fixed case, and any two mistakes
    with different hints differ from each other on some fixed case (in an output they touch),
    so that naming a mistake needs no coincidence."""
    answers = [exercise.answer(args) for _, args in exercise.cases()]
    count = len(answers[0].mistakes)
    assert all(len(answer.mistakes) == count for answer in answers)
    messages = [message for _, message in answers[0].mistakes]
    for answer in answers:
        assert [message for _, message in answer.mistakes] == messages

    def values(m):
        return [answer.mistakes[m][0] for answer in answers]

    def touches(m, i):
        return any(v is RAISES or (v is not None and not close(v[i], answer.right[i]))
                   for v, answer in zip(values(m), answers))

    for m in range(count):
        assert any(touches(m, i) for i in range(len(exercise.outputs))), messages[m]
    for i in range(len(exercise.outputs)):
        relevant = [m for m in range(count) if touches(m, i)]
        for a, b in itertools.combinations(relevant, 2):
            if messages[a] == messages[b]:
                continue
            apart = False
            for va, vb, answer in zip(values(a), values(b), answers):
                right = answer.right
                if va is None or vb is None:  # one is undefined: the other must be wrong there
                    other = vb if va is None else va
                    apart |= other is not None and _differ(other, right, i)
                else:
                    apart |= _differ(va, vb, i)
            assert apart, f"output {i}: {messages[a]!r} and {messages[b]!r} agree on every case"


def lookup_table(exercise, solution):
    """A cheat: the right answers of the fixed cases, looked up; 0.0 for any other input."""
    table = [(args, solution(**args)) for _, args in exercise.cases()]

    def cheat(*args):
        for known, answer in table:
            if all(_equal(a, b) for a, b in zip(known.values(), args)):
                return answer
        return 0.0 if len(exercise.outputs) == 1 else (0.0,) * len(exercise.outputs)
    return cheat


def _equal(a, b):
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_equal, a, b))
    return np.shape(a) == np.shape(b) and np.array_equal(a, b)


# ------------------------------------------------------------------ the contract, as tests

STUBS = [  # (a student's function, words the verdict must contain)
    (stub_none, ["returned None", "stub"]),
    (stub_not_implemented, ["still the stub", "NotImplementedError"]),
    (crashes, ["raised ZeroDivisionError: division by zero"]),
    (exits, ["raised SystemExit"]),
    (None, ["pass your function itself", "you passed None"]),
    ("not a function", ["pass your function itself", "you passed a str"]),
]


class CheckerContract:
    """The tests every checker module passes.  Subclass it as `TestContract` in a test file and
    set: checks (the module), solutions (the teachers' module), checkers (the names), and the
    lists wrong [(checker, fn, words, absent)], calls_fedlite [(checker, fn, dotted name)] and
    other_forms [(checker, fn)]: correct answers written differently from the solution."""

    checks = solutions = None
    checkers = wrong = calls_fedlite = other_forms = ()

    def pytest_generate_tests(self, metafunc):
        exercises = sorted(self.checks._EXERCISES)
        values = {
            "checker": (self.checkers, list(self.checkers)),
            "exercise": (exercises, exercises),
            "stub": (STUBS, ["none", "not_implemented", "crash", "exit", "None", "str"]),
            "mistake": (self.wrong, [f"{w[0]}-{getattr(w[1], '__name__', '')}"
                                     for w in self.wrong]),
            "library_call": (self.calls_fedlite, [f"{c[0]}-{c[2]}" for c in self.calls_fedlite]),
            "form": (self.other_forms, [f"{f[0]}-{i}" for i, f in enumerate(self.other_forms)]),
        }
        for name in metafunc.fixturenames:
            if name in values:
                metafunc.parametrize(name, values[name][0], ids=values[name][1])

    def run(self, capsys, checker, fn):
        return run(capsys, self.checks, checker, fn)

    def num_outputs(self, checker):
        exercise = self.checks._EXERCISES.get(checker)
        return len(exercise.outputs) if exercise else 1

    def test_accepts_the_reference_solution(self, capsys, checker):
        assert_accepted(*self.run(capsys, checker, getattr(self.solutions, checker)))

    def test_accepts_other_correct_forms(self, capsys, form):
        assert_accepted(*self.run(capsys, *form))

    def test_names_the_mistake_only_when_it_fits_every_case(self, capsys, mistake):
        checker, fn, words, absent = mistake
        assert_rejected(*self.run(capsys, checker, fn), words, absent)

    def test_fixed_cases_tell_the_mistakes_apart(self, exercise):
        assert_cases_tell_mistakes_apart(self.checks._EXERCISES[exercise])

    def test_stubs_and_crashes_give_a_verdict_not_an_exception(self, capsys, checker, stub):
        fn, words = stub
        assert_rejected(*self.run(capsys, checker, fn), words)

    def test_hostile_answers_get_a_verdict_not_an_exception(self, capsys, checker):
        assert_hostile_answers_get_a_verdict(capsys, self.checks, checker,
                                             self.num_outputs(checker))

    def test_output_is_deterministic(self, capsys, checker):
        assert_deterministic(capsys, self.checks, checker, getattr(self.solutions, checker))

    def test_fallback_hint_points_to_the_notebook_and_is_not_the_formula(self, capsys, exercise):
        nudge = self.checks._EXERCISES[exercise].nudge
        assert "notebook" in nudge and "=" not in nudge and "Recall" not in nudge
        result, out = self.run(capsys, exercise, nudged(getattr(self.solutions, exercise)))
        assert_rejected(result, out, ["is off", nudge])

    def test_fallback_hint_names_a_section_that_exists(self, exercise):
        """The nudge's '"<heading>" in notebook NN' is a heading of that notebook (a renamed
        section or a renumbered notebook would leave the hint pointing nowhere)."""
        nudge = " ".join(self.checks._EXERCISES[exercise].nudge.split())
        title, number = re.search(r'"([^"]+)"\)? in notebook (\d\d)', nudge).groups()
        (path,) = NOTEBOOKS.glob(f"{number}_*.ipynb")
        headings = [line.lstrip("#").strip().replace("$", "")
                    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
                    if cell["cell_type"] == "markdown"
                    for line in "".join(cell["source"]).splitlines() if line.startswith("#")]
        assert title in headings, (title, path.name)

    def test_a_table_of_the_fixed_answers_fails_on_fresh_cases(self, capsys, exercise):
        """The printed case is the failing one, ready to paste: it rebuilds result.case."""
        cheat = lookup_table(self.checks._EXERCISES[exercise], getattr(self.solutions, exercise))
        result, out = self.run(capsys, exercise, cheat)
        assert_rejected(result, out, ["a fresh random case", "The case: cheat("])
        seen = []
        call = re.search(r"The case: (cheat\(.*\))$", out, re.M).group(1)
        eval(call, {"np": np, "cheat": lambda **kwargs: seen.append(kwargs)})  # noqa: S307
        assert seen[0].keys() == result.case.keys()
        assert all(_equal(seen[0][name], result.case[name]) for name in seen[0])

    def test_an_answer_that_calls_fedlite_is_told_so_and_not_passed(self, capsys, library_call):
        checker, fn, name = library_call
        assert_rejected(*self.run(capsys, checker, fn), [f"calls {name}", "yourself"])
