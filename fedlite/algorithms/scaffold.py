"""SCAFFOLD (Karimireddy et al., 2020, "SCAFFOLD: Stochastic Controlled Averaging for FL").

FedAvg's local steps drift towards each participant's own optimum when the data differ
(notebook 06).  SCAFFOLD corrects every local step with control variates that estimate that
drift: the server keeps c, participant k keeps c_k (both start at 0), and

  participant k, from the server's x:   y <- y - lr (∇f_k(y; batch) - c_k + c)   (tau_k steps)
      option II of the paper:           c_k+ = c_k - c + (x - y) / (tau_k lr)
      sends                             y_k (its weights, as in FedAvg) and Δc_k = c_k+ - c_k
  server:                               x <- x + server_lr · (Σ n_k y_k / Σ n_k - x)
                                        c <- c + Σ_{k selected} (n_k / N) Δc_k

N is the number of rows of all participants, so c stays the n_k-weighted mean of all the c_k;
the paper's server step size eta_g is `server_lr` (1 by default; any server optimiser applies
to the model step).  A participant that sits a round out keeps its c_k.  The paper averages
y_k and Δc_k uniformly (c <- c + (1/K) Σ Δc_k); fedlite weights both by n_k like FedAvg, which
is the same with equal sizes, and with unequal sizes makes the fixed point the minimiser of
the pooled loss Σ_k n_k L_k / N (with the paper's uniform weights it would be the minimiser
of the plain average of the participants' losses).  At SCAFFOLD's fixed point the corrections
cancel the drift, so it reaches the pooled optimum where FedAvg stalls (notebook 07).
"""
from __future__ import annotations

import numpy as np

from .. import engine
from .base import FitResult, LocalSGD, local_steps


class Scaffold(LocalSGD):
    name = "scaffold"
    messages_per_round = 2   # the model and a control variate, each way

    def init_participant_state(self, num_participants, num_params):
        return {"control": np.zeros((num_participants, num_params))}

    def init_server_state(self, num_params):
        return {"control": np.zeros(num_params)}

    # -- participant half, readable: one participant
    def fit(self, model, X, y, theta, config, key, round_number, state_k, server_state):
        c, c_k = server_state["control"], state_k["control"]
        v, steps = self.local_sgd(model, X, y, theta, config, key, round_number,
                                  correction=c - c_k)
        c_k_new = c_k - c + (theta - v) / (steps * config["lr"])
        return FitResult(v, len(y), {"control_delta": c_k_new - c_k}, {"control": c_k_new})

    # -- participant half, all selected participants (compiled local steps)
    def corrections(self, selected, participant_state, server_state, num_params):
        return server_state["control"] - participant_state["control"][selected]

    def fit_selected(self, model, federation, selected, keys, round_number, theta, config,
                     participant_state, server_state):
        reports, _, _ = super().fit_selected(model, federation, selected, keys, round_number,
                                             theta, config, participant_state, server_state)
        c, controls = server_state["control"], participant_state["control"]
        steps = local_steps(federation.sizes[selected], config["batch_size"],
                            config["local_epochs"])
        c_k = controls[selected]
        c_k_new = c_k - c + (theta - reports) / (steps[:, None] * config["lr"])
        controls = controls.copy()
        controls[selected] = c_k_new
        extras = {"control_delta": c_k_new - c_k}
        return reports, extras, {"control": controls}

    # -- server half
    def aggregate_fit(self, theta, mean_report, extras, selected, config, server_state,
                      optimizer):
        new_theta, server_state = super().aggregate_fit(theta, mean_report, extras, selected,
                                                        config, server_state, optimizer)
        weighted = extras["weights"][:, None] * extras["control_delta"]     # n_k / N Δc_k
        total = engine.sum_rows(weighted)   # compiled, in row order: threads cannot change a bit
        return new_theta, {**server_state, "control": server_state["control"] + total}
