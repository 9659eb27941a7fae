"""The machinery behind the exercise checkers (`fedlite.checks`, `checks_privacy`,
`checks_communication`); not for students.

An `Exercise` is a checker written as data: fixed cases (the same on every run, so the verdict
for a wrong answer is the same text every time), a generator of fresh random cases (drawn from
new entropy on every call, so a table of the fixed answers cannot pass), the right answer and
the usual mistakes computed by the checker's own copy of the maths, and a nudge for when no
mistake fits.  `Exercise.check(fn)` prints one verdict and returns a `CheckResult`.

What it promises:
- It never raises, whatever `fn` does or returns (raises, exits, prints, returns 10**400, a
  Fraction, a complex, an object whose `__array__` raises...); a checker bug becomes a verdict.
- A mistake is named only if the answer equals that mistake on every fixed case (where the
  mistake is defined), so a coincidence on one case never names the wrong mistake.
- The expected answers are computed after the student's call, by formulas inside the checker;
  fedlite's public functions are never used as the oracle, and an answer that replaces one of
  them (or anything else in fedlite or numpy) during the call is caught and undone.
- An answer that calls the fedlite function the exercise asks for is told so and not passed.
"""
from __future__ import annotations

import contextlib
import copy
import decimal
import importlib
import io
import math
import numbers
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

RTOL, ATOL = 1e-6, 1e-12  # a student's float64 answer matches the checker's far closer than this
RAISES = "raises"  # a mistake's value on a case where making that mistake raises an exception
_MISSING = object()


# ------------------------------------------------------------------------------- the verdict

class CheckResult:
    """What a checker returns: true when the exercise is solved.

    The verdict line is printed by the checker itself, so a notebook shows it once: the result
    displays nothing in IPython/Jupyter (no stray `True`/`False` under the verdict), while
    `assert checks.linear_loss(fn)` and `if checks.weighted_average(fn): ...` still work.
    `message` is the verdict's text; `case` holds the inputs of the case that failed (a dict of
    argument name -> value), or None.
    """

    __slots__ = ("passed", "message", "case")

    def __init__(self, passed, message, case=None):
        self.passed, self.message, self.case = bool(passed), message, case

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self):
        """Show nothing: the verdict was printed when the checker ran."""


def verdict(passed, message, case=None):
    """Print '✔ Correct: ...' or '✘ Not yet: ...' and return the CheckResult."""
    print(f"✔ Correct: {message}" if passed else f"✘ Not yet: {message}")
    return CheckResult(passed, message, case)


