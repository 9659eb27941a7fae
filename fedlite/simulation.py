"""`simulate`: run federated training on a `Federation` and return its `History`.

One round (the article's loop): the server sends the model to the selected participants; each
computes on its own data and sends the result back; the server combines the results into the
next model.  This is the one round loop of fedlite: every model (`fedlite.core.model`), every
algorithm (`fedlite.algorithms`: a participant half and a server half) and every aggregator
(secure aggregation, differential privacy, compression) runs through it, with one divergence
rule and one `History`.  The participants' local work and the weighted mean run in compiled
code (`fedlite.engine`); `fedlite.federated` is the same round as readable Python.  Nothing
here prints or plots: the caller decides what to show.
"""
from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from . import engine
from .algorithms import ALGORITHMS, make_server_optimizer
from .algorithms.base import FULL_BATCH  # noqa: F401  (the name of earlier versions)
from .core.config import RunConfig, RunSeeds
from .core.model import BYTES_PER_VALUE, build_model
from .partition import Federation
from .validation import UpdateOverflowError, as_float_array

DIVERGENCE_FACTOR = 1e6  # a loss this many times the starting loss counts as diverged


@runtime_checkable
class Aggregator(Protocol):
    """What `simulate(aggregator=...)` plugs in place of the plain weighted mean.

    start(num_participants, num_params, seed_sequence)   once per run, before round 1
    prepare(reports (m, P), selected (m,), round_number) -> (m, P)        optional: the
        participant-side step (clipping, compression with error feedback), applied to each
        participant's own report before it leaves the participant
    aggregate(reports (m, P), num_examples (m,), selected (m,), round_number)
        -> (mean report (P,), bytes sent up this round)                 the server side
    Reports are gradients (FedSGD) or weight changes y_k - theta (FedAvg, FedProx).
    `carries_control_variates = True` marks an aggregator that can also carry what an
    algorithm with messages_per_round > 1 sends besides its report (none of fedlite's can).
    """

    def start(self, num_participants: int, num_params: int,
              seed_sequence: np.random.SeedSequence) -> None: ...

    def aggregate(self, reports: np.ndarray, num_examples: np.ndarray, selected: np.ndarray,
                  round_number: int) -> tuple: ...


@dataclass(frozen=True)
class RunState:
    """What a run carries from one round to the next, enough to resume it exactly.

    round              rounds completed so far
    theta (P,)         the server's model
    participant_state  {name: (K, P)} e.g. SCAFFOLD's control variates c_k
    server_state       {name: (P,) or dict} e.g. SCAFFOLD's c, the server optimiser's moments
    """

    round: int
    theta: np.ndarray
    participant_state: dict = field(default_factory=dict)
    server_state: dict = field(default_factory=dict)


