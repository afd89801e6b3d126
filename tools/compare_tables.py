"""Compare the tables of two workflow runs: the same cells and numbers, or what differs.

    .venv/bin/python tools/compare_tables.py [--strip-flags] OLD_TABLES_DIR NEW_TABLES_DIR [table3 table4 table5]

Each table's CSV (one row per cell) is compared cell by cell on every column; Markdown, LaTeX and
HTML renderings are compared byte for byte.  Used to check that a refactoring keeps Tables 3, 4
and 5 (issue 11): run the same config (e.g. ``tests/configs/shared_data.yaml`` plus
``tools/table_parity.yaml``) at the old and the new commit and compare their table folders (the
old layout wrote ``results/tables/``, the new one ``results/{corpus}/tables/``).  Exit status 0
when every table matches, 1 otherwise.  ``--strip-flags`` compares the CSVs without the marks of
cells resting on models the degenerate-model check flagged (the "†" and the note it adds), for
comparing against a run made before that check existed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

RENDERINGS = ("md", "tex", "html")


FLAG_NOTE = re.compile(r"(; )?rests on model\(s\) flagged as degenerate: .*$")


def strip_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells without the degenerate-model marks (sernoise.evaluation.flags)."""
    return frame.assign(value=frame["value"].str.rstrip("†"), note=frame["note"].str.replace(FLAG_NOTE, "", regex=True))


def compare_csv(old: Path, new: Path, *, flags: bool = True) -> list[str]:
    # every column as text: a value column with marks must not read as numbers on one side only
    a, b = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (old, new))
    if not flags:
        a, b = strip_flags(a), strip_flags(b)
    if list(a.columns) != list(b.columns):
        return [f"{new.name}: columns differ: {list(a.columns)} vs {list(b.columns)}"]
    if len(a) != len(b):
        return [f"{new.name}: {len(a)} vs {len(b)} cells"]
    problems = []
    for column in a.columns:
        differ = a[column].astype(str) != b[column].astype(str)
        for i in differ[differ].index[:5]:
            problems.append(f"{new.name} row {i} column {column}: {a.at[i, column]!r} vs {b.at[i, column]!r}")
        if differ.sum() > 5:
            problems.append(f"{new.name} column {column}: {int(differ.sum())} cells differ in all")
    return problems


def main(argv: list[str]) -> int:
    flags = "--strip-flags" not in argv
    argv = [a for a in argv if a != "--strip-flags"]
    if len(argv) < 2:
        print(__doc__)
        return 2
    old_dir, new_dir = Path(argv[0]), Path(argv[1])
    names = argv[2:] or ["table3", "table4", "table5"]
    failed = False
    for name in names:
        old, new = old_dir / f"{name}.csv", new_dir / f"{name}.csv"
        if not old.exists() or not new.exists():
            print(f"{name}: missing ({old if not old.exists() else new})")
            failed = True
            continue
        problems = compare_csv(old, new, flags=flags)
        cells = len(pd.read_csv(new))
        if not flags:
            marked = int(pd.read_csv(new, dtype=str, keep_default_na=False)["value"].str.endswith("†").sum())
            print(f"{name}: {marked} cell(s) marked † (degenerate-model check); compared without the marks; "
                  "renderings not compared")
            if problems:
                failed = True
                print("\n".join(f"  {line}" for line in problems))
            else:
                print(f"{name}: csv identical cell by cell without the marks ({cells} cells)")
            continue
        for ext in RENDERINGS:
            o, n = old_dir / f"{name}.{ext}", new_dir / f"{name}.{ext}"
            if o.exists() != n.exists() or (o.exists() and o.read_bytes() != n.read_bytes()):
                problems.append(f"{name}.{ext}: differs")
        if problems:
            failed = True
            print(f"{name}: {len(problems)} difference(s)")
            for line in problems:
                print(f"  {line}")
        else:
            same = [ext for ext in RENDERINGS if (new_dir / f"{name}.{ext}").exists()]
            print(f"{name}: identical ({cells} cells; csv cell by cell, {', '.join(same)} byte for byte)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
