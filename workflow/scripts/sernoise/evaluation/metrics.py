"""Metrics of prediction files (paper §7.2.3; SPEC §8): UAR, per-class recall, weighted F1.

A prediction file (:mod:`sernoise.predictions`; the workflow keeps it at
``results/{corpus}/predictions/{model}/{regime}/fold{fold}/rep{rep}/{task}.csv``) has the key
columns ``corpus, model, regime, fold, rep, task``, then ``condition`` ("clean" for clean test
speech, else a condition id), ``utt_id``, ``true``, ``predicted`` (the task's class labels: ``low |
mid | high`` for the paper's bins) and one ``score_<label>`` per class.  The keys are read from those
columns, not from the path.

Per (model, regime, fold, rep, task, condition):

* ``uar``: unweighted average recall = the mean, over the classes present in ``true``, of the
  recall of that class (:func:`sernoise.predictions.uar`; equal to sklearn's
  ``balanced_accuracy_score``).  Chance is 1/3 with three classes present.
  A class that is absent from ``true`` has no recall and does not enter the mean (counting it
  as 0 would penalise a model for a class it could not be tested on); predictions of an
  absent class still count as errors in the recall of the true class.
* ``recall_<label>``: recall of each class; empty (NaN) when the class is absent from ``true``.
* ``f1_weighted``: ``f1_score(average="weighted", labels=<the classes>, zero_division=0)``:
  support-weighted, so classes absent from ``true`` weigh 0; a class present but never
  predicted has precision 0/0, counted as F1 0.
* ``n``: number of predictions.

``confusion.csv`` holds the confusion counts (``cm_<true>_<predicted>``) of the same (keys,
condition) groups.  When files of tasks with different classes are evaluated together, the
classes are their union (the paper's bins first, then the others in order of appearance): a
class of another task has no row support and no predictions, so it changes no UAR.  UAR is a function of the confusion matrix, so the UAR of *pooled*
predictions (Table 3's aggregate rows) is :func:`uar_from_confusion` of the summed counts,
without reading the predictions again.

``speaker_confusion.csv`` (:func:`speaker_confusion`) holds the same counts split by speaker (the
manifest's ``speaker`` of each ``utt_id``), with ``n`` and ``utt_digest`` (a digest of the sorted
utterance ids) per (keys, condition, speaker): the speaker-level tests and confidence intervals
of the tables (:mod:`sernoise.evaluation.stats`) resample speakers, and the digests tell whether
two cells hold the same test utterances (paired at the utterance) or not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from sernoise.io import read_csv_checked
from sernoise.predictions import LABELS, PredictionError, file_labels, read_predictions, uar

# the prediction keys that metrics.csv and confusion.csv keep (one corpus per file: no corpus column)
KEYS = ["model", "regime", "fold", "rep", "task"]


def metric_columns(labels=LABELS) -> list[str]:
    return KEYS + ["condition", "uar", *(f"recall_{label}" for label in labels), "f1_weighted", "n"]


def cm_columns(labels=LABELS) -> list[str]:
    return [f"cm_{t}_{p}" for t in labels for p in labels]


def confusion_columns(labels=LABELS) -> list[str]:
    return KEYS + ["condition"] + cm_columns(labels)


METRIC_COLUMNS = metric_columns()  # the paper's bins
CM_COLUMNS = cm_columns()
CONFUSION_COLUMNS = confusion_columns()


def confusion_labels(columns) -> tuple[str, ...]:
    """The classes of a confusion frame from its ``cm_<true>_<predicted>`` columns (true-major: the
    first column is ``cm_<c0>_<c0>``, the first k columns ``cm_<c0>_<c>`` for every class c)."""
    cm = [str(c) for c in columns if str(c).startswith("cm_")]
    k = int(round(len(cm) ** 0.5))
    if k * k != len(cm) or k == 0:
        raise PredictionError(f"confusion columns {cm[:4]}... are not a square matrix")
    first = cm[0][3:]
    width = (len(first) - 1) // 2  # "c0_c0"
    c0 = first[:width]
    if not all(column.startswith(f"cm_{c0}_") for column in cm[:k]):
        raise PredictionError(f"confusion columns {cm[:k]} do not start with the first class's row")
    return tuple(column[3 + width + 1:] for column in cm[:k])


def union_labels(label_sets) -> tuple[str, ...]:
    """The classes of several tasks: the paper's bins first (when present), then the others in order."""
    seen = [label for labels in label_sets for label in labels]
    ordered = [label for label in LABELS if label in seen]
    return tuple(ordered + [label for label in dict.fromkeys(seen) if label not in ordered])


def confusion(true, predicted, labels=LABELS) -> np.ndarray:
    """Confusion counts, rows = true, columns = predicted, in ``labels`` order."""
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    if len(true) == 0:
        return cm
    # codes -1 for values outside ``labels``: such pairs are not counted (as scikit-learn's
    # confusion_matrix with labels=), which this replaces to keep scikit-learn's ~1.3 s import out
    # of every job that scores predictions (issue 17)
    index = pd.Index(list(labels))
    rows, cols = index.get_indexer(np.asarray(true)), index.get_indexer(np.asarray(predicted))
    counted = (rows >= 0) & (cols >= 0)
    np.add.at(cm, (rows[counted], cols[counted]), 1)
    return cm


