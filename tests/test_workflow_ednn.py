"""E-DNN end to end: tiny random wav2vec2 -> training -> predictions -> Table 3 with E-DNN columns,
at tiny scale on RAVDESS actors 01-06 of ../shared/data."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sernoise.corpora.manifest import read_manifest
from sernoise.pretrained import READY, TINY_LABEL
from sernoise.training.ednn import load_ednn
from sernoise.training.predict import PREDICTION_COLUMNS, read_predictions
from test_workflow import run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

CONDITIONS = ["env-nat-cont-snr10", "fade-in"]
REGIMES = ["clean", "matched"]
N_FOLDS = 3
MODEL_FILES = ["model.pt", "hparams.yaml", "curve.csv", "curve.png", "selection.csv", "versions.yaml"]
TINY = "resources/pretrained/tiny-random-wav2vec2"


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2, 3, 4, 5, 6]}
    overlay["folds"] = {"n_folds": N_FOLDS}
    overlay["augment"] = {"conditions": CONDITIONS, "quality": {"stoi": False, "pesq": False}}
    overlay["noise_types"] = {"nat": ["env-nat-cont-snr10"], "fade": ["fade-in"]}
    overlay["training"] = {"models": ["ednn"], "regimes": REGIMES, "tasks": ["activation"], "repetitions": 1,
                           "device": "cpu", "sweep": {"fractions": []}}
    overlay["pretrained"] = {"missing": "tiny_random"}
    overlay["ednn"] = {"max_epochs": 1, "batch_size": 16, "learning_rate": 0.001, "backbone_learning_rate": 0.0001,
                       "grid": {"dense_layers": [1], "dense_units": [16]}}
    return overlay


def _predictions(regime, fold) -> str:
    return f"results/ravdess/predictions/ednn/{regime}/fold{fold}/rep1/activation.csv"


def _model_dir(workdir, regime, fold):
    return workdir / f"results/ravdess/models/ednn/{regime}/fold{fold}/rep1/activation"


@pytest.fixture(scope="module")
def ednn_run(tmp_path_factory, ravdess_root, noise_root):
    workdir = tmp_path_factory.mktemp("ednn_run")
    overlay = _overlay(ravdess_root, noise_root)
    run_snakemake(workdir, overlay, "results/tables/table3.csv", "results/tables/table3.md")
    return workdir, overlay


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
    sizes = {}
    for regime in REGIMES:
        for fold in range(1, N_FOLDS + 1):
            folder = _model_dir(workdir, regime, fold)
            assert all((folder / name).is_file() for name in MODEL_FILES)
            assert not (folder / "norm.npz").exists()
            hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
            assert (hparams["regime"], hparams["fold"], hparams["rep"], hparams["task"]) == (regime, fold, 1, "activation")
            assert hparams["hparams"]["dense_units"] == 16 and hparams["hparams"]["freeze"] == "feature_extractor"
            assert hparams["best_epoch"] == hparams["epochs_run"] == 1
            assert 0 < hparams["n_trainable"] < hparams["n_parameters"]
            sizes[(regime, fold)] = (hparams["n_train"], hparams["n_train_clean"], hparams["n_train_augmented"])
            state = torch.load(folder / "model.pt", weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
            assert not any(".feature_extractor." in k for k in state)  # frozen: comes from the backbone
            load_ednn(folder / "model.pt", hparams, workdir / TINY)
            curve = pd.read_csv(folder / "curve.csv")
            assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "val_uar"] and len(curve) == 1
            assert pd.read_csv(folder / "selection.csv")["selected"].tolist() == [True]
            assert (folder / "curve.png").read_bytes()[:4] == b"\x89PNG"
    for fold in range(1, N_FOLDS + 1):  # the same examples as the T-DNN's assembly
        n, clean, augmented = sizes[("matched", fold)]
        assert augmented == clean and n == 2 * clean and sizes[("clean", fold)] == (clean, clean, 0)


def test_predictions_cover_the_test_role_in_every_condition(ednn_run):
    workdir, _ = ednn_run
    manifest = read_manifest(workdir / "results/ravdess/manifest.csv").set_index("utt_id")
    folds = pd.read_csv(workdir / "results/ravdess/folds.csv", dtype={"group": str})
    for regime in REGIMES:
        for fold in range(1, N_FOLDS + 1):
            table = read_predictions(workdir / _predictions(regime, fold))
            assert list(table.columns) == PREDICTION_COLUMNS
            test_groups = set(folds[(folds["fold"] == fold) & (folds["role"] == "test")]["group"])
            test_ids = set(manifest.index[manifest["group"].isin(test_groups)])
            assert set(table["condition"]) == {"clean", *CONDITIONS}
            for _, rows in table.groupby("condition"):
                assert set(rows["utt_id"]) == test_ids
            assert (table["true"] == manifest.loc[table["utt_id"], "activation_bin"].to_numpy()).all()
            scores = table[["score_low", "score_mid", "score_high"]].to_numpy()
            assert np.allclose(scores.sum(axis=1), 1, atol=1e-4)
            assert (np.asarray(["low", "mid", "high"])[scores.argmax(axis=1)] == table["predicted"]).all()


def test_table3_has_filled_ednn_columns_labelled_as_tiny(ednn_run):
    workdir, _ = ednn_run
    cells = pd.read_csv(workdir / "results/tables/table3.csv")
    assert set(cells["model"]) == {"ednn"}
    assert set(cells["model_label"]) == {f"E-DNN ({TINY_LABEL})"}
    clean = cells[(cells["row_key"] == "clean") & (cells["column"] == "clean")]
    assert clean["mean"].notna().all() and (clean["n_pairs"] == N_FOLDS).all()
    match = cells[(cells["column"] == "match") & (cells["row_key"] != "clean") & (cells["row_key"] != "ALL")]
    assert match["mean"].notna().all()
    markdown = (workdir / "results/tables/table3.md").read_text()
    assert f"E-DNN ({TINY_LABEL})" in markdown.splitlines()[0]  # caption
    assert "stands in for facebook/wav2vec2-base" in markdown
    assert f"| E-DNN ({TINY_LABEL}) |" in markdown


def test_training_reads_train_pool_audio_and_rerun_does_nothing(ednn_run):
    workdir, overlay = ednn_run
    proc = run_snakemake(workdir, overlay, "results/tables/table3.csv")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    proc = run_snakemake(workdir, overlay, "-n", _predictions("matched", 1), "--forcerun", "train_ednn")
    inputs = re.findall(r"rule train_ednn:\n\s+input: ([^\n]+)", proc.stdout)
    assert len(inputs) == 1
    paths = [p.strip() for p in inputs[0].split(",")]
    augmented = [p for p in paths if "/augmented/" in p]
    assert augmented and all("/train/" in p for p in augmented)
    assert f"{TINY}/{READY}" in paths
