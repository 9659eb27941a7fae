"""What every exercise checker promises, shared by the tests of fedlite.checks,
fedlite.checks_privacy and fedlite.checks_communication.

A checker takes the student's function, prints "✔ Correct ..." or "✘ Not yet: ..." (one to
three lines, no memory addresses, the same text every time: nbval compares it) and returns a
bool; it never raises, whatever the student's function does.
"""
import importlib.util
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def load_solutions(filename):
    """The teachers' reference solutions, solutions/<filename> (not part of the package)."""
    spec = importlib.util.spec_from_file_location(Path(filename).stem, SOLUTIONS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(capsys, checks, checker, fn):
    """(returned value, printed text) of checks.<checker>(fn)."""
    ok = getattr(checks, checker)(fn)
    return ok, capsys.readouterr().out


def assert_accepted(ok, out):
    assert ok is True
    assert out.startswith("✔ Correct")


def assert_rejected(ok, out, words=()):
    """Rejected with a short verdict that contains each of `words`."""
    assert ok is False
    assert out.startswith("✘ Not yet:") and "0x" not in out
    assert 1 <= len(out.splitlines()) <= 3
    for word in words:
        assert word in out, f"{word!r} not in {out!r}"


def stub_none(*args):
    return None  # your code here


def stub_not_implemented(*args):
    raise NotImplementedError


def crashes(*args):
    return 1 / 0


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
        assert first == second
        assert first[0] is False
