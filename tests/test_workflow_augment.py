"""The augmentation stage end to end: a few conditions on two RAVDESS actors of ../shared/data."""

from __future__ import annotations

import filecmp
import json
import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from sernoise.audio_store import AudioStore
from sernoise.augmented_io import PARAM_COLUMNS, load_params
from workflow_helpers import REPO, SNAKEMAKE, module_run, run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

CONDITIONS = ["env-nat-cont-snr10", "fade-in", "drop-word", "speed-utt-1.25", "laugh"]
POOLS = ["train", "test"]
N_UTTERANCES = 120  # RAVDESS actors 01 and 02


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2]}
    # config.yaml's quality measures, but DNSMOS (~2 s of CPU per utterance; tests/test_quality.py tests it)
    overlay["augment"] = {"conditions": CONDITIONS, "quality": {"dnsmos": False}}
    return overlay


def _targets() -> list[str]:
    return [f"results/ravdess/augmented/{c}/{p}/params.csv" for c in CONDITIONS for p in POOLS] + [
        "results/ravdess/augmented/gallery.png"
    ]


def _folder(workdir, condition, pool):
    return workdir / "results/ravdess/augmented" / condition / pool


augment_run = module_run("augment_run", _overlay, *_targets())


def test_every_condition_and_pool_is_a_dataset(augment_run):
    workdir, _ = augment_run
    for condition in CONDITIONS:
        for pool in POOLS:
            folder = _folder(workdir, condition, pool)
            status = json.loads((folder / "status.json").read_text())
            assert status["condition"] == condition and status["pool"] == pool
            params = load_params(folder / "params.csv")
            assert list(params.columns[: len(PARAM_COLUMNS)]) == PARAM_COLUMNS
            store = AudioStore.from_index(folder / "index.csv")
            assert len(store) == status["n_ok"]
            assert not status["skipped"] and status["n_ok"] + status["n_skipped"] == N_UTTERANCES
            assert len(params) == N_UTTERANCES and params["utt_id"].is_monotonic_increasing
            assert set(params.loc[params["status"] == "ok", "utt_id"]) == set(store.utt_ids)
            assert (params["condition"] == condition).all() and (params["pool"] == pool).all()


def test_drop_word_runs_on_ravdess_with_forced_alignments(augment_run):
    # RAVDESS ships no alignments: rule align_shard makes them (PocketSphinx), and the manifest
    # points to them, so drop-word is built (it was skipped for the corpus before).
    workdir, _ = augment_run
    failures = pd.read_csv(workdir / "results/ravdess/alignments/failures.csv")
    manifest = pd.read_csv(workdir / "results/ravdess/manifest.csv", keep_default_na=False)
    assert (manifest["alignment"] != "").sum() == N_UTTERANCES - len(failures)
    for pool in POOLS:
        folder = _folder(workdir, "drop-word", pool)
        status = json.loads((folder / "status.json").read_text())
        assert status["skipped"] is False and status["reason"] is None
        assert status["n_ok"] >= N_UTTERANCES - len(failures) - 5  # a few may have nothing to drop
        params = load_params(folder / "params.csv")
        dropped = params.loc[params["status"] == "ok", "p_dropped_words"].astype(str)
        assert set(";".join(dropped).split(";")) <= {"the", ""}  # the statements' only drop-word


