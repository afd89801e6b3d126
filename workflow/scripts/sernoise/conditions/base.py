"""The contract every noise condition follows (SPEC §5).

A condition is a named, parameterised, deterministic transform ``f(x, sr, rng, context)``.
It is built once from config (arguments checked in ``__init__``, errors name the condition
and the argument), then applied per utterance with a generator seeded from (global seed,
condition id, pool, utt_id) by the caller.  It returns a :class:`Result`: the audio plus the
parameters it actually drew, serialisable to one row of ``params.csv``.

Families: ``environmental`` (additive recorded noise) and ``distortion`` (everything else).
Perception: ``retaining`` or ``altering`` (paper §8.1, Table 2); defaults per condition type,
overridable in config and re-derivable from a perception study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .active_level import NoActiveSpeech
from .snr import DEFAULT_REFERENCE, check_reference, speech_power

FAMILIES = ("environmental", "distortion")
PERCEPTION = ("retaining", "altering")
SAMPLE_RATE = 16000


class ConditionError(ValueError):
    """A condition was built with bad arguments, or applied to unusable audio (message names it)."""


class SkipUtterance(Exception):
    """The condition cannot apply to this utterance (e.g. no word to drop); ``str()`` is the reason."""


class NoiseSource(Protocol):
    """Recorded noise of one pool (train or test), by category (see sernoise.conditions.pool)."""

    def files(self, category: str) -> list[str]: ...

    def read(self, file: str) -> np.ndarray: ...

    def draw(self, category: str, rng: np.random.Generator) -> tuple[str, np.ndarray]: ...


class FillerSource(Protocol):
    """Filler clips ('uh', 'um') cut from one speaker's aligned speech."""

    def fillers(self, speaker: str) -> list[tuple[str, np.ndarray]]: ...


@dataclass
class Context:
    """What a condition may know about the utterance besides its audio."""

    utt_id: str
    speaker: str = ""
    words: list | None = None  # sernoise.alignments.Segment list (word level), None when no alignment
    phones: list | None = None  # sernoise.alignments.Segment list (phone level), None when no alignment
    noise: NoiseSource | None = None
    fillers: FillerSource | None = None
    # The P.56 active level (mean power) of exactly the audio the condition is applied to, when
    # the caller has it (a prepared shard stores it: sernoise.audio_store.AudioShard.active_power);
    # None: computed when a condition needs it.  Never set it for audio other than that one.
    active_power: float | None = None


@dataclass
class Result:
    """Output of one application.

    ``params`` holds only JSON/CSV-friendly scalars (str, int, float, bool).  Additive
    conditions also return ``noise`` (the exact signal added, same length as the input) and
    ``span`` (samples where it is present) so the caller can measure the SNR by SPEC §5, and
    ``speech_power``, the speech level (mean power, under the condition's ``snr_reference``)
    the noise was scaled against.
    """

    audio: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    snr_target: float = math.nan
    noise: np.ndarray | None = None  # an array, or a DeferredNoise that becomes one on first read
    span: tuple[int, int] | None = None
    speech_power: float = math.nan


class DeferredNoise:
    """``y − x`` in float64 (0 outside ``[start, stop)``), computed when first read.

    The augment stage never reads an additive condition's ``Result.noise`` (it measures the SNR
    from the stored output), and building it is two passes and a fresh float64 array per
    utterance, about a quarter of a continuous-noise condition's time (measured: 35 of ~140 µs
    for a 3.6 s clip); the attack reads it once per drawn noise.  ``y`` and ``x`` are held by reference: the result's audio and the condition's
    input must not be modified before the noise is read (nothing in the workflow does).
    """

    __slots__ = ("_y", "_x", "_start", "_stop")

    def __init__(self, y: np.ndarray, x: np.ndarray, start: int, stop: int) -> None:
        self._y, self._x, self._start, self._stop = y, x, int(start), int(stop)

    def compute(self) -> np.ndarray:
        added = np.zeros(self._y.size)
        span = added[self._start:self._stop]
        span[...] = self._y[self._start:self._stop]
        span -= self._x[self._start:self._stop]  # float32 -> float64 is exact: as x_span64 would give
        return added


def _result_noise(self: Result) -> np.ndarray | None:
    value = self._noise
    if isinstance(value, DeferredNoise):
        value = self._noise = value.compute()
    return value


def _set_result_noise(self: Result, value) -> None:
    self._noise = value


# After the dataclass is built, so its __init__, __repr__ and __eq__ go through the property.
Result.noise = property(_result_noise, _set_result_noise, doc="The exact signal added (``y − x``, float64), or None.")


