"""Features -> training -> predictions end to end, at tiny scale on RAVDESS actors 01-06 of ../shared/data."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil

import pandas as pd
import pytest
import torch
import yaml

from sernoise.training.predict import load_model
import workflow_helpers as wf

pytestmark = pytest.mark.workflow

CONDITIONS = wf.TINY_CONDITIONS
REGIMES = ["clean", "matched"]
N_FOLDS = wf.TINY_FOLDS
MODEL_FILES = ["model.pt", "hparams.yaml", "norm.npz", "curve.csv", "curve.png", "selection.csv", "versions.yaml"]


def _overlay(ravdess_root, noise_root) -> dict:
    return wf.tiny_training_overlay(ravdess_root, noise_root, models=["tdnn"], regimes=REGIMES)


_predictions = functools.partial(wf.predictions_path, "tdnn")  # (regime, fold) -> path
_model_dir = functools.partial(wf.model_dir, "tdnn")  # (workdir, regime, fold) -> folder

TARGETS = [_predictions(r, f) for r in REGIMES for f in range(1, N_FOLDS + 1)]
train_run = wf.module_run("train_run", _overlay, *TARGETS)


def test_feature_archives_hold_the_ok_utterances(train_run):
    workdir, _ = train_run
    wf.assert_feature_archives_hold_the_ok_utterances(workdir / "results/ravdess", CONDITIONS)


def test_predictions_cover_the_test_role_in_every_condition(train_run):
    workdir, _ = train_run
    wf.assert_predictions_cover_the_test_role(workdir, "tdnn", REGIMES, CONDITIONS, N_FOLDS)


def test_model_folders_are_complete_and_load_with_weights_only(train_run):
    workdir, _ = train_run
    folders = wf.check_model_folders(workdir, "tdnn", REGIMES, N_FOLDS, MODEL_FILES)
    # Common random numbers: one seed per (fold, rep, task), whatever the regime.
    seeds = {(regime, fold): hparams["seed"] for (regime, fold), (_, hparams, _) in folders.items()}
    for fold in range(1, N_FOLDS + 1):
        assert len({seeds[(regime, fold)] for regime in REGIMES}) == 1
    assert len({seeds[(REGIMES[0], fold)] for fold in range(1, N_FOLDS + 1)}) == N_FOLDS
    for folder, hparams, _ in folders.values():
        assert hparams["hparams"]["conv_channels"] == 16 and hparams["norm"] == "norm.npz"
        assert 1 <= hparams["best_epoch"] <= hparams["epochs_run"] <= 2
        load_model(folder / "model.pt", folder / "hparams.yaml")
        curve = pd.read_csv(folder / "curve.csv")
        assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "val_uar"]
        selection = pd.read_csv(folder / "selection.csv")
        assert len(selection) == 1 and selection["selected"].all()
        versions = yaml.safe_load((folder / "versions.yaml").read_text())
        assert versions["device"] == "cpu" and versions["torch"] == torch.__version__
        assert (folder / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_training_reads_only_train_pool_features(train_run):
    workdir, overlay = train_run
    proc = wf.run_snakemake(workdir, overlay, "-n", *TARGETS, "--forcerun", "train_model")
    blocks = re.findall(r"rule train_model:\n\s+input: ([^\n]+)", proc.stdout)
    assert len(blocks) == len(REGIMES) * N_FOLDS
    inputs = [p.strip() for block in blocks for p in block.split(",")]
    assert all(p.endswith("/clean.h5") for p in inputs if p.startswith("results/ravdess/features/"))
    # the condition datasets come through the regime's dataset list (rule list_datasets)
    lists = {p for p in inputs if "/datasets/" in p}
    assert lists == {f"results/ravdess/datasets/features/train-{regime}.json" for regime in REGIMES}
    features = [d["file"] for path in lists for d in json.loads((workdir / path).read_text())["datasets"]]
    assert features and all(p.endswith("/train.h5") for p in features)


def test_rerun_does_nothing(train_run):
    workdir, overlay = train_run
    proc = wf.run_snakemake(workdir, overlay, *TARGETS)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_retraining_gives_identical_files(train_run):
    workdir, overlay = train_run
    folder = _model_dir(workdir, "matched", 1)
    files = [folder / n for n in ("model.pt", "norm.npz", "hparams.yaml", "curve.csv", "selection.csv")]
    files.append(workdir / _predictions("matched", 1))
    before = [f.read_bytes() for f in files]
    proc = wf.run_snakemake(workdir, overlay, _predictions("matched", 1), "--forcerun", "train_model")
    assert re.search(r"^train_model\s+1$", proc.stdout + proc.stderr, flags=re.M)  # it did train again
    assert [f.read_bytes() for f in files] == before


def test_study_responses_move_a_condition_out_of_the_matched_regime(train_run, tmp_path):
    """Responses that judge env-nat-cont-snr10 perception-altering (the config says retaining) rebuild
    the partition from Table 2 and retrain the matched model without it; the clean model stays."""
    from sernoise.perception.export import read_key
    from sernoise.perception.simulate import simulate_responses

    workdir, overlay = train_run
    study = tmp_path / "study"
    shutil.copytree(workdir, study, symlinks=True)  # copy2 keeps mtimes: nothing else is out of date
    overlay = copy.deepcopy(overlay)
    overlay["perception"] = {"n_per_bin": 4, "n_extreme": 1, "n_environmental": 1, "n_distortion": 1,
                             "batch_size": 6, "workers_per_pair": 3}
    wf.run_snakemake(study, overlay, "results/ravdess/perception/export/key.csv")
    export = study / "results/ravdess/perception/export"
    tasks = pd.read_csv(export / "tasks.csv", dtype={"pair_id": str, "kind": str}, keep_default_na=False)
    key = read_key(export / "key.csv")
    assert set(key["condition"].dropna()) >= set(CONDITIONS)
    responses, _ = simulate_responses(tasks, key, true_change={"env-nat-cont-snr10": (0.9, 0.9, 1.5, 1.5)},
                                      n_workers=6, bad_worker_fraction=0.0, error_rate=0.0, seed=5)
    responses.to_csv(tmp_path / "responses.csv", index=False)
    overlay["perception"]["responses"] = str(tmp_path / "responses.csv")

    clean_model = _model_dir(study, "clean", 1) / "model.pt"
    clean_mtime = clean_model.stat().st_mtime_ns
    matched = _model_dir(study, "matched", 1)
    assert yaml.safe_load((matched / "hparams.yaml").read_text())["regime_conditions"] == CONDITIONS
    wf.run_snakemake(study, overlay, _predictions("matched", 1), _predictions("clean", 1))

    partition = pd.read_csv(study / "results/ravdess/perception/partition.csv").set_index("condition")
    assert set(partition["source"]) == {"study"}
    assert partition.at["env-nat-cont-snr10", "perception"] == "altering"
    assert partition.at["fade-in", "perception"] == "retaining"
    assert yaml.safe_load((matched / "hparams.yaml").read_text())["regime_conditions"] == ["fade-in"]
    assert clean_model.stat().st_mtime_ns == clean_mtime  # the clean regime does not read the partition
