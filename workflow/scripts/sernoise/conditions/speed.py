"""Speed conditions (paper §5.2 *SpeedUtt* and *SpeedSeg*; SPEC §5 ``speed-utt-*``, ``speed-seg``).

Both change the tempo while keeping the pitch, with SoX's ``tempo -s`` effect (WSOLA, tuned
for speech by ``-s``).  Chosen over a Rubber Band time stretch because:

* WSOLA rearranges whole waveform segments in the time domain, so voice quality is kept
  without phase-vocoder "phasiness", and it is several times faster (≈8 ms for 4 s of speech
  against 30-140 ms);
* its output starts with the input's first samples unchanged, so a sped-up segment splices
  back into the untouched audio in phase at its start (see :class:`SpeedSegment`);
* its output length is ``round(len / factor)`` exactly, as measured on speech.

A factor above 1 speeds up (shorter output), below 1 slows down.  Outputs are fitted to
exactly ``round(len / factor)`` samples (a guard: a deviation beyond 1 % is an error).

Batches: :meth:`SpeedUtterance.apply_batch` runs many utterances through one SoX process, each
with its own ``tempo`` chain (:func:`.tools.run_sox_batch`); outputs are bit-identical to
separate calls.  SoX's ``tempo`` drains every chain to exactly ``⌊n/factor + ½⌋`` samples
(its own rounding of the expected length), which is where the joined output is split.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import Condition, ConditionError, Context, Result, SkipUtterance
from .tools import check_input, fit_length, run_sox, run_sox_batch

FACTOR_RANGE = (0.5, 2.0)
MIN_SEGMENT_S = 0.05  # WSOLA needs some material: shorter segments are skipped


def _tempo_effect(factor: float) -> list[str]:
    return ["tempo", "-s", repr(float(factor))]


def _fitted(y: np.ndarray, n: int, factor: float) -> np.ndarray:
    target = int(round(n / factor))
    if abs(y.size - target) > max(2, 0.01 * target):
        raise ConditionError(f"sox tempo {factor}: produced {y.size} samples, expected about {target}")
    return fit_length(y, target)


def tempo(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster with its pitch kept; exactly ``round(len/factor)`` samples."""
    return _fitted(run_sox(x, sr, _tempo_effect(factor)), x.size, factor)


def tempo_batch(xs: Sequence[np.ndarray], sr: int, factor: float) -> list[np.ndarray]:
    """:func:`tempo` of every ``xs[i]``, with ONE SoX process; identical to separate calls."""
    xs = [np.asarray(x, dtype=np.float32) for x in xs]
    # SoX tempo's own output length: floor(n / factor + 0.5), computed in double as SoX does.
    lengths = [math.floor(x.size / float(factor) + 0.5) for x in xs]
    ys = run_sox_batch(xs, sr, [_tempo_effect(factor)] * len(xs), out_lengths=lengths)
    return [_fitted(y, x.size, factor) for x, y in zip(xs, ys)]


def _check_factor(condition: Condition, factor) -> float:
    if isinstance(factor, bool) or not isinstance(factor, (int, float)):
        raise condition._error("factor", f"must be a number, got {factor!r}")
    factor = float(factor)
    condition._check_range("factor", factor, *FACTOR_RANGE)
    if factor == 1.0:
        raise condition._error("factor", "1.0 changes nothing")
    return factor


class SpeedUtterance(Condition):
    """The whole utterance sped up (``factor`` > 1) or slowed down (< 1), pitch unchanged.

    The paper uses 1.25 and 0.75; both alter perceived emotion (Table 2), hence the default
    perception class ``altering``.  Params: ``factor``, ``duration_in_s``, ``duration_out_s``.
    The length changes, so the difference-signal SNR is undefined (NaN).
    """

    type_name = "speed_utterance"
    family = "distortion"
    default_perception = "altering"

    def __init__(self, condition_id: str, *, factor: float = 1.25, perception: str | None = None):
        super().__init__(condition_id, perception=perception)
        self.factor = _check_factor(self, factor)

    def args(self) -> dict:
        return {"factor": self.factor}

    strength_knob = "factor"

    def at_strength(self, strength: float) -> "SpeedUtterance":
        """The tempo change scaled geometrically: factor ** strength (1.25 at 0.2: 1.046)."""
        return self._scaled_copy(strength, factor=self.factor ** float(strength))

    # apply_batch returns, utterance by utterance, exactly what __call__ returns.
    batch_exact = True

    def _result(self, x: np.ndarray, y: np.ndarray, sr: int) -> Result:
        return Result(y, {"factor": self.factor, "duration_in_s": x.size / sr, "duration_out_s": y.size / sr})

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        return self._result(x, tempo(x, sr, self.factor), sr)

    def apply_batch(
        self,
        xs: Sequence[np.ndarray],
        sr: int,
        rngs: Sequence[np.random.Generator] | None = None,
        contexts: Sequence[Context] | None = None,
    ) -> list[Result]:
        """:meth:`apply` for many utterances with ONE SoX process; identical results.

        Every utterance gets its own ``tempo`` chain (:func:`tempo_batch`), so each output
        equals the separate call bit for bit.  ``rngs`` is accepted for the common batch
        signature and unused (nothing is drawn); ``contexts`` only name utterances in errors.
        """
        if rngs is not None and len(rngs) != len(xs):
            raise ValueError(f"{len(xs)} utterances but {len(rngs)} generators")
        ids = [c.utt_id for c in contexts] if contexts is not None else [f"#{i}" for i in range(len(xs))]
        xs = [check_input(self, x, sr, utt) for x, utt in zip(xs, ids)]
        ys = tempo_batch(xs, sr, self.factor)
        return [self.checked_result(self._result(x, y, sr), utt) for x, y, utt in zip(xs, ys, ids)]


