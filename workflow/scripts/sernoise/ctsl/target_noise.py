"""The target noise of the adaptation (Leem et al. §3.1, §3.3) and the noisy test sets.

:class:`TargetNoise`: at most ``max_minutes`` of recordings of one bank category from one pool
(the paper: 30 minutes of the target environment), concatenated into one signal.  Every epoch
each training and development utterance is mixed with a freshly drawn segment of it (a random
offset, wrapping around) at the target SNR, so that the model never sees the same noisy copy
twice; each draw comes from a generator seeded by (config seed, purpose, fold, repetition,
epoch, utterance) (:func:`sernoise.seeds.rng_for`), so the same config gives the same noisy
audio whatever else is drawn.  The SNR is set against the speech level of ``snr.reference``
(the P.56 active level by default), with the helpers of :mod:`sernoise.conditions.snr`.

The training target uses the TRAIN pool of the bank; the noisy test sets use the TEST pool of the
same category (disjoint recordings) at each test SNR, one fixed draw per (SNR, utterance).
"""

from __future__ import annotations

import numpy as np

from sernoise.conditions.snr import EPS, gain_for_powers, power, speech_power
from sernoise.seeds import rng_for

SAMPLE_RATE = 16000
MAX_REDRAWS = 20  # a segment that is (nearly) silent cannot be scaled to an SNR: draw another


class TargetNoiseError(ValueError):
    """The target noise cannot be built or used (the message names the config key)."""


class TargetNoise:
    """One category of one noise pool, at most ``max_minutes`` long, mixed at an SNR (see the module doc)."""

    def __init__(self, pool, category: str, *, max_minutes: float, seed: int, reference: str = "active",
                 key: str = "ctsl.target"):
        files = pool.files(category)
        if not files:
            raise TargetNoiseError(f"config key {key}.category: the {pool.split} noise pool has no {category!r} files")
        if not max_minutes > 0:
            raise TargetNoiseError(f"config key {key}.max_minutes: must be > 0, got {max_minutes}")
        budget = int(round(max_minutes * 60 * SAMPLE_RATE))
        order = rng_for(seed, "ctsl-target-pool", pool.split, category).permutation(len(files))
        clips, used, total = [], [], 0
        for i in order:
            clip = np.asarray(pool.read(files[i]), dtype=np.float32)[: budget - total]
            if clip.size == 0:
                continue
            clips.append(clip)
            used.append(files[i])
            total += clip.size
            if total >= budget:
                break
        self.audio = np.concatenate(clips)
        if power(self.audio) <= EPS:
            raise TargetNoiseError(f"config key {key}.category: the {category!r} noise of the {pool.split} pool is silent")
        self.files = used
        self.category, self.split, self.seed, self.reference = category, pool.split, int(seed), reference
        self._speech_power: dict[str, float] = {}

    @property
    def seconds(self) -> float:
        return self.audio.size / SAMPLE_RATE

    def describe(self) -> dict:
        return {"category": self.category, "pool": self.split, "seconds": round(self.seconds, 3),
                "files": list(self.files), "snr_reference": self.reference}

    def segment(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` samples from a random offset, wrapping around the end (a short pool is looped)."""
        start = int(rng.integers(self.audio.size))
        return np.take(self.audio, np.arange(start, start + n), mode="wrap")

    def speech_power(self, clean: np.ndarray, utt_id: str) -> float:
        """The utterance's speech level (remembered: the clean audio of an utterance never changes)."""
        if utt_id not in self._speech_power:
            self._speech_power[utt_id] = speech_power(clean, None, self.reference, utt_id=utt_id)
        return self._speech_power[utt_id]

    def mix(self, clean: np.ndarray, snr_db: float, rng: np.random.Generator, utt_id: str = "") -> np.ndarray:
        """``clean`` plus a segment of the noise scaled to ``snr_db`` against the speech level (float32)."""
        clean = np.asarray(clean, dtype=np.float32)
        p_speech = self.speech_power(clean, utt_id)
        for _ in range(MAX_REDRAWS):
            noise = self.segment(clean.size, rng)
            p_noise = power(noise)
            if p_noise > EPS:
                gain = gain_for_powers(p_speech, p_noise, snr_db)
                return (clean + gain * noise).astype(np.float32)
        raise TargetNoiseError(f"{utt_id}: {MAX_REDRAWS} silent noise segments in a row from the "
                               f"{self.category!r} target noise")

    def noisy(self, clean: np.ndarray, utt_id: str, snr_db: float, *parts) -> np.ndarray:
        """The noisy copy of ``utt_id`` for the draw named by ``parts`` (e.g. "train", fold, rep, epoch)."""
        return self.mix(clean, snr_db, rng_for(self.seed, "ctsl-noise", self.category, self.split, *parts, utt_id),
                        utt_id)
