"""sernoise.audio_store: sharded int16 HDF5 store - exactness, determinism, safety."""

from __future__ import annotations

import filecmp
import pickle

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.audio_store import (
    CHUNK_SAMPLES,
    AudioShard,
    AudioStore,
    AudioStoreError,
    ShardWriter,
    quantise,
)


def _utterances(n: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Varied lengths, some longer than a chunk, so reads cross chunk boundaries.
    return {f"utt{i:03d}": (0.3 * rng.standard_normal(int(rng.integers(1000, 3 * CHUNK_SAMPLES)))).clip(-1, 0.99).astype(np.float32)
            for i in range(n)}


def _write(path, utts, **kwargs):
    with ShardWriter(path, **kwargs) as writer:
        for u, x in utts.items():
            writer.add(u, x)


@pytest.mark.shared_data
def test_16bit_source_round_trips_bit_exactly(ravdess_root, tmp_path):
    paths = sorted((ravdess_root / "Actor_02").glob("*.wav"))[:3]
    originals = {p.stem: sf.read(p, dtype="float32")[0] for p in paths}
    shard = tmp_path / "real.h5"
    _write(shard, originals)
    store = AudioShard(shard)
    for u, x in originals.items():
        y = store.read(u)
        assert y.dtype == np.float32
        assert np.array_equal(x, y), u


def test_full_scale_16bit_values_are_exact():
    x = np.array([-32768, -1, 0, 1, 32767], np.int16).astype(np.float32) / 32768
    q, scale = quantise(x)
    assert scale == np.float32(2.0**-15)
    assert np.array_equal(q.astype(np.float32) * scale, x)


def test_peak_above_one_round_trips_within_quantisation_error(tmp_path):
    rng = np.random.default_rng(3)
    x = (2.5 * rng.standard_normal(20000)).clip(-8, 8).astype(np.float32)
    x[7] = -9.0  # the peak, so the scale is 9/32767
    shard = tmp_path / "loud.h5"
    _write(shard, {"loud": x})
    y = AudioShard(shard).read("loud")
    scale = 9.0 / 32767
    assert np.max(np.abs(y - x)) <= scale / 2 + 9.0 * 1e-6
    assert y[7] == pytest.approx(-9.0, rel=1e-6)  # no clipping


@pytest.mark.parametrize("compression", ["bitshuffle-lz4", "gzip", "lzf", None])
def test_shard_bytes_are_deterministic(tmp_path, compression):
    utts = _utterances()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    _write(a, utts, compression=compression)
    _write(b, utts, compression=compression)
    assert filecmp.cmp(a, b, shallow=False)


def test_read_paths_agree(tmp_path):
    utts = _utterances(7)
    shard_path = tmp_path / "s.h5"
    _write(shard_path, utts)
    shard = AudioShard(shard_path)
    assert shard.utt_ids == list(utts)
    assert len(shard) == 7 and "utt003" in shard and "nope" not in shard
    assert shard.sample_rate == 16000
    everything = shard.read_all()
    iterated = list(shard)
    assert [u for u, _ in iterated] == list(utts)
    for u, x in utts.items():
        expected = np.rint(x * 32768) / 32768
        np.testing.assert_array_equal(shard.read(u), expected)
        np.testing.assert_array_equal(everything[u], expected)
    for u, y in iterated:
        np.testing.assert_array_equal(y, everything[u])
    with pytest.raises(KeyError, match="s.h5"):
        shard.read("nope")
    # Pickling keeps only the path; the copy opens its own handle.
    clone = pickle.loads(pickle.dumps(shard))
    np.testing.assert_array_equal(clone.read("utt006"), everything["utt006"])


def test_empty_shard(tmp_path):
    path = tmp_path / "empty.h5"
    with ShardWriter(path):
        pass
    shard = AudioShard(path)
    assert len(shard) == 0 and shard.utt_ids == [] and shard.read_all() == {} and list(shard) == []


def test_empty_utterance_is_storable(tmp_path):
    path = tmp_path / "s.h5"
    _write(path, {"a": np.zeros(0, np.float32), "b": np.ones(3, np.float32) * 0.5})
    shard = AudioShard(path)
    assert shard.read("a").size == 0
    np.testing.assert_array_equal(shard.read("b"), np.full(3, 0.5, np.float32))


def test_writer_rejects_bad_input(tmp_path):
    path = tmp_path / "s.h5"
    with pytest.raises(ValueError, match="duplicate utt_id 'x'"):
        with ShardWriter(path) as writer:
            writer.add("x", np.zeros(10, np.float32))
            writer.add("x", np.zeros(10, np.float32))
    assert not path.exists()
    with ShardWriter(path) as writer:
        with pytest.raises(TypeError, match="float"):
            writer.add("ints", np.zeros(10, np.int16))
        with pytest.raises(ValueError, match="non-finite"):
            writer.add("nan", np.array([np.nan], np.float32))
        with pytest.raises(ValueError, match="1-D"):
            writer.add("stereo", np.zeros((10, 2), np.float32))
    assert AudioShard(path).utt_ids == []


def test_interrupted_writer_leaves_no_shard(tmp_path):
    path = tmp_path / "s.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with ShardWriter(path) as writer:
            for u, x in _utterances(3).items():
                writer.add(u, x)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_bad_compression_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="s.h5"):
        ShardWriter(tmp_path / "s.h5", compression="zstd")
    with pytest.raises(ValueError, match="1..9"):
        ShardWriter(tmp_path / "s.h5", compression="gzip", compression_level=0)


