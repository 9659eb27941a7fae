"""Open a notebook in a real JupyterLab, in headless chromium: run it, move every slider.

nbval executes the notebooks but never renders a widget.  `check(notebook)` does what a student
does.  It copies the notebook (outputs cleared) into a temporary folder, starts a JupyterLab of
its own there, opens the copy in Debian's chromium (driven by playwright), runs every cell from
the Run menu, then moves each ipywidgets slider one step with the keyboard (and picks another
option in each dropdown) and waits for a picture on the page to change.  It returns a Report whose `failures` list what a student would
have seen go wrong:
- an error output in a cell (also one a widget callback printed into an Output widget),
- an error in JupyterLab's log console (where a widget callback's traceback goes) or a kernel
  that died,
- a notebook that calls ipywidgets or an explorer but shows no widget, or a widget that failed
  to render,
- a DEAD slider (or dropdown): its move changed no picture on the page.

Every process it starts (JupyterLab, its kernels, playwright's driver, chromium) is stopped by
its PID before `check` returns, also when it fails or is interrupted; the temporary folder,
with JupyterLab's settings, goes too.  Should the checker itself be killed, JupyterLab gets a
SIGTERM from the kernel (Linux) and stops its kernels, and playwright's driver stops chromium.  The committed notebook is never written.

Adapted from the team's ../shared/tools/browser_check.py.  Chromium is /usr/bin/chromium (or
$FEDLITE_CHROMIUM); playwright only drives it and never downloads a browser of its own.

By hand, with screenshots of each step:
    .venv/bin/python tests/browser/labcheck.py notebooks/05_fedavg_local_epochs.ipynb --shots /tmp/s
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("FEDLITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-crash-reporter"]
USES_WIDGETS = re.compile(r"\bipywidgets\b|\b\w+_explorer\(")
KERNEL_DIED = re.compile(r"restarting kernel|kernel .* died", re.IGNORECASE)
LOG_CONSOLE = "@jupyterlab/logconsole-extension:plugin"
TAG = "FEDLITE_LABCHECK"  # in the environment of every process a check starts: its temp folder


def browser_missing() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    if not os.access(CHROMIUM, os.X_OK):
        return (f"no chromium at {CHROMIUM}: install it (Debian/Ubuntu: apt-get install chromium) "
                "or point $FEDLITE_CHROMIUM at one")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the python package playwright is missing: pip install -e '.[browser]'"
    return None


@dataclass
class Slider:
    """What moving one control (a slider, or a dropdown) did."""
    name: str
    status: str  # "live", "dead" or "skipped"
    detail: str


@dataclass
class Report:
    notebook: str
    code_cells: int = 0
    widget_views: int = 0
    images: int = 0
    sliders: list[Slider] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, status: str) -> int:
        return sum(slider.status == status for slider in self.sliders)

    def summary(self) -> str:
        lines = [f"{self.notebook}: {'ok' if self.ok else 'FAILED'} in {self.seconds:.0f} s: "
                 f"{self.code_cells} code cells, {self.widget_views} widget views, "
                 f"{self.images} pictures, {len(self.sliders)} sliders and dropdowns "
                 f"({self.count('live')} live, {self.count('dead')} dead)"]
        lines += [f"  {s.name}: {s.status.upper()}, {s.detail}" for s in self.sliders]
        lines += [f"  failure: {failure}" for failure in self.failures]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- in the page
# Selectors are JupyterLab 4's and ipywidgets 8's.
JS_HELPERS = r"""
(LOG_CONSOLE) => {
  if (window.__lc) return;
  const ERROR_TEXT = /Traceback|^\s*[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b/m;
  const hash = s => {   // FNV-1a: enough to notice that a picture changed
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
    return (h >>> 0).toString(16) + ':' + s.length;
  };
  const codeCells = () => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell'));
  const cellNumber = el => codeCells().indexOf(el.closest('.jp-Cell')) + 1;
  window.__lc = {
    prompts: () => codeCells().map(c => {
      const p = c.querySelector('.jp-InputArea-prompt, .jp-InputPrompt');
      return p ? p.textContent.trim() : '';
    }),
    // one "cell:hash" per picture: <img> in an output area, also inside widgets (Output, Image)
    pictures: () => Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img'))
      .map(img => cellNumber(img) + ':' + hash(img.getAttribute('src') || '')),
    stats() {
      const errors = [];
      codeCells().forEach((cell, i) => {
        const err = Array.from(cell.querySelectorAll('.jp-OutputArea-output')).find(o =>
          o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'
          && ERROR_TEXT.test(o.textContent || ''));
        if (err) {
          const lines = err.textContent.trim().split('\n').filter(l => l.trim());
          errors.push({cell: i + 1, text: (lines[lines.length - 1] || '').slice(0, 300)});
        }
      });
      const outputs = Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'));
      return {
        codeCells: codeCells().length,
        errors,
        modelErrors: window.__lc.modelErrors(),
        logErrors: window.__lc.logErrors(),
        widgetViews: document.querySelectorAll('.jp-Notebook .jupyter-widgets').length,
        brokenWidgets: outputs.filter(o => /^\s*Error (displaying|rendering) widget/.test(o.textContent || '')).length,
        sliders: document.querySelectorAll('.jp-Notebook .widget-slider').length,
        dropdowns: document.querySelectorAll('.jp-Notebook .widget-dropdown select').length,
        images: document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img').length,
      };
    },
    // error outputs from the notebook's model (what the DOM shows may be cut or restyled)
    modelErrors() {
      const app = window.jupyterapp;
      const panel = app && Array.from(app.shell.widgets('main')).find(w => w.content && w.content.model);
      if (!panel) return [];
      const cells = panel.content.model.cells, found = [];
      for (let i = 0, code = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== 'code') continue;
        code++;
        for (let j = 0; j < cell.outputs.length; j++) {
          const out = cell.outputs.get(j).toJSON();
          if (out.output_type === 'error') { found.push({cell: code, text: (out.ename + ': ' + out.evalue).slice(0, 300)}); break; }
        }
      }
      return found;
    },
    // errors in the log console: a widget callback's traceback lands there, not in a cell
    // (null: the log console cannot be read, e.g. a JupyterLab that moved its plugin registry)
    logErrors() {
      const plugins = window.jupyterapp && window.jupyterapp.pluginRegistry
                      && window.jupyterapp.pluginRegistry._plugins;
      const plugin = plugins && plugins.get(LOG_CONSOLE);
      const registry = plugin && (plugin.service || plugin._service);
      if (!registry) return null;
      const found = [];
      for (const logger of registry.getLoggers()) {
        for (let i = 0; i < logger.outputAreaModel.length; i++) {
          const out = logger.outputAreaModel.get(i).toJSON();
          if (out.output_type === 'error') found.push(out.ename + ': ' + out.evalue);
          else if (out.output_type === 'stream' && ERROR_TEXT.test(out.text || '')) found.push(out.text.trim().split('\n').pop());
        }
      }
      return found.map(text => text.slice(0, 300));
    },
    dropdown(i) {
      const d = document.querySelectorAll('.jp-Notebook .widget-dropdown')[i];
      const label = d && d.querySelector('.widget-label');
      return {label: label ? label.textContent.trim() : '', cell: d ? cellNumber(d) : 0};
    },
    slider(i) {
      const s = document.querySelectorAll('.jp-Notebook .widget-slider')[i];
      if (!s) return null;
      const handle = s.querySelector('.noUi-handle'), label = s.querySelector('.widget-label');
      const readout = s.querySelector('.widget-readout');
      return {
        label: label ? label.textContent.trim() : '',
        value: (readout && readout.textContent.trim()) || (handle && handle.getAttribute('aria-valuenow')) || '',
        hasHandle: !!handle,
        disabled: s.classList.contains('mod-disabled') || !!s.querySelector('[disabled]'),
        cell: cellNumber(s),
      };
    },
  };
}
"""


# ---------------------------------------------------------------------------------- processes
def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int) -> set[int]:
    """Every process below pid (from /proc), so that what we started can be stopped by PID."""
    children, found, todo = _children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def tagged(tag: str) -> set[int]:
    """Every process whose environment holds TAG=tag, also those chromium re-parents to init
    (its crash handler), so that what we started can be stopped by PID."""
    needle = f"{TAG}={tag}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.add(int(entry))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop(pids, grace: float = 5.0) -> None:
    """SIGTERM each pid, wait up to `grace` seconds, then SIGKILL those still running."""
    pids = [pid for pid in pids if alive(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = [pid for pid in pids if alive(pid)]
        if not pids:
            return


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the checker dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return json.loads(response.read().decode())


# ---------------------------------------------------------------------------------- JupyterLab
class Lab:
    """A JupyterLab of its own, on a temporary root that holds a clean copy of one notebook."""

    def __init__(self, notebook: Path, tmp: Path):
        self.tmp = tmp
        root = tmp / "root"
        root.mkdir()
        for sibling in notebook.parent.iterdir():  # relative paths in the notebook still work
            if sibling.name not in (notebook.name, ".ipynb_checkpoints"):
                (root / sibling.name).symlink_to(sibling.resolve())
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb["metadata"].pop("widgets", None)  # saved widget state would show stale views
        nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}
        self.name = notebook.name
        (root / self.name).write_text(json.dumps(nb, indent=1), encoding="utf-8")
        self.uses_widgets = any(USES_WIDGETS.search("".join(c["source"]))
                                for c in nb["cells"] if c["cell_type"] == "code")

        dirs = {name: tmp / name for name in ("config", "data", "runtime", "ipython", "settings",
                                              "workspaces")}
        for folder in dirs.values():
            folder.mkdir()
        self._settings(dirs["settings"])
        env = {key: value for key, value in os.environ.items()
               if key not in ("MPLBACKEND", "JUPYTER_PATH")}
        env.update({TAG: str(tmp)}, JUPYTER_CONFIG_DIR=str(dirs["config"]),
                   JUPYTER_DATA_DIR=str(dirs["data"]),
                   JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), IPYTHONDIR=str(dirs["ipython"]),
                   PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
                   PYDEVD_DISABLE_FILE_VALIDATION="1")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp / "jupyterlab.log"
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                   "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
                   f"--ServerApp.root_dir={root}", "--IdentityProvider.token=",
                   "--ServerApp.terminals_enabled=False",
                   f"--LabApp.user_settings_dir={dirs['settings']}",
                   f"--LabApp.workspaces_dir={dirs['workspaces']}",
                   "--LabApp.expose_app_in_browser=True"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent)
        self.kernel_id = ""

    @staticmethod
    def _settings(folder: Path) -> None:
        settings = {
            # JupyterLab 4 leaves off-screen cells out of the page ("windowing"); we need them all
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                            "checkForUpdates": False},
            "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        }
        for plugin, values in settings.items():
            path = folder / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")

    def wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("JupyterLab exited at start:\n" + self.log_tail())
            try:
                _get_json(self.url + "/api/status", timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n"
                                       + self.log_tail()) from None
                time.sleep(0.3)

    def kernel_state(self) -> str:
        try:
            if not self.kernel_id:
                for session in _get_json(self.url + "/api/sessions"):
                    if session.get("path", "").endswith(self.name) and session.get("kernel"):
                        self.kernel_id = session["kernel"]["id"]
                if not self.kernel_id:
                    return "starting"
            return _get_json(f"{self.url}/api/kernels/{self.kernel_id}")["execution_state"]
        except (OSError, ValueError, KeyError) as error:
            return f"unknown ({error.__class__.__name__})"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kernel_deaths(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if KERNEL_DIED.search(line)]

    def stop(self) -> None:
        """Stop JupyterLab (it shuts its kernels down on SIGTERM), then any kernel left, by PID."""
        kernels = descendants(self.process.pid)
        stop([self.process.pid], grace=10)
        stop(kernels)
        try:
            self.process.wait(timeout=5)  # reap it: no zombie left behind
        except subprocess.TimeoutExpired:
            pass


# ---------------------------------------------------------------------------------- the check
class _Session:
    """One check: the JupyterLab, the page and the report being filled."""

    def __init__(self, lab: Lab, page, report: Report, shots: Path | None):
        self.lab, self.page, self.report, self.shots = lab, page, report, shots
        self.shot_number = 0

    def js(self, expression: str, arg=None):
        self.page.evaluate(JS_HELPERS, LOG_CONSOLE)
        return self.page.evaluate(expression, arg)

    def shot(self, name: str) -> None:
        if self.shots:
            self.shot_number += 1
            name = re.sub(r"\W+", "-", name).strip("-")
            self.page.screenshot(path=str(self.shots / f"{self.shot_number:02d}-{name}.png"),
                                 full_page=True)

    def busy(self) -> bool:
        return any("*" in prompt for prompt in self.js("() => __lc.prompts()"))

    def wait_for_kernel(self, deadline: float) -> bool:
        while self.lab.kernel_state() != "idle":
            if time.monotonic() > deadline:
                self.report.failures.append(f"the kernel was not ready in time "
                                            f"(state {self.lab.kernel_state()})")
                return False
            time.sleep(0.3)
        return True

    def run_all(self) -> None:
        """Run > Run All Cells from the menu bar, as a student would."""
        self.page.locator("#jp-MainMenu .lm-MenuBar-itemLabel",
                          has_text=re.compile(r"^Run$")).click(timeout=10_000)
        self.page.locator(".lm-Menu .lm-Menu-itemLabel",
                          has_text=re.compile(r"^Run All Cells$")).click(timeout=10_000)

    def wait_for_run_all(self, deadline: float) -> bool:
        """Until no cell waits or runs and the kernel stays idle (three looks in a row)."""
        started, quiet = False, 0
        while time.monotonic() < deadline:
            prompts = self.js("() => __lc.prompts()")
            busy = any("*" in prompt for prompt in prompts)
            started = started or busy or any(re.search(r"\[\d+\]", p) for p in prompts)
            quiet = quiet + 1 if started and not busy and self.lab.kernel_state() == "idle" else 0
            if quiet >= 3:
                return True
            time.sleep(0.3)
        self.report.failures.append(f"Run All Cells did not finish in time (kernel "
                                    f"{self.lab.kernel_state()}, started: {started})")
        return False

    def wait_until_settled(self, timeout: float, still: float = 1.0) -> None:
        """Until the kernel is idle and no picture has changed for `still` seconds."""
        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline:
            pictures = self.js("() => __lc.pictures()")
            if self.busy() or self.lab.kernel_state() != "idle" or pictures != last:
                last, since = pictures, time.monotonic()
            elif time.monotonic() - since >= still:
                return
            time.sleep(0.25)

    def wait_for_new_picture(self, before: list, moved_at: float, wait: float, step: str,
                             name: str) -> Slider:
        """Live if a picture differs from `before` within `wait` seconds of the move."""
        while time.monotonic() - moved_at < wait:
            now = self.js("() => __lc.pictures()")
            if now and now != before:
                cells = sorted({int(p.split(":")[0]) for p in set(now) ^ set(before)})
                self.wait_until_settled(timeout=min(wait, 10), still=0.5)
                self.shot(name)
                return Slider(name, "live", f"{step}: the picture in cell "
                              f"{','.join(map(str, cells))} changed after "
                              f"{time.monotonic() - moved_at:.1f} s")
            time.sleep(0.2)
        self.shot(f"{name}-dead")
        return Slider(name, "dead", f"{step}: no picture changed within {wait:.0f} s")

    def pick_option(self, i: int, wait: float) -> Slider:
        """Select the dropdown's next option; live if a picture changes."""
        select = self.page.locator(".jp-Notebook .widget-dropdown select").nth(i)
        values = select.evaluate("s => Array.from(s.options).map(o => o.value)")
        info = self.js("(i) => __lc.dropdown(i)", i)
        name = f"dropdown {i + 1} '{info['label']}' (cell {info['cell']})"
        if len(values) < 2 or select.is_disabled():
            return Slider(name, "skipped", "disabled, or fewer than two options")
        self.wait_until_settled(timeout=wait)
        before, current = self.js("() => __lc.pictures()"), select.input_value()
        target = values[(values.index(current) + 1) % len(values)]
        select.scroll_into_view_if_needed(timeout=5000)
        moved_at = time.monotonic()
        select.select_option(value=target)
        return self.wait_for_new_picture(before, moved_at, wait, f"{current} -> {target}", name)

    def move_slider(self, i: int, wait: float) -> Slider:
        """One step right (left at the maximum) with the keyboard; live if a picture changes."""
        info = self.js("(i) => __lc.slider(i)", i)
        name = f"slider {i + 1}" + (f" '{info['label']}' (cell {info['cell']})" if info else "")
        if not info or not info["hasHandle"]:
            return Slider(name, "dead", "no slider handle to move (not an ipywidgets 8 slider?)")
        if info["disabled"]:
            return Slider(name, "skipped", "disabled")
        self.wait_until_settled(timeout=wait)
        before = self.js("() => __lc.pictures()")
        handle = self.page.locator(".jp-Notebook .widget-slider").nth(i).locator(".noUi-handle")
        handle.scroll_into_view_if_needed(timeout=5000)
        handle.focus()
        moved_at, after = time.monotonic(), info
        for key in ("ArrowRight", "ArrowLeft"):
            self.page.keyboard.press(key)
            time.sleep(0.2)
            after = self.js("(i) => __lc.slider(i)", i) or info
            if after["value"] != info["value"]:
                break
        else:
            return Slider(name, "dead", f"the handle did not move from {info['value']}")
        step = f"{info['value']} -> {after['value']}"
        return self.wait_for_new_picture(before, moved_at, wait, step, name)

    def collect_errors(self, stats: dict) -> None:
        report = self.report
        seen = set()
        for error in stats["errors"] + stats["modelErrors"]:
            if error["cell"] not in seen:
                seen.add(error["cell"])
                report.failures.append(f"cell {error['cell']} shows an error: {error['text']}")
        if stats["logErrors"] is None:
            report.failures.append("cannot read JupyterLab's log console, so errors raised by "
                                   "widget callbacks would go unseen: update labcheck.py")
        for error in stats["logErrors"] or []:
            report.failures.append(f"the log console shows an error (from a widget callback): "
                                   f"{error}")
        report.failures += [f"the kernel died: {line}" for line in self.lab.kernel_deaths()]
        if self.lab.uses_widgets and stats["widgetViews"] == 0:
            report.failures.append("the notebook uses widgets, but none was shown")
        if stats["brokenWidgets"]:
            report.failures.append(f"{stats['brokenWidgets']} widget(s) failed to render")

    def run(self, timeout: float, slider_wait: float) -> None:
        deadline = time.monotonic() + timeout
        self.page.goto(f"{self.lab.url}/lab/tree/{urllib.parse.quote(self.lab.name)}",
                       wait_until="domcontentloaded", timeout=60_000)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        if not self.wait_for_kernel(deadline):
            return
        self.run_all()
        finished = self.wait_for_run_all(deadline)
        stats = self.js("() => __lc.stats()")
        self.shot("run-all")
        report = self.report
        report.code_cells, report.widget_views = stats["codeCells"], stats["widgetViews"]
        report.images = stats["images"]
        self.collect_errors(stats)
        if not finished or report.failures:
            if stats["sliders"]:
                report.notes.append("the sliders were not moved: running the notebook failed")
            return
        for i in range(stats["sliders"]):
            report.sliders.append(self.move_slider(i, slider_wait))
        for i in range(stats["dropdowns"]):
            report.sliders.append(self.pick_option(i, slider_wait))
        report.failures += [f"DEAD {s.name}: {s.detail}"
                            for s in report.sliders if s.status == "dead"]
        self.collect_errors(self.js("() => __lc.stats()"))
        report.failures = list(dict.fromkeys(report.failures))  # an error seen twice counts once


