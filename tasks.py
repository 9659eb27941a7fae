#!/usr/bin/env python3
"""The two commands of the course, with nothing but Python 3.10+ installed.

    python3 tasks.py lab     set up .venv (first time only) and open the course in JupyterLab
    python3 tasks.py test    set up .venv (first time only) and run every test:
                             unit tests, the same unit tests with NUMBA_DISABLE_JIT=1,
                             and nbval over every notebook
    python3 tasks.py execute [NOTEBOOK ...]
                             re-run notebooks top to bottom in place (for committing outputs)

Set-up makes a project-local virtual environment in `.venv` and installs fedlite
(editable) with its test extras into it.  It is redone only when pyproject.toml
changes, so the second run starts at once.  Extra arguments after `test` go to
pytest, e.g. `python3 tasks.py test -k linear`.
"""
from __future__ import annotations

import hashlib
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
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "nbval_sanitize.cfg"]


def say(msg: str) -> None:
    print(f"[fedlite] {msg}", flush=True)


def run(cmd: list, **env: str) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env={**os.environ, **env})


def setup() -> None:
    """Create .venv and install fedlite[test] into it, unless already done for this pyproject."""
    if sys.version_info < (3, 10):
        sys.exit(f"fedlite needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
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
    if run([PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[test]"]) != 0:
        sys.exit("pip could not install fedlite; see the messages above")
    STAMP.write_text(wanted)


def lab(args: list) -> int:
    setup()
    say("compiling or loading fedlite's kernels")
    run([PYTHON, "-c", "import fedlite; print(fedlite.warmup())"])
    say("opening the course in JupyterLab (Ctrl+C twice to stop)")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        args = ["--allow-root", *args]  # containers often run as root; JupyterLab refuses otherwise
    return run([PYTHON, "-m", "jupyter", "lab", "notebooks/00_welcome.ipynb", *args])


def test(args: list) -> int:
    setup()
    env = {"PYTHONHASHSEED": "0"}
    say("1/2 unit tests (compiled kernels) and nbval over every notebook")
    status = run([PYTHON, "-m", "pytest", *NBVAL, "tests", "notebooks", *args], **env)
    say("2/2 unit tests again with NUMBA_DISABLE_JIT=1 (the kernels as plain Python)")
    status_nojit = run([PYTHON, "-m", "pytest", "tests", *args], NUMBA_DISABLE_JIT="1", **env)
    return status or status_nojit


def execute(args: list) -> int:
    setup()
    notebooks = args or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    say(f"executing {len(notebooks)} notebook(s) in place")
    return run([PYTHON, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                "--ExecutePreprocessor.timeout=600", *notebooks], PYTHONHASHSEED="0")


def main() -> int:
    commands = {"lab": lab, "test": test, "execute": execute, "setup": lambda args: setup() or 0}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
