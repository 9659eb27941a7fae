"""What travels between fedlite's two halves on Flower: named float64 arrays, and the node's id.

Both apps use these; each array keeps its dtype and bits (Flower serialises numpy arrays
with np.save), so the numbers the server aggregates are the ones the participants computed.
"""
from __future__ import annotations

import numpy as np
from flwr.app import Array

STATE_KEY = "fedlite-participant"   # the Context.state record holding a participant's state


def array_dict(values):
    """{name: numpy array} -> {name: flwr Array} (float64, for an ArrayRecord)."""
    return {name: Array(np.ascontiguousarray(value, dtype=np.float64))
            for name, value in values.items()}


def numpy_dict(record):
    """An ArrayRecord -> {name: float64 numpy array}."""
    return {name: np.asarray(array.numpy(), dtype=np.float64) for name, array in record.items()}


def node_partition(node_config, num_participants):
    """The participant id a SuperNode plays: its node config's partition-id, checked against
    num-partitions and the experiment's number of participants."""
    try:
        k, K = int(node_config["partition-id"]), int(node_config["num-partitions"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("this SuperNode needs --node-config 'partition-id=k num-partitions=K' "
                         f"(integers); got {dict(node_config)!r}") from None
    if K != num_participants:
        raise ValueError(f"this SuperNode's node config says num-partitions={K}, but the "
                         f"experiment has num_participants={num_participants}")
    if not 0 <= k < K:
        raise ValueError(f"this SuperNode's partition-id must be in 0..{K - 1}; got {k}")
    return k
