"""Smoke test: benchmarks/augment.py runs end to end on 3 clips and prints its table."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO, SHARED_DATA

CONDITION_IDS = [
    "env-nat-start", "env-hum-cont-snr10", "laugh", "cry", "fade-in", "fade-out", "speed-seg",
    "speed-utt-1.25", "speed-utt-0.75", "pitch-up", "pitch-down", "pitch-up batched", "pitch-up R2", "pitch-down R2", "pitch-up R2 batched", "reverb",
    "reverb batched", "drop-word", "drop-letters", "filler-short", "filler-long",
]


@pytest.mark.shared_data
def test_benchmark_augment_smoke(shared_data):
    pytest.importorskip("audiomentations")
    for tool in ("sox", "rubberband"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` not installed")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "augment.py"), "--data", str(SHARED_DATA),
         "--limit", "3", "--repeat", "1", "--pitch-quality", "2"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "3 RAVDESS clips" in out
    assert "total wall time:" in out
    rows = {line.split("  ")[0].strip() for line in out.splitlines() if line and not line.startswith(" ")}
    for cid in CONDITION_IDS:
        assert cid in rows, f"row {cid!r} missing from:\n{out}"
    assert "synthetic alignment" in out
    for name in ("AddBackgroundNoise", "PitchShift", "TimeStretch", "GainTransition", "ApplyImpulseResponse"):
        assert name in out
    # the pitch-shift quality table: one row per shifter and direction, R3 at distance 0 from itself
    assert "pitch-shift quality, 2 clips" in out
    quality = {" ".join(line.split()[:-3]): line.split()[-3:] for line in out.splitlines()
               if line.startswith(("pitch-up: ", "pitch-down: "))}
    assert len(quality) == 8, out
    for direction in ("up", "down"):
        cents, envelope, lsd = map(float, quality[f"pitch-{direction}: Rubber Band R3 + formant (config.yaml)"])
        assert lsd == 0.0 and 0 <= cents < 100 and envelope > 0
        assert float(quality[f"pitch-{direction}: Rubber Band R2 + formant (demo)"][2]) > 0


def test_benchmark_augment_stage_names_missing_inputs(tmp_path):
    """Without a demo's results/ the stage benchmark stops and names what is missing."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "augment_stage.py"), "--results", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode != 0
    assert "missing demo inputs" in proc.stderr and "shard-000.h5" in proc.stderr
