"""Noise instances at a target SNR decrease (SPEC §9): what the attack adds to an utterance.

A *noise instance* is one draw of a category's noise for one utterance and one run: a
condition of the category (``attack.categories``) applied once with the run's generator fixes
everything random (noise file and offset, onset window, room parameters, fade direction).
Only its strength then varies with the decrease ``d`` (1-10 dB): the perturbed sample's SNR
is ``start_snr − d`` (``attack.start_snr``, default 30 dB, so that the largest decrease leaves
a mild 20 dB).

* **Additive noise** (``env``: nat, hum, int at the start or over the whole utterance;
  ``insert``: laugh, cry).  The instance is the exact noise the condition added
  (``Result.noise``) and its span.  At decrease ``d`` it is rescaled so that
  ``10·log10(P_speech / P_noise) = start_snr − d`` (SPEC §5), ``P_noise`` over the span and
  ``P_speech`` the speech level under the condition's ``snr_reference`` (config
  ``snr.reference``: P.56 active level or power over the span, the level the condition itself
  scaled against, ``Result.speech_power``), with the gain
  from the float64 powers (:func:`~sernoise.conditions.snr.gain_for_powers`); the measured SNR
  of the float32 output is within float rounding (< 0.001 dB) of the target.  Knob: the
  amplitude gain applied to the noise clip (``noise_gain``).
* **Distortions** (``reverb``, ``fade``; both perception-retaining and length-preserving).
  The level is the SNR of the difference signal, ``10·log10(P_x / P_(y−x))``, and a strength
  knob is *searched* so that the difference SNR of the float32 output matches the target
  within :data:`SNR_TOLERANCE_DB` (:func:`search_knob`: secant steps on the measured SNR,
  kept inside a bracket once one is known, bisection when a step leaves it, bounded knob).

  - ``reverb``: the room (reverberance, room scale, HF damping, pre-delay) is drawn by the
    condition and run through SoX once; the knob is the level of the reverberation, in dB
    relative to that SoX output (``wet_gain_db`` of SoX's reverb, reported as the drawn wet
    gain plus the search's offset).  The output is ``x + 10^(u/20)·(y_sox − x)``: SoX's own
    wet gain is limited to ±10 dB, which cannot reach 20-29 dB difference SNR, so the wet
    path is scaled after SoX (it is linear in the wet gain, so this is the same signal).
  - ``fade``: the direction comes from the condition (fade-in or fade-out); the knob is the
    rate per second of the linear gain ramp (:func:`~sernoise.conditions.fade.fade_gain`),
    searched in log10(rate), at most ``1/T`` (the gain stays >= 0 over the utterance).

  For both knobs the difference SNR is affine in the searched variable (slope −1 dB per dB,
  −20 dB per decade of rate), so the first guess computed from the instance's powers is
  already within tolerance and the search normally stops after one evaluation; it is kept
  general so that a non-affine knob can be added.  The knob found is cached per instance and
  target (an instance belongs to one utterance and run), so asking the same decrease again
  costs no search.

* **Strength-scaled manipulations** (``speed_segment``, ``speed_utterance``, ``pitch``,
  ``filler``).  Most change the length (no difference SNR) and a pitch shift cannot be
  scaled to 20-29 dB of it, so their strength is not an SNR: the decrease ``d`` (1-10)
  selects the fraction ``d / 10`` of the condition's configured strength
  (:meth:`~sernoise.conditions.base.Condition.at_strength`: tempo and pitch factors
  ``factor ** s``; a filler ``20·log10(s)`` dB quieter with ``s``-times shorter pauses), so
  the attack's largest step is the configured condition.  The condition is applied with a
  copy of the instance's generator state at every strength, so the same segment, insertion
  point and filler clip are used at every strength.  Knob: ``strength`` (recorded with the
  scaled argument); ``snr_measured`` is the difference SNR when the length is kept, else NaN.
* **Fixed-strength manipulations** (``drop_words``, ``drop_letters``): no strength knob (a
  word is dropped or not).  Each is ONE query at its configured strength, asked in the last
  phase with the strongest perturbations and never refined
  (:func:`~sernoise.attack.algorithm.algorithm1`'s ``fixed``).  Knob: ``fixed``.

Together these are the paper's "all noises" (§8.5: environmental noise and every signal
manipulation); :func:`attack_kind` names the kind of each condition type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sernoise.conditions.base import SAMPLE_RATE, Condition, Context, SkipUtterance
from sernoise.conditions.fade import fade_gain
from sernoise.conditions.snr import DEFAULT_REFERENCE, EPS, additive_snr, difference_snr, gain_for_powers, power, speech_power

KINDS = {
    "env": "additive", "insert": "additive", "reverb": "reverb", "fade": "fade",
    "speed_segment": "strength", "speed_utterance": "strength", "pitch": "strength", "filler": "strength",
    "drop_words": "fixed", "drop_letters": "fixed",
}
MAX_DECREASE = 10  # the attack's largest step (algorithm.PHASES): full strength of a strength-scaled condition
SNR_TOLERANCE_DB = 0.01
MAX_EVALUATIONS = 30
WET_LEVEL_BOUNDS_DB = (-80.0, 40.0)
MIN_FADE_RATE = 1e-6


class AttackNoiseError(ValueError):
    """A condition cannot serve as attack noise (its strength cannot be set to an SNR decrease)."""


def attack_kind(condition: Condition) -> str:
    """additive | reverb | fade for a condition usable as attack noise, else AttackNoiseError."""
    kind = KINDS.get(condition.type_name)
    if kind is None:
        raise AttackNoiseError(
            f"condition {condition.id} (type {condition.type_name}) cannot be set to an SNR decrease; "
            f"attack noises must be of type {sorted(KINDS)}"
        )
    return kind


# ----------------------------------------------------------------------------- knob search


@dataclass
class SearchResult:
    knob: float
    snr: float
    evaluations: int
    audio: np.ndarray = field(repr=False)


def search_knob(
    render: Callable[[float], np.ndarray],
    measure: Callable[[np.ndarray], float],
    target: float,
    guess: float,
    bounds: tuple[float, float],
    *,
    step: float = 1.0,
    tolerance: float = SNR_TOLERANCE_DB,
    max_evaluations: int = MAX_EVALUATIONS,
) -> SearchResult:
    """The knob ``u`` in ``bounds`` whose ``measure(render(u))`` is within ``tolerance`` of ``target``.

    ``measure`` must decrease as ``u`` grows (a stronger perturbation, a lower SNR).  Secant
    steps from ``guess`` (the second point ``step`` away, towards the target); once the target
    is bracketed (the largest ``u`` measured above it, the smallest below), a step leaving the
    bracket is replaced by bisection; steps are clipped to ``bounds``.  Returns the best point
    evaluated (the closest to target; a bound when the target is out of reach).
    """
    lo, hi = bounds
    above = below = None  # bracket: the largest u measured above target, the smallest below
    best: SearchResult | None = None
    previous: tuple[float, float] | None = None
    u = min(max(guess, lo), hi)
    for evaluation in range(1, max_evaluations + 1):
        audio = render(u)
        snr = measure(audio)
        if best is None or abs(snr - target) < abs(best.snr - target):
            best = SearchResult(u, snr, evaluation, audio)
        if abs(snr - target) <= tolerance:
            break
        if snr > target:
            above = u if above is None else max(above, u)
        else:
            below = u if below is None else min(below, u)
        nxt = math.nan
        if previous is not None and previous[1] != snr:
            nxt = u + (target - snr) * (u - previous[0]) / (snr - previous[1])
        if not math.isfinite(nxt):
            nxt = u + (step if snr > target else -step)
        if above is not None and below is not None and not above < nxt < below:
            nxt = 0.5 * (above + below)
        nxt = min(max(nxt, lo), hi)
        if nxt == u:
            break  # the target lies beyond a bound
        previous, u = (u, snr), nxt
    best.evaluations = evaluation
    return best


# ------------------------------------------------------------------------------- instances


class NoiseInstance:
    """One drawn noise of a category for one utterance and run; :meth:`perturb` at a decrease."""

    kind = ""
    knob_name = ""
    fixed = False  # queried once, at its configured strength (algorithm1's ``fixed``)

    def __init__(self, category: str, condition: str, x: np.ndarray, start_snr: float, *, file: str = "",
                 params: dict | None = None, configured: np.ndarray | None = None):
        self.category, self.condition, self.file = category, condition, file
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.start_snr = float(start_snr)
        self.params = dict(params or {})
        self.configured = configured  # the condition's own output (knowledge estimation only)
        self._levels: dict[float, tuple[float, float]] = {}  # target -> (knob, measured SNR)

    def target(self, decrease: float) -> float:
        return self.start_snr - float(decrease)

    def perturb(self, decrease: float) -> np.ndarray:
        """The utterance with this noise at SNR ``start_snr − decrease`` (float32, same length)."""
        raise NotImplementedError

    def level(self, decrease: float) -> dict:
        """Knob and measured SNR at ``decrease`` (perturbs once if not done yet)."""
        target = self.target(decrease)
        if target not in self._levels:
            self.perturb(decrease)
        knob, snr = self._levels[target]
        return {"snr_target": target, "knob_name": self.knob_name, "knob": knob, "snr_measured": snr}

    def describe(self) -> dict:
        return {"category": self.category, "condition": self.condition, "file": self.file, "kind": self.kind}


class AdditiveInstance(NoiseInstance):
    """Recorded noise added over ``span``, rescaled to the target SNR in closed form."""

    kind = "additive"
    knob_name = "noise_gain"

    def __init__(self, category, condition, x, start_snr, noise: np.ndarray, span: tuple[int, int], clip_gain: float,
                 *, reference: str = DEFAULT_REFERENCE, p_speech: float | None = None, **kwargs):
        super().__init__(category, condition, x, start_snr, **kwargs)
        self.noise = np.asarray(noise, dtype=np.float64)
        self.span = (int(span[0]), int(span[1]))
        start, stop = self.span
        self.reference = reference
        if p_speech is None or not math.isfinite(p_speech):
            p_speech = speech_power(self.x, self.span, reference)
        self.p_speech = float(p_speech)
        self.p_noise = power(self.noise[start:stop])
        self.clip_gain = float(clip_gain)
        if self.p_noise <= EPS or self.p_speech <= EPS:
            raise SkipUtterance(f"{condition}: silent noise or speech over the noise span")

    def perturb(self, decrease: float) -> np.ndarray:
        target = self.target(decrease)
        gain = gain_for_powers(self.p_speech, self.p_noise, target)
        y = (self.x.astype(np.float64) + gain * self.noise).astype(np.float32)
        if target not in self._levels:
            self._levels[target] = (self.clip_gain * gain, additive_snr(self.x, y, self.span, p_speech=self.p_speech))
        return y


class _SearchedInstance(NoiseInstance):
    """A distortion whose knob is searched per target; subclasses give render/guess/bounds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.evaluations = 0  # renders spent searching, over all targets
        self._knob_u: dict[float, float] = {}  # target -> searched variable

    def render(self, u: float) -> np.ndarray:
        raise NotImplementedError

    def guess(self, target: float) -> float:
        raise NotImplementedError

    bounds: tuple[float, float] = (0.0, 0.0)
    step = 1.0

    def knob_value(self, u: float) -> float:
        return u

    def perturb(self, decrease: float) -> np.ndarray:
        target = self.target(decrease)
        if target in self._knob_u:
            return self.render(self._knob_u[target])
        found = search_knob(self.render, lambda y: difference_snr(self.x, y), target, self.guess(target),
                            self.bounds, step=self.step)
        self.evaluations += found.evaluations
        self._knob_u[target] = found.knob
        self._levels[target] = (self.knob_value(found.knob), found.snr)
        return found.audio


