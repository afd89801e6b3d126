"""Apply one noise condition to one shard of a corpus (SPEC §5): audio shard + params + status.

One call handles the utterances of one clean audio shard for one (condition, pool):

* every utterance gets its own generator, seeded by
  ``derive_seed(global_seed, "augment", condition_id, pool, utt_id)``, so any single utterance
  can be rebuilt alone and the same config gives byte-identical shards and params files;
* the condition's output goes into a :class:`~sernoise.audio_store.ShardWriter` keyed by utt_id;
* ``params.csv`` gets one row per utterance: the seed, the status (``ok`` or
  ``skipped: <reason>``), the condition's family and perception class, the SNR asked and the
  SNR measured on the stored audio (additive conditions: speech level under ``snr.reference``
  against the added noise over the noise span, plus both speech levels and the SNR under each
  reference, :data:`~sernoise.conditions.snr.SNR_COLUMNS`; other distortions: the
  difference-signal SNR, NaN when the length changed),
  durations, STOI and PESQ (equal lengths only, for the pools configured), DNSMOS and fwSNRseg
  when switched on (:class:`sernoise.quality.QualityMeter`), and every parameter the condition
  drew, prefixed ``p_``;
* a status JSON says whether the whole condition was skipped (the corpus lacks what the
  condition needs: alignments, fillers, a noise pool) and counts ok and skipped utterances.

A corpus that cannot support a condition still gets valid outputs (an empty shard, a
header-only params file, a status JSON with the reason), so downstream rules never fail on
a missing file and the reason is stated where people look for results.

The files themselves (params, status, merging the shards of a dataset) are
:mod:`sernoise.augmented_io`'s; STOI and PESQ are :mod:`sernoise.quality`'s; the spectrogram
gallery is :mod:`sernoise.gallery`'s.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from sernoise.audio_store import ShardWriter
from sernoise.augmented_io import PARAM_PREFIX, reason_kind, write_params, write_status
from sernoise.conditions import snr as snr_mod
from sernoise.conditions.base import SAMPLE_RATE, Condition, ConditionError, Context, SkipUtterance
from sernoise.hdf5_codecs import DEFAULT_COMPRESSION, DEFAULT_LEVEL
from sernoise.quality import as_stored, measure_pesq, measure_stoi, meter_for, quality_for
from sernoise.seeds import derive_seed

log = logging.getLogger("sernoise.augment")

POOLS = ("train", "test")

# Utterances per apply_batch call for conditions with an exact batch path (Condition.batch_exact).
BATCH_SIZE = 32


class AugmentError(RuntimeError):
    """Applying a condition failed; the message names the condition, pool and utterance."""


# ---------------------------------------------------------------------------------- helpers


def utterance_seed(global_seed: int, condition_id: str, pool: str, utt_id: str) -> int:
    """The seed of one utterance under one condition and pool (SPEC §5)."""
    return derive_seed(global_seed, "augment", condition_id, pool, utt_id)


def has_alignment(value) -> bool:
    return value is not None and str(value).strip() not in ("", "nan", "None")


def corpus_has_alignments(manifest: pd.DataFrame) -> bool:
    """True when at least one manifest row has an ``alignment`` path."""
    return "alignment" in manifest.columns and any(has_alignment(v) for v in manifest["alignment"])


def unmet_requirement(condition: Condition, manifest: pd.DataFrame, *, noise=None, fillers=None) -> str | None:
    """Why the corpus cannot support ``condition`` at all, or None when it can.

    ``manifest`` is the whole corpus (so every shard of a corpus reaches the same verdict).
    """
    needs = set(condition.requires)
    if "noise" in needs and noise is None:
        return f"condition {condition.id} needs recorded noise, but no noise pool was given"
    if needs & {"alignment", "fillers"} and not corpus_has_alignments(manifest):
        what = "word/phone alignments" if "alignment" in needs else "fillers cut from aligned speech"
        return (f"condition {condition.id} needs {what}; this corpus has no alignments "
                f"(manifest column 'alignment' is empty)")
    if "fillers" in needs:
        if fillers is None:
            return f"condition {condition.id} needs a filler bank, but none was given"
        try:
            empty = len(fillers) == 0
        except TypeError:  # a FillerSource without __len__: let the condition decide per utterance
            empty = False
        if empty:
            return f"condition {condition.id} needs fillers ('uh', 'um'); none were found in this corpus's aligned speech"
    return None


def _scalar(value: Any):
    """A CSV-friendly scalar (NumPy scalars -> Python; lists/dicts -> compact JSON text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        if isinstance(value, np.ndarray):
            value = value.tolist()
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _float(value) -> float:
    return math.nan if value is None else float(value)


def _status(condition: Condition, pool: str, *, skipped: bool, reason: str | None,
            n_ok: int, n_skipped: int, skip_reasons: dict | None = None) -> dict:
    return {
        "condition": condition.id,
        "type": condition.type_name,
        "family": condition.family,
        "perception": condition.perception,
        "additive": bool(condition.additive),
        "pool": pool,
        "skipped": skipped,
        "reason": reason,
        "n_ok": int(n_ok),
        "n_skipped": int(n_skipped),
        "skip_reasons": dict(sorted((skip_reasons or {}).items())),
    }


def _read_alignment(row) -> tuple[list, list]:
    from sernoise.alignments import read_phones, read_words

    return read_words(row["alignment"]), read_phones(row["alignment"])


class _Progress:
    """Periodic progress lines in the rule log (every 10 % or 30 s, whichever comes first)."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.start = self.last = time.monotonic()
        self.step = max(1, total // 10)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done == self.total or done % self.step == 0 or now - self.last >= 30:
            self.last = now
            elapsed = now - self.start
            rate = done / elapsed if elapsed > 0 else float("inf")
            log.info("%s: %d/%d utterances (%.1f s, %.1f utt/s)", self.label, done, self.total, elapsed, rate)


# ---------------------------------------------------------------------------------- API


def skip_condition(
    condition: Condition,
    n_utterances: int,
    reason: str,
    *,
    pool: str,
    out_shard,
    out_params,
    out_status=None,
    compression: str | None = DEFAULT_COMPRESSION,
    compression_level: int = DEFAULT_LEVEL,
) -> dict:
    """Outputs of a condition this corpus cannot support: empty shard, header-only params, status."""
    with ShardWriter(out_shard, compression=compression, compression_level=compression_level):
        pass
    write_params([], out_params)
    status = _status(condition, pool, skipped=True, reason=reason, n_ok=0, n_skipped=n_utterances)
    if out_status is not None:
        write_status(status, out_status)
    log.info("condition %s (%s pool) skipped for %d utterances: %s", condition.id, pool, n_utterances, reason)
    return status


def augment_shard(
    condition: Condition,
    rows: pd.DataFrame,
    store,
    *,
    pool: str,
    global_seed: int,
    noise=None,
    fillers=None,
    out_shard,
    out_params,
    out_status=None,
    quality: dict | None = None,
    manifest: pd.DataFrame | None = None,
    compression: str | None = DEFAULT_COMPRESSION,
    compression_level: int = DEFAULT_LEVEL,
    progress: bool = True,
) -> dict:
    """Apply ``condition`` to every utterance of ``rows`` (manifest rows), reading clean audio from ``store``.

    ``store`` is anything with ``read(utt_id) -> float32 array`` (an AudioStore or AudioShard).
    ``manifest`` (default ``rows``) is the whole corpus, used only to decide whether the corpus
    can support the condition (see :func:`unmet_requirement`).  Returns the status dict.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    rows = rows.reset_index(drop=True)
    reason = unmet_requirement(condition, rows if manifest is None else manifest, noise=noise, fillers=fillers)
    if reason is not None:
        return skip_condition(condition, len(rows), reason, pool=pool, out_shard=out_shard, out_params=out_params,
                              out_status=out_status, compression=compression, compression_level=compression_level)

    do_stoi, do_pesq = quality_for(quality, pool)
    meter = meter_for(quality, pool)  # DNSMOS / fwSNRseg columns, only when switched on
    needs_alignment = "alignment" in condition.requires
    base = {"condition": condition.id, "pool": pool, "family": condition.family, "perception": condition.perception}
    params_rows: list[dict] = []
    skip_reasons: Counter = Counter()
    n_ok = 0
    progress_log = _Progress(f"{condition.id}/{pool}", len(rows), progress)

    def process(row: dict, x: np.ndarray, result) -> bool:
        """One utterance: apply (unless ``result`` came from a batch), store, measure; True when ok."""
        utt_id = str(row["utt_id"])
        seed = utterance_seed(global_seed, condition.id, pool, utt_id)
        record = {"utt_id": utt_id, "seed": seed, "status": "ok", "note": "", **base,
                  "snr_target": math.nan, "snr_measured": math.nan,
                  "duration_in": x.size / SAMPLE_RATE, "duration_out": math.nan,
                  "stoi": math.nan, "pesq": math.nan, **snr_mod.empty_snr_columns(condition.snr_reference),
                  **meter.empty()}
        try:
            if result is None:
                words = phones = None
                if needs_alignment:
                    if not has_alignment(row.get("alignment")):
                        raise SkipUtterance("no alignment for this utterance")
                    try:
                        words, phones = _read_alignment(row)
                    except (OSError, ValueError) as error:
                        raise SkipUtterance(f"alignment unreadable ({error})") from None
                context = _context(row, words, phones)
                result = condition(x, SAMPLE_RATE, np.random.default_rng(seed), context)
        except SkipUtterance as skip:
            reason_text = str(skip) or "condition does not apply"
            if reason_text.startswith(utt_id + ": "):
                reason_text = reason_text[len(utt_id) + 2:]
            record["status"] = f"skipped: {reason_text}"
            skip_reasons[reason_kind(reason_text)] += 1
            params_rows.append(record)
            return False
        except ConditionError as error:
            raise AugmentError(f"condition {condition.id}, pool {pool}, utterance {utt_id}: {error}") from error
        except Exception as error:  # anything else: still say where it happened
            raise AugmentError(
                f"condition {condition.id}, pool {pool}, utterance {utt_id}: {type(error).__name__}: {error}"
            ) from error

        writer.add(utt_id, result.audio)
        y = as_stored(result.audio)
        notes = []
        record["snr_target"] = _float(result.snr_target)
        record["duration_out"] = y.size / SAMPLE_RATE
        if condition.additive and y.shape == x.shape:
            # speech levels and SNR under both references (snr_measured: under the configured one)
            record.update(snr_mod.snr_measures(x, y, result.span, condition.snr_reference,
                                               p_speech=result.speech_power, utt_id=utt_id,
                                               p_active=stored_level(utt_id) if stored_level else None))
        else:
            record["snr_measured"] = snr_mod.difference_snr(x, y)
        if y.shape == x.shape:
            if do_stoi:
                record["stoi"], note = measure_stoi(x, y)
                notes.append(note)
            if do_pesq:
                record["pesq"], note = measure_pesq(x, y)
                notes.append(note)
        if meter:  # DNSMOS needs no reference: measured whatever the output length
            values, meter_notes = meter.measure(x, y, utt_id=utt_id)
            record.update(values)
            notes += meter_notes
        record["note"] = "; ".join(n for n in notes if n)
        for key, value in result.params.items():
            record[PARAM_PREFIX + str(key)] = _scalar(value)
        params_rows.append(record)
        return True

    # The prepared shards' P.56 levels (sernoise.audio_store "Speech levels"), so that no
    # condition computes the level of the utterance again; a store without them gives None.
    stored_level = getattr(store, "active_power", None)

    def _context(row: dict, words=None, phones=None) -> Context:
        utt_id = str(row["utt_id"])
        return Context(utt_id=utt_id, speaker=str(row.get("speaker", "")), words=words, phones=phones,
                       noise=noise, fillers=fillers, active_power=stored_level(utt_id) if stored_level else None)

    def apply_batch(chunk: list[dict], xs: list[np.ndarray]) -> list | None:
        """The chunk's results from one ``apply_batch`` call, or None (any failure: the
        utterances are then applied one by one, which names the utterance in errors)."""
        rngs = [np.random.default_rng(utterance_seed(global_seed, condition.id, pool, str(row["utt_id"])))
                for row in chunk]
        try:
            results = condition.apply_batch(xs, SAMPLE_RATE, rngs, [_context(row) for row in chunk])
        except Exception as error:  # noqa: BLE001 - redone per utterance, where it is reported
            log.info("condition %s: batch of %d failed (%s); applying one by one", condition.id, len(chunk), error)
            return None
        return list(results) if len(results) == len(chunk) else None

    # Conditions whose batch path gives exactly the per-utterance results (one SoX process
    # for many utterances: reverb, speed_utterance) get BATCH_SIZE utterances at a time.
    batchable = getattr(condition, "batch_exact", False) and hasattr(condition, "apply_batch") and not needs_alignment
    batch_size = BATCH_SIZE if batchable else 1
    records = rows.to_dict("records")
    with ShardWriter(out_shard, compression=compression, compression_level=compression_level) as writer:
        for first in range(0, len(records), batch_size):
            chunk = records[first : first + batch_size]
            xs = [store.read(str(row["utt_id"])) for row in chunk]
            results = apply_batch(chunk, xs) if batch_size > 1 else None
            for j, (row, x) in enumerate(zip(chunk, xs)):
                if process(row, x, None if results is None else results[j]):
                    n_ok += 1
                progress_log.update(first + j + 1)

    write_params(params_rows, out_params)
    status = _status(condition, pool, skipped=False, reason=None, n_ok=n_ok, n_skipped=len(rows) - n_ok,
                     skip_reasons=dict(skip_reasons))
    if out_status is not None:
        write_status(status, out_status)
    return status
