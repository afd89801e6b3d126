"""Metrics of prediction files (paper §7.2.3; SPEC §8): UAR, per-class recall, weighted F1.

A prediction file (:mod:`sernoise.predictions`; the workflow keeps it at
``results/{corpus}/predictions/{model}/{regime}/fold{fold}/rep{rep}/{task}.csv``) has the key
columns ``corpus, model, regime, fold, rep, task``, then ``condition`` ("clean" for clean test
speech, else a condition id), ``utt_id``, ``true``, ``predicted`` (labels ``low | mid | high``) and
``score_low/mid/high``.  The keys are read from those columns, not from the path.

Per (model, regime, fold, rep, task, condition):

* ``uar``: unweighted average recall = the mean, over the classes present in ``true``, of the
  recall of that class (:func:`sernoise.predictions.uar`; equal to sklearn's
  ``balanced_accuracy_score``).  Chance is 1/3 with three classes present.
  A class that is absent from ``true`` has no recall and does not enter the mean (counting it
  as 0 would penalise a model for a class it could not be tested on); predictions of an
  absent class still count as errors in the recall of the true class.
* ``recall_low/mid/high``: recall of each class; empty (NaN) when the class is absent from ``true``.
* ``f1_weighted``: ``f1_score(average="weighted", labels=[low, mid, high], zero_division=0)``:
  support-weighted, so classes absent from ``true`` weigh 0; a class present but never
  predicted has precision 0/0, counted as F1 0.
* ``n``: number of predictions.

``confusion.csv`` holds the 3x3 confusion counts (``cm_<true>_<predicted>``) of the same
(keys, condition) groups.  UAR is a function of the confusion matrix, so the UAR of *pooled*
predictions (Table 3's aggregate rows) is :func:`uar_from_confusion` of the summed counts,
without reading the predictions again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

from sernoise.io import read_csv_checked
from sernoise.predictions import LABELS, PredictionError, read_predictions, uar

# the prediction keys that metrics.csv and confusion.csv keep (one corpus per file: no corpus column)
KEYS = ["model", "regime", "fold", "rep", "task"]
METRIC_COLUMNS = KEYS + ["condition", "uar", "recall_low", "recall_mid", "recall_high", "f1_weighted", "n"]
CM_COLUMNS = [f"cm_{t}_{p}" for t in LABELS for p in LABELS]
CONFUSION_COLUMNS = KEYS + ["condition"] + CM_COLUMNS

def confusion(true, predicted) -> np.ndarray:
    """3x3 confusion counts, rows = true, columns = predicted, in LABELS order."""
    if len(true) == 0:
        return np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    return confusion_matrix(true, predicted, labels=list(LABELS)).astype(np.int64)


def uar_from_confusion(cm) -> float:
    """UAR of a confusion matrix (or of a sum of them, i.e. of pooled predictions)."""
    cm = np.asarray(cm, dtype=float).reshape(len(LABELS), len(LABELS))
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def condition_metrics(true, predicted) -> dict:
    """UAR, per-class recall, weighted F1 and n of one group of predictions."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    row = {"uar": uar(true, predicted)}
    for label in LABELS:
        mask = true == label
        row[f"recall_{label}"] = float((predicted[mask] == label).mean()) if mask.any() else float("nan")
    row["f1_weighted"] = (
        float(f1_score(true, predicted, labels=list(LABELS), average="weighted", zero_division=0))
        if len(true) else float("nan")
    )
    row["n"] = int(len(true))
    return row


def evaluate_frame(frame: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Metric rows and confusion rows, one per (keys, condition) of a prediction frame (its key
    columns say which model predicted: :data:`sernoise.predictions.KEY_COLUMNS`)."""
    metrics, confusions = [], []
    for values, group in frame.groupby(KEYS + ["condition"], sort=False):
        keys = dict(zip(KEYS, values[:-1]))
        condition = values[-1]
        true, predicted = group["true"].to_numpy(), group["predicted"].to_numpy()
        metrics.append({**keys, "condition": condition, **condition_metrics(true, predicted)})
        cm = confusion(true, predicted)
        confusions.append({**keys, "condition": condition, **dict(zip(CM_COLUMNS, cm.ravel().tolist()))})
    return metrics, confusions


def compute_metrics(paths, log=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """metrics.csv and confusion.csv frames of many prediction files (read one at a time; the keys
    of each prediction are its file's key columns, never parsed from the path)."""
    metrics, confusions = [], []
    for path in paths:
        frame = read_predictions(path)
        if frame.empty and log is not None:
            log.warning("%s: no predictions", path)
        m, c = evaluate_frame(frame)
        metrics += m
        confusions += c
    metrics_frame = pd.DataFrame(metrics, columns=METRIC_COLUMNS)
    confusion_frame = pd.DataFrame(confusions, columns=CONFUSION_COLUMNS)
    order = KEYS + ["condition"]
    metrics_frame = metrics_frame.sort_values(order, kind="stable").reset_index(drop=True)
    confusion_frame = confusion_frame.sort_values(order, kind="stable").reset_index(drop=True)
    return metrics_frame, confusion_frame


_KEY_TYPES = {"model": str, "regime": str, "task": str, "condition": str}


def _read_frames(paths, columns: list[str]) -> pd.DataFrame:
    """One metrics/confusion CSV, or several (one per model: rules/evaluate.smk) concatenated in order."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    frames = []
    for path in paths:
        frames.append(read_csv_checked(path, columns, error=PredictionError, dtype=_KEY_TYPES))
    if not frames:
        return pd.DataFrame(columns=columns).astype({k: str for k in _KEY_TYPES if k in columns})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_metrics(paths) -> pd.DataFrame:
    """metrics.csv of one path or of several (concatenated)."""
    return _read_frames(paths, METRIC_COLUMNS)


def read_confusion(paths) -> pd.DataFrame:
    """confusion.csv of one path or of several (concatenated)."""
    return _read_frames(paths, CONFUSION_COLUMNS)