def test_snr_quality_and_noise_pools(augment_run):
    workdir, _ = augment_run
    bank = pd.read_csv(workdir / "results/noise/shared/bank.csv")
    split_of = dict(zip("shared:" + bank["file"], bank["split"]))
    for pool in POOLS:
        env = load_params(_folder(workdir, "env-nat-cont-snr10", pool) / "params.csv")
        assert (env["snr_measured"] - 10).abs().max() < 0.1  # SPEC §11
        # against the P.56 active level by default (snr.reference); RAVDESS is about half silence
        assert (env["snr_reference"] == "active").all() and env["snr_measured"].equals(env["snr_measured_active"])
        assert (env["speech_level_active_db"] - env["speech_level_whole_db"]).between(1, 6).all()
        assert {split_of[k] for k in env["p_noise_file"]} == {pool}  # no test noise in training data
        has_quality = pool == "test"  # config: augment.quality.pools = [test]
        assert env["stoi"].notna().all() == has_quality and env["pesq"].notna().all() == has_quality
        assert ("fwsnrseg" in env) == has_quality and not {"dnsmos_ovrl", "dnsmos_sig"} & set(env.columns)
        if has_quality:  # 10 dB of natural noise: well below the ceiling of 35 dB, above the floor
            assert env["fwsnrseg"].between(-10, 30).all() and env["fwsnrseg"].notna().all()
        laugh = load_params(_folder(workdir, "laugh", pool) / "params.csv")
        assert {split_of[k] for k in laugh["p_clip_file"]} == {pool}
    fade = load_params(_folder(workdir, "fade-in", "test") / "params.csv")
    assert fade["snr_measured"].notna().all() and fade["snr_target"].isna().all()
    speed = load_params(_folder(workdir, "speed-utt-1.25", "test") / "params.csv")
    assert speed["snr_measured"].isna().all() and speed["stoi"].isna().all() and speed["pesq"].isna().all()
    assert speed["fwsnrseg"].isna().all()  # lengths differ
    assert np.allclose(speed["duration_out"] / speed["duration_in"], 0.8, atol=0.01)
    assert set(speed["perception"]) == {"altering"} and set(fade["perception"]) == {"retaining"}


def test_gallery_is_a_png(augment_run):
    workdir, _ = augment_run
    png = workdir / "results/ravdess/augmented/gallery.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_rerun_does_nothing(augment_run):
    workdir, overlay = augment_run
    proc = run_snakemake(workdir, overlay, *_targets())
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_one_job_alone_gives_the_same_bytes(augment_run, tmp_path):
    workdir, overlay = augment_run
    folder = "results/ravdess/augmented/env-nat-cont-snr10/test"
    targets = [f"{folder}/shard-000.h5", f"{folder}/params-000.csv", f"{folder}/status-000.json"]
    run_snakemake(tmp_path, overlay, *targets)
    for target in targets:
        assert filecmp.cmp(workdir / target, tmp_path / target, shallow=False), target


def test_default_config_dry_run_lists_the_augment_jobs():
    proc = subprocess.run([SNAKEMAKE, "-n"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    # 26 conditions x 2 pools x 4 RAVDESS shards, merged per (condition, pool).
    assert counts["augment_shard"] == str(26 * 2 * 4) and counts["merge_augmented"] == str(26 * 2)
    assert counts["build_fillers"] == "1" and counts["augment_gallery"] == "1"


@pytest.mark.parametrize(
    "overlay, expected",
    [
        ({"conditions": {"fade-in": {"type": "fade", "direction": "sideways"}}}, "conditions.fade-in"),
        ({"conditions": {"fade-in": {"type": "fade", "direction": "in", "speed": 2}}}, "conditions.fade-in"),
        ({"conditions": {"env-nat-cont-snr10": {"type": "env", "category": "nat", "position": "cont", "snr_db": 99}}},
         "conditions.env-nat-cont-snr10"),
        ({"conditions": {"Bad_Id": {"type": "fade", "direction": "in"}}}, "conditions"),
        ({"conditions": {"x": {"type": "nosuchtype"}}}, "conditions.x.type"),
        ({"augment": {"conditions": ["nosuchcondition"]}}, "augment.conditions[0]"),
        ({"augment": {"quality": {"pools": ["dev"]}}}, "augment.quality.pools[0]"),
    ],
)
def test_bad_condition_config_fails_before_any_job(tmp_path, overlay, expected):
    proc = run_snakemake(tmp_path, overlay, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid configuration" in out and expected in out, out[-2000:]
    assert not (tmp_path / "results").exists()
