"""Feature extraction throughput on one core (T-DNN features: 40-d log Mel, 25 ms / 10 ms), per HDF5 codec.

Usage (from the repository root)::

    .venv/bin/python benchmarks/features.py [--data ../shared/data] [--limit N] [--repeat 3]
        [--compression gzip bitshuffle-lz4]

Cases, on the shared RAVDESS utterances (actors 01-10, 16 kHz):
  (a) ``log_mel_fbank`` alone on audio already in memory;
  (b) the work of rule extract_clean_features: ``extract_store`` reading a prepared audio
      shard (written untimed beforehand) and writing the feature archive (float16);
  (c) the same in a fresh process, start-up included: the interpreter, the job's imports, its
      malloc policy (``sernoise.allocator``, as ``rule_log`` sets it), the audio index read as the
      job reads it, the Mel matrix and (b) (median of ``--repeat`` processes, and their peak
      resident memory; Snakemake's script preamble not included, see benchmarks/startup.py);
  (d) what a matched or mismatched T-DNN training loads: ``--scattered`` utterances drawn at random
      from each of 26 archives (the demo's condition count; here 26 copies of (b)'s archive),
      written with the archive's chunking (``features.CHUNK_FRAMES`` rows) and with the 8192 rows
      used before, side by side (reading is HDF5 decompressing every chunk it touches).
(b)-(d) run once per ``--compression`` (config ``prepare.compression``: the codec of the audio shard
and of the archive, as in the workflow; default: gzip, the codec before, and bitshuffle-lz4, the
default now), and the last table puts each codec's times beside the first's.
"x RT" = seconds of audio per wall second; the best of ``--repeat`` passes is reported
(one untimed warm-up pass first: Mel matrix, FFT plans).
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
from sernoise.hdf5_codecs import COMPRESSIONS  # noqa: E402
from sernoise.prepare import prepare_shard  # noqa: E402


FRESH_JOB = """
from sernoise.allocator import use_heap_for_large_blocks
use_heap_for_large_blocks()
from sernoise.audio_store import AudioStore
from sernoise.features import extract_store
extract_store(AudioStore.from_index({index!r}), {out!r}, compression={compression!r})
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def fresh_process(tmp: Path, compression: str) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one new Python process doing what an extract_clean_features job does."""
    code = FRESH_JOB.format(index=str(tmp / "index.csv"), out=str(tmp / "fresh.h5"), compression=compression)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stdout.split()[-1]) / 1024  # the process's own high-water mark (VmHWM, kB)


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=3)
    parser.add_argument("--scattered", type=int, default=15, help="utterances read from each archive in (d)")
    parser.add_argument("--compression", nargs="+", choices=COMPRESSIONS, default=["gzip", "bitshuffle-lz4"],
                        help="codecs of the audio shard and the archive to measure (config prepare.compression)")
    args = parser.parse_args()
    use_heap_for_large_blocks()  # the jobs' malloc policy (rule_log sets it in every job)

    paths = ravdess_files(args.data, args.limit)
    audio = [sf.read(p, dtype="float32")[0] for p in paths]
    seconds = sum(len(x) for x in audio) / 16000
    print(f"{len(paths)} utterances, {seconds:.0f} s of audio; 1 core (OMP/BLAS threads pinned to 1)")

    fbank = best_of(args.repeat, lambda: [log_mel_fbank(x) for x in audio], warmup=True)
    print(f"\n(a) log_mel_fbank (audio in memory): {fbank:.2f} s, {len(paths) / fbank:.0f} utt/s, "
          f"{seconds / fbank:.0f} x real time")
    rows = pd.DataFrame({"utt_id": [p.stem for p in paths], "path": [str(p) for p in paths]})
    results = {}
    for codec in args.compression:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            prepare_shard(rows, tmp / "shard.h5", tmp / "index.csv", tmp / "rejects.csv", compression=codec,
                          progress=False)
            store = AudioStore([tmp / "shard.h5"])
            job = best_of(args.repeat, lambda store=store, out=tmp / "features.h5", codec=codec:
                          extract_store(store, out, compression=codec), warmup=True)
            runs = [fresh_process(tmp, codec) for _ in range(args.repeat)]
            archive = FeatureArchive(tmp / "features.h5")
            results[codec] = {
                "(b) extract_store: shard -> archive": job,
                "(c) (b) in a fresh process, start-up included": statistics.median(t for t, _ in runs),
                **{f"(d) {args.scattered} scattered utt x {N_ARCHIVES} archives, {chunk}-row chunks": t
                   for chunk, (t, _) in scattered_reads(tmp, archive, args.scattered, args.repeat, codec).items()},
            }
            print(f"\n{codec}: audio shard {(tmp / 'shard.h5').stat().st_size / 1e6:.1f} MB, archive "
                  f"{(tmp / 'features.h5').stat().st_size / 1e6:.1f} MB; peak resident memory of (c): "
                  f"{max(mb for _, mb in runs):.0f} MB")
            print(f"{'case':<64}{'s':>8}{'utt/s':>10}{'x RT':>9}")
            for name, t in list(results[codec].items())[:2]:
                print(f"{name:<64}{t:>8.2f}{len(paths) / t:>10.0f}{seconds / t:>9.0f}")
            for name, t in list(results[codec].items())[2:]:
                print(f"{name:<64}{t:>8.3f}")

    first = args.compression[0]
    if len(results) > 1:
        print(f"\nseconds per codec, and {first}'s time / each codec's time:")
        print(f"{'case':<64}" + "".join(f"{codec:>16}" for codec in results) + "".join(
            f"{'x vs ' + first:>16}" for codec in list(results)[1:]))
        for name in results[first]:
            times = [results[codec][name] for codec in results]
            print(f"{name:<64}" + "".join(f"{t:>16.3f}" for t in times)
                  + "".join(f"{results[first][name] / t:>16.2f}" for t in times[1:]))


N_ARCHIVES = 26


def scattered_reads(tmp: Path, archive, count: int, repeat: int, compression: str) -> dict:
    """chunk rows -> (best seconds to read ``count`` random utterances from each of N_ARCHIVES archives, MB)."""
    items = list(archive.read_many(archive.utt_ids).items())
    rng = np.random.default_rng(0)
    picks = [list(rng.choice(archive.utt_ids, size=min(count, len(items)), replace=False)) for _ in range(N_ARCHIVES)]
    result = {}
    for chunk in (CHUNK_FRAMES, 8192):
        paths = [tmp / f"scattered-{chunk}-{i}.h5" for i in range(N_ARCHIVES)]
        for path in paths:
            write_feature_archive(path, items, chunk_frames=chunk, compression=compression)
        seconds = best_of(repeat, lambda paths=paths: [FeatureArchive(path).read_many(wanted)
                                                       for path, wanted in zip(paths, picks)], warmup=True)
        result[chunk] = (seconds, paths[0].stat().st_size / 1e6)
    return result


if __name__ == "__main__":
    main()
