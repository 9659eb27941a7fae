"""fedlite on Flower (fedlite.flower): the same numbers as `simulate`, in processes and not.

Three layers, cheapest first:
- no flwr needed: Experiment (the run config), the result file -> History, `import fedlite`
  never importing flwr;
- flwr, one process: the real ClientApp and FedliteStrategy talking through an in-process
  grid (every message goes through Flower's records), for every algorithm, both models, the
  server optimisers, partial participation and a participant that stops;
- flwr, real processes: a SuperLink and SuperNodes on free local ports with a private
  HOME/FLWR_HOME (fedlite.flower.LocalFederation), runs checked against `simulate` to 1e-9
  relative, a stopped SuperNode failing the run with a clear message, and no process left
  behind.  Flower's simulation engine too when Ray is installed.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import JIT_DISABLED
from fedlite.flower import (Experiment, FlowerRunError, LocalFederation, flwr_installed,
                            history_from_result, ray_installed)
from fedlite.flower.launcher import APP_DIR

NO_FLWR = "flwr is not installed: pip install -e \".[flower]\" (Flower 1.42) to run this test"
needs_flwr = pytest.mark.skipif(not flwr_installed(), reason=NO_FLWR)
# Real processes: ~10-20 s per round on 2 cores.  Once per suite: not again in the
# NUMBA_DISABLE_JIT pass (the processes test the plumbing, not the kernels).
_NO_PROCESSES = (NO_FLWR if not flwr_installed() else
                 "starts Flower processes: run once, in the compiled pass" if JIT_DISABLED
                 else None)
starts_processes = pytest.mark.skipif(_NO_PROCESSES is not None, reason=str(_NO_PROCESSES))
RTOL = 1e-9
# importing flwr imports typer, which uses click APIs that click deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:'click.utils:DeprecationWarning")


def assert_same_run(history, reference, rtol=RTOL):
    """A Flower History equals simulate's: losses, selection, bytes, final parameters."""
    assert history.num_rounds == reference.num_rounds
    assert_allclose(history.loss, reference.loss, rtol=rtol, atol=0)
    assert_allclose(history.participant_loss, reference.participant_loss, rtol=rtol, atol=0)
    assert_allclose(history.theta, reference.theta, rtol=rtol, atol=1e-12)
    np.testing.assert_array_equal(history.selected, reference.selected)
    np.testing.assert_array_equal(history.bytes_up, reference.bytes_up)
    np.testing.assert_array_equal(history.bytes_down, reference.bytes_down)


