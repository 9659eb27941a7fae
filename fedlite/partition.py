"""Splitting a data set among participants (Flower calls them clients, and a split a partition).

`split(X, y, num_participants, scheme=...)` returns a `Federation`: the rows regrouped so that
participant k owns the block X[offsets[k]:offsets[k+1]].  The schemes are the kinds of
heterogeneity of the course:

- "iid": every participant gets a random sample of the same size;
- "quantity" (quantity skew): sizes drawn from a Dirichlet(alpha), rows random;
- "covariate" (covariate shift): participants see different regions of x-space;
- "dirichlet" (label skew): each class spread over the participants by a Dirichlet(alpha);
- "shards" (pathological label skew): rows sorted by label, cut into shards, a few shards each.

The last two split classification data by its labels y (whole numbers); regression data is
refused for them.  `split_held_out` cuts every participant's rows into a training share and a
held-out share, so each participant can be evaluated on data of its own that it never trained on.
`make_concept_shift` makes fresh data where each participant has its own true w (concept shift).
Randomness comes only from `seed` (an int): the same seed gives the same split, bit for bit.
"""
from __future__ import annotations

import heapq
import numbers
from dataclasses import dataclass

import numpy as np

from .data import add_noise
from .models import as_labels
from .validation import (as_data, as_float, as_float_array, as_int, as_int_array,
                         check_allocation)

SCHEMES = ("iid", "quantity", "covariate", "dirichlet", "shards")
LABEL_SCHEMES = ("dirichlet", "shards")  # these split by the class labels in y
ALIASES = {"quantity_skew": "quantity", "covariate_shift": "covariate", "label_skew": "dirichlet"}
ALPHA_REQUIRED = {"quantity": "smaller alpha = more unequal sizes",
                  "dirichlet": "smaller alpha = fewer classes per participant"}
DEFAULT_SHARDS_PER_PARTICIPANT = 2       # McMahan et al. (2017): 2 shards for each of 100 clients
MAX_ALPHA = 1e100        # larger alphas overflow the Dirichlet draw (and change nothing)
PARTICIPANT_BYTES = 1024  # make_concept_shift keeps a seed and two arrays per participant


class ParticipantIdError(IndexError, ValueError):
    """A participant_id outside 0..K-1: an IndexError, and a ValueError like every bad argument."""


