"""Apply one noise condition to one shard of a corpus (SPEC §5): audio shard + params + status.

One call handles the utterances of one clean audio shard for one (condition, pool):

* every utterance gets its own generator, seeded by
  ``derive_seed(global_seed, "augment", condition_id, pool, utt_id)``, so any single utterance
  can be rebuilt alone and the same config gives byte-identical shards and params files;
* the condition's output goes into a :class:`~sernoise.audio_store.ShardWriter` keyed by utt_id;
* ``params.csv`` gets one row per utterance: the seed, the status (``ok`` or
  ``skipped: <reason>``), the condition's family and perception class, the SNR asked and the
  SNR measured on the stored audio (additive conditions: speech against added noise over the
  noise span; other distortions: the difference-signal SNR, NaN when the length changed),
  durations, STOI and PESQ (equal lengths only, for the pools configured), and every
  parameter the condition drew, prefixed ``p_``;
* a status JSON says whether the whole condition was skipped (the corpus lacks what the
  condition needs: alignments, fillers, a noise pool) and counts ok and skipped utterances.

A corpus that cannot support a condition still gets valid outputs (an empty shard, a
header-only params file, a status JSON with the reason), so downstream rules never fail on
a missing file and the reason is stated where people look for results.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from sernoise.audio_store import ShardWriter, dequantise, quantise
from sernoise.conditions import snr as snr_mod
from sernoise.conditions.base import SAMPLE_RATE, Condition, ConditionError, Context, SkipUtterance
from sernoise.seeds import derive_seed

log = logging.getLogger("sernoise.augment")

POOLS = ("train", "test")

# Fixed leading columns of params.csv; the condition's own parameters follow as p_<name>.
PARAM_COLUMNS = [
    "utt_id",
    "seed",
    "status",
    "note",
    "condition",
    "pool",
    "family",
    "perception",
    "snr_target",
    "snr_measured",
    "duration_in",
    "duration_out",
    "stoi",
    "pesq",
]
PARAM_PREFIX = "p_"

DEFAULT_QUALITY = {"stoi": True, "pesq": True, "pools": ["test"]}

# Utterances per apply_batch call for conditions with an exact batch path (Condition.batch_exact).
BATCH_SIZE = 32


class AugmentError(RuntimeError):
    """Applying a condition failed; the message names the condition, pool and utterance."""


# ---------------------------------------------------------------------------------- helpers


def utterance_seed(global_seed: int, condition_id: str, pool: str, utt_id: str) -> int:
    """The seed of one utterance under one condition and pool (SPEC §5)."""
    return derive_seed(global_seed, "augment", condition_id, pool, utt_id)


def _has_alignment(value) -> bool:
    return value is not None and str(value).strip() not in ("", "nan", "None")


def corpus_has_alignments(manifest: pd.DataFrame) -> bool:
    """True when at least one manifest row has an ``alignment`` path."""
    return "alignment" in manifest.columns and any(_has_alignment(v) for v in manifest["alignment"])


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


def reason_kind(reason: str) -> str:
    """A skip reason with its numbers masked ('#'), to count reasons of one kind in status files."""
    return re.sub(r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?", "#", reason)


def quality_for(quality: dict | None, pool: str) -> tuple[bool, bool]:
    """(stoi?, pesq?) for this pool from the ``augment.quality`` config."""
    q = dict(DEFAULT_QUALITY if quality is None else quality)
    on_pool = pool in (q.get("pools") or [])
    return bool(q.get("stoi", False)) and on_pool, bool(q.get("pesq", False)) and on_pool


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


def _stored(y: np.ndarray) -> np.ndarray:
    """``y`` as the shard will give it back (int16 quantisation): measure what is stored."""
    q, scale = quantise(y)
    return dequantise(q, scale)


def _write_params(rows: list[dict], path: str | os.PathLike) -> pd.DataFrame:
    extra: list[str] = []
    for row in rows:
        for key in row:
            if key not in PARAM_COLUMNS and key not in extra:
                extra.append(key)
    frame = pd.DataFrame(rows, columns=PARAM_COLUMNS + extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)
    return frame


def write_status(status: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
    compression: str | None = "gzip",
    compression_level: int = 4,
) -> dict:
    """Outputs of a condition this corpus cannot support: empty shard, header-only params, status."""
    with ShardWriter(out_shard, compression=compression, compression_level=compression_level):
        pass
    _write_params([], out_params)
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
    compression: str | None = "gzip",
    compression_level: int = 4,
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
                  "stoi": math.nan, "pesq": math.nan}
        try:
            if result is None:
                words = phones = None
                if needs_alignment:
                    if not _has_alignment(row.get("alignment")):
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
        y = _stored(result.audio)
        notes = []
        record["snr_target"] = _float(result.snr_target)
        record["duration_out"] = y.size / SAMPLE_RATE
        if condition.additive and y.shape == x.shape:
            record["snr_measured"] = snr_mod.additive_snr(x, y, result.span)
        else:
            record["snr_measured"] = snr_mod.difference_snr(x, y)
        if y.shape == x.shape:
            if do_stoi:
                record["stoi"], note = measure_stoi(x, y)
                notes.append(note)
            if do_pesq:
                record["pesq"], note = measure_pesq(x, y)
                notes.append(note)
        record["note"] = "; ".join(n for n in notes if n)
        for key, value in result.params.items():
            record[PARAM_PREFIX + str(key)] = _scalar(value)
        params_rows.append(record)
        return True

    def _context(row: dict, words=None, phones=None) -> Context:
        return Context(utt_id=str(row["utt_id"]), speaker=str(row.get("speaker", "")), words=words, phones=phones,
                       noise=noise, fillers=fillers)

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

    _write_params(params_rows, out_params)
    status = _status(condition, pool, skipped=False, reason=None, n_ok=n_ok, n_skipped=len(rows) - n_ok,
                     skip_reasons=dict(skip_reasons))
    if out_status is not None:
        write_status(status, out_status)
    return status


# ---------------------------------------------------------------------------------- merging


def read_params(path: str | os.PathLike) -> pd.DataFrame:
    """A params file as text (exact round trip of every cell); empty cells stay ''."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_params(path: str | os.PathLike) -> pd.DataFrame:
    """A params file typed for analysis: numbers as numbers, NaN in empty cells (text columns keep '')."""
    text = ["utt_id", "status", "note", "condition", "pool", "family", "perception"]
    frame = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values=[""])
    frame[text] = frame[text].fillna("")
    return frame


