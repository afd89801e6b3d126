"""sernoise.hdf5_codecs: the codec of audio shards and feature archives (config prepare.compression).

Every codec must store exactly the values gzip stored (the tables cannot depend on it), write the
same bytes twice, and be readable by any job that imports the workflow's readers; a bad value is
refused with the file or key named.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys

import h5py
import numpy as np
import pytest
from sernoise.audio_store import CHUNK_SAMPLES, AudioShard, AudioStore, ShardWriter
from sernoise.features import FeatureArchive, extract_store, write_feature_archive
from sernoise.hdf5_codecs import COMPRESSIONS, DEFAULT_COMPRESSION, dataset_filters, describe


def _speechlike(n_utts=4, seed=0):
    """Decaying harmonic bursts plus noise: audio whose high bits vary slowly, as speech's do."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_utts):
        n = int(rng.integers(CHUNK_SAMPLES // 2, 3 * CHUNK_SAMPLES))
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * (110 + 40 * i) * t) * np.exp(-t) + 0.01 * rng.standard_normal(n)
        out[f"utt{i}"] = x.astype(np.float32)
    return out


def _write_shard(path, utts, compression):
    with ShardWriter(path, compression=compression) as writer:
        for utt_id, x in utts.items():
            writer.add(utt_id, x)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_codec_stores_the_same_values_deterministically(tmp_path, compression):
    utts = _speechlike()
    _write_shard(tmp_path / "gzip.h5", utts, "gzip")
    _write_shard(tmp_path / "a.h5", utts, compression)
    _write_shard(tmp_path / "b.h5", utts, compression)
    assert filecmp.cmp(tmp_path / "a.h5", tmp_path / "b.h5", shallow=False)  # same config, same bytes
    reference, shard = AudioShard(tmp_path / "gzip.h5"), AudioShard(tmp_path / "a.h5")
    for utt_id in utts:
        assert np.array_equal(shard.read(utt_id), reference.read(utt_id))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert describe(f["samples"]) == compression
        assert np.array_equal(f["samples"][:], h5py.File(tmp_path / "gzip.h5", "r")["samples"][:])


def test_bitshuffle_lz4_is_the_default_and_compresses_speech_like_gzip(tmp_path):
    utts = _speechlike(6)
    _write_shard(tmp_path / "gzip.h5", utts, "gzip")
    _write_shard(tmp_path / "none.h5", utts, None)
    with ShardWriter(tmp_path / "default.h5") as writer:
        for utt_id, x in utts.items():
            writer.add(utt_id, x)
    with h5py.File(tmp_path / "default.h5", "r") as f:
        assert DEFAULT_COMPRESSION == "bitshuffle-lz4" == describe(f["samples"])
    sizes = {name: (tmp_path / f"{name}.h5").stat().st_size for name in ("gzip", "none", "default")}
    # it compresses at all, and not much worse than gzip (on RAVDESS it is 8 % smaller: benchmarks/storage.py)
    assert sizes["default"] < 0.8 * sizes["none"]
    assert sizes["default"] < 1.25 * sizes["gzip"]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_feature_archives_follow_the_codec_and_keep_their_values(tmp_path, compression):
    _write_shard(tmp_path / "s.h5", _speechlike(), "gzip")
    store = AudioStore([tmp_path / "s.h5"])
    extract_store(store, tmp_path / "gzip.h5", compression="gzip")
    extract_store(store, tmp_path / "x.h5", compression=compression)
    reference, archive = FeatureArchive(tmp_path / "gzip.h5"), FeatureArchive(tmp_path / "x.h5")
    assert archive.utt_ids == reference.utt_ids
    for utt_id, feats in reference.read_many(reference.utt_ids).items():
        assert np.array_equal(archive.read_many([utt_id])[utt_id], feats)
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert describe(f["features"]) == compression
    items = list(reference.read_many(reference.utt_ids).items())
    write_feature_archive(tmp_path / "w1.h5", items, compression=compression)
    write_feature_archive(tmp_path / "w2.h5", items, compression=compression)
    assert filecmp.cmp(tmp_path / "w1.h5", tmp_path / "w2.h5", shallow=False)


def test_a_fresh_job_reads_bitshuffle_archives_through_the_workflow_readers(tmp_path):
    # HDF5 finds the filter only once hdf5plugin has registered it: a process that imports
    # h5py alone cannot read the data, one that imports the workflow's readers (as every job does) can.
    utts = _speechlike(2)
    _write_shard(tmp_path / "s.h5", utts, "bitshuffle-lz4")
    expected = AudioShard(tmp_path / "s.h5").read("utt1")
    np.save(tmp_path / "expected.npy", expected)
    plain = ("import h5py\n"
             f"h5py.File({str(tmp_path / 's.h5')!r}, 'r')['samples'][:10]\n")
    result = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True)
    # (HDF5 says only that it cannot read the data: it looked for a plugin directory and found none)
    assert result.returncode != 0 and "read data" in result.stderr
    workflow = ("import numpy as np\n"
                "from sernoise.audio_store import AudioShard\n"
                f"x = AudioShard({str(tmp_path / 's.h5')!r}).read('utt1')\n"
                f"assert np.array_equal(x, np.load({str(tmp_path / 'expected.npy')!r}))\n")
    subprocess.run([sys.executable, "-c", workflow], check=True, capture_output=True, text=True)


def test_bad_codec_values_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"prepare\.compression: unknown compression 'zstd'.*bitshuffle-lz4"):
        dataset_filters("zstd", where="prepare.compression")
    for level in (0, 10, 4.0, True, "4"):
        with pytest.raises(ValueError, match="1..9"):
            dataset_filters("gzip", level)
    assert dataset_filters("bitshuffle-lz4", 0) == dataset_filters("bitshuffle-lz4")  # no level: not checked
    assert dataset_filters(None) == dataset_filters("none") == {}
    with pytest.raises(ValueError, match="out.h5"):
        write_feature_archive(tmp_path / "out.h5", [("u", np.zeros((3, 40)))], compression="brotli")
    assert not (tmp_path / "out.h5").exists()
    _write_shard(tmp_path / "s.h5", _speechlike(1), "gzip")
    with pytest.raises(ValueError, match="f.h5"):  # refused before any filterbank is computed
        extract_store(AudioStore([tmp_path / "s.h5"]), tmp_path / "f.h5", compression="gzip", compression_level=11)