@dataclass(frozen=True, eq=False, repr=False)
class Federation:
    """A data set split among participants, stored as one array grouped by participant.

    X (N, d) float64 and y (N,) float64: participant k owns rows offsets[k]:offsets[k+1].
    offsets (K+1,) int64: offsets[0] = 0, offsets[-1] = N, every participant has >= 1 row.
    index (N,) int64: the original row number (in the X given to `split`) of each row here.
    All four are C-contiguous, so compiled code can read them directly.  They are the
    federation's own copies and read-only (participant(k) views too): editing the arrays given
    to the constructor does not change the federation, and nothing can change its offsets
    under the compiled code that trusts them.
    """

    X: np.ndarray
    y: np.ndarray
    offsets: np.ndarray
    index: np.ndarray

    def __post_init__(self):
        X, y = as_data(self.X, self.y)
        offsets = as_int_array(self.offsets, "offsets")
        index = as_int_array(self.index, "index")
        _check_offsets(offsets, len(y))
        if not np.array_equal(np.sort(index), np.arange(len(y))):
            raise ValueError(f"index must be a permutation of 0..{len(y) - 1} (one entry per row)")
        # A frozen dataclass cannot assign its fields the usual way; this is the standard idiom.
        for name, array in (("X", X), ("y", y), ("offsets", offsets), ("index", index)):
            object.__setattr__(self, name, _read_only_copy(array))

    def __reduce__(self):
        """Copies and pickles rebuild through the constructor, so they are read-only too."""
        return (type(self), (self.X, self.y, self.offsets, self.index))

    @classmethod
    def from_participants(cls, X_parts, y_parts):
        """Stack per-participant data [X_0, X_1, ...] (n_k, d) and [y_0, y_1, ...] (n_k,).

        X_k and y_k must have the same number of rows (>= 1), and every X_k the same d.
        The rows keep the order given, so index = 0..N-1.
        """
        X_parts, y_parts = _as_list(X_parts, "X_parts"), _as_list(y_parts, "y_parts")
        if len(X_parts) != len(y_parts) or len(X_parts) == 0:
            raise ValueError(f"X_parts and y_parts must be non-empty lists of the same length; "
                             f"got {len(X_parts)} and {len(y_parts)}")
        d = "d"
        for k, (X_k, y_k) in enumerate(zip(X_parts, y_parts)):
            X_parts[k] = as_float_array(X_k, f"X_parts[{k}]", 2, ("n_k", d))
            y_parts[k] = as_float_array(y_k, f"y_parts[{k}]", 1)
            d = X_parts[k].shape[1]
            if len(y_parts[k]) != len(X_parts[k]):
                raise ValueError(f"y_parts[{k}] has {len(y_parts[k])} values but X_parts[{k}] has "
                                 f"{len(X_parts[k])} rows: participant {k}'s X and y must have "
                                 f"the same number of rows")
        offsets = np.concatenate([[0], np.cumsum([len(y_k) for y_k in y_parts])])
        y = np.concatenate(y_parts)
        return cls(np.concatenate(X_parts), y, offsets, np.arange(len(y)))

    @property
    def num_participants(self):
        """K, the number of participants."""
        return len(self.offsets) - 1

    @property
    def num_samples(self):
        """N, the total number of rows."""
        return self.X.shape[0]

    @property
    def num_features(self):
        """d, the number of columns of X."""
        return self.X.shape[1]

    @property
    def sizes(self):
        """(K,) int64: the number of rows of each participant."""
        return np.diff(self.offsets)

    @property
    def owner(self):
        """(N,) int64: the participant id of each row (in the grouped order)."""
        return np.repeat(np.arange(self.num_participants, dtype=np.int64), self.sizes)

    def participant(self, participant_id):
        """The data of one participant: (X_k (n_k, d), y_k (n_k,)), views into X and y."""
        K = self.num_participants
        if isinstance(participant_id, bool) or not isinstance(participant_id, numbers.Integral):
            raise TypeError(f"participant_id must be an integer; "
                            f"got {type(participant_id).__name__}")
        if not 0 <= participant_id < K:
            raise ParticipantIdError(f"participant_id must be in 0..{K - 1} "
                                     f"(there are {K} participants); got {participant_id}")
        start, stop = self.offsets[participant_id], self.offsets[participant_id + 1]
        return self.X[start:stop], self.y[start:stop]

    def __repr__(self):
        K, N, d, sizes = self.num_participants, self.num_samples, self.num_features, self.sizes
        participants = "participant" if K == 1 else "participants"
        features = "feature" if d == 1 else "features"
        return (f"Federation({K} {participants}, {N} rows, {d} {features}, "
                f"sizes {sizes.min()}..{sizes.max()})")


