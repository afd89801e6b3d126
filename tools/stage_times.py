"""Where a workflow run's time went: job time per rule, from Snakemake's own job records.

Usage (from the directory the run used, e.g. the repository root)::

    .venv/bin/python tools/stage_times.py [--since 2026-12-04T04:19] [--markdown]

Snakemake records every finished job's rule, start and end time with each of its outputs under
``.snakemake/metadata/`` (one JSON file per output; a job with several outputs is counted once,
by its ``job_hash``).  Unlike the per-job ``benchmark:`` files, which only the heavy
rules write, these cover every job of the run, light ones included.  ``--since`` keeps the jobs
that started at or after that time (ISO date-time, UTC, or seconds since the epoch), so that one
run can be told from earlier ones in the same directory.

Prints one row per rule: jobs, job-minutes (the sum of the jobs' wall times: with ``--cores 2``
up to twice the elapsed time), mean seconds per job and share of the job time; then the elapsed
wall time from the first start to the last end.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd


def parse_since(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()


def job_records(metadata: Path, since: float = 0.0) -> pd.DataFrame:
    """One row per finished job: rule, start, end, seconds."""
    if not metadata.is_dir():
        raise SystemExit(f"{metadata}: no Snakemake job records here (run from the run's working directory)")
    jobs = {}
    for path in metadata.iterdir():
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a record being written, or not a job record
        start, end = record.get("starttime"), record.get("endtime")
        if record.get("incomplete") or start is None or end is None or start < since:
            continue
        # the outputs of one job share its hash; their times differ by milliseconds (a directory's later)
        key = (record["rule"], record.get("job_hash"))
        first, last = jobs.get(key, (start, end))
        jobs[key] = (min(first, start), max(last, end))
    frame = pd.DataFrame([(*key, *times) for key, times in jobs.items()], columns=["rule", "job_hash", "start", "end"])
    frame["seconds"] = frame["end"] - frame["start"]
    return frame.drop(columns="job_hash")


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    table = jobs.groupby("rule")["seconds"].agg(jobs="count", total="sum", mean="mean")
    table["job_min"] = table.pop("total") / 60
    table["share_%"] = 100 * table["job_min"] / table["job_min"].sum()
    table = table.rename(columns={"mean": "mean_s"}).sort_values("job_min", ascending=False)
    return table[["jobs", "job_min", "mean_s", "share_%"]]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", help="only jobs started at or after this time (ISO, UTC, or epoch seconds)")
    parser.add_argument("--metadata", type=Path, default=Path(".snakemake/metadata"))
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    jobs = job_records(args.metadata, parse_since(args.since))
    if jobs.empty:
        raise SystemExit("no finished jobs in the records" + (f" since {args.since}" if args.since else ""))
    table = per_rule(jobs).round({"job_min": 1, "mean_s": 1, "share_%": 1})
    print(table.to_markdown() if args.markdown else table.to_string())
    elapsed = jobs["end"].max() - jobs["start"].min()
    print(f"\n{len(jobs)} jobs, {jobs['seconds'].sum() / 60:.1f} job-minutes, "
          f"{elapsed / 60:.1f} min elapsed from the first start to the last end")


if __name__ == "__main__":
    main()