def f1_weighted(true, predicted, labels) -> float:
    """Support-weighted F1 over ``labels`` with 0 for an undefined precision, recall or F1: scikit-learn's
    ``f1_score(average="weighted", labels=..., zero_division=0)`` (tested against it), without its import."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    support = np.array([(true == label).sum() for label in labels], dtype=float)
    if support.sum() == 0:
        return 0.0
    hits = np.array([((true == label) & (predicted == label)).sum() for label in labels], dtype=float)
    guessed = np.array([(predicted == label).sum() for label in labels], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(guessed > 0, hits / guessed, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float((f1 * support).sum() / support.sum())


def uar_from_confusion(cm) -> float:
    """UAR of a confusion matrix (or of a sum of them, i.e. of pooled predictions); a flat one of
    k*k counts is read as k x k."""
    cm = np.asarray(cm, dtype=float)
    k = int(round(cm.size ** 0.5))
    cm = cm.reshape(k, k)
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def condition_metrics(true, predicted, labels=LABELS) -> dict:
    """UAR, per-class recall, weighted F1 and n of one group of predictions."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    row = {"uar": uar(true, predicted, labels)}
    for label in labels:
        mask = true == label
        row[f"recall_{label}"] = float((predicted[mask] == label).mean()) if mask.any() else float("nan")
    row["f1_weighted"] = (
        f1_weighted(true, predicted, labels) if len(true) else float("nan")
    )
    row["n"] = int(len(true))
    return row


def evaluate_frame(frame: pd.DataFrame, labels=None) -> tuple[list[dict], list[dict]]:
    """Metric rows and confusion rows, one per (keys, condition) of a prediction frame (its key
    columns say which model predicted: :data:`sernoise.predictions.KEY_COLUMNS`); ``labels``: the
    classes (default: the frame's score columns)."""
    labels = file_labels(frame.columns) if labels is None else tuple(labels)
    columns = cm_columns(labels)
    metrics, confusions = [], []
    for values, group in frame.groupby(KEYS + ["condition"], sort=False):
        keys = dict(zip(KEYS, values[:-1]))
        condition = values[-1]
        true, predicted = group["true"].to_numpy(), group["predicted"].to_numpy()
        metrics.append({**keys, "condition": condition, **condition_metrics(true, predicted, labels)})
        cm = confusion(true, predicted, labels)
        confusions.append({**keys, "condition": condition, **dict(zip(columns, cm.ravel().tolist()))})
    return metrics, confusions


def compute_metrics(paths, log=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """metrics.csv and confusion.csv frames of many prediction files (read one at a time; the keys
    of each prediction are its file's key columns, never parsed from the path)."""
    frames = []
    for path in paths:
        frames.append(read_predictions(path))
        if frames[-1].empty and log is not None:
            log.warning("%s: no predictions", path)
    labels = union_labels(file_labels(f.columns) for f in frames) or LABELS
    metrics, confusions = [], []
    for frame in frames:
        m, c = evaluate_frame(frame, labels)
        metrics += m
        confusions += c
    metrics_frame = pd.DataFrame(metrics, columns=metric_columns(labels))
    confusion_frame = pd.DataFrame(confusions, columns=confusion_columns(labels))
    order = KEYS + ["condition"]
    metrics_frame = metrics_frame.sort_values(order, kind="stable").reset_index(drop=True)
    confusion_frame = confusion_frame.sort_values(order, kind="stable").reset_index(drop=True)
    return metrics_frame, confusion_frame


SPEAKER_KEYS = ["speaker", "n", "utt_digest"]


def speaker_confusion_columns(labels=LABELS) -> list[str]:
    return KEYS + ["condition", *SPEAKER_KEYS] + cm_columns(labels)


SPEAKER_CONFUSION_COLUMNS = speaker_confusion_columns()


def utt_digest(utt_ids) -> str:
    """A short digest of a set of utterance ids (sorted): equal digests, equal utterance sets."""
    return hashlib.sha1("\n".join(sorted(map(str, utt_ids))).encode("utf-8")).hexdigest()[:16]


def speaker_confusion(paths, speakers: dict, log=None) -> pd.DataFrame:
    """speaker_confusion.csv of prediction files: confusion counts per (keys, condition, speaker),
    ``speakers`` mapping utt_id -> speaker (the manifest); an utterance it lacks is an error naming
    the file (predictions of another corpus cannot be clustered by this one's speakers)."""
    frames = [read_predictions(path) for path in paths]
    labels = union_labels(file_labels(f.columns) for f in frames) or LABELS
    columns = cm_columns(labels)
    keys = KEYS + ["condition", "speaker"]
    parts = []
    for path, frame in zip(paths, frames):
        speaker = frame["utt_id"].map(speakers)
        if speaker.isna().any():
            missing = frame.loc[speaker.isna(), "utt_id"].unique().tolist()
            raise PredictionError(f"{path}: {len(missing)} utt_id(s) not in the manifest (no speaker), e.g. "
                                  f"{missing[:3]}")
        if frame.empty:
            continue
        frame = frame.assign(speaker=speaker.astype(str))
        counts = frame.groupby(keys + ["true", "predicted"], sort=False).size().unstack(["true", "predicted"],
                                                                                        fill_value=0)
        counts = counts.reindex(columns=pd.MultiIndex.from_product([labels, labels]), fill_value=0)
        counts.columns = columns
        utts = frame.groupby(keys, sort=False)["utt_id"]
        parts.append(pd.concat([utts.size().rename("n"), utts.agg(utt_digest).rename("utt_digest"), counts],
                               axis=1).reset_index())
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=speaker_confusion_columns(labels))
    if log is not None:
        log.info("speaker confusion: %d (file, condition, speaker) groups", len(rows))
    out = rows[speaker_confusion_columns(labels)].astype({c: np.int64 for c in columns + ["n"]})
    return out.sort_values(KEYS + ["condition", "speaker"], kind="stable").reset_index(drop=True)