def split(X, y, num_participants, *, scheme="iid", alpha=None, seed=0,
          shards_per_participant=None):
    """Split X (N, d) and y (N,) among `num_participants` (K) participants: returns a Federation.

    Every row goes to exactly one participant, every participant gets at least one row, and the
    rows of each participant come in random order.  Schemes (the Flower Datasets cousins are
    IidPartitioner, DirichletPartitioner over labels as "dirichlet" ("covariate" uses regions
    of x_0 instead) and ShardPartitioner as "shards"):

    "iid": sizes as equal as possible (they differ by at most one), rows assigned at random.

    "quantity" (alias "quantity_skew"): proportions p ~ Dirichlet(alpha, ..., alpha) over the
        participants; each participant gets 1 row plus its share p_k of the other N - K rows
        (rounded so that the sizes add up to N); rows assigned at random.
        Small alpha (0.1) = very unequal sizes, large alpha (100) = nearly equal.

    "covariate" (alias "covariate_shift"): participants see different ranges of x_0 = X[:, 0].
        1. Sizes n_k as equal as possible, as for "iid".
        2. Mixture weights over K "shifts": theta ~ Dirichlet(alpha, ..., alpha), rotated so
           that its largest entry comes first; with alpha=None, theta = (1, 0, ..., 0).
        3. Participant k takes about theta_s · n_k of its rows (rounded so that they add up to
           n_k) from region (k + s) mod K, for s = 0..K-1.  All participants share the same
           mixture, rotated, so region r is asked for about N/K rows in total.
        4. Sort the rows by x_0 and cut them into K consecutive regions of exactly those sizes,
           region 0 on the left.
        5. Within each region, shuffle the rows and deal them out as decided in step 3.
        alpha=None: participant k gets exactly region k (maximal shift, disjoint x_0 ranges).
        Small alpha: mostly region k.  Large alpha: ~1/K from every region, close to "iid".

    The two label-skew schemes need classification data: y holds class labels 0, 1, 2, ...
    (ints, or floats with whole values; C = the number of distinct labels); any other y, such
    as a regression target, is refused, naming y and the scheme.

    "dirichlet" (alias "label_skew"): label skew, each participant sees mostly a few classes.
        1. For each class c, in increasing order of label: proportions p_c ~ Dirichlet(alpha,
           ..., alpha) over the K participants.
        2. Participant k gets p_c[k] of the N_c rows of class c, rounded so that the counts add
           up to N_c (the largest fractional parts round up, as for "quantity").
        3. Every participant left with no row, in order k = 0, 1, ..., takes one row from the
           participant that now holds the most rows (the lowest id on ties): a row of that
           participant's most common class (the lowest label on ties).
        4. Within each class, shuffle the rows and deal them out by these counts.
        Small alpha (0.01-0.1): most of each participant's rows from one or two classes, and
        unequal sizes.  Large alpha (100): every participant close to the overall class mix,
        sizes close to N/K.
        Hsu et al. (2019) draw each participant's class mix from a Dirichlet; drawing each
        class's spread over the participants instead (steps 1-2) is the common way to deal
        every row exactly once (Li et al., 2022, "Federated learning on non-IID data silos";
        Flower Datasets' DirichletPartitioner, which redraws instead of step 3).

    "shards": pathological label skew (McMahan et al., 2017), each participant sees at most
        s = shards_per_participant classes (default 2) when there are enough shards (K·s >= C).
        1. Shuffle the rows, then sort them by label: each class is a run of rows.
        2. Cut them into M = K·s shards (needs M <= N).  With M >= C, each shard holds one
           class: class c is cut into m_c >= 1 shards of sizes as equal as possible, with the
           m_c chosen greedily (each next shard to the class with the most rows per shard, the
           lowest label on ties) so that the largest shard is as small as possible.  With
           M < C (few participants), each shard holds whole classes instead: shard j the next
           C/M of them (consecutive labels; the first C mod M shards one class more).
        3. Shuffle the M shards; participant k takes shards k·s, ..., k·s + s - 1 of them.
        (McMahan et al. cut MNIST into 200 equal shards of 300 images, 2 for each of 100
        clients; with equal cuts a shard may straddle two classes, here it never does.)

    seed: int; the same seed gives the same split, bit for bit.
    shards_per_participant: int >= 1, only for scheme "shards" (None = 2 there).
    """
    X, y = as_data(X, y)
    N = X.shape[0]
    K = as_int(num_participants, "num_participants", minimum=1)
    if K > N:
        raise ValueError(f"num_participants must be at most the number of rows "
                         f"(X has {N} rows, and every participant needs one); got {K}")
    scheme = _check_scheme(scheme)
    alpha = _check_alpha(alpha, scheme)
    s = _check_shards_per_participant(shards_per_participant, scheme)
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    if scheme == "covariate":
        check_allocation(K * K, "num_participants")  # the (K, K) table of rows per region
    if scheme in LABEL_SCHEMES:
        label_of_row, class_sizes = _class_labels(y, scheme)
    if scheme == "dirichlet":
        check_allocation(K * len(class_sizes), "num_participants")  # the (K, C) table of counts
    if scheme == "shards":
        _check_num_shards(K, s, N)

    if scheme == "iid":
        owner = _deal(_equal_sizes(N, K), rng)
    elif scheme == "quantity":
        proportions = rng.dirichlet(np.full(K, alpha))
        owner = _deal(1 + _round_to_total(proportions, N - K), rng)
    elif scheme == "covariate":
        owner = _covariate_owner(X[:, 0], K, alpha, rng)
    elif scheme == "dirichlet":
        owner = _dirichlet_owner(label_of_row, class_sizes, K, alpha, rng)
    else:
        owner = _shards_owner(label_of_row, class_sizes, K, s, rng)
    return _group(X, y, owner, K, rng)


