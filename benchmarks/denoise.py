"""RNNoise denoising throughput on one core (the T-DNN-NR stage, paper §7.4.1).

Usage (from the repository root)::

    .venv/bin/python benchmarks/denoise.py [--data ../shared/data] [--limit N] [--repeat 1]

On the shared RAVDESS utterances (actors 01-10, 16 kHz), audio in memory:
  (a) ``rnnoise_denoise`` end to end: 16 -> 48 kHz (soxr HQ), RNNoise frame by frame, delay
      compensation, 48 -> 16 kHz;
  (b) its parts: the two resamplings alone, and RNNoise alone on the 48 kHz audio;
  (c) the per-utterance measures of a test-pool job (STOI and wide-band PESQ of the noisy and the
      denoised utterance against the clean one), on a sample of ``--measure`` utterances.
"x RT" = seconds of (16 kHz) audio per wall second; best of ``--repeat`` passes after one
untimed warm-up on the first utterances.
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy loads (see benchmarks/prepare.py).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import best_of, corpus_parser, ravdess_files  # noqa: E402
from sernoise import denoise  # noqa: E402
from sernoise.quality import measure_pesq, measure_stoi  # noqa: E402


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=1)
    parser.add_argument("--measure", type=int, default=50, help="utterances for the STOI/PESQ timing")
    args = parser.parse_args()

    paths = ravdess_files(args.data, args.limit)
    audio = []
    for p in paths:
        x, sr = sf.read(p, dtype="float32")
        if sr != denoise.SAMPLE_RATE:
            x = denoise._resample(x, sr, denoise.SAMPLE_RATE)
        audio.append(x)
    seconds = sum(len(x) for x in audio) / denoise.SAMPLE_RATE
    print(f"{len(paths)} utterances, {seconds:.0f} s of audio; 1 core (OMP/BLAS threads pinned to 1); "
          f"{denoise.rnnoise_version()}, delay compensated {denoise.DELAY_48K} samples at 48 kHz "
          f"(measured now: {denoise.measure_delay()})")

    for x in audio[:3]:  # warm-up: library load, soxr plans
        denoise.rnnoise_denoise(x)
    full = best_of(args.repeat, lambda: [denoise.rnnoise_denoise(x) for x in audio])
    up = [denoise._resample(x, 16000, 48000) * np.float32(32768) for x in audio]
    resample = best_of(args.repeat, lambda: [denoise._resample(denoise._resample(x, 16000, 48000), 48000, 16000)
                                             for x in audio])
    rnn = best_of(args.repeat, lambda: [denoise.rnnoise_48k(x) for x in up])

    rng = np.random.default_rng(0)
    sample = audio[: args.measure]
    noisy = [x + 0.05 * rng.standard_normal(x.size).astype(np.float32) for x in sample]
    denoised = [denoise.rnnoise_denoise(y) for y in noisy]
    tick = time.perf_counter()
    for x, y, z in zip(sample, noisy, denoised):
        measure_stoi(x, y)
        measure_stoi(x, z)
    stoi = (time.perf_counter() - tick) / len(sample)
    tick = time.perf_counter()
    for x, y, z in zip(sample, noisy, denoised):
        measure_pesq(x, y)
        measure_pesq(x, z)
    pesq = (time.perf_counter() - tick) / len(sample)

    print(f"\n{'case':<52}{'s':>8}{'utt/s':>9}{'x RT':>8}")
    for name, t in (("(a) rnnoise_denoise (resampling + RNNoise)", full),
                    ("(b) soxr HQ 16->48->16 kHz only", resample),
                    ("(b) RNNoise only (48 kHz, 480-sample frames)", rnn)):
        print(f"{name:<52}{t:>8.2f}{len(paths) / t:>9.1f}{seconds / t:>8.1f}")
    mean_len = seconds / len(paths)
    print(f"(c) STOI before+after: {stoi * 1e3:.0f} ms per utterance; wide-band PESQ before+after: "
          f"{pesq * 1e3:.0f} ms per utterance (mean length {mean_len:.2f} s)")
    print(f"a denoised dataset of this corpus: {full / len(paths) * 1440:.0f} s per 1440 utterances for RNNoise, "
          f"+{(stoi + pesq) * 1440:.0f} s with STOI and PESQ (test pool)")


if __name__ == "__main__":
    main()