@dataclass
class History:
    """What happened in a simulated run (R = rounds completed).

    loss             (R+1,)   global training loss Σ_k n_k L_k / N after each round; [0] before training
    participant_loss (R+1, K) each participant's loss L_k on its own data under the global model
    selected         (R, m)   which participants took part in each round (ids, ascending)
    bytes_up         (R,)     bytes sent participants -> server in each round (int; parameters
                              count 8 bytes each, as float64)
    bytes_down       (R,)     bytes sent server -> participants in each round (int)
    theta            (P,)     final parameters as one flat vector; `params` gives them as a tuple
    diverged_at      None, or the round whose loss was not finite or exceeded
                     DIVERGENCE_FACTOR x loss[0] (or whose updates could not be aggregated);
                     the run stopped there and the history ends at the round before it
                     (everything stored is finite)
    config           the run's settings (a frozen `RunConfig`; config["lr"] works too)
    model            the model object (`fedlite.core.model`)
    state            the `RunState` after the last round: `simulate(..., resume=history)`
                     continues the run exactly where it stopped
    metrics          {name: (R,) array} per-round extras some models record (e.g. LoRA's
                     aggregation error)
    Evaluation, each (R+1,) or (R+1, K) with [0] before training, None when it does not apply:
    accuracy, participant_accuracy   classifiers: accuracy on the training data, pooled and
                                     each participant's on its own rows
    test_loss, test_accuracy         with simulate(test=...): the global model on the test data
                                     (test_accuracy for classifiers)
    participant_test_accuracy        with test= a Federation of held-out shares (one per
                                     participant, `partition.split_held_out`): each
                                     participant's accuracy on its own held-out share
    """

    loss: np.ndarray
    participant_loss: np.ndarray
    selected: np.ndarray
    bytes_up: np.ndarray
    bytes_down: np.ndarray
    theta: np.ndarray
    diverged_at: int | None
    config: RunConfig = field(repr=False)
    model: object = field(default=None, repr=False)
    state: RunState | None = field(default=None, repr=False)
    metrics: dict = field(default_factory=dict, repr=False)
    accuracy: np.ndarray | None = field(default=None, repr=False)
    participant_accuracy: np.ndarray | None = field(default=None, repr=False)
    test_loss: np.ndarray | None = field(default=None, repr=False)
    test_accuracy: np.ndarray | None = field(default=None, repr=False)
    participant_test_accuracy: np.ndarray | None = field(default=None, repr=False)

    @property
    def params(self):
        """Final parameters: (w, b) for the linear model, (W1, b1, W2, b2) for the MLP."""
        return self.model.unpack(self.theta)

    @property
    def num_rounds(self):
        """Rounds completed (fewer than asked for if the run diverged)."""
        return len(self.loss) - 1

    @property
    def diverged(self):
        return self.diverged_at is not None

    @property
    def bytes_total(self):
        """(R+1,) cumulative bytes sent both ways up to each round; [0] = 0."""
        return np.concatenate([[0], np.cumsum(self.bytes_up + self.bytes_down)])

    def evaluation(self):
        """{name: array} of the evaluation records this run has (accuracy, test_loss, ...)."""
        return {name: getattr(self, name) for name in Evaluation.NAMES
                if getattr(self, name) is not None}

    def rounds_to(self, target_loss):
        """First round whose global loss is <= target_loss, or None if never reached."""
        from .validation import as_float
        target_loss = as_float(target_loss, "target_loss")
        hits = np.flatnonzero(self.loss <= target_loss)
        return int(hits[0]) if hits.size else None

    def __repr__(self):
        status = f"diverged at round {self.diverged_at}" if self.diverged else "finished"
        return (f"History({self.config['algorithm']}, {self.config['model']}, {status} after "
                f"{self.num_rounds} rounds, loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g})")


