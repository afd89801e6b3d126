"""Features -> training -> predictions end to end, at tiny scale on RAVDESS actors 01-06 of ../shared/data."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sernoise.corpora.manifest import read_manifest
from sernoise.features import FeatureArchive
from sernoise.training.predict import PREDICTION_COLUMNS, load_model, read_predictions
from test_workflow import run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

CONDITIONS = ["env-nat-cont-snr10", "fade-in"]
REGIMES = ["clean", "matched"]
N_FOLDS = 3
MODEL_FILES = ["model.pt", "hparams.yaml", "norm.npz", "curve.csv", "curve.png", "selection.csv", "versions.yaml"]


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2, 3, 4, 5, 6]}
    overlay["folds"] = {"n_folds": N_FOLDS}
    overlay["augment"] = {"conditions": CONDITIONS, "quality": {"stoi": False, "pesq": False}}
    overlay["noise_types"] = {"nat": ["env-nat-cont-snr10"], "fade": ["fade-in"]}
    overlay["training"] = {"regimes": REGIMES, "tasks": ["activation"], "repetitions": 1, "device": "cpu"}
    overlay["tdnn"] = {"max_epochs": 2, "patience": 2, "batch_size": 32,
                       "grid": {"conv_channels": [16], "conv_layers": [2], "pool_width": [4], "gru_units": [8]}}
    return overlay


def _predictions(regime, fold) -> str:
    return f"results/ravdess/predictions/tdnn/{regime}/fold{fold}/rep1/activation.csv"


def _model_dir(workdir, regime, fold):
    return workdir / f"results/ravdess/models/tdnn/{regime}/fold{fold}/rep1/activation"


@pytest.fixture(scope="module")
def train_run(tmp_path_factory, ravdess_root, noise_root):
    workdir = tmp_path_factory.mktemp("train_run")
    overlay = _overlay(ravdess_root, noise_root)
    targets = [_predictions(r, f) for r in REGIMES for f in range(1, N_FOLDS + 1)]
    run_snakemake(workdir, overlay, *targets)
    return workdir, overlay, targets


def test_feature_archives_hold_the_ok_utterances(train_run):
    workdir, _, _ = train_run
    manifest = read_manifest(workdir / "results/ravdess/manifest.csv")
    assert set(FeatureArchive(workdir / "results/ravdess/features/clean.h5").utt_ids) == set(manifest["utt_id"])
    for condition in CONDITIONS:
        for pool in ("train", "test"):
            params = pd.read_csv(workdir / f"results/ravdess/augmented/{condition}/{pool}/params.csv", dtype=str)
            archive = FeatureArchive(workdir / f"results/ravdess/features/{condition}/{pool}.h5")
            assert set(archive.utt_ids) == set(params.loc[params["status"] == "ok", "utt_id"])


def test_predictions_cover_the_test_role_in_every_condition(train_run):
    workdir, _, targets = train_run
    manifest = read_manifest(workdir / "results/ravdess/manifest.csv").set_index("utt_id")
    folds = pd.read_csv(workdir / "results/ravdess/folds.csv", dtype={"group": str})
    for regime in REGIMES:
        for fold in range(1, N_FOLDS + 1):
            table = read_predictions(workdir / _predictions(regime, fold))
            assert list(table.columns) == PREDICTION_COLUMNS
            test_groups = set(folds[(folds["fold"] == fold) & (folds["role"] == "test")]["group"])
            test_ids = set(manifest.index[manifest["group"].isin(test_groups)])
            assert set(table["condition"]) == {"clean", *CONDITIONS}
            for condition, rows in table.groupby("condition"):
                assert set(rows["utt_id"]) == test_ids, (regime, fold, condition)
            assert (table["true"] == manifest.loc[table["utt_id"], "activation_bin"].to_numpy()).all()
            assert set(table["predicted"]) <= {"low", "mid", "high"}
            scores = table[["score_low", "score_mid", "score_high"]].to_numpy()
            assert np.allclose(scores.sum(axis=1), 1, atol=1e-4) and (scores >= 0).all()
            best = np.asarray(["low", "mid", "high"])[scores.argmax(axis=1)]
            assert (best == table["predicted"]).all()


def test_model_folders_are_complete_and_load_with_weights_only(train_run):
    workdir, _, _ = train_run
    sizes = {}
    for regime in REGIMES:
        for fold in range(1, N_FOLDS + 1):
            folder = _model_dir(workdir, regime, fold)
            assert all((folder / name).is_file() for name in MODEL_FILES)
            hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
            assert (hparams["regime"], hparams["fold"], hparams["rep"], hparams["task"]) == (regime, fold, 1, "activation")
            assert hparams["hparams"]["conv_channels"] == 16 and hparams["norm"] == "norm.npz"
            assert 1 <= hparams["best_epoch"] <= hparams["epochs_run"] <= 2
            sizes[(regime, fold)] = (hparams["n_train"], hparams["n_train_clean"], hparams["n_train_augmented"])
            state = torch.load(folder / "model.pt", weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
            load_model(folder / "model.pt", folder / "hparams.yaml")
            curve = pd.read_csv(folder / "curve.csv")
            assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "val_uar"]
            selection = pd.read_csv(folder / "selection.csv")
            assert len(selection) == 1 and selection["selected"].all()
            versions = yaml.safe_load((folder / "versions.yaml").read_text())
            assert versions["device"] == "cpu" and versions["torch"] == torch.__version__
            assert (folder / "curve.png").read_bytes()[:4] == b"\x89PNG"
    for fold in range(1, N_FOLDS + 1):
        n, clean, augmented = sizes[("matched", fold)]
        assert augmented == clean and n == 2 * clean and sizes[("clean", fold)] == (clean, clean, 0)


def test_training_reads_only_train_pool_features(train_run):
    workdir, overlay, targets = train_run
    proc = run_snakemake(workdir, overlay, "-n", *targets, "--forcerun", "train_tdnn")
    blocks = re.findall(r"rule train_tdnn:\n\s+input: ([^\n]+)", proc.stdout)
    assert len(blocks) == len(REGIMES) * N_FOLDS
    features = [p.strip() for block in blocks for p in block.split(",") if "/features/" in p]
    assert any(p.endswith("/train.h5") for p in features)
    assert all(p.endswith("/train.h5") or p.endswith("/clean.h5") for p in features)


def test_rerun_does_nothing(train_run):
    workdir, overlay, targets = train_run
    proc = run_snakemake(workdir, overlay, *targets)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_retraining_gives_identical_files(train_run):
    workdir, overlay, _ = train_run
    folder = _model_dir(workdir, "matched", 1)
    files = [folder / n for n in ("model.pt", "norm.npz", "hparams.yaml", "curve.csv", "selection.csv")]
    files.append(workdir / _predictions("matched", 1))
    before = [f.read_bytes() for f in files]
    proc = run_snakemake(workdir, overlay, _predictions("matched", 1), "--forcerun", "train_tdnn")
    assert re.search(r"^train_tdnn\s+1$", proc.stdout + proc.stderr, flags=re.M)  # it did train again
    assert [f.read_bytes() for f in files] == before
