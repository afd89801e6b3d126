"""Log spectrogram segments of Latif et al. (§4.2): the input of every model of the Latif stage.

Spectrogram: STFT with a 25 ms Hamming window (400 samples at 16 kHz) and a 10 ms shift (160
samples), 128 frequency bins, natural log of the power with a floor.

Why 128 bins: the paper fixes the "height" of the spectrogram at 128 but not how it is reached.
At 16 kHz a 25 ms window has 400 samples; an FFT must be at least that long (a shorter one would
fold the window), and the smallest power of two, 512 points, gives 257 bins of 31.25 Hz from 0 to
8 kHz.  We keep the lowest 128 (0 to 3.97 kHz) rather than pooling pairs of bins into a coarser
0-8 kHz picture: the band below 4 kHz holds F0, its harmonics and the first three formants, the
cues emotion recognition relies on, at the full resolution of the window (pitch harmonics of a
100 Hz voice stay resolved), and it is the band where speech energy dominates most environmental
noise.  So a pure tone of frequency f peaks in bin ``round(f / 31.25)``; content above
3.97 kHz is not seen.

Power, log and floor: ``log(max(|X|^2 / 512, 1e-10))``.  Power (not magnitude) so that the
features differ from the T-DNN's log Mel energies (sernoise.features) only in the frequency
axis; the absolute floor (-23 in log units, far below 16-bit quantisation noise) only matters for
digital silence.  No pre-emphasis (the paper names none).  Segments are z-normalised per bin
with training statistics (:func:`fit_normaliser`), so the constant scale does not matter.

Framing is that of sernoise.features: frame k starts at sample 160 k; the last partial frame is
zero padded; n samples give ``ceil((n - 400) / 160) + 1`` frames (at least one).

Segments (§4.2, "a context window of 256 frames"): windows of ``context`` frames, each carrying
the label of its utterance (utterance predictions average the segments' posteriors).

* Default hop = ``context`` (no overlap): the number of segments, and with it the training
  cost, stays about frames / context.  When the last window does not end on the last frame,
  one more window ENDING on the last frame is added (it overlaps the one before), so no frame
  of an utterance is dropped.
* An utterance shorter than one segment is padded by repeating it (``numpy.pad`` mode
  ``wrap``: frames 0, 1, ..., n-1, 0, 1, ...) to one segment.  Zero padding would be a block
  of a fixed, arbitrary log value (0 is a loud level in log power, the floor is silence far
  below any recording): after normalisation an artificial pattern the models could key on; the
  repeated utterance keeps the spectral statistics of real speech and of its label.

Storage: all segments of one dataset (e.g. one corpus under one condition) in ONE chunked,
compressed HDF5 archive, never one file per utterance (as sernoise.features and
sernoise.audio_store do)::

    /segments  float16 (total_segments, context, n_bins)  chunked (16 segments), gzip + shuffle
    /offsets   int64   (n + 1,)  segments of utterance i are segments[offsets[i]:offsets[i+1]],
                                 i.e. segment s belongs to the utterance whose span holds s
    /utt_ids   utf-8   (n,)      in the order written
    /labels    int64   (n,)      the utterance's class index (each of its segments carries it)
    attrs: context, n_bins, n_fft, win_length, hop_length, sample_rate, format_version

gzip, not ``prepare.compression``'s bitshuffle-LZ4 of the audio shards and T-DNN feature archives:
measured on 600 RAVDESS utterances (``benchmarks/storage.py``, 1,200 segments, 78.6 MB of float16),
bitshuffle-LZ4 writes them 11x and reads them 5x faster but stores 65 % more (50.5 MB against
30.6 MB).  The 1.2 s of CPU it would save per 600 utterances is close to what their STFTs and
segmenting cost (1.4 s), but a few seconds per spectrogram job in a stage whose every training
run takes minutes (and reads each archive once), so the smaller files win.
:func:`write_segment_archive` takes any codec of :data:`sernoise.hdf5_codecs.COMPRESSIONS`.

float16 keeps about three significant digits of log powers (whose spread within a bin is several
units), at half the size of float32.  A chunk of 16 default segments is 1 MiB, the HDF5 default
chunk cache, so sequential reads decompress each chunk once.  The same items written in the same
order give byte-identical files (fixed library version bounds, no timestamps, nothing that
records a path), and the file appears atomically (written to ``.tmp`` and renamed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sernoise.features import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH, n_frames
from sernoise.hdf5_codecs import DEFAULT_LEVEL, dataset_filters

N_FFT = 512
N_BINS = 128
CONTEXT = 256
LOG_FLOOR = 1e-10
STD_FLOOR = 1e-5  # as sernoise.training.data: a constant bin must not divide by zero
FORMAT_VERSION = 1
CHUNK_SEGMENTS = 16
LIBVER = ("v110", "v110")  # fixed, so the bytes do not change with the HDF5 version
_NORM_BLOCK_ROWS = 1 << 16  # frames per block when accumulating statistics (bounded float64 copies)


class SpectrogramError(ValueError):
    """Bad audio or spectrogram input, or a segment archive that is missing or malformed; the message says which."""


def log_spectrogram(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, 128) float32 log power spectrogram of one mono 16 kHz utterance (see the module docstring)."""
    if int(sample_rate) != SAMPLE_RATE:
        raise SpectrogramError(f"log_spectrogram is defined at {SAMPLE_RATE} Hz, got sample_rate={sample_rate} "
                               f"(resample before calling it)")
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise SpectrogramError(f"expected 1-D (mono) audio, got shape {wave.shape}")
    if wave.size == 0:
        raise SpectrogramError("expected non-empty audio, got 0 samples")
    if not np.issubdtype(wave.dtype, np.floating):
        raise SpectrogramError(f"expected float samples, got dtype {wave.dtype}")
    if not np.isfinite(wave).all():
        raise SpectrogramError("audio has non-finite samples (NaN/Inf)")
    count = n_frames(wave.size)
    padded = np.zeros((count - 1) * HOP_LENGTH + WIN_LENGTH, dtype=np.float32)
    padded[: wave.size] = wave
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN_LENGTH)[::HOP_LENGTH]
    spectrum = np.fft.rfft(frames * np.hamming(WIN_LENGTH).astype(np.float32), n=N_FFT, axis=1)[:, :N_BINS]
    power = (spectrum.real**2 + spectrum.imag**2) / N_FFT
    return np.log(np.maximum(power, LOG_FLOOR)).astype(np.float32)