def simulate(federation, *, model="linear", algorithm="fedsgd", num_rounds, lr, local_epochs=1,
             batch_size=None, mu=0.0, participation=1.0, hidden=10, seed=0, init=None,
             aggregator=None, server_optimizer="sgd", server_lr=None, server_momentum=0.9,
             beta1=0.9, beta2=0.99, tau=1e-3, resume=None, test=None):
    """Simulate federated training of `model` on `federation`; returns a `History`.

    federation    a `fedlite.Federation` (participant k holds rows offsets[k]:offsets[k+1])
    model         "linear" (y = w·x + b), "mlp" (Dense(hidden, relu) -> Dense(1)), or a model
                  object (`fedlite.core.model.Model`, e.g. `fedlite.lora.LoraModel`)
    algorithm     "fedsgd" (participants send a full-batch gradient, the server steps by lr),
                  "fedavg" (participants run local_epochs of minibatch SGD, send weights),
                  "fedprox" (FedAvg plus mu/2 ||w - w_server||² in each local objective),
                  or any name in fedlite.algorithms.ALGORITHMS
    num_rounds    rounds of communication, >= 1
    lr            learning rate, > 0 (the server's step for FedSGD, the local step otherwise)
    local_epochs, batch_size   local work per round (not FedSGD); batch_size None = full batch
    mu            FedProx proximal strength, >= 0 (0 reproduces FedAvg exactly)
    participation fraction of participants selected each round, in (0, 1]; at least one
    hidden        hidden units of the MLP
    seed          int seed for everything random (MLP init, participant sampling, minibatch order)
    init          starting parameters (a tuple as in `History.params`, or a flat theta);
                  None = the model's own (zeros for linear, a seeded He initialisation for MLP)
    aggregator    None for the plain n_k-weighted mean (compiled), or an `Aggregator`
                  (secure aggregation, differential privacy, compression; see `Aggregator`)
    server_optimizer, server_lr, server_momentum, beta1, beta2, tau
                  what the server does with the mean weight change (not FedSGD): "sgd"
                  (server_lr 1 = plain FedAvg), "momentum", "adam", "yogi", "adagrad"
                  (fedlite.algorithms.server_optimizers; server_lr None = 1 for sgd and
                  momentum, 0.1 for the adaptive ones)
    resume        a History of an earlier run on the same federation with the same model and
                  algorithm: continue it (its rounds, control variates, optimiser moments,
                  selection and minibatch streams); the new History holds the whole run
    test          None, (X_test, y_test), or a Federation of held-out shares with the same
                  participants (`partition.split_held_out`): evaluate the global model on it
                  before training and after every round (History.test_loss, test_accuracy,
                  participant_test_accuracy)
    """
    federation = check_federation(federation)
    d = federation.num_features
    model = _build_model(model, federation, hidden)
    evaluate = Evaluation(model, federation, test)
    config = RunConfig.build(
        model_name=model.name, num_features=d,
        smallest_participant=int(federation.sizes.min()), algorithm=algorithm,
        num_rounds=num_rounds, lr=lr, local_epochs=local_epochs, batch_size=batch_size, mu=mu,
        participation=participation, hidden=model.hidden, seed=seed,
        server_optimizer=server_optimizer, server_lr=server_lr,
        server_momentum=server_momentum, beta1=beta1, beta2=beta2, tau=tau)
    algo = ALGORITHMS[config.algorithm]
    optimizer = make_server_optimizer(config)
    aggregator = _check_aggregator(aggregator, algo)
    # the run's random streams, made when first needed (spawning them costs ~30 µs, which a run
    # stepped one round per call with everyone taking part and no aggregator never needs)
    seeds = functools.cache(functools.partial(RunSeeds.from_seed, config.seed))
    K, P = federation.num_participants, model.num_params
    sizes = federation.sizes.astype(np.float64)
    total_examples = sizes.sum()
    m = max(1, int(round(config.participation * K)))
    keys = participant_keys_for_seed(config.seed, K)

    if resume is not None:
        if init is not None:
            raise ValueError("give either init or resume, not both")
        past = _check_resume(resume, federation, model, config)
        state = past.state
        losses, loss0 = [past.participant_loss[-1]], float(past.loss[0])
        evaluate.records = {name: [values[-1]] for name, values in past.evaluation().items()}
        if (past.test_loss is None) != (evaluate.test is None):
            raise ValueError("resume: give test= exactly when the earlier run had it (the "
                             "same test data), so that its evaluation continues")
    else:
        past = None
        theta = (model.init(np.random.default_rng(seeds().init)) if init is None
                 else _initial_theta(init, model))
        state = RunState(0, theta, algo.init_participant_state(K, P),
                         {**algo.init_server_state(P), "optimizer": optimizer.init(P)})
        with np.errstate(all="ignore"):   # an overflow is refused just below, not warned
            losses = [_LAST_LOSSES.get(model, federation, theta)]
            loss0 = _global_loss(losses[0], sizes)
        if not np.isfinite(loss0):
            raise ValueError(
                "the loss at the starting parameters is not finite although the data are: it "
                "overflows float64 (values near 1e154 or more squared); rescale X and y"
                + (" or choose a smaller init" if init is not None else ""))
        evaluate(theta)
    if aggregator is not None:
        aggregator.start(K, P, seeds().aggregator)

    theta, participant_state, server_state = (state.theta, state.participant_state,
                                              state.server_state)
    per_message = algo_values(algo, P) * BYTES_PER_VALUE
    selected, sent_up, diverged_at = [], [], None
    metrics = {}
    loss_limit = DIVERGENCE_FACTOR * max(loss0, np.finfo(float).tiny)
    with np.errstate(all="ignore"):
        for r in range(state.round + 1, state.round + config.num_rounds + 1):
            chosen = (np.arange(K) if m == K
                      else np.sort(seeds().round_rng(r).choice(K, size=m, replace=False)))
            examples = sizes[chosen]
            reports, extras, new_participant_state = algo.fit_selected(
                model, federation, chosen, keys, r, theta, config, participant_state,
                server_state)
            extras = {**extras, "num_participants": K, "weights": examples / total_examples}
            if not np.isfinite(reports).all():
                diverged_at = r
                break
            if aggregator is None:
                mean = engine.aggregate(reports, examples)
                sent = m * per_message
            else:
                try:
                    mean, sent = _aggregate_with(aggregator, algo, reports, theta, examples,
                                                 chosen, r)
                except UpdateOverflowError:
                    diverged_at = r
                    break
            new_theta, new_server_state = algo.aggregate_fit(
                theta, mean, extras, chosen, config, server_state, optimizer)
            new_losses = _losses(model, federation, new_theta)
            loss = _global_loss(new_losses, sizes)
            if not (np.isfinite(loss) and np.isfinite(new_theta).all() and loss <= loss_limit):
                diverged_at = r
                break
            for name, value in getattr(model, "round_metrics", _no_metrics)(
                    reports, examples, theta, new_theta).items():
                metrics.setdefault(name, []).append(value)
            theta, participant_state, server_state = (new_theta, new_participant_state,
                                                      new_server_state)
            evaluate(theta)
            losses.append(new_losses)
            selected.append(chosen)
            sent_up.append(sent)

    _LAST_LOSSES.remember(model, federation, theta, losses[-1])
    R = len(selected)
    participant_loss = np.array(losses)
    history = History(
        loss=(participant_loss * sizes).sum(axis=1) / sizes.sum(),
        participant_loss=participant_loss,
        selected=np.array(selected, dtype=np.int64).reshape(R, m),
        bytes_up=np.array(sent_up, dtype=np.int64),
        bytes_down=np.full(R, m * per_message, dtype=np.int64),
        theta=theta,
        diverged_at=diverged_at,
        config=config,
        model=model,
        state=RunState(state.round + R, theta, participant_state, server_state),
        metrics={name: np.array(values) for name, values in metrics.items()},
        **evaluate.arrays(),
    )
    return history if past is None else _joined(past, history)


