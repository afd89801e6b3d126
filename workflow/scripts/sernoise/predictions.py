"""The emotion classes, the name of clean speech, the prediction file format and UAR: one
definition each for training, prediction, the metrics and tables, and the attack.

A prediction file (one per trained model, written by :func:`sernoise.training.predict.write_predictions`)
has the columns ``PREDICTION_COLUMNS``:

    corpus, model, regime, fold, rep, task   the model's keys (``KEY_COLUMNS``), on every row
    condition  ``CLEAN`` ("clean") for clean test speech, else the condition id
    utt_id
    true       the task's class label: low | mid | high (``LABELS``) for the paper's bins
    predicted  a class label (argmax of the scores)
    score_<label>, one per class of the task in its order: softmax scores
               (score_low, score_mid, score_high for the bins)

A file's classes are those its score columns name (:func:`file_labels`), so a categorical task
(e.g. emotion4: angry, happy, neutral, sad; :mod:`sernoise.tasks`) uses the same format.

The keys are columns, not only parts of the file's path, so a file says what it holds wherever it
is copied and whatever the path layout becomes; readers take them from the columns only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sernoise.io import read_csv_checked

LABELS = ("low", "mid", "high")  # the three classes of every task, in index order (0, 1, 2)
CLASS_INDICES = tuple(range(len(LABELS)))
CLEAN = "clean"  # the condition name of clean speech (predictions, training examples, denoised datasets)
SCORE_PREFIX = "score_"
KEY_COLUMNS = ["corpus", "model", "regime", "fold", "rep", "task"]
BASE_ROW_COLUMNS = ["condition", "utt_id", "true", "predicted"]


def score_columns(labels=LABELS) -> list[str]:
    return [f"{SCORE_PREFIX}{label}" for label in labels]


def row_columns(labels=LABELS) -> list[str]:
    """What one prediction is: condition, utt_id, true, predicted and a score per class."""
    return [*BASE_ROW_COLUMNS, *score_columns(labels)]


def prediction_columns(labels=LABELS) -> list[str]:
    return [*KEY_COLUMNS, *row_columns(labels)]


def file_labels(columns) -> tuple[str, ...]:
    """The classes of a prediction file: its score columns, in order."""
    return tuple(c[len(SCORE_PREFIX):] for c in columns if str(c).startswith(SCORE_PREFIX))


SCORE_COLUMNS = score_columns()
ROW_COLUMNS = row_columns()  # the paper's bins
PREDICTION_COLUMNS = prediction_columns()
_TEXT_COLUMNS = ["corpus", "model", "regime", "task", "condition", "utt_id", "true", "predicted"]


class PredictionError(ValueError):
    """A prediction file that cannot be evaluated (the message names the file)."""


def uar(true, predicted, classes=LABELS) -> float:
    """Unweighted average recall: the mean, over the ``classes`` present in ``true`` (in ``classes``
    order), of each one's recall; NaN when none is present.  ``classes``: LABELS for label texts,
    CLASS_INDICES for class indices.  A class absent from ``true`` has no recall and does not enter
    the mean; predicting it still costs the true class its recall."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    recalls = [float(np.mean(predicted[true == k] == k)) for k in classes if np.any(true == k)]
    return float(np.mean(recalls)) if recalls else float("nan")


def prediction_keys(corpus, model, regime, fold, rep, task) -> dict:
    """The key columns of one model's prediction file (fold and rep as integers)."""
    return {"corpus": str(corpus), "model": str(model), "regime": str(regime), "fold": int(fold), "rep": int(rep),
            "task": str(task)}


def read_predictions(path) -> pd.DataFrame:
    """Read and check one prediction file; errors name the file, the column and the bad values.
    The key columns are text, fold and rep integers."""
    frame = read_csv_checked(path, [*KEY_COLUMNS, *BASE_ROW_COLUMNS], error=PredictionError,
                             dtype={c: str for c in _TEXT_COLUMNS})
    labels = file_labels(frame.columns)
    if len(labels) < 2:
        raise PredictionError(f"{path}: needs a {SCORE_PREFIX}<class> column per class (at least two), "
                              f"found {list(score_columns(labels))}")
    for column in KEY_COLUMNS:
        if frame[column].isna().any():
            raise PredictionError(f"{path}: column {column!r} has empty values")
    for column in ("fold", "rep"):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.isna().any() or (numbers != numbers.round()).any():
            bad = frame.loc[numbers.isna() | (numbers != numbers.round()), column].tolist()[:5]
            raise PredictionError(f"{path}: column {column!r} has non-integer value(s) {bad}")
        frame[column] = numbers.astype("int64")
    for column in ("true", "predicted"):
        bad = sorted(set(frame[column].dropna()) - set(labels)) + (["<empty>"] if frame[column].isna().any() else [])
        if bad:
            raise PredictionError(f"{path}: column {column!r} has label(s) {bad[:5]} outside {list(labels)}")
    if frame["condition"].isna().any():
        raise PredictionError(f"{path}: column 'condition' has empty values")
    duplicated = frame.duplicated(["condition", "utt_id"])
    if duplicated.any():
        first = frame.loc[duplicated, ["condition", "utt_id"]].iloc[0].tolist()
        raise PredictionError(f"{path}: {int(duplicated.sum())} duplicated (condition, utt_id) row(s), e.g. {first}")
    return frame
