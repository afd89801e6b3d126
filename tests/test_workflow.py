"""End-to-end tests of the Snakemake workflow on tiny configs.

Each test runs the real `snakemake` of the virtual environment in a temporary working
directory, with `config.yaml` plus an overlay, the way a user runs it (tests/workflow_helpers.py;
its run_snakemake and shared_overlay are also importable from here, as other tests do).
"""

from __future__ import annotations

import filecmp
import functools
import hashlib
import http.server
import subprocess
import threading
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.audio_store import AudioStore
from sernoise.corpora.manifest import MANIFEST_COLUMNS, read_manifest
from sernoise.folds import check_folds
from sernoise.hdf5_codecs import describe
from sernoise.noise.bank import BANK_COLUMNS
from workflow_helpers import REPO, SNAKEMAKE, module_run, run_snakemake, shared_overlay

pytestmark = pytest.mark.workflow

SHARED_TARGETS = [
    "results/ravdess/manifest.csv",
    "results/ravdess/folds.csv",
    "results/ravdess/rejects.csv",
    "results/noise/shared/bank.csv",
]

shared_run = module_run("shared_run", shared_overlay, *SHARED_TARGETS)


def test_shared_data_manifest_and_folds(shared_run):
    workdir, _ = shared_run
    with open(workdir / "results/ravdess/manifest.csv") as handle:
        assert handle.readline().strip().split(",") == MANIFEST_COLUMNS
    manifest = read_manifest(workdir / "results/ravdess/manifest.csv")
    assert len(manifest) == 600
    assert manifest["speaker"].nunique() == 10
    assert (manifest["sample_rate"] == 16000).all()
    assert manifest["duration"].between(2.0, 6.0).all()
    folds = pd.read_csv(workdir / "results/ravdess/folds.csv")
    assert list(folds.columns) == ["fold", "group", "role"]
    assert folds["fold"].nunique() == 5
    check_folds(manifest, folds)
    rejects = pd.read_csv(workdir / "results/ravdess/rejects.csv")
    assert list(rejects.columns) == ["path", "reason"] and rejects.empty


def test_prepared_audio_is_the_source_audio(shared_run, ravdess_root):
    workdir, _ = shared_run
    store = AudioStore.from_index(workdir / "results/ravdess/audio/index.csv")
    assert len(store) == 600
    for utt_id in ["03-01-01-01-01-01-01", "03-01-05-02-02-02-10"]:
        actor = utt_id.split("-")[-1]
        source, sr = sf.read(ravdess_root / f"Actor_{actor}" / f"{utt_id}.wav", dtype="float32")
        assert sr == 16000
        assert np.array_equal(store.read(utt_id), source)


def test_shards_are_written_with_the_default_codec(shared_run):
    # config.yaml's prepare.compression: the corpus shards and the noise bank's audio
    workdir, _ = shared_run
    paths = sorted((workdir / "results/ravdess/audio").glob("shard-*.h5")) + [workdir / "results/noise/shared/audio.h5"]
    assert len(paths) == 3
    for path in paths:
        with h5py.File(path, "r") as f:
            assert describe(f["samples"]) == "bitshuffle-lz4", path


def test_noise_bank_from_shared_data(shared_run):
    workdir, _ = shared_run
    bank = pd.read_csv(workdir / "results/noise/shared/bank.csv")
    assert list(bank.columns) == BANK_COLUMNS
    assert set(bank["category"]) == {"nat", "hum", "int", "laugh", "cry"}
    splits_per_source = bank.groupby("source")["split"].nunique()
    assert (splits_per_source == 1).all()
    for category, rows in bank.groupby("category"):
        assert set(rows["split"]) == {"train", "test"}, category


def test_rerun_does_nothing(shared_run):
    workdir, overlay = shared_run
    before = {t: (workdir / t).stat().st_mtime_ns for t in SHARED_TARGETS}
    proc = run_snakemake(workdir, overlay, *SHARED_TARGETS)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert before == {t: (workdir / t).stat().st_mtime_ns for t in SHARED_TARGETS}


