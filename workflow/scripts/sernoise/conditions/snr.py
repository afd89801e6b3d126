"""Signal-to-noise ratios as SPEC §5 defines them.

* Additive conditions: ``10·log10(P_speech / P_noise)`` over the span where noise is present,
  with P the mean power of the clean utterance and of the added noise on that span.
* Non-additive distortions: the SNR of the difference signal, ``10·log10(P_x / P_(y−x))``,
  defined only when the output has the input's length (otherwise NaN).
"""

from __future__ import annotations

import threading

import numpy as np

EPS = 1e-20

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
        work = x.astype(np.float64)
        np.multiply(work, work, out=work)
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
    :meth:`energy` again.  Stretch energies differ from :func:`sum_squares` of the stretch by
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
