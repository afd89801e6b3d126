"""Laughter / sob insertion (paper §5.2 "Laugh/Cry", SPEC §5): one clip overlaid on the utterance.

A clip of the category (``laugh`` or ``cry``) is drawn from the noise pool and added at a
uniformly drawn position where it lies fully inside the utterance.  A clip longer than the
utterance is cropped to it, keeping its beginning (the onset of a laugh or sob is its most
characteristic part), and then spans the whole utterance.

The clip is scaled so that the SNR over its span, ``10·log10(P_speech / P_clip)`` with ``P_clip``
taken on ``[clip_start, clip_end)``, equals ``snr_db`` (SPEC §5); ``P_speech`` is the utterance's
P.56 active level under ``snr.reference: active`` (default), the speech power on the clip's span
under ``whole`` (:func:`~sernoise.conditions.snr.speech_power`).  A draw whose clip is
(nearly) silent (:func:`~sernoise.conditions.env.audible`) or whose speech under it is too quiet
for the clip to survive 16-bit storage (:func:`~sernoise.conditions.env.speech_supports`) is redrawn from the same generator, up to
:data:`~sernoise.conditions.env.MAX_ATTEMPTS` times, then the utterance is skipped with the reason.  No clipping; ``Result.noise`` is ``y − x``.
"""

from __future__ import annotations

import numpy as np

from .base import Condition, Context, Result, SkipUtterance
from .env import (
    MAX_ATTEMPTS,
    audible_power,
    check_category,
    check_snr,
    clip_profile,
    mix_at_snr,
    power_supports,
    require_noise,
)
from .snr import power

CATEGORIES = ("laugh", "cry")
DEFAULT_SNR_DB = 5.0


class InsertClip(Condition):
    """A laughter or sob clip (``category`` laugh | cry) added at a random position, at ``snr_db`` (default 5 dB)."""

    type_name = "insert"
    family = "distortion"
    default_perception = "altering"
    requires = frozenset({"noise"})
    additive = True

    def __init__(
        self,
        condition_id: str,
        *,
        category: str,
        snr_db: float = DEFAULT_SNR_DB,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        self.category = check_category(self, category, CATEGORIES)
        self.snr_db = check_snr(self, snr_db)

    def args(self) -> dict:
        return {"category": self.category, "snr_db": self.snr_db}

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        noise = require_noise(self, context)
        n = x.size
        # active: one P.56 level for the utterance, wherever the clip lands
        utterance_level = None if self.snr_reference == "whole" else self.speech_level(x, (0, n), context)
        for _ in range(MAX_ATTEMPTS):
            key, clip = noise.draw(self.category, rng)
            cropped = clip.size > n
            if cropped:
                start, segment = 0, clip[:n]
            else:
                start = int(rng.integers(n - clip.size + 1))
                segment = clip
            stop = start + segment.size
            profile = clip_profile(noise, key, clip)
            noise_power = profile.segment_power(clip, 0, n) if cropped else profile.power
            if not audible_power(noise_power, profile.power):
                continue
            speech_power = power(x[start:stop]) if utterance_level is None else utterance_level
            if power_supports(speech_power, self.snr_db):
                break
        else:
            raise SkipUtterance(
                f"{context.utt_id}: no {self.category} clip placement with audible clip over loud enough speech in {MAX_ATTEMPTS} draws"
            )
        y, added, gain = mix_at_snr(x, segment, start, self.snr_db, speech_power=speech_power, noise_power=noise_power,
                                    deferred_noise=True)
        params = {
            "clip_file": key,
            "clip_seconds": clip.size / sr,
            "clip_start_s": start / sr,
            "clip_end_s": stop / sr,
            "cropped": cropped,
            "gain": gain,
        }
        return Result(y, params, self.snr_db, added, (start, stop), speech_power)
