"""Metrics of prediction files on hand-computed examples (sernoise.evaluation.metrics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

from sernoise.evaluation.metrics import (
    CONFUSION_COLUMNS,
    METRIC_COLUMNS,
    compute_metrics,
    condition_metrics,
    confusion,
    f1_weighted,
    uar_from_confusion,
)
from sernoise.predictions import PREDICTION_COLUMNS, PredictionError, prediction_keys, uar


def write(path, rows, *, corpus="ravdess", model="tdnn", regime="clean", fold=1, rep=1, task="activation"):
    """A prediction file of ``rows`` (condition, utt_id, true, predicted) with the given key columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["condition", "utt_id", "true", "predicted"])
    for label in ("low", "mid", "high"):
        frame[f"score_{label}"] = 1 / 3
    frame = frame.assign(**prediction_keys(corpus, model, regime, fold, rep, task))[PREDICTION_COLUMNS]
    frame.to_csv(path, index=False)
    return path


def test_uar_imbalanced_classes():
    # 6 low (5 right), 3 mid (1 right), 1 high (1 right)
    true = ["low"] * 6 + ["mid"] * 3 + ["high"]
    predicted = ["low"] * 5 + ["mid"] + ["mid", "low", "low"] + ["high"]
    expected = (5 / 6 + 1 / 3 + 1) / 3
    assert uar(true, predicted) == pytest.approx(expected)
    assert uar(true, predicted) == pytest.approx(balanced_accuracy_score(true, predicted))
    assert np.mean(np.array(true) == np.array(predicted)) == pytest.approx(0.7)  # accuracy differs
    m = condition_metrics(true, predicted)
    assert (m["recall_low"], m["recall_mid"], m["recall_high"]) == pytest.approx((5 / 6, 1 / 3, 1))
    assert m["n"] == 10


def test_missing_class():
    # no "high" in true; a wrong "high" prediction still costs the true class its recall
    true = ["low", "low", "mid", "mid"]
    predicted = ["low", "high", "mid", "mid"]
    m = condition_metrics(true, predicted)
    assert m["uar"] == pytest.approx((1 / 2 + 1) / 2)
    assert np.isnan(m["recall_high"])
    assert m["recall_low"] == pytest.approx(0.5)
    # weighted F1: low F1 = 2*(1*0.5)/(1.5) = 2/3 (weight 2), mid F1 = 1 (weight 2), high weight 0
    assert m["f1_weighted"] == pytest.approx((2 / 3 * 2 + 1 * 2) / 4)


def test_weighted_f1_matches_sklearn():
    rng = np.random.default_rng(3)
    true = rng.choice(["low", "mid", "high"], size=200, p=[0.6, 0.3, 0.1])
    predicted = rng.choice(["low", "mid", "high"], size=200)
    m = condition_metrics(true, predicted)
    assert m["f1_weighted"] == pytest.approx(f1_score(true, predicted, average="weighted"))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(true, predicted))
    # a class present but never predicted: precision 0/0 counted as F1 0
    m = condition_metrics(["low", "mid", "high"], ["low", "low", "low"])
    assert m["f1_weighted"] == pytest.approx((2 * 1 * (1 / 3) / (1 + 1 / 3)) / 3)


@pytest.mark.parametrize("seed", range(6))
def test_confusion_and_weighted_f1_equal_sklearns_on_random_labels(seed):
    """The numpy replacements of scikit-learn's confusion_matrix and weighted f1_score (kept out of the
    jobs' imports): equal on random label sets, with classes absent from the truth or never predicted,
    and with values outside ``labels`` (not counted)."""
    rng = np.random.default_rng(seed)
    labels = ["low", "mid", "high", "x"][: 2 + seed % 3]
    values = labels + ["other"]
    n = int(rng.integers(1, 60))
    true = rng.choice(values[: max(1, seed % 4)] if seed % 2 else values, size=n)
    predicted = rng.choice(values, size=n)
    assert np.array_equal(confusion(true, predicted, labels), confusion_matrix(true, predicted, labels=labels))
    assert f1_weighted(true, predicted, labels) == pytest.approx(
        f1_score(true, predicted, labels=labels, average="weighted", zero_division=0), abs=1e-12)


def test_uar_from_confusion_pools_predictions():
    a_true, a_pred = ["low", "low", "mid"], ["low", "mid", "mid"]
    b_true, b_pred = ["high", "high", "low", "mid"], ["high", "low", "low", "low"]
    pooled = uar_from_confusion(confusion(a_true, a_pred) + confusion(b_true, b_pred))
    assert pooled == pytest.approx(balanced_accuracy_score(a_true + b_true, a_pred + b_pred))
    assert np.isnan(uar_from_confusion(np.zeros((3, 3))))


def test_per_model_files_read_back_concatenated(tmp_path):
    from sernoise.evaluation.metrics import read_confusion, read_metrics

    rows = [("clean", "u1", "low", "low"), ("clean", "u2", "mid", "low"), ("fade-in", "u1", "low", "mid")]
    frames = {}
    for model in ("tdnn", "ednn"):
        p = write(tmp_path / f"results/ravdess/predictions/{model}/clean/fold1/rep1/activation.csv", rows, model=model)
        metrics, cm = compute_metrics([p])
        metrics.to_csv(tmp_path / f"{model}-metrics.csv", index=False)
        cm.to_csv(tmp_path / f"{model}-confusion.csv", index=False)
        frames[model] = (metrics, cm)
    both = read_metrics([tmp_path / "tdnn-metrics.csv", tmp_path / "ednn-metrics.csv"])
    assert list(both["model"].unique()) == ["tdnn", "ednn"]
    assert len(both) == len(frames["tdnn"][0]) + len(frames["ednn"][0])
    assert len(read_confusion(str(tmp_path / "ednn-confusion.csv"))) == len(frames["ednn"][1])
    assert list(read_confusion([]).columns) == CONFUSION_COLUMNS and read_confusion([]).empty
    assert list(read_metrics([]).columns) == METRIC_COLUMNS
    (tmp_path / "bad.csv").write_text("model,regime\ntdnn,clean\n")
    with pytest.raises(PredictionError, match="bad.csv: missing column"):
        read_confusion([tmp_path / "tdnn-confusion.csv", tmp_path / "bad.csv"])


