"""T-DNN features (paper §7.2.1): 40-d log Mel filterbanks, 25 ms Hamming window, 10 ms hop.

The paper used python-speech-features; we compute the same quantity with NumPy (pre-emphasis
0.97, 512-point FFT power spectrum, HTK-scale triangular Mel filters equal to librosa's, natural log
with a floor) so that the feature stage needs no extra dependency and runs vectorised over
whole shards.  The last partial frame is zero padded (an utterance of n samples gives
``ceil((n - 400) / 160) + 1`` frames, at least one).

Features of one (corpus, condition, pool) live in ONE chunked HDF5 archive (lhotse-style),
never one file per utterance::

    /features  float16 (total_frames, 40)  chunked, compressed as prepare.compression (sernoise.hdf5_codecs)
    /offsets   int64   (n + 1,)            utterance i is features[offsets[i]:offsets[i+1]]
    /utt_ids   utf-8   (n,)
    attrs: n_mels, win_length, hop_length, sample_rate, format_version

float16 keeps ~3 significant digits of log energies (more than the features carry after
z-normalisation) at half the size of float32.  Written once, read many times by training.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import h5py
import numpy as np

from sernoise.hdf5_codecs import DEFAULT_COMPRESSION, DEFAULT_LEVEL, dataset_filters

SAMPLE_RATE = 16000
N_MELS = 40
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_FFT = 512
PREEMPHASIS = 0.97
LOG_FLOOR = 1e-10
FORMAT_VERSION = 1
# Rows per compressed HDF5 chunk (~80 kB of float16, about 3 RAVDESS utterances).  A training job of
# the matched or mismatched regimes reads a few utterances scattered over each of ~25 condition
# archives, and HDF5 decompresses every chunk it touches: with 8192-row chunks that was about half
# of each archive (0.84 s for 26 archives of the demo), with 1024 rows 0.23 s, for 2 % more bytes.
# Readers do not depend on it (any chunking reads the same values).
CHUNK_FRAMES = 1024
LIBVER = ("v110", "v110")  # fixed, so the bytes do not change with the HDF5 version


class FeatureError(ValueError):
    """A feature archive is missing, malformed or asked for an unknown utterance."""


@functools.lru_cache(maxsize=1)
def _mel_matrix() -> np.ndarray:
    """(40, 257) float32 HTK-scale triangular Mel filters without normalisation, 0 Hz to Nyquist.

    The same matrix as ``librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, htk=True,
    norm=None)``, bit for bit (tested), computed here because importing librosa for it cost a
    feature job ~1 s, as long as the filterbanks of a demo dataset.  Filter i rises linearly
    from Mel edge i to edge i+1 and falls to edge i+2; the 42 edges are evenly spaced on the
    HTK Mel scale ``m = 2595 log10(1 + f / 700)``; weights are evaluated at the FFT bin
    frequencies in float64 and stored as float32.
    """
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    mel_edges = np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0), N_MELS + 2)
    hz_edges = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)
    bin_hz = np.fft.rfftfreq(n=N_FFT, d=1.0 / SAMPLE_RATE)
    widths = np.diff(hz_edges)
    offsets = np.subtract.outer(hz_edges, bin_hz)  # edge minus bin frequency
    weights = np.zeros((N_MELS, N_FFT // 2 + 1), dtype=np.float32)
    for i in range(N_MELS):
        rising, falling = -offsets[i] / widths[i], offsets[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    return weights


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hamming(WIN_LENGTH).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _pocketfft_r2c():
    """SciPy's compiled pocketfft ``r2c``, loaded from its file without importing ``scipy.fft``; None
    when that cannot be done (another SciPy layout or build), and then :func:`_rfft` uses
    ``scipy.fft.rfft``, which calls this same function after padding (the values are equal;
    ``tests/test_features.py`` checks it on the pinned SciPy).

    Why: ``import scipy.fft`` took 0.17 s of a feature job's start-up (its array-API layer and
    scipy.special come with it), a tenth of the whole job on a demo-sized dataset.
    """
    if "scipy.fft" in sys.modules:  # already paid for: use the public function
        return None
    return _load_pocketfft_r2c()


def _load_pocketfft_r2c():
    """``r2c`` of SciPy's ``scipy/fft/_pocketfft/pypocketfft`` extension, loaded from its file; or None."""
    try:
        spec = importlib.util.find_spec("scipy")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(list(spec.submodule_search_locations)[0]) / "fft" / "_pocketfft"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"pypocketfft{suffix}"
            if path.is_file():
                break
        else:
            return None
        # The module's init function is PyInit_pypocketfft: the name must end in "pypocketfft".
        loader = importlib.machinery.ExtensionFileLoader("pypocketfft", str(path))
        module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("pypocketfft", path,
                                                                                        loader=loader))
        loader.exec_module(module)
        return module.r2c
    except (ImportError, OSError, AttributeError, ValueError):
        return None


