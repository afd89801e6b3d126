"""Corpus preparation: decode every utterance once into audio shards, then build the manifest.

Flow (the Snakemake rules call these functions)::

    scan (all manifest columns, duration/sample_rate empty)
      -> select_shard(scan, n_shards, k)          one job per shard, in parallel
      -> prepare_shard(rows, shard_k.h5, index_k.csv, rejects_k.csv)
      -> assemble_manifest(scan, index_*.csv, rejects_*.csv)   -> manifest + rejects
      -> write_index(index_*.csv, shard_*.h5, index.csv)        -> AudioStore.from_index

Files that cannot be used (unreadable, empty, silent, NaN) are *rejected* rather than
failing the job: a few bad files in a corpus of thousands should not stop a run, but they
must be listed, and too many of them (``max_reject_fraction``) means something is wrong
with the data or the adapter, which does stop the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from sernoise.audio import TARGET_SR, load_checked
from sernoise.audio_store import ShardWriter
from sernoise.corpora.manifest import MANIFEST_COLUMNS, ManifestError, to_manifest_frame
from sernoise.hdf5_codecs import DEFAULT_COMPRESSION

INDEX_COLUMNS = ["utt_id", "shard", "duration", "sample_rate"]
SHARD_REJECT_COLUMNS = ["utt_id", "path", "reason"]
REJECT_COLUMNS = ["path", "reason"]
COMBINED_INDEX_COLUMNS = ["utt_id", "shard", "duration"]


# -- shard assignment ------------------------------------------------------------------

def shard_of(n_rows: int, n_shards: int) -> np.ndarray:
    """Shard number of each of ``n_rows`` rows (sorted by utt_id): ``i * n_shards // n_rows``.

    Contiguous blocks of nearly equal size; depends only on the two counts, so every job
    computes the same assignment without coordinating.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    return (np.arange(n_rows, dtype=np.int64) * n_shards) // max(n_rows, 1)


