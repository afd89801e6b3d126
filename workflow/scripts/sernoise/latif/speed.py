"""Speed perturbation for training (Latif et al. §4.3, after Ko et al. [28]): SoX's ``speed`` effect.

Each training utterance gets two extra copies at speed factors 0.9 and 1.1.  As in Ko et al.'s
Kaldi recipe, the effect is SoX ``speed``, which plays the audio ``factor`` times faster by
resampling: tempo AND pitch change together (every frequency is multiplied by ``factor``, the
duration divided by it).  This is deliberately not :mod:`sernoise.conditions.speed`, whose test
conditions change the tempo only (``tempo -s``, pitch kept).

The effect chain is ``speed <factor> rate -h <sample_rate>``: ``speed`` relabels the sample rate
(``sample_rate·factor``) and ``rate -h`` (SoX's high-quality resampler, also what SoX would insert
by itself) brings the audio back to ``sample_rate``, so the output has the input's sample rate and
about ``len / factor`` samples.  SoX runs through :func:`sernoise.conditions.tools.run_sox` (raw
float32 pipes, ``-R -D`` for a repeatable, undithered output, the fixed headroom against clipping),
the project's one route to SoX: pysndfx, which would return arrays, is broken on NumPy 2.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from sernoise.conditions.tools import run_sox

PAPER_FACTORS = (0.9, 1.1)


def _checked_factor(factor) -> float:
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)):
        raise ValueError(f"speed perturbation: factor must be a number, got {factor!r}")
    factor = float(factor)
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"speed perturbation: factor must be a finite number > 0, got {factor}")
    return factor


def speed_perturb(wave: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """``wave`` played ``factor`` times faster, tempo and pitch alike; float32 at ``sample_rate``.

    The output has about ``len(wave) / factor`` samples (SoX's resampler rounds); factor 1 returns
    a copy of the input unchanged (SoX would only resample it to itself).
    """
    factor = _checked_factor(factor)
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"speed perturbation: expected mono audio (1-D), got shape {wave.shape}")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"speed perturbation: sample_rate must be a positive integer, got {sample_rate!r}")
    if factor == 1.0 or wave.size == 0:
        return wave.copy()
    sample_rate = int(sample_rate)
    return run_sox(wave, sample_rate, ["speed", repr(factor), "rate", "-h", str(sample_rate)]).astype(np.float32)


def perturbed_copies(wave: np.ndarray, sample_rate: int, factors: Sequence[float] = PAPER_FACTORS) -> list[np.ndarray]:
    """One :func:`speed_perturb` copy of ``wave`` per factor, in the order of ``factors`` (default: the paper's)."""
    checked = [_checked_factor(f) for f in factors]  # every factor is checked before SoX runs once
    return [speed_perturb(wave, sample_rate, f) for f in checked]
