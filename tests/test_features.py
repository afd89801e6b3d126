"""Log-Mel filterbank features and their archives (sernoise.features)."""

import filecmp
import subprocess
import sys

import h5py
import numpy as np
import pytest

from sernoise import features
from sernoise.audio_store import AudioStore, ShardWriter
from sernoise.features import (
    CHUNK_FRAMES,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    WIN_LENGTH,
    FeatureArchive,
    FeatureError,
    extract_store,
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


def test_mel_matrix_is_librosas_bit_for_bit():
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, htk=True, norm=None).astype(np.float32)
    assert np.array_equal(features._mel_matrix(), expected)


def test_filterbanks_match_a_numpy_fft_reference():
    # the same recipe with NumPy's FFT: SciPy's single-precision FFT differs by float32 rounding only
    x = (np.random.default_rng(3).standard_normal(SR) * 0.1).astype(np.float32)
    emphasised = np.concatenate([x[:1], x[1:] - np.float32(0.97) * x[:-1]])
    padded = np.zeros((n_frames(x.size) - 1) * HOP_LENGTH + WIN_LENGTH, dtype=np.float32)
    padded[: x.size] = emphasised
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN_LENGTH)[::HOP_LENGTH]
    spectrum = np.fft.rfft(frames * np.hamming(WIN_LENGTH).astype(np.float32), n=N_FFT, axis=1)
    power = (np.abs(spectrum) ** 2).astype(np.float32) / N_FFT
    reference = np.log(np.maximum(power @ features._mel_matrix().T, 1e-10))
    np.testing.assert_allclose(log_mel_fbank(x), reference, rtol=0, atol=1e-4)


def test_extract_store_reads_shards_in_blocks_and_keeps_the_asked_order(tmp_path):
    audio = {f"u{i}": _tone(0.3 + 0.05 * i, 200 + 150 * i) for i in range(7)}
    paths = []
    for k, names in enumerate((["u4", "u1", "u6"], ["u0", "u5", "u2", "u3"])):  # stored out of order
        paths.append(tmp_path / f"shard-{k}.h5")
        with ShardWriter(paths[-1]) as writer:
            for name in names:
                writer.add(name, audio[name])
    store = AudioStore(paths)
    wanted = ["u6", "u0", "u3", "u1"]
    assert extract_store(store, tmp_path / "subset.h5", utt_ids=wanted) == 4
    archive = FeatureArchive(tmp_path / "subset.h5")
    assert archive.utt_ids == wanted
    for name in wanted:  # the same values as one read and one filterbank per utterance
        expected = log_mel_fbank(store.read(name)).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(archive.read(name), expected)
    extract_store(AudioStore(paths[::-1]), tmp_path / "again.h5", utt_ids=wanted)  # shard order does not matter
    assert filecmp.cmp(tmp_path / "subset.h5", tmp_path / "again.h5", shallow=False)
    extract_store(store, tmp_path / "all.h5")
    assert FeatureArchive(tmp_path / "all.h5").utt_ids == sorted(audio)
    with pytest.raises(FeatureError, match="not in the audio store.*nope"):
        extract_store(store, tmp_path / "bad.h5", utt_ids=["u0", "nope"])


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
    # 60 utterances of 300-713 frames: about 30,000 frames, so 30 chunks of CHUNK_FRAMES (1024) rows
    rng = np.random.default_rng(0)
    items = [(f"u{i:02d}", rng.normal(size=(300 + 7 * i, N_MELS)).astype(np.float32)) for i in range(60)]
    write_feature_archive(tmp_path / "a.h5", items)
    archive = FeatureArchive(tmp_path / "a.h5")
    everything = archive.read_all()
    with h5py.File(tmp_path / "a.h5", "r") as f:  # small chunks: a scattered read decompresses little
        assert f["features"].chunks == (CHUNK_FRAMES, N_MELS)

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
            assert len(reads) == 1 and reads[0].stop - reads[0].start < 1500  # neighbours: one small slice
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


# ----------------------------------------------------------------------------- speed, same values


