"""Size of the paper-scale DAG on a SLURM cluster: jobs per rule, SLURM submissions with and without the
grouping of profiles/slurm, and the wall time of ``snakemake -n``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/dag.py [--iemocap PATH/IEMOCAP_full_release] [--cores 0] [--json out.json]

Configuration: config.yaml (the paper's protocol: five folds, five repetitions, both tasks, every
regime, the four models, the augmentation-fraction sweep, the attack) with configs/paper_grid.yaml (the
paper's full T-DNN grid, trained inside each training job: it changes no job count) on IEMOCAP's five
sessions. Without ``--iemocap`` it runs on the synthetic IEMOCAP fixture of the tests (five sessions,
a few turns each, built in a temporary folder with espeak-ng): job counts depend on sessions, folds,
shards and the design, not on the number of utterances.

* jobs per rule: the job table of ``snakemake -n`` (default profile);
* SLURM submissions: without grouping, one per job that is not a local rule; with the profile's
  ``group:``/``group-components``, one per group job plus one per ungrouped job, as
  ``snakemake -n --workflow-profile profiles/slurm`` lays them out;
* dry-run time: ``snakemake -n --quiet rules`` from a fresh process, ``--repeat`` times, pinned to CPU
  ``--cores`` with taskset when taskset exists: wall and CPU seconds (user + system; on a busy machine
  the wall time also counts the wait for the core).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import REPO

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _iemocap_fixture(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from fixtures.iemocap_fixture import make_iemocap_fixture

    return make_iemocap_fixture(folder)


def _dry_run(workdir: Path, *args: str, cpu: int | None = None) -> tuple[str, float, float]:
    """(output, wall seconds, CPU seconds) of ``snakemake -n`` on the paper-scale config in ``workdir``."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "-n", *args,
           "--configfile", str(REPO / "config.yaml"), str(REPO / "configs" / "paper_grid.yaml"),
           str(workdir / "overlay.yaml")]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tick = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - tick
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout + proc.stderr, seconds, cpu_seconds


def local_rules() -> set[str]:
    """Rules that run on the submit host: the Snakefile's ``localrules:`` and rules with ``localrule: True``
    (a dry run prints them like any other rule)."""
    snakefile = (REPO / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", snakefile, flags=re.M)
    names = set(re.findall(r"\w+", block.group(1))) if block else set()
    for path in sorted((REPO / "rules").glob("*.smk")):
        rule = None
        for line in path.read_text().splitlines():
            if m := re.match(r"^(?:rule|use rule \w+ as) (\w+)", line):
                rule = m.group(1)
            elif rule and line.strip() == "localrule: True":
                names.add(rule)
    return names


def job_table(text: str) -> dict[str, int]:
    """rule -> jobs, from the 'job count' table that ends a dry run."""
    table = text[text.rindex("job  ") if "job  " in text else 0:]
    counts = {}
    for line in table.splitlines()[2:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    if "total" not in counts:
        raise SystemExit("no job table in the dry run's output")
    return counts


def submissions(text: str, local: set[str]) -> tuple[Counter, Counter]:
    """(ungrouped jobs per rule, group jobs per group) that a dry run's job listing submits: a group job is
    one header line with its member jobs indented below it; jobs of ``local`` rules are not submitted."""
    ungrouped, groups = Counter(), Counter()
    for line in text.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            if m.group(1) not in local:
                ungrouped[m.group(1)] += 1
        elif m := re.search(r"\] Group job (\S+) \(jobs in lexicogr\. order\):$", line):
            groups[m.group(1)] += 1
    return ungrouped, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iemocap", type=Path, default=None, help="an IEMOCAP_full_release folder")
    parser.add_argument("--cores", type=int, default=0, help="the CPU the timed dry run is pinned to")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sernoise-dag-") as tmp:
        tmp = Path(tmp)
        root = args.iemocap.resolve() if args.iemocap else _iemocap_fixture(tmp / "fixture")
        workdir = tmp / "work"
        workdir.mkdir()
        (workdir / "overlay.yaml").write_text(json.dumps({"corpus": "iemocap", "corpora": {"iemocap": {"root": str(root)}}}))

        times = [_dry_run(workdir, "--quiet", "rules", cpu=args.cores)[1:] for _ in range(args.repeat)]
        plain = _dry_run(workdir)[0]
        grouped = _dry_run(workdir, "--workflow-profile", str(REPO / "profiles" / "slurm"))[0]

    counts = job_table(plain)
    total = counts.pop("total")
    local_names = local_rules()
    local = sum(n for rule, n in counts.items() if rule in local_names)
    ungrouped, groups = submissions(grouped, local_names)
    assert job_table(grouped)["total"] == total, "the SLURM profile's dry run has other jobs"
    without = total - local
    with_groups = sum(ungrouped.values()) + sum(groups.values())
    grouped_jobs = without - sum(ungrouped.values())

    width = max(map(len, counts)) + 2
    print(f"paper-scale DAG (IEMOCAP, {'fixture' if args.iemocap is None else root})")
    print(f"{'rule':<{width}}{'jobs':>8}")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{rule:<{width}}{n:>8}")
    print(f"{'total':<{width}}{total:>8}")
    print(f"local jobs (submit host: {', '.join(sorted(r for r in counts if r in local_names))}): {local}")
    print(f"SLURM submissions without grouping: {without}")
    print(f"SLURM submissions with profiles/slurm grouping: {with_groups} "
          f"({grouped_jobs} jobs in {sum(groups.values())} group jobs: "
          + ", ".join(f"{g} {n}" for g, n in sorted(groups.items())) + ")")
    # CPU time is the figure to compare with a one-core budget: wall time also counts waiting for a
    # busy core
    print("snakemake -n --quiet rules: " + ", ".join(f"{wall:.1f} s wall, {cpu:.1f} s CPU" for wall, cpu in times)
          + (f" (pinned to CPU {args.cores})" if shutil.which("taskset") else ""))
    if args.json:
        args.json.write_text(json.dumps({
            "jobs_per_rule": counts, "total_jobs": total, "local_jobs": local,
            "submissions_without_grouping": without, "submissions_with_grouping": with_groups,
            "group_jobs": dict(groups),
            "dry_run_seconds": [{"wall": wall, "cpu": cpu} for wall, cpu in times],
        }, indent=2))


if __name__ == "__main__":
    main()
