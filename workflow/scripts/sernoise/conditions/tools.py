"""Run the SoX and Rubber Band command-line tools on NumPy arrays (shared by speed, pitch, reverb).

The Python wrappers around these tools (pysndfx, pyrubberband) are either broken on NumPy 2
or add nothing we need, so the executables are called directly with :mod:`subprocess`
(argument lists, never a shell):

* **SoX** reads and writes raw little-endian float32 through pipes (``-t f32 -L``), so no
  temporary file is written; ``-R`` (repeatable) and ``-D`` (no dither) keep the output a pure
  function of the input and the effect arguments.
* **Rubber Band** only reads and writes sound files, so audio goes through a private
  temporary directory as 32-bit float WAV (``soundfile`` subtype ``FLOAT``), which round-trips
  float32 exactly.

Headroom.  Both tools clip at full scale: SoX computes in 32-bit integers, and Rubber Band's
output is limited to ±1 (by default it even *restarts with a lower gain* when it clips, which
would make the output level depend on the content).  Effects such as reverberation or pitch
shifting can raise the peak above the input's, so the input is attenuated by a fixed
``headroom_db`` before the tool and the output amplified by the same amount afterwards: a
deterministic, content-independent gain that leaves the dry level untouched (the caller
measures the difference-signal SNR against the input).  Should a tool still clip, that is an
error rather than silently distorted audio.

Batches.  Starting a process costs a few milliseconds, comparable to processing a 3 s
utterance with SoX; the batch variants run one process for many utterances:

* :func:`run_sox_batch` gives every utterance its own SoX *effects chain* (``trim 0 Ns
  <effects> : trim 0 Ms <effects> : ...``).  SoX starts each chain with fresh effect state
  on the input where the previous chain stopped and drains it at the chain's end, so each
  utterance's output is bit-identical to a separate call.  The outputs arrive back to back
  on one pipe, so their lengths must be known: the inputs' (length-preserving effects such
  as ``reverb``), or given by the caller (``tempo`` writes exactly ``⌊n/factor + ½⌋``
  samples, see :func:`sernoise.conditions.speed.tempo_batch`); a total that differs is an
  error.
* :func:`run_rubberband_batch` concatenates the utterances with silent gaps, runs one
  Rubber Band process and cuts the result at the same offsets (pitch shifting preserves
  the timeline).  The gaps must be longer than the tool's analysis window so no utterance
  leaks into the next; the result is then close to, but not bit-identical with, separate
  calls (the frame grid falls differently).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from .base import ConditionError

# Debian package providing each executable, named in the "not installed" error.
PACKAGES = {"sox": "sox", "rubberband": "rubberband-cli"}

DEFAULT_HEADROOM_DB = 12.0  # covers reverb/pitch peak growth seen on speech (< 2x) with margin
DEFAULT_GAP_S = 0.5


def executable(name: str) -> str:
    """Absolute path of ``name`` on PATH; ConditionError naming the Debian package when missing."""
    path = shutil.which(name)
    if path is None:
        package = PACKAGES.get(name, name)
        raise ConditionError(
            f"the `{name}` executable was not found on PATH; install it (Debian/Ubuntu package `{package}`)"
        )
    return path


def _run(argv: list[str], what: str, *, stdin: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a tool; a failure becomes a ConditionError carrying the tool's stderr."""
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=timeout)
    except FileNotFoundError:  # vanished between which() and exec
        raise ConditionError(f"{what}: executable {argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ConditionError(f"{what}: timed out after {timeout} s") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise ConditionError(f"{what}: exit status {proc.returncode}: {message or '(no message)'}")
    return proc


def _gain(headroom_db: float) -> float:
    return float(10.0 ** (-headroom_db / 20.0))


def _as_float32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ConditionError(f"expected mono audio (1-D), got shape {x.shape}")
    return x


def _sox_argv(sr: int) -> list[str]:
    raw = ["-t", "f32", "-L", "-r", str(int(sr)), "-c", "1"]
    # -R: repeatable (fixed seeds for anything random inside SoX); -D: never dither;
    # -V2: errors and warnings only (warnings are how SoX reports clipping).
    return [executable("sox"), "-R", "-D", "-V2", *raw, "-", *raw, "-"]


def _check_sox_clipping(proc: subprocess.CompletedProcess, what: str) -> None:
    message = proc.stderr.decode("utf-8", "replace")
    if "clipped" in message:
        raise ConditionError(f"{what}: output clipped despite the fixed headroom: {message.strip()}")


def run_sox(x: np.ndarray, sr: int, effects: Sequence[str], *, headroom_db: float = DEFAULT_HEADROOM_DB) -> np.ndarray:
    """``x`` through one SoX effects chain (e.g. ``["tempo", "-s", "1.25"]``); float32 out.

    The output length is whatever the effects produce.  Raises ConditionError when SoX is
    missing, fails, or reports clipping.
    """
    x = _as_float32(x)
    g = _gain(headroom_db)
    what = "sox " + " ".join(effects)
    proc = _run([*_sox_argv(sr), *effects], what, stdin=(x * g).astype("<f4", copy=False).tobytes())
    _check_sox_clipping(proc, what)
    return np.frombuffer(proc.stdout, dtype="<f4") / np.float32(g)


def run_sox_batch(
    xs: Sequence[np.ndarray],
    sr: int,
    chains: Sequence[Sequence[str]],
    *,
    out_lengths: Sequence[int] | None = None,
    headroom_db: float = DEFAULT_HEADROOM_DB,
) -> list[np.ndarray]:
    """Each ``xs[i]`` through its own effects chain ``chains[i]``, in ONE SoX process.

    The output is split into ``out_lengths[i]`` samples per chain (default: the input lengths,
    for length-preserving chains such as ``reverb``, whose tail SoX cuts at the input's end);
    a total length that differs is an error.  Each output equals :func:`run_sox` on that
    utterance alone, bit for bit.
    """
    if len(xs) != len(chains):
        raise ValueError(f"{len(xs)} signals but {len(chains)} effect chains")
    if out_lengths is not None and len(out_lengths) != len(xs):
        raise ValueError(f"{len(xs)} signals but {len(out_lengths)} output lengths")
    if not xs:
        return []
    xs = [_as_float32(x) for x in xs]
    lengths = [x.size for x in xs] if out_lengths is None else [int(n) for n in out_lengths]
    g = _gain(headroom_db)
    argv = _sox_argv(sr)
    for i, (x, chain) in enumerate(zip(xs, chains)):
        if i:
            argv.append(":")
        # trim ends this chain after exactly this utterance; the next chain resumes there.
        argv += ["trim", "0", f"{x.size}s", *chain]
    what = f"sox batch of {len(xs)} ({' '.join(chains[0])} ...)"
    joined = np.concatenate(xs)
    joined *= g
    proc = _run(argv, what, stdin=joined.astype("<f4", copy=False).tobytes())
    _check_sox_clipping(proc, what)
    y = np.frombuffer(proc.stdout, dtype="<f4") / np.float32(g)
    if y.size != sum(lengths):
        expected = "the input's" if out_lengths is None else "the expected"
        raise ConditionError(f"{what}: output has {y.size} samples, {expected} total is {sum(lengths)}")
    bounds = np.cumsum([0] + lengths)
    return [y[bounds[i] : bounds[i + 1]] for i in range(len(xs))]


def run_rubberband(
    x: np.ndarray, sr: int, options: Sequence[str], *, headroom_db: float = DEFAULT_HEADROOM_DB
) -> np.ndarray:
    """``x`` through the ``rubberband`` CLI with ``options`` (e.g. ``["--frequency", "1.25"]``).

    ``--ignore-clipping`` is always passed (no content-dependent gain restarts); the fixed
    headroom keeps the output below full scale, and a peak at full scale is an error.
    """
    x = _as_float32(x)
    g = _gain(headroom_db)
    what = "rubberband " + " ".join(options)
    argv0 = executable("rubberband")
    with tempfile.TemporaryDirectory(prefix="sernoise-rb-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, x * g, sr, subtype="FLOAT")
        _run([argv0, "--quiet", "--ignore-clipping", *options, str(src), str(dst)], what)
        if not dst.exists():
            raise ConditionError(f"{what}: no output file written")
        y, sr_out = sf.read(dst, dtype="float32", always_2d=False)
    if sr_out != sr or y.ndim != 1:
        raise ConditionError(f"{what}: unexpected output ({sr_out} Hz, shape {y.shape})")
    if y.size and float(np.max(np.abs(y))) >= 1.0:
        raise ConditionError(f"{what}: output reached full scale despite {headroom_db} dB headroom")
    return (y / g).astype(np.float32)


def concat_with_gaps(xs: Sequence[np.ndarray], gap: int) -> tuple[np.ndarray, np.ndarray]:
    """``xs`` joined with ``gap`` zero samples before, between and after them; returns the
    joined signal and each utterance's start offset."""
    if gap < 0:
        raise ValueError("gap must be >= 0")
    parts, starts, pos = [np.zeros(gap, np.float32)], [], gap
    for x in xs:
        starts.append(pos)
        parts += [np.asarray(x, np.float32), np.zeros(gap, np.float32)]
        pos += x.size + gap
    return np.concatenate(parts), np.asarray(starts, dtype=np.int64)


def run_rubberband_batch(
    xs: Sequence[np.ndarray],
    sr: int,
    options: Sequence[str],
    *,
    gap_s: float = DEFAULT_GAP_S,
    headroom_db: float = DEFAULT_HEADROOM_DB,
) -> list[np.ndarray]:
    """Many utterances through ONE Rubber Band process (pitch shifting only: the timeline
    must be preserved).  The silent gaps of ``gap_s`` seconds (also before the first and
    after the last utterance, so every utterance sees the same leading/trailing context)
    isolate the utterances from each other; the output is cut at the input offsets.
    """
    if not xs:
        return []
    xs = [_as_float32(x) for x in xs]
    gap = int(round(gap_s * sr))
    joined, starts = concat_with_gaps(xs, gap)
    y = run_rubberband(joined, sr, options, headroom_db=headroom_db)
    if y.size != joined.size:
        raise ConditionError(
            f"rubberband batch: output has {y.size} samples, expected {joined.size} (only pitch shifting can be batched)"
        )
    return [y[s : s + x.size].copy() for s, x in zip(starts, xs)]


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` trimmed or zero-padded at the end to exactly ``n`` samples."""
    if y.size >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.size, dtype=y.dtype)])


def check_input(condition, x: np.ndarray, sr: int, utt_id: str) -> np.ndarray:
    """The input checks of :meth:`Condition.__call__`, for batch paths that bypass it."""
    return condition.checked_input(x, sr, utt_id)