def bin_frequency(index: int) -> float:
    """Centre frequency (Hz) of spectrogram bin ``index``."""
    return index * SAMPLE_RATE / N_FFT


def segment_starts(frames: int, context: int = CONTEXT, hop: int | None = None) -> list[int]:
    """First frame of each segment of an utterance of ``frames`` frames (``[0]`` when it is shorter than one)."""
    context, hop = _check_window(context, hop)
    if frames < 1:
        raise SpectrogramError(f"a spectrogram needs at least one frame, got {frames}")
    if frames <= context:
        return [0]
    starts = list(range(0, frames - context + 1, hop))
    if starts[-1] + context < frames:  # the tail would be dropped: add a window ending on the last frame
        starts.append(frames - context)
    return starts


def segment(spec: np.ndarray, context: int = CONTEXT, hop: int | None = None) -> np.ndarray:
    """(n_segments, context, bins) float32 windows of ``spec`` (frames, bins); see the module docstring."""
    spec = np.asarray(spec)
    if spec.ndim != 2 or spec.shape[0] == 0 or spec.shape[1] == 0:
        raise SpectrogramError(f"expected a (frames, bins) spectrogram with at least one frame, got shape {spec.shape}")
    context, hop = _check_window(context, hop)
    spec = spec.astype(np.float32, copy=False)
    if spec.shape[0] < context:
        return np.pad(spec, ((0, context - spec.shape[0]), (0, 0)), mode="wrap")[None]
    starts = segment_starts(spec.shape[0], context, hop)
    return np.stack([spec[s:s + context] for s in starts])


