"""Log spectrograms, segments, segment archives and the normaliser of the Latif stage (sernoise.latif.spectrogram)."""

import filecmp

import h5py
import numpy as np
import pytest

from sernoise.hdf5_codecs import COMPRESSIONS, describe
from sernoise.latif import spectrogram as sp
from sernoise.latif.spectrogram import (
    N_BINS,
    SpectrogramError,
    apply_normaliser,
    bin_frequency,
    fit_normaliser,
    log_spectrogram,
    read_segment_archive,
    segment,
    segment_starts,
    write_segment_archive,
)

SR = 16000


def _tone(seconds, freq, amplitude=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_frame_and_bin_count_for_a_known_length():
    spec = log_spectrogram(_tone(1.0, 440), SR)
    # 25 ms window, 10 ms shift, last partial frame padded: ceil((16000 - 400) / 160) + 1 = 99
    assert spec.shape == (99, N_BINS) == (99, 128) and spec.dtype == np.float32
    assert log_spectrogram(_tone(400 / SR, 440), SR).shape == (1, 128)
    assert log_spectrogram(np.zeros(10, dtype=np.float32), SR).shape == (1, 128)
    assert log_spectrogram(_tone(560 / SR, 440), SR).shape == (2, 128)
    assert log_spectrogram(_tone(561 / SR, 440), SR).shape == (3, 128)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 2500.0, 3500.0])
def test_a_pure_tone_peaks_in_its_bin(freq):
    spec = log_spectrogram(_tone(0.5, freq), SR)
    expected = int(round(freq / (SR / 512)))
    assert np.all(np.argmax(spec[1:-1], axis=1) == expected)  # every full frame
    assert abs(bin_frequency(expected) - freq) <= SR / 512 / 2


def test_the_bins_span_0_to_4_khz():
    assert bin_frequency(127) == pytest.approx(3968.75)
    inside = log_spectrogram(_tone(0.5, 1000), SR)[5:-5].max()
    beyond = log_spectrogram(_tone(0.5, 6000), SR)[5:-5].max()  # only window leakage reaches the kept band
    assert inside - beyond > 10


def test_scaling_shifts_the_log_power():
    x = _tone(0.5, 1000)
    base = log_spectrogram(x, SR)
    strong = base > -5
    assert np.allclose(log_spectrogram(10 * x, SR)[strong] - base[strong], np.log(100.0), atol=1e-3)


def test_silence_sits_on_the_floor():
    assert np.all(log_spectrogram(np.zeros(1600, dtype=np.float32), SR) == np.float32(np.log(1e-10)))


@pytest.mark.parametrize("wave, rate, message", [
    (np.zeros((2, 800), dtype=np.float32), SR, "1-D"),
    (np.zeros(0, dtype=np.float32), SR, "non-empty"),
    (np.array([0.0, np.nan, 0.1], dtype=np.float32), SR, "non-finite"),
    (np.array([0.0, np.inf], dtype=np.float32), SR, "non-finite"),
    (np.zeros(800, dtype=np.int16), SR, "float"),
    (np.zeros(800, dtype=np.float32), 44100, "16000 Hz, got sample_rate=44100"),
])
def test_bad_audio_is_refused(wave, rate, message):
    with pytest.raises(SpectrogramError, match=message):
        log_spectrogram(wave, rate)


def _ramp(frames, bins=4):
    return np.arange(frames * bins, dtype=np.float32).reshape(frames, bins)


def test_segments_cover_the_utterance_without_overlap_by_default():
    spec = _ramp(600)
    segs = segment(spec)
    assert segment_starts(600) == [0, 256, 344]
    assert segs.shape == (3, 256, 4) and segs.dtype == np.float32
    assert np.array_equal(segs[0], spec[:256]) and np.array_equal(segs[1], spec[256:512])
    assert np.array_equal(segs[2], spec[-256:])  # the tail window ends on the last frame
    assert segment(_ramp(512)).shape[0] == 2  # exact multiple: no extra window
    assert segment(_ramp(256)).shape[0] == 1


def test_hop_sets_the_overlap():
    assert segment_starts(600, 256, 128) == [0, 128, 256, 344]
    assert segment(_ramp(600), hop=128).shape == (4, 256, 4)
    assert segment_starts(40, context=10, hop=10) == [0, 10, 20, 30]


def test_a_short_utterance_is_padded_by_repeating_it():
    spec = _ramp(100)
    (seg,) = segment(spec)
    assert seg.shape == (256, 4)
    assert np.array_equal(seg[:100], spec) and np.array_equal(seg[100:200], spec)
    assert np.array_equal(seg[200:], spec[:56])
    assert np.array_equal(segment(_ramp(1), context=3)[0], np.tile(_ramp(1), (3, 1)))


