"""Latif et al. end to end at tiny scale (`snakemake latif`): RAVDESS actors 01-04 of ../shared/data
(four leave-one-speaker-out folds, folds 1 and 3 run), the proposed model and the CNN in all four
training settings, two epochs, noise at 0 and 20 dB, FGSM and a 3-step BIM, and cross-corpus to URDU.
Checks that every cell of the three tables and of the cross-corpus table is filled, the folds, the
selection split, the segment sets (speed copies' lengths, measured SNRs from the test pool), that a
rerun does nothing and that a training job rebuilds the same bytes."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import module_run, run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

RESULTS = "results/ravdess"
MODELS = ["proposed", "cnn"]
AUGMENTATIONS = ["none", "speed", "mixup", "speed_mixup"]
LATIF = {"models": MODELS, "augmentations": AUGMENTATIONS, "repetitions": 1, "n_folds": 4, "run_folds": [1, 3],
         "context": 64, "training": {"max_epochs": 2, "batch_size": 32},
         "noisy": {"categories": ["nat", "hum"], "snr_db": [0, 20]},
         "adversarial": {"bim_iterations": 3}, "cross_corpus": {"target": "urdu"}}


def tiny_latif_overlay(ravdess_root, noise_root) -> dict:
    urdu_root = ravdess_root.parents[1] / "urdu"
    if not urdu_root.is_dir():
        pytest.skip(f"URDU not found at {urdu_root} (../shared/data/urdu)")
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2, 3, 4]}
    overlay["corpora"]["urdu"] = {"adapter": "urdu", "root": str(urdu_root), "shards": 1}
    overlay["align"] = {"enabled": False}  # the stage needs no word alignments
    overlay["training"] = {"device": "cpu"}
    overlay["latif"] = LATIF
    return overlay


latif_run = module_run("latif_run", tiny_latif_overlay, "latif", "--cores", "2", timeout=3000)


def _cells(workdir, name):
    return pd.read_csv(workdir / RESULTS / "tables" / f"latif_{name}.csv")


@pytest.mark.parametrize("name, columns", [("table1", ["clean"]), ("table2", ["snr0", "snr20"]),
                                           ("table3", ["fgsm", "bim"]), ("cross_corpus", ["cross"])])
def test_every_cell_is_filled_for_both_models_in_all_four_settings(latif_run, name, columns):
    workdir, _ = latif_run
    cells = _cells(workdir, name)
    assert len(cells) == len(MODELS) * len(AUGMENTATIONS) * len(columns)
    assert sorted(cells["test_set"].unique()) == sorted(columns)
    assert cells["mean"].between(0, 1).all(), cells
    runs = 1 if name == "cross_corpus" else 2  # cross-corpus: one run per cell; else two folds
    assert (cells["n_runs"] == runs).all()
    baseline = cells[cells["model"] == "cnn"]
    assert (baseline["vs"] == "proposed").all()
    md = (workdir / RESULTS / "tables" / f"latif_{name}.md").read_text()
    tex = (workdir / RESULTS / "tables" / f"latif_{name}.tex").read_text()
    for text in (md, tex):
        assert "DenseNet-LSTM-Highway" in text and "CNN" in text and "mixup" in text
    if name == "table2":
        assert "stand in for DEMAND" in md
    if name == "cross_corpus":
        assert (workdir / RESULTS / "latif" / "cross_corpus.png").stat().st_size > 5000
        assert "selected on 30 % of urdu" in md


def test_leave_one_speaker_out_folds_and_the_attacks(latif_run):
    workdir, _ = latif_run
    folds = pd.read_csv(workdir / RESULTS / "latif" / "folds.csv", dtype={"speaker": str})
    fold1 = dict(zip(folds.loc[folds["fold"] == 1, "speaker"], folds.loc[folds["fold"] == 1, "role"]))
    assert fold1 == {"Actor_01": "test", "Actor_02": "val", "Actor_03": "train", "Actor_04": "train"}
    run = workdir / RESULTS / "latif" / "runs" / "proposed" / "speed_mixup" / "fold3" / "rep1"
    predictions = pd.read_csv(run / "predictions.csv")
    assert set(predictions["speaker"]) == {"Actor_03"}
    per_set = predictions.groupby("test_set")["utt_id"].nunique()
    assert set(per_set.index) == {"clean", "snr0", "snr20", "fgsm", "bim"}
    assert per_set["clean"] == per_set["fgsm"] == per_set["bim"] == 28  # emotion4: 8+8+4+8 per actor
    posteriors = predictions[[c for c in predictions.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(posteriors.sum(axis=1), 1, atol=1e-4)
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 2 and history["selected"].sum() == 1


def test_selection_split_and_segment_sets(latif_run):
    workdir, _ = latif_run
    split = pd.read_csv(workdir / "results" / "urdu" / "latif" / "selection_split.csv")
    assert len(split) == 400
    share = split.groupby("label")["role"].apply(lambda r: (r == "val").mean())
    assert share.between(0.25, 0.35).all(), share
    speed = pd.concat(pd.read_csv(p) for p in sorted((workdir / RESULTS / "latif" / "segments").glob("speed-*.csv")))
    for factor in (0.9, 1.1):
        ratio = speed.loc[np.isclose(speed["factor"], factor), "length_ratio"]
        assert np.allclose(ratio, 1 / factor, atol=0.01), (factor, ratio.describe())
    noisy = pd.concat(pd.read_csv(p) for p in sorted((workdir / RESULTS / "latif" / "segments").glob("noisy-*.csv")))
    assert set(noisy["category"]) <= {"nat", "hum"} and len(noisy) == 4 * 28 * 2
    ok = noisy[noisy["status"] == "ok"]
    assert len(ok) >= 0.9 * len(noisy)
    assert np.allclose(ok["snr_measured"], ok["snr_db"], atol=0.1)


def test_rerun_does_nothing_and_a_training_is_rebuilt_byte_for_byte(latif_run):
    workdir, overlay = latif_run
    proc = run_snakemake(workdir, overlay, "latif", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    target = f"{RESULTS}/latif/runs/cnn/none/fold1/rep1/predictions.csv"
    before = hashlib.sha256((workdir / target).read_bytes()).hexdigest()
    model_before = hashlib.sha256((workdir / target).with_name("model.pt").read_bytes()).hexdigest()
    run_snakemake(workdir, overlay, target, "--forcerun", "latif_train", "--cores", "1", "--allowed-rules",
                  "latif_train")
    assert hashlib.sha256((workdir / target).read_bytes()).hexdigest() == before
    assert hashlib.sha256((workdir / target).with_name("model.pt").read_bytes()).hexdigest() == model_before
