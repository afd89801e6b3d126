"""RNNoise and DeepFilterNet3 denoising throughput on one core (the T-DNN-NR and tdnn_dfn3 stages, paper §7.4.1).

Usage (from the repository root)::

    .venv/bin/python benchmarks/denoise.py [--data ../shared/data] [--limit N] [--repeat 1]

On the shared RAVDESS utterances (actors 01-10, 16 kHz), audio in memory:
  (a) ``rnnoise_denoise`` end to end: 16 -> 48 kHz (soxr HQ), RNNoise frame by frame, delay
      compensation, 48 -> 16 kHz;
  (b) its parts: the two resamplings alone, and RNNoise alone on the 48 kHz audio;
  (c) the per-utterance measures of a test-pool job (STOI and wide-band PESQ of the noisy and the
      denoised utterance against the clean one), on a sample of ``--measure`` utterances;
  (d) ``dfn3_denoise`` end to end (same resampling, DeepFilterNet3 with a fresh state per
      utterance), DFN3 alone at 48 kHz both ways of getting that fresh state (a forked copy of
      one never-used state, the workflow's way, and ``df_create`` per utterance), and the
      state creation alone;
  (e) what each denoiser does to ``--compare`` utterances mixed with a real soundscape
      (``noise/soundscapes_cc0``, rain and city, 0 dB): difference SNR and STOI against the clean one.
"x RT" = seconds of (16 kHz) audio per wall second, "RTF" its inverse (wall seconds per second of
audio); "cpu/wall" shows that one core did the work (CPU time includes the forked children's).  Best of ``--repeat`` passes after one
untimed warm-up on the first utterances.
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy loads (see benchmarks/prepare.py).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "RAYON_NUM_THREADS"):  # DFN3's runtime is Rust (tract): pin a rayon pool too, should it use one
    os.environ[_var] = "1"

import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import best_of, corpus_parser, ravdess_files  # noqa: E402
from sernoise import denoise  # noqa: E402
from sernoise.conditions.snr import difference_snr  # noqa: E402
from sernoise.quality import measure_pesq, measure_stoi  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DFN3 runs each utterance in a forked child)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(repeat: int, fn) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that pass, children included) of ``repeat`` calls of ``fn``."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        fn()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        best = min(best, (wall, cpu))
    return best


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=1)
    parser.add_argument("--measure", type=int, default=50, help="utterances for the STOI/PESQ timing")
    parser.add_argument("--compare", type=int, default=20, help="utterances for the SNR/STOI comparison (e)")
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

    # (d) DeepFilterNet3, same audio, same resampling
    print(f"\n{denoise.dfn3_version()}, delay compensated {denoise.DFN3_DELAY_48K} samples at 48 kHz "
          f"(measured now: {denoise.measure_dfn3_delay()})")
    for x in audio[:3]:
        denoise.dfn3_denoise(x)
    rnn_wall, rnn_cpu = timed(args.repeat, lambda: [denoise.rnnoise_denoise(x) for x in audio])
    dfn_wall, dfn_cpu = timed(args.repeat, lambda: [denoise.dfn3_denoise(x) for x in audio])
    up48 = [denoise._resample(x, 16000, 48000) for x in audio]
    dfn48_wall, dfn48_cpu = timed(args.repeat, lambda: [denoise.dfn3_48k(x, isolation="fork") for x in up48])
    created_wall, created_cpu = timed(args.repeat, lambda: [denoise.dfn3_48k(x, isolation="create") for x in up48])
    lib, model = denoise._dfn3()
    create_wall, _ = timed(1, lambda: [lib.df_free(lib.df_create(model, 100.0, None)) for _ in range(10)])
    # RTF on CPU time as well: on a shared machine the wall time also counts the waits for a core
    print(f"\n{'case (one core)':<52}{'s':>8}{'x RT':>8}{'RTF':>8}{'cpu/wall':>10}{'RTF cpu':>9}")
    for name, wall, cpu in (("RNNoise end to end (rnnoise_denoise)", rnn_wall, rnn_cpu),
                            ("DFN3 end to end (dfn3_denoise)", dfn_wall, dfn_cpu),
                            ("DFN3 alone at 48 kHz, forked copy of a fresh state", dfn48_wall, dfn48_cpu),
                            ("DFN3 alone at 48 kHz, df_create per utterance", created_wall, created_cpu)):
        print(f"{name:<52}{wall:>8.2f}{seconds / wall:>8.1f}{wall / seconds:>8.3f}{cpu / wall:>10.2f}"
              f"{cpu / seconds:>9.3f}")
    print(f"DFN3 state creation (df_create + df_free): {create_wall / 10 * 1e3:.0f} ms per utterance; "
          f"a forked copy of one fresh state instead (the workflow's way): "
          f"{(created_wall - dfn48_wall) / len(paths) * 1e3:.0f} ms per utterance less, "
          f"{created_wall / dfn48_wall:.2f}x faster at 48 kHz")
    print(f"a denoised dataset of 1440 utterances: {rnn_wall / len(paths) * 1440:.0f} s with RNNoise, "
          f"{dfn_wall / len(paths) * 1440:.0f} s with DFN3")

    # (e) what each does to real noise: a soundscape at 0 dB
    sample = audio[: args.compare]
    print(f"\n(e) {len(sample)} utterances + a soundscape at 0 dB SNR: mean difference SNR (dB) and STOI")
    print(f"{'noise':<8}{'SNR noisy':>10}{'RNNoise':>9}{'DFN3':>8}{'STOI noisy':>12}{'RNNoise':>9}{'DFN3':>8}")
    for name in ("rain", "city"):
        noise, sr = sf.read(args.data / "noise" / "soundscapes_cc0" / f"{name}.wav", dtype="float32", always_2d=True)
        noise = denoise._resample(noise.mean(axis=1), sr, denoise.SAMPLE_RATE)
        rows = []
        for k, x in enumerate(sample):
            start = (k * 7919) % max(1, noise.size - x.size)
            n = np.resize(noise[start:], x.size)
            y = (x + n * np.sqrt(np.mean(x**2) / np.mean(n**2))).astype(np.float32)
            outs = (y, denoise.rnnoise_denoise(y), denoise.dfn3_denoise(y))
            rows.append([difference_snr(x, o) for o in outs] + [measure_stoi(x, o)[0] for o in outs])
        means = np.nanmean(np.array(rows, dtype=float), axis=0)
        print(f"{name:<8}{means[0]:>10.2f}{means[1]:>9.2f}{means[2]:>8.2f}{means[3]:>12.3f}{means[4]:>9.3f}{means[5]:>8.3f}")


if __name__ == "__main__":
    main()
