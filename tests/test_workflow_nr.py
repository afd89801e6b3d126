"""T-DNN-NR end to end at tiny scale (RAVDESS actors 01-06 of ../shared/data): RNNoise over every
dataset -> denoised features -> training and prediction -> Table 4; plus a one-point sweep."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from sernoise.audio_store import AudioStore
from sernoise.corpora.manifest import read_manifest
from sernoise.hdf5_codecs import describe
from workflow_helpers import (
    TINY_CONDITIONS,
    TINY_FOLDS,
    assert_feature_archives_hold_the_ok_utterances,
    module_run,
    run_snakemake,
    tiny_training_overlay,
)

pytestmark = pytest.mark.workflow

pytest.importorskip("pyrnnoise", reason="pyrnnoise is not installed (pip install pyrnnoise==0.4.3 ...)")

CONDITIONS = TINY_CONDITIONS
N_FOLDS = TINY_FOLDS
TARGETS = [f"results/ravdess/tables/table4.{ext}" for ext in ("csv", "md", "tex", "html")] + [
    "results/ravdess/tables/sweep.csv", "results/ravdess/tables/sweep.md", "results/ravdess/plots/sweep.png"]


def _overlay(ravdess_root, noise_root) -> dict:
    # the T-DNN-NR alone (no T-DNN, no E-DNN), and its sweep at one point
    overlay = tiny_training_overlay(ravdess_root, noise_root, models=["tdnn_nr"], regimes=["clean", "matched"],
                                    threads=1, sweep={"model": "tdnn_nr", "fractions": [50]})
    # replaces the demo's denoise section as a whole: every condition is denoised (config.yaml's default)
    overlay["denoise"] = {"quality": {"stoi": True, "pesq": False, "dnsmos": False, "pools": ["test"], "clean": False}}
    # gzip instead of the default bitshuffle-LZ4: every stage that writes HDF5 must follow the config
    overlay["prepare"] = {"compression": "gzip"}
    return overlay


# RNNoise runs at ~25x real time per core: five datasets of 360 utterances take ~5 min of CPU
nr_run = module_run("nr_run", _overlay, *TARGETS, timeout=2400)


def test_every_dataset_is_denoised_with_its_length(nr_run):
    workdir, _ = nr_run
    results = workdir / "results/ravdess"
    manifest = read_manifest(results / "manifest.csv")
    clean = AudioStore.from_index(results / "audio/index.csv")
    denoised_clean = AudioStore.from_index(results / "denoised/clean/index.csv")
    assert set(denoised_clean.utt_ids) == set(manifest["utt_id"])
    for u in manifest["utt_id"][:20]:
        assert denoised_clean.read(u).shape == clean.read(u).shape
    for condition in CONDITIONS:
        for pool in ("train", "test"):
            folder = results / f"denoised/{condition}/{pool}"
            augmented = results / f"augmented/{condition}/{pool}"  # per-shard files: denoising reads those
            source = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False)
                                for p in sorted(augmented.glob("params-*.csv"))], ignore_index=True)
            params = pd.read_csv(folder / "params.csv")
            assert list(params["utt_id"]) == sorted(source["utt_id"])
            assert list(params["status"]) == list(source.sort_values("utt_id")["status"])
            status = json.loads((folder / "status.json").read_text())
            assert not status["skipped"] and status["n_ok"] == int((params["status"] == "ok").sum())
            assert "RNNoise" in status["denoiser"] and status["denoise"]["delay_compensated"] == 960
            ok = params[params["status"] == "ok"]
            noisy = AudioStore(sorted(augmented.glob("shard-*.h5")))
            store = AudioStore.from_index(folder / "index.csv")
            for u in ok["utt_id"][:10]:
                assert store.read(u).shape == noisy.read(u).shape
            additive = condition.startswith("env-")
            assert ok["snr_before"].notna().all() == additive and ok["snr_after"].notna().all() == additive
            if additive:
                assert ok["snr_before"].between(9, 11).mean() > 0.9  # 10 dB over the noise span
            assert ok["stoi_after"].notna().all() == (pool == "test")
            # config.yaml's fwSNRseg (DNSMOS off in the overlay): test pool only, before and after
            assert ("fwsnrseg_after" in params) == (pool == "test") and "dnsmos_ovrl_after" not in params
            if pool == "test":
                assert ok[["fwsnrseg_before", "fwsnrseg_after"]].notna().all().all()
            assert np.isfinite(ok["vad_mean"]).all()


def test_features_come_from_the_denoised_audio_only(nr_run):
    workdir, _ = nr_run
    results = workdir / "results/ravdess"
    assert_feature_archives_hold_the_ok_utterances(results, CONDITIONS, audio="denoised", features="features/denoised")
    # only tdnn_nr is configured: no feature of the raw audio was ever needed
    assert not (results / "features/clean.h5").exists()
    assert not any((results / "features").glob(f"{CONDITIONS[0]}/*.h5"))
    hparams = yaml.safe_load((results / "models/tdnn_nr/matched/fold1/rep1/activation/hparams.yaml").read_text())
    assert hparams["model"] == "tdnn_nr" and hparams["n_train_augmented"] == hparams["n_train_clean"]
    sweep = yaml.safe_load((results / "models/tdnn_nr/fraction-50/fold1/rep1/activation/hparams.yaml").read_text())
    assert sweep["regime_kind"] == "fraction"
    assert sweep["n_train_augmented"] == int(np.floor(0.5 * sweep["n_train_clean"] + 0.5))


def test_every_shard_and_archive_has_the_configured_codec(nr_run):
    workdir, _ = nr_run
    results = workdir / "results/ravdess"
    files = {"audio": sorted((results / "audio").glob("shard-*.h5")),
             "augmented": sorted((results / "augmented").glob("*/*/shard-*.h5")),
             "denoised": sorted((results / "denoised").glob("*/*/shard-*.h5"))
             + sorted((results / "denoised/clean").glob("shard-*.h5")),
             "features": [p for p in (results / "features").rglob("*.h5") if p.stat().st_size > 4096]}
    for stage, paths in files.items():
        assert paths, stage
        for path in paths:
            with h5py.File(path, "r") as f:
                dataset = f["samples"] if "samples" in f else f["features"]
                assert describe(dataset) == "gzip", path


def test_table4_and_sweep(nr_run):
    workdir, _ = nr_run
    table = pd.read_csv(workdir / "results/ravdess/tables/table4.csv")
    assert set(table["model"]) == {"tdnn_nr", "ednn_nr"}
    assert (table.loc[table["model"] == "ednn_nr", "value"] == "–").all()
    nr = table[table["model"] == "tdnn_nr"]
    assert nr.loc[(nr["row_key"] == "clean") & (nr["column"] == "clean"), "mean"].between(0, 1).all()
    assert nr.loc[(nr["row_key"] == "env-nat-cont-snr10") & (nr["column"] == "match"), "n_pairs"].eq(N_FOLDS).all()
    md = (workdir / "results/ravdess/tables/table4.md").read_text()
    assert md.startswith("Table 4:") and "NR-T-DNN" in md and "NR-E-DNN" in md
    assert "<title>Table 4</title>" in (workdir / "results/ravdess/tables/table4.html").read_text()
    sweep = pd.read_csv(workdir / "results/ravdess/tables/sweep.csv")
    assert sorted(sweep["fraction"].unique()) == [0, 50] and (sweep["n_pairs"] == N_FOLDS).all()
    assert (workdir / "results/ravdess/plots/sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_does_nothing(nr_run):
    workdir, overlay = nr_run
    proc = run_snakemake(workdir, overlay, *TARGETS, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
