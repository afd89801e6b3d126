"""Fade in / fade out (paper §5.2 "Fade", SPEC §5): the loudness changes by a fixed rate per second.

"The loudness of the utterance is faded by 2% every second" is read as a linear amplitude gain
that changes by ``r`` (default 0.02) of full scale per second, applied per sample at
``t = k / sr`` (``k = 0 … n−1``, ``T = (n−1) / sr`` the time of the last sample):

* fade-out: ``g(t) = 1 − r·t`` — starts at 1 and falls by ``r`` per second;
* fade-in:  ``g(t) = 1 − r·(T − t)`` — rises by ``r`` per second and reaches 1 at the last sample.

The gain is floored at 0 (it would only go negative for utterances longer than ``1/r`` seconds,
50 s at the default rate).  The transform is deterministic; ``rng`` is accepted for the common
signature and not used.  It is not additive: ``snr_target`` is NaN and the caller measures the
difference-signal SNR.

Computation: the gain is evaluated in float64 as above, rounded once to float32 and the product
``x·g`` taken in float32 (one rounding, as before; the gain's own rounding changes it by at most
6e-8 relative, i.e. < 1e-6 dB).  The fade-out gain does not depend on the utterance length, and
the fade-in gain is the fade-out gain read backwards from the last sample
(``1 − r·(T − t) = 1 − r·((n−1−k)/sr)``), so one ramp per (direction, rate) is computed once,
grown on demand and sliced for every utterance (:func:`gain_ramp`).  ``gain_start`` and
``gain_end`` in params are the float64 values of the formulas above.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .base import Condition, Context, Result

DIRECTIONS = ("in", "out")
DEFAULT_RATE = 0.02
MAX_RATE = 0.5


def fade_gain(n: int, sr: int, direction: str, rate_per_second: float) -> np.ndarray:
    """The per-sample gain of :class:`Fade` (float64, length ``n``), as in the module docstring."""
    t = np.arange(n, dtype=np.float64) / sr
    if direction == "out":
        g = 1.0 - rate_per_second * t
    else:
        g = 1.0 - rate_per_second * (t[-1] - t)
    return np.maximum(g, 0.0)


# (direction, rate, sr) -> float32 ramp; for "in" stored reversed, so every slice is contiguous.
_RAMPS: dict[tuple[str, float, int], np.ndarray] = {}
_RAMP_CHUNK = 16 * 16000  # grow in steps of 16 s of audio (at 16 kHz)


def gain_ramp(n: int, sr: int, direction: str, rate_per_second: float) -> np.ndarray:
    """:func:`fade_gain` as float32 (read-only view of a cached ramp; one float32 rounding apart)."""
    key = (direction, float(rate_per_second), int(sr))
    ramp = _RAMPS.get(key)
    if ramp is None or ramp.size < n:
        size = max(n, 0 if ramp is None else 2 * ramp.size)
        size = -(-size // _RAMP_CHUNK) * _RAMP_CHUNK
        ramp = np.maximum(1.0 - rate_per_second * (np.arange(size, dtype=np.float64) / sr), 0.0).astype(np.float32)
        if direction == "in":
            ramp = ramp[::-1].copy()
        ramp.setflags(write=False)
        _RAMPS[key] = ramp
    return ramp[:n] if direction == "out" else ramp[ramp.size - n :]


class Fade(Condition):
    """Linear loudness fade: ``direction`` in | out at ``rate_per_second`` (in (0, 0.5], default 0.02)."""

    type_name = "fade"
    family = "distortion"
    default_perception = "retaining"
    requires = frozenset()
    additive = False

    def __init__(
        self,
        condition_id: str,
        *,
        direction: str,
        rate_per_second: float = DEFAULT_RATE,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        if direction not in DIRECTIONS:
            raise self._error("direction", f"must be one of {list(DIRECTIONS)}, got {direction!r}")
        self.direction = direction
        if (
            isinstance(rate_per_second, bool)
            or not isinstance(rate_per_second, numbers.Real)
            or not math.isfinite(float(rate_per_second))
        ):
            raise self._error("rate_per_second", f"must be a number, got {rate_per_second!r}")
        if not 0.0 < float(rate_per_second) <= MAX_RATE:
            raise self._error("rate_per_second", f"{rate_per_second!r} outside (0, {MAX_RATE}]")
        self.rate_per_second = float(rate_per_second)

    def args(self) -> dict:
        return {"direction": self.direction, "rate_per_second": self.rate_per_second}

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        n = x.size
        y = np.multiply(np.asarray(x, dtype=np.float32), gain_ramp(n, sr, self.direction, self.rate_per_second))
        # The float64 gains at the first and last sample, by the formulas of fade_gain.
        ramp_end = max(1.0 - self.rate_per_second * ((n - 1) / sr), 0.0)
        params = {
            "direction": self.direction,
            "rate_per_second": self.rate_per_second,
            "gain_start": 1.0 if self.direction == "out" else ramp_end,
            "gain_end": ramp_end if self.direction == "out" else 1.0,
        }
        return Result(y, params)
