"""Every notebook in a real JupyterLab, in headless chromium: it runs, every control redraws.

Slow (a JupyterLab per notebook), so marked `browser` and left out of a plain `pytest` run
(pyproject's addopts say -m "not browser").  Run it with `python3 tasks.py test` (its third
step) or `python3 tasks.py browser [-k 05]`, i.e. `pytest -m browser tests/browser`.

Without chromium or playwright the tests are skipped with a loud reason; with
FEDLITE_REQUIRE_BROWSER=1 (CI sets it) they fail instead, so CI cannot pass without them.
First the checker is checked on small notebooks in testdata/: it must pass a live one and fail
a dead slider, an error cell and a slider callback that raises.
"""
import os
from pathlib import Path

import pytest

import labcheck

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted((HERE.parent.parent / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="module", autouse=True)
def browser():
    missing = labcheck.browser_missing()
    if missing and os.environ.get("FEDLITE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FEDLITE_REQUIRE_BROWSER=1, but the browser test cannot run: {missing}")
    if missing:
        pytest.skip(f"BROWSER TEST NOT RUN: {missing}")


def check(path, **kwargs):
    report = labcheck.check(path, **kwargs)
    print(report.summary())  # pytest shows it with -s or -rA, and for a failure
    return report


def test_the_checker_passes_a_notebook_whose_sliders_redraw_its_plot():
    report = check(HERE / "testdata" / "live.ipynb")
    assert report.ok, report.summary()
    assert [s.status for s in report.sliders] == ["live", "live"]


def test_the_checker_fails_sliders_that_redraw_nothing():
    report = check(HERE / "testdata" / "dead.ipynb", slider_wait=5)
    assert [s.status for s in report.sliders] == ["dead", "dead"]
    assert len(report.failures) == 2 and all("DEAD slider" in f for f in report.failures)


def test_the_checker_fails_a_cell_that_raises():
    report = check(HERE / "testdata" / "error.ipynb")
    assert report.failures == ["cell 4 shows an error: ValueError: deliberate failure for "
                               "browser_check test"]


def test_the_checker_fails_a_slider_callback_that_raises():
    report = check(HERE / "testdata" / "callback_error.ipynb", slider_wait=5)
    assert [s.status for s in report.sliders] == ["dead"]
    assert any("log console shows an error" in f and "RuntimeError: deliberate failure" in f
               for f in report.failures), report.summary()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_and_every_slider_redraws_its_figure(notebook):
    # the Flower chapter starts a real SuperLink and SuperNodes: its rounds take seconds each
    report = check(notebook, timeout=900 if "flower" in notebook.stem else 300)
    assert report.ok, report.summary()
    assert report.code_cells > 0
