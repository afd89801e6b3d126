"""MetricAug end to end at tiny scale (`snakemake metricaug`): RAVDESS actors 01-06 of ../shared/data,
3 folds, the emotion4 task, a superset of natural noise at 0/10/20/30 dB, a one-point head of at
most 3 epochs.  Checks the table (every method x test set filled, the caption's filterbank note),
the noisy sets (SNR measured, noise pools, the held-out category), the levels, the weights of a
MetricAug model and that a superset shard is rebuilt byte for byte."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from sernoise.metricaug.names import methods, table_columns
from workflow_helpers import module_run, run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

RESULTS = "results/ravdess"
METRICAUG = {"categories": ["nat"], "unseen_category": "int", "superset": {"snr_db": [0, 30, 10]},
             "hidden": [8], "max_epochs": 3, "patience": 2, "max_frames": 200, "val_items_per_level": 40}


def tiny_metricaug_overlay(ravdess_root, noise_root) -> dict:
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2, 3, 4, 5, 6]}
    overlay["folds"] = {"n_folds": 3}
    overlay["align"] = {"enabled": False}  # MetricAug needs no word alignments
    overlay["training"] = {"device": "cpu"}
    overlay["metricaug"] = METRICAUG
    return overlay


metricaug_run = module_run("metricaug_run", tiny_metricaug_overlay, "metricaug", "--cores", "1", timeout=3000)


def _section(overlay) -> dict:
    """The run's ``metricaug`` section with the schema's defaults (config.yaml + the overlay)."""
    import copy

    import yaml

    from sernoise.config import deep_update, validate_config
    from workflow_helpers import REPO

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    deep_update(config, copy.deepcopy(overlay))
    return validate_config(config, REPO / "schemas" / "config.schema.yaml")["metricaug"]


def test_table_fills_every_method_and_test_set(metricaug_run):
    workdir, overlay = metricaug_run
    section = _section(overlay)
    cells = pd.read_csv(workdir / RESULTS / "tables" / "metricaug.csv")
    assert sorted(cells["method"].unique()) == sorted(methods(section))
    assert len(methods(section)) == 9  # None, Fixed SNR, CopyPaste, 3 metrics x 2 level methods
    assert sorted(cells["test_set"].unique()) == sorted(table_columns(section))
    assert len(cells) == 9 * len(table_columns(section))
    assert cells["wf1_mean"].between(0, 1).all() and (cells["runs"] == 3).all()
    assert cells.loc[cells["method"] == "none", "p_vs_none"].isna().all()
    assert cells.loc[cells["method"] != "none", "n_pairs_vs_none"].eq(3).all()
    md = (workdir / RESULTS / "tables" / "metricaug.md").read_text()
    tex = (workdir / RESULTS / "tables" / "metricaug.tex").read_text()
    for text in (md, tex):
        assert "filterbanks" in text and "vq-wav2vec" in text
        assert "MetricAug STOI (GMM)" in text and "CopyPaste" in text
    table3 = pd.read_csv(workdir / RESULTS / "tables" / "metricaug_levels.csv")
    assert table3["level"].tolist() == [1, 2, 3, 4, 5]
    assert sorted(c for c in table3.columns if c != "level") == ["fwsnrseg", "pesq", "stoi"]


def _bank(workdir):
    bank = pd.read_csv(workdir / "results" / "noise" / "shared" / "bank.csv")
    return dict(zip("shared:" + bank["file"], bank["split"])), dict(zip("shared:" + bank["file"], bank["category"]))


def _params(workdir, name):
    return pd.concat([pd.read_csv(p) for p in sorted((workdir / RESULTS / "metricaug" / name).glob("params-*.csv"))],
                     ignore_index=True)


def test_noisy_sets_measure_their_snr_and_keep_the_pools_apart(metricaug_run):
    workdir, _ = metricaug_run
    split, category = _bank(workdir)
    superset = _params(workdir, "superset")
    ok = superset[superset["status"] == "ok"]
    assert len(ok) >= 0.95 * len(superset)
    assert sorted(ok["snr_target"].unique()) == [0.0, 10.0, 20.0, 30.0]
    assert np.abs(ok["snr_measured"] - ok["snr_target"]).max() < 0.5
    assert ok[["stoi", "pesq", "fwsnrseg"]].notna().mean().min() > 0.95
    # less noise, better metrics
    means = ok.groupby("snr_target")[["stoi", "pesq", "fwsnrseg"]].mean()
    assert (means.diff().dropna() > 0).all().all()
    for name, pool in (("superset", "train"), ("fixed", "train"), ("test", "test"), ("unseen", "test")):
        frame = _params(workdir, name)
        frame = frame[frame["status"] == "ok"]
        assert {split[k] for k in frame["p_noise_file"]} == {pool}, name
        expected = {"int"} if name == "unseen" else {"nat"}
        assert {category[k] for k in frame["p_noise_file"]} == expected, name
    unseen = _params(workdir, "unseen")
    assert unseen["snr_target"].between(0, 30).all() and unseen["snr_target"].nunique() > 10


def test_levels_cover_the_fold_and_weights_follow_algorithm1(metricaug_run):
    workdir, overlay = metricaug_run
    section = _section(overlay)
    for fold in (1, 2, 3):
        levels = pd.read_csv(workdir / RESULTS / "metricaug" / "levels" / f"fold{fold}.csv")
        summary = json.loads((workdir / RESULTS / "metricaug" / "levels" / f"fold{fold}.json").read_text())
        assert set(levels["role"]) == {"train", "val"}
        assert len(summary["levels"]) == 6
        for entry in summary["levels"]:
            column = levels[f"level_{entry['metric']}_{entry['method']}"]
            assert entry["counts"] == [int((column == k).sum()) for k in range(1, 6)]
            means = [levels.loc[column == k, entry["metric"]].mean() for k in range(1, 6)]
            assert means == sorted(means, reverse=True)  # level 1: least distorted
        assert (workdir / RESULTS / "metricaug" / "levels" / f"fold{fold}.png").stat().st_size > 0
    folder = workdir / RESULTS / "metricaug" / "models" / "metricaug-stoi-gmm" / "fold1" / "rep1"
    weights = pd.read_csv(folder / "weights.csv")
    w = weights[[f"weight_level{k}" for k in range(1, 6)]].to_numpy()
    assert np.allclose(w[0], 0.2)
    assert np.allclose(w.sum(axis=1), 1.0) and (w >= section["floor"] - 1e-9).all()
    drawn = weights[[f"drawn_level{k}" for k in range(1, 6)]].sum(axis=1)
    hparams = (folder / "hparams.yaml").read_text()
    assert "clean_training_examples" in hparams
    assert drawn.nunique() == 1  # N items every epoch
    assert (folder / "weights.png").stat().st_size > 0


def test_a_superset_shard_is_rebuilt_byte_for_byte(metricaug_run, tmp_path):
    workdir, overlay = metricaug_run
    target = f"{RESULTS}/metricaug/superset/params-001.csv"
    files = [workdir / target, workdir / f"{RESULTS}/metricaug/superset/features-001.h5"]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    run_snakemake(workdir, overlay, target, "--force", "--cores", "1", "--allowed-rules", "metricaug_noisy_shard")
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] == before


def test_a_metricaug_training_is_rebuilt_byte_for_byte(metricaug_run):
    workdir, overlay = metricaug_run
    folder = f"{RESULTS}/metricaug/models/metricaug-stoi-gmm/fold1/rep1"
    files = [workdir / folder / name for name in ("model.pt", "weights.csv", "predictions.csv")]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    run_snakemake(workdir, overlay, f"{folder}/predictions.csv", "--force", "--cores", "1",
                  "--allowed-rules", "metricaug_train_metricaug")
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] == before


def test_metricaug_model_trains_another_registered_family(metricaug_run, tmp_path):
    """metricaug.model: tdnn: one MetricAug method's training job, on the same superset and levels,
    trains the T-DNN (its grid from tdnn.grid) under Algorithm 1 and tests it like the head."""
    import shutil

    import yaml

    workdir, overlay = metricaug_run
    copy = tmp_path / "work"
    shutil.copytree(workdir / "results", copy / "results")
    overlay = {**overlay, "metricaug": {**overlay["metricaug"], "model": "tdnn"},
               "tdnn": {"grid": {"conv_channels": [8], "conv_layers": [1], "pool_width": [4], "gru_units": [8]}}}
    folder = f"{RESULTS}/metricaug/models/metricaug-stoi-gmm/fold1/rep1"
    run_snakemake(copy, overlay, f"{folder}/predictions.csv", "--force", "--cores", "1", "--rerun-triggers", "mtime",
                  "--allowed-rules", "metricaug_train_metricaug")
    hparams = yaml.safe_load((copy / folder / "hparams.yaml").read_text())
    assert hparams["model"] == "tdnn" and hparams["optimizer"] == "RMSprop"
    assert hparams["hparams"]["conv_channels"] == 8 and hparams["strategy"]["name"] == "metricaug"
    weights = pd.read_csv(copy / folder / "weights.csv")
    assert len(weights) == hparams["epochs_run"] and np.allclose(weights.filter(like="weight_level").sum(axis=1), 1)
    predictions = pd.read_csv(copy / folder / "predictions.csv")
    assert set(predictions["test_set"]) == set(pd.read_csv(workdir / folder / "predictions.csv")["test_set"])
