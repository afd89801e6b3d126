"""Smoke test: benchmarks/augment.py runs end to end on 3 clips and prints its table."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO, SHARED_DATA

CONDITION_IDS = [
    "env-nat-start", "env-hum-cont-snr10", "laugh", "cry", "fade-in", "fade-out", "speed-seg",
    "speed-utt-1.25", "speed-utt-0.75", "pitch-up", "pitch-down", "pitch-up batched", "reverb",
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
         "--limit", "3", "--repeat", "1"],
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