# ----------------------------------------------------------------------------- no flwr needed
def test_import_fedlite_never_imports_flwr():
    code = ("import sys, fedlite, fedlite.flower; "
            "print(any(m == 'flwr' or m.startswith('flwr.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "NUMBA_DISABLE_JIT": "1"})
    assert out.stdout.strip() == "False"


def test_the_app_pyproject_holds_experiments_defaults():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")
    app = tomllib.loads((APP_DIR / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    config = dict(app["config"])
    assert config.pop("result-path") == ""
    assert config == Experiment().run_config()
    assert app["components"] == {"serverapp": "fedlite.flower.server_app:app",
                                 "clientapp": "fedlite.flower.client_app:app"}


@pytest.mark.parametrize("experiment", [
    Experiment(),
    Experiment(model="mlp", algorithm="fedprox", mu=0.1, batch_size=8, local_epochs=2,
               participation=0.5, num_participants=4, server_optimizer="adam",
               server_lr=0.05, min_participants=1),
    Experiment(data="concept_shift", num_samples=30, algorithm="scaffold", alpha=None),
])
def test_run_config_round_trip(experiment):
    config = experiment.run_config()
    assert all(isinstance(v, (int, float, str)) for v in config.values())
    assert Experiment.from_run_config({**config, "result-path": "/x.json"}) == experiment


@pytest.mark.parametrize("kwargs, name", [
    ({"data": "digits"}, "data"),
    ({"model": "softmax"}, "model"),
    ({"num_participants": 0}, "num_participants"),
    ({"seed": 2**63}, "seed"),
    ({"algorithm": "fedsgd", "batch_size": 4}, "batch_size"),
    ({"lr": -1.0}, "lr"),
    ({"algorithm": "bogus"}, "algorithm"),
    ({"min_participants": 4}, "min_participants"),
    ({"round_timeout": 0.0}, "round_timeout"),
    ({"num_samples": 2}, "num_participants"),   # split: fewer rows than participants
])
def test_experiment_refuses_bad_settings_naming_them(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        Experiment(**kwargs)


def test_from_run_config_needs_a_mapping():
    with pytest.raises(TypeError, match="run_config"):
        Experiment.from_run_config(["lr", 0.1])


def test_history_from_result_marks_short_rounds():
    from fedlite.flower.results import flower_run
    experiment = Experiment(num_participants=3, num_rounds=2, min_participants=2)
    result = {"loss": [1.0, 0.5, 0.25], "participant_loss": [[1, 1, 1], [.5, .5, .5],
                                                             [.25, .25, float("nan")]],
              "selected": [[0, 1, 2], [0, 1, 2]], "replied": [[0, 1, 2], [0, 1]],
              "evaluated": [[0, 1, 2], [0, 1, 2], [0, 1]], "bytes_up": [144, 96],
              "bytes_down": [144, 144], "round_seconds": [1.0, 2.0], "diverged_at": None,
              "theta": [0.0] * 6, "status": "completed"}
    run = flower_run(json.loads(json.dumps(result)), experiment, engine="deployment")
    assert run.short_rounds == {2: [2]} and run.unevaluated == {2: [2]}
    np.testing.assert_array_equal(run.history.metrics["participants"], [3, 2])
    assert run.history.loss[-1] == 0.25 and run.history.state is None
    with pytest.raises(TypeError, match="result"):
        history_from_result({"status": "failed"}, experiment)


def test_local_federation_checks_its_arguments(monkeypatch):
    with pytest.raises(ValueError, match="engine"):
        LocalFederation(2, engine="ray")
    with pytest.raises(ValueError, match="num_supernodes"):
        LocalFederation(0)
    monkeypatch.setattr("fedlite.flower.launcher.flwr_installed", lambda: False)
    with pytest.raises(FlowerRunError, match=r"pip install -e \"\.\[flower\]\""):
        LocalFederation(2)


@pytest.mark.parametrize("stop, error, name", [
    ((5, 1), ValueError, "participant_id"),
    ((0, 9), ValueError, "after_round"),
    ([0, 1], TypeError, "stop_supernode"),
])
def test_run_flower_checks_stop_supernode_before_starting_anything(stop, error, name):
    from fedlite.flower import run_flower
    with pytest.raises(error, match=name):
        run_flower(Experiment(num_participants=3, num_rounds=2), stop_supernode=stop)
    with pytest.raises(TypeError, match="experiment"):
        run_flower({"num-participants": 3})


@pytest.mark.parametrize("argv, message", [
    (["--participants", "0"], "num_participants must be at least 1"),
    (["--algorithm", "bogus"], "algorithm must be one of"),
    (["--stop-supernode", "x"], "--stop-supernode must be K:ROUND"),
    (["--stop-supernode", "1:1", "--engine", "simulation"], "engine='deployment'"),
])
def test_the_command_refuses_bad_arguments_before_starting_anything(argv, message, capsys):
    from fedlite.flower.__main__ import main
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------- flwr, in one process (fast)
class InProcessGrid:
    """Flower's Grid played in this process: node k runs fedlite's ClientApp with its own
    Context (node config, state kept between messages), so every message still goes through
    Flower's records.  `stopped` nodes never reply (as after SIGTERM: no longer listed)."""

    def __init__(self, experiment, num_partitions=None):
        from flwr.app import Context, RecordDict
        K = experiment.num_participants
        num_partitions = num_partitions or K
        run_config = {**experiment.run_config(), "result-path": ""}
        self.contexts = {1000 + k: Context(run_id=1, node_id=1000 + k, state=RecordDict(),
                                           node_config={"partition-id": k,
                                                        "num-partitions": num_partitions},
                                           run_config=run_config) for k in range(K)}
        self.stopped, self.replies, self.sent = set(), {}, []

    def get_node_ids(self):
        return [node for node in self.contexts if node not in self.stopped]

    def push_messages(self, messages):
        from fedlite.flower.client_app import app
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = msg.object_id
            self.sent.append(msg)
            node = msg.metadata.dst_node_id
            if node not in self.stopped:
                try:
                    reply = app(msg, self.contexts[node])
                except Exception as exc:   # what a SuperNode replies when its ClientApp raises
                    from flwr.app import Error, Message
                    reply = Message(Error(code=2, reason=f"{type(exc).__name__}: {exc}"),
                                    reply_to=msg)
                self.replies[msg.object_id] = reply
            ids.append(msg.object_id)
        return ids

    def pull_messages(self, message_ids):
        return [self.replies.pop(i) for i in list(message_ids) if i in self.replies]


def run_in_process(experiment, stop_after=None, num_partitions=None):
    """FedliteStrategy.run on an InProcessGrid; (History, record).  stop_after = (k, r):
    participant k's node stops once r rounds are done."""
    from fedlite.flower.server_app import FedliteStrategy
    grid = InProcessGrid(experiment, num_partitions)
    strategy = FedliteStrategy(experiment)
    if stop_after is not None:
        k, after = stop_after
        evaluate = strategy.aggregate_evaluate

        def aggregate_evaluate(server_round, replies):
            metrics = evaluate(server_round, replies)
            if server_round == after:
                grid.stopped.add(1000 + k)
            return metrics
        strategy.aggregate_evaluate = aggregate_evaluate
    from flwr.supercore.task_identity import TaskIdentity
    saved = TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1  # as a ServerApp
    try:
        strategy.run(grid)
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved
    return history_from_result(strategy.record, experiment), strategy.record


EXPERIMENTS = {
    "linear-fedsgd": Experiment(algorithm="fedsgd", lr=0.1),
    "linear-fedavg-minibatch": Experiment(batch_size=16, local_epochs=2),
    "mlp-fedsgd": Experiment(model="mlp", algorithm="fedsgd", lr=0.1),
    "mlp-fedavg-minibatch": Experiment(model="mlp", batch_size=20, local_epochs=2),
    "fedprox": Experiment(algorithm="fedprox", mu=0.5, batch_size=16,
                          data="concept_shift", num_samples=40),
    "scaffold-partial": Experiment(algorithm="scaffold", data="concept_shift", num_samples=40,
                                   num_participants=4, participation=0.5, batch_size=10,
                                   num_rounds=4, lr=0.02),
    "mlp-scaffold-adam": Experiment(model="mlp", algorithm="scaffold", server_optimizer="adam",
                                    batch_size=20, num_rounds=3),
    "momentum-quantity-skew": Experiment(server_optimizer="momentum", server_lr=0.5,
                                         scheme="quantity", alpha=0.5, num_participants=5),
    "yogi": Experiment(server_optimizer="yogi", local_epochs=3),
    "adagrad": Experiment(server_optimizer="adagrad", model="mlp", hidden=4),
}


@needs_flwr
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_flower_apps_in_one_process_equal_simulate(name):
    experiment = EXPERIMENTS[name]
    history, record = run_in_process(experiment)
    assert record["status"] == "completed"
    assert_same_run(history, experiment.simulate())


@needs_flwr
def test_the_command_reports_the_comparison():
    from fedlite.flower.__main__ import report
    from fedlite.flower.results import flower_run
    experiment = EXPERIMENTS["linear-fedavg-minibatch"]
    _, record = run_in_process(experiment)
    run = flower_run(record, experiment, traffic={"inbound": 10, "outbound": 20}, seconds=1.0)
    text = report(run, experiment.simulate(), simulate_seconds=0.003)
    assert "same losses as simulate to 1e-09 relative: yes" in text
    assert "from the SuperNodes 10, to them 20" in text and "3/3" in text


@needs_flwr
def test_diverging_run_stops_like_simulate():
    experiment = Experiment(algorithm="fedsgd", lr=50.0, num_rounds=8)
    history, _ = run_in_process(experiment)
    reference = experiment.simulate()
    assert reference.diverged and history.diverged_at == reference.diverged_at
    assert_same_run(history, reference)


@needs_flwr
def test_a_stopped_participant_leaves_shorter_rounds_above_the_minimum():
    experiment = Experiment(num_participants=3, num_rounds=3, min_participants=2)
    history, record = run_in_process(experiment, stop_after=(1, 1))
    np.testing.assert_array_equal(history.metrics["participants"], [3, 2, 2])
    assert record["replied"][1:] == [[0, 2], [0, 2]]
    assert np.isnan(history.participant_loss[2:, 1]).all()
    np.testing.assert_array_equal(history.bytes_up, [3 * 48, 2 * 48, 2 * 48])
    reference = experiment.simulate()
    assert_allclose(history.loss[:2], reference.loss[:2], rtol=RTOL)   # before the stop


@needs_flwr
def test_a_stopped_participant_below_the_minimum_fails_clearly():
    experiment = Experiment(num_participants=3, num_rounds=3)
    with pytest.raises(FlowerRunError, match=r"round 2: only 2 of the 3 selected participants "
                                             r"replied \(participant\(s\) \[1\]"):
        run_in_process(experiment, stop_after=(1, 1))


@needs_flwr
def test_nodes_configured_for_another_federation_fail_the_run_naming_why():
    with pytest.raises(FlowerRunError, match=r"no SuperNode answered as participant\(s\) "
                                             r"\[0, 1, 2\].*num-partitions=4, but the "
                                             r"experiment has num_participants=3"):
        run_in_process(Experiment(num_participants=3), num_partitions=4)


@needs_flwr
def test_a_node_with_the_wrong_node_config_is_named():
    from fedlite.flower.messages import node_partition
    with pytest.raises(ValueError, match="num-partitions=4"):
        node_partition({"partition-id": 0, "num-partitions": 4}, 3)
    with pytest.raises(ValueError, match="partition-id"):
        node_partition({}, 3)


# ------------------------------------------------------------- flwr, real processes
def assert_all_stopped(federation, started):
    """Nothing this federation started is still running (checked by PID)."""
    import psutil
    assert federation.leftover_processes() == []
    for pid in started:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid


@pytest.fixture(scope="module")
def deployment():
    """One SuperLink and 2 SuperNodes for the module's runs; every process stopped after."""
    federation = LocalFederation(2, startup_timeout=60)
    started = []
    try:
        federation.start()
        started = [p.pid for p in federation.processes.values()]
        yield federation
    finally:
        federation.close()
        assert_all_stopped(federation, started)


@pytest.mark.parametrize("experiment", [
    Experiment(num_participants=2, algorithm="fedsgd", lr=0.1, num_rounds=2, round_timeout=60),
    Experiment(num_participants=2, model="mlp", algorithm="fedavg", batch_size=20,
               local_epochs=2, num_rounds=2, round_timeout=60),
], ids=["linear-fedsgd", "mlp-fedavg"])
@starts_processes
def test_deployment_engine_equals_simulate(deployment, experiment):
    run = deployment.run(experiment, timeout=300)
    assert run.engine == "deployment" and run.short_rounds == {} and run.unevaluated == {}
    assert_same_run(run.history, experiment.simulate())
    # Flower counts more than fedlite: framing, evaluation messages, requests and replies
    assert run.traffic_total > run.history.bytes_total[-1]
    assert run.round_seconds.shape == (2,)


@starts_processes
def test_deployment_a_stopped_supernode_fails_the_run_clearly_and_nothing_is_left():
    experiment = Experiment(num_participants=2, num_rounds=2, round_timeout=60)
    federation = LocalFederation(2)
    started = []
    try:
        with pytest.raises(FlowerRunError, match=r"^round 2: only 1 of the 2 selected .*"
                                                 r"\(Flower run \d+ ended finished:failed\)"
                           ) as failed:
            with federation:
                started = [p.pid for p in federation.processes.values()]
                federation.run(experiment, stop_supernode=(1, 1), timeout=300)
    finally:
        federation.close()
    assert failed.value.status == "finished:failed" and failed.value.run_id is not None
    assert started and Path(federation.directory).exists() is False
    assert_all_stopped(federation, started)


@pytest.mark.skipif(not ray_installed(), reason="Flower's simulation engine needs Ray: "
                    "pip install -e \".[flower,flower-simulation]\"")
@starts_processes
def test_simulation_engine_equals_simulate():
    from fedlite.flower import run_flower
    experiment = Experiment(num_participants=3, algorithm="fedavg", batch_size=20,
                            num_rounds=2, round_timeout=120)
    run = run_flower(experiment, engine="simulation", timeout=400)
    assert run.engine == "simulation"
    assert_same_run(run.history, experiment.simulate())