def merge_augmented(
    shards: Iterable,
    params: Iterable,
    statuses: Iterable,
    *,
    out_params,
    out_index,
    out_status,
) -> dict:
    """Combine the per-shard outputs of one (condition, pool) into params.csv, index.csv, status.json.

    ``index.csv`` lists the stored (``ok``) utterances with the shard path relative to its own
    folder, for :meth:`AudioStore.from_index`.  Params cells are copied as text, so merging
    never changes a number's representation.
    """
    shards, params, statuses = list(shards), list(params), list(statuses)
    if not (len(shards) == len(params) == len(statuses)):
        raise ValueError(f"{out_params}: {len(shards)} shards, {len(params)} params and {len(statuses)} status files")
    out_index = Path(out_index)
    frames, index_parts, states = [], [], []
    for shard, params_csv, status_json in zip(shards, params, statuses):
        frame = read_params(params_csv)
        missing = [c for c in PARAM_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{params_csv}: missing column(s) {missing}")
        frames.append(frame)
        states.append(json.loads(Path(status_json).read_text(encoding="utf-8")))
        ok = frame[frame["status"] == "ok"]
        rel = Path(os.path.relpath(Path(shard).resolve(), out_index.parent.resolve())).as_posix()
        index_parts.append(pd.DataFrame({"utt_id": ok["utt_id"], "shard": rel, "duration": ok["duration_out"]}))
    merged = pd.concat(frames, ignore_index=True, sort=False).fillna("") if frames else pd.DataFrame(columns=PARAM_COLUMNS)
    merged = merged[PARAM_COLUMNS + [c for c in merged.columns if c not in PARAM_COLUMNS]]
    if merged["utt_id"].duplicated().any():
        raise ValueError(f"{out_params}: utterance(s) in more than one shard: "
                         f"{merged['utt_id'][merged['utt_id'].duplicated()].tolist()[:5]}")
    # Shards hold contiguous utt_id-sorted blocks already; sort anyway so the file never depends on input order.
    merged = merged.sort_values("utt_id", kind="stable").reset_index(drop=True)
    index = (pd.concat(index_parts, ignore_index=True) if index_parts
             else pd.DataFrame(columns=["utt_id", "shard", "duration"]))
    index = index.sort_values("utt_id", kind="stable").reset_index(drop=True)
    for frame, path in ((merged, Path(out_params)), (index, out_index)):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        frame.to_csv(tmp, index=False, lineterminator="\n")
        os.replace(tmp, path)

    skipped = bool(states) and all(s.get("skipped") for s in states)
    reasons = [s.get("reason") for s in states if s.get("skipped") and s.get("reason")]
    skip_reasons: Counter = Counter()
    for s in states:
        skip_reasons.update(s.get("skip_reasons") or {})
    first = states[0] if states else {}
    status = {
        "condition": first.get("condition"),
        "type": first.get("type"),
        "family": first.get("family"),
        "perception": first.get("perception"),
        "additive": first.get("additive"),
        "pool": first.get("pool"),
        "skipped": skipped,
        "reason": reasons[0] if skipped and reasons else None,
        "n_ok": int(sum(s.get("n_ok", 0) for s in states)),
        "n_skipped": int(sum(s.get("n_skipped", 0) for s in states)),
        "skip_reasons": dict(sorted(skip_reasons.items())),
        "n_shards": len(states),
    }
    write_status(status, out_status)
    return status


# ---------------------------------------------------------------------------------- gallery


def gallery_utterance(utt_ids: Iterable[str], params: dict[str, pd.DataFrame | None]) -> str:
    """The first of ``utt_ids`` (manifest order) that every non-skipped condition stored.

    ``params`` maps condition id -> its params frame, or None for a skipped condition.  Falls
    back to the first utterance when no utterance is kept by all of them.
    """
    utt_ids = list(utt_ids)
    if not utt_ids:
        raise ValueError("gallery: the corpus has no utterances")
    kept = None
    for frame in params.values():
        if frame is None:
            continue
        ok = set(frame.loc[frame["status"] == "ok", "utt_id"])
        kept = ok if kept is None else kept & ok
    for utt_id in utt_ids:
        if kept is None or utt_id in kept:
            return utt_id
    return utt_ids[0]


def snr_text(value, additive: bool = True) -> str:
    """'SNR 10.0 dB' (additive: speech vs added noise) or 'diff. SNR 28.7 dB' (difference signal)."""
    label = "SNR" if additive else "diff. SNR"
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        return f"{label} n/a (length changed)" if not additive else f"{label} n/a"
    if math.isinf(value):
        return f"{label} ∞" if value > 0 else f"{label} −∞"
    return f"{label} {value + 0.0:.1f} dB".replace("-0.0 dB", "0.0 dB")


def plot_gallery(clean: np.ndarray, panels: list[dict], out_png, *, title: str, ncols: int = 4) -> None:
    """Log-mel spectrograms of one utterance, clean and under each condition, on one colour scale.

    ``panels``: dicts with ``condition``, ``subtitle`` and either ``audio`` (float32 16 kHz) or
    ``reason`` (shown as text on an empty, titled panel).  Levels are dB relative to the clean
    utterance's peak, so louder or quieter outputs look louder or quieter.
    """
    import textwrap

    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_mels, hop, n_fft = 64, 160, 512

    def mel_db(x):
        m = librosa.feature.melspectrogram(y=np.asarray(x, dtype=np.float32), sr=SAMPLE_RATE, n_fft=n_fft,
                                           hop_length=hop, n_mels=n_mels, fmax=SAMPLE_RATE / 2)
        return m

    clean_mel = mel_db(clean)
    ref = float(clean_mel.max()) or 1.0
    all_panels = [{"condition": "clean", "subtitle": "reference", "audio": clean}] + list(panels)
    max_dur = max((p["audio"].size for p in all_panels if p.get("audio") is not None), default=1) / SAMPLE_RATE
    nrows = math.ceil(len(all_panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.5 * nrows + 0.8), squeeze=False)
    mel_hz = librosa.mel_frequencies(n_mels=n_mels, fmax=SAMPLE_RATE / 2)
    ticks_hz = [250, 1000, 2000, 4000, 8000]
    tick_pos = [float(np.interp(f, mel_hz, np.arange(n_mels))) for f in ticks_hz]
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(all_panels):
            ax.axis("off")
            continue
        panel = all_panels[k]
        skipped = panel.get("audio") is None
        ax.set_title(f"{panel['condition']}{' (skipped)' if skipped else ''}\n{panel['subtitle']}", fontsize=9)
        if skipped:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_facecolor("#eeeeee")
            reason = "\n".join(textwrap.wrap(str(panel.get("reason") or "skipped"), 38)[:6])
            ax.text(0.5, 0.5, reason, ha="center", va="center", fontsize=8, transform=ax.transAxes,
                    color="#444444")
            continue
        audio = panel["audio"]
        db = 10.0 * np.log10(np.maximum(mel_db(audio), 1e-12) / ref)
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                          extent=(0, audio.size / SAMPLE_RATE, -0.5, n_mels - 0.5), interpolation="nearest")
        ax.set_xlim(0, max_dur)
        ax.set_facecolor("#dddddd")  # beyond the end of a shortened output
        ax.set_yticks(tick_pos)
        ax.set_yticklabels(["250", "1k", "2k", "4k", "8k"] if k % ncols == 0 else [], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        if k % ncols == 0:
            ax.set_ylabel("Hz (mel)", fontsize=8)
        if k // ncols == nrows - 1 or k + ncols >= len(all_panels):
            ax.set_xlabel("time (s)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.95, 0.97))
    if image is not None:
        cax = fig.add_axes((0.955, 0.1, 0.01, 0.8))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label("dB re clean peak", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp or software version in the PNG, so the same inputs give the same bytes.
    fig.savefig(out_png, dpi=90, metadata={"Software": None})
    plt.close(fig)
