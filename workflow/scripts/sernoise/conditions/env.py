"""Environmental noise (paper §5.1, SPEC §5): a recorded noise clip added to the utterance.

Two positions:

``start``
    The noise begins with the utterance and fades out.  A window length ``L`` is drawn uniformly
    from ``fade_seconds`` (default 1–2 s) and capped at the utterance length; the noise span is
    the window ``[0, L)``.  The envelope is 1 over the first ``1 − fade_out_fraction`` of the
    window and then falls to exactly 0 along a raised cosine over its last ``fade_out_fraction``
    (default: the second half).  A clip longer than ``L`` is read from a uniformly drawn offset
    (long soundscapes vary, and a recording's own fade-in at its very start is not what we add);
    a shorter clip (a knock, a cough) is read from its beginning and simply ends inside the
    window.  The SNR is measured over the whole window even then: the window is where the onset
    noise is, and measuring over the clip alone would put the span of a 0.4 s knock entirely in
    the ~1 s of leading silence of a RAVDESS file, where no speech defines an SNR.  The window's
    head (its unfaded part, at least a quarter of ``L``) must be audible (see below), so the
    noise is present from the start.  params: ``noise_seconds`` = ``L``, ``noise_end_s`` = where
    the clip's sound ends (``min(L, clip)``).
``cont``
    The noise covers the whole utterance.  A clip at least as long as the utterance is cropped at
    a uniformly drawn offset; a shorter one is looped, starting at a uniformly drawn offset, with
    a short equal-power crossfade at each loop point (:data:`LOOP_CROSSFADE_SECONDS`) so the seam
    does not click.

SNR (SPEC §5): the noise, *as added* (faded, looped), is scaled so that
``10·log10(P_speech / P_noise) == snr_db``, ``P_noise`` its mean power over the noise span and
``P_speech`` the speech level under the condition's ``snr_reference`` (config ``snr.reference``,
:func:`~sernoise.conditions.snr.speech_power`): ``active`` (default), the ITU-T P.56 active
level of the whole utterance, for ``start`` too (its first 1–2 s are mostly leading silence on
RAVDESS, so their power says little about the speech); ``whole``, the mean power of the speech
over the noise span, silences included (the definition before P.56; what the notes on silence
below are about).
The output is not clipped (clipping would change the SNR); the audio store keeps peaks beyond
full scale.  ``Result.noise`` is ``y − x`` computed in float64 from the float32 output, i.e.
exactly what the output contains beyond the input.

Silence and the 16-bit floor: the SNR is defined on the speech under the noise, so the speech
there must be loud enough for noise ``snr_db`` below it to survive 16-bit storage (the audio
store quantises to 1/32768, adding about ``2**-30 / 12`` of power).  :func:`speech_supports`
requires the target noise power ``P_speech·10^(−snr_db/10)`` to be at least
:data:`MIN_NOISE_POWER` (1e-8, −80 dBFS, about 21 dB above the rounding noise, which then moves
the measured SNR by < 0.04 dB).  When it fails we raise :class:`SkipUtterance` with the reason
rather than stretch the span: for ``start`` this happens only when the whole window lies in
(near) digital leading silence (a RAVDESS file with 1 s of silence and ``L`` ≈ 1 s), where an
onset noise 10 dB under the silence would be inaudible anyway, and a longer window would no
longer be a 1–2 s onset noise.  For ``cont`` it needs a mean speech power of at least −60 dBFS
at 20 dB SNR but −40 dBFS at 40 dB, so quiet utterances are skipped at the top of the range.

A noise segment that is (nearly) silent, i.e. whose power is below :data:`SILENCE_POWER` or more
than 30 dB (:data:`QUIET_RATIO`) under the power of its whole clip (a crop inside the zero padding of an
ESC-50 clip, a soundscape's own fade-in, the pause between two knocks), is redrawn (file and
offset), up to :data:`MAX_ATTEMPTS` times, from the same generator, so the outcome stays
deterministic: scaling such a stretch up to the target SNR would add amplified background hiss
instead of the intended sound.

Computation (float rounding apart, the same as summing everything in float64): powers are
float64 (numpy's pairwise sums, never a BLAS dot, so they do not depend on the machine); a
clip's power and the power of any stretch of it come from its
:class:`~sernoise.conditions.snr.EnergyProfile`, which :class:`~sernoise.conditions.pool.NoisePool`
keeps per file (a 60 s soundscape is not re-squared for every draw); a looped segment's power
comes from the same profile and its seams; the gain is computed in float64 and the mix done in
float32 (:func:`mix_at_snr`).
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from .base import Condition, ConditionError, Context, DeferredNoise, NoiseSource, Result, SkipUtterance
from .snr import EnergyProfile, gain_for_powers, power, scratch, sum_squares

CATEGORIES = ("nat", "hum", "int", "laugh", "cry", "music")
POSITIONS = ("start", "cont")
SNR_RANGE = (-10.0, 40.0)
DEFAULT_START_SNR_DB = 10.0
DEFAULT_FADE_SECONDS = (1.0, 2.0)
DEFAULT_FADE_OUT_FRACTION = 0.5
MAX_FADE_SECONDS = 30.0
LOOP_CROSSFADE_SECONDS = 0.05
# Mean power below which a segment counts as silent: -100 dBFS, under the 16-bit noise floor.
SILENCE_POWER = 1e-10
# Least power of the scaled noise: 100x the 16-bit rounding noise (2**-30 / 12 = 7.8e-11).
MIN_NOISE_POWER = 1e-8
# A noise segment this far under its clip's mean power (-30 dB) is a quiet stretch, not the sound.
QUIET_RATIO = 1e-3
MAX_ATTEMPTS = 10


# --------------------------------------------------------------------------- shared helpers
# (used by sernoise.conditions.insert as well)


def check_snr(cond: Condition, value, argument: str = "snr_db") -> float:
    """A finite real SNR in :data:`SNR_RANGE` dB, as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise cond._error(argument, f"must be a number in dB, got {value!r}")
    return float(cond._check_range(argument, float(value), *SNR_RANGE))


