"""Latif et al. (issue 15): the tables' values, spreads, paired tests and renderings (sernoise.latif.tables)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sernoise.latif.tables import LatifTableError, cells, read_predictions, run_uars, write_table

CLASSES = ["angry", "happy", "neutral", "sad"]


def _predictions(model, augmentation, fold, rep, test_set, accuracy, rng, n=40):
    """n test utterances (balanced classes), a share ``accuracy`` of them right."""
    labels = [CLASSES[i % 4] for i in range(n)]
    right = rng.random(n) < accuracy
    predictions = [lab if ok else CLASSES[(CLASSES.index(lab) + 1) % 4] for lab, ok in zip(labels, right)]
    return pd.DataFrame({"utt_id": [f"u{i}" for i in range(n)], "speaker": f"s{fold}", "test_set": test_set,
                         "label": labels, "prediction": predictions, "model": model, "augmentation": augmentation,
                         "fold": fold, "rep": rep})


def test_run_uar_is_the_unweighted_recall_of_a_hand_worked_case():
    frame = pd.DataFrame({"utt_id": ["a", "b", "c", "d", "e"], "speaker": "s1", "test_set": "clean",
                          "label": ["angry", "angry", "angry", "sad", "sad"],
                          "prediction": ["angry", "sad", "sad", "sad", "sad"], "model": "cnn",
                          "augmentation": "none", "fold": 1, "rep": 1})
    uars = run_uars(frame)
    assert len(uars) == 1 and uars["uar"].iloc[0] == pytest.approx((1 / 3 + 1) / 2)  # accuracy would say 0.6


def test_a_clearly_better_proposed_model_marks_the_baseline_down_after_bonferroni():
    rng = np.random.default_rng(0)
    parts = [_predictions(m, "none", f, r, "clean", acc, rng)
             for m, acc in (("proposed", 0.9), ("cnn", 0.4), ("densenet", 0.88)) for f in range(1, 6) for r in (1, 2)]
    uars = run_uars(pd.concat(parts))
    frame = cells(uars, [("clean", "clean")], ["proposed", "cnn", "densenet"], ["none"], "table1")
    row = frame.set_index("model")
    assert row.loc["cnn", "significant"] and row.loc["cnn", "direction"] == "down"
    assert row.loc["cnn", "n_pairs"] == 10 and row.loc["cnn", "vs"] == "proposed"
    assert not row.loc["densenet", "significant"]  # 0.88 vs 0.90: not significant
    assert math.isnan(row.loc["proposed", "p"])
    assert row.loc["cnn", "p_adjusted"] == pytest.approx(min(1.0, 2 * row.loc["cnn", "p"]))  # two tests
    assert row.loc["proposed", "std_over"] == "repetitions"
    per_rep = uars[(uars.model == "cnn")].groupby("rep")["uar"].mean()
    assert row.loc["cnn", "std"] == pytest.approx(per_rep.std(ddof=1))


def test_one_repetition_spreads_over_folds_and_files_render(tmp_path):
    rng = np.random.default_rng(1)
    parts = [_predictions(m, a, f, 1, t, 0.7, rng) for m in ("proposed", "cnn") for a in ("none", "mixup")
             for f in (1, 2, 3) for t in ("snr0", "snr10")]
    uars = run_uars(pd.concat(parts))
    frame = cells(uars, [("snr0", "0 dB"), ("snr10", "10 dB")], ["proposed", "cnn"], ["none", "mixup"], "table2")
    assert set(frame["std_over"]) == {"folds"} and len(frame) == 8
    paths = {ext: tmp_path / f"t.{ext}" for ext in ("csv", "md", "tex")}
    write_table(frame, paths, "Latif Table 2", "UAR in noise.", ["a note"], {"proposed": "DenseNet-LSTM-Highway",
                                                                              "cnn": "CNN"}, by_augmentation=True)
    md = paths["md"].read_text()
    assert "| mixup | CNN |" in md and "± : standard deviation over folds" in md and "0 dB" in md
    tex = paths["tex"].read_text()
    assert r"\begin{tabular}{llrr}" in tex and "DenseNet-LSTM-Highway" in tex
    assert len(pd.read_csv(paths["csv"])) == 8


def test_a_missing_cell_is_empty_not_zero():
    rng = np.random.default_rng(2)
    uars = run_uars(_predictions("proposed", "none", 1, 1, "clean", 0.5, rng))
    frame = cells(uars, [("clean", "clean")], ["proposed", "cnn"], ["none"], "table1")
    assert math.isnan(frame.set_index("model").loc["cnn", "mean"])


def test_bad_predictions_files_are_named(tmp_path):
    bad = tmp_path / "predictions.csv"
    bad.write_text("utt_id,label\nu1,angry\n")
    with pytest.raises(LatifTableError, match="predictions.csv: missing columns"):
        read_predictions([bad])


def test_single_runs_say_there_is_no_spread_and_no_test():
    from sernoise.latif.tables import spread_note, test_note

    rng = np.random.default_rng(3)
    uars = run_uars(pd.concat([_predictions(m, "none", 0, 1, "cross", 0.6, rng) for m in ("proposed", "cnn")]))
    frame = cells(uars, [("cross", "cross-corpus")], ["proposed", "cnn"], ["none"], "cross_corpus")
    assert spread_note(frame) == "No ± : one run per cell."
    assert test_note(frame).startswith("No paired test")
