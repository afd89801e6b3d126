"""The workflow on a real SLURM cluster: a one-node cluster (tools/slurm_cluster.sh) runs a sub-DAG of
the shared-data configuration through ``snakemake --workflow-profile profiles/slurm`` and
snakemake-executor-plugin-slurm, against a local run of the same targets.

The sub-DAG: manifest -> folds -> one noise condition (its shards, merged) -> features -> the T-DNN
(2 epochs) of the clean regime on each of the 3 folds -> their predictions -> the model's metrics,
on RAVDESS actors 01-06 of ../shared/data (the aligner is off: no condition here needs it).

One SLURM run is interrupted: the test cancels a running train_model job with ``scancel`` (standing
in for a time-limit kill); that run fails, and a second run of the same command finishes the work
without redoing the jobs that had finished. Skips (with the reason) where no cluster can be started
here: not root, or Debian's slurmctld/slurmd/slurm-client missing (tools/setup_venv.sh installs
them).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import workflow_helpers as wf

pytestmark = pytest.mark.workflow

CLUSTER = wf.REPO / "tools" / "slurm_cluster.sh"
PROFILE = wf.REPO / "profiles" / "slurm"
CONDITION = "env-nat-cont-snr10"
TARGETS = [wf.predictions_path("tdnn", "clean", 1), "results/ravdess/metrics/tdnn/metrics.csv"]
# The test cluster's needs beyond the profile (README "Running on a SLURM cluster"): job states
# through squeue (no accounting database), status checks every few seconds instead of the
# profile's shared-cluster pace, both CPUs of the one node, and no SLURM job asking for more (--cores
# caps each submission: a group job of three predictions would otherwise ask for three CPUs and pend
# forever); the SLURM logs of successful jobs are kept, to see which jobs ran in which SLURM job.
CLUSTER_ARGS = [
    "--jobs", "2",
    "--cores", "2",
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--max-status-checks-per-second", "1",
    "--latency-wait", "5",
    "--slurm-keep-successful-logs",
    "--retries", "0",  # the cancelled job fails the run (the profile retries once)
]
# Files of the two runs that are not byte-identical, and why (the rest must be).
NOT_BYTE_IDENTICAL: dict[str, str] = {}
LOCAL_RULES = {"list_datasets"}  # the rules of this sub-DAG that run on the submit host
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


def _overlay(ravdess_root: Path, noise_root: Path) -> dict:
    overlay = wf.tiny_training_overlay(ravdess_root, noise_root, models=["tdnn"], regimes=["clean"])
    overlay["augment"]["conditions"] = [CONDITION]
    overlay["noise_types"] = {"nat": [CONDITION]}
    overlay["align"] = {"enabled": False}
    return overlay


def _command(workdir: Path, *args: str) -> list[str]:
    configfiles = [str(wf.REPO / "config.yaml"), str(workdir / "overlay.yaml")]
    return [wf.SNAKEMAKE, "-s", str(wf.REPO / "Snakefile"), "-d", str(workdir), *args, *TARGETS,
            "--configfile", *configfiles]


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """The environment of a started one-node cluster (SLURM_CONF set); stopped after the module."""
    check = subprocess.run(["bash", str(CLUSTER), "check"], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        pytest.skip(f"no SLURM cluster can be started here: {check.stdout.strip() or check.stderr.strip()}")
    folder = tmp_path_factory.mktemp("slurm") / "cluster"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    start = subprocess.run(["bash", str(CLUSTER), "start", str(folder)], capture_output=True, text=True,
                           timeout=180, env=env)
    if start.returncode != 0:
        pytest.fail(f"tools/slurm_cluster.sh start {folder} failed ({start.returncode}):\n{start.stderr[-6000:]}")
    env["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        yield env
    finally:
        stop = subprocess.run(["bash", str(CLUSTER), "stop", str(folder)], capture_output=True, text=True,
                              timeout=180, env=env)
        assert stop.returncode == 0, stop.stderr
        assert not folder.exists()


def _squeue(env: dict) -> list[tuple[str, str, str]]:
    """(job id, state, comment) of the cluster's jobs; the plugin's comment names the rule."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], capture_output=True, text=True, env=env,
                         timeout=30).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.count("|") == 2]


