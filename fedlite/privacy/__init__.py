"""Privacy in federated learning: what updates leak, and what actually protects them.

"The data never leave the participant" does not make federated learning private: the updates
are functions of the data, and can give it away.  Three modules, one idea each (notebooks 09-11):

  leakage               what a gradient reveals: exact inversion for one example, the ratio
                        attack on a batch, gradient matching ("Deep Leakage from Gradients")
  secure_aggregation    pairwise masks and Shamir shares (Bonawitz et al. 2017): the server
                        learns the sum of the updates and nothing else, even with dropouts
  differential_privacy  DP-FedAvg (McMahan et al. 2018): clip, add noise, sample, and the
                        Rényi-DP accountant that turns that into (ε, δ)

Both protections plug into the simulator: `simulate(..., aggregator=SecureAggregator())` or
`aggregator=DPAggregator(clip_norm, noise_multiplier, sampling_rate=q)` (with participation=1.0:
DPAggregator refuses a fixed-size subset, since the accountant's q must be the only sampling).
Their promises, each checked: a secure sum is right or refused (`UpdateOverflowError`, which
simulate reports as divergence), and never covers fewer than min_participants >= 2
participants, selected and surviving (a sum of one is that participant's update).  This package
gathers the names.
"""
from .differential_privacy import (DPAggregator, DPRun, attack_errors, clip_by_norm, clip_factor,
                                   dp_fedavg_run, epsilon, noise_std, rdp_sampled_gaussian,
                                   rdp_to_epsilon)
from .leakage import (LeakageCurve, candidate_rows, invert_linear_gradient, invert_mlp_gradient,
                      leakage_vs_batch_size, matching_loss_grad, model_grads,
                      reconstruct_from_gradient, reconstruction_error)
from .secure_aggregation import (SecureAggregator, SecureSum, cost, decode, encode, masked_input,
                                 pair_mask, reconstruct_secret, secure_sum, share_secret)

__all__ = [
    "DPAggregator", "DPRun", "LeakageCurve", "SecureAggregator", "SecureSum", "attack_errors",
    "candidate_rows", "clip_by_norm", "clip_factor", "cost", "decode", "dp_fedavg_run", "encode",
    "epsilon", "invert_linear_gradient", "invert_mlp_gradient", "leakage_vs_batch_size",
    "masked_input", "matching_loss_grad", "model_grads", "noise_std", "pair_mask",
    "rdp_sampled_gaussian", "rdp_to_epsilon", "reconstruct_from_gradient",
    "reconstruct_secret", "reconstruction_error", "secure_sum", "share_secret",
]
