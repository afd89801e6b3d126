"""What a model of one (regime, fold, repetition, task) trains and validates on (paper §7.1, §7.4, §8.3).

Training set = the fold's clean TRAIN-role utterances + an augmented sample of
``N = round(augmented_per_clean * n_clean_train)`` (utterance, condition) pairs, drawn
uniformly (without replacement while the pool lasts) from the pairs the regime can use:
train-role utterances of the regime's ``train_conditions``, TRAIN noise pool, status ok (the
feature archives of a condition hold exactly its ok utterances).  Every noisy regime
therefore trains on the same number of examples, however many conditions it has (paper
§8.3); the clean regime trains on clean speech only.  Validation is built the same way from
the VAL-role utterances (same ratio, same conditions, train pool).  Test-role utterances
never enter either set.

Fraction regimes (``fraction-<p>``, the augmentation-fraction sweep of paper §8.4) work
differently: ``n = round(p/100 * n_clean)`` distinct utterances of the role each get ONE
augmented copy, its condition drawn uniformly among the regime's conditions that stored that
utterance; the others stay clean only.  The draw uses ``derive_seed(seed, "fraction-subsample"
(validation: "fraction-subsample-val"), fold, rep, task)``, independent of p: one permutation of
the utterances (and one condition per utterance) is drawn and the first n are taken, so the
augmented set of a smaller fraction is contained in that of a larger one and the sweep varies
only the amount of augmentation.  Training sets grow with p (n_clean + n examples).

Conditions with no usable utterance (skipped on this corpus, e.g. drop-word without
alignments) are left out of the pool and reported in :attr:`TrainingSets.left_out`.

Labels: the task's targets (:mod:`sernoise.tasks`); for the built-in tasks the manifest's
``activation_bin`` / ``valence_bin`` -> 0 low, 1 mid, 2 high (utterances without a target for the
task are left out and counted).

z-normalisation (paper §7.2.1): mean and standard deviation per filterbank channel over
all frames of the TRAINING examples (clean and augmented) only; the same statistics are
applied to validation and test data and saved with the model (norm.npz).

Randomness: the augmented draws use ``derive_seed(seed, "subsample", regime, fold, rep,
task)`` (validation: ``"subsample-val"``), so they do not depend on the order of anything
in the config.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sernoise.features import N_MELS, FeatureArchive
from sernoise.folds import split_of
from sernoise.predictions import CLEAN, LABELS
from sernoise.seeds import derive_seed
from sernoise.tasks import TaskError, get_task

LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
STD_FLOOR = 1e-5



class TrainingDataError(ValueError):
    """The data of a training cannot be assembled (no labels, no usable condition, ...)."""


@dataclass(frozen=True)
class Example:
    utt_id: str
    condition: str  # CLEAN or a condition id
    label: int


@dataclass
class TrainingSets:
    train: list[Example]
    val: list[Example]
    n_clean_train: int
    n_clean_val: int
    used_conditions: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # condition -> why it is not in the pool
    n_unlabelled: int = 0

    @property
    def n_augmented_train(self) -> int:
        return len(self.train) - self.n_clean_train

    @property
    def n_augmented_val(self) -> int:
        return len(self.val) - self.n_clean_val

    def summary(self) -> dict:
        return {
            "n_train": len(self.train),
            "n_train_clean": self.n_clean_train,
            "n_train_augmented": self.n_augmented_train,
            "n_val": len(self.val),
            "n_val_clean": self.n_clean_val,
            "n_val_augmented": self.n_augmented_val,
            "n_unlabelled_left_out": self.n_unlabelled,
            "conditions_used": list(self.used_conditions),
            "conditions_left_out": dict(self.left_out),
        }


def labels_of(manifest: pd.DataFrame, task, *, corpus: str | None = None, config=None) -> dict:
    """utt_id -> target of the task (class index; ratings tuple for a dimensional task); utterances without one are absent.

    ``task``: a name resolved by :func:`sernoise.tasks.get_task` (the built-in ``activation`` /
    ``valence`` bins, or a ``tasks:`` entry of ``config``) or a :class:`sernoise.tasks.Task`;
    ``corpus`` names the manifest's corpus (categorical and dimensional tasks need it).
    """
    try:
        return get_task(task, config).targets(manifest, corpus)
    except TaskError as error:
        raise TrainingDataError(str(error)) from None


def role_utterances(manifest: pd.DataFrame, folds: pd.DataFrame, fold: int, role: str) -> list[str]:
    """Sorted utt_ids of the manifest playing ``role`` in ``fold``."""
    if not ((folds["fold"] == int(fold)) & (folds["role"] == role)).any():
        raise TrainingDataError(f"folds: fold {fold} has no {role} group")
    return sorted(split_of(manifest, folds, int(fold), role)["utt_id"].astype(str))


def augmented_pool(
    conditions: Iterable[str], available: Mapping[str, Iterable[str]], utt_ids: Iterable[str]
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(utt_id, condition) pairs usable for ``utt_ids``, sorted; and the conditions left out, with why.

    ``available`` maps condition id -> utterances stored (status ok) in its train-pool dataset;
    conditions not in ``conditions`` are ignored whatever ``available`` holds.
    """
    wanted = set(utt_ids)
    pairs, left_out = [], {}
    for condition in sorted(set(conditions)):
        if condition not in available:
            raise TrainingDataError(f"no train-pool features given for condition {condition!r}")
        usable = sorted(wanted.intersection(map(str, available[condition])))
        if not usable:
            left_out[condition] = "no usable utterance (skipped on this corpus or none of this role)"
            continue
        pairs.extend((utt_id, condition) for utt_id in usable)
    pairs.sort()
    return pairs, left_out