def _run_and_cancel(cmd: list[str], env: dict, rule: str, log: Path, *, after_s: float = 3.0,
                    timeout: float = 900):
    """Run ``cmd`` (its output to ``log``, not a pipe that could fill up while we poll); once a SLURM job
    of ``rule`` has been RUNNING for ``after_s``, scancel it. Returns (completed process, cancelled SLURM
    job id or None)."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    seen_running: dict[str, float] = {}
    cancelled = None
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if cancelled is None:
            for job_id, state, comment in _squeue(env):
                if state == "RUNNING" and f"rule_{rule}_" in comment:
                    first = seen_running.setdefault(job_id, time.monotonic())
                    if time.monotonic() - first >= after_s:
                        subprocess.run(["scancel", job_id], check=True, env=env, timeout=30)
                        cancelled = job_id
                        break
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, log.read_text(), ""), cancelled


@dataclass
class SlurmRuns:
    local: Path
    cluster: Path
    local_out: str
    interrupted: subprocess.CompletedProcess
    cancelled: str | None
    rerun: subprocess.CompletedProcess
    after_interrupt: dict[str, int]  # results/ file -> mtime_ns after the interrupted run
    seconds: float


@pytest.fixture(scope="module")
def slurm_runs(slurm_env, tmp_path_factory, ravdess_root, noise_root) -> SlurmRuns:
    """The local run and the two SLURM runs (interrupted by a scancel, then finished) of TARGETS."""
    overlay = _overlay(ravdess_root, noise_root)
    local, cluster = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("cluster")
    for workdir in (local, cluster):
        (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    env = {k: v for k, v in slurm_env.items()}
    local_env = {k: v for k, v in env.items() if k != "SLURM_CONF"}
    # the local run (profiles/default) beside the cluster's, which waits on SLURM most of the time; with
    # the same --cores, so that jobs get the same threads (torch's results depend on its thread count)
    local_log = local / "snakemake.out"
    with local_log.open("w") as out:
        local_proc = subprocess.Popen(_command(local, "--cores", "2"), stdout=out, stderr=subprocess.STDOUT,
                                      text=True, env=local_env)
    tick = time.monotonic()
    cluster_cmd = _command(cluster, "--workflow-profile", str(PROFILE), *CLUSTER_ARGS)
    interrupted, cancelled = _run_and_cancel(cluster_cmd, env, "train_model", cluster / "interrupted.out")
    after = {str(p.relative_to(cluster)): p.stat().st_mtime_ns
             for p in (cluster / "results").rglob("*") if p.is_file()}
    rerun = subprocess.run(cluster_cmd, capture_output=True, text=True, env=env, timeout=900)
    seconds = time.monotonic() - tick
    local_proc.wait(timeout=900)
    local_out = local_log.read_text()
    assert local_proc.returncode == 0, f"local run failed:\n{local_out[-5000:]}"
    assert rerun.returncode == 0, f"SLURM rerun failed:\n{rerun.stdout[-3000:]}\n{rerun.stderr[-6000:]}"
    print(f"SLURM runs (interrupted + rerun): {seconds:.0f} s; cancelled SLURM job {cancelled}")
    return SlurmRuns(local, cluster, local_out, interrupted, cancelled, rerun, after, seconds)


def _jobs(text: str) -> dict[tuple[str, str], list[str]]:
    """(rule, wildcards) -> outputs of every job that a Snakemake output announces (``rule X:`` blocks,
    also inside group jobs)."""
    jobs = {}
    # a block: the rule line, then its indented fields, up to the next job's "[date]" or rule line
    block = r"^\s*(?:local)?rule (\w+):\n((?:[ \t]+(?!\[|(?:local)?rule \w+:)\S.*\n)*)"
    for match in re.finditer(block, text, flags=re.M):
        wildcards = re.search(r"^\s+wildcards: (.*)$", match.group(2), flags=re.M)
        output = re.search(r"^\s+output: (.*)$", match.group(2), flags=re.M)
        key = (match.group(1), wildcards.group(1).strip() if wildcards else "")
        jobs[key] = [o.strip() for o in output.group(1).split(",")] if output else []
    return jobs


def _without_shown_logs(output: str) -> str:
    """``output`` of a submitting Snakemake without the log files it printed for failed jobs
    (show-failed-logs: a "Logfile X:" line, a rule of "=", the file, the same rule). A failed SLURM
    job's log is among them, and the jobstep Snakemake inside it announces its job as "localrule":
    that is the job's own output shown on the host, not a job that ran there."""
    return re.sub(r"^Logfile .+:\n(=+)\n.*?^\1\n?", "", output, flags=re.M | re.S)


def _slurm_jobs(output: str) -> dict[str, tuple[dict, bool]]:
    """SLURM job id -> (the jobs that ran inside it, whether it finished), from the SLURM log of each
    submission that ``output`` (the submitting Snakemake's) reports."""
    jobs = {}
    for _, slurm_id, log in SUBMITTED.findall(output):
        text = Path(log).read_text() if Path(log).is_file() else ""
        jobs[slurm_id] = (_jobs(text), bool(re.search(r"steps \(100%\) done", text)))
    return jobs


