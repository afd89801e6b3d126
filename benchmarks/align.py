"""Forced-alignment accuracy and cost (sernoise.aligner, PocketSphinx) on known word boundaries.

Usage (from the repository root)::

    .venv/bin/python benchmarks/align.py [--sessions 5] [--dialogs 2] [--turns 4] [--data ../shared/data]

Accuracy: the eSpeak-synthesised IEMOCAP fixture (tests/fixtures/iemocap_fixture.py) assembles
every turn word by word on the 10 ms grid, so its word boundaries are exact.  Each turn is aligned
to its transcript and every speech word's start and end is compared with the truth; the script
prints the median and 90th percentile of |error| in ms (all boundaries, then starts and ends).
Cost: seconds of alignment per utterance on one core (PocketSphinx is single-threaded), on the
fixture and on real RAVDESS utterances from --data (both statements, several actors).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import REPO, parser, ravdess_files  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))

from fixtures.iemocap_fixture import make_iemocap_fixture  # noqa: E402

from sernoise.aligner import Aligner, read_audio_file  # noqa: E402
from sernoise.corpora.ravdess import STATEMENTS, parse_name  # noqa: E402


def fixture_errors(aligner: Aligner, sessions: int, dialogs: int, turns: int) -> tuple[dict, list, list]:
    """|boundary error| in ms per kind (start, end) over every speech word; wall and CPU seconds per turn."""
    errors: dict[str, list[float]] = {"start": [], "end": []}
    seconds, cpu = [], []
    with tempfile.TemporaryDirectory(prefix="align_bench_") as tmp:
        release = make_iemocap_fixture(Path(tmp), sessions=sessions, dialogs_per_session=dialogs,
                                       turns_per_dialog=turns)
        truth = json.loads((Path(tmp) / "fixture_truth.json").read_text())
        rate = truth["sample_rate"]
        for turn, info in sorted(truth["turns"].items()):
            x, sr = read_audio_file(release / info["wav"])
            tick, tock = time.perf_counter(), time.process_time()
            result = aligner.align(x, info["text"], sample_rate=sr)
            seconds.append(time.perf_counter() - tick)
            cpu.append(time.process_time() - tock)
            words = result.speech_words()
            if len(words) != len(info["words"]):
                raise SystemExit(f"{turn}: {len(words)} aligned words, {len(info['words'])} in the truth")
            for aligned, true in zip(words, info["words"]):
                errors["start"].append(round(abs(aligned.start - true["start"] / rate) * 1000.0, 3))
                errors["end"].append(round(abs(aligned.end - true["end"] / rate) * 1000.0, 3))
    return errors, seconds, cpu


def ravdess_seconds(aligner: Aligner, data: Path, limit: int) -> tuple[list, list]:
    paths = ravdess_files(data)
    step = max(1, len(paths) // limit)
    seconds, cpu = [], []
    for path in paths[::step][:limit]:
        x, sr = read_audio_file(path)
        text = STATEMENTS[parse_name(path.name)["statement"]]
        tick, tock = time.perf_counter(), time.process_time()
        aligner.align(x, text, sample_rate=sr)
        seconds.append(time.perf_counter() - tick)
        cpu.append(time.process_time() - tock)
    return seconds, cpu


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--sessions", type=int, default=5)
    args.add_argument("--dialogs", type=int, default=2)
    args.add_argument("--turns", type=int, default=4)
    args.add_argument("--ravdess", type=int, default=40, help="RAVDESS utterances timed (0: none)")
    opts = args.parse_args()
    tick = time.perf_counter()
    aligner = Aligner()
    print(f"decoder set-up: {time.perf_counter() - tick:.2f} s (once per align_shard job)")

    errors, seconds, cpu = fixture_errors(aligner, opts.sessions, opts.dialogs, opts.turns)
    every = np.array(errors["start"] + errors["end"])
    print(f"eSpeak IEMOCAP fixture: {len(seconds)} turns, {len(errors['start'])} words, {every.size} boundaries")
    print(f"  word-boundary |error|: median {np.median(every):.1f} ms, 90th percentile "
          f"{np.percentile(every, 90):.1f} ms, max {every.max():.1f} ms")
    for kind in ("start", "end"):
        e = np.array(errors[kind])
        print(f"  word {kind}s: median {np.median(e):.1f} ms, 90th percentile {np.percentile(e, 90):.1f} ms")
    print(f"  within 20 ms: {np.mean(every <= 20.0):.1%}, within 50 ms: {np.mean(every <= 50.0):.1%}")
    # CPU time as well: on a shared machine the wall time grows with the load, the CPU time does not.
    print(f"  cost: {np.mean(seconds):.3f} s wall, {np.mean(cpu):.3f} s CPU per utterance, one core")
    if opts.ravdess:
        rav, rav_cpu = ravdess_seconds(aligner, opts.data, opts.ravdess)
        print(f"RAVDESS ({len(rav)} utterances, {opts.data}): {np.mean(rav):.3f} s wall, "
              f"{np.mean(rav_cpu):.3f} s CPU per utterance, one core")


if __name__ == "__main__":
    main()