def make_concept_shift(num_participants, samples_per_participant, num_features, *,
                       spread=1.0, noise=0.1, seed=0):
    """Fresh data where each participant has its own true w: returns (federation, W_true, b_true).

    A shared w ~ N(0, I) and b ~ N(0, 1); participant k has w_k = w + spread · N(0, I), and its
    data X_k ~ N(0, 1) (n_k, d), y_k = X_k w_k + b + noise · N(0, 1).  spread = 0: same w for all.
    samples_per_participant: an int (the same n_k for all) or K ints.
    A request too large for memory (validation.check_allocation), or a spread or noise so
    large that w_k or y overflow float64, is refused with a ValueError naming the argument.
    Returns the Federation (index = 0..N-1), W_true (K, d) whose row k is w_k, and b_true (float,
    shared by all).  Participant k's data come from its own child of SeedSequence(seed), so
    changing one participant's size does not change the others' data.
    """
    K = as_int(num_participants, "num_participants", minimum=1)
    check_allocation(K, "num_participants", PARTICIPANT_BYTES, "participants (~1 kB each)")
    sizes = _check_sizes(samples_per_participant, K)
    d = as_int(num_features, "num_features", minimum=1)
    spread = _check_nonnegative(spread, "spread")
    noise = _check_nonnegative(noise, "noise")
    seed_seq = np.random.SeedSequence(as_int(seed, "seed", minimum=0))
    check_allocation(K * d, "num_participants or num_features")  # W_true
    check_allocation(sum(sizes) * d,  # X
                     "num_participants, samples_per_participant or num_features")
    shared_seq, *participant_seqs = seed_seq.spawn(K + 1)

    shared_rng = np.random.default_rng(shared_seq)
    w = shared_rng.standard_normal(d)
    b_true = float(shared_rng.standard_normal())
    with np.errstate(over="ignore", invalid="ignore"):
        W_true = w + spread * shared_rng.standard_normal((K, d))

    X_parts, y_parts = [], []
    for w_k, n_k, seq in zip(W_true, sizes, participant_seqs):
        rng = np.random.default_rng(seq)
        X_k = rng.standard_normal((n_k, d))
        with np.errstate(over="ignore", invalid="ignore"):
            y_clean = X_k @ w_k + b_true
        if not (np.isfinite(w_k).all() and np.isfinite(y_clean).all()):
            raise ValueError(f"spread = {spread:g} is so large that the participants' w or y "
                             f"overflow float64 (|value| > 1.8e308); use a smaller spread")
        X_parts.append(X_k)
        y_parts.append(add_noise(y_clean, noise, rng))
    return Federation.from_participants(X_parts, y_parts), W_true, b_true


def split_held_out(federation, fraction=0.2, *, seed=0):
    """Each participant's rows cut into a training share and a held-out share: (train, held_out).

    Two Federations with the same K participants: participant k of `held_out` holds
    n_k' = round(fraction · n_k) of participant k's n_k rows (rounded half up, then kept in
    1..n_k - 1, so each share has at least one row), chosen at random; participant k of
    `train` holds the other n_k - n_k'.  Train on `train`, and measure each participant on data
    of its own that it never trained on: `simulate(train, ..., test=held_out)`.
    The rows are not stratified by label.  Both federations have index = 0..n-1 (their rows
    in the order they are held), like `Federation.from_participants`.
    fraction: a number in (0, 1); a participant with a single row cannot be cut and is refused.
    seed: int; the same seed gives the same shares, bit for bit.
    """
    if not isinstance(federation, Federation):
        raise TypeError(f"federation must be a fedlite Federation (make one with fedlite.split); "
                        f"got {type(federation).__name__}")
    fraction = as_float(fraction, "fraction")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1 (the share of each participant's "
                         f"rows to hold out), exclusive; got {fraction}")
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    sizes = federation.sizes
    too_small = np.flatnonzero(sizes < 2)
    if len(too_small):
        k = too_small[0]
        raise ValueError(f"fraction = {fraction:g} of participant {k}'s rows cannot be held out: "
                         f"it has only 1 row, and each share needs at least one "
                         f"({len(too_small)} of the {len(sizes)} participants have a single "
                         f"row); give every participant at least 2 rows")
    held_sizes = np.clip(np.floor(fraction * sizes + 0.5).astype(np.int64), 1, sizes - 1)
    owner = federation.owner
    rows = np.lexsort((rng.random(len(owner)), owner))      # each participant's rows, shuffled
    rank = np.arange(len(owner)) - federation.offsets[owner]  # position within the participant
    held = rank < held_sizes[owner]
    return _subset(federation, rows[~held], sizes - held_sizes), _subset(federation, rows[held],
                                                                          held_sizes)


