"""Reading audio once, at preparation time.

SPEC: all audio is read with soundfile, converted to mono 16 kHz float32 (resampled when
needed) once; later stages read the prepared shards (:mod:`sernoise.audio_store`), never the
original files.  Keeping every decode/resample decision in this one module means every
corpus goes through exactly the same conversion.

Conversion, in order:

1. ``soundfile.read(dtype="float32", always_2d=True)`` - integer PCM comes back as
   ``k / 2**(bits-1)``, so a 16-bit file gives exact multiples of 1/32768 (which the store
   can keep bit-exactly);
2. mono = mean over channels (a single channel is taken as is, so no arithmetic touches it);
3. resampling with soxr, quality ``"HQ"``, only when the file's rate differs from the target.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TARGET_SR = 16000

# soxr quality preset: "HQ" is soxr's default high quality (20-bit precision), well beyond
# the 16-bit storage the shards use, and much faster than "VHQ".
RESAMPLE_QUALITY = "HQ"


class AudioError(ValueError):
    """An audio file could not be read; the message starts with the file path."""


def read_audio(path: str | os.PathLike, target_sr: int = TARGET_SR) -> tuple[np.ndarray, int]:
    """Read ``path`` as mono float32 at ``target_sr``.

    Returns ``(x, original_sample_rate)`` where ``x`` is a 1-D C-contiguous float32 array.
    Raises :class:`AudioError` (``"<path>: unreadable (<reason>)"``) for a missing,
    unreadable or corrupt file.  Content problems (silence, NaN) are *not* checked here;
    see :func:`check_audio`.
    """
    path = Path(path)
    # libsndfile reports a missing file as a bare "System error"; say what it is.
    if not path.exists():
        raise AudioError(f"{path}: unreadable (no such file)")
    if path.is_dir():
        raise AudioError(f"{path}: unreadable (is a directory)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: unreadable ({exc.error_string})") from exc
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AudioError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc

    if data.shape[1] == 1:
        # Mono: take the column unchanged so 16-bit values stay exact multiples of 1/32768.
        x = data[:, 0]
    else:
        x = data.mean(axis=1, dtype=np.float32)

    if sr != target_sr and x.size > 0:
        try:
            x = soxr.resample(x, sr, target_sr, quality=RESAMPLE_QUALITY)
        except (ValueError, RuntimeError) as exc:
            raise AudioError(f"{path}: unreadable (resampling {sr} -> {target_sr} Hz failed: {exc})") from exc
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def check_audio(x: np.ndarray, *, silence_peak: float = 1e-4) -> str | None:
    """Why ``x`` is unusable, or ``None`` when it is fine.

    Checks, in order: no samples, any NaN/Inf, peak absolute value below ``silence_peak``
    (an all-zero or near-digital-silence recording carries no emotion and would produce
    NaN/-inf in SNR scaling later).
    """
    if x.size == 0:
        return "empty (no samples)"
    if not np.isfinite(x).all():
        return "non-finite samples (NaN/Inf)"
    peak = float(np.max(np.abs(x)))
    if peak < silence_peak:
        return f"silent (peak {peak:.3g} below {silence_peak:g})"
    return None


def load_checked(
    path: str | os.PathLike,
    *,
    target_sr: int = TARGET_SR,
    silence_peak: float = 1e-4,
) -> tuple[np.ndarray | None, int | None, str | None]:
    """Read and check one file without ever raising for a bad file.

    Returns ``(x, original_sr, None)`` for a usable file, otherwise
    ``(None, original_sr_or_None, reason)``; reasons for files that could not be decoded
    start with ``"unreadable"`` (the path is left out: the caller records it separately).
    """
    try:
        x, orig_sr = read_audio(path, target_sr)
    except AudioError as exc:
        # Strip the "<path>: " prefix; the rejects table has its own path column.
        message = str(exc)
        prefix = f"{Path(path)}: "
        reason = message[len(prefix):] if message.startswith(prefix) else message
        return None, None, reason
    reason = check_audio(x, silence_peak=silence_peak)
    if reason is not None:
        return None, orig_sr, reason
    return x, orig_sr, None