def draw_pairs(pool: list[tuple[str, str]], n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``n`` pairs drawn uniformly from ``pool``: without replacement, whole extra rounds when n > len(pool)."""
    if n <= 0:
        return []
    if not pool:
        raise TrainingDataError("cannot draw augmented samples from an empty pool")
    rounds, rest = divmod(n, len(pool))
    chosen = [i for _ in range(rounds) for i in rng.permutation(len(pool))]
    chosen += sorted(rng.choice(len(pool), size=rest, replace=False).tolist())
    return [pool[i] for i in chosen]


def fraction_count(fraction: float, n_clean: int) -> int:
    """Utterances augmented by a fraction regime: round(fraction * n_clean) (half up), within [0, n_clean]."""
    if not 0 < fraction <= 1:
        raise TrainingDataError(f"augmentation fraction must be in (0, 1], got {fraction}")
    return min(n_clean, int(math.floor(fraction * n_clean + 0.5)))


def draw_fraction(pool: list[tuple[str, str]], fraction: float, n_clean: int,
                  rng: np.random.Generator) -> list[tuple[str, str]]:
    """One (utterance, condition) pair for each of ``fraction_count(fraction, n_clean)`` distinct utterances.

    ``pool``: the usable (utt_id, condition) pairs (see :func:`augmented_pool`).  The
    utterances of the pool are permuted and each is given one condition (uniform among its
    usable ones) BEFORE the first n are taken, so with the same ``rng`` state a smaller
    fraction's pairs are a prefix of a larger one's.  Fewer utterances usable than n: all
    of them.  Sorted by (utt_id, condition).
    """
    options: dict[str, list[str]] = {}
    for utt_id, condition in pool:
        options.setdefault(utt_id, []).append(condition)
    utts = sorted(options)
    order = rng.permutation(len(utts))
    picks = rng.integers(0, 1 << 62, size=len(utts))
    pairs = [(utts[i], sorted(options[utts[i]])[int(picks[k]) % len(options[utts[i]])]) for k, i in enumerate(order)]
    return sorted(pairs[: min(fraction_count(fraction, n_clean), len(pairs))])


def assemble(
    manifest: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    regime,
    fold: int,
    rep: int,
    task: str,
    seed: int,
    augmented_per_clean: float,
    available: Mapping[str, Iterable[str]],
    corpus: str | None = None,
    config=None,
) -> TrainingSets:
    """Training and validation examples of one (regime, fold, repetition, task); see the module doc.

    ``regime`` is a :class:`sernoise.regimes.Regime`; ``available`` maps each of its
    ``train_conditions`` to the utterances of its TRAIN-pool dataset with status ok.  ``task`` is a
    task name (it is part of the draws' seeds); ``corpus`` and ``config`` resolve it as in
    :func:`labels_of` (needed for tasks other than the built-in bins).
    """
    labels = labels_of(manifest, task, corpus=corpus, config=config)
    examples = {}
    n_unlabelled = 0
    left_out: dict[str, str] = {}
    used: set[str] = set()
    for role, tag in (("train", "subsample"), ("val", "subsample-val")):
        utts = role_utterances(manifest, folds, fold, role)
        labelled = [u for u in utts if u in labels]
        n_unlabelled += len(utts) - len(labelled)
        if not labelled:
            raise TrainingDataError(f"fold {fold}: no {role} utterance has a {task} label")
        chosen = [Example(u, CLEAN, labels[u]) for u in labelled]
        fraction = getattr(regime, "fraction", None)
        if fraction is not None or regime.train_conditions:
            pool, skipped = augmented_pool(regime.train_conditions, available, labelled)
            left_out.update(skipped)
            if not pool:
                raise TrainingDataError(
                    f"regime {regime.name}: none of its conditions {list(regime.train_conditions)} has a usable "
                    f"{role} utterance in fold {fold} (all skipped?)"
                )
            if fraction is not None:  # one augmented copy of a fraction of the utterances
                rng = np.random.default_rng(derive_seed(seed, f"fraction-{tag}", fold, rep, task))
                drawn = draw_fraction(pool, fraction, len(labelled), rng)
            else:  # augmented_per_clean pairs per clean utterance
                n = int(round(augmented_per_clean * len(labelled)))
                rng = np.random.default_rng(derive_seed(seed, tag, regime.name, fold, rep, task))
                drawn = draw_pairs(pool, n, rng)
            used.update(c for _, c in drawn)
            chosen += [Example(u, c, labels[u]) for u, c in drawn]
        examples[role] = chosen
    # A condition left out for one role only (e.g. no val utterance) is still used.
    left_out = {c: why for c, why in left_out.items() if c not in used}
    return TrainingSets(
        train=examples["train"],
        val=examples["val"],
        n_clean_train=sum(e.condition == CLEAN for e in examples["train"]),
        n_clean_val=sum(e.condition == CLEAN for e in examples["val"]),
        used_conditions=sorted(used),
        left_out=left_out,
        n_unlabelled=n_unlabelled,
    )


# ------------------------------------------------------------------------------ features


def read_archive(path, utt_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """utt_id -> (frames, 40) float16 features of one archive, for ``utt_ids`` (default: all).

    Reads only the spans of the (compressed, chunked) features dataset that hold the wanted
    utterances (:meth:`FeatureArchive.read_many`): a fold's test speakers are a small part of
    an archive, a training set most of it (then it is one read of the whole).
    """
    archive = FeatureArchive(path)
    return archive.read_many(archive.utt_ids if utt_ids is None else utt_ids)


def archive_utterances(path) -> list[str]:
    return list(FeatureArchive(path).utt_ids)


def load_by_condition(examples: list[Example], sources: Mapping[str, str | Path], read, what: str) -> list:
    """The data of each example, in order, read once per condition (features for the T-DNN, audio for the E-DNN).

    ``sources`` maps CLEAN / condition id -> where that condition is stored (``what``, for the
    error when one is missing); ``read(source, utt_ids)`` returns {utt_id: array}.
    """
    needed: dict[str, list[str]] = {}
    for example in examples:
        needed.setdefault(example.condition, []).append(example.utt_id)
    loaded = {}
    for condition, utts in needed.items():
        if condition not in sources:
            raise TrainingDataError(f"no {what} given for {condition!r}")
        loaded[condition] = read(sources[condition], utts)
    return [loaded[e.condition][e.utt_id] for e in examples]


def load_examples(examples: list[Example], archives: Mapping[str, str | Path]) -> list[np.ndarray]:
    """Features of each example (float16, in order); ``archives`` maps CLEAN / condition id -> archive path."""
    return load_by_condition(examples, archives, read_archive, "feature archive")


def norm_stats(arrays: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float32) over all frames of ``arrays``."""
    total = np.zeros(N_MELS, dtype=np.float64)
    squares = np.zeros(N_MELS, dtype=np.float64)
    count = 0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        total += a.sum(axis=0)
        squares += np.square(a).sum(axis=0)
        count += a.shape[0]
    if count == 0:
        raise TrainingDataError("no frames to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def normalise(arrays: Iterable[np.ndarray], mean: np.ndarray, std: np.ndarray) -> list[np.ndarray]:
    """z-normalised float32 copies of ``arrays`` with the given (training) statistics."""
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    return [(np.asarray(a, dtype=np.float32) - mean) / std for a in arrays]


def load_and_normalise(sets: TrainingSets, archives: Mapping[str, str | Path]):
    """(train arrays, val arrays, mean, std): features of both sets, z-normalised with TRAINING statistics only."""
    train_raw = load_examples(sets.train, archives)
    mean, std = norm_stats(train_raw)
    train = normalise(train_raw, mean, std)
    del train_raw
    val = normalise(load_examples(sets.val, archives), mean, std)
    return train, val, mean, std


def save_norm(path, mean: np.ndarray, std: np.ndarray) -> None:
    with open(path, "wb") as handle:  # np.savez on a handle: no ".npz" appended
        np.savez(handle, mean=np.asarray(mean, np.float32), std=np.asarray(std, np.float32))


def load_norm(path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        mean, std = data["mean"].astype(np.float32), data["std"].astype(np.float32)
    if mean.shape != (N_MELS,) or std.shape != (N_MELS,) or not (std > 0).all():
        raise TrainingDataError(f"{path}: not a normalisation file of {N_MELS} channels")
    return mean, std
