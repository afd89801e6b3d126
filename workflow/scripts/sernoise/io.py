"""Reading and writing the workflow's CSV files (one way to do each, for every module).

* :func:`read_csv_checked`: a CSV whose required columns are checked on reading, so a file from
  an older run or another tool fails at once with a message that names the file and the columns
  it lacks (instead of a KeyError somewhere downstream);
* :func:`read_csv_text_columns`: the same checks without pandas, for the few light jobs that only
  need some columns as text (importing pandas is ~0.2 s of such a job's start-up);
* :func:`write_csv_atomic`: a CSV written to ``<name>.tmp`` and renamed, so an interrupted job
  never leaves a half-written file that a later job (or Snakemake) takes for a finished one.

pandas is imported by the functions that use it, not by this module.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import pandas as pd


def read_csv_checked(path, required_columns: Iterable[str], *, error: type[Exception] = ValueError, what: str = "",
                     **read_csv) -> pd.DataFrame:
    """``pd.read_csv(path, **read_csv)`` with every one of ``required_columns`` present.

    A file that cannot be read as CSV (missing, unparsable, empty) or lacks a required column
    raises ``error`` naming the file; ``what`` qualifies the columns in that message (e.g.
    ``"manifest "`` -> "missing manifest column(s) [...]").
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, **read_csv)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"{path}: cannot be read as CSV ({exc})") from None
    _check_columns(path, frame.columns, required_columns, error, what)
    return frame


def _check_columns(path, present, required_columns: Iterable[str], error: type[Exception], what: str) -> None:
    """``error`` naming the file and the required columns not in ``present`` (none: nothing)."""
    missing = [c for c in required_columns if c not in present]
    if missing:
        raise error(f"{path}: missing {what}column(s) {missing}")


def read_csv_text_columns(path, required_columns: Iterable[str], *, error: type[Exception] = ValueError,
                          what: str = "") -> dict[str, list[str]]:
    """``required_columns`` of a CSV file as lists of text cells, read with the :mod:`csv` module.

    What ``read_csv_checked(path, columns, dtype=str, keep_default_na=False)`` gives for those
    columns (the workflow's CSVs are written by pandas: a header line, ``\\n`` line ends, fields
    quoted only where needed), and the same errors naming the file: missing or unreadable, no
    header, a missing required column, and also a row whose field count differs from the header's.
    """
    required = list(required_columns)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a leading BOM is dropped, as pandas does
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise error(f"{path}: cannot be read as CSV (no columns to parse from file)")
            _check_columns(path, header, required, error, what)
            positions = [header.index(c) for c in required]
            columns: dict[str, list[str]] = {c: [] for c in required}
            for row in reader:
                if not row:  # a blank line (pandas skips them too)
                    continue
                if len(row) != len(header):
                    raise error(f"{path}: cannot be read as CSV (line {reader.line_num} has {len(row)} fields, "
                                f"the header {len(header)})")
                for column, position in zip(required, positions):
                    columns[column].append(row[position])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise error(f"{path}: cannot be read as CSV ({exc})") from None
    return columns


def write_csv_atomic(frame: pd.DataFrame, path, **to_csv) -> Path:
    """Write ``frame`` without its index and with '\\n' line ends (plus ``to_csv`` options) via a
    temporary file renamed into place; creates the parent folder.  Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n", **to_csv)
    os.replace(tmp, path)
    return path
