"""What glibc's malloc policy costs the T-DNN jobs: glibc's default against sernoise.allocator's.

Usage (from the repository root)::

    .venv/bin/python benchmarks/allocator.py [--data ../shared/data] [--fold 1] [--passes 5] [--epochs 3]

Each policy runs in a fresh process (``SERNOISE_MALLOC=default``: glibc's own dynamic mmap
threshold; ``heap``: the threshold fixed at 32 MB, what every rule job sets,
:mod:`sernoise.allocator`), one torch thread, on the clean utterances of one fold of the shared
RAVDESS (features computed untimed, z-normalised): (1) a demo-sized T-DNN (the demo overlay's grid
point, seeded random weights) scores the fold's validation utterances in the prediction jobs'
batches of 64 whole utterances, ``--passes`` times; (2) ``--epochs`` epochs of training at the demo's
settings (2 s crops, validation included).  Printed per policy: CPU seconds (user + system), minor
page faults, peak resident memory, and a digest of the scores and of the last epoch's validation
loss, which must be equal under both policies (the arithmetic is the same; only where the memory
comes from differs).  Ratios: default / heap.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time

from _common import REPO, fold_rows, training_parser

POLICIES = ("default", "heap")


def child(args) -> dict:
    import numpy as np
    import torch
    import yaml

    from sernoise.allocator import use_heap_for_large_blocks
    from sernoise.models.tdnn import TDNN, TDNNConfig
    from sernoise.training.data import norm_stats, normalise
    from sernoise.training.loop import SequenceData, TrainSettings, predict_proba, train_one
    from train import load_split

    applied = use_heap_for_large_blocks()
    torch.set_num_threads(1)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    demo = yaml.safe_load((REPO / "tests/configs/shared_data.yaml").read_text())["tdnn"]
    point = TDNNConfig(**{k: v[0] for k, v in demo["grid"].items()})
    train_rows, val_rows = fold_rows(args.data, config, args.fold)
    train_raw, train_y = load_split(train_rows)
    val_raw, val_y = load_split(val_rows)
    mean, std = norm_stats(train_raw)
    train = SequenceData(normalise(train_raw, mean, std), train_y)
    val = SequenceData(normalise(val_raw, mean, std), val_y)

    def usage():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime, r.ru_minflt

    torch.manual_seed(0)
    model = TDNN(point)
    predict_proba(model, val.arrays, batch_size=64)  # untimed warm-up (oneDNN primitives)
    cpu, faults = usage()
    for _ in range(args.passes):
        scores = predict_proba(model, val.arrays, batch_size=64)
    cpu_scoring, faults_scoring = usage()
    settings = TrainSettings.from_config({**config["tdnn"], "max_epochs": args.epochs, "patience": args.epochs,
                                          "max_frames": demo["max_frames"], "class_weighting": True},
                                         device="cpu", min_epochs=args.epochs)
    result = train_one(point, train, val, settings, seed=0)
    cpu_training, faults_training = usage()
    return {
        "applied": applied,
        "utterances": len(val),
        "scoring_cpu": (cpu_scoring - cpu) / args.passes,
        "scoring_faults": (faults_scoring - faults) / args.passes,
        "epoch_cpu": (cpu_training - cpu_scoring) / result.epochs_run,
        "epoch_faults": (faults_training - faults_scoring) / result.epochs_run,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "digest": hashlib.sha256(np.ascontiguousarray(scores).tobytes()
                                 + repr(result.curve[-1]["val_loss"]).encode()).hexdigest()[:16],
    }


def main() -> None:
    parser = training_parser(__doc__.splitlines()[0], epochs=3)
    parser.add_argument("--passes", type=int, default=5, help="scoring passes over the validation utterances")
    parser.add_argument("--child", choices=POLICIES, help=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    rows = {}
    for policy in POLICIES:
        env = {**os.environ, "SERNOISE_MALLOC": policy, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        tick = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", policy, "--data", str(args.data),
                              "--fold", str(args.fold), "--passes", str(args.passes), "--epochs", str(args.epochs)],
                             env=env, check=True, capture_output=True, text=True)
        rows[policy] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{policy}: fresh process done in {time.perf_counter() - tick:.1f} s (policy set: {rows[policy]['applied']})")
    n = rows["heap"]["utterances"]
    print(f"\nT-DNN (demo grid point), 1 thread; scoring {n} validation utterances of fold {args.fold} in batches of 64;"
          f" training epochs at the demo's settings")
    print(f"{'policy':<9}{'score s':>9}{'utt/s':>8}{'faults':>9}{'epoch s':>9}{'faults':>9}{'peak MB':>9}  digest")
    for policy, r in rows.items():
        print(f"{policy:<9}{r['scoring_cpu']:>9.3f}{n / r['scoring_cpu']:>8.0f}{r['scoring_faults']:>9.0f}"
              f"{r['epoch_cpu']:>9.3f}{r['epoch_faults']:>9.0f}{r['peak_mb']:>9.0f}  {r['digest']}")
    d, h = rows["default"], rows["heap"]
    print(f"ratio default/heap: scoring {d['scoring_cpu'] / h['scoring_cpu']:.2f}x, "
          f"training epoch {d['epoch_cpu'] / h['epoch_cpu']:.2f}x; "
          f"same scores and validation loss: {'yes' if d['digest'] == h['digest'] else 'NO'}")


if __name__ == "__main__":
    main()