def algo_values(algorithm, num_params):
    """Values each participant sends (and receives) per round: P times the algorithm's
    messages_per_round (e.g. the model plus a control variate)."""
    return num_params * getattr(algorithm, "messages_per_round", 1)


def participant_keys(seed_sequence, num_participants):
    """One 31-bit key per participant from its own child of `seed_sequence`, shape (K,) int64.

    Child k is the same whatever the number of participants, so a participant's minibatch order
    does not change when others are added.
    """
    children = seed_sequence.spawn(num_participants)
    return np.array([child.generate_state(1)[0] & engine.HASH_MASK for child in children],
                    dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _cached_keys(seed, num_participants):
    keys = participant_keys(RunSeeds.from_seed(seed).participants, num_participants)
    keys.flags.writeable = False
    return keys


def participant_keys_for_seed(seed, num_participants):
    """The participant keys `simulate(..., seed=seed)` uses, shape (K,) (read-only, cached:
    spawning K SeedSequences costs ~16 µs each, which stepping a run one round at a time with
    1000 participants would otherwise pay every round)."""
    return _cached_keys(int(seed), int(num_participants))


def check_federation(federation):
    """The federation, checked: a fedlite.Federation whose offsets fit its data (the compiled
    engine reads rows offsets[k]:offsets[k+1] without bounds checks)."""
    if not isinstance(federation, Federation):
        raise TypeError("federation must be a fedlite.Federation (make one with fedlite.split "
                        f"or Federation.from_participants); got {type(federation).__name__}")
    X, y, offsets = federation.X, federation.y, federation.offsets
    ok = (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
          and X.flags.c_contiguous and isinstance(y, np.ndarray) and y.dtype == np.float64
          and y.shape == (X.shape[0],) and y.flags.c_contiguous
          and isinstance(offsets, np.ndarray) and offsets.dtype == np.int64
          and offsets.ndim == 1 and offsets.size >= 2 and offsets[0] == 0
          and offsets[-1] == X.shape[0] and bool(np.all(np.diff(offsets) >= 1)))
    if not ok:
        raise ValueError("federation's arrays were changed after it was made (its offsets no "
                         "longer fit its data); make a new one with fedlite.split")
    return federation


class Evaluation:
    """What a run measures besides the training loss, before training and after every round.

    Classifiers (models with `predict` and `accuracy`): accuracy on the training data, pooled
    and per participant.  With test data: the test loss (and accuracy), and with a Federation
    of held-out shares, each participant's accuracy on its own share.
    """

    NAMES = ("accuracy", "participant_accuracy", "test_loss", "test_accuracy",
             "participant_test_accuracy")

    def __init__(self, model, federation, test):
        self.model, self.federation = model, federation
        self.classifier = callable(getattr(model, "accuracy", None))
        self.test = self.held_out = None
        if isinstance(test, Federation):
            if test.num_participants != federation.num_participants:
                raise ValueError(f"test must hold one held-out share per participant: the "
                                 f"federation has {federation.num_participants} participants, "
                                 f"test has {test.num_participants}")
            if test.num_features != federation.num_features:
                raise ValueError(f"test's X must have {federation.num_features} columns like "
                                 f"the federation's; got {test.num_features}")
            self.held_out = test
            self.test = (test.X, test.y)
        elif test is not None:
            if not (isinstance(test, tuple) and len(test) == 2):
                raise TypeError("test must be (X_test, y_test) or a Federation of held-out "
                                f"shares (partition.split_held_out); got {type(test).__name__}")
            X_test = as_float_array(test[0], "X_test", 2, ("n", federation.num_features))
            y_test = as_float_array(test[1], "y_test", 1, (X_test.shape[0],))
            if self.classifier:
                y_test = model.check_labels(y_test, name="y_test")
            self.test = (X_test, y_test)
        self.records = {}

    def __call__(self, theta):
        """Measure the model theta; append to the records."""
        model, record = self.model, self.records
        if self.classifier:
            fed = self.federation
            correct = _correct(model, fed.X, fed.y, theta)
            record.setdefault("accuracy", []).append(float(correct.mean()))
            record.setdefault("participant_accuracy", []).append(_per_participant(correct, fed))
        if self.test is not None:
            X_test, y_test = self.test
            record.setdefault("test_loss", []).append(model.loss_grad(X_test, y_test, theta)[0])
            if self.classifier:
                correct = _correct(model, X_test, y_test, theta)
                record.setdefault("test_accuracy", []).append(float(correct.mean()))
                if self.held_out is not None:
                    record.setdefault("participant_test_accuracy", []).append(
                        _per_participant(correct, self.held_out))

    def arrays(self):
        return {name: np.array(values) for name, values in self.records.items()}


def _correct(model, X, y, theta):
    """1.0 where the model's predicted class is the label, else 0.0, shape (n,)."""
    return (model.predict(X, theta) == y).astype(np.float64)


def _per_participant(values, federation):
    """Each participant's mean of a per-row quantity, shape (K,)."""
    return np.add.reduceat(values, federation.offsets[:-1]) / federation.sizes


def _build_model(model, federation, hidden):
    """The model object: a name (a classifier counts its classes in the labels) or an object
    (a classifier's labels are checked against its classes before anything runs)."""
    return build_model(model, federation.num_features, hidden, y=federation.y)


# ----------------------------------------------------------------------------- helpers
def _losses(model, federation, theta):
    return model.participant_losses(federation, theta)


class _LastLosses:
    """Each participant's loss where the latest run ended, kept so that a run continued from
    there with `init=history.theta` (stepping one round per call) does not pass over all the
    data again to compute them.  Only for models with a compiled kernel (their losses depend on
    the federation's data, the model's shape and theta alone); the federation is held weakly."""

    def __init__(self):
        self.entry = None   # (weak reference to the federation, key, losses)

    @staticmethod
    def key(model, theta):
        return model.engine_code, model.num_features, model.hidden, theta.tobytes()

    def get(self, model, federation, theta):
        """The losses at theta: remembered if the latest run ended there, else computed."""
        entry = self.entry
        if (entry is not None and model.engine_code is not None and entry[0]() is federation
                and entry[1] == self.key(model, theta)):
            return entry[2].copy()
        return _losses(model, federation, theta)

    def remember(self, model, federation, theta, losses):
        self.entry = (None if model.engine_code is None else
                      (weakref.ref(federation), self.key(model, theta), losses.copy()))


_LAST_LOSSES = _LastLosses()


def _global_loss(participant_losses, sizes):
    """Σ_k n_k L_k / N: the loss on the pooled data."""
    return float((participant_losses * sizes).sum() / sizes.sum())


def _no_metrics(*args):
    return {}


def _aggregate_with(aggregator, algo, reports, theta, num_examples, selected, round_number):
    """An aggregator's mean, as the algorithm's server half expects it (mean weights or mean
    gradient); the aggregator itself sees gradients or weight changes."""
    reports = reports if algo.reports == "gradient" else reports - theta
    prepare = getattr(aggregator, "prepare", None)
    if prepare is not None:   # the participant side: each report is processed where it is made
        reports = _checked_output(prepare(reports, selected, round_number), reports.shape,
                                  "aggregator.prepare")
    result = aggregator.aggregate(reports, num_examples, selected, round_number)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError("aggregator.aggregate must return (mean report (P,), bytes_up int); "
                        f"got {type(result).__name__}")
    mean, sent = result
    mean = _checked_output(mean, (theta.size,), "aggregator.aggregate's mean")
    if isinstance(sent, bool) or not isinstance(sent, (int, np.integer)) or sent < 0:
        raise TypeError(f"aggregator.aggregate must return bytes_up as an int >= 0; got {sent!r}")
    if not np.isfinite(mean).all():
        raise UpdateOverflowError("the aggregated update is not finite")
    return (mean if algo.reports == "gradient" else theta + mean), int(sent)


def _checked_output(value, shape, name):
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be a float array of shape {shape}; {exc}") from None
    if array.shape != shape or array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a float array of shape {shape}; got "
                        f"{array.dtype} of shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _check_aggregator(aggregator, algo):
    if aggregator is None:
        return None
    for method in ("start", "aggregate"):
        if not callable(getattr(aggregator, method, None)):
            raise TypeError(f"aggregator must have start(...) and aggregate(...) methods (see "
                            f"fedlite.simulation.Aggregator); {type(aggregator).__name__} has "
                            f"no {method}")
    if (getattr(algo, "messages_per_round", 1) > 1
            and not getattr(aggregator, "carries_control_variates", False)):
        raise ValueError(f"algorithm={algo.name!r} sends control variates too, which the "
                         f"aggregator {type(aggregator).__name__} cannot carry; use fedavg or "
                         f"fedprox with it")
    return aggregator


def _initial_theta(init, model):
    P = model.num_params
    if (isinstance(init, (tuple, list)) and len(init) == P
            and all(isinstance(v, (int, float, np.integer, np.floating))
                    and not isinstance(v, bool) for v in init)):
        return as_float_array(np.array(init, dtype=np.float64), "init", 1, (P,))  # flat theta
    if isinstance(init, (tuple, list)):
        try:
            return model.pack(init)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"init: {exc}") from None
    if isinstance(init, np.ndarray) and init.dtype.kind in "iuf":
        theta = as_float_array(init, "init", 1, (P,))
        return theta.copy()
    raise TypeError(f"init must be a tuple like History.params or a flat float array of "
                    f"{P} parameters for {model!r}; got {type(init).__name__}")