def check(notebook, *, timeout: float = 300, slider_wait: float = 30,
          shots: Path | None = None) -> Report:
    """Run `notebook` in a JupyterLab of its own in headless chromium and move every slider.

    timeout: seconds for JupyterLab, the kernel and Run All together; slider_wait: seconds a
    slider's move may take to change a picture.  shots: a folder for screenshots of each step.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    notebook = Path(notebook).resolve()
    report = Report(notebook.name)
    shots = Path(shots) if shots else None
    started = time.monotonic()
    ours_before = descendants(os.getpid())
    tmp = Path(tempfile.mkdtemp(prefix="fedlite-labcheck-"))
    lab = None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    try:
        lab = Lab(notebook, tmp)
        lab.wait_until_up(timeout=60)
        with sync_playwright() as playwright:
            env = {**os.environ, TAG: str(tmp), "XDG_CONFIG_HOME": str(tmp / "chromium")}
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                 env=env)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                page_errors = []
                page.on("pageerror", lambda error: page_errors.append(str(error)))
                _Session(lab, page, report, shots).run(timeout, slider_wait)
                report.notes += [f"the page raised: {error}" for error in page_errors[:3]]
            finally:
                browser.close()
    except (PlaywrightError, RuntimeError, OSError) as error:
        report.failures.append(f"{error.__class__.__name__}: {error}")
        if lab is not None:
            report.notes.append("JupyterLab's log ends with:\n" + lab.log_tail())
    finally:
        if lab is not None:
            lab.stop()
        stop(descendants(os.getpid()) - ours_before)  # playwright's driver, chromium: by PID
        stop(tagged(str(tmp)))  # and what left our tree: chromium's crash handler
        shutil.rmtree(tmp, ignore_errors=True)
        report.seconds = time.monotonic() - started
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--slider-wait", type=float, default=30)
    parser.add_argument("--shots", type=Path, help="save a screenshot of each step here")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        print(f"labcheck: {missing}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the clean-up runs
    failed = 0
    for notebook in args.notebooks:
        shots = args.shots / Path(notebook).stem if args.shots else None
        report = check(notebook, timeout=args.timeout, slider_wait=args.slider_wait, shots=shots)
        print(report.summary(), flush=True)
        failed += not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
