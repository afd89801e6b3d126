"""RNNoise denoising of whole datasets (paper §7.4.1, SPEC §7: the T-DNN-NR arm).

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
speech probability RNNoise reports per frame.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from sernoise.audio_store import ShardWriter
from sernoise.augmented_io import merge_shards, merged_counts, read_params, write_status
from sernoise.conditions import snr as snr_mod
from sernoise.io import write_csv_atomic
from sernoise.predictions import CLEAN
from sernoise.quality import as_stored, measure_pesq, measure_stoi, quality_for

log = logging.getLogger("sernoise.denoise")

SAMPLE_RATE = 16000
RNNOISE_RATE = 48000
FRAME_48K = 480  # RNNoise frame: 10 ms at 48 kHz
DELAY_48K = 960  # RNNoise output lag at 48 kHz (20 ms); see the module doc and measure_delay()
INT16_RANGE = 32768.0
RESAMPLE_QUALITY = "HQ"
PIP_REQUIREMENT = 'pyrnnoise==0.4.3 audiolab==0.5.1 "av<17"'

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
    x = np.asarray(x)
    if x.ndim != 1:
        raise DenoiseError(f"expected mono (1-D) audio, got shape {x.shape}")
    if sr != SAMPLE_RATE:
        raise DenoiseError(f"rnnoise_denoise works on {SAMPLE_RATE} Hz audio, got {sr} Hz")
    if x.size == 0:
        empty = np.zeros(0, dtype=np.float32)
        return (empty, np.zeros(0, dtype=np.float32)) if return_vad else empty
    if not np.isfinite(x).all():
        raise DenoiseError("cannot denoise non-finite samples (NaN/Inf)")
    _rnnoise()  # fail early and clearly when pyrnnoise is missing
    x48 = _resample(x.astype(np.float32, copy=False), SAMPLE_RATE, RNNOISE_RATE)
    n48 = x48.size
    padded = np.zeros(n48 + DELAY_48K, dtype=np.float32)
    padded[:n48] = x48 * np.float32(INT16_RANGE)
    out48, vad = rnnoise_48k(padded)
    y48 = out48[DELAY_48K: DELAY_48K + n48] / np.float32(INT16_RANGE)
    y = _resample(y48, RNNOISE_RATE, SAMPLE_RATE)
    if y.size >= x.size:
        y = y[: x.size]
    else:
        y = np.concatenate([y, np.zeros(x.size - y.size, dtype=np.float32)])
    y = np.ascontiguousarray(y, dtype=np.float32)
    return (y, vad) if return_vad else y


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
    compression: str | None = "gzip",
    compression_level: int = 4,
    progress=None,
    snr_reference: str = snr_mod.DEFAULT_REFERENCE,
) -> dict:
    """Denoise every utterance of one shard; write the denoised shard and its params; return counts.

    ``source``: an :class:`AudioShard` (or anything with ``utt_ids`` and ``read``): the clean
    corpus shard (``condition`` "clean", ``pool`` None) or an augmented dataset's shard.
    ``clean``: the clean audio (``read(utt_id)``) to measure against (for the clean corpus the
    source itself).  ``source_params``: the augmented shard's params; utterances not ``ok``
    there keep their status and are not denoised.  Every output utterance has its input's length.
    """
    do_stoi, do_pesq = quality_for(quality, pool, DEFAULT_QUALITY)
    is_clean = condition == CLEAN
    statuses = {}
    known = {}
    if source_params is not None:
        for record in source_params.to_dict("records"):
            statuses[record["utt_id"]] = record["status"]
            known[record["utt_id"]] = {"stoi_before": record.get("stoi"), "pesq_before": record.get("pesq")}
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
            y, vad = rnnoise_denoise(x, return_vad=True)
            writer.add(utt_id, y)
            y_stored = as_stored(y)
            reference = x if is_clean else (clean.read(utt_id) if clean is not None and utt_id in clean else None)
            measures, notes = measure(reference, None if is_clean else x, y_stored, additive=base["additive"],
                                      stoi=do_stoi, pesq=do_pesq, known=known.get(utt_id),
                                      snr_reference=snr_reference, utt_id=utt_id)
            rows.append({**base, **measures, "duration": x.size / SAMPLE_RATE,
                         "vad_mean": float(vad.mean()) if vad.size else math.nan, "note": "; ".join(notes)})
            n_ok += 1
            audio_seconds += x.size / SAMPLE_RATE
            now = time.perf_counter()
            if progress is not None and (now - last >= 30 or k + 1 == len(order)):
                last = now
                progress(f"{k + 1}/{len(order)} utterances, {audio_seconds / max(now - start, 1e-9):.1f} x real time")
    frame = pd.DataFrame(rows, columns=PARAM_COLUMNS)
    write_csv_atomic(frame, out_params)
    return {"n_ok": n_ok, "n_skipped": len(order) - n_ok, "seconds": time.perf_counter() - start,
            "audio_seconds": audio_seconds}


def denoised_status(source_status: dict | None, counts: dict, *, condition: str, pool: str | None) -> dict:
    """status.json of a denoised dataset: the source's status (a skipped source stays skipped, with
    its reason), the denoised counts, and what denoised it."""
    status = dict(source_status or {"condition": condition, "pool": pool, "skipped": False, "reason": None})
    status.update({
        "n_ok": int(counts.get("n_ok", 0)),
        "n_skipped": int(counts.get("n_skipped", 0)),
        "denoiser": "RNNoise (default model), " + rnnoise_version(),
        "denoise": {"rate": RNNOISE_RATE, "frame": FRAME_48K, "delay_compensated": DELAY_48K,
                    "resampling": f"soxr {RESAMPLE_QUALITY}"},
    })
    return status


def skip_shard(source_status: dict, source_params: pd.DataFrame, *, out_shard, out_params, out_status,
               condition: str, pool: str, compression: str | None = "gzip", compression_level: int = 4) -> dict:
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
                   out_status) -> dict:
    """Per-shard outputs of one denoised dataset -> index.csv (for AudioStore.from_index), params.csv,
    status.json.  ``statuses`` None: the clean corpus (a status is written from the counts)."""
    shards, params = list(shards), list(params)
    statuses = list(statuses) if statuses is not None else None
    if len(shards) != len(params) or (statuses is not None and len(statuses) != len(shards)):
        raise DenoiseError(f"{out_params}: {len(shards)} shards, {len(params)} params, "
                           f"{'-' if statuses is None else len(statuses)} status files")
    merged = merge_shards(shards, params, out_params=out_params, out_index=out_index, columns=PARAM_COLUMNS,
                          duration="duration", error=DenoiseError)
    n_ok = int((merged["status"] == "ok").sum())
    if statuses is None:
        status = denoised_status(None, {"n_ok": n_ok, "n_skipped": len(merged) - n_ok}, condition=CLEAN, pool=None)
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
    for column in ("snr_before", "snr_after", "stoi_before", "stoi_after", "pesq_before", "pesq_after", "vad_mean"):
        if column not in ok.columns:
            continue
        values = pd.to_numeric(ok[column], errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
        if len(values):
            out[column] = round(float(values.mean()), 4)
    return out
