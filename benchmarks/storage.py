"""HDF5 codecs for the workflow's archives on one core: write and read time and size, per codec.

Usage (from the repository root)::

    .venv/bin/python benchmarks/storage.py [--data ../shared/data] [--limit 600] [--repeat 4]

The data are what the workflow stores: the RAVDESS utterances as an audio shard's int16 samples
(``ShardWriter``'s 2**16-sample chunks), their 40-d log-Mel features as a feature archive's
float16 rows (``features.CHUNK_FRAMES``-row chunks) and their log spectrograms as the Latif
stage's float16 segments (the default ``latif.context`` of 256 frames x 128 bins, no overlap,
``latif.spectrogram.CHUNK_SEGMENTS`` segments a chunk).  Each codec writes the whole dataset with
``h5py`` and reads it back (best of ``--repeat``; the read is checked equal to the data).  The
codecs of config ``prepare.compression`` (``sernoise.hdf5_codecs``) come first, then other
hdf5plugin filters measured as alternatives (Blosc2 with LZ4 or Zstandard and byte shuffle,
Bitshuffle with Zstandard, plain Zstandard): the columns ``x gzip`` are gzip's time / the codec's.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLOSC_NTHREADS"):
    os.environ[_var] = "1"  # one core: Blosc2 would otherwise compress on every core

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import hdf5plugin  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from _common import best_of, corpus_parser, ravdess_files  # noqa: E402
from sernoise.audio_store import CHUNK_SAMPLES, quantise  # noqa: E402
from sernoise.features import CHUNK_FRAMES, log_mel_fbank  # noqa: E402
from sernoise.hdf5_codecs import COMPRESSIONS, dataset_filters  # noqa: E402
from sernoise.latif.spectrogram import CHUNK_SEGMENTS, CONTEXT, log_spectrogram, segment  # noqa: E402

ALTERNATIVES = {
    "blosc2-lz4 (shuffle)": lambda: dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.SHUFFLE)),
    "blosc2-zstd-1 (shuffle)": lambda: dict(hdf5plugin.Blosc2(cname="zstd", clevel=1,
                                                              filters=hdf5plugin.Blosc2.SHUFFLE)),
    "bitshuffle-zstd-3": lambda: dict(hdf5plugin.Bitshuffle(cname="zstd", clevel=3)),
    "zstd-1": lambda: dict(hdf5plugin.Zstd(clevel=1)),
}


def measure(tmp: Path, name: str, data: np.ndarray, chunks: tuple, filters: dict, repeat: int) -> tuple:
    """(write s, read s, MB) of ``data`` stored with ``filters``."""
    path = tmp / f"{name.replace(' ', '_')}.h5"

    def write():
        with h5py.File(path, "w", track_times=False) as f:
            f.create_dataset("x", data=data, chunks=chunks, track_times=False, **filters)

    def read():
        with h5py.File(path, "r") as f:
            return f["x"][:]

    write_s = best_of(repeat, write, warmup=True)
    read_s = best_of(repeat, read, warmup=True)
    if not np.array_equal(read(), data):
        raise SystemExit(f"{name}: read back different values")
    return write_s, read_s, path.stat().st_size / 1e6


def main() -> None:
    args = corpus_parser(__doc__.splitlines()[0], repeat=4).parse_args()
    paths = ravdess_files(args.data, args.limit)
    audio = [sf.read(p, dtype="float32")[0] for p in paths]
    seconds = sum(len(x) for x in audio) / 16000
    samples = np.concatenate([quantise(x)[0] for x in audio])
    features = np.concatenate([log_mel_fbank(x) for x in audio]).astype(np.float16)
    segments = np.concatenate([segment(log_spectrogram(x, 16000), CONTEXT) for x in audio]).astype(np.float16)
    print(f"{len(paths)} utterances, {seconds:.0f} s of audio: {samples.nbytes / 1e6:.1f} MB of int16 samples, "
          f"{features.nbytes / 1e6:.1f} MB of float16 features, {segments.nbytes / 1e6:.1f} MB of float16 "
          f"spectrogram segments ({len(segments)}); 1 core")
    codecs = {name: dataset_filters(name) for name in COMPRESSIONS}
    codecs.update({f"{name} (not offered)": make() for name, make in ALTERNATIVES.items()})
    with tempfile.TemporaryDirectory() as tmp:
        for what, data, chunks in (("audio shard samples", samples, (CHUNK_SAMPLES,)),
                                   ("feature archive rows", features, (CHUNK_FRAMES, features.shape[1])),
                                   ("Latif segment archive", segments, (CHUNK_SEGMENTS,) + segments.shape[1:])):
            results = {name: measure(Path(tmp), name, data, chunks, filters, args.repeat)
                       for name, filters in codecs.items()}
            gzip_write, gzip_read, gzip_mb = results["gzip"]
            print(f"\n{what}:\n{'codec':<40}{'write s':>9}{'read s':>9}{'MB':>8}"
                  f"{'write x gzip':>14}{'read x gzip':>13}{'size / gzip':>13}{'write x RT':>12}")
            for name, (write_s, read_s, mb) in results.items():
                print(f"{name:<40}{write_s:>9.3f}{read_s:>9.3f}{mb:>8.1f}{gzip_write / write_s:>14.1f}"
                      f"{gzip_read / read_s:>13.1f}{mb / gzip_mb:>13.2f}{seconds / write_s:>12.0f}")


if __name__ == "__main__":
    main()
