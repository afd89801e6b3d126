"""tools/stage_memory.py: peak memory per stage from Snakemake's per-job benchmark files."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))  # stage_memory imports stage_times from its folder
SPEC = importlib.util.spec_from_file_location("stage_memory", TOOLS / "stage_memory.py")
stage_memory = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(stage_memory)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(root: Path, relative: str, seconds: float, rss: str, mtime: float = 2_000_000_000.0) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t0\t1\n")
    os.utime(path, (mtime, mtime))


def test_groups_by_stage_and_flags_jobs_over_the_limit(tmp_path, capsys):
    root = tmp_path / "benchmarks" / "snakemake"
    bench(root, "ravdess/train/tdnn/clean/fold1/rep1.tsv", 20, "480.5")
    bench(root, "ravdess/train/tdnn/matched/fold1/rep1.tsv", 35, "2100")
    bench(root, "ravdess/augment/reverb/test/augment_shard-000.tsv", 12, "350")
    bench(root, "ravdess/prepare_audio_shard-000.tsv", 3, "110")
    bench(root, "ravdess/features/clean/extract_clean_features.tsv", 0.2, "NA")  # too short to sample
    bench(root, "ravdess/augment/old/test/augment_shard-000.tsv", 12, "9999", mtime=1_000_000_000.0)

    frame = stage_memory.read_benchmarks(root, since=1_500_000_000.0)
    assert len(frame) == 5  # the old file is left out
    table = stage_memory.summary(frame).set_index("stage")
    assert table.loc["train", "jobs"] == 2 and table.loc["train", "max_rss_mb"] == 2100
    assert table.loc["train", "median_mb"] == (480.5 + 2100) / 2
    assert table.loc["train", "largest_job"].endswith("matched/fold1/rep1.tsv")
    assert table.loc["prepare_audio_shard", "max_rss_mb"] == 110
    assert table.loc["features", "jobs"] == 1 and table.loc["features", "max_rss_mb"] != table.loc[
        "features", "max_rss_mb"]  # NaN: not sampled
    assert list(table.index[:2]) == ["train", "augment"]  # largest first

    code = stage_memory.main(["--root", str(root), "--since", "1500000000", "--markdown"])
    out = capsys.readouterr().out
    assert code == 1  # one job above 2,000 MB
    assert "| train | 2 | 2,100 | 1,290 |" in out
    assert "above the limit:" in out and "matched/fold1/rep1.tsv (2,100 MB)" in out
    assert stage_memory.main(["--root", str(root), "--since", "1500000000", "--limit-mb", "3000"]) == 0


def test_a_file_that_is_not_a_benchmark_is_named(tmp_path):
    root = tmp_path / "b"
    (root / "ravdess").mkdir(parents=True)
    (root / "ravdess" / "x.tsv").write_text("a\tb\n1\t2\n")
    try:
        stage_memory.read_benchmarks(root)
    except SystemExit as error:
        assert "x.tsv" in str(error) and "max_rss" in str(error)
    else:
        raise AssertionError("expected SystemExit")
