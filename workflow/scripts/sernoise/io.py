"""Reading and writing the workflow's CSV files (one way to do each, for every module).

* :func:`read_csv_checked`: a CSV whose required columns are checked on reading, so a file from
  an older run or another tool fails at once with a message that names the file and the columns
  it lacks (instead of a KeyError somewhere downstream);
* :func:`write_csv_atomic`: a CSV written to ``<name>.tmp`` and renamed, so an interrupted job
  never leaves a half-written file that a later job (or Snakemake) takes for a finished one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd


def read_csv_checked(path, required_columns: Iterable[str], *, error: type[Exception] = ValueError, what: str = "",
                     **read_csv) -> pd.DataFrame:
    """``pd.read_csv(path, **read_csv)`` with every one of ``required_columns`` present.

    A file that cannot be read as CSV (missing, unparsable, empty) or lacks a required column
    raises ``error`` naming the file; ``what`` qualifies the columns in that message (e.g.
    ``"manifest "`` -> "missing manifest column(s) [...]").
    """
    try:
        frame = pd.read_csv(path, **read_csv)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"{path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        raise error(f"{path}: missing {what}column(s) {missing}")
    return frame


def write_csv_atomic(frame: pd.DataFrame, path, **to_csv) -> Path:
    """Write ``frame`` without its index and with '\\n' line ends (plus ``to_csv`` options) via a
    temporary file renamed into place; creates the parent folder.  Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n", **to_csv)
    os.replace(tmp, path)
    return path