def _check_window(context, hop) -> tuple[int, int]:
    if hop is None:
        hop = context
    for name, value in (("context", context), ("hop", hop)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise SpectrogramError(f"segment {name} must be a positive integer, got {value!r}")
    return int(context), int(hop)


# -- normalisation --------------------------------------------------------------------------


def fit_normaliser(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin (mean, std), float32, over every frame of the TRAINING ``segments`` (..., bins).

    Accumulated in float64 over blocks of frames, so a large float16 set is never copied whole
    to float64.  The standard deviation is floored at 1e-5 (a constant bin stays finite).
    """
    segments = np.asarray(segments)
    if segments.ndim < 2 or segments.shape[-1] == 0:
        raise SpectrogramError(f"expected segments (..., bins), got shape {segments.shape}")
    rows = segments.reshape(-1, segments.shape[-1])
    if rows.shape[0] == 0:
        raise SpectrogramError("no frames to compute normalisation statistics from")
    total = np.zeros(rows.shape[1], dtype=np.float64)
    squares = np.zeros(rows.shape[1], dtype=np.float64)
    for start in range(0, rows.shape[0], _NORM_BLOCK_ROWS):
        block = rows[start:start + _NORM_BLOCK_ROWS].astype(np.float64)
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    if not (np.isfinite(total).all() and np.isfinite(squares).all()):
        raise SpectrogramError("segments hold non-finite values; cannot fit a normaliser")
    mean = total / rows.shape[0]
    std = np.sqrt(np.maximum(squares / rows.shape[0] - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def apply_normaliser(segments: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """float32 ``(segments - mean) / std`` with per-bin statistics from :func:`fit_normaliser`."""
    segments = np.asarray(segments)
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    if mean.ndim != 1 or std.shape != mean.shape or segments.ndim < 1 or segments.shape[-1] != mean.size:
        raise SpectrogramError(f"normaliser of {mean.shape}/{std.shape} does not fit segments of shape {segments.shape}")
    if (std <= 0).any():
        raise SpectrogramError("normaliser std must be positive")
    return (segments.astype(np.float32) - mean) / std


# -- segment archives -----------------------------------------------------------------------


@dataclass
class SegmentSet:
    """The content of a segment archive (or the part of it that was asked for)."""

    segments: np.ndarray  # (total_segments, context, n_bins)
    offsets: np.ndarray  # (n + 1,) int64: utterance i owns segments[offsets[i]:offsets[i+1]]
    utt_ids: list[str]  # (n,)
    labels: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def segment_utt(self) -> np.ndarray:
        """(total_segments,) int64: the index (into ``utt_ids``) of each segment's utterance."""
        return np.repeat(np.arange(len(self.utt_ids), dtype=np.int64), np.diff(self.offsets))

    @property
    def segment_utt_ids(self) -> list[str]:
        """The utterance id of each segment."""
        return [self.utt_ids[i] for i in self.segment_utt]

    @property
    def segment_labels(self) -> np.ndarray:
        """(total_segments,) int64: each segment carries its utterance's label."""
        return self.labels[self.segment_utt]


def write_segment_archive(path, items, *, context: int = CONTEXT, n_bins: int = N_BINS,
                          compression: str | None = "gzip", compression_level: int = DEFAULT_LEVEL) -> int:
    """Write ``(utt_id, label, segments)`` triples to ``path`` atomically; returns the number of utterances.

    ``segments`` is (n_segments >= 1, context, n_bins) as :func:`segment` returns; ``label`` a
    class index.  Segments are streamed to disk in whole chunks, so a corpus never has to be held
    in memory twice.  ``compression`` is one of :data:`sernoise.hdf5_codecs.COMPRESSIONS` (gzip:
    see the module docstring) and ``compression_level`` gzip's level; every codec stores the same
    values.
    """
    path = Path(path)
    context, _ = _check_window(context, None)
    try:
        filters = dataset_filters(compression, compression_level, where=str(path))
    except ValueError as error:
        raise SpectrogramError(str(error)) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    utt_ids, labels, offsets, seen = [], [], [0], set()
    try:
        with h5py.File(tmp, "w", libver=LIBVER, track_times=False) as f:
            dataset = f.create_dataset("segments", shape=(0, context, n_bins), maxshape=(None, context, n_bins),
                                       chunks=(CHUNK_SEGMENTS, context, n_bins), dtype=np.float16,
                                       track_times=False, **filters)
            pending, pending_count, written = [], 0, 0
            for utt_id, label, segs in items:
                if not isinstance(utt_id, str) or not utt_id:
                    raise SpectrogramError(f"{path}: utt_id must be a non-empty string, got {utt_id!r}")
                if utt_id in seen:
                    raise SpectrogramError(f"{path}: duplicate utt_id {utt_id!r}")
                if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or label < 0:
                    raise SpectrogramError(f"{path}: {utt_id}: label must be a class index >= 0, got {label!r}")
                segs = np.asarray(segs)
                if segs.ndim != 3 or segs.shape[0] == 0 or segs.shape[1:] != (context, n_bins):
                    raise SpectrogramError(f"{path}: {utt_id}: expected (n >= 1, {context}, {n_bins}) segments, "
                                           f"got {segs.shape}")
                if not np.isfinite(segs).all():
                    raise SpectrogramError(f"{path}: {utt_id}: segments hold non-finite values")
                seen.add(utt_id)
                utt_ids.append(utt_id)
                labels.append(int(label))
                offsets.append(offsets[-1] + segs.shape[0])
                pending.append(segs.astype(np.float16))
                pending_count += segs.shape[0]
                if pending_count >= 4 * CHUNK_SEGMENTS:
                    pending, pending_count, written = _flush(dataset, pending, written, final=False)
            _flush(dataset, pending, written, final=True)
            f.create_dataset("offsets", data=np.asarray(offsets, dtype=np.int64), track_times=False)
            f.create_dataset("utt_ids", data=np.asarray(utt_ids, dtype=object), shape=(len(utt_ids),),
                             dtype=h5py.string_dtype("utf-8"), track_times=False)
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64), track_times=False)
            for key, value in (("context", context), ("n_bins", n_bins), ("n_fft", N_FFT),
                               ("win_length", WIN_LENGTH), ("hop_length", HOP_LENGTH),
                               ("sample_rate", SAMPLE_RATE), ("format_version", FORMAT_VERSION)):
                f.attrs[key] = np.int64(value)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(utt_ids)