def test_same_config_same_bytes(shared_run, tmp_path):
    workdir, overlay = shared_run
    run_snakemake(tmp_path, overlay, *SHARED_TARGETS)
    produced = SHARED_TARGETS + ["results/ravdess/audio/shard-000.h5", "results/ravdess/audio/shard-001.h5",
                                 "results/ravdess/audio/index.csv", "results/noise/shared/audio.h5"]
    for target in produced:
        assert filecmp.cmp(workdir / target, tmp_path / target, shallow=False), target


def test_issue_command_resolves_shared_data_from_repo_root(ravdess_root):
    # The documented command, as a dry run from the repository root: the overlay's relative
    # ../shared/data paths must resolve there, so nothing is downloaded.
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "2", "results/ravdess/manifest.csv", "results/ravdess/folds.csv",
         "--configfile", "tests/configs/shared_data.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "download_corpus" not in proc.stdout


@pytest.mark.parametrize(
    "overlay, key",
    [
        ({"corpora": {"ravdess": {"shardz": 2}}}, "corpora.ravdess"),
        ({"prepare": {"max_reject_fraction": 3}}, "prepare.max_reject_fraction"),
        ({"seed": "abc"}, "seed"),
        ({"corpus": "nosuchcorpus"}, "corpus"),
        ({"noise": {"banks": ["nosuchbank"]}}, "noise.banks[0]"),
        ({"unknown_section": 1}, "unknown_section"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, overlay, key):
    proc = run_snakemake(tmp_path, overlay, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid configuration" in out and key in out, out[-2000:]
    assert not (tmp_path / "results").exists()


def test_missing_iemocap_root_says_what_to_do(tmp_path):
    overlay = {"corpus": "iemocap", "corpora": {"iemocap": {"root": str(tmp_path / "nowhere")}}}
    proc = run_snakemake(tmp_path, overlay, "-n", "results/iemocap/manifest.csv", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "corpora.iemocap.root" in out and "licensed" in out


def test_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_slurm_profile_dry_run(tmp_path, ravdess_root, noise_root):
    overlay = shared_overlay(ravdess_root, noise_root)
    proc = run_snakemake(tmp_path, overlay, "-n", "--workflow-profile", str(REPO / "profiles" / "slurm"))
    assert "prepare_audio_shard" in proc.stdout


def _write_wav(path: Path, seconds: float, *, silent: bool = False, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = np.zeros_like(t) if silent else 0.1 * np.sin(2 * np.pi * (150 + 50 * rng.random()) * t) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), 16000, subtype="PCM_16")


def _generic_corpus(root: Path) -> Path:
    rows = []
    for i in range(6):
        group = f"g{i % 3 + 1}"
        path = root / "audio" / f"u{i}.wav"
        _write_wav(path, 1.0, seed=i)
        rows.append({"utt_id": f"u{i}", "path": f"audio/u{i}.wav", "speaker": f"s{i % 3}", "group": group,
                     "emotion": "neutral", "activation": 3.0, "valence": 2.0})
    (root / "audio" / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    rows.append({"utt_id": "broken", "path": "audio/broken.wav", "speaker": "s0", "group": "g1",
                 "emotion": "neutral", "activation": 3.0, "valence": 2.0})
    _write_wav(root / "audio" / "quiet.wav", 1.0, silent=True)
    rows.append({"utt_id": "quiet", "path": "audio/quiet.wav", "speaker": "s1", "group": "g2",
                 "emotion": "neutral", "activation": 3.0, "valence": 2.0})
    csv = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def _generic_overlay(root: Path, max_reject_fraction: float) -> dict:
    return {
        "corpus": "mine",
        "corpora": {"mine": {"adapter": "generic", "root": str(root), "shards": 2}},
        "folds": {"n_folds": 3},
        "prepare": {"max_reject_fraction": max_reject_fraction},
    }


def test_rejects_are_listed_with_reasons(tmp_path):
    root = tmp_path / "corpus"
    _generic_corpus(root)
    run_snakemake(tmp_path / "run", _generic_overlay(root, 0.5), "results/mine/manifest.csv", "results/mine/folds.csv")
    rejects = pd.read_csv(tmp_path / "run/results/mine/rejects.csv")
    reasons = dict(zip(rejects["path"].map(lambda p: Path(p).name), rejects["reason"]))
    assert set(reasons) == {"broken.wav", "quiet.wav"}
    assert reasons["broken.wav"].startswith("unreadable") and reasons["quiet.wav"].startswith("silent")
    assert len(read_manifest(tmp_path / "run/results/mine/manifest.csv")) == 6


def test_too_many_rejects_fail_the_run_with_a_clear_message(tmp_path):
    root = tmp_path / "corpus"
    _generic_corpus(root)
    proc = run_snakemake(tmp_path / "run", _generic_overlay(root, 0.1), "results/mine/manifest.csv", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "run/logs/mine/build_manifest.log").read_text()
    assert "reject" in log and "broken.wav" in log
    # Finished upstream work is kept: the prepared shards survive the failed merge.
    assert (tmp_path / "run/results/mine/audio/shard-000.h5").exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_public_corpus_is_downloaded_once_when_absent(tmp_path, http_dir, ravdess_root):
    served, base_url = http_dir
    archive = served / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for actor in range(1, 7):
            name = f"03-01-01-01-01-01-{actor:02d}.wav"
            zf.write(ravdess_root / f"Actor_{actor:02d}" / name, f"Actor_{actor:02d}/{name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    workdir = tmp_path / "run"
    overlay = {
        "corpora": {"ravdess": {
            "root": str(workdir / "resources/ravdess/Audio_Speech_Actors_01-24"),
            "download": {"url": f"{base_url}/{archive.name}", "checksum": f"sha256:{digest}"},
            "shards": 1,
        }},
        "folds": {"n_folds": 3},
    }
    run_snakemake(workdir, overlay, "results/ravdess/manifest.csv", "results/ravdess/folds.csv")
    assert len(read_manifest(workdir / "results/ravdess/manifest.csv")) == 6
    archive.unlink()  # a second run must not need the server's file
    proc = run_snakemake(workdir, overlay, "results/ravdess/manifest.csv")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_wrong_checksum_leaves_no_corpus(tmp_path, http_dir, ravdess_root):
    served, base_url = http_dir
    archive = served / "corpus.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ravdess_root / "Actor_01" / "03-01-01-01-01-01-01.wav", "Actor_01/03-01-01-01-01-01-01.wav")
    workdir = tmp_path / "run"
    root = workdir / "resources/ravdess/Audio_Speech_Actors_01-24"
    overlay = {"corpora": {"ravdess": {"root": str(root), "download": {
        "url": f"{base_url}/corpus.zip", "checksum": "sha256:" + "0" * 64}}}}
    proc = run_snakemake(workdir, overlay, "results/ravdess/scan.csv", check=False)
    assert proc.returncode != 0
    assert not root.exists()
    assert not (workdir / "resources/downloads/corpus_ravdess.complete").exists()


def test_iemocap_fixture_through_the_workflow(tmp_path, iemocap_root):
    overlay = {"corpus": "iemocap", "corpora": {"iemocap": {"root": str(iemocap_root), "shards": 2}}}
    run_snakemake(tmp_path, overlay, "results/iemocap/manifest.csv", "results/iemocap/folds.csv")
    manifest = read_manifest(tmp_path / "results/iemocap/manifest.csv")
    assert len(manifest) == 40 and set(manifest["group"]) == {f"Session{i}" for i in range(1, 6)}
    assert (manifest["transcript"] != "").all() and (manifest["alignment"] != "").all()
    assert manifest["activation"].notna().all() and set(manifest["activation_bin"]) == {"low", "mid", "high"}
    folds = pd.read_csv(tmp_path / "results/iemocap/folds.csv")
    # Paper §7.1: fold k tests session k and validates on session k+1 (mod 5).
    for k in range(1, 6):
        table = folds[folds["fold"] == k].set_index("group")["role"]
        assert table[f"Session{k}"] == "test"
        assert table[f"Session{k % 5 + 1}"] == "val"
        assert (table == "train").sum() == 3
