"""glibc's malloc set up for the workflow's jobs: large temporaries reuse heap memory.

glibc serves an allocation above its mmap threshold with a fresh ``mmap`` and unmaps it on
``free``.  The threshold starts at 128 kB and grows, on the fly, to the size of the largest such
block freed so far (up to 32 MB).  A job that allocates and frees arrays of a few MB in a loop (a
T-DNN batch: 64 utterances x 374 frames x 64 channels of float32 is 6 MB per layer output; the
backward pass of a training step; NumPy temporaries of a shard) therefore gets fresh pages for
many of them, and the kernel zero-fills every page on first touch.  That is paid as system time
and memory bandwidth, not as arithmetic: measured on the demo's 2-core machine (one thread), a
64 x 64-channel width-2 convolution over 64 x 374 frames took 17-18 ms with glibc's default
policy and 6.5 ms with the threshold fixed at 32 MB (the same for 8 utterances once a larger block
had been freed, which is why the default policy looked fine in some runs and not in others);
scoring 120 test utterances with a demo T-DNN 0.20 -> 0.09 s of CPU; a demo training epoch 1-3 % less
(benchmarks/allocator.py).

:func:`use_heap_for_large_blocks` fixes the mmap threshold at glibc's own upper bound (32 MB)
and the trim threshold (free memory kept at the top of the heap before it is given back) at twice
that, the pair glibc's dynamic rule itself reaches.  Arithmetic is unchanged: the same kernels run
on the same data (PyTorch aligns its tensors to 64 bytes wherever they live).  Memory: up to
64 MB of freed heap may stay mapped per process.  Every rule job calls it
(:func:`sernoise.runlog.rule_log`); ``SERNOISE_MALLOC=default`` keeps glibc's policy (e.g. to
compare), and on a C library other than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc <malloc.h>)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
ENV_SWITCH = "SERNOISE_MALLOC"

_applied: bool | None = None


def use_heap_for_large_blocks() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once); True when they are set.

    False, and nothing changed, with ``SERNOISE_MALLOC=default``, off Linux, or when the C
    library has no ``mallopt`` (musl) or refuses the values.
    """
    global _applied
    if _applied is not None:
        return _applied
    setting = os.environ.get(ENV_SWITCH, "").strip().lower()
    if setting not in ("", "heap", "default"):
        raise ValueError(f"{ENV_SWITCH}={os.environ[ENV_SWITCH]!r}: expected 'heap' (the default) or 'default' "
                         "(glibc's own malloc policy)")
    _applied = False
    if setting == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
