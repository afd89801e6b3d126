"""sernoise.allocator: every rule job keeps blocks of up to 32 MB on the heap instead of fresh mmap pages.

Each case runs in a fresh interpreter: the malloc policy is per process and set once."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                           reason="the policy is set through glibc's mallopt")

# A job's pattern at its worst for glibc's dynamic threshold: each block a little larger than any
# freed before, so each would get fresh pages; the minor page faults count them.
GROWING_BLOCKS = """
import json, resource, sys
import numpy as np
from sernoise.allocator import use_heap_for_large_blocks
applied = use_heap_for_large_blocks()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for mb in range(1, 25):
    block = np.ones(mb * 131072)  # mb MB of float64, every page touched
    del block
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "again": use_heap_for_large_blocks(), "faults": faults}))
"""


def _run(code: str, setting: str | None):
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    env.pop("SERNOISE_MALLOC", None)
    if setting is not None:
        env["SERNOISE_MALLOC"] = setting
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@glibc
def test_large_blocks_are_reused_from_the_heap_not_faulted_in_again():
    heap = json.loads(_run(GROWING_BLOCKS, None).stdout)
    default = json.loads(_run(GROWING_BLOCKS, "default").stdout)
    assert heap["applied"] is True and heap["again"] is True
    assert default["applied"] is False and default["again"] is False
    # glibc's policy: a fresh mapping per block, 1 + 2 + ... + 24 MB of fresh pages (fewer faults than
    # 4 kB pages would give where transparent huge pages serve them: ~15,000 here); the heap grows by
    # one MB per block and keeps what was freed: 24 MB of pages once (6,144)
    assert heap["faults"] < 0.6 * default["faults"]
    assert heap["faults"] < 24 * 256 * 1.5


@glibc
def test_heap_is_the_default_and_can_be_named():
    assert json.loads(_run(GROWING_BLOCKS, "heap").stdout)["applied"] is True


def test_an_unknown_setting_is_a_clear_error():
    proc = _run("from sernoise.allocator import use_heap_for_large_blocks; use_heap_for_large_blocks()", "mmap")
    assert proc.returncode != 0
    assert "SERNOISE_MALLOC='mmap': expected 'heap' (the default) or 'default'" in proc.stderr


def test_rule_log_sets_the_policy_for_the_job(tmp_path):
    code = f"""
from types import SimpleNamespace
import sernoise.allocator as allocator
from sernoise.runlog import rule_log
assert allocator._applied is None
with rule_log(SimpleNamespace(log=[{str(tmp_path / 'job.log')!r}], rule="demo")) as log:
    log.info("work")
print(allocator._applied is not None)
"""
    proc = _run(code, None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert "work" in (tmp_path / "job.log").read_text()
