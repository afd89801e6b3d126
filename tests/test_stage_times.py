"""tools/stage_times.py: job time per rule from Snakemake's job records."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("stage_times", Path(__file__).resolve().parents[1] / "tools/stage_times.py")
stage_times = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(stage_times)


def record(folder: Path, output: str, rule: str, job_hash: int, start: float, end: float, **extra) -> None:
    name = base64.b64encode(output.encode()).decode()
    (folder / name).write_text(json.dumps({"rule": rule, "job_hash": job_hash, "starttime": start, "endtime": end,
                                           "incomplete": False, **extra}))


@pytest.fixture()
def metadata(tmp_path):
    folder = tmp_path / "metadata"
    folder.mkdir()
    # one train job with two outputs (times a few ms apart: counted once), a second train job,
    # a feature job, an incomplete job, and an old job from an earlier run
    record(folder, "m/1/model.pt", "train_model", 11, 1000.0, 1060.0)
    record(folder, "m/1/hparams.yaml", "train_model", 11, 1000.002, 1060.004)
    record(folder, "m/2/model.pt", "train_model", 12, 1010.0, 1100.0)
    record(folder, "f/train.h5", "extract_features", 13, 1100.0, 1130.0)
    record(folder, "f/test.h5", "extract_features", 14, 1100.0, 1150.0, incomplete=True)
    record(folder, "old/scan.csv", "scan_corpus", 15, 10.0, 20.0)
    (folder / "garbage").write_text("{not json")
    return folder


def test_jobs_are_counted_once_and_filtered_by_start(metadata):
    jobs = stage_times.job_records(metadata, since=500.0)
    table = stage_times.per_rule(jobs)
    assert table.loc["train_model", "jobs"] == 2
    assert table.loc["train_model", "job_min"] == pytest.approx((60.004 + 90.0) / 60)
    assert table.loc["extract_features", "jobs"] == 1 and "scan_corpus" not in table.index
    assert table["share_%"].sum() == pytest.approx(100.0)
    assert list(table.index) == ["train_model", "extract_features"]  # most time first


def test_main_prints_elapsed_time(metadata, capsys):
    stage_times.main(["--metadata", str(metadata), "--since", "1970-01-01T00:08:20"])  # 500 s after the epoch
    out = capsys.readouterr().out
    assert "3 jobs" in out and "2.2 min elapsed" in out  # 1000 -> 1130 s (the incomplete job is left out)


def test_missing_records_are_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no Snakemake job records"):
        stage_times.job_records(tmp_path / "nowhere")
