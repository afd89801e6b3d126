"""Sharded audio store: prepared utterances in a few chunked HDF5 archives.

Later stages (mixing, feature extraction, listening-test export) read every utterance
many times; one small WAV per utterance would mean tens of thousands of opens per pass and
as many Snakemake-visible files.  Instead, preparation writes a handful of *shards*, each an
HDF5 file holding many utterances back to back (the layout lhotse and similar tools use).

Shard layout (``format_version`` 1)::

    /samples    int16  (total_samples,)  chunked (2**16 samples), compressed (sernoise.hdf5_codecs)
    /offsets    int64  (n + 1,)          utterance i is samples[offsets[i]:offsets[i+1]]
    /scales     float32 (n,)             value = int16 * scale
    /utt_ids    utf-8 str (n,)           stored order = order of ``ShardWriter.add`` calls
    /active_power float64 (n,)           optional (prepared corpora): see "Speech levels" below
    attrs: sample_rate (int), format_version (int)

Quantisation (per utterance):

* if every sample lies in ``[-1, 32767/32768]`` the scale is exactly ``1/32768``
  (a power of two).  16-bit PCM, which soundfile reads as ``k/32768``, then round-trips
  **bit-exactly**: ``int16 * 2**-15`` is exact in float32.  Other float audio in that range
  (e.g. resampled) is rounded to the nearest 1/32768, i.e. a 16-bit noise floor (~-98 dBFS).
  The lower bound is -1 rather than -32767/32768 so that full-scale negative 16-bit samples
  (-32768) stay exact too.
* otherwise (peak beyond full scale, e.g. float WAVs that exceed 1.0) the scale is
  ``max|x| / 32767``: nothing is clipped, and the rounding error is at most ``scale / 2``.

Speech levels: a prepared corpus shard (``ShardWriter(speech_levels=True)``, written by
:func:`sernoise.prepare.prepare_shard`) also stores each utterance's ITU-T P.56 active speech
level as a mean power (:func:`sernoise.conditions.active_level.active_speech_power` of exactly
the float32 audio :meth:`AudioShard.read` returns; NaN where P.56 finds no active speech), with
the computation's version in the dataset's ``p56_version`` attribute.  Every additive condition
sets its noise against that level, and each of the corpus's ~100 conditions and the attack's
draws would otherwise compute it again for every utterance (~2.6 ms of CPU for a 3.5 s RAVDESS
clip, ten times the mixing itself); :meth:`AudioShard.active_power` hands it to them through
:class:`sernoise.conditions.base.Context`.  Levels of another ``p56_version`` (and shards
without the dataset) read as unknown, and the conditions compute the level as before.

Byte-for-byte determinism: the same utterances added in the same order give identical shard
files (datasets and the root group are created with ``track_times=False``, the library
version bounds are fixed, nothing records a timestamp or a path), so Snakemake checksums and
``git diff``-style comparisons of results stay meaningful.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from sernoise.hdf5_codecs import DEFAULT_COMPRESSION, DEFAULT_LEVEL, dataset_filters
from sernoise.io import read_csv_text_columns

FORMAT_VERSION = 1
CHUNK_SAMPLES = 2**16
# Fixed file-format bounds: "latest" would change the bytes whenever HDF5 is upgraded.
LIBVER = ("v110", "v110")
# Bulk reads (read_all is a single read; __iter__ reads blocks of about this many samples,
# i.e. 8 MiB of int16) so a pass over a shard costs few, large decompression calls.
READ_BLOCK_SAMPLES = 2**22

SCALE_16BIT = np.float32(2.0**-15)
_MAX_16BIT = np.float32(32767.0 / 32768.0)


class AudioStoreError(ValueError):
    """A shard or index file is missing, malformed or inconsistent; the message names the file."""


def quantise(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Float audio -> (int16 samples, float32 scale) with ``x ~= int16 * scale``.

    See the module docstring for the rule; non-finite input is a ValueError (int16 has no NaN).
    """
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(0, dtype=np.int16), SCALE_16BIT
    if not np.isfinite(x).all():
        raise ValueError("cannot quantise non-finite samples (NaN/Inf)")
    lo, hi = float(x.min()), float(x.max())
    if lo >= -1.0 and hi <= float(_MAX_16BIT):
        # x * 2**15 is exact in float32 (power-of-two scaling), so k/32768 -> k exactly.
        q = np.rint(x.astype(np.float32, copy=False) * np.float32(32768.0)).astype(np.int16)
        return q, SCALE_16BIT
    peak = max(abs(lo), abs(hi))
    scale = np.float32(peak / 32767.0)
    # Divide by the float32 scale actually stored; clip only guards against the last-bit
    # rounding of that scale pushing the peak to 32767.00001.
    q = np.clip(np.rint(x.astype(np.float64) / float(scale)), -32767, 32767).astype(np.int16)
    return q, scale