def test_store_over_shards_and_index(tmp_path):
    utts = _utterances(6, seed=5)
    names = list(utts)
    (tmp_path / "shards").mkdir()
    _write(tmp_path / "shards" / "s0.h5", {u: utts[u] for u in names[:4]})
    _write(tmp_path / "shards" / "s1.h5", {u: utts[u] for u in names[4:]})
    index = pd.DataFrame({"utt_id": names, "shard": ["shards/s0.h5"] * 4 + ["shards/s1.h5"] * 2, "duration": 1.0})
    index.to_csv(tmp_path / "index.csv", index=False)

    store = AudioStore.from_index(tmp_path / "index.csv")
    assert len(store) == 6 and store.utt_ids == names and names[5] in store
    assert store.sample_rate == 16000
    assert [s.path.name for s in store.iter_shards()] == ["s0.h5", "s1.h5"]
    for u, x in utts.items():
        np.testing.assert_array_equal(store.read(u), np.rint(x * 32768) / 32768)
    with pytest.raises(KeyError):
        store.read("nope")
    pickle.loads(pickle.dumps(store)).read(names[0])

    # A stale index (missing an utterance the shards hold) is refused, naming the index.
    index.iloc[:5].to_csv(tmp_path / "stale.csv", index=False)
    with pytest.raises(AudioStoreError, match="stale.csv"):
        AudioStore.from_index(tmp_path / "stale.csv")
    # The same utt_id in two shards is refused.
    _write(tmp_path / "dup.h5", {names[0]: utts[names[0]]})
    with pytest.raises(AudioStoreError, match="dup.h5"):
        AudioStore([tmp_path / "shards" / "s0.h5", tmp_path / "dup.h5"])


def test_missing_or_foreign_shard_names_the_file(tmp_path):
    with pytest.raises(AudioStoreError, match="absent.h5"):
        _ = AudioShard(tmp_path / "absent.h5").utt_ids
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(AudioStoreError, match="junk.h5"):
        len(AudioShard(junk))


# --------------------------------------------------------------------------- speech levels


def test_speech_levels_are_p56_of_the_audio_read_back(tmp_path):
    """ShardWriter(speech_levels=True) stores, per utterance, the P.56 active power of exactly the
    float32 audio AudioShard.read returns (bit for bit), so conditions can use it instead of
    computing it; silence stores NaN and reads as unknown (None)."""
    from sernoise.conditions.active_level import active_speech_power

    utts = _utterances(4, seed=3)
    utts["loud"] = np.linspace(-1.5, 1.5, 5000, dtype=np.float32)  # beyond full scale: scale != 2**-15
    utts["silent"] = np.zeros(800, np.float32)
    _write(tmp_path / "levels.h5", utts, speech_levels=True)
    _write(tmp_path / "plain.h5", utts)
    shard, plain = AudioShard(tmp_path / "levels.h5"), AudioShard(tmp_path / "plain.h5")
    for u in utts:
        expected = None if u == "silent" else active_speech_power(shard.read(u), 16000)
        assert shard.active_power(u) == expected, u
        assert plain.active_power(u) is None, u  # no levels stored: unknown
    assert shard.active_power("loud") != active_speech_power(utts["loud"], 16000)  # of the stored audio, not the input
    store = AudioStore([tmp_path / "levels.h5"])
    assert store.active_power("utt001") == shard.active_power("utt001")
    with pytest.raises(KeyError, match="nope"):
        shard.active_power("nope")
    # the same utterances give the same bytes (the levels are deterministic too)
    _write(tmp_path / "again.h5", utts, speech_levels=True)
    assert filecmp.cmp(tmp_path / "levels.h5", tmp_path / "again.h5", shallow=False)


def test_speech_levels_of_another_p56_version_read_as_unknown(tmp_path, monkeypatch):
    import h5py

    import sernoise.conditions.active_level as active_level

    utts = _utterances(2, seed=4)
    _write(tmp_path / "levels.h5", utts, speech_levels=True)
    with h5py.File(tmp_path / "levels.h5", "r") as f:
        assert int(f["active_power"].attrs["p56_version"]) == active_level.ALGORITHM_VERSION
    monkeypatch.setattr(active_level, "ALGORITHM_VERSION", active_level.ALGORITHM_VERSION + 1)
    shard = AudioShard(tmp_path / "levels.h5")
    assert all(shard.active_power(u) is None for u in utts)