class SpeedSegment(Condition):
    """One random segment of the utterance sped up by ``factor`` (pitch kept), spliced back.

    The segment length is drawn uniformly in ``[min_fraction, max_fraction]`` of the
    utterance (the paper: at most 25 %), its start uniformly among the positions that fit.
    Segments shorter than 50 ms (utterances under 0.5 s with the defaults) are skipped.

    Splicing.  Audio before the segment is copied unchanged, audio after it is copied
    unchanged (shifted earlier).  The segment ``x[a:b]`` becomes ``tempo(x[a:b])`` of exactly
    ``M = round((b−a)/factor)`` samples, whose first and last ``crossfade_ms`` are
    raised-cosine (equal-gain) crossfades into the original audio: at the start into
    ``x[a:a+c]`` (WSOLA begins with exactly these samples, so this is nearly an identity),
    at the end out of the sped-up audio into ``x[b−c:b]``, which continues seamlessly into
    ``x[b:]``.  The crossfades therefore lie inside the segment's output span and do not
    change the length: the output is shorter by exactly ``(b−a) − M``, i.e.
    ``(b−a)·(1 − 1/factor)`` up to half a sample of rounding.

    Params: ``segment_start_s``, ``segment_end_s`` (input timeline), ``factor``,
    ``duration_in_s``, ``duration_out_s``.
    """

    type_name = "speed_segment"
    family = "distortion"
    default_perception = "retaining"

    def __init__(
        self,
        condition_id: str,
        *,
        factor: float = 1.25,
        max_fraction: float = 0.25,
        min_fraction: float = 0.1,
        crossfade_ms: float = 10.0,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        self.factor = _check_factor(self, factor)
        for name, value in (("max_fraction", max_fraction), ("min_fraction", min_fraction), ("crossfade_ms", crossfade_ms)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._error(name, f"must be a number, got {value!r}")
        self.max_fraction = float(self._check_range("max_fraction", float(max_fraction), 0.0, 1.0))
        self.min_fraction = float(self._check_range("min_fraction", float(min_fraction), 0.0, 1.0))
        if self.max_fraction <= 0.0:
            raise self._error("max_fraction", "must be > 0")
        if self.min_fraction > self.max_fraction:
            raise self._error("min_fraction", f"{self.min_fraction} is larger than max_fraction {self.max_fraction}")
        self.crossfade_ms = float(self._check_range("crossfade_ms", float(crossfade_ms), 0.0, 50.0))

    def args(self) -> dict:
        return {
            "factor": self.factor,
            "max_fraction": self.max_fraction,
            "min_fraction": self.min_fraction,
            "crossfade_ms": self.crossfade_ms,
        }

    strength_knob = "factor"

    def at_strength(self, strength: float) -> "SpeedSegment":
        """The segment's tempo change scaled geometrically (factor ** strength); the segment is drawn
        as at full strength (draw_segment does not depend on the factor)."""
        return self._scaled_copy(strength, factor=self.factor ** float(strength))

    def draw_segment(self, n: int, rng: np.random.Generator) -> tuple[int, int]:
        """Segment ``[a, b)`` in samples: length fraction uniform in [min, max], start uniform."""
        fraction = float(rng.uniform(self.min_fraction, self.max_fraction))
        length = min(n, max(1, int(round(fraction * n))))
        start = int(rng.integers(0, n - length + 1))
        return start, start + length

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        n = x.size
        a, b = self.draw_segment(n, rng)
        if (b - a) < MIN_SEGMENT_S * sr:
            raise SkipUtterance(
                f"segment of {(b - a) / sr * 1000:.0f} ms (utterance {n / sr:.2f} s) is shorter than {MIN_SEGMENT_S * 1000:.0f} ms"
            )
        fast = tempo(x[a:b], sr, self.factor)
        m = fast.size
        # Crossfade length: at most a quarter of the sped-up segment each, so both fit.
        c = min(int(round(self.crossfade_ms * sr / 1000.0)), m // 4, b - a)
        if c > 0:
            w = (0.5 - 0.5 * np.cos(np.pi * (np.arange(c) + 0.5) / c)).astype(np.float32)  # 0 -> 1
            fast = fast.copy()
            fast[:c] = x[a : a + c] * (1.0 - w) + fast[:c] * w
            fast[m - c :] = fast[m - c :] * (1.0 - w) + x[b - c : b] * w
        y = np.concatenate([x[:a], fast, x[b:]])
        return Result(
            y,
            {
                "segment_start_s": a / sr,
                "segment_end_s": b / sr,
                "factor": self.factor,
                "duration_in_s": n / sr,
                "duration_out_s": y.size / sr,
            },
        )