def check_category(cond: Condition, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise cond._error("category", f"must be one of {list(allowed)}, got {value!r}")
    return str(value)


def require_noise(cond: Condition, context: Context) -> NoiseSource:
    """The noise pool of the context; a condition needing noise cannot run without one."""
    if context.noise is None:
        raise ConditionError(f"condition {cond.id}: {context.utt_id}: needs a noise source (context.noise is None)")
    return context.noise


def audible(segment: np.ndarray, clip: np.ndarray) -> bool:
    """Whether a stretch of ``clip`` carries the sound: not silent, not 30 dB under the clip's power."""
    return audible_power(power(segment), power(clip))


def audible_power(segment_power: float, clip_power: float) -> bool:
    """:func:`audible` from the two mean powers (e.g. from a :func:`clip_profile`)."""
    return segment_power >= SILENCE_POWER and segment_power >= QUIET_RATIO * clip_power


def clip_profile(noise: NoiseSource, key: str, clip: np.ndarray) -> EnergyProfile:
    """The :class:`~sernoise.conditions.snr.EnergyProfile` of a drawn clip: the pool's cached one
    when the source keeps them (:meth:`NoisePool.energy_profile`), else computed for this draw."""
    get = getattr(noise, "energy_profile", None)
    if get is not None:
        profile = get(key)
        if profile.size == clip.size:
            return profile
    return EnergyProfile(clip)


def speech_supports(speech: np.ndarray, snr_db: float) -> bool:
    """Whether noise ``snr_db`` under ``speech`` would be at least :data:`MIN_NOISE_POWER` (survives 16-bit storage)."""
    return power_supports(power(speech), snr_db)


def power_supports(speech_power: float, snr_db: float) -> bool:
    """:func:`speech_supports` from the speech's mean power."""
    return speech_power * 10.0 ** (-snr_db / 10.0) >= MIN_NOISE_POWER


def mix_at_snr(
    x: np.ndarray,
    segment: np.ndarray,
    start: int,
    snr_db: float,
    *,
    speech_power: float | None = None,
    noise_power: float | None = None,
    deferred_noise: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Add ``segment`` to ``x`` from sample ``start`` at ``snr_db`` over the segment's span.

    Returns ``(y, noise, gain)``: ``y`` float32, ``noise = y − x`` in float64 (zero outside the
    span), ``gain`` the amplitude factor applied to ``segment``.

    The gain comes from float64 powers: ``speech_power`` (of ``x`` on the span) and
    ``noise_power`` (of ``segment``) when the caller has them, else computed here.  The mix is
    float32: ``y = x + float32(gain·segment)`` on the span (the product in float32 for a float32
    segment, in float64 then rounded for a float64 one), ``y = x`` exactly outside it.  Against
    the float64 sum rounded once this differs by float32 rounding only (≤ 2 ulp of the larger
    term, relative ~1e-7 of the noise), which moves the SNR by < 1e-5 dB; ``noise`` is still
    exactly what ``y`` holds beyond ``x``.  ``deferred_noise``: ``noise`` is a
    :class:`~sernoise.conditions.base.DeferredNoise` that gives that array when a
    :class:`~sernoise.conditions.base.Result` holding it is read (the same values).
    """
    x = np.asarray(x, dtype=np.float32)
    stop = start + segment.size
    if speech_power is None:
        speech_power = power(x[start:stop])  # float64 sums of the float32 samples
    if noise_power is None:
        noise_power = power(segment)
    gain = gain_for_powers(speech_power, noise_power, snr_db)
    scaled = scratch(segment.size, np.float32, "mix")
    if segment.dtype == np.float32:
        np.multiply(segment, np.float32(gain), out=scaled)
    else:
        product = scratch(segment.size, np.float64, "mix")
        np.multiply(segment, gain, out=product)
        np.copyto(scaled, product, casting="same_kind")
    if start == 0 and stop == x.size:
        y = np.add(x, scaled)
    else:
        y = x.copy()
        y[start:stop] += scaled
    noise = DeferredNoise(y, x, start, stop)  # one definition of y − x, read now or later
    return y, (noise if deferred_noise else noise.compute()), gain


@functools.lru_cache(maxsize=16)
def _seam_ramps(c: int) -> tuple[np.ndarray, np.ndarray]:
    # sin/cos ramps sampled at half-sample points: fade_in² + fade_out² = 1 across the seam,
    # which keeps the power of uncorrelated material constant through it.
    phase = (np.arange(c) + 0.5) / c * (np.pi / 2)
    fade_in, fade_out = np.sin(phase), np.cos(phase)
    fade_in.setflags(write=False)
    fade_out.setflags(write=False)
    return fade_in, fade_out


def loop_to_length(clip: np.ndarray, offset: int, length: int, crossfade: int) -> np.ndarray:
    """``clip`` repeated (equal-power crossfade of ``crossfade`` samples at the seams), from ``offset``, ``length`` long.

    Copy ``k`` starts at ``k·(len − c)``; its first ``c`` samples fade in (except the first
    copy's) over the previous copy's last ``c``, which fade out.  So the looped signal is the
    first copy's ``clip[:len − c]`` followed by one repeating period: the seam, then
    ``clip[c:len − c]``; the result is written straight into one array.  A float32 clip gives
    float32 (its samples copied, the seams computed in float64 and rounded once, i.e. exactly
    the float64 result rounded to float32); anything else gives float64.
    """
    return _loop(clip, offset, length, crossfade)[0]


def looped_power(clip: np.ndarray, offset: int, length: int, crossfade: int, profile: EnergyProfile) -> tuple[np.ndarray, float]:
    """:func:`loop_to_length` and the mean power of its result, the latter from the clip's energy
    ``profile`` and the seam (equal to :func:`power` of the result up to float rounding)."""
    return _loop(clip, offset, length, crossfade, profile)


def _loop(clip, offset: int, length: int, crossfade: int, profile: EnergyProfile | None = None):
    clip = np.asarray(clip)
    dtype = np.float32 if clip.dtype == np.float32 else np.float64
    w = clip.astype(dtype, copy=False)
    c = min(int(crossfade), w.size // 4)
    total = offset + length
    if c < 1:
        reps = -(-total // w.size)
        out = np.tile(w, reps)[offset:total]
        return out, (None if profile is None else power(out))
    period = w.size - c
    if profile is None:
        cell = _loop_cell(w, c)
    else:
        # the period and its energy depend on the clip and the crossfade only: once per clip
        key = ("loop_cell", c, np.dtype(dtype).str)
        if key not in profile.derived:
            built = _loop_cell(w, c)
            built.setflags(write=False)
            profile.derived[key] = (built, sum_squares(built[:c]) + profile.energy(clip, c, period))
        cell, cell_total = profile.derived[key]
    out = np.empty(length, dtype=dtype)
    done = 0
    if offset < period:  # starts inside the first copy
        done = min(period - offset, length)
        out[:done] = w[offset : offset + done]
        phase = 0
    else:
        phase = (offset - period) % period
    if done < length:
        # one full period from `phase`, then doubling copies of the periodic part
        head = min(period - phase, length - done)
        out[done : done + head] = cell[phase : phase + head]
        tail = min(phase, length - done - head)
        out[done + head : done + head + tail] = cell[:tail]
        base, filled = done, head + tail
        while base + filled < length:
            k = min(filled, length - base - filled)
            out[base + filled : base + filled + k] = out[base : base + k]
            filled += k
    if profile is None:
        return out, None

    def cell_energy(a: int, b: int) -> float:  # energy of cell[a:b], 0 <= a <= b <= period
        if a == 0 and b == period:
            return cell_total  # computed the same way, once per clip
        e = sum_squares(cell[a : min(b, c)]) if a < c else 0.0
        return e + (profile.energy(clip, max(a, c), b) if b > max(a, c) else 0.0)

    energy = profile.energy(clip, offset, offset + done) if done else 0.0
    rest = length - done
    if rest:
        full, rem = divmod(rest, period)
        if full:
            energy += full * cell_energy(0, period)
        if rem:  # the last partial period: cell[phase:], wrapping to cell[:...]
            first = min(rem, period - phase)
            energy += cell_energy(phase, phase + first)
            if rem > first:
                energy += cell_energy(0, rem - first)
    return out, energy / length


def _loop_cell(w: np.ndarray, c: int) -> np.ndarray:
    """One period of the looped clip ``w`` (crossfade ``c``): the seam, then ``w[c:len − c]``."""
    fade_in, fade_out = _seam_ramps(c)
    period = w.size - c
    cell = np.empty(period, dtype=w.dtype)
    seam = w[period:] * fade_out  # float64 (the ramps are)
    seam += w[:c] * fade_in
    cell[:c] = seam
    cell[c:] = w[c:period]
    return cell


def fade_envelope(length: int, fade_out_fraction: float) -> np.ndarray:
    """1, then a raised-cosine fall to exactly 0 at the last sample over ``fade_out_fraction`` of ``length``."""
    n_fade = min(length, max(1, int(round(fade_out_fraction * length))))
    env = np.ones(length)
    k = np.arange(1, n_fade + 1)
    env[length - n_fade :] = 0.5 * (1.0 + np.cos(np.pi * k / n_fade))
    return env


# --------------------------------------------------------------------------- condition


class EnvironmentalNoise(Condition):
    """Noise of one category (nat, hum, int, laugh, cry, music) at the start (fading out) or over the whole utterance.

    Arguments: ``category``, ``position`` (``start`` | ``cont``), ``snr_db`` (−10..40 dB; required
    for ``cont``, default 10 for ``start``), and for ``start`` only ``fade_seconds`` ([min, max]
    envelope length, default [1, 2]) and ``fade_out_fraction`` (share of the envelope that fades,
    in (0, 1], default 0.5).  See the module docstring for the exact placement and scaling.
    """

    type_name = "env"
    family = "environmental"
    default_perception = "retaining"
    requires = frozenset({"noise"})
    additive = True

    def __init__(
        self,
        condition_id: str,
        *,
        category: str,
        position: str,
        snr_db: float | None = None,
        fade_seconds=None,
        fade_out_fraction: float | None = None,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        self.category = check_category(self, category, CATEGORIES)
        if position not in POSITIONS:
            raise self._error("position", f"must be one of {list(POSITIONS)}, got {position!r}")
        self.position = position
        if snr_db is None:
            if position == "cont":
                raise self._error("snr_db", "is required for position 'cont'")
            snr_db = DEFAULT_START_SNR_DB
        self.snr_db = check_snr(self, snr_db)
        if position == "cont":
            # Both only shape the onset noise; accepting them silently would hide a config mistake.
            for name, value in (("fade_seconds", fade_seconds), ("fade_out_fraction", fade_out_fraction)):
                if value is not None:
                    raise self._error(name, "only applies to position 'start'")
            self.fade_seconds = None
            self.fade_out_fraction = None
        else:
            self.fade_seconds = self._check_fade_seconds(DEFAULT_FADE_SECONDS if fade_seconds is None else fade_seconds)
            if fade_out_fraction is None:
                fade_out_fraction = DEFAULT_FADE_OUT_FRACTION
            if isinstance(fade_out_fraction, bool) or not isinstance(fade_out_fraction, numbers.Real):
                raise self._error("fade_out_fraction", f"must be a number in (0, 1], got {fade_out_fraction!r}")
            if not 0.0 < float(fade_out_fraction) <= 1.0:
                raise self._error("fade_out_fraction", f"{fade_out_fraction!r} outside (0, 1]")
            self.fade_out_fraction = float(fade_out_fraction)

    def _check_fade_seconds(self, value) -> tuple[float, float]:
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in value)
        ):
            raise self._error("fade_seconds", f"must be [min, max] in seconds, got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if not (0.0 < lo <= hi <= MAX_FADE_SECONDS):
            raise self._error("fade_seconds", f"need 0 < min <= max <= {MAX_FADE_SECONDS}, got {list(value)!r}")
        return lo, hi

    def args(self) -> dict:
        out = {"category": self.category, "position": self.position, "snr_db": self.snr_db}
        if self.position == "start":
            out["fade_seconds"] = list(self.fade_seconds)
            out["fade_out_fraction"] = self.fade_out_fraction
        return out

    # -- application ------------------------------------------------------------------------
    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        noise = require_noise(self, context)
        if self.position == "start":
            return self._apply_start(x, sr, rng, context, noise)
        return self._apply_cont(x, sr, rng, context, noise)

    def _apply_start(self, x, sr, rng, context, noise) -> Result:
        n = x.size
        drawn = float(rng.uniform(*self.fade_seconds))
        env_len = min(n, max(1, int(round(drawn * sr))))
        # active: the utterance's P.56 level, not the first seconds (mostly leading silence)
        speech_power = power(x[:env_len]) if self.snr_reference == "whole" else self.speech_level(x, (0, env_len), context)
        if not power_supports(speech_power, self.snr_db):
            where = f"the first {env_len / sr:.3f} s are" if self.snr_reference == "whole" else "the active speech is"
            raise SkipUtterance(
                f"{context.utt_id}: {where} (near) silent; "
                f"an onset noise {self.snr_db:g} dB under them would vanish in 16-bit storage"
            )
        envelope = fade_envelope(env_len, self.fade_out_fraction)
        # The onset noise must be there at the onset: its head (the part before the fade, at
        # least a quarter of the envelope) must be audible too, not only the segment as a whole
        # (soundscapes have silent gaps; a gap followed by wind would be a fade-in).
        head_len = max(int(np.count_nonzero(envelope == 1.0)), env_len // 4, 1)
        for _ in range(MAX_ATTEMPTS):
            key, clip = noise.draw(self.category, rng)
            used = min(env_len, clip.size)
            offset = int(rng.integers(clip.size - used + 1))
            profile = clip_profile(noise, key, clip)
            if audible_power(profile.segment_power(clip, offset, offset + used), profile.power) and audible_power(
                profile.segment_power(clip, offset, offset + min(head_len, used)), profile.power
            ):
                break
        else:
            raise SkipUtterance(f"{context.utt_id}: no audible {self.category} noise onset in {MAX_ATTEMPTS} draws")
        # The window, not just the clip, is the span: a short clip's silent remainder is part of
        # the onset noise as added (see the module docstring).
        segment = np.zeros(env_len)
        np.multiply(clip[offset : offset + used], envelope[:used], out=segment[:used])
        y, added, gain = mix_at_snr(x, segment, 0, self.snr_db, speech_power=speech_power, deferred_noise=True)
        params = {
            "noise_file": key,
            "noise_offset_s": offset / sr,
            "noise_seconds": env_len / sr,
            "noise_end_s": used / sr,
            "span_start_s": 0.0,
            "span_end_s": env_len / sr,
            "gain": gain,
            "looped": False,
        }
        return Result(y, params, self.snr_db, added, (0, env_len), speech_power)

    def _apply_cont(self, x, sr, rng, context, noise) -> Result:
        n = x.size
        speech_power = power(x) if self.snr_reference == "whole" else self.speech_level(x, (0, n), context)
        if not power_supports(speech_power, self.snr_db):
            raise SkipUtterance(
                f"{context.utt_id}: utterance too quiet; noise {self.snr_db:g} dB under it would vanish in 16-bit storage"
            )
        crossfade = int(round(LOOP_CROSSFADE_SECONDS * sr))
        for _ in range(MAX_ATTEMPTS):
            key, clip = noise.draw(self.category, rng)
            profile = clip_profile(noise, key, clip)
            looped = clip.size < n
            if looped:
                offset = int(rng.integers(clip.size))
                segment, noise_power = looped_power(clip, offset, n, crossfade, profile)
            else:
                offset = int(rng.integers(clip.size - n + 1))
                segment = clip[offset : offset + n]  # float32 view, mixed in float32
                noise_power = profile.segment_power(clip, offset, offset + n)
            if audible_power(noise_power, profile.power):
                break
        else:
            raise SkipUtterance(f"{context.utt_id}: no audible {self.category} noise segment found in {MAX_ATTEMPTS} draws")
        y, added, gain = mix_at_snr(
            x, segment, 0, self.snr_db, speech_power=speech_power, noise_power=noise_power, deferred_noise=True
        )
        params = {
            "noise_file": key,
            "noise_offset_s": offset / sr,
            "noise_seconds": n / sr,
            "span_start_s": 0.0,
            "span_end_s": n / sr,
            "gain": gain,
            "looped": looped,
        }
        return Result(y, params, self.snr_db, added, (0, n), speech_power)
