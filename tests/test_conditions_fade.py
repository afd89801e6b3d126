"""Fade in / fade out: the gain is linear in time with slope ∓rate, on real RAVDESS speech."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from sernoise.conditions import ConditionError, Context, build_condition
from sernoise.conditions.fade import Fade, fade_gain
from sernoise.conditions.snr import difference_snr

SR = 16000


@pytest.fixture(scope="module")
def speech(ravdess_root):
    x, sr = sf.read(str(ravdess_root / "Actor_01" / "03-01-05-02-01-01-01.wav"), dtype="float32")
    assert sr == SR
    return x


def _measured_gain(x: np.ndarray, y: np.ndarray):
    """(t, y/x) on samples loud enough for the ratio to be precise."""
    keep = np.abs(x) > 1e-2
    t = np.flatnonzero(keep) / SR
    return t, y[keep].astype(np.float64) / x[keep].astype(np.float64)


@pytest.mark.parametrize("direction, sign", [("out", -1.0), ("in", 1.0)])
@pytest.mark.parametrize("rate", [0.02, 0.2])
def test_fade_slope(speech, direction, sign, rate):
    cond = Fade(f"fade-{direction}", direction=direction, rate_per_second=rate)
    res = cond(speech, SR, np.random.default_rng(0), Context(utt_id="u"))
    assert res.audio.shape == speech.shape and res.audio.dtype == np.float32
    t, g = _measured_gain(speech, res.audio)
    slope, intercept = np.polyfit(t, g, 1)
    assert abs(slope - sign * rate) < 1e-4
    duration = (speech.size - 1) / SR
    p = res.params
    assert p["direction"] == direction and p["rate_per_second"] == rate
    if direction == "out":
        assert p["gain_start"] == 1.0 and p["gain_end"] == pytest.approx(1 - rate * duration)
        assert intercept == pytest.approx(1.0, abs=1e-4)
    else:
        assert p["gain_end"] == 1.0 and p["gain_start"] == pytest.approx(1 - rate * duration)
        assert intercept + slope * duration == pytest.approx(1.0, abs=1e-4)
    assert res.audio[0] == pytest.approx(speech[0] * p["gain_start"], abs=1e-7)
    assert res.audio[-1] == pytest.approx(speech[-1] * p["gain_end"], abs=1e-7)
    assert math.isnan(res.snr_target) and res.noise is None and res.span is None
    assert math.isfinite(difference_snr(speech, res.audio))


def test_fade_deterministic_and_rng_unused(speech):
    cond = Fade("fade-out", direction="out")
    a = cond(speech, SR, np.random.default_rng(0), Context(utt_id="u"))
    b = cond(speech, SR, np.random.default_rng(99), Context(utt_id="u"))
    assert a.audio.tobytes() == b.audio.tobytes() and a.params == b.params


def test_fade_gain_floor():
    g = fade_gain(5 * SR, SR, "out", 0.5)  # would reach -1.5 at 5 s
    assert g.min() == 0.0 and g[0] == 1.0
    g = fade_gain(SR + 1, SR, "in", 0.02)
    assert g[-1] == 1.0 and g[0] == pytest.approx(0.98)


@pytest.mark.parametrize(
    "spec, argument",
    [
        ({"direction": "up"}, "direction"),
        ({"direction": "in", "rate_per_second": 0.0}, "rate_per_second"),
        ({"direction": "in", "rate_per_second": 0.6}, "rate_per_second"),
        ({"direction": "in", "rate_per_second": "2%"}, "rate_per_second"),
    ],
)
def test_fade_constructor_errors(spec, argument):
    with pytest.raises(ConditionError, match=rf"condition bad-fade: {argument}"):
        Fade("bad-fade", **spec)


def test_fade_registry_and_silence():
    cond = build_condition("fade-in", {"type": "fade", "direction": "in"})
    assert isinstance(cond, Fade)
    assert cond.describe() == {
        "id": "fade-in", "type": "fade", "family": "distortion", "perception": "retaining",
        "requires": [], "direction": "in", "rate_per_second": 0.02,
    }
    with pytest.raises(ConditionError, match="fade-in.*silent"):
        cond(np.zeros(SR, dtype=np.float32), SR, np.random.default_rng(0), Context(utt_id="u"))


@pytest.mark.parametrize("direction", ["in", "out"])
def test_cached_ramp_is_fade_gain_in_float32(speech, direction):
    """The cached float32 ramp is fade_gain rounded to float32 (up to one step), for any length
    and after the cache has grown; the output is float32(x·g) within float32 rounding."""
    from sernoise.conditions.fade import _RAMPS, gain_ramp

    _RAMPS.clear()
    for n in (1, 2, 1000, speech.size, 40 * SR, 3 * SR):  # 40 s grows the cache past its first size
        ramp = gain_ramp(n, SR, direction, 0.02)
        assert ramp.dtype == np.float32 and ramp.size == n and not ramp.flags.writeable
        ref = fade_gain(n, SR, direction, 0.02)
        np.testing.assert_allclose(ramp, ref, rtol=1.2e-7, atol=0)
        assert ramp[-1 if direction == "in" else 0] == 1.0
    cond = Fade(f"fade-{direction}", direction=direction, rate_per_second=0.2)
    res = cond(speech, SR, None, Context(utt_id="u"))
    exact = (speech.astype(np.float64) * fade_gain(speech.size, SR, direction, 0.2)).astype(np.float32)
    ulp = np.spacing(np.abs(speech))
    assert np.all(np.abs(res.audio.astype(np.float64) - exact) <= ulp)
    g = fade_gain(speech.size, SR, direction, 0.2)
    assert res.params["gain_start"] == float(g[0]) and res.params["gain_end"] == float(g[-1])
