"""MetricAug costs on one core: (1) superset build throughput, items per second per core with
STOI, wide-band PESQ and fwSNRseg per item; (2) the per-epoch overhead of the ``metricaug``
strategy (Algorithm 1's gap evaluation on the per-level validation items, and the draw) as a
fraction of the epoch time.

Usage (from the repository root)::

    .venv/bin/python benchmarks/metricaug.py [--data ../shared/data] [--limit 20] [--snrs 0 10 20 30]
        [--clean 300 1000 3000] [--epochs 3] [--hidden 16] [--val-per-level 100] [--skip-superset]

(1) What is timed: :func:`sernoise.metricaug.superset.noisy_items` for every (clip, SNR) of the
first ``--limit`` RAVDESS clips with the shared CC0 soundscapes as natural noise (mixing at the
P.56 active level, 16-bit storage, the three metrics, the filterbank features), as a job does it;
reading the clips and the noise files is outside the timer.  CPU time (``time.process_time``)
is the figure to trust on a loaded machine.

(2) The head (H = ``--hidden``) trains ``--epochs`` epochs on ``--clean`` clean examples plus
``--clean`` superset items per epoch (N = the clean size, as the paper), random 40-d sequences of
RAVDESS-like lengths (2-4 s, 200 frames max crops as the demo; the cost does not depend on the
values), and validation sets of ``--clean / 4`` clean items and ``--val-per-level`` items per
level (config ``metricaug.val_items_per_level``: 500 by default, 100 in the demo).  The hook's time
is measured inside the hook and split into the draw (the sampling: weights to item indices) and
the gap evaluation (Algorithm 1's weighted F1 on each level's validation items, a forward pass
over them; the clean side is the loop's own validation WF1 of the previous epoch); the fractions are of the epoch time, over the epochs
after the first (epoch 1 has no gaps).  Issue 13's target: under 5 %.  The gap evaluation costs
the same whatever the training set's size while an epoch grows with it, so several ``--clean``
sizes show where it falls under the target: a RAVDESS fold (~300 clean training utterances) is
far above it, a corpus of MSP-Podcast's size (tens of thousands) under it.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from _common import corpus_parser, ravdess_files  # noqa: E402


class FolderNoise:
    """A NoiseSource of wav files of one category (natural soundscapes), for the benchmark only."""

    def __init__(self, paths, category: str = "nat"):
        self.category = category
        self.clips = {f"{category}:{p.name}": sf.read(p, dtype="float32")[0] for p in paths}

    def files(self, category):
        return sorted(self.clips) if category == self.category else []

    def read(self, key):
        return self.clips[key]

    def draw(self, category, rng):
        keys = self.files(category)
        key = keys[int(rng.integers(len(keys)))]
        return key, self.clips[key]


def superset_throughput(args) -> None:
    from sernoise.metricaug.superset import noisy_items

    paths = ravdess_files(args.data, args.limit)
    noise = FolderNoise(sorted((args.data / "noise" / "soundscapes_cc0").glob("*.wav")))
    clips = [(p.stem, sf.read(p, dtype="float32")[0]) for p in paths]
    noisy_items(clips[0][0], clips[0][1], categories=["nat"], snrs=[10.0], noise=noise, seed=0, tag="warmup")
    wall, cpu = time.perf_counter(), time.process_time()
    items = []
    for utt, x in clips:
        items += noisy_items(utt, x, categories=["nat"], snrs=args.snrs, noise=noise, seed=0, tag="bench")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ok = sum(it.features is not None for it in items)
    print(f"(1) superset: {len(clips)} RAVDESS clips x {len(args.snrs)} SNRs = {len(items)} items ({ok} ok), "
          f"STOI + PESQ-WB + fwSNRseg + features each")
    print(f"    {len(items) / cpu:.2f} items/s per core (CPU time; {cpu / len(items) * 1000:.0f} ms/item), "
          f"{len(items) / wall:.2f} items/s wall")


def sampling_overhead(args) -> None:
    import torch

    from sernoise.metricaug.strategy import metricaug
    from sernoise.metricaug.train import level_evaluator, train_head
    from sernoise.models.metricaug_head import HeadConfig
    from sernoise.tasks import get_task
    from sernoise.training.loop import SequenceData, TrainSettings

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    task = get_task("emotion4", {"tasks": {"emotion4": {"kind": "categorical",
                                                        "classes": ["angry", "happy", "neutral", "sad"]}}})

    def sequences(n):
        lengths = rng.integers(200, 400, n)
        return SequenceData([rng.standard_normal((int(t), 40)).astype(np.float32) for t in lengths],
                            rng.integers(0, 4, n))

    n = args.clean_size
    superset = sequences(n * 2)
    clean = sequences(n)
    train = SequenceData(clean.arrays + superset.arrays, np.concatenate([clean.labels, superset.labels]))
    val = sequences(max(n // 4, 8))
    levels = [sequences(args.val_per_level) for _ in range(5)]
    strategy = metricaug(metric="stoi", levels="gmm")
    evaluate = level_evaluator(val, levels, 32, "cpu")
    hook_seconds, gap_seconds = [], []
    hook = strategy.items
    original = hook.__call__

    def timed_evaluate(model, clean_wf1=None):
        tick = time.process_time()
        out = evaluate(model, clean_wf1)
        gap_seconds.append(time.process_time() - tick)
        return out

    class Timed:
        def __call__(self, ctx):
            tick = time.process_time()
            out = original(ctx)
            hook_seconds.append(time.process_time() - tick)
            return out

    timed = Timed()
    hook.bind(n_clean=n, item_levels=np.resize(np.arange(1, 6), len(superset)), evaluate=timed_evaluate)
    from dataclasses import replace

    settings = TrainSettings(max_epochs=args.epochs, patience=None, batch_size=32, learning_rate=1e-3,
                             max_frames=200)
    epoch_seconds = []
    tick = [time.process_time()]

    def progress(message):
        if " epoch " in f" {message}" and "train_loss" in message:
            now = time.process_time()
            epoch_seconds.append(now - tick[0])
            tick[0] = now

    train_head(HeadConfig(hidden=args.hidden), train, val, settings, seed=0, task=task,
               strategy=replace(strategy, items=timed), progress=progress)
    later = slice(1, None)
    epoch = sum(epoch_seconds[later])
    gaps = sum(gap_seconds)
    draw = sum(hook_seconds[later]) - gaps
    print(f"(2) {n} clean + {n} drawn items per epoch, validation {len(val)} clean + 5 x "
          f"{args.val_per_level} level items, H = {args.hidden}, {args.epochs} epochs: epoch CPU time "
          f"{np.mean(epoch_seconds[later]):.2f} s")
    print(f"    sampling (the draw) {1000 * draw / len(gap_seconds):.2f} ms = {100 * draw / epoch:.2f} % of the epoch; "
          f"gap evaluation {gaps / len(gap_seconds):.3f} s = {100 * gaps / epoch:.1f} % (target < 5 %)")


def main() -> None:
    parser = corpus_parser(__doc__.splitlines()[0], repeat=1)
    parser.add_argument("--snrs", type=float, nargs="+", default=[0.0, 10.0, 20.0, 30.0])
    parser.add_argument("--clean", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--val-per-level", type=int, default=100)
    parser.add_argument("--skip-superset", action="store_true")
    args = parser.parse_args()
    args.limit = args.limit or 20
    if not args.skip_superset:
        superset_throughput(args)
    for size in args.clean:
        args.clean_size = size
        sampling_overhead(args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-min load average at the end: {load:.2f} on {os.cpu_count()} cores: other work inflates wall times)")


if __name__ == "__main__":
    main()
