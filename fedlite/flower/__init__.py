"""fedlite on Flower: the same participants and server as separate processes over the network.

`fedlite.simulate` runs a whole federation in one process.  This package runs the same
experiment on Flower (flwr 1.42, its Message API), the engine people deploy: each participant
is a SuperNode process, the server a ServerApp behind a SuperLink, and parameters travel as
Flower arrays over the network.  The maths does not change, so the losses are the same.

  experiment   Experiment: the data recipe and simulate's settings, as Flower's run config;
               every process builds the same Federation from it (a node takes its partition-id)
  client_app   the ClientApp: train = the algorithm's participant half (Participant.fit),
               evaluate = the loss on local data                                (imports flwr)
  server_app   the ServerApp and FedliteStrategy: aggregate_train = the n_k-weighted mean,
               then the algorithm's server half with the server optimiser      (imports flwr)
  messages     numpy arrays <-> Flower arrays, the node's partition-id          (imports flwr)
  results      the result file -> fedlite History; FlowerRun, FlowerRunError
  launcher     LocalFederation: a SuperLink and N SuperNodes on 127.0.0.1 (or the simulation
               engine), `flwr run`, the run's status, a clean stop; run_flower in one call
  __main__     python -m fedlite.flower (python3 tasks.py flower): run on a local federation,
               print the History beside simulate's
  app/         the Flower app's pyproject.toml (`flwr run fedlite/flower/app CONNECTION`)

Install the extra first: pip install -e ".[flower]" (and ".[flower-simulation]" for Flower's
simulation engine, which needs Ray).  `import fedlite` never imports flwr; neither does
`import fedlite.flower`: only the two apps (and `messages`) do, when Flower loads them.

    from fedlite.flower import Experiment, run_flower
    run = run_flower(Experiment(num_participants=3, algorithm="fedavg", num_rounds=5))
    run.history.loss        # the same numbers as Experiment(...).simulate().loss
"""
from .experiment import Experiment
from .launcher import LocalFederation, flwr_installed, ray_installed, run_flower
from .results import FlowerRun, FlowerRunError, history_from_result

__all__ = ["Experiment", "FlowerRun", "FlowerRunError", "LocalFederation", "flwr_installed",
           "history_from_result", "ray_installed", "run_flower"]