def _flush(dataset, pending: list[np.ndarray], written: int, *, final: bool):
    """Append whole chunks of ``pending`` (everything when ``final``): no compressed chunk is rewritten."""
    if not pending:
        return [], 0, written
    block = np.concatenate(pending)
    n = block.shape[0] if final else (block.shape[0] // CHUNK_SEGMENTS) * CHUNK_SEGMENTS
    if n:
        dataset.resize((written + n,) + dataset.shape[1:])
        dataset[written:written + n] = block[:n]
        written += n
    rest = block[n:]
    return ([rest] if rest.shape[0] else []), rest.shape[0], written


def archive_utt_ids(path) -> list[str]:
    """The utt_ids of a segment archive, in the order written (reads nothing else)."""
    path = Path(path)
    if not path.is_file():
        raise SpectrogramError(f"{path}: segment archive does not exist")
    with h5py.File(path, "r") as f:
        if "utt_ids" not in f:
            raise SpectrogramError(f"{path}: not a segment archive (no utt_ids)")
        return [str(u) for u in f["utt_ids"].asstr()[()]]


def read_segments(paths, utt_ids, *, dtype=np.float32) -> dict[str, np.ndarray]:
    """utt_id -> its segments, for ``utt_ids`` spread over the archives ``paths`` (e.g. the shards of a
    dataset); each is read from the archive that holds it, and one held by none is an error naming it."""
    wanted = list(dict.fromkeys(utt_ids))
    out: dict[str, np.ndarray] = {}
    for path in paths:
        stored = set(archive_utt_ids(path))
        here = [u for u in wanted if u in stored and u not in out]
        if here:
            data = read_segment_archive(path, utt_ids=here, dtype=dtype)
            out.update({u: data.segments[data.offsets[k]:data.offsets[k + 1]] for k, u in enumerate(data.utt_ids)})
    missing = [u for u in wanted if u not in out]
    if missing:
        raise SpectrogramError(f"no segments for {len(missing)} utterance(s) in {len(list(paths))} archive(s) "
                               f"({[str(p) for p in paths][:1]}...), e.g. {missing[:3]}")
    return {u: out[u] for u in wanted}


def read_segment_archive(path, *, utt_ids=None, dtype=np.float32) -> SegmentSet:
    """The segments of every utterance of an archive (or of ``utt_ids``, in that order), as ``dtype``.

    A subset reads only the chunks that hold it (one slice per utterance; neighbours share chunks).
    ``dtype=np.float16`` keeps the stored precision at half the memory.
    """
    path = Path(path)
    if not path.is_file():
        raise SpectrogramError(f"{path}: segment archive does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise SpectrogramError(f"{path}: not a readable HDF5 segment archive ({exc})") from exc
    with f:
        missing = [k for k in ("segments", "offsets", "utt_ids", "labels") if k not in f]
        if missing or int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise SpectrogramError(f"{path}: not a segment archive of format {FORMAT_VERSION} "
                                   f"(missing {missing or 'nothing'}, format {f.attrs.get('format_version')})")
        stored_ids = [str(u) for u in f["utt_ids"].asstr()[()]]
        offsets = np.asarray(f["offsets"][()], dtype=np.int64)
        labels = np.asarray(f["labels"][()], dtype=np.int64)
        dataset = f["segments"]
        if offsets.shape != (len(stored_ids) + 1,) or labels.shape != (len(stored_ids),) \
                or offsets[-1] != dataset.shape[0]:
            raise SpectrogramError(f"{path}: inconsistent archive ({len(stored_ids)} utt_ids, {offsets.size} offsets, "
                                   f"{labels.size} labels, {dataset.shape[0]} segments)")
        if utt_ids is None:
            return SegmentSet(dataset[()].astype(dtype), offsets, stored_ids, labels)
        position = {u: i for i, u in enumerate(stored_ids)}
        wanted = list(utt_ids)
        unknown = [u for u in wanted if u not in position]
        if unknown:
            raise SpectrogramError(f"{path}: no segments for {len(unknown)} utterance(s), e.g. {unknown[:3]}")
        if len(set(wanted)) != len(wanted):
            raise SpectrogramError(f"{path}: utt_ids asked for more than once")
        rows = [position[u] for u in wanted]
        blocks = [dataset[offsets[i]:offsets[i + 1]].astype(dtype) for i in rows]
        counts = [offsets[i + 1] - offsets[i] for i in rows]
        shape = (0,) + dataset.shape[1:]
        segments = np.concatenate(blocks) if blocks else np.zeros(shape, dtype=dtype)
        return SegmentSet(segments, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), wanted, labels[rows])
