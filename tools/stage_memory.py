"""Peak memory per stage of a workflow run, from the per-job ``benchmark:`` files Snakemake writes.

Usage (from the directory the run used, e.g. the repository root)::

    .venv/bin/python tools/stage_memory.py [--since 2026-12-05T00:31] [--markdown] [--limit-mb 2000]

Every heavy rule has a ``benchmark:`` file under ``benchmarks/snakemake/`` (one TSV per job:
wall seconds, ``max_rss`` in MB, ...).  Files are grouped by stage: the folder below
``benchmarks/snakemake/{corpus}/`` (``augment``, ``denoised``, ``train``, ...), or for a file
directly in it the rule part of its name (``prepare_audio_shard-000.tsv`` -> ``prepare_audio_shard``).
``--since`` keeps the files written at or after that time (ISO date-time, UTC, or seconds since
the epoch), i.e. the jobs of one run.  Prints one row per stage: jobs, the largest and the median
``max_rss`` and the job that had the largest; exits 1 when a job is above ``--limit-mb``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage_times import parse_since  # noqa: E402


def stage_of(path: Path, root: Path) -> str:
    """The stage a benchmark file belongs to (see the module doc)."""
    parts = path.relative_to(root).parts
    if len(parts) >= 3:  # {corpus}/{stage}/...
        return parts[1]
    return re.sub(r"[-_]\d+$", "", path.stem)  # a file directly below {corpus}/ (or root): its rule


def read_benchmarks(root: Path, since: float = 0.0) -> pd.DataFrame:
    """One row per benchmark file under ``root`` written at or after ``since``: stage, file, s, max_rss."""
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        if path.stat().st_mtime < since:
            continue
        try:
            frame = pd.read_csv(path, sep="\t")
        except (OSError, ValueError, pd.errors.ParserError) as error:
            raise SystemExit(f"{path}: not a Snakemake benchmark file ({error})") from None
        if frame.empty or "max_rss" not in frame or "s" not in frame:
            raise SystemExit(f"{path}: no 's' and 'max_rss' columns")
        last = frame.iloc[-1]
        rss = pd.to_numeric(last["max_rss"], errors="coerce")  # "NA" for jobs too short to sample
        rows.append({"stage": stage_of(path, root), "file": str(path), "s": float(last["s"]),
                     "max_rss": float(rss)})
    return pd.DataFrame(rows, columns=["stage", "file", "s", "max_rss"])


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per stage: jobs, largest and median max_rss (MB), the job with the largest."""
    out = []
    for stage, group in frame.groupby("stage"):
        measured = group.dropna(subset=["max_rss"])
        top = measured.loc[measured["max_rss"].idxmax()] if len(measured) else None
        out.append({"stage": stage, "jobs": len(group),
                    "max_rss_mb": float(top["max_rss"]) if top is not None else float("nan"),
                    "median_mb": float(measured["max_rss"].median()) if len(measured) else float("nan"),
                    "largest_job": top["file"] if top is not None else ""})
    return pd.DataFrame(out).sort_values("max_rss_mb", ascending=False, na_position="last").reset_index(drop=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("benchmarks/snakemake"))
    parser.add_argument("--since", help="keep files written at or after this time (ISO, UTC, or epoch seconds)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--limit-mb", type=float, default=2000.0, help="flag jobs above this (default 2000 MB)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root}: no such folder (run from the directory the workflow ran in)")
    frame = read_benchmarks(args.root, parse_since(args.since))
    if frame.empty:
        print("no benchmark files" + (f" since {args.since}" if args.since else ""))
        return 0
    table = summary(frame)
    if args.markdown:
        print("| stage | jobs | largest max_rss, MB | median, MB | largest job |")
        print("|---|---:|---:|---:|---|")
        for row in table.itertuples():
            print(f"| {row.stage} | {row.jobs} | {row.max_rss_mb:,.0f} | {row.median_mb:,.0f} | "
                  f"`{Path(row.largest_job).relative_to(args.root) if row.largest_job else ''}` |")
    else:
        with pd.option_context("display.width", 200, "display.max_colwidth", 90):
            print(table.to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
    over = frame[frame["max_rss"] > args.limit_mb]
    print(f"\n{len(frame)} jobs; largest {frame['max_rss'].max():,.0f} MB; "
          f"{len(over)} above {args.limit_mb:,.0f} MB")
    for row in over.itertuples():
        print(f"  above the limit: {row.file} ({row.max_rss:,.0f} MB)")
    return 1 if len(over) else 0


if __name__ == "__main__":
    raise SystemExit(main())