_PUBLIC_FFT_ONLY = False  # set when the directly loaded r2c refused its arguments


def _rfft(frames: np.ndarray) -> np.ndarray:
    """Forward real FFT along the rows of C-contiguous float32 ``frames`` (already zero padded to
    ``N_FFT`` columns), unnormalised, one thread: complex64 (rows, N_FFT // 2 + 1).

    SciPy's pocketfft in single precision: 2.3x NumPy's on these 512-point frames (float32 in both;
    the results differ by float32 rounding, in 0.002 % of the stored float16 values by one step).
    """
    global _PUBLIC_FFT_ONLY
    r2c = None if _PUBLIC_FFT_ONLY else _pocketfft_r2c()
    if r2c is not None:
        try:
            # r2c(a, axes, forward, inorm, out, nthreads), as scipy.fft.rfft calls it (inorm 0: none)
            return r2c(frames, (1,), True, 0, None, 1)
        except TypeError:  # a SciPy whose binding takes other arguments: the public function from now on
            _PUBLIC_FFT_ONLY = True
    import scipy.fft

    return scipy.fft.rfft(frames, axis=1, workers=1)


def n_frames(n_samples: int) -> int:
    if n_samples <= WIN_LENGTH:
        return 1
    return int(np.ceil((n_samples - WIN_LENGTH) / HOP_LENGTH)) + 1