def _check_resume(history, federation, model, config):
    if not isinstance(history, History) or history.state is None:
        raise TypeError(f"resume must be a History returned by fedlite.simulate; got "
                        f"{type(history).__name__}")
    past = history.config
    for name in ("model", "algorithm", "num_features", "hidden", "seed", "participation",
                 "server_optimizer"):
        before, now = getattr(past, name), getattr(config, name)   # both RunConfigs
        if before != now:
            raise ValueError(f"resume: the earlier run had {name}={before!r}, this one "
                             f"{name}={now!r}; a resumed run keeps them")
    if history.participant_loss.shape[1] != federation.num_participants:
        raise ValueError("resume: the earlier run had a different number of participants")
    if history.diverged:
        raise ValueError(f"resume: the earlier run diverged at round {history.diverged_at}")
    if history.model.num_params != model.num_params:
        raise ValueError("resume: the earlier run's model has a different size")
    return history


def _joined(past, new):
    """The whole run: the earlier history followed by the rounds just simulated."""
    return History(
        loss=np.concatenate([past.loss, new.loss[1:]]),
        participant_loss=np.concatenate([past.participant_loss, new.participant_loss[1:]]),
        selected=np.concatenate([past.selected, new.selected]),
        bytes_up=np.concatenate([past.bytes_up, new.bytes_up]),
        bytes_down=np.concatenate([past.bytes_down, new.bytes_down]),
        theta=new.theta, diverged_at=new.diverged_at, config=new.config, model=new.model,
        state=new.state,
        metrics={name: np.concatenate([past.metrics.get(name, np.empty(0)), values])
                 for name, values in new.metrics.items()},
        **{name: np.concatenate([getattr(past, name), values[1:]])
           for name, values in new.evaluation().items()},
    )
