"""RNNoise and DeepFilterNet3 denoising throughput on one core (the T-DNN-NR and tdnn_dfn3 stages, paper §7.4.1).

Usage (from the repository root)::

    .venv/bin/python benchmarks/denoise.py [--data ../shared/data] [--limit N] [--repeat 1] [--dfn3-only]

On the shared RAVDESS utterances (actors 01-10, 16 kHz), audio in memory:
  (a) ``rnnoise_denoise`` end to end: 16 -> 48 kHz (soxr HQ), RNNoise frame by frame, delay
      compensation, 48 -> 16 kHz;
  (b) its parts: the two resamplings alone, and RNNoise alone on the 48 kHz audio;
  (c) the per-utterance measures of a test-pool job (STOI and wide-band PESQ of the noisy and the
      denoised utterance against the clean one), on a sample of ``--measure`` utterances;
  (d) ``dfn3_denoise`` end to end (same resampling, DeepFilterNet3 with a fresh state per
      utterance) with each engine (``denoise.dfn3.engine``): ``onnxruntime`` (the default; the
      model over the whole utterance, :mod:`sernoise.dfn3_onnx`) and ``tract`` (libDF's runtime
      hop by hop); DFN3 alone at 48 kHz with ONNX Runtime and with tract both ways of getting
      that fresh state (a forked copy of one never-used state, the tract engine's way, and
      ``df_create`` per utterance), the CPU ratio tract / onnxruntime, and the one-off costs
      (ONNX Runtime sessions, tract state creation);
  (e) what each denoiser does to ``--compare`` utterances mixed with a real soundscape
      (``noise/soundscapes_cc0``, rain and city, 0 dB): difference SNR and STOI against the clean one;
  (f) how closely the onnxruntime engine gives the tract engine's output: ``--agree`` RAVDESS
      utterances spread over the actors, clean and with a soundscape at -5, 0, 10, 20 dB, a
      click, silence, odd lengths; difference SNR, largest sample difference, largest local-SNR
      difference.
``--dfn3-only`` runs (d) and (f) alone.
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
from sernoise import denoise, dfn3_onnx  # noqa: E402
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


def rnnoise_sections(args, paths, audio, seconds) -> None:
    """(a)-(c): RNNoise end to end and its parts, and the STOI/PESQ measures of a job."""
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


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=1)
    parser.add_argument("--measure", type=int, default=50, help="utterances for the STOI/PESQ timing")
    parser.add_argument("--compare", type=int, default=20, help="utterances for the SNR/STOI comparison (e)")
    parser.add_argument("--agree", type=int, default=10, help="utterances for the DFN3 engine agreement (f)")
    parser.add_argument("--dfn3-only", action="store_true", help="only DFN3: (d) and (f)")
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

    if not args.dfn3_only:
        rnnoise_sections(args, paths, audio, seconds)

    # (d) DeepFilterNet3, same audio, same resampling, both engines
    for engine in denoise.DFN3_ENGINES:
        print(f"\n{denoise.dfn3_version(engine)}: delay compensated {denoise.DFN3_DELAY_48K} samples at 48 kHz "
              f"(measured now: {denoise.measure_dfn3_delay(engine)})", end="")
    print()
    for x in audio[:3]:
        for engine in denoise.DFN3_ENGINES:
            denoise.dfn3_denoise(x, engine=engine)
    if not args.dfn3_only:
        rnn = timed(args.repeat, lambda: [denoise.rnnoise_denoise(x) for x in audio])
    ort = timed(args.repeat, lambda: [denoise.dfn3_denoise(x, engine="onnxruntime") for x in audio])
    tract = timed(args.repeat, lambda: [denoise.dfn3_denoise(x, engine="tract") for x in audio])
    # model alone: what dfn3_denoise hands the engine (48 kHz, peak 0.5, DFN3_DELAY_48K zeros appended)
    up48 = [padded48(x) for x in audio]
    ort48 = timed(args.repeat, lambda: [denoise.dfn3_48k_engine(x, engine="onnxruntime") for x in up48])
    dfn48 = timed(args.repeat, lambda: [denoise.dfn3_48k(x, isolation="fork") for x in up48])
    created = timed(args.repeat, lambda: [denoise.dfn3_48k(x, isolation="create") for x in up48])
    lib, model = denoise._dfn3()
    create_wall, _ = timed(1, lambda: [lib.df_free(lib.df_create(model, 100.0, None)) for _ in range(10)])
    sessions_wall, sessions_cpu = timed(1, lambda: (dfn3_onnx.sessions.cache_clear(),
                                                    dfn3_onnx.sessions(denoise._dfn3_model_path())))
    # RTF on CPU time (process + forked children): on a shared machine the wall time also counts the waits for a core
    print(f"\n{'case (one core)':<60}{'s':>8}{'x RT':>8}{'RTF':>8}{'cpu/wall':>10}{'RTF cpu':>9}")
    rows = [] if args.dfn3_only else [("RNNoise end to end (rnnoise_denoise)", rnn)]
    rows += [("DFN3 end to end, onnxruntime engine (dfn3_denoise, default)", ort),
             ("DFN3 end to end, tract engine (dfn3_denoise)", tract),
             ("DFN3 alone at 48 kHz, onnxruntime, whole utterance", ort48),
             ("DFN3 alone at 48 kHz, tract, forked copy of a fresh state", dfn48),
             ("DFN3 alone at 48 kHz, tract, df_create per utterance", created)]
    for name, (wall, cpu) in rows:
        print(f"{name:<60}{wall:>8.2f}{seconds / wall:>8.1f}{wall / seconds:>8.3f}{cpu / wall:>10.2f}"
              f"{cpu / seconds:>9.3f}")
    print(f"CPU time tract / onnxruntime: {tract[1] / ort[1]:.1f}x end to end, {dfn48[1] / ort48[1]:.1f}x the model "
          f"alone at 48 kHz; resampling and the rest of dfn3_denoise: {(ort[1] - ort48[1]) / seconds:.3f} RTF cpu")
    print(f"once per process: onnxruntime sessions {sessions_cpu * 1e3:.0f} ms CPU; "
          f"tract state creation (df_create + df_free) {create_wall / 10 * 1e3:.0f} ms, which a forked copy of one "
          f"fresh state saves per utterance ({created[0] / dfn48[0]:.2f}x faster at 48 kHz)")
    print("a denoised dataset of 1440 utterances, CPU: "
          + ("" if args.dfn3_only else f"{rnn[1] / len(paths) * 1440:.0f} s with RNNoise, ")
          + f"{ort[1] / len(paths) * 1440:.0f} s with DFN3 onnxruntime, {tract[1] / len(paths) * 1440:.0f} s with "
          f"DFN3 tract")
    if args.dfn3_only:
        engine_agreement(args)
        return

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
    engine_agreement(args)


def padded48(x16: np.ndarray) -> np.ndarray:
    """What dfn3_denoise hands the DFN3 engine: 48 kHz, peak DFN3_PEAK, DFN3_DELAY_48K zeros appended."""
    x48 = denoise._resample(x16, denoise.SAMPLE_RATE, 48000)
    peak = float(np.abs(x48).max())
    out = np.zeros(x48.size + denoise.DFN3_DELAY_48K, dtype=np.float32)
    out[: x48.size] = x48 * np.float32(denoise.DFN3_PEAK / peak if peak > 0 else 1.0)
    return out


def engine_agreement(args) -> None:
    """(f) the onnxruntime engine against the tract engine on the same 48 kHz input (dfn3_48k_engine):
    difference SNR 10 log10(P_tract / P_(ort - tract)) over the whole output, its largest sample,
    and the largest difference of the per-hop local SNRs, per condition."""
    every = ravdess_files(args.data)
    picked = every[:: max(1, len(every) // args.agree)][: args.agree]  # spread over the actors
    noises = {}
    for name in ("rain", "city", "wind"):
        noise, sr = sf.read(args.data / "noise" / "soundscapes_cc0" / f"{name}.wav", dtype="float32", always_2d=True)
        noises[name] = denoise._resample(noise.mean(axis=1), sr, denoise.SAMPLE_RATE)
    cases: dict[str, list[np.ndarray]] = {}
    for k, path in enumerate(picked):
        x, sr = sf.read(path, dtype="float32")
        x = x if sr == denoise.SAMPLE_RATE else denoise._resample(x, sr, denoise.SAMPLE_RATE)
        noise = noises[list(noises)[k % len(noises)]]
        start = (k * 7919) % max(1, noise.size - x.size)
        n = np.resize(noise[start:], x.size)
        cases.setdefault("clean speech", []).append(padded48(x))
        for snr in (-5, 0, 10, 20):
            y = (x + n * np.sqrt(np.mean(x**2) / np.mean(n**2) / 10 ** (snr / 10))).astype(np.float32)
            cases.setdefault(f"speech + soundscape {snr:+d} dB", []).append(padded48(y))
    click = np.zeros(48000 + 4 * denoise.DFN3_DELAY_48K, dtype=np.float32)
    click[24000] = 0.5
    cases["click (0.5 in 1 s of silence)"] = [click]
    cases["digital silence (1 s)"] = [np.zeros(48000, dtype=np.float32)]
    rng = np.random.default_rng(0)
    cases["white noise, odd lengths 1/479/481/16001 at 16 kHz"] = [
        padded48((rng.standard_normal(n) * 0.05).astype(np.float32)) for n in (1, 479, 481, 16001)]
    print(f"\n(f) onnxruntime engine against tract, same 48 kHz input: {len(picked)} RAVDESS utterances (actors "
          f"spread), soundscapes rain/city/wind in turn")
    print(f"{'condition':<52}{'n':>4}{'dSNR min':>10}{'median':>9}{'max |diff|':>12}{'lsnr |diff| max':>17}")
    for name, inputs in cases.items():
        snrs, peaks, lsnrs = [], [], []
        for x48 in inputs:
            y_tract, l_tract = denoise.dfn3_48k_engine(x48, engine="tract")
            y_ort, l_ort = denoise.dfn3_48k_engine(x48, engine="onnxruntime")
            diff = y_ort.astype(np.float64) - y_tract
            p_diff = float(np.mean(diff**2))
            snrs.append(np.inf if p_diff == 0 else 10 * np.log10(float(np.mean(y_tract.astype(np.float64) ** 2)) / p_diff))
            peaks.append(float(np.abs(diff).max()))
            lsnrs.append(float(np.abs(l_ort - l_tract).max()))
        print(f"{name:<52}{len(inputs):>4}{min(snrs):>10.1f}{np.median(snrs):>9.1f}{max(peaks):>12.1e}"
              f"{max(lsnrs):>17.1e}")


if __name__ == "__main__":
    main()