def log_mel_fbank(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(frames, 40) float32 log Mel filterbank energies of one mono 16 kHz utterance."""
    if sr != SAMPLE_RATE:
        raise FeatureError(f"features are defined at {SAMPLE_RATE} Hz, got {sr}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise FeatureError("expected non-empty mono audio")
    # The same operations in float32 as ever (tests/test_features.py holds the earlier code and
    # checks bit equality), written into preallocated buffers instead of temporaries.
    count = n_frames(x.size)
    emphasised = np.zeros((count - 1) * HOP_LENGTH + WIN_LENGTH, dtype=np.float32)
    emphasised[0] = x[0]
    np.subtract(x[1:], PREEMPHASIS * x[:-1], out=emphasised[1:x.size])
    frames = np.lib.stride_tricks.sliding_window_view(emphasised, WIN_LENGTH)[::HOP_LENGTH]
    windowed = np.zeros((count, N_FFT), dtype=np.float32)  # zero padded to the FFT length
    np.multiply(frames, _window(), out=windowed[:, :WIN_LENGTH])
    spectrum = _rfft(windowed)
    parts = spectrum.view(np.float32).reshape(count, N_FFT // 2 + 1, 2)  # (real, imaginary) pairs
    np.square(parts, out=parts)
    power = parts[:, :, 0] + parts[:, :, 1]
    power /= np.float32(N_FFT)
    energies = power @ _mel_matrix().T
    np.maximum(energies, np.float32(LOG_FLOOR), out=energies)
    return np.log(energies, out=energies)


def write_feature_archive(path, items, *, compression: str | None = DEFAULT_COMPRESSION,
                          compression_level: int = DEFAULT_LEVEL, chunk_frames: int = CHUNK_FRAMES) -> int:
    """Write (utt_id, features) pairs to ``path`` atomically (via ``.tmp``); returns the count.  ``compression``:
    one of :data:`sernoise.hdf5_codecs.COMPRESSIONS` (config ``prepare.compression``); ``chunk_frames``: rows per
    compressed chunk (the default for every archive of the workflow; other values for benchmarks)."""
    path = Path(path)
    utt_ids, blocks, offsets = [], [], [0]
    for utt_id, feats in items:
        feats = np.asarray(feats)
        if feats.ndim != 2 or feats.shape[1] != N_MELS:
            raise FeatureError(f"{path}: {utt_id}: expected (frames, {N_MELS}) features, got {feats.shape}")
        utt_ids.append(utt_id)
        blocks.append(feats.astype(np.float16, copy=False))
        offsets.append(offsets[-1] + feats.shape[0])
    data = np.concatenate(blocks) if blocks else np.zeros((0, N_MELS), dtype=np.float16)
    return _write_archive(path, utt_ids, data, offsets, compression=compression,
                          compression_level=compression_level, chunk_frames=chunk_frames)


def _write_archive(path: Path, utt_ids: list[str], data: np.ndarray, offsets, *,
                   compression: str | None = DEFAULT_COMPRESSION, compression_level: int = DEFAULT_LEVEL,
                   chunk_frames: int = CHUNK_FRAMES) -> int:
    """The archive of float16 ``data`` (total_frames, 40) whose utterance i is rows ``offsets[i]:offsets[i + 1]``."""
    if len(set(utt_ids)) != len(utt_ids):
        raise FeatureError(f"{path}: duplicate utt_id")
    filters = dataset_filters(compression, compression_level, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    try:
        with h5py.File(tmp, "w", libver=LIBVER, track_times=False) as f:
            if data.shape[0]:
                chunks = (min(data.shape[0], chunk_frames), N_MELS)
                f.create_dataset("features", data=data, chunks=chunks, track_times=False, **filters)
            else:  # a condition skipped for the whole corpus: HDF5 cannot chunk an empty dataset
                f.create_dataset("features", data=data, track_times=False)
            f.create_dataset("offsets", data=np.asarray(offsets, dtype=np.int64), track_times=False)
            f.create_dataset("utt_ids", data=np.asarray(utt_ids, dtype=object), shape=(len(utt_ids),),
                             dtype=h5py.string_dtype("utf-8"), track_times=False)
            for key, value in (("n_mels", N_MELS), ("win_length", WIN_LENGTH), ("hop_length", HOP_LENGTH),
                               ("sample_rate", SAMPLE_RATE), ("format_version", FORMAT_VERSION)):
                f.attrs[key] = np.int64(value)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(utt_ids)


class FeatureArchive:
    """Read side of a feature archive; ``read_all`` loads everything in one read (float32)."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FeatureError(f"{self.path}: feature archive does not exist")
        with h5py.File(self.path, "r") as f:
            if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
                raise FeatureError(f"{self.path}: unknown feature archive format")
            self.utt_ids = [u.decode() if isinstance(u, bytes) else u for u in f["utt_ids"][()]]
            self.offsets = f["offsets"][()]
        self._position = {u: i for i, u in enumerate(self.utt_ids)}

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __contains__(self, utt_id) -> bool:
        return utt_id in self._position

    def read(self, utt_id: str) -> np.ndarray:
        """float32 features of one utterance."""
        return self.read_many([utt_id])[utt_id].astype(np.float32)

    def read_all(self) -> dict[str, np.ndarray]:
        """utt_id -> float32 features of every utterance (one read of the whole dataset)."""
        return {u: a.astype(np.float32) for u, a in self.read_many(self.utt_ids).items()}

    def read_many(self, utt_ids) -> dict[str, np.ndarray]:
        """utt_id -> float16 features of ``utt_ids``, reading only the row spans that hold them.

        The rows wanted are merged into spans (two spans closer than one HDF5 chunk become
        one: the chunk is decompressed once either way), and each span is one slice read, so
        a fold's test utterances (a few speakers, stored next to each other) cost a tenth of
        the archive, and most of an archive costs one read of the whole.
        """
        wanted = list(dict.fromkeys(utt_ids))
        missing = [u for u in wanted if u not in self._position]
        if missing:
            raise FeatureError(f"{self.path}: no features for {len(missing)} utterance(s), e.g. {missing[:3]}")
        if not wanted:
            return {}
        rows = sorted(self._position[u] for u in wanted)
        result = {}
        with h5py.File(self.path, "r") as f:
            dataset = f["features"]
            gap = dataset.chunks[0] if dataset.chunks else 0
            for first, last in _merge_rows(rows, self.offsets, gap):
                start, stop = int(self.offsets[first]), int(self.offsets[last + 1])
                block = dataset[start:stop]
                for i in range(first, last + 1):
                    result[self.utt_ids[i]] = block[self.offsets[i] - start:self.offsets[i + 1] - start]
        return {u: result[u] for u in wanted}


def _merge_rows(rows: list[int], offsets: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(first, last) utterance index ranges covering sorted ``rows``; ranges whose frames lie less than ``gap`` apart are merged."""
    spans = [[rows[0], rows[0]]]
    for row in rows[1:]:
        if offsets[row] - offsets[spans[-1][1] + 1] < max(gap, 1):
            spans[-1][1] = row
        else:
            spans.append([row, row])
    return [(first, last) for first, last in spans]


def extract_store(store, path, *, utt_ids=None, progress=None, compression: str | None = DEFAULT_COMPRESSION,
                  compression_level: int = DEFAULT_LEVEL) -> int:
    """Features of every utterance of an AudioStore (or the given subset) into one archive.

    The audio is read shard by shard in stored order, in blocks of whole utterances (one
    decompression call per few MB, :meth:`AudioShard.__iter__`), not one read per utterance:
    that read alone took as long as the filterbanks.  The archive keeps ``utt_ids``' order
    (sorted by default), so its bytes do not depend on how the audio was sharded.
    """
    wanted = list(utt_ids) if utt_ids is not None else sorted(store.utt_ids)
    missing = sorted({utt_id for utt_id in wanted if utt_id not in store})
    if missing:
        raise FeatureError(f"{len(missing)} utterance(s) not in the audio store, e.g. {missing[:3]}")
    if len(set(wanted)) != len(wanted):
        raise FeatureError(f"{path}: duplicate utt_id")
    dataset_filters(compression, compression_level, where=str(path))  # a bad value fails before any work
    # Every utterance's frame count is known from its stored length, so the features go straight
    # into the archive's float16 rows (the same rounding as astype) instead of one array each and
    # a concatenation at the end.
    row = {utt_id: i for i, utt_id in enumerate(wanted)}
    offsets = np.zeros(len(wanted) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([n_frames(store.shard_of(utt_id).num_samples(utt_id)) for utt_id in wanted])
    data = np.empty((int(offsets[-1]), N_MELS), dtype=np.float16)
    done = 0
    for shard in store.iter_shards():
        if all(utt_id not in row for utt_id in shard.utt_ids):
            continue
        for utt_id, x in shard:
            i = row.get(utt_id)
            if i is None:
                continue
            data[offsets[i]:offsets[i + 1]] = log_mel_fbank(x)
            done += 1
            if progress is not None and done % 500 == 0:
                progress(f"{done}/{len(wanted)} utterances")
    return _write_archive(Path(path), wanted, data, offsets, compression=compression,
                          compression_level=compression_level)