def test_every_job_ran_in_a_slurm_job(slurm_runs):
    runs = slurm_runs
    # list_datasets is a local rule (a few lines of JSON: rules/models.smk): it runs on the submit host
    local_jobs = {job for job in _jobs(runs.local_out) if job[0] not in LOCAL_RULES}
    assert ("train_model", "corpus=ravdess, model=tdnn, regime=clean, fold=1, rep=1") in local_jobs
    assert len(local_jobs) > 10
    submitted = {**_slurm_jobs(runs.interrupted.stdout), **_slurm_jobs(runs.rerun.stdout + runs.rerun.stderr)}
    assert submitted and all(slurm_id.isdigit() for slurm_id in submitted)
    # every job of the local run finished inside a SLURM job (its SLURM log shows it), none on the submit host
    finished = set().union(*(set(jobs) for jobs, done in submitted.values() if done))
    assert finished == local_jobs
    host_output = _without_shown_logs(runs.interrupted.stdout + runs.rerun.stdout + runs.rerun.stderr)
    on_host = set(re.findall(r"^localrule (\w+):", host_output, flags=re.M))
    assert on_host <= LOCAL_RULES
    print("SLURM job ids:", ", ".join(sorted(submitted, key=int)))


def test_a_cancelled_job_is_redone_and_nothing_else(slurm_runs):
    runs = slurm_runs
    out = runs.interrupted.stdout
    assert runs.cancelled is not None, f"no train_model job seen running:\n{out[-3000:]}"
    assert runs.interrupted.returncode != 0
    assert re.search(rf"SLURM-job '{runs.cancelled}' failed, SLURM status is: 'CANCELLED'", out), out[-3000:]
    before = _slurm_jobs(out)
    cancelled_jobs, done = before[runs.cancelled]
    assert not done
    ((rule, wildcards),) = cancelled_jobs
    assert rule == "train_model"
    fold = int(re.search(r"fold=(\d+)", wildcards).group(1))
    # nothing of the killed job is left as finished: its model folder is gone (Snakemake removed the
    # outputs of the failed job; after a kill of Snakemake itself, --rerun-incomplete redoes them)
    model = str(wf.model_dir("tdnn", runs.cluster, "clean", fold).relative_to(runs.cluster))
    assert not any(name.startswith(model) for name in runs.after_interrupt)
    # the rerun does the cancelled job and the jobs that had not finished, and no job that had
    finished = {}
    for jobs, done in before.values():
        if done:
            finished.update(jobs)
    rerun_jobs = set(_jobs(_without_shown_logs(runs.rerun.stdout + runs.rerun.stderr)))
    assert (rule, wildcards) in rerun_jobs
    assert finished and not (rerun_jobs & set(finished))
    assert {job for job in rerun_jobs | set(finished) if job[0] not in LOCAL_RULES} == \
        {job for job in _jobs(runs.local_out) if job[0] not in LOCAL_RULES}
    # and the outputs of the finished jobs are those of the first run
    for outputs in finished.values():
        for name in outputs:
            if name.startswith("results/"):
                assert (runs.cluster / name).stat().st_mtime_ns == runs.after_interrupt[name], name


def test_outputs_equal_those_of_the_local_run(slurm_runs):
    runs = slurm_runs

    def tree(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.is_file()}

    local, cluster = tree(runs.local), tree(runs.cluster)
    assert local == cluster
    assert "results/ravdess/manifest.csv" in local and wf.predictions_path("tdnn", "clean", 1) in local
    differ = sorted(n for n in local if (runs.local / n).read_bytes() != (runs.cluster / n).read_bytes())
    assert set(differ) <= set(NOT_BYTE_IDENTICAL), f"files that differ between the local and the SLURM run: {differ}"


def test_logs_shown_for_failed_jobs_are_not_taken_for_host_jobs(tmp_path):
    # the format is Snakemake's own (snakemake.logging.show_logs, as show-failed-logs prints it)
    from snakemake.logging import show_logs

    slurm_log = tmp_path / "7.log"
    slurm_log.write_text("Building DAG of jobs...\nlocalrule train_model:\n    wildcards: fold=1\n"
                         "Select jobs to execute...\n")
    shown = "\n".join(show_logs([str(slurm_log)]))
    output = f"rule train_model:\n    jobid: 3\n{shown}\nlocalrule list_datasets:\n    jobid: 9\n"
    kept = _without_shown_logs(output)
    assert re.findall(r"^localrule (\w+):", output, flags=re.M) == ["train_model", "list_datasets"]
    assert re.findall(r"^localrule (\w+):", kept, flags=re.M) == ["list_datasets"]
    assert kept.startswith("rule train_model:\n    jobid: 3\n") and "Building DAG" not in kept
