"""Signal-to-noise ratios as SPEC §5 defines them.

* Additive conditions: ``10·log10(P_speech / P_noise)``, ``P_noise`` the mean power of the added
  noise over the span where it is present and ``P_speech`` the level of the speech under the
  configured reference (``snr.reference``, :func:`speech_power`, the one definition every stage
  uses): ``active`` (default) the ITU-T P.56 active speech level of the whole utterance
  (:mod:`~sernoise.conditions.active_level`), ``whole`` the mean power of the clean utterance
  over the noise span, silences included (the definition before P.56).
* Non-additive distortions: the SNR of the difference signal, ``10·log10(P_x / P_(y−x))``,
  defined only when the output has the input's length (otherwise NaN).  It needs no reference:
  a distortion of silence is (near) silence, so both powers count the same samples and padding
  with silence leaves the ratio unchanged, as the active level does for additive noise.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict

import numpy as np

from .active_level import NoActiveSpeech, active_speech_power

EPS = 1e-20
SAMPLE_RATE = 16000
# How the speech level of an SNR is measured (config key snr.reference).
REFERENCES = ("active", "whole")
DEFAULT_REFERENCE = "active"

_SCRATCH = threading.local()


def scratch(n: int, dtype=np.float64, slot: str = "a") -> np.ndarray:
    """A work array of ``n`` elements (contents undefined), reused between calls of this thread.

    For temporaries of a few hundred kB per utterance: a fresh array of that size costs page
    faults whenever the allocator has handed the memory back to the system in between (on
    some virtual machines that is several times the arithmetic).  Never return it to a caller.
    """
    try:
        buffers = _SCRATCH.buffers
    except AttributeError:
        buffers = _SCRATCH.buffers = {}
    key = (slot, dtype)
    arr = buffers.get(key)
    if arr is None or arr.size < n:
        arr = buffers[key] = np.empty(max(int(n), 2 * (0 if arr is None else arr.size), 1 << 16), dtype=dtype)
    return arr[:n]


def sum_squares(x: np.ndarray) -> float:
    """Energy ``Σ x²`` in float64 (squares taken after the cast, numpy's pairwise sum).

    No BLAS dot product: its summation order depends on the CPU kernel and the thread count,
    and the gains derived from these sums must not differ between machines.
    """
    x = np.asarray(x).reshape(-1)
    if x.size <= 4096:  # small: a fresh array is cheaper than the scratch bookkeeping
        if x.size == 0:
            return 0.0
        work = np.square(x, dtype=np.float64)  # cast, then square in float64: as below, one call
    elif x.dtype == np.float64:
        work = np.multiply(x, x, out=scratch(x.size))
    else:
        work = scratch(x.size)
        np.copyto(work, x)  # the cast to float64
        np.multiply(work, work, out=work)
    return float(np.add.reduce(work))


def power(x: np.ndarray) -> float:
    """Mean power, computed in float64 so long int16-scale signals do not lose precision.

    Bit for bit ``np.mean(x.astype(float64) ** 2)``, without its per-call overhead.
    """
    x = np.asarray(x)
    return sum_squares(x) / x.size if x.size else 0.0


class EnergyProfile:
    """A clip's cumulative float64 energy by blocks of :data:`BLOCK` samples.

    Built in one pass over the clip; afterwards the energy of any stretch ``[start, stop)`` costs
    two block lookups plus the (< 2 blocks of) edge samples, instead of a pass over the stretch,
    and the whole clip's mean power is stored (:attr:`power`, equal to :func:`power` of the clip).
    The clip itself is not kept (a pool's clip cache stays the only owner): pass it to
    :meth:`energy` again.  (A condition that loops the clip keeps one loop period of it in
    :attr:`derived`, about the clip's size, for short clips only.)  Stretch energies differ from :func:`sum_squares` of the stretch by
    float rounding only (relative ~1e-16 of the clip's total energy).
    """

    BLOCK = 256

    def __init__(self, clip: np.ndarray):
        sq = np.square(np.asarray(clip), dtype=np.float64)
        self.size = int(sq.size)
        nb = self.size // self.BLOCK
        blocks = np.add.reduce(sq[: nb * self.BLOCK].reshape(nb, self.BLOCK), axis=1)
        self._cum = np.concatenate(([0.0], np.cumsum(blocks)))
        self._cum.setflags(write=False)
        self.power = float(np.add.reduce(sq)) / self.size if self.size else 0.0
        # Values derived from the clip alone that a caller wants once per clip, not per draw
        # (sernoise.conditions.env keeps the loop period of a short clip here, by crossfade).
        self.derived: dict = {}

    def energy(self, clip: np.ndarray, start: int, stop: int) -> float:
        """``Σ clip[start:stop]²`` (``clip`` must be the array the profile was built from)."""
        if clip.size != self.size:
            raise ValueError(f"energy profile of {self.size} samples used with a clip of {clip.size}")
        start, stop = max(0, int(start)), min(self.size, int(stop))
        if stop <= start:
            return 0.0
        b0, b1 = -(-start // self.BLOCK), stop // self.BLOCK
        if b1 <= b0:
            return sum_squares(clip[start:stop])
        inner = float(self._cum[b1] - self._cum[b0])
        return inner + sum_squares(clip[start : b0 * self.BLOCK]) + sum_squares(clip[b1 * self.BLOCK : stop])

    def segment_power(self, clip: np.ndarray, start: int, stop: int) -> float:
        """Mean power of ``clip[start:stop]`` (0 for an empty stretch)."""
        n = min(self.size, int(stop)) - max(0, int(start))
        return self.energy(clip, start, stop) / n if n > 0 else 0.0


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
    return gain_for_powers(power(speech), power(noise), target_db)


def gain_for_powers(p_speech: float, p_noise: float, target_db: float) -> float:
    """:func:`gain_for_snr` from the two mean powers (float64), when the caller has them already."""
    if p_noise <= EPS:
        raise ValueError("noise segment is silent; cannot scale it to an SNR")
    if p_speech <= EPS:
        raise ValueError("speech segment is silent; SNR is undefined")
    return float(np.sqrt(p_speech / (p_noise * 10.0 ** (target_db / 10.0))))


def check_reference(reference, key: str = "snr.reference") -> str:
    """``reference`` if it is one of :data:`REFERENCES`, else ValueError naming the config key."""
    if reference not in REFERENCES:
        raise ValueError(f"config key {key}: must be one of {list(REFERENCES)}, got {reference!r}")
    return str(reference)


def speech_power(
    x: np.ndarray,
    span: tuple[int, int] | None = None,
    reference: str = DEFAULT_REFERENCE,
    *,
    sr: int = SAMPLE_RATE,
    utt_id: str = "",
) -> float:
    """The speech level an SNR is set against, as a mean power (float64).

    ``active``: the P.56 active level of the whole of ``x`` (``span`` does not matter: the level
    of the speech is the utterance's, wherever the noise lies).  ``whole``: the mean power of
    ``x[span]`` (all of ``x`` when ``span`` is None), silences included.  Silent or nearly
    silent speech raises :class:`~sernoise.conditions.active_level.NoActiveSpeech` (``active``;
    the message names ``utt_id``) or gives 0 (``whole``).
    """
    if check_reference(reference) == "active":
        return _active_power(x, sr, utt_id)
    start, stop = span if span is not None else (0, np.asarray(x).size)
    return power(np.asarray(x)[start:stop])


_ACTIVE_CACHE: OrderedDict = OrderedDict()
_ACTIVE_CACHE_SIZE = 64
_ACTIVE_CACHE_LOCK = threading.Lock()


def _active_power(x: np.ndarray, sr: int, utt_id: str) -> float:
    """:func:`~sernoise.conditions.active_level.active_speech_power`, remembered for the last
    :data:`_ACTIVE_CACHE_SIZE` signals (keyed by a digest of their samples): the attack draws
    several noises per utterance and run, each condition asking for the same level, and a
    digest costs a small fraction of P.56's envelope."""
    x = np.ascontiguousarray(x)
    key = (hashlib.blake2b(memoryview(x).cast("B"), digest_size=16).digest(), x.dtype.str, x.shape, int(sr))
    with _ACTIVE_CACHE_LOCK:
        if key in _ACTIVE_CACHE:
            _ACTIVE_CACHE.move_to_end(key)
            return _ACTIVE_CACHE[key]
    value = active_speech_power(x, sr, utt_id=utt_id)  # NoActiveSpeech is raised, never cached
    with _ACTIVE_CACHE_LOCK:
        _ACTIVE_CACHE[key] = value
        while len(_ACTIVE_CACHE) > _ACTIVE_CACHE_SIZE:
            _ACTIVE_CACHE.popitem(last=False)
    return value


def forget_active_levels() -> None:
    """Empty the remembered P.56 levels (:func:`_active_power`), as a fresh process starts
    (benchmarks that run many jobs' work in one process call it between jobs)."""
    with _ACTIVE_CACHE_LOCK:
        _ACTIVE_CACHE.clear()


def additive_snr(
    clean: np.ndarray,
    noisy: np.ndarray,
    span: tuple[int, int] | None = None,
    reference: str = DEFAULT_REFERENCE,
    *,
    p_speech: float | None = None,
    utt_id: str = "",
) -> float:
    """Measured SNR of an additive condition: the speech level (:func:`speech_power` under
    ``reference``, or ``p_speech`` when the caller has it) against the power of (noisy − clean)
    on ``span`` (the whole signal when None)."""
    if clean.shape != noisy.shape:
        raise ValueError(f"additive SNR needs equal lengths, got {clean.shape} and {noisy.shape}")
    start, stop = span if span is not None else (0, clean.size)
    x = np.asarray(clean[start:stop], dtype=np.float64)
    p_noise = power(np.asarray(noisy[start:stop], dtype=np.float64) - x)
    if p_speech is None:
        p_speech = speech_power(clean, (start, stop), reference, utt_id=utt_id)
    return snr_from_powers(p_speech, p_noise)


def snr_from_powers(p_speech: float, p_noise: float) -> float:
    """``10·log10(p_speech / p_noise)``; +inf for zero noise, -inf for zero speech."""
    if p_noise <= EPS:
        return float("inf")
    if p_speech <= EPS:
        return float("-inf")
    return float(10.0 * np.log10(p_speech / p_noise))


def difference_snr(clean: np.ndarray, distorted: np.ndarray) -> float:
    """Perturbation level of a non-additive distortion; NaN when the length changed."""
    if clean.shape != distorted.shape:
        return float("nan")
    x = np.asarray(clean, dtype=np.float64)
    return snr_db(x, np.asarray(distorted, dtype=np.float64) - x)


# params.csv columns of the speech level and the SNR under both references (sernoise.augment;
# listed in sernoise.augmented_io.PARAM_COLUMNS too)
SNR_COLUMNS = ("snr_reference", "speech_level_active_db", "speech_level_whole_db", "snr_measured_active",
               "snr_measured_whole")


def empty_snr_columns(reference: str) -> dict:
    """:data:`SNR_COLUMNS` of a row without an additive SNR (NaN, the reference named)."""
    return {"snr_reference": reference, **{name: math.nan for name in SNR_COLUMNS[1:]}}


def snr_measures(
    clean: np.ndarray,
    stored: np.ndarray,
    span: tuple[int, int] | None,
    reference: str = DEFAULT_REFERENCE,
    *,
    p_speech: float | None = None,
    utt_id: str = "",
    sr: int = SAMPLE_RATE,
    p_active: float | None = None,
) -> dict:
    """The SNR of an additive condition's stored output under both references, and both speech levels.

    ``snr_measured`` is the one under ``reference`` (the 0.1 dB accuracy bar of SPEC §11 holds for
    it); ``p_speech`` is the level the condition used (``Result.speech_power``), reused for its
    reference.  ``speech_level_whole_db`` is the power over the noise span (the whole utterance for
    noise over all of it); the active level is P.56's (NaN under ``whole`` when P.56 finds no speech),
    ``p_active`` when the caller has it (a prepared shard's stored level of ``clean``).
    """
    reference = check_reference(reference)
    if clean.shape != stored.shape:
        raise ValueError(f"additive SNR needs equal lengths, got {clean.shape} and {stored.shape}")
    start, stop = span if span is not None else (0, clean.size)
    x = np.asarray(clean[start:stop], dtype=np.float64)
    p_noise = power(np.asarray(stored[start:stop], dtype=np.float64) - x)
    known = p_speech is not None and math.isfinite(p_speech)
    p_whole = p_speech if known and reference == "whole" else power(x)
    if known and reference == "active":
        p_active = p_speech
    elif p_active is not None and math.isfinite(p_active):
        p_active = float(p_active)
    else:
        try:
            p_active = _active_power(clean, sr, utt_id)
        except NoActiveSpeech:
            if reference == "active":
                raise
            p_active = math.nan
    out = {
        "snr_reference": reference,
        "speech_level_active_db": _db(p_active),
        "speech_level_whole_db": _db(p_whole),
        "snr_measured_active": snr_from_powers(p_active, p_noise) if math.isfinite(p_active) else math.nan,
        "snr_measured_whole": snr_from_powers(p_whole, p_noise),
    }
    out["snr_measured"] = out[f"snr_measured_{reference}"]
    return out


def _db(p: float) -> float:
    return 10.0 * math.log10(p) if math.isfinite(p) and p > 0 else (-math.inf if p == 0 else math.nan)
