"""Feature extraction throughput on one core (T-DNN features: 40-d log Mel, 25 ms / 10 ms).

Usage (from the repository root)::

    .venv/bin/python benchmarks/features.py [--data ../shared/data] [--limit N] [--repeat 3]

Cases, on the shared RAVDESS utterances (actors 01-10, 16 kHz):
  (a) ``log_mel_fbank`` alone on audio already in memory;
  (b) the work of rule extract_clean_features: ``extract_store`` reading a prepared audio
      shard (written untimed beforehand) and writing the feature archive (float16, gzip);
  (c) the same in a fresh process, start-up included: the interpreter, the job's imports, its
      malloc policy (``sernoise.allocator``, as ``rule_log`` sets it), the audio index read as the
      job reads it, the Mel matrix and (b) (median of ``--repeat`` processes, and their peak
      resident memory; Snakemake's script preamble not included, see benchmarks/startup.py);
  (d) what a matched or mismatched T-DNN training loads: ``--scattered`` utterances drawn at random
      from each of 26 archives (the demo's condition count; here 26 copies of (b)'s archive),
      written with the archive's chunking (``features.CHUNK_FRAMES`` rows) and with the 8192 rows
      used before, side by side (reading is HDF5 decompressing every chunk it touches).
"x RT" = seconds of audio per wall second; the best of ``--repeat`` passes is reported
(one untimed warm-up pass first: Mel matrix, FFT plans).  The audio shard is compressed as the
default config's ``prepare.compression`` (gzip); ``--shard-compression lzf|none`` measures the others.
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy loads (see benchmarks/prepare.py).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import best_of, corpus_parser, ravdess_files  # noqa: E402
from sernoise.allocator import use_heap_for_large_blocks  # noqa: E402
from sernoise.audio_store import AudioStore  # noqa: E402
from sernoise.features import (  # noqa: E402
    CHUNK_FRAMES, FeatureArchive, extract_store, log_mel_fbank, write_feature_archive,
)
from sernoise.prepare import prepare_shard  # noqa: E402


FRESH_JOB = """
from sernoise.allocator import use_heap_for_large_blocks
use_heap_for_large_blocks()
from sernoise.audio_store import AudioStore
from sernoise.features import extract_store
extract_store(AudioStore.from_index({index!r}), {out!r})
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def fresh_process(tmp: Path) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one new Python process doing what an extract_clean_features job does."""
    code = FRESH_JOB.format(index=str(tmp / "index.csv"), out=str(tmp / "fresh.h5"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stdout.split()[-1]) / 1024  # the process's own high-water mark (VmHWM, kB)


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=3)
    parser.add_argument("--scattered", type=int, default=15, help="utterances read from each archive in (d)")
    parser.add_argument("--shard-compression", choices=["gzip", "lzf", "none"], default="gzip",
                        help="the audio shard's compression (config prepare.compression; default gzip)")
    args = parser.parse_args()
    use_heap_for_large_blocks()  # the jobs' malloc policy (rule_log sets it in every job)

    paths = ravdess_files(args.data, args.limit)
    audio = [sf.read(p, dtype="float32")[0] for p in paths]
    seconds = sum(len(x) for x in audio) / 16000
    print(f"{len(paths)} utterances, {seconds:.0f} s of audio; 1 core (OMP/BLAS threads pinned to 1)")

    fbank = best_of(args.repeat, lambda: [log_mel_fbank(x) for x in audio], warmup=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = pd.DataFrame({"utt_id": [p.stem for p in paths], "path": [str(p) for p in paths]})
        compression = None if args.shard_compression == "none" else args.shard_compression
        prepare_shard(rows, tmp / "shard.h5", tmp / "index.csv", tmp / "rejects.csv", compression=compression,
                      progress=False)
        store = AudioStore([tmp / "shard.h5"])
        job = best_of(args.repeat, lambda: extract_store(store, tmp / "features.h5"), warmup=True)
        size = (tmp / "features.h5").stat().st_size / 1e6
        runs = [fresh_process(tmp) for _ in range(args.repeat)]
        fresh, fresh_peak_mb = statistics.median(t for t, _ in runs), max(mb for _, mb in runs)
        scattered = scattered_reads(tmp, FeatureArchive(tmp / "features.h5"), args.scattered, args.repeat)

    print(f"\n{'case':<44}{'s':>8}{'utt/s':>10}{'x RT':>9}")
    for name, t in (("(a) log_mel_fbank (audio in memory)", fbank),
                    ("(b) extract_store: shard -> archive", job),
                    ("(c) (b) in a fresh process, start-up included", fresh)):
        print(f"{name:<44}{t:>8.2f}{len(paths) / t:>10.0f}{seconds / t:>9.0f}")
    print(f"archive: {size:.1f} MB ({size * 1e6 / len(paths) / 1e3:.0f} kB per utterance); audio shard "
          f"{args.shard_compression}; peak resident memory of (c): {fresh_peak_mb:.0f} MB")
    print(f"\n(d) {args.scattered} scattered utterances from each of {N_ARCHIVES} archives:")
    for chunk, (t, mb) in scattered.items():
        print(f"    chunks of {chunk:>5} rows: {t:.3f} s ({mb:.2f} MB per archive)")


N_ARCHIVES = 26


def scattered_reads(tmp: Path, archive, count: int, repeat: int) -> dict:
    """chunk rows -> (best seconds to read ``count`` random utterances from each of N_ARCHIVES archives, MB)."""
    items = list(archive.read_many(archive.utt_ids).items())
    rng = np.random.default_rng(0)
    picks = [list(rng.choice(archive.utt_ids, size=min(count, len(items)), replace=False)) for _ in range(N_ARCHIVES)]
    result = {}
    for chunk in (CHUNK_FRAMES, 8192):
        paths = [tmp / f"scattered-{chunk}-{i}.h5" for i in range(N_ARCHIVES)]
        for path in paths:
            write_feature_archive(path, items, chunk_frames=chunk)
        seconds = best_of(repeat, lambda paths=paths: [FeatureArchive(path).read_many(wanted)
                                                       for path, wanted in zip(paths, picks)], warmup=True)
        result[chunk] = (seconds, paths[0].stat().st_size / 1e6)
    return result


if __name__ == "__main__":
    main()