class Condition:
    """Base class: subclasses set ``type_name``, ``family``, ``default_perception``, ``requires``
    and implement :meth:`apply`.  ``requires`` may contain ``"noise"``, ``"alignment"`` (words
    and phones) and ``"fillers"``; the caller skips conditions whose requirements a corpus lacks.
    """

    type_name: str = ""
    family: str = "distortion"
    default_perception: str = "retaining"
    requires: frozenset = frozenset()
    additive: bool = False
    # True when the class has ``apply_batch(xs, sr, rngs, contexts) -> list[Result]`` whose results
    # equal, utterance by utterance and bit for bit, what __call__ gives (input and output checks
    # included); the augment stage then feeds it several utterances at a time.
    batch_exact: bool = False
    # How additive conditions measure the speech level of their SNR (config key snr.reference,
    # set with use_snr_reference): active (ITU-T P.56) or whole (power over the noise span).
    snr_reference: str = DEFAULT_REFERENCE

    def __init__(self, condition_id: str, *, perception: str | None = None):
        if not condition_id:
            raise ConditionError("a condition needs an id")
        self.id = condition_id
        perception = perception or self.default_perception
        if perception not in PERCEPTION:
            raise ConditionError(f"condition {condition_id}: perception must be one of {PERCEPTION}, got {perception!r}")
        if self.family not in FAMILIES:
            raise ConditionError(f"condition {condition_id}: family {self.family!r} not in {FAMILIES}")
        self.perception = perception

    # -- helpers for subclasses ------------------------------------------------------------
    def _error(self, argument: str, message: str) -> ConditionError:
        return ConditionError(f"condition {self.id}: {argument}: {message}")

    def _check_range(self, argument: str, value, low, high, *, inclusive=True):
        ok = (low <= value <= high) if inclusive else (low < value < high)
        if not ok:
            raise self._error(argument, f"{value!r} outside [{low}, {high}]")
        return value

    def use_snr_reference(self, reference: str) -> Condition:
        """Set the speech-level reference of this condition's SNR (``active`` | ``whole``); returns self."""
        self.snr_reference = check_reference(reference)
        return self

    def speech_level(self, x: np.ndarray, span: tuple[int, int], context: Context) -> float:
        """The speech level (mean power) the SNR over ``span`` is set against, under
        :attr:`snr_reference`; ConditionError naming the utterance when P.56 finds no speech."""
        if self.snr_reference == "active" and context.active_power is not None:
            return float(context.active_power)  # the utterance's, as speech_power would compute it
        try:
            return speech_power(x, span, self.snr_reference, utt_id=context.utt_id)
        except NoActiveSpeech as error:
            raise ConditionError(f"condition {self.id}: {error}") from None

    # -- API --------------------------------------------------------------------------------
    def args(self) -> dict[str, Any]:
        """The constructor arguments (for describe/config round trips); subclasses extend."""
        return {}

    # Attack strength (sernoise.attack.perturb): the name of the argument that at_strength scales,
    # or "" when the condition has no strength knob (it is then queried once, at its configured strength).
    strength_knob: str = ""

    def at_strength(self, strength: float) -> "Condition":
        """This condition at ``strength`` in (0, 1] of its configured strength (1: itself).

        Conditions with a ``strength_knob`` return a copy whose knob is scaled and which draws the
        same random numbers in the same order, so that one generator state gives the same draw
        (segment, insertion point, filler clip) at every strength."""
        raise ConditionError(f"condition {self.id} (type {self.type_name}) has no strength knob")

    def _scaled_copy(self, strength: float, **changed) -> "Condition":
        strength = float(strength)
        if not 0.0 < strength <= 1.0:
            raise ConditionError(f"condition {self.id}: strength must be in (0, 1], got {strength!r}")
        return type(self)(self.id, **{**self.args(), **changed}, perception=self.perception)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type_name,
            "family": self.family,
            "perception": self.perception,
            "requires": sorted(self.requires),
            **self.args(),
        }

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        x = self.checked_input(x, sr, context.utt_id)
        return self.checked_result(self.apply(x, sr, rng, context), context.utt_id)

    def checked_input(self, x: np.ndarray, sr: int, utt_id: str) -> np.ndarray:
        """``x`` as contiguous float32 after the input checks of :meth:`__call__` (ConditionError)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if sr != SAMPLE_RATE:
            raise ConditionError(f"condition {self.id}: {utt_id}: expected {SAMPLE_RATE} Hz audio, got {sr}")
        if x.ndim != 1 or x.size == 0:
            raise ConditionError(f"condition {self.id}: {utt_id}: expected non-empty mono audio")
        finite, peak = finite_peak(x)
        if not finite:
            raise ConditionError(f"condition {self.id}: {utt_id}: input has NaN/Inf samples")
        if peak < 1e-6:
            raise ConditionError(f"condition {self.id}: {utt_id}: input is silent; no condition is defined on silence")
        return x

    def checked_result(self, result: Result, utt_id: str) -> Result:
        """``result`` with its audio as contiguous float32, after the output checks of :meth:`__call__`."""
        audio = np.ascontiguousarray(result.audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0 or not finite_peak(audio)[0]:
            raise ConditionError(f"condition {self.id}: {utt_id}: produced empty or non-finite audio")
        result.audio = audio
        return result


def finite_peak(x: np.ndarray) -> tuple[bool, float]:
    """``(all samples finite, max |x|)`` of a non-empty array, from its max and min.

    Two reductions and no temporary array: a NaN propagates into both, and an infinite sample
    is the maximum or the minimum, so both are finite exactly when every sample is.
    """
    hi, lo = float(np.maximum.reduce(x, axis=None)), float(np.minimum.reduce(x, axis=None))
    return math.isfinite(hi) and math.isfinite(lo), max(hi, -lo)
