"""Start-up cost of a job, per rule: a fresh Python process that imports what the rule's job imports
before it does any work (issue 17: several hundred jobs each pay it).

Usage (from the repository root)::

    .venv/bin/python benchmarks/startup.py [--repeat 5] [--rules train_model compute_metrics ...]

For each rule with a ``script:`` (rules/*.smk, ``use rule ... as`` included) the timed process runs
what Snakemake's script preamble runs (``pickle``, ``snakemake.logging``, ``snakemake.iocontainers``),
then the top-level imports of the rule's script, then the modules its job imports on its first
steps (``JOB_MODULES``: the default families' train/predict entry modules for the model rules, the
attack's predictor).  Reported: the median wall time of ``--repeat`` fresh processes (interpreter start
included), the import time alone, and the peak resident memory.  The numbers depend on the machine's
load and on the OS page cache: run it on an idle machine, after one untimed pass (done here).
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import subprocess
import sys
import time

from _common import REPO

PYTHON = sys.executable
PREAMBLE = "import pickle\nfrom snakemake.logging import logger\nfrom snakemake.iocontainers import Snakemake\n"
# Modules a job imports after its script's top-level imports and before its work: the model rules
# load the default families' entry points (sernoise.model_registry.load), the attack its predictor.
JOB_MODULES = {
    "train_model": ["sernoise.training.tdnn_job"],
    "predict_model": ["sernoise.training.tdnn_job"],
    "train_audio_model": ["sernoise.training.ednn_job"],
    "predict_audio_model": ["sernoise.training.ednn_job"],
    "run_attack": ["sernoise.attack.models", "sernoise.training.loop"],
}


def rule_scripts() -> dict[str, str]:
    """rule -> its script's file name, from rules/*.smk (a ``use rule A as B`` keeps A's script)."""
    scripts, uses = {}, {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        rule = None
        for line in path.read_text().splitlines():
            if m := re.match(r"^rule (\w+):", line):
                rule = m.group(1)
            elif m := re.match(r"^use rule (\w+) as (\w+)", line):
                uses[m.group(2)] = m.group(1)
                rule = None
            elif rule and (m := re.search(r'"\.\./workflow/scripts/(\w+\.py)"', line)):
                scripts[rule] = m.group(1)
    for new, old in uses.items():
        if old in scripts:
            scripts.setdefault(new, scripts[old])
    return scripts


def import_lines(script: str) -> str:
    """The script's top-level import statements, as source."""
    source = (REPO / "workflow" / "scripts" / script).read_text()
    nodes = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(ast.get_source_segment(source, n) for n in nodes)


def probe(rule: str, script: str) -> str:
    """The program a timed process runs: the imports, then one line 'import_seconds peak_rss_mb'."""
    extra = "\n".join(f"import {m}" for m in JOB_MODULES.get(rule, []))
    return (f"import sys, time, resource\nsys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r})\n"
            f"tick = time.perf_counter()\n{PREAMBLE}{import_lines(script)}\n{extra}\n"
            "print(f'{time.perf_counter() - tick:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}')\n")


def measure(program: str, repeat: int) -> tuple[float, float, float]:
    """(median process seconds, median import seconds, peak RSS MB) over ``repeat`` fresh processes."""
    walls, imports, rss = [], [], []
    for _ in range(repeat):
        tick = time.perf_counter()
        out = subprocess.run([PYTHON, "-c", program], capture_output=True, text=True, cwd=REPO)
        walls.append(time.perf_counter() - tick)
        if out.returncode != 0:
            raise SystemExit(f"import failed:\n{program}\n{out.stderr[-2000:]}")
        seconds, mb = out.stdout.split()
        imports.append(float(seconds))
        rss.append(float(mb))
    return statistics.median(walls), statistics.median(imports), max(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rules", nargs="*", default=None, help="only these rules")
    args = parser.parse_args()

    scripts = rule_scripts()
    if args.rules:
        unknown = sorted(set(args.rules) - set(scripts))
        if unknown:
            raise SystemExit(f"no script rule {unknown}; known: {sorted(scripts)}")
        scripts = {r: scripts[r] for r in args.rules}
    bare = measure("import resource\nprint(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)", args.repeat)
    rows = []
    for rule, script in sorted(scripts.items()):
        program = probe(rule, script)
        measure(program, 1)  # untimed: page cache, __pycache__
        rows.append((rule, script, *measure(program, args.repeat)))
    width = max(len(r[0]) for r in rows) + 2
    print(f"the interpreter alone: {bare[0]:.2f} s, {bare[2]:.0f} MB")
    print(f"{'rule':<{width}}{'process s':>10}{'imports s':>10}{'peak MB':>9}  script")
    for rule, script, wall, imports, mb in sorted(rows, key=lambda r: -r[2]):
        print(f"{rule:<{width}}{wall:>10.2f}{imports:>10.2f}{mb:>9.0f}  {script}")


if __name__ == "__main__":
    main()