# ---- the steps of `split` ------------------------------------------------------------------

def _equal_sizes(N, K):
    """(K,) sizes as equal as possible that add up to N: the first N mod K get one more."""
    return N // K + (np.arange(K) < N % K).astype(np.int64)


def _round_to_total(proportions, total):
    """Whole numbers (K,) close to proportions * total that add up to `total`.

    Largest remainder: round everything down, then give the missing units to the largest
    fractional parts (ties to the lowest index).
    """
    exact = proportions / proportions.sum() * total
    counts = np.floor(exact).astype(np.int64)
    missing = total - counts.sum()
    largest_remainders = np.argsort(-(exact - counts), kind="stable")
    counts[largest_remainders[:missing]] += 1
    return counts


def _deal(sizes, rng):
    """Owners of N rows in random order: sizes[k] rows owned by participant k.  (N,) int64."""
    owner = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    return rng.permutation(owner)


def _covariate_owner(x0, K, alpha, rng):
    """Owner of each row (N,) for the "covariate" scheme: steps 1-5 of `split`'s docstring."""
    N = len(x0)
    if alpha is None:
        theta = np.zeros(K)
        theta[0] = 1.0
    else:
        theta = rng.dirichlet(np.full(K, alpha))
        theta = np.roll(theta, -np.argmax(theta))  # the largest share first: the home region
    # counts[k, r]: rows participant k takes from region r; its share s comes from region k + s.
    counts = np.zeros((K, K), dtype=np.int64)
    for k, n_k in enumerate(_equal_sizes(N, K)):
        counts[k] = np.roll(_round_to_total(theta, n_k), k)

    rows_left_to_right = np.argsort(x0, kind="stable")
    owner = np.empty(N, dtype=np.int64)
    start = 0
    for r in range(K):
        region_rows = rows_left_to_right[start:start + counts[:, r].sum()]
        owner[region_rows] = _deal(counts[:, r], rng)
        start += len(region_rows)
    return owner


def _dirichlet_owner(label_of_row, class_sizes, K, alpha, rng):
    """Owner of each row (N,) for the "dirichlet" scheme: steps 1-4 of `split`'s docstring."""
    C = len(class_sizes)
    counts = np.empty((K, C), dtype=np.int64)  # counts[k, c]: rows of class c for participant k
    for c in range(C):
        counts[:, c] = _round_to_total(rng.dirichlet(np.full(K, alpha)), class_sizes[c])
    _give_everyone_a_row(counts)
    return _deal_by_class(label_of_row, class_sizes, counts, rng)


def _give_everyone_a_row(counts):
    """Step 3 of "dirichlet", in place: each empty participant takes a row from the largest.

    Needs N >= K: while a participant has no row, another has at least two, so no donor is
    ever emptied.  A heap of (-size, k) finds the largest participant (lowest k on ties).
    """
    sizes = counts.sum(axis=1)
    empty = np.flatnonzero(sizes == 0)
    if len(empty) == 0:
        return
    largest = [(-int(n_k), k) for k, n_k in enumerate(sizes) if n_k > 0]
    heapq.heapify(largest)
    for k in empty:
        minus_size, donor = heapq.heappop(largest)
        c = int(np.argmax(counts[donor]))          # the donor's most common class
        counts[donor, c] -= 1
        counts[k, c] += 1
        heapq.heappush(largest, (minus_size + 1, donor))
        heapq.heappush(largest, (-1, int(k)))


