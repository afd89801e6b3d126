"""The files of an augmented dataset (SPEC §5): ``params.csv`` (one row per utterance),
``status.json`` (skipped or not, counts and reasons) and, after merging the shards of one
(condition, pool), ``index.csv`` for :meth:`sernoise.audio_store.AudioStore.from_index`.

Written by :mod:`sernoise.augment` (per shard) and :func:`merge_augmented` (per dataset); read by
feature extraction, the gallery, the tables' skip notes and the denoised datasets
(:mod:`sernoise.denoise` writes its status files the same way).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import pandas as pd

from sernoise.io import read_csv_checked, write_csv_atomic

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
# Speech levels and the SNR under both references (sernoise.conditions.snr.snr_measures)
PARAM_COLUMNS += ["snr_reference", "speech_level_active_db", "speech_level_whole_db", "snr_measured_active",
                  "snr_measured_whole"]
PARAM_PREFIX = "p_"


def reason_kind(reason: str) -> str:
    """A skip reason with its numbers masked ('#'), to count reasons of one kind in status files."""
    return re.sub(r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?", "#", reason)


def write_params(rows: list[dict], path: str | os.PathLike) -> pd.DataFrame:
    """params.csv of one shard: PARAM_COLUMNS, then the condition's own columns in first-seen order."""
    extra: list[str] = []
    for row in rows:
        for key in row:
            if key not in PARAM_COLUMNS and key not in extra:
                extra.append(key)
    frame = pd.DataFrame(rows, columns=PARAM_COLUMNS + extra)
    write_csv_atomic(frame, path)
    return frame


def write_status(status: dict, path: str | os.PathLike) -> None:
    """A status JSON (keys sorted: the same status gives the same bytes), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_params(path: str | os.PathLike, required=("utt_id", "status"), *, error: type[Exception] = ValueError
                ) -> pd.DataFrame:
    """A params file as text (exact round trip of every cell); empty cells stay ''."""
    return read_csv_checked(path, required, error=error, dtype=str, keep_default_na=False)


def load_params(path: str | os.PathLike) -> pd.DataFrame:
    """A params file typed for analysis: numbers as numbers, NaN in empty cells (text columns keep '')."""
    text = ["utt_id", "status", "note", "condition", "pool", "family", "perception"]
    frame = read_csv_checked(path, ["utt_id", "status"], dtype={c: str for c in text}, keep_default_na=False,
                             na_values=[""])
    frame[text] = frame[text].fillna("")
    return frame


def merge_shards(shards: list, params: list, *, out_params, out_index, columns: list[str], duration: str,
                 error: type[Exception] = ValueError) -> pd.DataFrame:
    """The per-shard params files of one dataset -> params.csv (rows sorted by utt_id; cells copied as
    text, so merging never changes a number's representation) and index.csv (the ``ok`` utterances,
    their shard relative to the index's folder and their ``duration`` column), both written; returns
    the merged params.  Augmented and denoised datasets merge alike (:mod:`sernoise.denoise`)."""
    out_index = Path(out_index)
    frames, index_parts = [], []
    for shard, params_csv in zip(shards, params):
        frame = read_params(params_csv, columns, error=error)
        frames.append(frame)
        ok = frame[frame["status"] == "ok"]
        rel = Path(os.path.relpath(Path(shard).resolve(), out_index.parent.resolve())).as_posix()
        index_parts.append(pd.DataFrame({"utt_id": ok["utt_id"], "shard": rel, "duration": ok[duration]}))
    merged = pd.concat(frames, ignore_index=True, sort=False).fillna("") if frames else pd.DataFrame(columns=columns)
    merged = merged[columns + [c for c in merged.columns if c not in columns]]
    if merged["utt_id"].duplicated().any():
        raise error(f"{out_params}: utterance(s) in more than one shard: "
                    f"{merged['utt_id'][merged['utt_id'].duplicated()].tolist()[:5]}")
    # Shards hold contiguous utt_id-sorted blocks already; sort anyway so the file never depends on input order.
    merged = merged.sort_values("utt_id", kind="stable").reset_index(drop=True)
    index = (pd.concat(index_parts, ignore_index=True) if index_parts
             else pd.DataFrame(columns=["utt_id", "shard", "duration"]))
    index = index.sort_values("utt_id", kind="stable").reset_index(drop=True)
    write_csv_atomic(merged, out_params)
    write_csv_atomic(index, out_index)
    return merged


def merged_counts(states: list[dict]) -> dict:
    """What the status files of a dataset's shards add up to: skipped (every shard skipped) and the
    first reason, ok/skipped counts, skip reasons by kind, number of shards."""
    skipped = bool(states) and all(s.get("skipped") for s in states)
    reasons = [s.get("reason") for s in states if s.get("skipped") and s.get("reason")]
    skip_reasons: Counter = Counter()
    for s in states:
        skip_reasons.update({kind: int(n) for kind, n in (s.get("skip_reasons") or {}).items()})
    return {
        "skipped": skipped,
        "reason": reasons[0] if skipped and reasons else None,
        "n_ok": int(sum(int(s.get("n_ok", 0)) for s in states)),
        "n_skipped": int(sum(int(s.get("n_skipped", 0)) for s in states)),
        "skip_reasons": dict(sorted(skip_reasons.items())),
        "n_shards": len(states),
    }


def merge_augmented(
    shards: Iterable,
    params: Iterable,
    statuses: Iterable,
    *,
    out_params,
    out_index,
    out_status,
) -> dict:
    """Combine the per-shard outputs of one (condition, pool) into params.csv, index.csv, status.json
    (:func:`merge_shards`, :func:`merged_counts`)."""
    shards, params, statuses = list(shards), list(params), list(statuses)
    if not (len(shards) == len(params) == len(statuses)):
        raise ValueError(f"{out_params}: {len(shards)} shards, {len(params)} params and {len(statuses)} status files")
    states = [json.loads(Path(p).read_text(encoding="utf-8")) for p in statuses]
    merge_shards(shards, params, out_params=out_params, out_index=out_index, columns=PARAM_COLUMNS,
                 duration="duration_out")
    first = states[0] if states else {}
    status = {key: first.get(key) for key in ("condition", "type", "family", "perception", "additive", "pool")}
    status.update(merged_counts(states))
    write_status(status, out_status)
    return status
