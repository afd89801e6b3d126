"""Preparation throughput on one core: decode + check + resample + shard-write.

Usage (from the repository root)::

    .venv/bin/python benchmarks/prepare.py [--data ../shared/data] [--limit N]

Cases:
  (a) the shared RAVDESS files as they are (16 kHz mono 16-bit: no resampling);
  (b) the same files converted beforehand (untimed) to 48 kHz stereo 24-bit in a temp
      folder, so channel mixing and 48k -> 16k resampling are measured.
Also times reading the resulting shard back (per utterance, and one bulk read).
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy/soxr load, so the numbers are per-core
# and comparable with the per-job cost in a Snakemake run with --cores N.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from sernoise.audio_store import AudioShard  # noqa: E402
from sernoise.hdf5_codecs import COMPRESSIONS, DEFAULT_COMPRESSION  # noqa: E402
from sernoise.prepare import prepare_shard  # noqa: E402


def _convert_48k_stereo_24bit(paths: list[Path], out_dir: Path) -> list[Path]:
    """Untimed set-up for case (b): upsample to 48 kHz, two (slightly different) channels, 24-bit."""
    out = []
    for p in paths:
        x, sr = sf.read(p, dtype="float32")
        y = soxr.resample(x, sr, 48000, quality="HQ")
        stereo = np.stack([y, 0.9 * y], axis=1)
        target = out_dir / p.name
        sf.write(target, stereo, 48000, subtype="PCM_24")
        out.append(target)
    return out


def _run(label: str, paths: list[Path], work: Path, compression: str) -> dict:
    rows = pd.DataFrame({"utt_id": [p.stem for p in paths], "path": [str(p) for p in paths]})
    shard = work / f"{label}.h5"
    stats = prepare_shard(rows, shard, work / f"{label}_index.csv", work / f"{label}_rejects.csv",
                          compression=compression, progress=False)
    stats["label"] = label
    stats["shard_mb"] = shard.stat().st_size / 1e6
    stats["source_mb"] = sum(p.stat().st_size for p in paths) / 1e6
    return stats


def _read_back(shard_path: Path) -> tuple[float, float]:
    shard = AudioShard(shard_path)
    ids = shard.utt_ids
    t0 = time.perf_counter()
    for u in ids:
        shard.read(u)
    per_utt = time.perf_counter() - t0
    shard.close()
    shard = AudioShard(shard_path)
    _ = shard.utt_ids  # metadata load is not the bulk read being timed
    t0 = time.perf_counter()
    shard.read_all()
    bulk = time.perf_counter() - t0
    return per_utt, bulk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="shared data folder (default: ../shared/data relative to the repository root)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    parser.add_argument("--compression", default=DEFAULT_COMPRESSION, choices=COMPRESSIONS)
    args = parser.parse_args()

    root = args.data / "ravdess" / "Audio_Speech_Actors_01-24"
    paths = sorted(root.glob("Actor_*/*.wav"))
    if not paths:
        sys.exit(f"{root}: no RAVDESS wav files found (pass --data)")
    if args.limit:
        paths = paths[: args.limit]

    with tempfile.TemporaryDirectory(prefix="sernoise_bench_") as tmp:
        tmp = Path(tmp)
        converted_dir = tmp / "wav48k"
        converted_dir.mkdir()
        converted = _convert_48k_stereo_24bit(paths, converted_dir)
        # Warm-up (imports, page cache, soxr plan) so case (a) is not charged for it.
        _run("warmup", paths[:5], tmp, args.compression)
        _run("warmup48", converted[:5], tmp, args.compression)

        results = [
            _run("a_16k_mono_16bit", paths, tmp, args.compression),
            _run("b_48k_stereo_24bit", converted, tmp, args.compression),
        ]
        read_per_utt, read_bulk = _read_back(tmp / "a_16k_mono_16bit.h5")

    print(f"preparation throughput, 1 core, {len(paths)} RAVDESS files, compression={args.compression}")
    header = f"{'case':<20} {'ok':>4} {'rej':>4} {'audio s':>8} {'wall s':>7} {'utt/s':>7} {'x RT':>7} {'src MB':>7} {'shard MB':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['label']:<20} {r['n_ok']:>4} {r['n_rejected']:>4} {r['audio_seconds']:>8.1f} "
              f"{r['wall_seconds']:>7.2f} {(r['n_ok'] + r['n_rejected']) / r['wall_seconds']:>7.1f} "
              f"{r['audio_seconds'] / r['wall_seconds']:>7.0f} {r['source_mb']:>7.1f} {r['shard_mb']:>8.1f}")
    a, b = results
    print(f"ratio wall (b)/(a): {b['wall_seconds'] / a['wall_seconds']:.2f}x "
          f"(cost of 48 kHz stereo 24-bit decode + resample)")
    print(f"shard size / 16-bit source size (a): {a['shard_mb'] / a['source_mb']:.2f}")
    audio = a["audio_seconds"]
    print(f"read back (a): per-utterance {read_per_utt:.3f} s ({audio / read_per_utt:.0f}x RT), "
          f"read_all {read_bulk:.3f} s ({audio / read_bulk:.0f}x RT)")


if __name__ == "__main__":
    main()
