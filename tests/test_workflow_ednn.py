"""E-DNN end to end: tiny random wav2vec2 -> training -> predictions -> Table 3 with E-DNN columns,
at tiny scale on RAVDESS actors 01-06 of ../shared/data."""

from __future__ import annotations

import functools
import json
import re

import pandas as pd
import pytest
import torch
import yaml

from sernoise.pretrained import READY, TINY_LABEL
from sernoise.training.ednn import load_ednn
import workflow_helpers as wf

pytestmark = pytest.mark.workflow

CONDITIONS = wf.TINY_CONDITIONS
REGIMES = ["clean", "matched"]
N_FOLDS = wf.TINY_FOLDS
MODEL_FILES = ["model.pt", "hparams.yaml", "curve.csv", "curve.png", "selection.csv", "versions.yaml"]
TINY = "resources/pretrained/tiny-random-wav2vec2"


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = wf.tiny_training_overlay(ravdess_root, noise_root, models=["ednn"], regimes=REGIMES)
    overlay["pretrained"] = {"missing": "tiny_random"}
    overlay["ednn"] = {"max_epochs": 1, "batch_size": 16, "learning_rate": 0.001, "backbone_learning_rate": 0.0001,
                       "grid": {"dense_layers": [1], "dense_units": [16]}}
    return overlay


_predictions = functools.partial(wf.predictions_path, "ednn")  # (regime, fold) -> path
_model_dir = functools.partial(wf.model_dir, "ednn")  # (workdir, regime, fold) -> folder

ednn_run = wf.module_run("ednn_run", _overlay, "results/ravdess/tables/table3.csv", "results/ravdess/tables/table3.md")


def test_the_tiny_stand_in_is_made_and_recorded(ednn_run):
    workdir, _ = ednn_run
    marker = json.loads((workdir / TINY / READY).read_text())
    assert marker["kind"] == "tiny_random" and marker["label"] == TINY_LABEL
    assert not (workdir / "resources/pretrained/facebook--wav2vec2-base").exists()  # nothing downloaded
    hparams = yaml.safe_load((_model_dir(workdir, "clean", 1) / "hparams.yaml").read_text())
    assert hparams["backbone"]["kind"] == "tiny_random" and hparams["backbone"]["label"] == TINY_LABEL
    assert hparams["backbone"]["repo_id"] == "facebook/wav2vec2-base" and len(hparams["backbone"]["fingerprint"]) == 64
    versions = yaml.safe_load((_model_dir(workdir, "clean", 1) / "versions.yaml").read_text())
    assert versions["backbone"].startswith(TINY_LABEL) and versions["backbone_kind"] == "tiny_random"
    assert versions["speechbrain"] and versions["transformers"] and versions["torch"] == torch.__version__


def test_model_folders_are_complete_and_load_with_weights_only(ednn_run):
    workdir, _ = ednn_run
    # training-set sizes checked there too: the same examples as the T-DNN's assembly
    for folder, hparams, state in wf.check_model_folders(workdir, "ednn", REGIMES, N_FOLDS, MODEL_FILES).values():
        assert not (folder / "norm.npz").exists()
        assert hparams["hparams"]["dense_units"] == 16 and hparams["hparams"]["freeze"] == "feature_extractor"
        assert hparams["best_epoch"] == hparams["epochs_run"] == 1
        assert 0 < hparams["n_trainable"] < hparams["n_parameters"]
        assert not any(".feature_extractor." in k for k in state)  # frozen: comes from the backbone
        load_ednn(folder / "model.pt", hparams, workdir / TINY)
        curve = pd.read_csv(folder / "curve.csv")
        assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "val_uar"] and len(curve) == 1
        assert pd.read_csv(folder / "selection.csv")["selected"].tolist() == [True]
        assert (folder / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_predictions_cover_the_test_role_in_every_condition(ednn_run):
    workdir, _ = ednn_run
    wf.assert_predictions_cover_the_test_role(workdir, "ednn", REGIMES, CONDITIONS, N_FOLDS)


def test_table3_has_filled_ednn_columns_labelled_as_tiny(ednn_run):
    workdir, _ = ednn_run
    cells = pd.read_csv(workdir / "results/ravdess/tables/table3.csv")
    assert set(cells["model"]) == {"ednn"}
    assert set(cells["model_label"]) == {f"E-DNN ({TINY_LABEL})"}
    clean = cells[(cells["row_key"] == "clean") & (cells["column"] == "clean")]
    assert clean["mean"].notna().all() and (clean["n_pairs"] == N_FOLDS).all()
    match = cells[(cells["column"] == "match") & (cells["row_key"] != "clean") & (cells["row_key"] != "ALL")]
    assert match["mean"].notna().all()
    markdown = (workdir / "results/ravdess/tables/table3.md").read_text()
    assert f"E-DNN ({TINY_LABEL})" in markdown.splitlines()[0]  # caption
    assert "stands in for facebook/wav2vec2-base" in markdown
    assert f"| E-DNN ({TINY_LABEL}) |" in markdown


def test_training_reads_train_pool_audio_and_rerun_does_nothing(ednn_run):
    workdir, overlay = ednn_run
    proc = wf.run_snakemake(workdir, overlay, "results/ravdess/tables/table3.csv")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    proc = wf.run_snakemake(workdir, overlay, "-n", _predictions("matched", 1), "--forcerun", "train_audio_model")
    inputs = re.findall(r"rule train_audio_model:\n\s+input: ([^\n]+)", proc.stdout)
    assert len(inputs) == 1
    paths = [p.strip() for p in inputs[0].split(",")]
    # the regime's audio datasets come through its dataset list (rule list_datasets)
    assert "results/ravdess/datasets/waveform/train-matched.json" in paths
    listed = json.loads((workdir / "results/ravdess/datasets/waveform/train-matched.json").read_text())
    assert listed["input"] == "indexes"
    augmented = [d["file"] for d in listed["datasets"]]
    assert augmented and all(p.startswith("results/ravdess/augmented/") and "/train/" in p for p in augmented)
    assert not any("/augmented/" in p for p in paths)
    assert f"{TINY}/{READY}" in paths