def dequantise(q: np.ndarray, scale: float) -> np.ndarray:
    """int16 samples and their scale -> float32 audio."""
    return q.astype(np.float32) * np.float32(scale)


class ShardWriter:
    """Write one shard.  Use as a context manager.

    Data go to ``<path>.tmp``, which is renamed onto ``path`` only by a successful
    :meth:`close`; an exception inside the ``with`` block deletes the temporary file, so a
    crash never leaves a complete-looking shard for Snakemake to trust.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sample_rate: int = 16000,
        compression: str | None = DEFAULT_COMPRESSION,
        compression_level: int = DEFAULT_LEVEL,
        speech_levels: bool = False,
    ) -> None:
        self.path = Path(path)
        self.tmp_path = Path(str(self.path) + ".tmp")
        self.sample_rate = int(sample_rate)
        # P.56 active level of each stored utterance (see the module doc); None: not stored
        self._active_powers: list[float] | None = [] if speech_levels else None
        filters = dataset_filters(compression, compression_level, where=str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.tmp_path, "w", libver=LIBVER, track_times=False)
        # Resizable, so utterances can be appended without knowing the total in advance.
        self._samples = self._file.create_dataset(
            "samples",
            shape=(0,),
            maxshape=(None,),
            chunks=(CHUNK_SAMPLES,),
            dtype=np.int16,
            track_times=False,
            **filters,
        )
        self._utt_ids: list[str] = []
        self._seen: set[str] = set()
        self._scales: list[np.float32] = []
        self._offsets: list[int] = [0]
        # Samples not yet written: we write whole chunks only, so no compressed chunk is
        # ever read back, modified and recompressed.
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._written = 0
        self._closed = False

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing ---------------------------------------------------------------------
    def add(self, utt_id: str, x: np.ndarray) -> None:
        """Append one utterance (1-D float array at the shard's sample rate)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        if not isinstance(utt_id, str) or not utt_id:
            raise ValueError(f"{self.path}: utt_id must be a non-empty string, got {utt_id!r}")
        if utt_id in self._seen:
            raise ValueError(f"{self.path}: duplicate utt_id {utt_id!r}")
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            # Integer input would be ambiguous (which full scale?); audio.read_audio gives float32.
            raise TypeError(f"{self.path}: {utt_id}: expected float samples, got dtype {x.dtype}")
        if x.ndim != 1:
            raise ValueError(f"{self.path}: {utt_id}: expected 1-D (mono) samples, got shape {x.shape}")
        try:
            q, scale = quantise(x)
        except ValueError as exc:
            raise ValueError(f"{self.path}: {utt_id}: {exc}") from exc
        if self._active_powers is not None:
            self._active_powers.append(_stored_active_power(q, scale, self.sample_rate))
        self._seen.add(utt_id)
        self._utt_ids.append(utt_id)
        self._scales.append(scale)
        self._offsets.append(self._offsets[-1] + q.size)
        if q.size:
            self._pending.append(q)
            self._pending_len += q.size
            if self._pending_len >= 16 * CHUNK_SAMPLES:
                self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending_len:
            return
        buf = np.concatenate(self._pending)
        n = buf.size if final else (buf.size // CHUNK_SAMPLES) * CHUNK_SAMPLES
        if n:
            self._samples.resize((self._written + n,))
            self._samples[self._written:self._written + n] = buf[:n]
            self._written += n
        rest = buf[n:]
        self._pending = [rest] if rest.size else []
        self._pending_len = rest.size

    def close(self) -> None:
        """Write the index datasets and move the finished shard into place."""
        if self._closed:
            return
        try:
            self._flush(final=True)
            f = self._file
            f.create_dataset("offsets", data=np.asarray(self._offsets, dtype=np.int64), track_times=False)
            f.create_dataset("scales", data=np.asarray(self._scales, dtype=np.float32), track_times=False)
            f.create_dataset(
                "utt_ids",
                data=np.asarray(self._utt_ids, dtype=object),
                shape=(len(self._utt_ids),),
                dtype=h5py.string_dtype("utf-8"),
                track_times=False,
            )
            if self._active_powers is not None:
                levels = f.create_dataset("active_power", data=np.asarray(self._active_powers, dtype=np.float64),
                                          track_times=False)
                levels.attrs["p56_version"] = np.int64(_p56_version())
            f.attrs["sample_rate"] = np.int64(self.sample_rate)
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.close()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        """Discard everything written so far (no shard file is left behind)."""
        self._closed = True
        try:
            self._file.close()
        finally:
            self.tmp_path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._utt_ids)


def _p56_version() -> int:
    from sernoise.conditions.active_level import ALGORITHM_VERSION

    return int(ALGORITHM_VERSION)


def _stored_active_power(q: np.ndarray, scale: np.float32, sr: int) -> float:
    """P.56 active power of the audio a reader will get back (``dequantise(q, scale)``, what
    :meth:`AudioShard.read` returns), NaN when P.56 finds no active speech in it."""
    from sernoise.conditions.active_level import NoActiveSpeech, active_speech_power

    try:
        return float(active_speech_power(dequantise(q, scale), sr))
    except NoActiveSpeech:
        return float("nan")


class AudioShard:
    """Read one shard.

    The HDF5 file is opened on first use and re-opened after a fork; pickling keeps only the
    path, so shards can be handed to worker processes.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._meta: tuple[list[str], dict[str, int], np.ndarray, np.ndarray, int] | None = None
        self._active_powers: np.ndarray | None = None  # read on first active_power() call

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __repr__(self) -> str:
        return f"AudioShard({str(self.path)!r})"

    # -- opening ---------------------------------------------------------------------
    def _handle(self) -> h5py.File:
        if self._file is not None and self._pid == os.getpid():
            return self._file
        # After a fork the parent's HDF5 handle must not be used; just drop it.
        self._file = None
        if not self.path.is_file():
            raise AudioStoreError(f"{self.path}: shard file not found")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise AudioStoreError(f"{self.path}: not a readable HDF5 shard ({exc})") from exc
        self._pid = os.getpid()
        return self._file

    def _load_meta(self):
        if self._meta is not None:
            return self._meta
        f = self._handle()
        missing = [k for k in ("samples", "offsets", "scales", "utt_ids") if k not in f]
        if missing:
            raise AudioStoreError(f"{self.path}: not an audio shard (missing dataset(s) {missing})")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise AudioStoreError(f"{self.path}: unsupported shard format_version {version} (expected {FORMAT_VERSION})")
        utt_ids = [str(u) for u in f["utt_ids"].asstr()[()]]
        offsets = np.asarray(f["offsets"][()], dtype=np.int64)
        scales = np.asarray(f["scales"][()], dtype=np.float32)
        n = len(utt_ids)
        if offsets.shape != (n + 1,) or scales.shape != (n,) or offsets[-1] != f["samples"].shape[0]:
            raise AudioStoreError(
                f"{self.path}: inconsistent shard ({n} utt_ids, {offsets.size} offsets, "
                f"{scales.size} scales, {f['samples'].shape[0]} samples)"
            )
        position = {u: i for i, u in enumerate(utt_ids)}
        self._meta = (utt_ids, position, offsets, scales, int(f.attrs["sample_rate"]))
        return self._meta

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __enter__(self) -> "AudioShard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- metadata --------------------------------------------------------------------
    @property
    def utt_ids(self) -> list[str]:
        return list(self._load_meta()[0])

    @property
    def sample_rate(self) -> int:
        return self._load_meta()[4]

    def num_samples(self, utt_id: str) -> int:
        _, position, offsets, _, _ = self._load_meta()
        i = self._index(utt_id, position)
        return int(offsets[i + 1] - offsets[i])

    def __len__(self) -> int:
        return len(self._load_meta()[0])

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._load_meta()[1]

    def _index(self, utt_id: str, position: dict[str, int]) -> int:
        try:
            return position[utt_id]
        except KeyError:
            raise KeyError(f"{self.path}: no utterance {utt_id!r}") from None

    def active_power(self, utt_id: str) -> float | None:
        """The stored P.56 active level of ``utt_id`` (mean power of :meth:`read`'s audio; see the
        module doc), or None when it is not known: no level stored, stored by another version
        of the computation, or P.56 found no active speech (callers then compute it and get
        the error that names the utterance)."""
        _, position, _, _, _ = self._load_meta()
        i = self._index(utt_id, position)
        if self._active_powers is None:
            levels = self._handle().get("active_power")
            n = len(position)
            if (levels is None or levels.shape != (n,)
                    or int(levels.attrs.get("p56_version", -1)) != _p56_version()):
                self._active_powers = np.full(n, np.nan)
            else:
                self._active_powers = np.asarray(levels[()], dtype=np.float64)
        value = float(self._active_powers[i])
        return value if np.isfinite(value) and value > 0.0 else None

    # -- reading ---------------------------------------------------------------------
    def read(self, utt_id: str) -> np.ndarray:
        """One utterance as float32."""
        _, position, offsets, scales, _ = self._load_meta()
        i = self._index(utt_id, position)
        q = self._handle()["samples"][offsets[i]:offsets[i + 1]]
        return dequantise(q, scales[i])

    def read_all(self) -> dict[str, np.ndarray]:
        """Every utterance, with a single read of ``samples`` (fastest for a full pass that fits in memory)."""
        utt_ids, _, offsets, scales, _ = self._load_meta()
        samples = self._handle()["samples"][()]
        return {u: dequantise(samples[offsets[i]:offsets[i + 1]], scales[i]) for i, u in enumerate(utt_ids)}

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(utt_id, x)`` in stored order, reading whole blocks of utterances at once."""
        utt_ids, _, offsets, scales, _ = self._load_meta()
        dataset = self._handle()["samples"]
        n = len(utt_ids)
        i = 0
        while i < n:
            # Grow the block by whole utterances up to READ_BLOCK_SAMPLES (at least one).
            j = i + 1
            while j < n and offsets[j + 1] - offsets[i] <= READ_BLOCK_SAMPLES:
                j += 1
            start = offsets[i]
            block = dataset[start:offsets[j]]
            for k in range(i, j):
                yield utt_ids[k], dequantise(block[offsets[k] - start:offsets[k + 1] - start], scales[k])
            i = j


class AudioStore:
    """Many shards behind one mapping ``utt_id -> audio``."""

    def __init__(self, shard_paths) -> None:
        self.shards = [AudioShard(p) for p in shard_paths]
        self._where: dict[str, int] = {}
        self._order: list[str] = []
        rates = set()
        for k, shard in enumerate(self.shards):
            for u in shard.utt_ids:
                if u in self._where:
                    other = self.shards[self._where[u]].path
                    raise AudioStoreError(f"{shard.path}: utt_id {u!r} is also in {other}")
                self._where[u] = k
                self._order.append(u)
            rates.add(shard.sample_rate)
        if len(rates) > 1:
            raise AudioStoreError(
                f"shards disagree on sample_rate {sorted(rates)}: {[str(s.path) for s in self.shards]}"
            )
        self.sample_rate: int | None = rates.pop() if rates else None

    @classmethod
    def from_index(cls, index_csv: str | os.PathLike) -> "AudioStore":
        """Open the shards named by an index CSV (columns ``utt_id``, ``shard``, ...).

        ``shard`` paths are relative to the index file's folder.  The index and the shards
        must list the same utterances, so a stale index fails here, not mid-experiment.
        """
        index_csv = Path(index_csv)
        if not index_csv.is_file():
            raise AudioStoreError(f"{index_csv}: index file not found")
        # The csv module, not pandas: a feature or augmentation job needs nothing else from pandas.
        columns = read_csv_text_columns(index_csv, ["utt_id", "shard"], error=AudioStoreError)
        utt_ids, shard_names = columns["utt_id"], columns["shard"]
        names = list(dict.fromkeys(shard_names))
        store = cls([index_csv.parent / name for name in names])
        in_index = set(utt_ids)
        in_shards = set(store._where)
        if in_index != in_shards or len(utt_ids) != len(in_index):
            duplicated = [u for u, count in Counter(utt_ids).items() if count > 1]
            raise AudioStoreError(
                f"{index_csv}: index does not match its shards "
                f"(only in index: {sorted(in_index - in_shards)[:5]}, "
                f"only in shards: {sorted(in_shards - in_index)[:5]}, "
                f"duplicated in index: {duplicated[:5]})"
            )
        # The shard named for each utt_id must be the one that holds it.
        for u, name in zip(utt_ids, shard_names):
            holder = store.shards[store._where[u]].path
            if holder != index_csv.parent / name:
                raise AudioStoreError(f"{index_csv}: {u!r} is listed in {name} but stored in {holder}")
        return store

    @property
    def utt_ids(self) -> list[str]:
        return list(self._order)

    def shard_of(self, utt_id: str) -> AudioShard:
        try:
            return self.shards[self._where[utt_id]]
        except KeyError:
            raise KeyError(f"no utterance {utt_id!r} in store ({len(self.shards)} shard(s))") from None

    def read(self, utt_id: str) -> np.ndarray:
        return self.shard_of(utt_id).read(utt_id)

    def active_power(self, utt_id: str) -> float | None:
        """:meth:`AudioShard.active_power` of the shard holding ``utt_id``."""
        return self.shard_of(utt_id).active_power(utt_id)

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._where

    def __len__(self) -> int:
        return len(self._order)

    def iter_shards(self) -> Iterator[AudioShard]:
        """The shards in order; iterate each for fast sequential reads."""
        return iter(self.shards)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
