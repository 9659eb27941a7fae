#!/usr/bin/env python3
"""The two commands of the course, with nothing but Python 3.10+ installed.

    python3 tasks.py lab     set up .venv (first time only) and open the course in JupyterLab
    python3 tasks.py test    set up .venv (first time only) and run every test:
                             1/3 unit tests and nbval over every notebook,
                             2/3 the unit tests again with NUMBA_DISABLE_JIT=1,
                             3/3 the browser test: each notebook in a real JupyterLab in
                                 headless chromium, run, every slider moved (tests/browser)
    python3 tasks.py test --require-browser
                             the same, but no chromium is a failure, not a skip (CI: .ci/run)
    python3 tasks.py browser [--require-browser] [PYTEST_ARGS]
                             only the browser test, e.g. `python3 tasks.py browser -k 05`
    python3 tasks.py execute [NOTEBOOK ...]
                             re-run notebooks top to bottom in place (for committing outputs)
    python3 tasks.py flower [--participants 3 --rounds 5 --algorithm fedavg --model linear
                             --engine deployment|simulation ...]
                             run an experiment on a local Flower federation (a SuperLink and
                             one SuperNode process per participant), compare it with simulate,
                             stop every process (`python3 tasks.py flower --help`)

Set-up makes a project-local virtual environment in `.venv` and installs fedlite
(editable) with its test and flower extras into it (flwr: notebook 13 and tests/test_flower.py
start real Flower processes), the `browser` extra (playwright) the first time the browser test
runs, and `flower-simulation` (Ray, ~220 MB) only for `flower --engine simulation`.  It is
redone only when pyproject.toml changes, so the second run starts at once.  Extra arguments
after `test` go to pytest, e.g. `python3 tasks.py test -k linear`; they run steps 1 and 2
only, so that stays fast.

The browser test needs Debian's chromium at /usr/bin/chromium (or $FEDLITE_CHROMIUM):
`apt-get install chromium`.  playwright drives it and never downloads a browser.  Without
it, `test` says so loudly and skips step 3.  The browser test is marked `browser` and left
out of a plain `pytest` run; `pytest -m browser tests/browser` runs it.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".fedlite-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
# A cell that runs longer than CELL_TIMEOUT seconds fails (nbval, `execute`): no CI job hangs.
CELL_TIMEOUT = 300
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "nbval_sanitize.cfg",
         f"--nbval-cell-timeout={CELL_TIMEOUT}"]
CHROMIUM = os.environ.get("FEDLITE_CHROMIUM", "/usr/bin/chromium")


def say(msg: str) -> None:
    print(f"[fedlite] {msg}", flush=True)


def run(cmd: list, **env: str) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env={**os.environ, **env})


def installed() -> tuple[str, set]:
    """(pyproject hash, extras) of the last install into .venv; ("", set()) if none."""
    try:
        stamp = json.loads(STAMP.read_text())
        return stamp["pyproject"], set(stamp["extras"])
    except (OSError, ValueError, KeyError, TypeError):
        return "", set()


EXTRAS = ("test", "flower")  # what every command installs


def setup(extras: tuple = EXTRAS) -> None:
    """Create .venv and install fedlite[extras] into it, unless already done for this pyproject."""
    if sys.version_info < (3, 10):
        sys.exit(f"fedlite needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    done, done_extras = installed()
    if done == wanted and done_extras >= set(extras) and PYTHON.exists():
        return
    extras = sorted(set(extras) | done_extras)  # keep what an earlier run installed
    if not PYTHON.exists():
        say(f"creating a virtual environment in {VENV.name}/ (first run only)")
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # e.g. Debian/Ubuntu without the python3-venv package
            sys.exit(f"could not create {VENV}: {exc}\nOn Debian or Ubuntu: "
                     "sudo apt install python3-venv, then run this command again.")
    say("installing fedlite and its dependencies (first run only, a minute or two)")
    if run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"]) != 0:
        sys.exit("could not upgrade pip in .venv")
    if run([PYTHON, "-m", "pip", "install", "--quiet", "-e", f".[{','.join(extras)}]"],
           PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1") != 0:
        sys.exit("pip could not install fedlite; see the messages above")
    STAMP.write_text(json.dumps({"pyproject": wanted, "extras": extras}))


def lab(args: list) -> int:
    setup()
    say("compiling or loading fedlite's kernels")
    run([PYTHON, "-c", "import fedlite; fedlite.warmup()"])  # it prints what it did
    say("opening the course in JupyterLab (Ctrl+C twice to stop)")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        args = ["--allow-root", *args]  # containers often run as root; JupyterLab refuses otherwise
    return run([PYTHON, "-m", "jupyter", "lab", "notebooks/00_welcome.ipynb", *args])


def test(args: list) -> int:
    require_browser = "--require-browser" in args
    args = [arg for arg in args if arg != "--require-browser"]
    setup()
    env = {"PYTHONHASHSEED": "0"}
    say("1/3 unit tests (compiled kernels) and nbval over every notebook")
    status = run([PYTHON, "-m", "pytest", *NBVAL, "tests", "notebooks", *args], **env)
    say("2/3 unit tests again with NUMBA_DISABLE_JIT=1 (the kernels as plain Python)")
    status_nojit = run([PYTHON, "-m", "pytest", "tests", *args], NUMBA_DISABLE_JIT="1", **env)
    if args:
        say("3/3 browser test not run: pytest arguments were given "
            "(run it with `python3 tasks.py browser`)")
        return status or status_nojit
    say("3/3 browser test: every notebook in JupyterLab in headless chromium, every slider moved")
    status_browser = browser(["--require-browser"] if require_browser else [])
    return status or status_nojit or status_browser


def browser(args: list) -> int:
    """The browser test (tests/browser), one notebook at a time; loud when it cannot run."""
    require = "--require-browser" in args
    args = [arg for arg in args if arg != "--require-browser"]
    if not os.access(CHROMIUM, os.X_OK):
        banner = "#" * 78
        print(f"{banner}\n# BROWSER TEST NOT RUN: no chromium at {CHROMIUM}.\n"
              "# The widget explorers were NOT checked in a real browser.\n"
              "# Debian/Ubuntu: sudo apt-get install chromium (or set FEDLITE_CHROMIUM); "
              "CI installs it (.ci/run).\n" + banner, flush=True)
        return 1 if require else 0
    setup((*EXTRAS, "browser"))
    env = {"PYTHONHASHSEED": "0", **({"FEDLITE_REQUIRE_BROWSER": "1"} if require else {})}
    return run([PYTHON, "-m", "pytest", "-m", "browser", "-v", "-s", "tests/browser", *args], **env)


def execute(args: list) -> int:
    setup()
    notebooks = args or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    say(f"executing {len(notebooks)} notebook(s) in place")
    return run([PYTHON, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}", *notebooks], PYTHONHASHSEED="0")


def flower(args: list) -> int:
    """A fedlite experiment on a local Flower federation: python -m fedlite.flower ARGS."""
    simulation = "--engine=simulation" in args or any(
        a == "--engine" and b == "simulation" for a, b in zip(args, args[1:]))
    setup((*EXTRAS, "flower-simulation") if simulation else EXTRAS)
    return run([PYTHON, "-m", "fedlite.flower", *args])


def main() -> int:
    commands = {"lab": lab, "test": test, "browser": browser, "execute": execute,
                "flower": flower, "setup": lambda args: setup() or 0}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
