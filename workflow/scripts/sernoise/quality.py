"""Speech quality of processed audio against the clean original: STOI and wide-band PESQ, and
which of them a dataset's pool measures (``augment.quality`` / ``denoise.quality`` config).

Shared by the augmented datasets (:mod:`sernoise.augment`) and the denoised ones
(:mod:`sernoise.denoise`), so both report the same measure the same way (NaN plus a note when a
measure is undefined, e.g. a signal too short for STOI).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sernoise.audio_store import dequantise, quantise
from sernoise.conditions.base import SAMPLE_RATE

# augment.quality defaults; ``clean``: measure the clean corpus too (datasets that have one: denoise)
DEFAULT_QUALITY = {"stoi": True, "pesq": True, "pools": ["test"]}


def quality_for(quality: dict | None, pool: str | None, default: dict = DEFAULT_QUALITY) -> tuple[bool, bool]:
    """(stoi?, pesq?) for this pool (``None``: the clean corpus, per the ``clean`` key) from a
    quality config (``default`` when None)."""
    q = dict(default if quality is None else quality)
    on = bool(q.get("clean", True)) if pool is None else pool in (q.get("pools") or [])
    return bool(q.get("stoi", False)) and on, bool(q.get("pesq", False)) and on


def as_stored(y: np.ndarray) -> np.ndarray:
    """``y`` as an audio shard gives it back (int16 quantisation): measure what is stored."""
    q, scale = quantise(y)
    return dequantise(q, scale)


def measure_stoi(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    from pystoi import stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(stoi(x.astype(np.float64), y.astype(np.float64), SAMPLE_RATE, extended=False))
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if notes:  # pystoi returns a placeholder (1e-5) when the signal is too short
        return math.nan, "stoi: " + notes[0]
    return value, ""


def measure_pesq(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    import pesq

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(pesq.pesq(SAMPLE_RATE, x, y, "wb")), ""
    except (pesq.PesqError, ValueError) as error:
        message = error.args[0] if error.args else type(error).__name__
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        return math.nan, f"pesq: {type(error).__name__}: {message}"
