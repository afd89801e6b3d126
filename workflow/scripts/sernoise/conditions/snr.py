"""Signal-to-noise ratios as SPEC §5 defines them.

* Additive conditions: ``10·log10(P_speech / P_noise)`` over the span where noise is present,
  with P the mean power of the clean utterance and of the added noise on that span.
* Non-additive distortions: the SNR of the difference signal, ``10·log10(P_x / P_(y−x))``,
  defined only when the output has the input's length (otherwise NaN).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-20


def power(x: np.ndarray) -> float:
    """Mean power, computed in float64 so long int16-scale signals do not lose precision."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """SNR of ``speech`` against ``noise`` (same span); +inf for zero noise, -inf for zero speech."""
    p_noise = power(noise)
    p_speech = power(speech)
    if p_noise <= EPS:
        return float("inf")
    if p_speech <= EPS:
        return float("-inf")
    return 10.0 * np.log10(p_speech / p_noise)


def gain_for_snr(speech: np.ndarray, noise: np.ndarray, target_db: float) -> float:
    """Amplitude gain g so that ``snr_db(speech, g·noise) == target_db`` (ValueError on silent parts)."""
    p_speech, p_noise = power(speech), power(noise)
    if p_noise <= EPS:
        raise ValueError("noise segment is silent; cannot scale it to an SNR")
    if p_speech <= EPS:
        raise ValueError("speech segment is silent; SNR is undefined")
    return float(np.sqrt(p_speech / (p_noise * 10.0 ** (target_db / 10.0))))


def additive_snr(clean: np.ndarray, noisy: np.ndarray, span: tuple[int, int] | None = None) -> float:
    """Measured SNR of an additive condition: the clean span against (noisy − clean) on that span."""
    if clean.shape != noisy.shape:
        raise ValueError(f"additive SNR needs equal lengths, got {clean.shape} and {noisy.shape}")
    start, stop = span if span is not None else (0, clean.size)
    x = np.asarray(clean[start:stop], dtype=np.float64)
    return snr_db(x, np.asarray(noisy[start:stop], dtype=np.float64) - x)


def difference_snr(clean: np.ndarray, distorted: np.ndarray) -> float:
    """Perturbation level of a non-additive distortion; NaN when the length changed."""
    if clean.shape != distorted.shape:
        return float("nan")
    x = np.asarray(clean, dtype=np.float64)
    return snr_db(x, np.asarray(distorted, dtype=np.float64) - x)