def guarded(check):
    """Wrap a checker body so that nothing escapes it: a failure of the checker itself (which
    should never happen) is a verdict too, never an exception in the student's notebook."""
    def run(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (a checker must never raise)
            return verdict(False, f"the checker itself failed ({type(exc).__name__}) on your "
                                  f"function's answer; please tell your teacher.")
    return run


def not_a_function(fn):
    return verdict(False, f"pass your function itself (my_fn, not my_fn(...)); "
                          f"you passed {describe(fn)}.")


# ----------------------------------------------------------------------- describing values

def _number_text(value):
    """A number as short text, whatever its type: never raises, never prints 400 digits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
        if abs(value) < 10**15:
            return str(value)
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, numbers.Rational):  # a Fraction
        try:
            return format(float(value), ".6g")
        except OverflowError:
            return "a fraction too large for a float"
    return format(value, ".6g")  # float, complex, Decimal


def describe(value):
    """A short description of any value, free of memory addresses: 'an array of shape (3,)'."""
    try:
        if value is None or isinstance(value, (bool, np.bool_)):
            return str(value)
        if isinstance(value, np.ndarray):
            return f"an array of shape {value.shape}"
        if isinstance(value, (tuple, list)):
            return f"{_a(type(value).__name__)} of {len(value)} items"
        if isinstance(value, (str, bytes)):
            return f"{_a(type(value).__name__)}, {value[:20]!r}"
        if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
            return f"the complex number {_number_text(value)}"
        if isinstance(value, (numbers.Number, decimal.Decimal)):
            text = _number_text(value)
            return text if text.startswith(("an integer", "a fraction")) else f"the number {text}"
        return _a(type(value).__name__)
    except Exception:  # noqa: BLE001 (an object hostile to inspection)
        return "an object the checker cannot describe"


def _a(noun):
    """'a str', 'an object'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def as_real(value):
    """(float64 array, None) for any real number or array of them (ints, floats, numpy scalars,
    Fraction, Decimal, lists, tuples), else (None, a description of what value is)."""
    try:
        if isinstance(value, (bool, np.bool_)):
            return None, f"a bool ({value})"
        if isinstance(value, (str, bytes)):
            return None, describe(value)
        if isinstance(value, (numbers.Real, decimal.Decimal)) and np.ndim(value) == 0:
            return _real_scalar(value)
        try:
            array = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 (ragged lists, __array__ that raises...)
            return None, (f"{describe(value)} that numpy cannot read as numbers "
                          f"({type(exc).__name__})")
        kind = array.dtype.kind
        if kind in "iuf":
            with np.errstate(all="ignore"):
                return array.astype(np.float64), None
        if kind == "c":
            return None, ("an array of complex numbers" if array.ndim
                          else describe(complex(array)))
        if kind == "b":
            return None, "an array of bools" if array.ndim else f"a bool ({bool(array)})"
        if kind in "US":
            return None, "an array of strings" if array.ndim else describe(value)
        if kind != "O":
            return None, f"an array of {array.dtype}" if array.ndim else describe(value)
        out = np.empty(array.shape)
        for index, item in np.ndenumerate(array):
            if (isinstance(item, (bool, np.bool_))
                    or not isinstance(item, (numbers.Real, decimal.Decimal))):
                text = describe(item)
                return None, text if array.ndim == 0 else f"a sequence holding {text}"
            number, problem = _real_scalar(item)
            if problem:
                return None, problem
            out[index] = number
        return out, None
    except Exception:  # noqa: BLE001 (an object hostile to inspection)
        return None, describe(value)


def _real_scalar(value):
    try:
        return np.array(float(value)), None
    except OverflowError:
        text = describe(value)
        return None, text if "too large" in text else f"{text}, too large for a float"
    except (TypeError, ValueError):
        return None, describe(value)


# ------------------------------------------------------------------------- calling students

@dataclass
class Outcome:
    """What one call of the student's function gave: a value, or an error message."""
    value: object = None
    error: str | None = None   # what went wrong, as the verdict should say it
    stub: bool = False          # the error is NotImplementedError (the untouched stub)
    changed: tuple = ()         # names of the arguments the function changed in place


def _same(a, b):
    """True if b still equals a (to spot inputs changed in place)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_same(a[k], b[k]) for k in a))
    return type(a) is type(b) and a == b


def library_codes(names):
    """{code object: dotted name} of fedlite functions ('fedlite.module.function' or a
    Class.method; a numba dispatcher counts by its Python function).  Called when a checker
    module is imported, so that a function replaced later is still known by its original."""
    codes = {}
    for dotted in names:
        for code in _resolve(dotted):
            codes[code] = dotted
    return codes


def _resolve(dotted):
    """The code objects behind one dotted name, or () if it cannot be found."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001 (a module that cannot be imported is not used)
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return ()
        codes = []
        for candidate in (obj, getattr(obj, "py_func", None)):
            code = getattr(candidate, "__code__", None)
            if code is not None:
                codes.append(code)
        return tuple(codes)
    return ()


class Session:
    """Calls a student's function safely, and watches what it does.

    library: {code: dotted name} (see `library_codes`) of fedlite functions that compute the
    exercise's answer; a call of any of them (however it was imported) is recorded in `used`.
    oracle: the checker's own functions, which count as the answer too.  Every call runs with
    numpy's warnings silenced, the function's printing captured, and exceptions caught.
    `audit()` puts back anything in fedlite, numpy or math that the function replaced.
    """

    def __init__(self, library=None, oracle=()):
        self.codes = dict(library or {})
        for function in oracle:
            self.codes[function.__code__] = f"the checker's own {function.__name__}"
        self.used = []
        names = [name for name in list(sys.modules)
                 if name == "fedlite" or name.startswith("fedlite.")]
        self._snapshot = [(name, vars(sys.modules[name]).copy())
                          for name in names + ["numpy", "numpy.linalg", "math"]
                          if name in sys.modules]

    def call(self, fn, args, keep=()):
        """fn(*args.values()) on copies of args (except the names in keep): an Outcome."""
        copies = {name: value if name in keep else copy.deepcopy(value)
                  for name, value in args.items()}
        codes, used = self.codes, self.used

        def watch(frame, event, arg):
            if event == "call" and frame.f_code in codes and codes[frame.f_code] not in used:
                used.append(codes[frame.f_code])

        previous = sys.getprofile()
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")
                stack.enter_context(np.errstate(all="ignore"))
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
                sys.setprofile(watch if codes else previous)
                try:
                    value = fn(*copies.values())
                finally:
                    sys.setprofile(previous)
        except NotImplementedError:
            return Outcome(error="your function is still the stub (it raises "
                                 "NotImplementedError): replace that line with your code.",
                           stub=True)
        except KeyboardInterrupt:  # the student pressed stop: stop
            raise
        except BaseException as exc:  # noqa: BLE001 (even SystemExit becomes the verdict)
            return Outcome(error=_raised(exc, args))
        changed = tuple(name for name in args
                        if name not in keep and not _same(args[name], copies[name]))
        return Outcome(value=value, changed=changed)

    def audit(self):
        """Put back whatever the student's function replaced; the dotted names put back."""
        restored = []
        for module_name, saved in self._snapshot:
            module = sys.modules.get(module_name)
            namespace = vars(module) if module is not None else {}
            for key, value in saved.items():
                if module is not None and namespace.get(key, _MISSING) is not value:
                    namespace[key] = value
                    restored.append(f"{module_name}.{key}")
        return restored

    def cheat(self):
        """What to tell a student whose function used or replaced fedlite, or None."""
        restored = self.audit()
        if restored:
            return (f"your function replaced {restored[0]} (the checker has put it back). "
                    f"The checker computes the right answers itself, so that cannot help: "
                    f"write the answer with numpy.")
        if self.used:
            if self.used[0].startswith("the checker's own"):
                return ("your function calls the checker's own answer: write the answer "
                        "yourself with numpy.")
            return (f"your function calls {self.used[0]}, fedlite's own version of what this "
                    f"exercise asks you to write. Use it freely later; here, write the answer "
                    f"yourself with numpy.")
        return None


def _raised(exc, args):
    """'your function raised ValueError: ...', with a shape hint for shape errors."""
    try:
        lines = re.sub(r"0x[0-9a-fA-F]+", "0x…", str(exc)).splitlines() or [""]
    except Exception:  # noqa: BLE001 (an exception whose str raises)
        lines = [""]
    text = f"your function raised {type(exc).__name__}: {lines[0][:150]}".rstrip(": ")
    if isinstance(exc, ValueError) and re.search("shape|mismatch|broadcast|align", lines[0]):
        shapes = ", ".join(f"{k} {v.shape}" for k, v in args.items()
                           if isinstance(v, np.ndarray))
        text += f"\nHint: print the .shape of each array (here {shapes})."
    return text


def function_name(fn):
    """fn's name if it is a plain identifier (for the printed call), else 'your_function'."""
    try:
        name = fn.__name__
    except Exception:  # noqa: BLE001
        return "your_function"
    return name if isinstance(name, str) and name.isidentifier() else "your_function"


def format_value(value):
    """A value as Python source a student can paste: np.array([...]), numbers, dicts, lists."""
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(map(format_value, value))
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def format_call(fn, args):
    """'my_fn(X=np.array([[0.5, 1.2]]), b=0.3)': the case, ready to paste."""
    inner = ", ".join(f"{name}={format_value(value)}" for name, value in args.items())
    return f"{function_name(fn)}({inner})"


def fresh_failure(problem, call):
    """The verdict for a failure on a fresh random case: the problem, then the case to paste."""
    if "fresh random case" not in problem:
        first, _, rest = problem.partition("\n")
        problem = f"on a fresh random case (the fixed ones pass), {first}" + (
            f"\n{rest}" if rest else "")
    return f"{problem}\nThe case: {call}"


def fresh_rng():
    """A generator seeded from new operating-system entropy: different cases on every call."""
    return np.random.default_rng(np.random.SeedSequence())


def decimals(rng, low, high, size=None, places=1):
    """Uniform numbers rounded to a few decimals: printed exactly, short to read."""
    return np.round(rng.uniform(low, high, size), places)


# ------------------------------------------------------------------------------- exercises

def close(got, want, nan=False):
    return got.shape == want.shape and np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=nan)