_KEY_TYPES = {"model": str, "regime": str, "task": str, "condition": str, "speaker": str, "utt_digest": str}


def _read_each(paths, required: list[str]) -> list[pd.DataFrame]:
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return [read_csv_checked(path, required, error=PredictionError, dtype=_KEY_TYPES) for path in paths]


def _concat(frames: list[pd.DataFrame], empty_columns: list[str]) -> pd.DataFrame:
    """Frames of several files (one per model: rules/evaluate.smk) concatenated in order."""
    if not frames:
        return pd.DataFrame(columns=empty_columns).astype({k: str for k in _KEY_TYPES if k in empty_columns})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_metrics(paths) -> pd.DataFrame:
    """metrics.csv of one path or of several (concatenated; a class one file lacks has empty recalls there)."""
    return _concat(_read_each(paths, KEYS + ["condition", "uar", "f1_weighted", "n"]), METRIC_COLUMNS)


def read_confusion(paths) -> pd.DataFrame:
    """confusion.csv of one path or of several (concatenated over the union of their classes, the
    counts of a class a file lacks being 0)."""
    frames = _read_each(paths, KEYS + ["condition"])
    labels = union_labels(confusion_labels(f.columns) for f in frames) or LABELS
    columns = confusion_columns(labels)
    aligned = [f if list(f.columns) == columns else f.reindex(columns=columns).fillna(
        {c: 0 for c in cm_columns(labels)}).astype({c: np.int64 for c in cm_columns(labels)}) for f in frames]
    return _concat(aligned, columns)


def read_speaker_confusion(paths) -> pd.DataFrame:
    """speaker_confusion.csv of one path or of several (concatenated over the union of their classes)."""
    frames = _read_each(paths, KEYS + ["condition", *SPEAKER_KEYS])
    labels = union_labels(confusion_labels(f.columns) for f in frames) or LABELS
    columns = speaker_confusion_columns(labels)
    aligned = [f if list(f.columns) == columns else f.reindex(columns=columns).fillna(
        {c: 0 for c in cm_columns(labels)}).astype({c: np.int64 for c in cm_columns(labels)}) for f in frames]
    return _concat(aligned, columns)


FLAG_COLUMNS = KEYS + ["flagged", "reason"]


def degenerate_flags(hparams_paths) -> pd.DataFrame:
    """One row per trained model (``hparams.yaml``): its keys and whether the degenerate-model check
    (sernoise.training.degenerate) flagged it, with the reason.  A model folder written before the
    check existed counts as not flagged ("not checked")."""
    import yaml

    rows = []
    for path in hparams_paths:
        with open(path, encoding="utf-8") as handle:
            hparams = yaml.safe_load(handle) or {}
        missing = [k for k in KEYS if k not in hparams]
        if missing:
            raise PredictionError(f"{path}: hparams.yaml lacks {missing}")
        entry = hparams.get("degenerate") or {}
        rows.append({**{k: hparams[k] for k in KEYS}, "flagged": bool(entry.get("flagged", False)),
                     "reason": str(entry.get("reason", "not checked")) if entry.get("flagged") else ""})
    frame = pd.DataFrame(rows, columns=FLAG_COLUMNS)
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)


def flagged_models(flags: pd.DataFrame) -> dict:
    """(model, regime, fold, rep, task) -> reason, of the flagged rows of a :func:`degenerate_flags` frame."""
    return {(row.model, row.regime, int(row.fold), int(row.rep), row.task): str(row.reason)
            for row in flags[flags["flagged"].astype(bool)].itertuples(index=False)}


def read_flags(paths) -> dict:
    """(model, regime, fold, rep, task) -> reason, of the flagged models in flags.csv files."""
    return {key: reason for frame in _read_each(paths, FLAG_COLUMNS) for key, reason in flagged_models(frame).items()}
