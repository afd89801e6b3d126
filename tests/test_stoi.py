"""sernoise.stoi: the same values as pystoi (the reference, imported here only) on real speech in
noise, after gain changes and filtering, on synthetic signals with digital silence and awkward
lengths, at other sampling rates, and in the one case where the last bits of the resampling decide
which frames are silent; too-short signals (pystoi's warning and placeholder; NaN and a note from
measure_stoi), identical signals, shape errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import soundfile as sf

import sernoise.stoi as fast
from sernoise.quality import measure_stoi
from sernoise.stoi import TOO_SHORT_MESSAGE, TooFewFramesWarning, stoi

pystoi = pytest.importorskip("pystoi", reason="pystoi (the reference) is not installed")
from pystoi import utils as pystoi_utils  # noqa: E402

SR = 16000
TOL = 1e-12  # |this - pystoi|; measured differences are ~1e-15
# three actors, both sexes, neutral to strong emotion, both statements
RAVDESS = ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_02/03-01-05-02-02-01-02.wav",
           "Actor_05/03-01-08-02-01-02-05.wav", "Actor_08/03-01-04-01-02-02-08.wav"]


def reference(x: np.ndarray, y: np.ndarray, fs: int = SR) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(pystoi.stoi(x, y, fs, extended=False))


def assert_same(x: np.ndarray, y: np.ndarray, fs: int = SR) -> float:
    expected, got = reference(x, y, fs), stoi(x, y, fs)
    assert abs(got - expected) <= TOL, (got, expected, got - expected)
    return got


def white(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    return x + noise * np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))


@pytest.fixture(scope="module")
def speech(ravdess_root) -> list[np.ndarray]:
    out = []
    for name in RAVDESS:
        x, sr = sf.read(ravdess_root / name, dtype="float32")  # as the shards store audio
        assert sr == SR and x.ndim == 1, "shared data is 16 kHz mono"
        out.append(x.astype(np.float64))
    return out


# ------------------------------------------------------------------------------ real speech


@pytest.mark.shared_data
@pytest.mark.parametrize("snr_db", [-10, -5, 0, 5, 10, 20, 40])
def test_real_speech_in_white_noise_matches_pystoi(speech, snr_db, monkeypatch):
    # real speech does not come near the threshold: the blocked resampling is used throughout
    monkeypatch.setattr(fast, "_resample_exact", lambda *args: pytest.fail("resampled with resample_poly"))
    values = [assert_same(x, at_snr(x, white(x.size, i), snr_db)) for i, x in enumerate(speech)]
    assert all(0.0 < v < 1.0 for v in values), values


@pytest.mark.shared_data
@pytest.mark.parametrize("gain", [1e-3, 0.25, 3.0])
def test_real_speech_after_a_gain_change_matches_pystoi(speech, gain):
    for i, x in enumerate(speech):
        assert_same(x, gain * x)  # a pure gain: STOI ~1
        assert_same(x, gain * at_snr(x, white(x.size, 10 + i), 5.0))
        assert_same(gain * x, at_snr(x, white(x.size, 20 + i), 5.0))  # the clean signal scaled


@pytest.mark.shared_data
def test_real_speech_filtered_clipped_and_float32_stored_matches_pystoi(speech):
    for i, x in enumerate(speech):
        smeared = np.convolve(x, np.ones(9) / 9, mode="same")  # a low-pass, not additive
        assert_same(x, smeared)
        clipped = np.clip(x, -0.2 * np.max(np.abs(x)), 0.2 * np.max(np.abs(x)))
        assert_same(x, clipped)
        stored = at_snr(x, white(x.size, 30 + i), 0.0).astype(np.float32).astype(np.float64)
        assert_same(x, stored)


@pytest.mark.shared_data
def test_measure_stoi_on_real_speech_is_the_pystoi_value_without_note(speech):
    x = speech[0].astype(np.float32)
    y = at_snr(speech[0], white(x.size, 3), 5.0).astype(np.float32)
    value, note = measure_stoi(x, y)
    assert note == ""
    assert abs(value - reference(x.astype(np.float64), y.astype(np.float64))) <= TOL


# ------------------------------------------------------------------------------ synthetic signals


def speechlike(n: int, seed: int, fs: int = SR) -> np.ndarray:
    """Noise shaped by a slow syllable-rate envelope and a few formant-like resonances."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))) ** 2
    carrier = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220, 440, 1100, 2500))
    return envelope * (carrier + 0.3 * rng.standard_normal(n))


@pytest.mark.parametrize("n", [16001, 16000 * 2 + 77, 48000 + 127, 24321, 39999])
def test_odd_lengths_and_lengths_off_the_hop_match_pystoi(n):
    x = speechlike(n, n)
    for snr_db in (-5.0, 5.0, 20.0):
        assert_same(x, at_snr(x, white(n, n + 1), snr_db))


def test_digital_silence_at_start_end_and_middle_matches_pystoi():
    """Exact zeros before, between and after two bursts: the silent frames are removed (and the noisy
    signal's frames with them), and what stays is overlap-added, as pystoi does."""
    burst = speechlike(SR, 1)
    for gap in (0, 1, 333, 4000, 8191):
        x = np.concatenate([np.zeros(5000), burst, np.zeros(gap), 0.5 * burst[:12345], np.zeros(3001)])
        noise = white(x.size, gap)
        assert_same(x, at_snr(x, noise, 0.0))
        assert_same(x, x + 1e-3 * noise)  # noise in the silent stretches too
        y = at_snr(x, noise, 10.0)
        y[6000:9000] = 0.0  # the processed signal drops out inside the speech
        assert_same(x, y)