def _log_mel_fbank_as_before(x):
    """log_mel_fbank as written before its buffers were preallocated (scipy.fft.rfft, temporaries)."""
    import scipy.fft

    emphasised = np.empty_like(x)
    emphasised[0] = x[0]
    emphasised[1:] = x[1:] - features.PREEMPHASIS * x[:-1]
    count = n_frames(x.size)
    padded = np.zeros((count - 1) * HOP_LENGTH + WIN_LENGTH, dtype=np.float32)
    padded[: x.size] = emphasised
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN_LENGTH)[::HOP_LENGTH]
    spectrum = scipy.fft.rfft(frames * features._window(), n=N_FFT, axis=1, workers=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32) / N_FFT
    energies = power @ features._mel_matrix().T
    return np.log(np.maximum(energies, features.LOG_FLOOR)).astype(np.float32)


def _clips():
    rng = np.random.default_rng(7)
    yield _tone(0.3, 440)
    yield np.zeros(WIN_LENGTH + 3, dtype=np.float32)  # silence: every energy at the log floor
    yield (0.01 * rng.standard_normal(WIN_LENGTH - 1)).astype(np.float32)  # shorter than one frame
    yield (0.5 * rng.standard_normal(16000)).astype(np.float32)
    yield np.clip(3 * rng.standard_normal(3 * HOP_LENGTH + WIN_LENGTH), -1, 1).astype(np.float32)


@pytest.mark.parametrize("fast_fft", [True, False], ids=["pocketfft-loaded-directly", "scipy.fft.rfft"])
def test_filterbanks_are_bit_identical_to_the_earlier_code(fast_fft, monkeypatch):
    if not fast_fft:
        monkeypatch.setattr(features, "_PUBLIC_FFT_ONLY", True)
    for x in _clips():
        got = log_mel_fbank(x)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, _log_mel_fbank_as_before(x))


def test_filterbanks_of_real_speech_are_bit_identical_to_the_earlier_code(ravdess_root):
    import soundfile as sf

    for path in sorted(ravdess_root.glob("Actor_0[12]/*.wav"))[::6]:
        x, sr = sf.read(path, dtype="float32")
        assert sr == 16000
        np.testing.assert_array_equal(log_mel_fbank(x), _log_mel_fbank_as_before(x), err_msg=path.name)


def test_the_directly_loaded_pocketfft_is_scipys_rfft():
    import scipy.fft

    r2c = features._load_pocketfft_r2c()
    assert r2c is not None, "SciPy's pypocketfft could not be loaded from its file (another SciPy layout?)"
    frames = np.zeros((37, N_FFT), dtype=np.float32)
    frames[:, :WIN_LENGTH] = np.random.default_rng(3).standard_normal((37, WIN_LENGTH))
    got = r2c(frames, (1,), True, 0, None, 1)
    np.testing.assert_array_equal(got, scipy.fft.rfft(frames[:, :WIN_LENGTH], n=N_FFT, axis=1, workers=1))
    assert got.dtype == np.complex64


def test_a_feature_job_imports_neither_pandas_nor_scipy_fft():
    # extract_features.py's imports and one filterbank, in a fresh process: the two cost ~0.35 s of
    # start-up per feature job
    code = ("import sys\n"
            "from sernoise.audio_store import AudioStore\n"
            "from sernoise.features import FeatureError, extract_store, log_mel_fbank, write_feature_archive\n"
            "from sernoise.io import read_csv_text_columns\n"
            "from sernoise.runlog import rule_log\n"
            "import numpy as np\n"
            "log_mel_fbank(np.ones(16000, dtype=np.float32))\n"
            "from sernoise.features import _rfft\n"
            "def features_rfft(n):\n"
            "    return _rfft(np.ones((1, n), dtype=np.float32))[0]\n"
            "print(sorted(m for m in ('pandas', 'scipy.fft') if m in sys.modules))\n"
            # scipy.fft imported afterwards loads the same extension again under its own name
            "import scipy.fft\n"
            "assert np.array_equal(scipy.fft.rfft(np.ones(512, dtype=np.float32)), features_rfft(512))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    script = (features.Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "extract_features.py").read_text()
    assert "augmented_io" not in script and "pandas" not in script.split('"""')[-1]


def test_extract_store_refuses_a_repeated_utterance(tmp_path):
    with ShardWriter(tmp_path / "s.h5") as writer:
        writer.add("u0", _tone(0.3, 300))
    with pytest.raises(FeatureError, match="duplicate utt_id"):
        extract_store(AudioStore([tmp_path / "s.h5"]), tmp_path / "dup.h5", utt_ids=["u0", "u0"])
    assert not (tmp_path / "dup.h5").exists()