class ReverbInstance(_SearchedInstance):
    """SoX reverberation of a drawn room; knob: the reverberation level (dB) around that output."""

    kind = "reverb"
    knob_name = "wet_gain_db"
    bounds = WET_LEVEL_BOUNDS_DB
    step = 1.0

    def __init__(self, category, condition, x, start_snr, reverberated: np.ndarray, **kwargs):
        super().__init__(category, condition, x, start_snr, **kwargs)
        self.x64 = self.x.astype(np.float64)
        self.wet = np.asarray(reverberated, dtype=np.float64) - self.x64
        if self.wet.shape != self.x.shape:
            raise SkipUtterance(f"{condition}: the reverberated output has another length")
        self.snr0 = difference_snr(self.x, np.asarray(reverberated))
        if not math.isfinite(self.snr0):
            raise SkipUtterance(f"{condition}: no reverberation to scale (difference SNR {self.snr0})")

    def render(self, u: float) -> np.ndarray:
        return (self.x64 + 10.0 ** (u / 20.0) * self.wet).astype(np.float32)

    def guess(self, target: float) -> float:
        return self.snr0 - target

    def knob_value(self, u: float) -> float:
        return float(self.params.get("wet_gain_db", 0.0)) + u


class FadeInstance(_SearchedInstance):
    """A linear fade (direction of the condition); knob: its rate per second, searched in log10."""

    kind = "fade"
    knob_name = "rate_per_second"
    step = 0.05

    def __init__(self, category, condition, x, start_snr, direction: str, **kwargs):
        super().__init__(category, condition, x, start_snr, **kwargs)
        n = self.x.size
        if n < 2:
            raise SkipUtterance(f"{condition}: utterance too short to fade")
        self.direction = direction
        self.x64 = self.x.astype(np.float64)
        t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
        tau = t if direction == "out" else t[-1] - t  # gain = 1 - rate * tau
        self.bounds = (math.log10(MIN_FADE_RATE), math.log10(1.0 / t[-1]))
        ratio = power(self.x64 * tau) / max(power(self.x64), EPS)  # P_(y-x) = rate² · ratio · P_x
        self.snr_unit = -10.0 * math.log10(max(ratio, EPS))  # difference SNR at rate 1 (no floor)

    def render(self, u: float) -> np.ndarray:
        gain = fade_gain(self.x.size, SAMPLE_RATE, self.direction, 10.0**u)
        return (self.x64 * gain).astype(np.float32)

    def guess(self, target: float) -> float:
        return (self.snr_unit - target) / 20.0

    def knob_value(self, u: float) -> float:
        return 10.0**u


