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

# Where a block lives, from glibc's own accounting (mallinfo2: bytes in mmapped blocks, which page
# faults cannot tell reliably where transparent huge pages serve some of them).
MAPPED_BYTES = """
import ctypes, json
import numpy as np
from sernoise.allocator import use_heap_for_large_blocks
applied = use_heap_for_large_blocks()

libc = ctypes.CDLL(None)
# mallinfo2 since glibc 2.33; mallinfo's int fields before (enough for these sizes)
field = ctypes.c_size_t if hasattr(libc, "mallinfo2") else ctypes.c_int

class MallInfo(ctypes.Structure):
    _fields_ = [(name, field) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = libc.mallinfo2 if hasattr(libc, "mallinfo2") else libc.mallinfo
mallinfo2.restype = MallInfo
mapped = {}
for mb in (4, 24, 40):
    before = mallinfo2().hblkhd
    block = np.ones(mb * 131072)  # mb MB of float64
    mapped[mb] = (mallinfo2().hblkhd - before) / 2**20
    del block
print(json.dumps({"applied": applied, "again": use_heap_for_large_blocks(), "mapped": mapped}))
"""


def _run(code: str, setting: str | None):
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    env.pop("SERNOISE_MALLOC", None)
    if setting is not None:
        env["SERNOISE_MALLOC"] = setting
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@glibc
def test_blocks_up_to_32_mb_come_from_the_heap_not_from_fresh_mappings():
    heap = json.loads(_run(MAPPED_BYTES, None).stdout)
    default = json.loads(_run(MAPPED_BYTES, "default").stdout)
    assert heap["applied"] is True and heap["again"] is True
    assert default["applied"] is False and default["again"] is False
    # glibc's policy maps each of these blocks on its own (a fresh process: threshold 128 kB, then the
    # size of the largest block freed); the jobs' keeps those of up to 32 MB on the heap
    assert default["mapped"]["4"] >= 4 and default["mapped"]["24"] >= 24
    assert heap["mapped"]["4"] == 0 and heap["mapped"]["24"] == 0
    assert heap["mapped"]["40"] >= 40 and default["mapped"]["40"] >= 40  # above 32 MB: mapped either way


@glibc
def test_heap_is_the_default_and_can_be_named():
    assert json.loads(_run(MAPPED_BYTES, "heap").stdout)["applied"] is True


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