def _deal_by_class(label_of_row, class_sizes, counts, rng):
    """Owners (N,): the rows of class c shuffled and dealt out, counts[k, c] to participant k."""
    rows_by_class = np.argsort(label_of_row, kind="stable")
    owner = np.empty(len(label_of_row), dtype=np.int64)
    start = 0
    for c, n_c in enumerate(class_sizes):
        owner[rows_by_class[start:start + n_c]] = _deal(counts[:, c], rng)
        start += n_c
    return owner


def _shards_owner(label_of_row, class_sizes, K, s, rng):
    """Owner of each row (N,) for the "shards" scheme: steps 1-3 of `split`'s docstring."""
    shuffled = rng.permutation(len(label_of_row))
    rows_by_label = shuffled[np.argsort(label_of_row[shuffled], kind="stable")]
    shard_sizes = _shard_sizes(class_sizes, K * s)
    shard_owner = np.empty(K * s, dtype=np.int64)
    shard_owner[rng.permutation(K * s)] = np.repeat(np.arange(K, dtype=np.int64), s)
    owner = np.empty(len(label_of_row), dtype=np.int64)
    owner[rows_by_label] = np.repeat(shard_owner, shard_sizes)
    return owner


def _shard_sizes(class_sizes, num_shards):
    """The rows in each of num_shards (<= N) shards cut along the label order: (M,) int64."""
    if num_shards < len(class_sizes):       # whole classes per shard, C/M of them
        first_class = np.concatenate([[0], np.cumsum(_equal_sizes(len(class_sizes),
                                                                  num_shards))[:-1]])
        return np.add.reduceat(class_sizes, first_class)
    return np.concatenate([_equal_sizes(n_c, m_c) for n_c, m_c
                           in zip(class_sizes, _shards_per_class(class_sizes, num_shards))])


def _shards_per_class(class_sizes, num_shards):
    """m_c shards for each class (C,), adding up to num_shards (C <= num_shards <= N).

    One each, then every next shard to the class with the most rows per shard n_c / m_c
    (the lowest c on ties): the largest shard ends as small as it can be, and m_c <= n_c.
    """
    m = [1] * len(class_sizes)
    most_rows_per_shard = [(-int(n_c), c) for c, n_c in enumerate(class_sizes)]
    heapq.heapify(most_rows_per_shard)
    for _ in range(num_shards - len(class_sizes)):
        _, c = heapq.heappop(most_rows_per_shard)
        m[c] += 1
        heapq.heappush(most_rows_per_shard, (-int(class_sizes[c]) / m[c], c))
    return m


