"""Cost of the quality measures of augmented and denoised datasets on one core: STOI, wide-band
PESQ, DNSMOS (P.835 + P.808) and fwSNRseg, in ms per utterance, on RAVDESS clips in white noise at
10 dB (what the test pool's additive conditions look like).

Usage (from the repository root)::

    .venv/bin/python benchmarks/quality.py [--data ../shared/data] [--limit 40] [--repeat 1]

DNSMOS is timed twice, side by side: speechmos's own scorer (``measure_dnsmos(y,
method="speechmos")``: the P.835 model run whole on every window) and the default fast path
(``method="fast"``, :mod:`sernoise.dnsmos_fast`: its full-resolution convolutions run once over the
clip's windows); the last lines give the ratio and check that both gave the same scores.

What is timed: one call of each sernoise.quality measure per clip (``measure_stoi(x, y)``, ...),
summed over the clips; the best of ``--repeat`` passes is reported, as wall time and as this
process's CPU time (``time.process_time``; on a shared, loaded machine the CPU time is the figure
to trust, the wall time then includes waiting for a core).  Clip loading and the noise
mixing are outside the timer.  Every measure runs once untimed on the first clip first (imports,
numba/FFT caches, and for DNSMOS opening its two ONNX sessions and building the split P.835 model,
whose times are printed apart: a job pays them once).  BLAS/OpenMP pools and ONNX Runtime run one thread, as in a job (threads: 1).

A job pays more for its first DNSMOS score than for the next ones (imports, ONNX sessions, the
split P.835 model).  ``--setup-runs N`` (default 3; 0: skip) measures that in fresh interpreters,
as a workflow job starts: each imports sernoise.quality, then times ``measure_dnsmos`` twice on the
first clip (CPU time); first minus second is the one-off set-up.  The "fresh-process set-up" lines
give the median over N processes for the fast path with the split model cached (every job after
the first), with an empty cache (the first job: the split is cut with the onnx package and
written) and for speechmos's scorer.  The cache is a temporary folder (``SERNOISE_CACHE_DIR``).

DNSMOS scores 9.01 s windows at a 1 s hop, and repeats a shorter clip until it reaches 9.01 s
(speechmos, as the DNS Challenge's reference script): a 3.3 s RAVDESS clip becomes 13.2 s and 4
windows, a 4.6 s one 18.4 s and 9 hops, of which speechmos scores 7 (its window 7 .. 23 come out
a sample short in float arithmetic and are skipped), so its cost depends on the clip length; the
windows line gives the mean per clip.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import math  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from _common import REPO, corpus_parser, ravdess_files  # noqa: E402

from sernoise.quality import (  # noqa: E402
    METER_COLUMNS,
    dnsmos_fast_scorer,
    dnsmos_scorer,
    measure_dnsmos,
    measure_fwsnrseg,
    measure_pesq,
    measure_stoi,
)

SR = 16000
WINDOW = 9.01  # speechmos.dnsmos.INPUT_LENGTH


def dnsmos_windows(n_samples: int) -> int:
    """How many 9.01 s windows speechmos scores for a clip of ``n_samples`` (its repetition and hop;
    it skips a window whose float end ``int((idx + 9.01) * 16000)`` makes it a sample short)."""
    length = n_samples
    while length < int(WINDOW * SR):
        length *= 2
    hops = int(np.floor(length / SR) - WINDOW) + 1
    return sum(int((idx + WINDOW) * SR) - idx * SR >= int(WINDOW * SR) for idx in range(hops))


_FRESH_JOB = '''
import sys, time
import numpy as np
from sernoise.quality import measure_dnsmos
y = np.load(sys.argv[1])
times = []
for _ in range(2):
    tick = time.process_time()
    measure_dnsmos(y, method=sys.argv[2])
    times.append(time.process_time() - tick)
print(*times)
'''


def fresh_process_setup(y: np.ndarray, method: str, runs: int, cached: bool) -> tuple[float, float]:
    """Median CPU seconds of the first and the second ``measure_dnsmos(y, method)`` call in ``runs``
    fresh interpreters (one thread, as a job), the split model's cache warm or empty."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow" / "scripts"))
    firsts, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.npy"
        np.save(clip, y)

        def run(cache: Path) -> list[float]:
            out = subprocess.run([sys.executable, "-c", _FRESH_JOB, str(clip), method], check=True, text=True,
                                 capture_output=True, env=dict(env, SERNOISE_CACHE_DIR=str(cache))).stdout
            return [float(v) for v in out.split()]

        warm = Path(tmp) / "cache"
        if cached:
            run(warm)  # untimed: writes the split parts
        for i in range(runs):
            first, second = run(warm if cached else Path(tmp) / f"empty{i}")
            firsts.append(first)
            seconds.append(second)
    return statistics.median(firsts), statistics.median(seconds)


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=1)
    parser.add_argument("--setup-runs", type=int, default=3,
                        help="fresh processes per case for the DNSMOS set-up figures (0: skip)")
    args = parser.parse_args()
    paths = ravdess_files(args.data, args.limit if args.limit else 40)
    rng = np.random.default_rng(0)
    pairs = []
    for path in paths:
        x, sr = sf.read(path, dtype="float32")
        if sr != SR:
            raise SystemExit(f"{path}: {sr} Hz, expected {SR}")
        noise = rng.standard_normal(x.size)
        y = x + np.sqrt(np.mean(x.astype(float) ** 2) / 10) * noise
        pairs.append((x, (y / max(1.0, np.max(np.abs(y)))).astype(np.float32)))
    seconds = sum(x.size for x, _ in pairs) / SR

    tick = time.process_time()
    dnsmos_scorer()
    load = time.process_time() - tick
    tick = time.process_time()
    split_source = dnsmos_fast_scorer().split.source
    split = time.process_time() - tick
    speechmos, fast = "DNSMOS speechmos", "DNSMOS fast"
    measures = {
        "STOI": lambda x, y: measure_stoi(x, y),
        "PESQ (wide band)": lambda x, y: measure_pesq(x, y),
        speechmos: lambda x, y: measure_dnsmos(y, method="speechmos"),
        fast: lambda x, y: measure_dnsmos(y, method="fast"),
        "fwSNRseg": lambda x, y: measure_fwsnrseg(x, y),
    }
    windows = np.mean([dnsmos_windows(x.size) for x, _ in pairs])
    print(f"{len(pairs)} RAVDESS clips, {seconds:.1f} s of audio (mean {seconds / len(pairs):.2f} s), white noise at "
          f"10 dB; one thread; best of {args.repeat}")
    print(f"DNSMOS (P.835 + P.808): opening speechmos's two ONNX sessions took {load * 1000:.0f} ms of CPU, opening "
          f"the fast path's four {split * 1000:.0f} ms (its split P.835 model {split_source}; once per job); "
          f"{windows:.1f} windows of 9.01 s per clip on average")
    print(f"{'measure':<24} {'CPU ms / utt':>13} {'wall ms / utt':>14} {'CPU ms / s audio':>17} {'x real time (CPU)':>18}")
    cpu_per_utt, results = {}, {}
    for name, fn in measures.items():
        fn(*pairs[0])  # untimed: imports, caches
        best_wall = best_cpu = math.inf
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = [fn(x, y) for x, y in pairs]
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        cpu_per_utt[name] = best_cpu / len(pairs)
        print(f"{name:<24} {best_cpu / len(pairs) * 1000:>13.1f} {best_wall / len(pairs) * 1000:>14.1f} "
              f"{best_cpu / seconds * 1000:>17.1f} {seconds / best_cpu:>18.1f}")
    diff = max(abs(a[0][c] - b[0][c]) for a, b in zip(results[speechmos], results[fast]) for c in METER_COLUMNS["dnsmos"])
    same = sum(a == b for a, b in zip(results[speechmos], results[fast]))
    print(f"DNSMOS fast path: {cpu_per_utt[fast] * 1000:.0f} ms of CPU per utterance against speechmos's "
          f"{cpu_per_utt[speechmos] * 1000:.0f} ms, {cpu_per_utt[speechmos] / cpu_per_utt[fast]:.2f}x less; "
          f"scores identical on {same} of {len(pairs)} clips (max |difference| {diff:.3g})")
    for label, method, cached in (("fast, split model cached", "fast", True),
                                  ("fast, empty cache (first job)", "fast", False),
                                  ("speechmos's scorer", "speechmos", False)):
        if args.setup_runs <= 0:
            break
        first, second = fresh_process_setup(pairs[0][1], method, args.setup_runs, cached)
        print(f"fresh-process set-up, DNSMOS {label}: first call {first:.2f} s of CPU, second {second:.2f} s, "
              f"set-up {first - second:.2f} s per job (median of {args.setup_runs} processes, first clip)")
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"(1-min load average at the end: {load_avg:.2f} on {os.cpu_count()} cores: other work inflates the figures)")


if __name__ == "__main__":
    main()