class StrengthInstance(NoiseInstance):
    """A signal manipulation at ``d / MAX_DECREASE`` of its configured strength (speed, pitch, filler)."""

    kind = "strength"
    knob_name = "strength"

    def __init__(self, category, condition, x, start_snr, built: Condition, rng_state: dict, context: Context,
                 **kwargs):
        super().__init__(category, condition, x, start_snr, **kwargs)
        self.built, self.rng_state, self.context = built, rng_state, context
        self._audio: dict[float, np.ndarray] = {}

    def target(self, decrease: float) -> float:
        return math.nan  # no SNR target: the strength is the level

    def strength(self, decrease: float) -> float:
        return min(max(float(decrease), 0.0), MAX_DECREASE) / MAX_DECREASE

    def perturb(self, decrease: float) -> np.ndarray:
        strength = self.strength(decrease)
        if strength not in self._audio:
            if strength <= 0.0:
                raise ValueError(f"{self.condition}: a decrease of {decrease} gives no perturbation")
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = self.rng_state  # the draw of the full-strength application
            y = self.built.at_strength(strength)(self.x, SAMPLE_RATE, rng, self.context).audio
            self._audio[strength] = y
            self._levels[strength] = (strength, difference_snr(self.x, y))  # NaN when the length changed
        return self._audio[strength]

    def level(self, decrease: float) -> dict:
        strength = self.strength(decrease)
        if strength not in self._levels:
            self.perturb(decrease)
        knob, snr = self._levels[strength]
        return {"snr_target": math.nan, "knob_name": self.knob_name, "knob": knob, "snr_measured": snr}


