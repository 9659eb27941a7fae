"""A Flower federation of real processes on this machine: start it, run on it, stop it.

`LocalFederation(num_supernodes)` starts one `flower-superlink` and one `flower-supernode` per
participant on 127.0.0.1 (free ports, a private HOME and FLWR_HOME in a temporary folder, so
nothing touches ~/.flwr), or, with engine="simulation", one SuperLink that runs Flower's
simulation engine (Ray) instead of SuperNodes.  `run(experiment)` does what a person would:

  1. writes the run config (the Experiment, plus result-path) to a TOML file
  2. `flwr run <app> fedlite --run-config <file> --stream` (the app: fedlite/flower/app)
  3. `flwr ls fedlite --run-id ID --format json` until the run's status is finished:...
     (`flwr run` exits 0 even when the ServerApp crashed; the status tells)
  4. reads the result file the ServerApp wrote and returns a `FlowerRun` (with a History)

`close()` (or leaving the `with` block) stops every process it started, by PID: those it
launched, their descendants, and any process left with its private FLWR_HOME in its
environment (Flower starts some detached); SIGTERM first, SIGKILL after a grace period.  It
then removes the temporary folder with the processes' logs (set FEDLITE_KEEP_FLOWER_LOGS=1 to
keep it; `LocalFederation.log_path(name)` names each log).
`run_flower(experiment)` does all of it in one call.
"""
from __future__ import annotations

import importlib.util
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
from pathlib import Path

from ..validation import as_float, as_int
from .experiment import Experiment
from .results import FlowerRunError, flower_run, read_result

APP_DIR = Path(__file__).resolve().with_name("app")   # the Flower app: its pyproject.toml
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")   # terminal colour codes
STARTED_RUN = re.compile(r"started run (\d+)")       # what `flwr run` prints
CONNECTION = "fedlite"            # the SuperLink connection's name in FLWR_HOME/config.toml
ENGINES = ("deployment", "simulation")
INSTALL_HINT = 'pip install -e ".[flower]" in the course folder (python3 tasks.py does it)'
SIMULATION_HINT = 'pip install -e ".[flower,flower-simulation]" (Ray)'


def flwr_installed():
    """True when flwr (the Flower package) can be imported here."""
    return importlib.util.find_spec("flwr") is not None


def ray_installed():
    """True when Ray (Flower's simulation engine) can be imported here."""
    return importlib.util.find_spec("ray") is not None


def run_flower(experiment, *, engine="deployment", stop_supernode=None, timeout=None,
               startup_timeout=60.0):
    """Start a local federation for `experiment`, run it, stop every process: a `FlowerRun`.

    engine          "deployment" (a SuperLink and one SuperNode process per participant) or
                    "simulation" (Flower's simulation engine; needs Ray)
    stop_supernode  None, or (participant_id, after_round): stop that participant's SuperNode
                    once `after_round` rounds are done (a fault, to watch the run go on or fail)
    timeout         seconds the whole run may take (None: from the experiment's round_timeout)
    """
    experiment = _check_experiment(experiment)
    check_stop_supernode(stop_supernode, experiment, engine)   # before any process starts
    with LocalFederation(experiment.num_participants, engine=engine,
                         startup_timeout=startup_timeout) as federation:
        return federation.run(experiment, stop_supernode=stop_supernode, timeout=timeout)


