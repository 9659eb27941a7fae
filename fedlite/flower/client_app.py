"""The participant side on Flower: a ClientApp whose training step is fedlite's participant half.

Each SuperNode runs this for every message the server sends it.  It builds the experiment's
Federation from the run config (every node builds the same one), takes participant k's rows,
k = its node config's partition-id, and answers:

  train     Participant.fit (fedlite.federated): the algorithm's participant half on local data
            from the server's parameters; replies the report (gradient or weights; SCAFFOLD
            also its control-variate change) and n_k.  State the participant keeps between
            rounds (SCAFFOLD's c_k) stays on the node, in the Context's state.
  evaluate  the loss of the server's parameters on local data, and n_k.

Parameters travel as float64 arrays in an ArrayRecord (bit for bit: the same numbers as in
`simulate`); scalars travel in a MetricRecord.
"""
from __future__ import annotations

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ..federated import Participant
from ..simulation import participant_keys_for_seed
from .experiment import Experiment
from .messages import STATE_KEY, array_dict, node_partition, numpy_dict

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One round of local training: the algorithm's participant half."""
    experiment, participant = _participant(context)
    if STATE_KEY in context.state:          # e.g. SCAFFOLD's c_k from an earlier round
        participant.state = numpy_dict(context.state[STATE_KEY])
    arrays = numpy_dict(msg.content["arrays"])
    config = {**experiment.config.as_dict(), "round": int(msg.content["config"]["server-round"]),
              "server_state": {name: arrays[name] for name in arrays if name != "theta"}}
    report, num_examples, metrics = participant.fit(arrays["theta"], config)
    if participant.state:
        context.state[STATE_KEY] = ArrayRecord(array_dict(participant.state))
    sent = {"report": report, **{name: value for name, value in metrics.items()
                                 if name == "control_delta"}}
    return _reply(msg, participant, num_examples, ArrayRecord(array_dict(sent)))


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """The loss of the server's model on this participant's data."""
    _, participant = _participant(context)
    theta = numpy_dict(msg.content["arrays"])["theta"]
    return _reply(msg, participant, len(participant.y), None,
                  loss=float(participant.evaluate(theta)))


def _participant(context):
    """This node's participant: its rows of the experiment's federation and its shuffling key
    (the same key `simulate` gives participant k, so it draws the same minibatches)."""
    experiment = Experiment.from_run_config(context.run_config)
    k = node_partition(context.node_config, experiment.num_participants)
    X_k, y_k = experiment.federation.participant(k)
    key = participant_keys_for_seed(experiment.seed, experiment.num_participants)[k]
    return experiment, Participant(k, X_k, y_k, key, experiment.model_object)


def _reply(msg, participant, num_examples, arrays, **metrics):
    content = RecordDict({"metrics": MetricRecord({
        "num-examples": int(num_examples), "partition-id": participant.participant_id,
        **metrics})})
    if arrays is not None:
        content["arrays"] = arrays
    return Message(content=content, reply_to=msg)