def test_compute_metrics_files(tmp_path):
    # the keys come from the file's columns: the path says nothing (and could say something else)
    p = write(tmp_path / "results/ravdess/predictions/ednn/clean/fold1/rep1/activation.csv", [
        ("clean", "u1", "low", "low"), ("clean", "u2", "mid", "low"),
        ("fade-in", "u1", "low", "low"), ("fade-in", "u2", "mid", "mid"), ("fade-in", "u3", "high", "mid"),
    ], model="tdnn", regime="matched", fold=2, rep=3, task="valence")
    metrics, cm = compute_metrics([p])
    assert list(metrics.columns) == METRIC_COLUMNS and list(cm.columns) == CONFUSION_COLUMNS
    row = metrics.set_index("condition").loc["fade-in"]
    assert (row["model"], row["regime"], row["fold"], row["rep"], row["task"]) == ("tdnn", "matched", 2, 3, "valence")
    assert row["uar"] == pytest.approx(2 / 3) and row["n"] == 3
    clean = metrics.set_index("condition").loc["clean"]
    assert clean["uar"] == pytest.approx(0.5) and np.isnan(clean["recall_high"])
    assert cm.set_index("condition").loc["fade-in", "cm_high_mid"] == 1


def test_bad_prediction_files_name_the_file(tmp_path):
    root = tmp_path / "results/x/predictions/tdnn/clean/fold1/rep1"
    bad = write(root / "activation.csv", [("clean", "u1", "low", "LOW")])
    with pytest.raises(PredictionError, match=r"activation\.csv.*'predicted'.*LOW"):
        compute_metrics([bad])
    root.joinpath("valence.csv").write_text("condition,utt_id,true\nclean,u1,low\n")
    with pytest.raises(PredictionError, match=r"valence\.csv: missing column"):
        compute_metrics([root / "valence.csv"])


@pytest.mark.parametrize("key", ["corpus", "model", "regime", "fold", "rep", "task"])
def test_a_prediction_file_without_a_key_column_names_the_file_and_the_column(tmp_path, key):
    path = write(tmp_path / "results/x/predictions/tdnn/clean/fold1/rep1/activation.csv",
                 [("clean", "u1", "low", "low")])
    pd.read_csv(path).drop(columns=key).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=rf"activation\.csv: missing column\(s\) \['{key}'\]"):
        compute_metrics([path])


def test_prediction_keys_must_be_filled_and_folds_integers(tmp_path):
    path = write(tmp_path / "p.csv", [("clean", "u1", "low", "low"), ("clean", "u2", "low", "low")])
    frame = pd.read_csv(path)
    frame.assign(model=["tdnn", None]).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: column 'model' has empty values"):
        compute_metrics([path])
    frame.assign(fold=["1", "one"]).to_csv(path, index=False)
    with pytest.raises(PredictionError, match=r"p\.csv: column 'fold' has non-integer value\(s\) \['one'\]"):
        compute_metrics([path])


def test_speaker_confusion_splits_the_counts_by_the_manifests_speakers(tmp_path):
    from sernoise.evaluation.metrics import read_speaker_confusion, speaker_confusion, utt_digest

    rows = [("clean", "a1", "low", "low"), ("clean", "a2", "mid", "low"), ("clean", "b1", "high", "high"),
            ("fade-in", "a1", "low", "mid"), ("fade-in", "b1", "high", "high")]
    path = write(tmp_path / "p.csv", rows)
    speakers = {"a1": "A", "a2": "A", "b1": "B"}
    frame = speaker_confusion([path], speakers)
    assert list(frame[["condition", "speaker", "n"]].itertuples(index=False, name=None)) == [
        ("clean", "A", 2), ("clean", "B", 1), ("fade-in", "A", 1), ("fade-in", "B", 1)]
    _, whole = compute_metrics([path])
    cm = [c for c in frame.columns if c.startswith("cm_")]
    summed = frame.groupby("condition")[cm].sum().reset_index()
    assert (summed[cm].to_numpy() == whole[cm].to_numpy()).all()
    clean_a = frame[(frame.condition == "clean") & (frame.speaker == "A")].iloc[0]
    assert clean_a["cm_mid_low"] == 1 and clean_a["utt_digest"] == utt_digest(["a2", "a1"])
    # speaker A holds fewer utterances in fade-in than clean: the digests say so
    fade_a = frame[(frame.condition == "fade-in") & (frame.speaker == "A")].iloc[0]
    assert fade_a["utt_digest"] != clean_a["utt_digest"]
    frame.to_csv(tmp_path / "s.csv", index=False)
    back = read_speaker_confusion([tmp_path / "s.csv"])
    assert back[["speaker", "utt_digest"]].values.tolist() == frame[["speaker", "utt_digest"]].values.tolist()
    with pytest.raises(PredictionError, match=r"p\.csv: 1 utt_id\(s\) not in the manifest"):
        speaker_confusion([path], {"a1": "A", "a2": "A"})