@pytest.mark.parametrize("kwargs", [{"context": 0}, {"context": 2.5}, {"hop": 0}, {"hop": True}])
def test_bad_segment_windows_are_refused(kwargs):
    with pytest.raises(SpectrogramError, match="positive integer"):
        segment(_ramp(10), **kwargs)


def test_a_spectrogram_must_be_2d_and_non_empty():
    with pytest.raises(SpectrogramError, match="frames, bins"):
        segment(np.zeros(10))
    with pytest.raises(SpectrogramError, match="frames, bins"):
        segment(np.zeros((0, 128)))


CONTEXT = 16  # small segments keep the archive tests fast


def _items(rng, counts=(3, 1, 20, 2, 15), labels=(0, 3, 1, 1, 2)):
    return [(f"utt{k:02d}", label, rng.normal(-5, 3, size=(n, CONTEXT, N_BINS)).astype(np.float32))
            for k, (n, label) in enumerate(zip(counts, labels))]


def test_archive_round_trip_and_labels(tmp_path):
    items = _items(np.random.default_rng(0))
    assert write_segment_archive(tmp_path / "a.h5", items, context=CONTEXT) == 5
    data = read_segment_archive(tmp_path / "a.h5")
    assert data.utt_ids == [u for u, _, _ in items] and len(data) == 5
    assert data.labels.tolist() == [0, 3, 1, 1, 2]
    assert data.offsets.tolist() == [0, 3, 4, 24, 26, 41]
    assert data.segments.shape == (41, CONTEXT, N_BINS) and data.segments.dtype == np.float32
    expected = np.concatenate([s for _, _, s in items]).astype(np.float16).astype(np.float32)
    assert np.array_equal(data.segments, expected)  # float16 storage, nothing else lost
    assert data.segment_labels.tolist() == [0] * 3 + [3] + [1] * 22 + [2] * 15
    assert data.segment_utt_ids[:5] == ["utt00"] * 3 + ["utt01", "utt02"]
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f["segments"].chunks[0] == sp.CHUNK_SEGMENTS
        assert describe(f["segments"]) == "gzip"  # kept on gzip by default (sernoise.latif.spectrogram)
        assert int(f.attrs["context"]) == CONTEXT and int(f.attrs["n_bins"]) == N_BINS


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_codec_stores_the_same_segments(tmp_path, compression):
    items = _items(np.random.default_rng(4))
    write_segment_archive(tmp_path / "gzip.h5", items, context=CONTEXT, compression="gzip")
    write_segment_archive(tmp_path / "x.h5", items, context=CONTEXT, compression=compression)
    write_segment_archive(tmp_path / "y.h5", items, context=CONTEXT, compression=compression)
    assert filecmp.cmp(tmp_path / "x.h5", tmp_path / "y.h5", shallow=False)  # same bytes twice
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert describe(f["segments"]) == compression
    ours, reference = read_segment_archive(tmp_path / "x.h5"), read_segment_archive(tmp_path / "gzip.h5")
    assert np.array_equal(ours.segments, reference.segments) and ours.utt_ids == reference.utt_ids


@pytest.mark.parametrize("compression, level, message", [
    ("zstd", 4, "unknown compression 'zstd'"),
    ("gzip", 0, "gzip compression_level must be an int in 1..9"),
])
def test_a_bad_codec_is_named_before_any_file(tmp_path, compression, level, message):
    with pytest.raises(SpectrogramError, match=message):
        write_segment_archive(tmp_path / "x.h5", _items(np.random.default_rng(5)), context=CONTEXT,
                              compression=compression, compression_level=level)
    assert list(tmp_path.iterdir()) == []


def test_same_input_gives_identical_bytes(tmp_path):
    write_segment_archive(tmp_path / "a.h5", _items(np.random.default_rng(1)), context=CONTEXT)
    write_segment_archive(tmp_path / "b.h5", _items(np.random.default_rng(1)), context=CONTEXT)
    write_segment_archive(tmp_path / "c.h5", _items(np.random.default_rng(2)), context=CONTEXT)
    assert filecmp.cmp(tmp_path / "a.h5", tmp_path / "b.h5", shallow=False)
    assert not filecmp.cmp(tmp_path / "a.h5", tmp_path / "c.h5", shallow=False)


def test_reading_a_subset_in_the_order_asked(tmp_path):
    items = _items(np.random.default_rng(3))
    write_segment_archive(tmp_path / "a.h5", items, context=CONTEXT)
    part = read_segment_archive(tmp_path / "a.h5", utt_ids=["utt04", "utt01"], dtype=np.float16)
    assert part.utt_ids == ["utt04", "utt01"] and part.labels.tolist() == [2, 3]
    assert part.offsets.tolist() == [0, 15, 16] and part.segments.dtype == np.float16
    assert np.array_equal(part.segments[:15], items[4][2].astype(np.float16))
    assert np.array_equal(part.segments[15:], items[1][2].astype(np.float16))
    with pytest.raises(SpectrogramError, match="no segments for 1"):
        read_segment_archive(tmp_path / "a.h5", utt_ids=["nope"])