def select_shard(scan: pd.DataFrame, n_shards: int, shard: int) -> pd.DataFrame:
    """The rows of ``scan`` that belong to shard ``shard`` of ``n_shards`` (sorted by utt_id)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard must be in 0..{n_shards - 1}, got {shard}")
    ordered = scan.sort_values("utt_id", kind="stable").reset_index(drop=True)
    return ordered[shard_of(len(ordered), n_shards) == shard].reset_index(drop=True)


# -- one shard -------------------------------------------------------------------------

class _Log:
    """Write lines to a path, an open text stream, or nowhere (Snakemake passes a path)."""

    def __init__(self, log) -> None:
        self._own = False
        if log is None:
            self._stream = None
        elif hasattr(log, "write"):
            self._stream = log
        else:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(log, "a", encoding="utf-8")
            self._own = True

    def __call__(self, line: str) -> None:
        if self._stream is not None:
            self._stream.write(line + "\n")

    def close(self) -> None:
        if self._own:
            self._stream.close()


def _write_csv(frame: pd.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    # "\n" line endings and a fixed float format keep the files byte-identical across runs.
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n", **kwargs)


def prepare_shard(
    rows: pd.DataFrame,
    out_shard: str | os.PathLike,
    out_index_csv: str | os.PathLike,
    out_rejects_csv: str | os.PathLike,
    *,
    target_sr: int = TARGET_SR,
    silence_peak: float = 1e-4,
    compression: str | None = DEFAULT_COMPRESSION,
    compression_level: int = 4,
    progress: bool = True,
    log=None,
) -> dict:
    """Decode, check and store ``rows`` (columns ``utt_id`` and ``path`` at least) in one shard.

    Writes ``out_shard`` (see :mod:`sernoise.audio_store`), ``out_index_csv``
    (utt_id, shard = file name of ``out_shard``, duration in s of the ``target_sr`` audio
    to 4 decimals, sample_rate = the *original* file rate) and ``out_rejects_csv``
    (utt_id, path, reason; header even when empty).  ``log`` is None, a path or a text stream.
    Returns ``{"n_ok", "n_rejected", "audio_seconds", "wall_seconds"}``.
    """
    missing = [c for c in ("utt_id", "path") if c not in rows.columns]
    if missing:
        raise ValueError(f"{out_shard}: rows lack column(s) {missing}")
    rows = rows.sort_values("utt_id", kind="stable").reset_index(drop=True)
    out_shard = Path(out_shard)
    say = _Log(log)
    t0 = time.perf_counter()
    index, rejects = [], []
    n_samples = 0
    try:
        # speech_levels: every additive condition and the attack set their noise against the
        # utterance's P.56 level; stored here once instead of computed by each of them
        with ShardWriter(out_shard, sample_rate=target_sr, compression=compression,
                         compression_level=compression_level, speech_levels=True) as writer:
            for utt_id, path in tqdm(zip(rows["utt_id"].astype(str), rows["path"].astype(str)),
                                     total=len(rows), disable=not progress, desc=out_shard.name,
                                     unit="utt", mininterval=1.0):
                x, orig_sr, reason = load_checked(path, target_sr=target_sr, silence_peak=silence_peak)
                if reason is not None:
                    rejects.append({"utt_id": utt_id, "path": path, "reason": reason})
                    say(f"reject {utt_id} {path}: {reason}")
                    continue
                writer.add(utt_id, x)
                n_samples += x.size
                index.append({"utt_id": utt_id, "shard": out_shard.name,
                              "duration": round(x.size / target_sr, 4), "sample_rate": int(orig_sr)})
        # CSVs only after the shard is safely in place: an index never describes a missing shard.
        _write_csv(pd.DataFrame(index, columns=INDEX_COLUMNS), out_index_csv, float_format="%.4f")
        _write_csv(pd.DataFrame(rejects, columns=SHARD_REJECT_COLUMNS), out_rejects_csv)
        stats = {
            "n_ok": len(index),
            "n_rejected": len(rejects),
            "audio_seconds": n_samples / target_sr,
            "wall_seconds": time.perf_counter() - t0,
        }
        say(f"{out_shard}: {stats['n_ok']} ok, {stats['n_rejected']} rejected, "
            f"{stats['audio_seconds']:.1f} s audio in {stats['wall_seconds']:.1f} s")
    finally:
        say.close()
    return stats


# -- whole corpus ----------------------------------------------------------------------

def _read_parts(paths, columns: list[str], what: str) -> pd.DataFrame:
    frames = []
    for p in paths:
        try:
            frame = pd.read_csv(p, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise ManifestError(f"{p}: {what} file not found") from None
        except pd.errors.EmptyDataError:
            raise ManifestError(f"{p}: {what} file is empty (no header)") from None
        lacking = [c for c in columns if c not in frame.columns]
        if lacking:
            raise ManifestError(f"{p}: {what} file lacks column(s) {lacking}")
        frame = frame[columns].copy()
        frame["_source"] = str(p)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=columns + ["_source"], dtype=str)
    return pd.concat(frames, ignore_index=True)


def assemble_manifest(
    scan: pd.DataFrame,
    index_csvs: list,
    rejects_csvs: list,
    *,
    max_reject_fraction: float,
    rejects_out: str | os.PathLike,
) -> pd.DataFrame:
    """Merge the per-shard results into the scan and return the manifest frame.

    * duration and sample_rate come from the index files; rejected utterances are dropped;
    * every scan row must appear in exactly one index or rejects file (and nothing else may),
      otherwise :class:`ManifestError` naming the utt_id(s);
    * ``rejects_out`` (path, reason) is always written, *before* the fraction check, so the
      list is there to inspect when the check fails;
    * rejected / total > ``max_reject_fraction`` -> :class:`ManifestError`.
    """
    missing_cols = [c for c in MANIFEST_COLUMNS if c not in scan.columns]
    if missing_cols:
        raise ManifestError(f"scan lacks manifest column(s) {missing_cols}")
    index = _read_parts(index_csvs, ["utt_id", "duration", "sample_rate"], "index")
    rejects = _read_parts(rejects_csvs, SHARD_REJECT_COLUMNS, "rejects")

    scan_ids = scan["utt_id"].astype(str)
    if scan_ids.duplicated().any():
        raise ManifestError(f"duplicate utt_id(s) in scan: {scan_ids[scan_ids.duplicated()].unique().tolist()[:5]}")
    seen = pd.concat([index[["utt_id", "_source"]], rejects[["utt_id", "_source"]]], ignore_index=True)
    twice = seen[seen["utt_id"].duplicated(keep=False)]
    if len(twice):
        first = twice["utt_id"].iloc[0]
        where = twice.loc[twice["utt_id"] == first, "_source"].tolist()
        raise ManifestError(f"utt_id {first!r} appears more than once in the shard results: {where} "
                            f"({twice['utt_id'].nunique()} such id(s))")
    scan_set, seen_set = set(scan_ids), set(seen["utt_id"])
    unaccounted = sorted(scan_set - seen_set)
    if unaccounted:
        raise ManifestError(f"utt_id {unaccounted[0]!r} is in no index or rejects file "
                            f"({len(unaccounted)} such: {unaccounted[:5]})")
    extra = sorted(seen_set - scan_set)
    if extra:
        raise ManifestError(f"utt_id {extra[0]!r} in the shard results is not in the scan "
                            f"({len(extra)} such: {extra[:5]}); stale shard files?")

    # Always write the rejects list first: when the threshold check fails it is what you read.
    rejects = rejects.sort_values("utt_id", kind="stable")
    _write_csv(rejects[REJECT_COLUMNS], rejects_out)

    total = len(scan)
    n_rejected = len(rejects)
    fraction = n_rejected / total if total else 0.0
    if fraction > max_reject_fraction:
        examples = "; ".join(f"{p}: {r}" for p, r in zip(rejects["path"].head(3), rejects["reason"].head(3)))
        raise ManifestError(
            f"{n_rejected} of {total} utterances rejected ({fraction:.1%}), above max_reject_fraction "
            f"{max_reject_fraction:g}; see {rejects_out}; first: {examples}"
        )

    info = index.set_index("utt_id")
    kept = scan[~scan_ids.isin(set(rejects["utt_id"]))]
    records = []
    for row in kept[MANIFEST_COLUMNS].to_dict("records"):
        u = str(row["utt_id"])
        row["duration"] = float(info.at[u, "duration"])
        row["sample_rate"] = int(info.at[u, "sample_rate"])
        records.append(row)
    return to_manifest_frame(records)


def write_index(index_csvs: list, shard_paths: list, out_csv: str | os.PathLike) -> pd.DataFrame:
    """Combine per-shard index files into one index for :meth:`AudioStore.from_index`.

    ``index_csvs[k]`` must describe ``shard_paths[k]``; the ``shard`` column is rewritten as
    the path relative to ``out_csv``'s folder, so the index and shards can move together.
    Columns: utt_id, shard, duration.
    """
    if len(index_csvs) != len(shard_paths):
        raise ValueError(f"{out_csv}: {len(index_csvs)} index files but {len(shard_paths)} shards")
    out_csv = Path(out_csv)
    parts = []
    for index_csv, shard in zip(index_csvs, shard_paths):
        frame = _read_parts([index_csv], ["utt_id", "shard", "duration"], "index")
        names = set(frame["shard"])
        if names and names != {Path(shard).name}:
            raise ManifestError(f"{index_csv}: describes shard(s) {sorted(names)}, not {Path(shard).name}")
        frame["shard"] = Path(os.path.relpath(Path(shard).resolve(), out_csv.parent.resolve())).as_posix()
        parts.append(frame[COMBINED_INDEX_COLUMNS])
    combined = (pd.concat(parts, ignore_index=True) if parts
                else pd.DataFrame(columns=COMBINED_INDEX_COLUMNS))
    if combined["utt_id"].duplicated().any():
        raise ManifestError(f"{out_csv}: duplicate utt_id(s) across shards: "
                            f"{combined['utt_id'][combined['utt_id'].duplicated()].tolist()[:5]}")
    combined = combined.sort_values("utt_id", kind="stable").reset_index(drop=True)
    _write_csv(combined, out_csv)
    return combined
