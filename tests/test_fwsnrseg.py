"""sernoise.fwsnrseg against the implementation it replaces, pysepm_evo's fwSNRseg (pysepm-evo 0.1.1):
the same value on real speech in white noise and after a gain change, on signals with digital
silence, on lengths that are not a whole number of hops, at other sampling rates; and
sernoise.quality.measure_fwsnrseg, which now calls it."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
import warnings

import numpy as np
import pytest
import soundfile as sf

from sernoise.fwsnrseg import BLOCK, band_filters, framing, fwsnrseg
from sernoise.quality import measure_fwsnrseg

SR = 16000
TOL = 1e-12  # dB; on the machine this was written on the values are equal bit for bit


@pytest.fixture(scope="module")
def pysepm_fwsnrseg():
    """``pysepm_evo.qualityMeasures.fwSNRseg`` (skips when pysepm-evo is not installed).

    pysepm-evo 0.1.1 cannot be imported as a package: its ``__init__`` imports the reverberation
    measures, which need ``srmrpy`` (not on PyPI).  So the package object is registered by hand with
    its installed path (``qualityMeasures`` and its relative imports then load from the installed
    files without running ``__init__``), and ``scipy.signal.kaiser``, which SciPy 1.13 moved to
    ``scipy.signal.windows`` and which ``pysepm_evo.util`` imports, is aliased."""
    spec = importlib.util.find_spec("pysepm_evo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pysepm-evo is not installed (pip install -r requirements.txt)")
    import scipy.signal

    if not hasattr(scipy.signal, "kaiser"):
        scipy.signal.kaiser = scipy.signal.windows.kaiser
    if "pysepm_evo" not in sys.modules:
        package = types.ModuleType("pysepm_evo")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        sys.modules["pysepm_evo"] = package
    measures = importlib.import_module("pysepm_evo.qualityMeasures")

    def reference(clean, processed, fs=SR):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(measures.fwSNRseg(np.asarray(clean, np.float64), np.asarray(processed, np.float64), fs))

    return reference


def _same(ours: float, theirs: float) -> bool:
    return (math.isnan(ours) and math.isnan(theirs)) or abs(ours - theirs) <= TOL


def _in_white_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size)
    y = x + np.sqrt(np.mean(x.astype(np.float64) ** 2) / 10 ** (snr_db / 10)) * noise
    return (y / max(1.0, np.max(np.abs(y)))).astype(np.float32)


# ------------------------------------------------------------------------------ real speech

CLIPS = ["03-01-01-01-01-01-01.wav", "03-01-05-02-02-01-02.wav", "03-01-08-02-01-02-07.wav"]


def _clip(ravdess_root, name: str) -> np.ndarray:
    x, sr = sf.read(ravdess_root / f"Actor_{name[-6:-4]}" / name, dtype="float32")
    assert sr == SR, "shared data is 16 kHz"
    return x


@pytest.mark.parametrize("name", CLIPS)
def test_equals_pysepm_on_speech_in_white_noise(ravdess_root, pysepm_fwsnrseg, name):
    x = _clip(ravdess_root, name)
    values = []
    for seed, snr_db in enumerate((-10, -5, 0, 5, 10, 20, 30)):
        y = _in_white_noise(x, snr_db, seed)
        ours, theirs = fwsnrseg(x, y), pysepm_fwsnrseg(x, y)
        assert _same(ours, theirs), (snr_db, ours, theirs)
        assert measure_fwsnrseg(x, y) == (ours, "")
        values.append(ours)
    assert values == sorted(values) and -10 <= values[0] < values[-1] <= 35  # rises with the SNR


@pytest.mark.parametrize("name", CLIPS)
def test_equals_pysepm_after_a_gain_change(ravdess_root, pysepm_fwsnrseg, name):
    x = _clip(ravdess_root, name)
    for gain in (0.5, 2.0, 1e-3):
        y = (gain * x).astype(np.float32)
        assert _same(fwsnrseg(x, y), pysepm_fwsnrseg(x, y)), gain
        assert fwsnrseg(x, y) == pytest.approx(35.0, abs=0.5)  # normalised spectra: (nearly) gain-free
        noisy = (gain * _in_white_noise(x, 10, 7)).astype(np.float32)
        assert _same(fwsnrseg(x, noisy), pysepm_fwsnrseg(x, noisy)), gain


def test_identical_signals_score_the_ceiling(ravdess_root):
    x = _clip(ravdess_root, CLIPS[0])
    assert fwsnrseg(x, x) == 35.0
    assert measure_fwsnrseg(x, x) == (35.0, "")


# ------------------------------------------------------------------------------ synthetic signals


def _speechlike(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean signal (noise through a changing resonance, with a changing level) and it in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = np.sin(2 * np.pi * (200 + 150 * np.sin(2 * np.pi * 3 * t)) * t) * (0.2 + 0.2 * np.sin(2 * np.pi * 2 * t))
    x = x + 0.05 * rng.standard_normal(n)
    return x, x + 0.05 * rng.standard_normal(n)


# lengths: 2 frames' worth (measure_fwsnrseg's minimum), a hop - 1 and + 1 around a frame boundary,
# odd, one frame short of / at / past a FFT block, a second and a bit
LENGTHS = [960, 1079, 1080, 1081, 4799, 480 + 120 * (BLOCK - 1) + 7, 480 + 120 * BLOCK, 480 + 120 * BLOCK + 119,
           16000, 16037]


@pytest.mark.parametrize("n", LENGTHS)
def test_equals_pysepm_on_lengths_that_are_not_whole_hops(pysepm_fwsnrseg, n):
    x, y = _speechlike(n, n)
    for clean, processed in ((x, y), (x, x), (x, 0.3 * x), (y, x)):
        assert _same(fwsnrseg(clean, processed), pysepm_fwsnrseg(clean, processed)), n
    assert fwsnrseg(x, x) == 35.0


@pytest.mark.parametrize("where", ["start", "middle", "end", "all"])
@pytest.mark.parametrize("n", [16000, 16037, 4799])
def test_digital_silence_gives_pysepm_value(pysepm_fwsnrseg, where, n):
    """pysepm adds machine epsilon to both signals, so digital silence is a constant eps, never
    0/0: a frame silent in both signals scores 35 dB, in the clean one only -10 dB, and the clip
    mean comes out finite.  Ours does the same and gives the same value."""
    x, y = _speechlike(n, 11)
    part = {"start": slice(0, n // 3), "middle": slice(n // 3, 2 * n // 3), "end": slice(2 * n // 3, n),
            "all": slice(None)}[where]
    silent_x, silent_y = x.copy(), y.copy()
    silent_x[part] = 0.0
    silent_y[part] = 0.0
    for clean, processed in ((silent_x, silent_y), (silent_x, y), (x, silent_y)):
        ours, theirs = fwsnrseg(clean, processed), pysepm_fwsnrseg(clean, processed)
        assert _same(ours, theirs), (ours, theirs)
        assert math.isfinite(ours)
        assert measure_fwsnrseg(clean, processed) == (ours, "")
    if where == "all":
        assert fwsnrseg(silent_x, silent_y) == 35.0 and fwsnrseg(silent_x, y) == -10.0


def test_float32_quantised_audio_with_silent_stretches(pysepm_fwsnrseg):
    """What the pipeline measures: float32 audio with exact zeros (leading and trailing silence)."""
    x, y = _speechlike(20000, 3)
    x, y = np.pad(x, (1234, 2345)).astype(np.float32), np.pad(y, (1234, 2345)).astype(np.float32)
    assert _same(fwsnrseg(x, y), pysepm_fwsnrseg(x, y))
    assert measure_fwsnrseg(x, y) == (fwsnrseg(x, y), "")


@pytest.mark.parametrize("fs", [8000, 22050, 44100])
def test_equals_pysepm_at_other_sampling_rates(pysepm_fwsnrseg, fs):
    x, y = _speechlike(fs + 333, fs)
    assert _same(fwsnrseg(x, y, fs), pysepm_fwsnrseg(x, y, fs))


def test_non_finite_samples_give_nan_and_the_note(pysepm_fwsnrseg):
    x, y = _speechlike(16000, 5)
    for bad in (np.nan, np.inf):
        z = y.copy()
        z[8000] = bad
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf, 0 * inf
            assert math.isnan(fwsnrseg(x, z)) and not math.isfinite(pysepm_fwsnrseg(x, z))
        value, note = measure_fwsnrseg(x, z)
        assert math.isnan(value) and note == "fwsnrseg: undefined (non-finite samples)"


# ------------------------------------------------------------------------------ contract


def test_framing_and_cached_band_filters():
    win, skip, nfft, window, _ = framing(SR)
    assert (win, skip, nfft) == (480, 120, 1024) and window.shape == (480,)
    filters = band_filters(SR, nfft)
    assert filters is band_filters(SR, nfft)  # lru_cache per (fs, nfft)
    assert not filters.flags.writeable
    assert filters.shape[0] == 25 and filters.shape[1] <= nfft // 2
    assert np.all(filters.any(axis=1)) and filters[:, -1].any()  # every band used; cut after the last used bin


def test_errors():
    x = np.ones(2000)
    with pytest.raises(ValueError, match="shape"):
        fwsnrseg(x, x[:-1])
    with pytest.raises(ValueError, match="1-D"):
        fwsnrseg(np.ones((2, 2000)), np.ones((2, 2000)))
    with pytest.raises(ValueError, match="fewer than one"):
        fwsnrseg(x[:500], x[:500])
