"""sernoise.audio: decode once to mono 16 kHz float32, and name every kind of bad file."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from sernoise.audio import TARGET_SR, AudioError, check_audio, load_checked, read_audio


def _tone(seconds: float, sr: int, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture()
def bad_files(tmp_path):
    """One file of each rejectable kind, with the start of the reason it must get."""
    files = {}
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), TARGET_SR, subtype="PCM_16")
    files[empty] = "empty"
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(TARGET_SR, np.float32), TARGET_SR, subtype="PCM_16")
    files[silent] = "silent"
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    files[corrupt] = "unreadable"
    files[tmp_path / "missing.wav"] = "unreadable"
    nan = tmp_path / "nan.wav"
    x = _tone(0.5, TARGET_SR)
    x[100] = np.nan
    sf.write(nan, x, TARGET_SR, subtype="FLOAT")
    files[nan] = "non-finite"
    return files


def test_bad_files_get_their_reason(bad_files):
    for path, expected in bad_files.items():
        x, _, reason = load_checked(path)
        assert x is None, path
        assert reason is not None and reason.startswith(expected), (path, reason)


def test_read_audio_errors_name_the_file(tmp_path, bad_files):
    for path, expected in bad_files.items():
        if expected != "unreadable":
            continue
        with pytest.raises(AudioError) as info:
            read_audio(path)
        assert str(info.value).startswith(f"{path}: unreadable ("), str(info.value)


def test_stereo_48k_24bit_is_accepted_as_mono_16k(tmp_path):
    seconds = 1.25
    left = _tone(seconds, 48000, 440.0, 0.4)
    right = _tone(seconds, 48000, 660.0, 0.2)
    path = tmp_path / "stereo48k.wav"
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="PCM_24")

    x, orig_sr, reason = load_checked(path)
    assert reason is None
    assert orig_sr == 48000
    assert x.dtype == np.float32 and x.ndim == 1 and x.flags["C_CONTIGUOUS"]
    assert abs(x.size - seconds * TARGET_SR) <= 1
    # Mono = mean of channels: the 440 Hz part survives resampling at about half amplitude.
    spectrum = np.abs(np.fft.rfft(x)) / (x.size / 2)
    freqs = np.fft.rfftfreq(x.size, 1 / TARGET_SR)
    assert spectrum[np.argmin(np.abs(freqs - 440))] == pytest.approx(0.2, abs=0.02)
    assert spectrum[np.argmin(np.abs(freqs - 660))] == pytest.approx(0.1, abs=0.02)


def test_mono_16bit_16k_is_read_unchanged(tmp_path):
    ints = np.random.default_rng(1).integers(-32768, 32768, 8000, dtype=np.int16)
    path = tmp_path / "pcm16.wav"
    sf.write(path, ints, TARGET_SR, subtype="PCM_16")
    x, sr = read_audio(path)
    assert sr == TARGET_SR
    np.testing.assert_array_equal(x, ints.astype(np.float32) / 32768)


def test_check_audio_messages():
    assert check_audio(np.zeros(0, np.float32)) == "empty (no samples)"
    assert check_audio(np.array([0.1, np.inf], np.float32)) == "non-finite samples (NaN/Inf)"
    reason = check_audio(np.full(10, 1e-5, np.float32))
    assert reason.startswith("silent (peak 1e-05 below 0.0001")
    assert check_audio(np.full(10, 1e-3, np.float32)) is None
    assert check_audio(np.full(10, 1e-3, np.float32), silence_peak=1e-2).startswith("silent")


@pytest.mark.shared_data
def test_real_ravdess_file_reads_at_16k(ravdess_root):
    path = sorted((ravdess_root / "Actor_01").glob("*.wav"))[0]
    x, orig_sr, reason = load_checked(path)
    assert reason is None and orig_sr == 16000
    assert x.size == sf.info(path).frames
    assert os.fspath(path).endswith(".wav")
