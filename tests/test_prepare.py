"""sernoise.prepare: sharded preparation, rejects, manifest assembly."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.audio_store import AudioShard, AudioStore
from sernoise.conditions.active_level import active_speech_power
from sernoise.corpora.manifest import MANIFEST_COLUMNS, ManifestError
from sernoise.prepare import (
    assemble_manifest,
    prepare_shard,
    select_shard,
    shard_of,
    write_index,
)


def _scan(entries: dict[str, str]) -> pd.DataFrame:
    """A scan frame (all manifest columns, duration/sample_rate empty) for utt_id -> path."""
    rows = [{c: "" for c in MANIFEST_COLUMNS} | {"utt_id": u, "path": p, "speaker": "s1", "emotion": "neutral"}
            for u, p in entries.items()]
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


@pytest.fixture()
def mixed_set(tmp_path):
    """Four good files (16 kHz mono 16-bit, 48 kHz stereo 24-bit, 22.05 kHz float) and two bad ones."""
    d = tmp_path / "audio"
    d.mkdir()
    rng = np.random.default_rng(0)
    files = {}

    def write(name, data, sr, subtype):
        sf.write(d / name, data, sr, subtype=subtype)
        files[name.split(".")[0]] = str(d / name)

    write("a_16k.wav", 0.2 * rng.standard_normal(16000), 16000, "PCM_16")
    write("b_48k.wav", 0.2 * rng.standard_normal((48000 * 2, 2)), 48000, "PCM_24")
    write("c_22k.wav", 0.2 * rng.standard_normal(22050 // 2), 22050, "FLOAT")
    write("d_16k.wav", 0.1 * rng.standard_normal(8000), 16000, "PCM_16")
    write("e_silent.wav", np.zeros(16000), 16000, "PCM_16")
    files["f_missing"] = str(d / "f_missing.wav")
    return files


def test_shard_assignment_covers_every_row_once():
    for n_rows in (0, 1, 5, 17, 600):
        for n_shards in (1, 2, 3, 8, 40):
            shards = shard_of(n_rows, n_shards)
            assert shards.shape == (n_rows,)
            assert np.all(np.diff(shards) >= 0)  # contiguous blocks
            if n_rows:
                assert shards.min() >= 0 and shards.max() < n_shards
                sizes = np.bincount(shards, minlength=n_shards)
                assert sizes.max() - sizes.min() <= 1
    scan = _scan({f"u{i:02d}": f"/x/{i}.wav" for i in range(23)}).sample(frac=1, random_state=1)
    for n_shards in (1, 4, 7, 30):
        parts = [select_shard(scan, n_shards, k) for k in range(n_shards)]
        ids = [u for part in parts for u in part["utt_id"]]
        assert ids == sorted(scan["utt_id"])  # each row exactly once, in utt_id order
    with pytest.raises(ValueError):
        select_shard(scan, 3, 3)


def test_prepare_and_assemble_mixed_set(mixed_set, tmp_path):
    scan = _scan(mixed_set)
    out = tmp_path / "prep"
    log = io.StringIO()
    results = []
    for k in range(2):
        rows = select_shard(scan, 2, k)
        stats = prepare_shard(rows, out / f"shard_{k}.h5", out / f"index_{k}.csv", out / f"rejects_{k}.csv",
                              progress=False, log=log)
        results.append(stats)
    assert sum(s["n_ok"] for s in results) == 4
    assert sum(s["n_rejected"] for s in results) == 2
    assert sum(s["audio_seconds"] for s in results) == pytest.approx(1 + 2 + 0.5 + 0.5, abs=1e-3)
    assert "reject e_silent" in log.getvalue()

    index = pd.read_csv(out / "index_0.csv")
    assert list(index.columns) == ["utt_id", "shard", "duration", "sample_rate"]
    assert set(index["shard"]) == {"shard_0.h5"}
    shard_rejects = pd.read_csv(out / "rejects_1.csv")
    assert list(shard_rejects.columns) == ["utt_id", "path", "reason"]

    manifest = assemble_manifest(scan, [out / f"index_{k}.csv" for k in range(2)],
                                 [out / f"rejects_{k}.csv" for k in range(2)],
                                 max_reject_fraction=0.5, rejects_out=out / "rejects.csv")
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["utt_id"].tolist() == ["a_16k", "b_48k", "c_22k", "d_16k"]
    assert manifest["sample_rate"].tolist() == [16000, 48000, 22050, 16000]
    assert manifest["duration"].tolist() == pytest.approx([1.0, 2.0, 0.5, 0.5], abs=1e-4)
    assert manifest["emotion"].eq("neutral").all()

    rejects = pd.read_csv(out / "rejects.csv")
    assert list(rejects.columns) == ["path", "reason"]
    reasons = dict(zip(rejects["path"], rejects["reason"]))
    assert reasons[mixed_set["e_silent"]].startswith("silent")
    assert reasons[mixed_set["f_missing"]].startswith("unreadable")

    # The combined index opens every prepared utterance, at 16 kHz.
    write_index([out / f"index_{k}.csv" for k in range(2)], [out / f"shard_{k}.h5" for k in range(2)],
                tmp_path / "store" / "index.csv")
    store = AudioStore.from_index(tmp_path / "store" / "index.csv")
    assert sorted(store.utt_ids) == manifest["utt_id"].tolist()
    assert store.read("b_48k").size == 32000


def test_reject_fraction_exceeded_still_writes_rejects(mixed_set, tmp_path):
    scan = _scan(mixed_set)
    prepare_shard(scan, tmp_path / "s.h5", tmp_path / "i.csv", tmp_path / "r.csv", progress=False)
    with pytest.raises(ManifestError) as info:
        assemble_manifest(scan, [tmp_path / "i.csv"], [tmp_path / "r.csv"],
                          max_reject_fraction=0.2, rejects_out=tmp_path / "rejects.csv")
    message = str(info.value)
    assert "2 of 6" in message and "0.2" in message and "rejects.csv" in message and "silent" in message
    assert len(pd.read_csv(tmp_path / "rejects.csv")) == 2


def test_every_scan_row_must_be_accounted_for(mixed_set, tmp_path):
    scan = _scan(mixed_set)
    prepare_shard(select_shard(scan, 2, 0), tmp_path / "s0.h5", tmp_path / "i0.csv", tmp_path / "r0.csv",
                  progress=False)
    # Shard 1 never ran: its utterances are in no file.
    with pytest.raises(ManifestError, match="d_16k"):
        assemble_manifest(scan, [tmp_path / "i0.csv"], [tmp_path / "r0.csv"],
                          max_reject_fraction=1.0, rejects_out=tmp_path / "rejects.csv")
    # The same shard listed twice: ids appear more than once.
    with pytest.raises(ManifestError, match="more than once"):
        assemble_manifest(scan, [tmp_path / "i0.csv"] * 2, [tmp_path / "r0.csv"],
                          max_reject_fraction=1.0, rejects_out=tmp_path / "rejects.csv")


def test_empty_rows_give_valid_empty_outputs(tmp_path):
    rows = pd.DataFrame(columns=["utt_id", "path"])
    stats = prepare_shard(rows, tmp_path / "s.h5", tmp_path / "i.csv", tmp_path / "r.csv", progress=False)
    assert stats["n_ok"] == 0 and stats["n_rejected"] == 0
    assert len(AudioShard(tmp_path / "s.h5")) == 0
    assert (tmp_path / "i.csv").read_text() == "utt_id,shard,duration,sample_rate\n"
    assert (tmp_path / "r.csv").read_text() == "utt_id,path,reason\n"
    manifest = assemble_manifest(_scan({}), [tmp_path / "i.csv"], [tmp_path / "r.csv"],
                                 max_reject_fraction=0.0, rejects_out=tmp_path / "rejects.csv")
    assert len(manifest) == 0 and list(manifest.columns) == MANIFEST_COLUMNS
    assert (tmp_path / "rejects.csv").read_text() == "path,reason\n"


def test_prepare_is_deterministic(mixed_set, tmp_path):
    scan = _scan(mixed_set)
    for run in ("one", "two"):
        prepare_shard(scan, tmp_path / run / "s.h5", tmp_path / run / "i.csv", tmp_path / run / "r.csv",
                      progress=False)
    for name in ("s.h5", "i.csv", "r.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


@pytest.mark.shared_data
def test_real_ravdess_files_prepare_bit_exactly(ravdess_root, tmp_path):
    paths = sorted((ravdess_root / "Actor_03").glob("*.wav"))[:4]
    scan = _scan({p.stem: str(p) for p in paths})
    stats = prepare_shard(scan, tmp_path / "s.h5", tmp_path / "i.csv", tmp_path / "r.csv", progress=False)
    assert stats["n_ok"] == 4
    shard = AudioShard(tmp_path / "s.h5")
    for p in paths:
        assert np.array_equal(shard.read(p.stem), sf.read(p, dtype="float32")[0])
        # the shard carries each utterance's P.56 level, which the augment and attack jobs use
        assert shard.active_power(p.stem) == active_speech_power(shard.read(p.stem), 16000)
