"""The one manifest schema every corpus adapter produces (SPEC §4.1)."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from sernoise.io import read_csv_checked

MANIFEST_COLUMNS = [
    "utt_id",
    "path",
    "speaker",
    "gender",
    "group",
    "duration",
    "sample_rate",
    "emotion",
    "activation",
    "valence",
    "dominance",
    "activation_bin",
    "valence_bin",
    "transcript",
    "alignment",
]

BINS = ("low", "mid", "high")

# Paper §4: low [1, 2.75], mid (2.75, 3.25], high (3.25, 5].
DEFAULT_BIN_EDGES = (2.75, 3.25)


class ManifestError(ValueError):
    """A manifest (or the data behind it) breaks the schema; the message names the culprit."""


def bin_value(value: float, edges: tuple[float, float] = DEFAULT_BIN_EDGES) -> str:
    """Bin a dimensional rating into low/mid/high; the upper edge of each bin is inclusive.

    Empty (NaN/None) ratings give an empty string, matching the manifest's "empty when absent".
    """
    if value is None or pd.isna(value):  # covers float, NumPy float32/64 NaN and pandas NA
        return ""
    low_edge, high_edge = edges
    if value <= low_edge:
        return "low"
    if value <= high_edge:
        return "mid"
    return "high"


def to_manifest_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows (dicts with any subset of the manifest columns) -> a frame with exactly MANIFEST_COLUMNS.

    Missing columns are filled empty; unknown keys are an error (a typo would otherwise vanish).
    Rows are sorted by utt_id so that the file is byte-identical however the adapter walked the disk.
    """
    rows = list(rows)
    for row in rows:
        unknown = set(row) - set(MANIFEST_COLUMNS)
        if unknown:
            raise ManifestError(f"unknown manifest column(s) {sorted(unknown)} for {row.get('utt_id')!r}")
    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    if frame["utt_id"].isna().any() or (frame["utt_id"].astype(str) == "").any():
        raise ManifestError("manifest rows without utt_id")
    dupes = frame["utt_id"][frame["utt_id"].duplicated()].unique().tolist()
    if dupes:
        raise ManifestError(f"duplicate utt_id(s) in manifest: {dupes[:5]}")
    return frame.sort_values("utt_id", kind="stable").reset_index(drop=True)


def read_manifest(path: str) -> pd.DataFrame:
    """Read a manifest CSV keeping ids and labels as strings and empty cells as ''."""
    frame = read_csv_checked(
        path,
        MANIFEST_COLUMNS,
        error=ManifestError,
        what="manifest ",
        dtype={c: str for c in MANIFEST_COLUMNS if c not in ("duration", "sample_rate", "activation", "valence", "dominance")},
        keep_default_na=False,
        na_values={"activation": [""], "valence": [""], "dominance": [""], "duration": [""], "sample_rate": [""]},
    )
    return frame[MANIFEST_COLUMNS]
