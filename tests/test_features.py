"""Log-Mel filterbank features and their archives (sernoise.features)."""

import filecmp

import h5py
import numpy as np
import pytest

from sernoise.features import (
    HOP_LENGTH,
    N_MELS,
    WIN_LENGTH,
    FeatureArchive,
    FeatureError,
    log_mel_fbank,
    n_frames,
    write_feature_archive,
)

SR = 16000


def _tone(seconds, freq, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_frame_count_and_shape():
    assert n_frames(WIN_LENGTH) == 1 and n_frames(10) == 1
    assert n_frames(WIN_LENGTH + HOP_LENGTH) == 2
    assert n_frames(WIN_LENGTH + HOP_LENGTH + 1) == 3  # the partial last frame is zero padded
    x = _tone(1.0, 440)
    feats = log_mel_fbank(x)
    assert feats.shape == (n_frames(x.size), N_MELS) and feats.dtype == np.float32
    assert np.all(np.isfinite(feats))


def test_energy_lands_in_the_right_mel_band():
    low = log_mel_fbank(_tone(0.5, 200)).mean(axis=0)
    high = log_mel_fbank(_tone(0.5, 4000)).mean(axis=0)
    assert np.argmax(low) < np.argmax(high)
    assert np.argmax(high) > N_MELS // 2


def test_scaling_the_signal_shifts_log_energies():
    x = _tone(0.5, 440)
    # 20 dB louder -> log power + ln(100) in every band with signal
    diff = log_mel_fbank(10 * x) - log_mel_fbank(x)
    strong = log_mel_fbank(x) > -5
    assert np.allclose(diff[strong], np.log(100.0), atol=1e-3)


def test_bad_input_is_named():
    with pytest.raises(FeatureError, match="16000"):
        log_mel_fbank(_tone(0.1, 440), sr=8000)
    with pytest.raises(FeatureError, match="non-empty"):
        log_mel_fbank(np.zeros(0, dtype=np.float32))


def test_archive_round_trip_and_determinism(tmp_path):
    items = [(f"u{i}", log_mel_fbank(_tone(0.3 + 0.1 * i, 300 + 100 * i))) for i in range(4)]
    write_feature_archive(tmp_path / "a.h5", items)
    write_feature_archive(tmp_path / "b.h5", items)
    assert filecmp.cmp(tmp_path / "a.h5", tmp_path / "b.h5", shallow=False)
    archive = FeatureArchive(tmp_path / "a.h5")
    assert archive.utt_ids == [u for u, _ in items] and len(archive) == 4 and "u2" in archive
    everything = archive.read_all()
    for utt_id, feats in items:
        np.testing.assert_allclose(archive.read(utt_id), feats, atol=0.02, rtol=1e-3)  # stored as float16
        np.testing.assert_array_equal(everything[utt_id], archive.read(utt_id))
    with pytest.raises(FeatureError, match="no features"):
        archive.read("nope")


def test_read_many_reads_spans_and_matches_whole_reads(tmp_path, monkeypatch):
    # 60 utterances of 300-699 frames: about 30,000 frames, so 4 chunks of 8192 rows
    rng = np.random.default_rng(0)
    items = [(f"u{i:02d}", rng.normal(size=(300 + 7 * i, N_MELS)).astype(np.float32)) for i in range(60)]
    write_feature_archive(tmp_path / "a.h5", items)
    archive = FeatureArchive(tmp_path / "a.h5")
    everything = archive.read_all()

    reads = []
    original = h5py.Dataset.__getitem__

    def counting(self, key):
        reads.append(key)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    for wanted in (["u03", "u01"], ["u59", "u00", "u30"], [u for u, _ in items], ["u10", "u10", "u11"]):
        reads.clear()
        got = archive.read_many(wanted)
        assert list(got) == list(dict.fromkeys(wanted))  # the order asked for, duplicates once
        for utt_id in got:
            assert got[utt_id].dtype == np.float16
            np.testing.assert_array_equal(got[utt_id].astype(np.float32), everything[utt_id])
        if wanted == ["u03", "u01"] or wanted[0] == "u10":
            assert len(reads) == 1 and reads[0].stop < 8192  # neighbours: one small slice, not the whole
        if wanted[0] == "u59":
            assert len(reads) == 3  # far apart: one slice each
        if len(wanted) == 60:
            assert len(reads) == 1 and (reads[0].start, reads[0].stop) == (0, int(archive.offsets[-1]))
    assert archive.read_many([]) == {}
    with pytest.raises(FeatureError, match="no features for 1 utterance"):
        archive.read_many(["u01", "nope"])


def test_empty_archive_for_a_skipped_condition(tmp_path):
    assert write_feature_archive(tmp_path / "empty.h5", []) == 0
    archive = FeatureArchive(tmp_path / "empty.h5")
    assert len(archive) == 0 and archive.read_all() == {}


def test_archive_rejects_bad_items(tmp_path):
    feats = log_mel_fbank(_tone(0.2, 440))
    with pytest.raises(FeatureError, match="duplicate"):
        write_feature_archive(tmp_path / "d.h5", [("u", feats), ("u", feats)])
    with pytest.raises(FeatureError, match="expected"):
        write_feature_archive(tmp_path / "s.h5", [("u", feats[:, :10])])
    assert not (tmp_path / "d.h5").exists() and not (tmp_path / "d.h5.tmp").exists()
    with pytest.raises(FeatureError, match="does not exist"):
        FeatureArchive(tmp_path / "missing.h5")
