"""Deterministic seeds.

Every random choice in the workflow draws from a generator seeded by :func:`derive_seed`
from the global config seed and the names of what is being randomised (condition id,
utterance id, fold, repetition...).  Hashing the parts (instead of, say, adding them)
makes seeds independent of iteration order and of which other items exist, so the same
config yields the same bytes whether one target or the whole DAG is rebuilt.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(global_seed: int, *parts: object) -> int:
    """A 63-bit seed from the global seed and any number of identifying parts."""
    text = "\x1f".join([str(int(global_seed))] + [str(p) for p in parts])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def rng_for(global_seed: int, *parts: object) -> np.random.Generator:
    """A NumPy generator seeded by :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(global_seed, *parts))
