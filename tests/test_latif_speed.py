"""Speed perturbation for Latif et al.'s training data (sernoise.latif.speed): SoX ``speed``, tempo and pitch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sernoise.latif.speed import PAPER_FACTORS, perturbed_copies, speed_perturb

SR = 16000

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="SoX not installed")


def _tone(frequency: float = 200.0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _peak_frequency(y: np.ndarray) -> float:
    # zero-padded to 1 Hz bins whatever the length, so the peak is read to the nearest Hz
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size), n=SR * 4))
    return float(np.fft.rfftfreq(SR * 4, 1 / SR)[spectrum.argmax()])


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_changes_length_and_pitch_together(factor):
    x = _tone()
    y = speed_perturb(x, SR, factor)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - x.size / factor) <= 2
    assert _peak_frequency(y) == pytest.approx(200.0 * factor, abs=1.0)
    assert 0.45 < np.abs(y[SR // 10: -SR // 10]).max() < 0.55  # the level is kept


def test_speed_is_repeatable_and_factor_one_is_a_copy():
    x = _tone(330.0, 0.5)
    assert np.array_equal(speed_perturb(x, SR, 0.9), speed_perturb(x, SR, 0.9))
    same = speed_perturb(x, SR, 1.0)
    assert np.array_equal(same, x) and same is not x


def test_perturbed_copies_follow_the_paper_factors():
    x = _tone(250.0, 0.5)
    copies = perturbed_copies(x, SR)
    assert PAPER_FACTORS == (0.9, 1.1) and len(copies) == 2
    for factor, y in zip(PAPER_FACTORS, copies):
        assert np.array_equal(y, speed_perturb(x, SR, factor))
        assert abs(y.size - x.size / factor) <= 2


@pytest.mark.parametrize("factor", [0, -0.9, float("nan"), float("inf"), "1.1", True, None])
def test_bad_factors_are_refused(factor):
    with pytest.raises(ValueError, match="factor"):
        speed_perturb(_tone(), SR, factor)
    with pytest.raises(ValueError, match="factor"):
        perturbed_copies(_tone(), SR, (0.9, factor))


def test_bad_audio_and_rate_are_refused():
    with pytest.raises(ValueError, match="mono"):
        speed_perturb(np.zeros((10, 2), np.float32), SR, 0.9)
    with pytest.raises(ValueError, match="sample_rate"):
        speed_perturb(_tone(), 0, 0.9)
