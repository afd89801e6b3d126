"""Generic adapter: a user CSV that already has the manifest columns.

Required columns: ``utt_id, path, speaker, group, emotion``; every other manifest column
is optional and filled empty.  Relative ``path`` values are resolved against the CSV's
folder, so a corpus folder with its CSV can be moved as a whole.  Bins are derived from
``activation``/``valence`` with the configured edges when the CSV gives ratings but no bins.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import read_csv_checked
from .manifest import BINS, DEFAULT_BIN_EDGES, MANIFEST_COLUMNS, ManifestError, bin_value, to_manifest_frame

REQUIRED = ("utt_id", "path", "speaker", "group", "emotion")


def scan(root, options: dict | None = None) -> pd.DataFrame:
    options = options or {}
    csv_path = Path(options.get("csv") or Path(root) / "manifest.csv")
    if not csv_path.is_file():
        raise FileNotFoundError(f"generic corpus CSV {csv_path} does not exist (set corpora.<name>.csv)")
    frame = read_csv_checked(csv_path, REQUIRED, error=ManifestError, what="required ", dtype=str,
                             keep_default_na=False)
    unknown = [c for c in frame.columns if c not in MANIFEST_COLUMNS]
    if unknown:
        raise ManifestError(f"{csv_path}: unknown column(s) {unknown}; allowed: {MANIFEST_COLUMNS}")
    for column in REQUIRED:
        empty = frame.index[frame[column].str.strip() == ""].tolist()
        if empty:
            raise ManifestError(f"{csv_path}: empty {column!r} on data row(s) {[i + 2 for i in empty[:5]]}")
    edges = tuple(options.get("bin_edges") or DEFAULT_BIN_EDGES)
    rows = []
    for record in frame.to_dict("records"):
        path = Path(record["path"])
        record["path"] = str(path if path.is_absolute() else (csv_path.parent / path))
        for dim in ("activation", "valence", "dominance"):
            value = record.get(dim, "")
            record[dim] = float(value) if value not in ("", None) else float("nan")
        for dim in ("activation", "valence"):
            given = record.get(f"{dim}_bin", "")
            if given and given not in BINS:
                raise ManifestError(f"{csv_path}: {dim}_bin {given!r} for {record['utt_id']} is not one of {BINS}")
            if not given:
                record[f"{dim}_bin"] = bin_value(record[dim], edges)
        record.pop("duration", None)
        record.pop("sample_rate", None)
        rows.append(record)
    return to_manifest_frame(rows)
