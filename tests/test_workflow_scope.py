"""Narrowing the design on a budget: training.model_regimes (fewer regimes for one model) and
denoise.conditions (the T-DNN-NR arm on a subset of conditions), as the demo uses them."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from sernoise.features import FeatureArchive
from workflow_helpers import run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

N_FOLDS = 3


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2, 3, 4, 5, 6]}
    overlay["folds"] = {"n_folds": N_FOLDS}
    overlay["augment"] = {"conditions": ["env-nat-cont-snr10", "fade-in", "reverb"],
                          "quality": {"stoi": False, "pesq": False, "dnsmos": False, "fwsnrseg": False}}
    overlay["noise_types"] = {"nat": ["env-nat-cont-snr10"], "fade": ["fade-in"], "reverb": ["reverb"]}
    overlay["training"] = {"models": ["tdnn", "tdnn_nr"], "regimes": ["clean", "matched", "mismatched"],
                           "model_regimes": {"tdnn_nr": ["clean", "matched"]},
                           "tasks": ["activation", "valence"], "repetitions": 1, "sweep": {"fractions": []}}
    overlay["denoise"] = {"conditions": ["env-nat-cont-snr10"],
                          "quality": {"stoi": False, "pesq": False, "dnsmos": False, "fwsnrseg": False}}
    overlay["attack"] = {"models": []}
    return overlay


def _job_counts(stdout: str) -> dict[str, int]:
    """Job stats table of a dry run -> {rule: count}."""
    counts = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"\s*([a-z_0-9]+)\s+(\d+)\s*", line)
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts


def test_model_regimes_narrow_one_model_only(tmp_path, ravdess_root, noise_root):
    overlay = _overlay(ravdess_root, noise_root)
    proc = run_snakemake(tmp_path, overlay, "-n", "results/ravdess/tables/table4.csv", "results/ravdess/tables/table3.csv")
    counts = _job_counts(proc.stdout)
    # tdnn: clean + matched + mismatched-{nat,fade,reverb} = 5 regimes; tdnn_nr: clean + matched
    per_regime = N_FOLDS  # folds x 1 repetition: one training job trains both tasks, one prediction job scores them
    assert counts["train_model"] == (5 + 2) * per_regime
    assert counts["predict_model"] == (5 + 2) * per_regime
    assert "train_model" in proc.stdout and "mismatched-nat" in proc.stdout
    assert not re.search(r"models/tdnn_nr/mismatched", proc.stdout)


def test_conditions_outside_denoise_scope_are_not_denoised_for_the_arm(tmp_path, ravdess_root, noise_root):
    overlay = _overlay(ravdess_root, noise_root)
    proc = run_snakemake(tmp_path, overlay, "-n", "results/ravdess/tables/table4.csv")
    counts = _job_counts(proc.stdout)
    # only env-nat-cont-snr10 is denoised (both pools); fade-in and reverb share one empty archive
    assert "results/ravdess/denoised/env-nat-cont-snr10/train/" in proc.stdout
    assert "results/ravdess/denoised/env-nat-cont-snr10/test/" in proc.stdout
    assert not re.search(r"results/ravdess/(features/)?denoised/(fade-in|reverb)", proc.stdout)
    assert counts["merge_denoised"] == 2 and counts["extract_denoised_features"] == 2
    assert counts["outside_denoise_scope_features"] == 1
    assert "results/ravdess/features/denoised/outside_denoise_conditions.h5" in proc.stdout


def test_unknown_regime_kind_in_model_regimes_fails_before_any_job(tmp_path, ravdess_root, noise_root):
    overlay = _overlay(ravdess_root, noise_root)
    overlay["training"]["model_regimes"] = {"tdnn_nr": ["clean", "all"]}
    proc = run_snakemake(tmp_path, overlay, "-n", check=False)
    assert proc.returncode != 0
    assert "training.model_regimes.tdnn_nr: regime 'all' is not in training.regimes" in proc.stdout + proc.stderr


def test_conditions_outside_denoise_scope_are_skipped_datasets(tmp_path, ravdess_root, noise_root):
    # nothing of the arms asks for them (above); asked for by name, they are written empty with status skipped
    overlay = _overlay(ravdess_root, noise_root)
    targets = ["results/ravdess/features/denoised/fade-in/test.h5",
               "results/ravdess/denoised/fade-in/train/status.json"]
    run_snakemake(tmp_path, overlay, *targets, timeout=1800)
    results = tmp_path / "results/ravdess"
    for pool in ("train", "test"):
        status = json.loads((results / f"denoised/fade-in/{pool}/status.json").read_text())
        assert status["skipped"] is True
        assert "outside denoise.conditions" in status["reason"]
        params = pd.read_csv(results / f"denoised/fade-in/{pool}/params.csv")
        assert len(params) > 0 and set(params["status"]) == {"skipped"}
    assert len(FeatureArchive(results / "features/denoised/fade-in/test.h5")) == 0
    # the augmented dataset itself is untouched: the raw-audio models still use it
    for shard_status in sorted((results / "augmented/fade-in/test").glob("status-*.json")):
        assert json.loads(shard_status.read_text())["skipped"] is False