def _subset(federation, rows, sizes):
    """A Federation of federation's `rows` (grouped by participant, sizes (K,) of them)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return Federation(federation.X[rows], federation.y[rows], offsets, np.arange(len(rows)))


def _group(X, y, owner, K, rng):
    """The Federation with the rows of participant 0 first, then 1, ...; random order within."""
    shuffled = rng.permutation(len(owner))
    index = shuffled[np.argsort(owner[shuffled], kind="stable")]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=K))])
    return Federation(X[index], y[index], offsets, index)


# ---- argument checks -----------------------------------------------------------------------

def _check_scheme(scheme):
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a string; got {type(scheme).__name__}")
    name = ALIASES.get(scheme, scheme)
    if name not in SCHEMES:
        valid = ", ".join(repr(s) for s in SCHEMES + tuple(ALIASES))
        raise ValueError(f"scheme must be one of {valid}; got {scheme!r}")
    return name


def _check_alpha(alpha, scheme):
    if scheme == "iid":
        if alpha is not None:
            raise ValueError(f"alpha is not used by scheme 'iid'; leave it as None (got {alpha})")
        return None
    if scheme == "shards":
        if alpha is not None:
            raise ValueError(f"alpha is not used by scheme 'shards' (shards_per_participant "
                             f"sets the skew); leave it as None (got {alpha})")
        return None
    if alpha is None:
        if scheme in ALPHA_REQUIRED:
            raise ValueError(f"alpha is required for scheme {scheme!r}: a number > 0 "
                             f"(e.g. 0.5; {ALPHA_REQUIRED[scheme]})")
        return None
    alpha = as_float(alpha, "alpha")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0 (the Dirichlet concentration); got {alpha}")
    if alpha > MAX_ALPHA:
        raise ValueError(f"alpha must be at most {MAX_ALPHA:g}: larger values overflow the "
                         f"Dirichlet draw, and already at alpha = 1e6 every share is within about "
                         f"0.1% of the others (for equal shares use scheme='iid'); got {alpha:g}")
    return alpha


def _check_shards_per_participant(shards_per_participant, scheme):
    """s for scheme "shards" (None = 2); None for the others, which refuse a value."""
    if scheme != "shards":
        if shards_per_participant is not None:
            raise ValueError(f"shards_per_participant is used only by scheme 'shards'; leave it "
                             f"as None for scheme {scheme!r} (got {shards_per_participant})")
        return None
    if shards_per_participant is None:
        return DEFAULT_SHARDS_PER_PARTICIPANT
    return as_int(shards_per_participant, "shards_per_participant", minimum=1)


def _check_num_shards(K, s, N):
    """Scheme "shards" cuts N rows into K·s shards: needs K·s <= N."""
    if K * s > N:
        raise ValueError(f"num_participants · shards_per_participant = {K} · {s} = {K * s} "
                         f"shards is more than the {N} rows of X (every shard needs one); make "
                         f"shards_per_participant or num_participants smaller")


def _class_labels(y, scheme):
    """For a label-based scheme: (the class of each row, 0..C-1 (N,), the size of each class (C,)).

    y must hold class labels 0, 1, 2, ... (`models.as_labels`); anything else, such as the
    targets of regression data, is refused, naming y and the scheme.  Classes are numbered in
    increasing order of label (labels that no row has are skipped).
    """
    try:
        labels = as_labels(y)
    except ValueError as exc:
        raise ValueError(f"{exc} (scheme {scheme!r} splits the rows by class label; for "
                         f"regression data use scheme 'iid', 'quantity' or 'covariate')") from None
    _, label_of_row, class_sizes = np.unique(labels, return_inverse=True, return_counts=True)
    return label_of_row.astype(np.int64).ravel(), class_sizes.astype(np.int64)


def _check_nonnegative(value, name):
    value = as_float(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
    return value


def _check_sizes(samples_per_participant, K):
    """An int (same for everyone) or K ints, each >= 1: returns a list of K ints."""
    expected = f"samples_per_participant must be an int or a sequence of {K} ints"
    if isinstance(samples_per_participant, numbers.Integral):
        return [as_int(samples_per_participant, "samples_per_participant", minimum=1)] * K
    try:
        ndim = np.ndim(samples_per_participant)
    except Exception as exc:  # ragged lists, objects whose __array__ raises
        raise TypeError(f"{expected}; {exc}") from None
    if ndim != 1:
        raise TypeError(f"{expected}; got {samples_per_participant!r}")
    sizes = list(samples_per_participant)
    if len(sizes) != K:
        raise ValueError(f"samples_per_participant must be an int or {K} ints "
                         f"(one per participant); got {len(sizes)} values")
    return [as_int(n_k, "samples_per_participant", minimum=1) for n_k in sizes]


def _read_only_copy(array):
    """A fresh C-contiguous copy that nobody else can write to (nor through a view of it)."""
    array = np.array(array, order="C", copy=True)
    array.flags.writeable = False
    return array


def _as_list(parts, name):
    """A new list of the pieces (one per participant), or TypeError naming `name`."""
    if isinstance(parts, (str, bytes, dict)):
        raise TypeError(f"{name} must be a list of arrays, one per participant; "
                        f"got {type(parts).__name__}")
    try:
        return list(parts)
    except Exception:  # not iterable, or its iterator raises
        raise TypeError(f"{name} must be a list of arrays, one per participant; "
                        f"got {type(parts).__name__}") from None


def _check_offsets(offsets, N):
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != N:
        raise ValueError(f"offsets must start at 0 and end at N = {N} (K+1 entries, K >= 1); "
                         f"got {offsets}")
    if np.any(np.diff(offsets) < 1):
        raise ValueError("offsets must be strictly increasing: every participant needs >= 1 row")