class FixedInstance(NoiseInstance):
    """A manipulation without a strength knob (word or letter drops): its configured output, one query."""

    kind = "fixed"
    knob_name = "fixed"
    fixed = True

    def __init__(self, category, condition, x, start_snr, audio: np.ndarray, **kwargs):
        super().__init__(category, condition, x, start_snr, **kwargs)
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.snr = difference_snr(self.x, self.audio)  # NaN when the length changed

    def target(self, decrease: float) -> float:
        return math.nan

    def perturb(self, decrease: float) -> np.ndarray:
        return self.audio

    def level(self, decrease: float) -> dict:
        return {"snr_target": math.nan, "knob_name": self.knob_name, "knob": 1.0, "snr_measured": self.snr}


# ------------------------------------------------------------------------------- drawing


def draw_instance(
    category: str,
    conditions: list[Condition],
    x: np.ndarray,
    context: Context,
    rng: np.random.Generator,
    start_snr: float,
    *,
    keep_configured: bool = False,
) -> tuple[NoiseInstance | None, list[str]]:
    """One instance of ``category`` for utterance ``x``: (instance, reasons) or (None, reasons).

    The category's conditions are tried in an order drawn from ``rng``; the first one that
    applies (no :class:`~sernoise.conditions.base.SkipUtterance`) gives the instance, drawing
    its randomness from the same ``rng``.  ``reasons`` lists why conditions were skipped.
    """
    reasons = []
    for i in rng.permutation(len(conditions)):
        condition = conditions[int(i)]
        kind = attack_kind(condition)
        state = rng.bit_generator.state  # a copy: strength-scaled renders replay this draw
        try:
            result = condition(x, SAMPLE_RATE, rng, context)
            configured = result.audio if keep_configured else None
            common = {"params": result.params, "configured": configured}
            if kind == "additive":
                file = str(result.params.get("noise_file", result.params.get("clip_file", "")))
                return AdditiveInstance(category, condition.id, x, start_snr, result.noise, result.span,
                                        float(result.params.get("gain", 1.0)), reference=condition.snr_reference,
                                        p_speech=result.speech_power, file=file, **common), reasons
            if kind == "reverb":
                return ReverbInstance(category, condition.id, x, start_snr, result.audio, **common), reasons
            if kind == "strength":
                return StrengthInstance(category, condition.id, x, start_snr, condition, state, context,
                                        **common), reasons
            if kind == "fixed":
                return FixedInstance(category, condition.id, x, start_snr, result.audio, **common), reasons
            return FadeInstance(category, condition.id, x, start_snr, condition.direction, **common), reasons
        except SkipUtterance as skip:
            reasons.append(f"{condition.id}: {skip}")
    return None, reasons