def test_quiet_stretches_below_the_40_db_range_are_dropped_as_pystoi():
    x = speechlike(3 * SR, 7)
    x[SR:2 * SR] *= 10 ** (-45 / 20)  # 45 dB down: dropped; 35 dB down would stay
    x[2 * SR + 4000:2 * SR + 9000] *= 10 ** (-35 / 20)
    assert_same(x, at_snr(x, white(x.size, 8), 5.0))


def test_a_frame_at_the_40_db_threshold_resamples_as_pystoi(monkeypatch):
    """A tone whose period divides the hop, then the same tone 40 dB down: frame energies fall on
    the threshold to the last bits, where the blocked resampling's rounding could keep a frame pystoi
    drops; stoi resamples such a signal with resample_poly itself and gets pystoi's value."""
    calls = []
    exact = fast._resample_exact
    monkeypatch.setattr(fast, "_resample_exact", lambda *args: (calls.append(args[2]), exact(*args))[1])
    tone = np.sin(2 * np.pi * 625 * np.arange(int(1.5 * SR)) / SR)  # 16 samples at 10 kHz
    x = np.concatenate([tone, 0.01 * tone])
    assert_same(x, x + 0.05 * white(x.size, 0))
    assert calls == [SR], "the energy on the threshold should send stoi to resample_poly"
    calls.clear()
    assert_same(x, x)  # identical signals on the threshold: 1 as well
    assert calls == [SR]


def test_the_exact_resampling_path_matches_pystoi_everywhere(monkeypatch):
    monkeypatch.setattr(fast, "MASK_MARGIN_DB", math.inf)  # always take the resample_poly path
    x = speechlike(40000 + 3, 5)
    x[:3000] = 0.0
    assert_same(x, at_snr(x, white(x.size, 6), 0.0))


@pytest.mark.parametrize("fs", [8000, 10000, 22050, 44100])
def test_other_sampling_rates_match_pystoi(fs):
    n = int(2.3 * fs) + 5
    x = speechlike(n, fs, fs)
    x[: fs // 4] = 0.0
    assert_same(x, at_snr(x, white(n, fs), 3.0), fs)


@pytest.mark.parametrize("fs", [8000, 16000, 22050, 44100])
def test_blocked_resampling_is_resample_poly_to_the_last_bits(fs):
    from scipy.signal import resample_poly

    window = pystoi_utils._resample_window_oct(10000, fs)
    for n in (1000, 30011):
        x, y = speechlike(n, n, fs), white(n, n)
        expected = np.stack([resample_poly(s, 10000, fs, window=window / np.sum(window)) for s in (x, y)])
        got = fast._resample(x, y, fs)
        assert got.shape == expected.shape
        scale = np.max(np.abs(expected), axis=1, keepdims=True)
        assert np.max(np.abs(got - expected) / scale) < 1e-14
        assert np.array_equal(fast._resample_exact(x, y, fs), expected)


def test_constants_are_pystoi_s():
    window = pystoi_utils._resample_window_oct(10000, SR)
    assert np.array_equal(fast.resampling_filter(SR)[2], window / np.sum(window))
    obm, centres = pystoi_utils.thirdoct(10000, 512, 15, 150)
    assert np.array_equal(fast.third_octave_matrix()[0], obm)
    assert np.array_equal(fast.third_octave_matrix()[1], centres)


# ------------------------------------------------------------------------------ edge cases


def test_identical_signals_give_one_as_pystoi():
    x = speechlike(2 * SR + 11, 3)
    assert abs(stoi(x, x, SR) - 1.0) <= 1e-12
    assert_same(x, x)


@pytest.mark.parametrize("n", [6000, 1000, 300, 1])
def test_too_short_warns_and_returns_pystoi_s_placeholder(n):
    x = speechlike(n, 2)
    with pytest.warns(TooFewFramesWarning) as caught:
        assert stoi(x, x + 0.1, SR) == 1e-5
    assert str(caught[0].message) == TOO_SHORT_MESSAGE
    if n >= 420:  # pystoi warns the same words (below one frame it raises an AxisError instead)
        with pytest.warns(RuntimeWarning) as reference_caught:
            assert pystoi.stoi(x, x + 0.1, SR) == 1e-5
        assert str(reference_caught[0].message) == TOO_SHORT_MESSAGE


def test_too_short_after_silent_frame_removal_warns_as_pystoi():
    x = np.zeros(3 * SR)
    x[SR:SR + 3000] = speechlike(3000, 4)  # long enough, but too little left after silence removal
    with pytest.warns(TooFewFramesWarning):
        assert stoi(x, x + 0.01, SR) == 1e-5
    with pytest.warns(RuntimeWarning, match="Not enough STFT frames"):
        assert pystoi.stoi(x, x + 0.01, SR) == 1e-5


@pytest.mark.parametrize("n", [6000, 300, 0])
def test_measure_stoi_too_short_gives_nan_and_the_note(n):
    x = speechlike(n, 2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning is turned into the note, not passed on
        value, note = measure_stoi(x, x)
    assert math.isnan(value)
    assert note == "stoi: " + TOO_SHORT_MESSAGE


def test_shape_mismatch_raises():
    x = speechlike(SR, 1)
    with pytest.raises(ValueError, match="same length"):
        stoi(x, x[:-1], SR)
    with pytest.raises(ValueError, match="1-D"):
        stoi(np.stack([x, x]), np.stack([x, x]), SR)