def _shape_problem(who, like, got, want, hint, label):
    """The message for an answer of the wrong shape."""
    if want.ndim == 0:
        text = f"{who} should be a single number, but it has shape {got.shape}"
    else:
        text = f"{who} has shape {got.shape} but should have shape {want.shape}"
        text += f", like {like}" if like else ""
    if hint is None and got.size == want.size and close(got.reshape(want.shape), want):
        hint = ("The numbers are right: return a 1-D array (e.g. with .ravel())." if want.ndim == 1
                else "The numbers are right, only the layout differs.")
    elif hint is None and got.ndim == 2 and close(got.T, want):
        hint = "It is the transpose of the right answer."
    return f"{text} (on {label}). {hint or ''}".strip()


@dataclass(frozen=True)
class Answer:
    right: tuple        # one float array per output
    mistakes: list      # [(one float array per output, or None where undefined, message)]
    shape_hints: dict   # {(output name, a wrong shape): hint}


@dataclass(frozen=True)
class Exercise:
    """A checker as data.

    outputs: ((name, like), ...) per returned value, `like` naming the input of the same shape.
    cases(): the fixed [(label, args)]; random_case(rng): one fresh (label, args), with values
    short enough to print.  answers(**args) -> (right, [(wrong, message)...], {(name, shape):
    hint}), single values for a one-output exercise; a mistake may be None on a case where it
    is not defined, or RAISES where making it raises (an `X @ r` of the wrong shape), and must
    carry the same message, at the same place in the list, on every case.  nudge: the fallback hint
    (where to look, never the formula).  library: dotted names of fedlite functions that
    compute the answer, looked up once, when the Exercise is made.
    """
    outputs: tuple
    cases: Callable
    random_case: Callable
    answers: Callable
    nudge: str
    praise: str = ""
    library: tuple = ()
    num_random: int = 10
    codes: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "codes", library_codes(self.library))

    def check(self, fn):
        return guarded(self._check)(fn)

    def _check(self, fn):
        if not callable(fn):
            return not_a_function(fn)
        session = Session(self.codes, oracle=(self.answers,))
        fixed = self.cases()
        outcomes = [session.call(fn, args) for _, args in fixed]
        cheat = session.cheat()
        if cheat:
            return verdict(False, cheat)
        problem, case = self.judge(fixed, outcomes)
        if problem:
            return verdict(False, problem, case)
        rng = fresh_rng()
        for _ in range(self.num_random):
            label, args = self.random_case(rng)
            outcome = session.call(fn, args)
            cheat = session.cheat()
            if cheat:
                return verdict(False, cheat)
            problem, case = self.judge([(label, args)], [outcome], name_mistakes=False)
            if problem:
                return verdict(False, fresh_failure(problem, format_call(fn, args)), case)
        total = f"{len(fixed)} fixed and {self.num_random} fresh random"
        return verdict(True, f"your function passes all {total} test cases. "
                             f"{self.praise}".strip())

    def answer(self, args):
        """The checker's Answer on one case (outputs as float arrays)."""
        single = len(self.outputs) == 1
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            right, wrong, hints = self.answers(**args)
            right = (right,) if single else right
            mistakes = [(values if values is None or values is RAISES else
                         tuple(np.asarray(v, dtype=float)
                               for v in ((values,) if single else values)),
                         message) for values, message in wrong]
        return Answer(tuple(np.asarray(v, dtype=float) for v in right), mistakes, hints)

    def read(self, outcome, label, answer):
        """The answer as one float array per output, or (None, what is wrong with it)."""
        if outcome.error:
            return None, outcome.error if outcome.stub else _on(outcome.error, label)
        names = [name for name, _ in self.outputs]
        value, single = outcome.value, len(self.outputs) == 1
        if value is None:
            return None, (f"your function returned None: is it still the stub? Write the code "
                          f"and return {', '.join(names)}.")
        if single:
            values = (value,)
        elif (isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim)) \
                and len(value) == len(names):
            values = tuple(value)
        else:
            return None, (f"return {len(names)} values ({', '.join(names)}); your function "
                          f"returned {describe(value)}.")
        arrays = []
        for (name, like), got, want in zip(self.outputs, values, answer.right):
            who = "your answer" if single else name
            if got is None:
                return None, f"{who} is None: compute it and return it too."
            array, what = as_real(got)
            if what:
                kind = "a real number" if want.ndim == 0 else "an array of real numbers"
                return None, f"{who} should be {kind}, but it is {what}."
            if want.ndim == 0 and array.size == 1:
                array = array.reshape(())
            if array.shape != want.shape:
                hint = answer.shape_hints.get((name, array.shape))
                return None, _shape_problem(who, like, array, want, hint, label)
            arrays.append(array)
        return tuple(arrays), None

    def judge(self, labelled, outcomes, name_mistakes=True):
        """(the first problem, its case's inputs) over these cases, or (None, None)."""
        answers = [self.answer(args) for _, args in labelled]   # only after the student's calls
        read, problems = [], []
        for (label, args), outcome, answer in zip(labelled, outcomes, answers):
            arrays, problem = self.read(outcome, label, answer)
            read.append(arrays)
            problems.append(problem)
        single = len(self.outputs) == 1
        names = [name for name, _ in self.outputs]
        if any(problems):
            raised = {c for c, outcome in enumerate(outcomes) if outcome.error and not outcome.stub}
            if name_mistakes and raised and all(p is None or c in raised
                                                for c, p in enumerate(problems)):
                for i, name in enumerate(names):  # a mistake that raises where the answer did
                    named = self._named(i, read, answers, raised)
                    if named:
                        return (named if single else f"{name}: {named}"), labelled[min(raised)][1]
            first = next(c for c, p in enumerate(problems) if p)
            return problems[first], labelled[first][1]
        for i, name in enumerate(names):
            wrong = [c for c in range(len(labelled)) if not close(read[c][i], answers[c].right[i])]
            if not wrong:
                continue
            who = "your answer" if single else name
            label, args = labelled[wrong[0]]
            named = self._named(i, read, answers, set()) if name_mistakes else None
            if named:
                return (named if single else f"{name}: {named}"), args
            got, want = read[wrong[0]][i], answers[wrong[0]].right[i]
            if not np.isfinite(got).all():
                return (f"{who} contains NaN or inf (on {label}): look for a division by zero "
                        f"or an overflow."), args
            with np.errstate(all="ignore"):
                error = float(np.max(np.abs(got - want)))
            return f"{who} is off (on {label}): largest error {error:.2g}.\n{self.nudge}", args
        for (label, args), outcome in zip(labelled, outcomes):
            if outcome.changed:
                return (f"the values are right, but your function changed the caller's "
                        f"{' and '.join(outcome.changed)} in place (e.g. with -= or *=).\n"
                        f"Build a new array instead (x_new = x - ...), leaving the caller's "
                        f"alone."), args
        return None, None

    @staticmethod
    def _named(i, read, answers, raised):
        """The message of the one mistake that explains output i on every case, or None.

        A mistake explains it when the answer equals the mistake's output i on every case
        where the mistake is defined (and each other output equals the mistake's or the right
        one), raised exactly where the mistake raises, and every case the answer gets wrong
        (or raised on) is one where the mistake is defined.
        """
        wrong = set(raised) | {c for c, arrays in enumerate(read) if arrays is not None
                               and not close(arrays[i], answers[c].right[i])}
        messages = set()
        for m, (_, message) in enumerate(answers[0].mistakes):
            values = [answer.mistakes[m][0] for answer in answers]
            if any(values[c] is None for c in wrong):
                continue
            if any((values[c] is RAISES) != (c in raised)
                   for c in range(len(values)) if values[c] is not None):
                continue
            defined = [c for c, v in enumerate(values) if v is not None and v is not RAISES]
            touches = len(defined) < sum(v is not None for v in values) or any(
                not close(values[c][i], answers[c].right[i]) for c in defined)
            if touches and all(close(read[c][i], values[c][i], nan=True) and all(
                    close(read[c][j], values[c][j], nan=True) or close(read[c][j], right)
                    for j, right in enumerate(answers[c].right)) for c in defined):
                messages.add(message)
        return messages.pop() if len(messages) == 1 else None


def _on(text, label):
    """Add '(on <case>)' to the first line of a message."""
    first, newline, rest = text.partition("\n")
    return f"{first.rstrip('.')} (on {label}).{newline}{rest}"
