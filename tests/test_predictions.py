"""sernoise.predictions: the one UAR, the classes and the prediction file format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from sernoise.predictions import (
    CLASS_INDICES, LABELS, PREDICTION_COLUMNS, PredictionError, prediction_keys, read_predictions, uar,
)


def test_uar_of_labels_and_of_class_indices_agree_with_sklearn():
    rng = np.random.default_rng(5)
    true = rng.choice(3, size=300, p=[0.6, 0.3, 0.1])
    predicted = rng.choice(3, size=300)
    expected = balanced_accuracy_score(true, predicted)
    assert uar(true, predicted, CLASS_INDICES) == pytest.approx(expected)
    names = np.asarray(LABELS)
    assert uar(names[true], names[predicted]) == uar(true, predicted, CLASS_INDICES)


def test_uar_counts_only_the_classes_present():
    assert uar([0, 0, 1, 2], [0, 1, 1, 2], CLASS_INDICES) == pytest.approx((0.5 + 1 + 1) / 3)
    assert uar([1, 1], [1, 0], CLASS_INDICES) == 0.5
    assert uar(["low", "low"], ["high", "low"]) == 0.5  # predicting an absent class still costs recall
    assert np.isnan(uar([], []))


def _frame(**changes):
    frame = pd.DataFrame({"condition": ["clean", "fade-in"], "utt_id": ["u1", "u1"], "true": ["low", "mid"],
                          "predicted": ["low", "high"], "score_low": 0.5, "score_mid": 0.25, "score_high": 0.25})
    return frame.assign(**prediction_keys("ravdess", "tdnn", "clean", 1, 2, "activation"), **changes)


def test_read_predictions_checks_columns_labels_and_duplicates(tmp_path):
    path = tmp_path / "p.csv"
    _frame().to_csv(path, index=False)
    frame = read_predictions(path)
    assert sorted(frame.columns) == sorted(PREDICTION_COLUMNS)
    assert frame["fold"].dtype == "int64" and frame["rep"].tolist() == [2, 2] and frame["utt_id"].tolist() == ["u1"] * 2
    # the classes are the score columns: without score_mid, a true label 'mid' is outside them
    _frame().drop(columns="score_mid").to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: column 'true' has label\(s\) \['mid'\] outside \['low', 'high'\]"):
        read_predictions(path)
    _frame().drop(columns=["score_low", "score_mid", "score_high"]).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: needs a score_<class> column per class"):
        read_predictions(path)
    _frame().drop(columns="model").to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: missing column\(s\) \['model'\]"):
        read_predictions(path)
    _frame(predicted=["low", "LOW"]).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: column 'predicted' .*LOW"):
        read_predictions(path)
    _frame(condition=["clean", "clean"]).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: 1 duplicated"):
        read_predictions(path)