class LocalFederation:
    """One SuperLink and N SuperNodes (or the simulation engine) on 127.0.0.1: a context manager.

    num_supernodes   N, one per participant: SuperNode i gets --node-config
                     "partition-id=i num-partitions=N"
    engine           "deployment" or "simulation"
    directory        where HOME, FLWR_HOME, logs and results go (None: a new temporary folder,
                     removed by close())
    """

    def __init__(self, num_supernodes, *, engine="deployment", directory=None,
                 startup_timeout=60.0):
        self.num_supernodes = as_int(num_supernodes, "num_supernodes", minimum=1, maximum=64)
        if not isinstance(engine, str) or engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
        self.engine = engine
        self.startup_timeout = as_float(startup_timeout, "startup_timeout")
        if self.startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds; got {startup_timeout}")
        if not flwr_installed() or importlib.util.find_spec("psutil") is None:
            raise FlowerRunError(f"flwr (or psutil) is not installed; {INSTALL_HINT}")
        if engine == "simulation" and not ray_installed():
            raise FlowerRunError(f"the simulation engine needs Ray, which is not installed; "
                                 f"{SIMULATION_HINT}")
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="fedlite-flower-") if directory is None
                              else directory).resolve()
        self.flwr_home = self.directory / "flwr-home"
        self.processes = {}       # name -> Popen, everything this object started
        self.supernodes = []      # SuperNode i's Popen (deployment engine)
        self.address = None
        self._runs, self._logs = 0, {}
        self._seen = set()        # PIDs seen in our process trees (so orphans are stopped too)

    # -- starting
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        """Start the SuperLink (and the SuperNodes); return once the SuperLink listens."""
        if self.address is not None:
            raise RuntimeError("this federation is already started")
        (self.directory / "home").mkdir(parents=True, exist_ok=True)
        self.flwr_home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self._write_connection()
        command = [_executable("flower-superlink"), "--insecure", "--host", "127.0.0.1",
                   "--port", str(port), "--disable-runtime-dependency-installation"]
        if self.engine == "simulation":
            command.append("--simulation")
        superlink = self._launch("superlink", command)
        self._wait_listening(port, superlink)
        if self.engine == "deployment":
            N = self.num_supernodes
            for i in range(N):
                self.supernodes.append(self._launch(f"supernode-{i}", [
                    _executable("flower-supernode"), "--insecure", "--superlink", self.address,
                    "--host", "127.0.0.1", "--port", str(free_port()),
                    "--node-config", f"partition-id={i} num-partitions={N}"]))
        return self

    # -- running
    def run(self, experiment, *, stop_supernode=None, timeout=None):
        """Run `experiment` on this federation (see `run_flower`); a `FlowerRun`."""
        experiment = _check_experiment(experiment)
        if self.address is None:
            raise RuntimeError("start the federation first (use `with LocalFederation(...)`)")
        if experiment.num_participants != self.num_supernodes:
            raise ValueError(f"experiment.num_participants ({experiment.num_participants}) must "
                             f"equal the federation's num_supernodes ({self.num_supernodes})")
        stop_supernode = check_stop_supernode(stop_supernode, experiment, self.engine)
        if timeout is None:   # every round may wait round_timeout twice (train, evaluate)
            timeout = (self.startup_timeout + 60.0
                       + (experiment.num_rounds + 1) * (2 * experiment.round_timeout + 30.0))
        timeout = as_float(timeout, "timeout")
        self._runs += 1
        result_path = self.directory / f"result-{self._runs}.json"
        config_path = self.directory / f"run-config-{self._runs}.toml"
        config_path.write_text(_toml({**experiment.run_config(),
                                      "result-path": str(result_path)}))
        started = time.monotonic()
        deadline = started + timeout
        runner = self._launch(f"flwr-run-{self._runs}", [
            _executable("flwr"), "run", str(APP_DIR), CONNECTION, "--run-config",
            str(config_path), "--stream"])
        run_id = status = exited = None
        asked = 0.0            # when `flwr ls` was last asked (it starts a Python process)
        self._last_flwr_error = ""
        while True:
            self._remember_descendants()
            result = read_result(result_path)
            if stop_supernode is not None and result is not None:
                k, after = stop_supernode
                if len(result.get("loss", [])) - 1 >= after:
                    self.stop_supernode(k)
                    stop_supernode = None
            if run_id is None:
                run_id = _started_run_id(self.log_path(runner))
            if runner.poll() is not None:
                exited = exited or time.monotonic()
            ended = exited is not None or (result or {}).get("status") in ("completed", "failed")
            if run_id is not None and (ended or time.monotonic() - asked > 15):
                asked = time.monotonic()
                status = self._status(run_id)
                if status is not None and status["status"].startswith("finished"):
                    break
            if time.monotonic() > deadline:
                if run_id is not None:
                    self._flwr("stop", str(run_id), CONNECTION)
                raise FlowerRunError(f"the run did not finish within timeout={timeout:g} s; "
                                     f"log: {self.log_path(runner)}", run_id=run_id,
                                     status=status and status["status"])
            if exited is not None and time.monotonic() - exited > 30:
                raise FlowerRunError(   # the run's status had 30 s to say "finished"
                    f"`flwr run` exited ({runner.returncode}) but the run's status is "
                    f"{status and status['status']} ({self._last_flwr_error or 'no error'}); "
                    f"its log:\n{_tail(self.log_path(runner))}", run_id=run_id)
            time.sleep(0.5)
        seconds = time.monotonic() - started
        result = read_result(result_path)
        if status["status"] != "finished:completed" or not result or \
                result.get("status") != "completed":
            reason = (result or {}).get("error") or (
                f"the ServerApp wrote no result; its log:\n{_tail(self.log_path(runner))}")
            raise FlowerRunError(reason, details=(result or {}).get("error_details", ""),
                                 run_id=run_id, status=status["status"])
        traffic = status.get("network-traffic")
        return flower_run(result, experiment, engine=self.engine, run_id=run_id,
                          seconds=seconds, traffic=None if traffic is None else {
                              "inbound": int(traffic["inbound-bytes"]),
                              "outbound": int(traffic["outbound-bytes"])})

    def stop_supernode(self, participant_id, sig=signal.SIGTERM):
        """Stop participant `participant_id`'s SuperNode (SIGTERM: it deregisters at once;
        SIGKILL: the SuperLink notices after its heartbeat patience, about a minute)."""
        if self.engine != "deployment":
            raise ValueError("stop_supernode needs the deployment engine (real SuperNodes)")
        k = as_int(participant_id, "participant_id", minimum=0, maximum=self.num_supernodes - 1)
        process = self.supernodes[k]
        self._remember_descendants()
        _signal_tree(process.pid, sig)

    # -- stopping
    def close(self):
        """Stop every process this federation started (by PID), then remove its folder if it
        made it.  Safe to call twice."""
        self._remember_descendants()
        pids = self.leftover_processes()
        _terminate(pids)
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:   # pragma: no cover - SIGKILL was sent
                pass
        for handle in self._logs.values():
            handle.close()
        if self._own_directory and not os.environ.get("FEDLITE_KEEP_FLOWER_LOGS"):
            shutil.rmtree(self.directory, ignore_errors=True)

    def leftover_processes(self):
        """PIDs still alive of what this federation started: its own processes, their
        descendants, and any process whose environment has this federation's FLWR_HOME."""
        import psutil
        pids = set()
        for pid in {p.pid for p in self.processes.values()} | self._seen:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    pids.add(pid)
                pids.update(child.pid for child in process.children(recursive=True))
            except psutil.Error:
                continue
        home = str(self.flwr_home)
        for process in psutil.process_iter():
            try:
                if (process.pid != os.getpid() and process.status() != psutil.STATUS_ZOMBIE
                        and process.environ().get("FLWR_HOME") == home):
                    pids.add(process.pid)
            except psutil.Error:
                continue
        return sorted(pids)

    def log_path(self, process_or_name):
        name = (process_or_name if isinstance(process_or_name, str)
                else next(n for n, p in self.processes.items() if p is process_or_name))
        return self.directory / "logs" / f"{name}.log"

    # -- helpers
    def _environment(self):
        bin_dir = str(Path(sys.executable).parent)   # flower-superlink starts flower-superexec
        # No colours: Jupyter sets FORCE_COLOR, which would put escape codes in `flwr ls`'s JSON
        inherited = {name: value for name, value in os.environ.items()
                     if name not in ("FORCE_COLOR", "CLICOLOR_FORCE", "CLICOLOR")}
        env = {**inherited, "NO_COLOR": "1", "TERM": "dumb", "HOME": str(self.directory / "home"),
               "FLWR_HOME": str(self.flwr_home), "FLWR_DISABLE_UPDATE_CHECK": "1",
               "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
               "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(self.directory / "ray"),
               "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1"}   # start a ClientApp sooner
        return env

    def _launch(self, name, command):
        (self.directory / "logs").mkdir(exist_ok=True)
        log = self._logs[name] = open(self.log_path(name), "w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=self._environment(),
                                   cwd=self.directory, start_new_session=True)
        self.processes[name] = process
        return process

    def _flwr(self, *args, timeout=30):
        """Run a short flwr command; its stdout (or "" if it failed; the reason is kept in
        self._last_flwr_error for the messages)."""
        try:
            done = subprocess.run([_executable("flwr"), *args], capture_output=True, text=True,
                                  env=self._environment(), cwd=self.directory, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self._last_flwr_error = f"`flwr {' '.join(args)}` took more than {timeout} s"
            return ""
        if done.returncode != 0:
            self._last_flwr_error = f"`flwr {' '.join(args)}`: {done.stdout}{done.stderr}"
            return ""
        return done.stdout

    def _list_runs(self, run_id=None):
        args = ["ls", CONNECTION, "--format", "json"]
        if run_id is not None:
            args += ["--run-id", str(run_id)]
        text = self._flwr(*args)
        try:
            listing = json.loads(ANSI_ESCAPE.sub("", text) or "{}")
        except ValueError:
            self._last_flwr_error = f"`flwr {' '.join(args)}` did not print JSON: {text[:300]}"
            return []
        return listing.get("runs", []) if listing.get("success") else []

    def _status(self, run_id):
        runs = self._list_runs(run_id)
        return runs[0] if runs else None

    def _wait_listening(self, port, process):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FlowerRunError(f"flower-superlink exited ({process.returncode}) at start:"
                                     f"\n{_tail(self.log_path(process))}")
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise FlowerRunError(f"flower-superlink did not listen on port {port} within "
                             f"{self.startup_timeout:g} s:\n{_tail(self.log_path(process))}")

    def _write_connection(self):
        """FLWR_HOME/config.toml: the SuperLink connection `flwr run` and `flwr ls` use."""
        lines = ["[superlink]", f'default = "{CONNECTION}"', "",
                 f"[superlink.{CONNECTION}]", f'address = "{self.address}"', "insecure = true"]
        if self.engine == "simulation":
            lines += ["", f"[superlink.{CONNECTION}.options]",
                      f"num-supernodes = {self.num_supernodes}", "",
                      f"[superlink.{CONNECTION}.options.backend.client-resources]",
                      "num-cpus = 1", "num-gpus = 0.0"]
        (self.flwr_home / "config.toml").write_text("\n".join(lines) + "\n")

    def _remember_descendants(self):
        try:
            import psutil
        except ImportError:   # pragma: no cover - psutil comes with the flower extra
            return
        for process in list(self.processes.values()):
            try:
                self._seen.update(child.pid for child in
                                  psutil.Process(process.pid).children(recursive=True))
            except psutil.Error:
                continue


def check_stop_supernode(stop_supernode, experiment, engine="deployment"):
    """stop_supernode checked: None, or (participant_id, after_round) as ints in range."""
    if stop_supernode is None:
        return None
    if engine != "deployment":
        raise ValueError("stop_supernode needs engine='deployment' (real SuperNodes)")
    if not (isinstance(stop_supernode, tuple) and len(stop_supernode) == 2):
        raise TypeError(f"stop_supernode must be None or (participant_id, after_round); "
                        f"got {stop_supernode!r}")
    k = as_int(stop_supernode[0], "stop_supernode's participant_id", minimum=0,
               maximum=experiment.num_participants - 1)
    after = as_int(stop_supernode[1], "stop_supernode's after_round", minimum=0,
                   maximum=experiment.num_rounds)
    return k, after


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_experiment(experiment):
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be a fedlite.flower.Experiment; got "
                        f"{type(experiment).__name__}")
    return experiment


def _executable(name):
    """A Flower command from this Python's environment (where pip installed flwr)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        raise FlowerRunError(f"the command {name!r} was not found; {INSTALL_HINT}")
    return found


def _signal_tree(pid, sig):
    """Send `sig` to a process and its descendants (by PID)."""
    import psutil
    try:
        process = psutil.Process(pid)
        targets = [process, *process.children(recursive=True)]
    except psutil.Error:
        return
    for target in targets:
        try:
            target.send_signal(sig)
        except psutil.Error:
            pass


def _terminate(pids, grace=10.0):
    """SIGTERM each PID, wait up to `grace` seconds, SIGKILL whatever is left."""
    import psutil
    processes = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.terminate()
            processes.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


def _started_run_id(log_path):
    """The run id `flwr run` printed ("Successfully started run 123..."), or None yet."""
    try:
        found = STARTED_RUN.search(Path(log_path).read_text(errors="replace"))
    except OSError:
        return None
    return None if found is None else int(found.group(1))


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _toml(values):
    """A flat TOML table of ints, floats and strings (the run config)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"run config value {key!r} must be an int, float or str")
        text = json.dumps(value) if isinstance(value, str) else repr(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"