def test_an_empty_archive_is_valid(tmp_path):
    assert write_segment_archive(tmp_path / "e.h5", [], context=CONTEXT) == 0
    data = read_segment_archive(tmp_path / "e.h5")
    assert data.segments.shape == (0, CONTEXT, N_BINS) and data.utt_ids == []


@pytest.mark.parametrize("bad, message", [
    ([("a", 0, np.zeros((1, CONTEXT, N_BINS))), ("a", 0, np.zeros((1, CONTEXT, N_BINS)))], "duplicate utt_id"),
    ([("a", 0, np.zeros((1, CONTEXT + 1, N_BINS)))], "expected"),
    ([("a", 0, np.zeros((0, CONTEXT, N_BINS)))], "expected"),
    ([("a", -1, np.zeros((1, CONTEXT, N_BINS)))], "class index"),
    ([("a", 0, np.full((1, CONTEXT, N_BINS), np.nan))], "non-finite"),
    ([("", 0, np.zeros((1, CONTEXT, N_BINS)))], "non-empty string"),
])
def test_bad_items_leave_no_archive(tmp_path, bad, message):
    with pytest.raises(SpectrogramError, match=message):
        write_segment_archive(tmp_path / "x.h5", bad, context=CONTEXT)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(SpectrogramError, match="does not exist"):
        read_segment_archive(tmp_path / "none.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(SpectrogramError, match="not a segment archive"):
        read_segment_archive(tmp_path / "other.h5")


def test_normaliser_matches_numpy_and_standardises(monkeypatch):
    rng = np.random.default_rng(4)
    segs = (rng.normal(size=(30, 20, 6)) * np.arange(1, 7) + np.arange(6) * 10).astype(np.float32)
    segs[..., 5] = 7.0  # a constant bin
    monkeypatch.setattr(sp, "_NORM_BLOCK_ROWS", 97)  # several uneven blocks
    mean, std = fit_normaliser(segs)
    rows = segs.reshape(-1, 6).astype(np.float64)
    assert mean.dtype == std.dtype == np.float32
    assert np.allclose(mean, rows.mean(axis=0), atol=1e-5)
    assert np.allclose(std[:5], rows.std(axis=0)[:5], rtol=1e-5) and std[5] == np.float32(sp.STD_FLOOR)
    normed = apply_normaliser(segs, mean, std)
    assert normed.shape == segs.shape and normed.dtype == np.float32
    assert np.allclose(normed[..., :5].reshape(-1, 5).mean(axis=0), 0, atol=1e-4)
    assert np.allclose(normed[..., :5].reshape(-1, 5).std(axis=0), 1, atol=1e-4)
    assert np.all(normed[..., 5] == 0)


def test_normaliser_errors():
    with pytest.raises(SpectrogramError, match="no frames"):
        fit_normaliser(np.zeros((0, 4, 3)))
    with pytest.raises(SpectrogramError, match="does not fit"):
        apply_normaliser(np.zeros((2, 4, 3)), np.zeros(4), np.ones(4))
    with pytest.raises(SpectrogramError, match="positive"):
        apply_normaliser(np.zeros((2, 4, 3)), np.zeros(3), np.zeros(3))


def test_end_to_end_from_a_tone_to_an_archive(tmp_path):
    wave = _tone(3.2, 500)  # 318 frames: one full segment and one ending on the last frame
    segs = segment(log_spectrogram(wave, SR))
    assert segs.shape == (2, 256, 128)
    write_segment_archive(tmp_path / "t.h5", [("tone", 2, segs)])
    data = read_segment_archive(tmp_path / "t.h5")
    assert data.segment_labels.tolist() == [2, 2]
    assert np.allclose(data.segments, segs, atol=0.02)


def test_segments_are_read_across_shard_archives(tmp_path):
    rng = np.random.default_rng(5)
    items = _items(rng)
    write_segment_archive(tmp_path / "a.h5", items[:2], context=CONTEXT)
    write_segment_archive(tmp_path / "b.h5", items[2:], context=CONTEXT)
    assert sp.archive_utt_ids(tmp_path / "b.h5") == [u for u, _, _ in items[2:]]
    wanted = [items[3][0], items[0][0]]
    got = sp.read_segments([tmp_path / "a.h5", tmp_path / "b.h5"], wanted)
    assert list(got) == wanted
    for utt, _, segments in items:
        if utt in got:
            np.testing.assert_array_equal(got[utt], segments.astype(np.float16).astype(np.float32))
    with pytest.raises(SpectrogramError, match="no segments for 1 utterance"):
        sp.read_segments([tmp_path / "a.h5"], [items[3][0]])
