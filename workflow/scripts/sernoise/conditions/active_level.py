"""Active speech level, ITU-T P.56 method B, written from the standard's description.

The level of speech is the mean power over the samples where speech is *active*, not over the
whole file: a RAVDESS file is about half silence, so its whole-file power sits several dB under
the speech, and an SNR set against it depends on how much silence the recording happens to have.
P.56 decides activity with an envelope detector and a level-dependent threshold:

1. Envelope: the rectified signal ``|x|`` through two cascaded first-order smoothers with time
   constant ``T`` = 0.03 s, ``g = exp(−1 / (T·fs))``: ``p(n) = g·p(n−1) + (1−g)·|x(n)|``,
   ``q(n) = g·q(n−1) + (1−g)·p(n)``, both starting at 0.
2. Thresholds ``c_j`` on a fixed grid in 2 dB steps (:data:`THRESHOLDS_DB`).  For threshold
   ``c_j`` a sample counts as active when ``q ≥ c_j`` there or at any of the ``I`` samples
   before it (hangover ``H`` = 0.2 s, ``I = ceil(H·fs)``), which is the standard's counter
   (reset when the envelope reaches the threshold, active while it is below ``I``).  Hence
   sample ``n`` is active for every ``c_j ≤ max(q[n−I .. n])``: one running maximum gives the
   activity counts ``a_j`` of all thresholds at once (vectorised, no loop over samples).
3. With ``E = Σ x²``, the level at threshold ``j`` is ``A_j = 10·log10(E / a_j)`` and the
   margin ``δ_j = A_j − C_j`` (``C_j`` the threshold in dB).  ``δ`` falls as the threshold
   rises; the active level is where ``δ = M`` = 15.9 dB, found between the last threshold above
   the margin and the first at or below it by linear interpolation of ``δ`` in ``C``, so the
   level is ``C* + M``.  The activity factor is ``E / (N · 10^(level/10))``.

Levels are in dB of mean power relative to full scale (a full-scale sine: −3.01 dB), the unit
of :func:`sernoise.conditions.snr.power`.  The grid starts at :data:`FLOOR_DB`: a signal whose
crossing lies below it (the active level under ``FLOOR_DB + M`` ≈ −84 dBFS, i.e. digital
silence or a few bits of rounding noise) has no active speech, and :func:`active_speech_level`
raises :class:`NoActiveSpeech` naming the utterance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Version of the computation below.  Prepared shards store each utterance's active level
# (sernoise.audio_store, ShardWriter(speech_levels=True)) with this number; a reader ignores
# levels of another version and computes them again.  Bump it whenever a change here could
# change a level in any bit.
ALGORITHM_VERSION = 1

TIME_CONSTANT_S = 0.03
HANGOVER_S = 0.2
MARGIN_DB = 15.9
STEP_DB = 2.0
FLOOR_DB = -100.0
CEILING_DB = 20.0  # the audio store keeps peaks beyond full scale, so the grid does too
THRESHOLDS_DB = np.arange(FLOOR_DB, CEILING_DB + STEP_DB / 2, STEP_DB)
_THRESHOLDS = 10.0 ** (THRESHOLDS_DB / 20.0)


class NoActiveSpeech(ValueError):
    """P.56 finds no active speech in the signal (silent or nearly silent); the message names it."""


@dataclass(frozen=True)
class ActiveLevel:
    """The result of :func:`active_speech_level`."""

    level_db: float  # active speech level: 10·log10(mean power over the active samples)
    activity: float  # fraction of the samples that are active, in (0, 1]
    long_term_db: float  # 10·log10(mean power over all samples)
    threshold_db: float  # the interpolated threshold C* (= level_db − MARGIN_DB)

    @property
    def power(self) -> float:
        """The active level as a mean power (linear)."""
        return 10.0 ** (self.level_db / 10.0)


def envelope(x: np.ndarray, sr: int) -> np.ndarray:
    """The P.56 envelope ``q`` of ``x`` (float64): ``|x|`` through two cascaded smoothers."""
    from scipy.signal import lfilter  # lazily: sernoise.conditions is imported by the workflow plan

    g = math.exp(-1.0 / (TIME_CONSTANT_S * sr))
    rectified = np.abs(np.asarray(x, dtype=np.float64))
    p = lfilter([1.0 - g], [1.0, -g], rectified)
    return lfilter([1.0 - g], [1.0, -g], p)


def hangover_samples(sr: int) -> int:
    return int(math.ceil(HANGOVER_S * sr))


def activity_counts(q: np.ndarray, sr: int) -> np.ndarray:
    """``a_j``: the number of samples active at each threshold of :data:`THRESHOLDS_DB`."""
    from scipy.ndimage import maximum_filter1d

    hang = hangover_samples(sr)
    # running maximum over the window [n − hang, n]: a window of hang + 1 samples ending at n
    # (scipy centres the window on n; a positive origin shifts it towards earlier samples)
    size = hang + 1
    recent = maximum_filter1d(q, size=size, origin=(size - 1) // 2, mode="constant", cval=0.0)
    # k = number of thresholds <= recent[n]: sample n is active for thresholds 0 .. k−1
    k = np.searchsorted(_THRESHOLDS, recent, side="right")
    per_k = np.bincount(k, minlength=_THRESHOLDS.size + 1)
    return np.cumsum(per_k[::-1])[::-1][1:]  # a_j = #samples with k > j


def active_speech_level(x: np.ndarray, sr: int, *, utt_id: str = "") -> ActiveLevel:
    """ITU-T P.56 method B active level of ``x`` (see the module docstring).

    Raises :class:`NoActiveSpeech` (naming ``utt_id``) for empty, silent or nearly silent input.
    """
    name = utt_id or "signal"
    x = np.asarray(x)
    n = x.size
    if n == 0:
        raise NoActiveSpeech(f"{name}: empty signal, no active speech (ITU-T P.56)")
    x64 = x.astype(np.float64, copy=False).reshape(-1)
    energy = float(np.add.reduce(x64 * x64))
    if not math.isfinite(energy):
        raise NoActiveSpeech(f"{name}: non-finite samples, no active speech level (ITU-T P.56)")
    if energy <= 0.0:
        raise NoActiveSpeech(f"{name}: silent (all samples zero), no active speech (ITU-T P.56)")
    counts = activity_counts(envelope(x64, sr), sr)
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(energy / counts)  # +inf where no sample is active
    margin = level - THRESHOLDS_DB
    below = np.flatnonzero(margin <= MARGIN_DB)
    if below.size == 0 or below[0] == 0:
        # at the lowest threshold already within the margin: everything lies under the grid
        raise NoActiveSpeech(
            f"{name}: no active speech (ITU-T P.56: active level under {FLOOR_DB + MARGIN_DB:.1f} dBFS, "
            f"whole-signal level {10 * math.log10(energy / n):.1f} dBFS)"
        )
    j = int(below[0])
    hi, lo = margin[j - 1], margin[j]  # hi > M >= lo, both finite (a_j never grows with j)
    frac = (hi - MARGIN_DB) / (hi - lo) if hi != lo else 1.0
    threshold = float(THRESHOLDS_DB[j - 1] + frac * STEP_DB)
    level_db = threshold + MARGIN_DB
    activity = energy / (n * 10.0 ** (level_db / 10.0))
    return ActiveLevel(level_db, min(1.0, activity), 10.0 * math.log10(energy / n), threshold)


def active_speech_power(x: np.ndarray, sr: int, *, utt_id: str = "") -> float:
    """:func:`active_speech_level` as a mean power (linear)."""
    return active_speech_level(x, sr, utt_id=utt_id).power
