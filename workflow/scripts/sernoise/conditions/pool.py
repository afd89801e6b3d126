"""Recorded noise by category and pool: the :class:`~sernoise.conditions.base.NoiseSource` conditions draw from.

A :class:`NoisePool` gathers the files of one split (``train`` for augmentation, ``test`` for
test conditions) from one or more built noise banks (``bank.csv`` + audio shard, see
:mod:`sernoise.noise.bank`).  Keys are ``"<bank>:<file>"``: the bank name keeps files of two
banks apart even when their relative paths coincide.

Leakage: each bank's split is checked on load (:func:`sernoise.noise.bank.check_split`), and
:func:`check_pools_disjoint` / :meth:`NoisePool.disjoint` check that no source recording feeds
both pools across all banks (SPEC §11: noise recordings disjoint between train and test pools).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from sernoise.audio_store import AudioShard
from sernoise.noise.bank import CATEGORIES, SPLITS, NoiseBankError, check_split, read_bank

from .base import ConditionError
from .snr import EnergyProfile

# Noise clips are re-read for every utterance; keep the most recent ones in memory, but bounded:
# a full ESC-50 bank decoded to float32 is ~0.6 GB.
DEFAULT_CACHE_BYTES = 256 * 2**20


def _bank_name(csv_path: Path) -> str:
    """``.../<name>/bank.csv`` -> ``name``; any other file name -> its stem."""
    return csv_path.parent.name if csv_path.name == "bank.csv" else csv_path.stem


def check_pools_disjoint(bank_frames: Iterable[pd.DataFrame]) -> None:
    """Raise :class:`~sernoise.noise.bank.NoiseBankError` if a source recording is in both pools.

    The frames (bank.csv contents) are checked together, so a recording that is ``train`` in one
    bank and ``test`` in another is caught too.  Sources are compared by their ``source`` string.
    """
    frames = [f[["file", "source", "split"]] for f in bank_frames]
    if not frames:
        return
    check_split(pd.concat(frames, ignore_index=True))


class NoisePool:
    """The noise files of one split, from one or more built banks.

    ``banks`` is a list of ``(bank_csv, audio_h5)`` pairs, or ``(name, bank_csv, audio_h5)``
    triples to name a bank explicitly (by default the folder holding ``bank.csv``).
    """

    def __init__(self, banks: Sequence[tuple], split: str, *, cache_bytes: int = DEFAULT_CACHE_BYTES):
        if split not in SPLITS:
            raise ConditionError(f"noise pool: split must be one of {list(SPLITS)}, got {split!r}")
        if not banks:
            raise ConditionError(f"noise pool ({split}): no noise bank given")
        self.split = split
        self.cache_bytes = int(cache_bytes)
        self._shards: dict[str, AudioShard] = {}
        self._paths: list[tuple[str, str, str]] = []
        rows = []
        for entry in banks:
            if len(entry) == 2:
                csv_path, h5_path = Path(entry[0]), Path(entry[1])
                name = _bank_name(csv_path)
            elif len(entry) == 3:
                name, csv_path, h5_path = str(entry[0]), Path(entry[1]), Path(entry[2])
            else:
                raise ConditionError(f"noise pool ({split}): bank entry {entry!r} is not (csv, h5) or (name, csv, h5)")
            if name in self._shards:
                raise ConditionError(f"noise pool ({split}): two banks named {name!r}; name them explicitly")
            frame = read_bank(csv_path)
            check_split(frame)  # a leaky bank must not be used at all, not even its clean half
            self._shards[name] = AudioShard(h5_path)
            self._paths.append((name, str(csv_path), str(h5_path)))
            frame = frame.assign(bank=name, key=name + ":" + frame["file"])
            rows.append(frame)
        self._all = pd.concat(rows, ignore_index=True)  # both splits: needed to check disjointness
        self.frame = self._all[self._all["split"] == split].sort_values("key", kind="stable").reset_index(drop=True)
        self._by_category = {
            cat: sorted(set(self.frame.loc[self.frame["category"] == cat, "key"])) for cat in CATEGORIES
        }
        self._files_of_key = dict(zip(self.frame["key"], zip(self.frame["bank"], self.frame["file"])))
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        # Energy profiles are ~1/256 of a float64 clip (1.9 kB per minute of audio): kept for
        # every file used, independently of the clip cache.
        self._profiles: dict[str, EnergyProfile] = {}

    # -- pickling: workers reopen shards, and start with an empty cache -----------------------
    def __getstate__(self) -> dict:
        return {"banks": [p for p in self._paths], "split": self.split, "cache_bytes": self.cache_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["banks"], state["split"], cache_bytes=state["cache_bytes"])

    def __repr__(self) -> str:
        return f"NoisePool({[p[0] for p in self._paths]}, split={self.split!r}, {len(self.frame)} files)"

    # -- NoiseSource ------------------------------------------------------------------------
    def files(self, category: str) -> list[str]:
        """Sorted unique keys ``"bank:file"`` of ``category`` in this pool (empty if none)."""
        if category not in CATEGORIES:
            raise ConditionError(f"noise pool ({self.split}): unknown category {category!r}; expected {list(CATEGORIES)}")
        return list(self._by_category[category])

    def read(self, key: str) -> np.ndarray:
        """The clip as float32 16 kHz (read-only: it is shared through the cache)."""
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        try:
            bank, file = self._files_of_key[key]
        except KeyError:
            raise ConditionError(f"noise pool ({self.split}): no noise file {key!r}") from None
        x = self._shards[bank].read(file)
        x.setflags(write=False)
        self._cache[key] = x
        self._cached_bytes += x.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes
        return x

    def energy_profile(self, key: str) -> EnergyProfile:
        """The clip's :class:`~sernoise.conditions.snr.EnergyProfile` (its power, and any stretch's
        energy without a pass over the stretch), computed on first use and kept."""
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = EnergyProfile(self.read(key))
        return profile

    def draw(self, category: str, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        """A file of ``category``, uniformly over the pool's files: ``(key, audio)``."""
        if category not in CATEGORIES:
            self.files(category)  # raises the unknown-category error
        keys = self._by_category[category]
        if not keys:
            raise ConditionError(f"noise pool ({self.split}) has no files for category {category!r}")
        key = keys[int(rng.integers(len(keys)))]
        return key, self.read(key)

    # -- bookkeeping ------------------------------------------------------------------------
    def source(self, key: str) -> str:
        """The source recording of a key (for leakage checks and reports)."""
        row = self.frame.loc[self.frame["key"] == key, "source"]
        if row.empty:
            raise ConditionError(f"noise pool ({self.split}): no noise file {key!r}")
        return str(row.iloc[0])

    def sources(self) -> set[str]:
        return set(self.frame["source"])

    @staticmethod
    def disjoint(train_pool: "NoisePool", test_pool: "NoisePool") -> None:
        """Raise NoiseBankError unless ``train_pool`` (split train) and ``test_pool`` (split test) share no source.

        All rows of the banks behind both pools are checked together, so a recording that sits in
        the train split of one bank and the test split of another is caught as well.
        """
        if train_pool.split != "train" or test_pool.split != "test":
            raise NoiseBankError(
                f"noise pools: expected a train and a test pool, got {train_pool.split!r} and {test_pool.split!r}"
            )
        frames = [train_pool._all, test_pool._all]
        check_pools_disjoint(frames)
