"""Cost of the T-DNN grid search: seconds per epoch of every grid point, and of the whole grid.

Usage (from the repository root)::

    .venv/bin/python benchmarks/tdnn_grid.py [--data ../shared/data] [--fold 1] [--epochs 2] [--threads 1]
                                             [--grid default paper] [--max-frames 200]

Data as in benchmarks/train.py: the clean TRAIN-role utterances of one fold of the shared
RAVDESS (actors 01-10), activation labels, validation on the fold's clean VAL-role utterances;
features computed untimed and z-normalised.  Grids: ``default`` = config.yaml ``tdnn.grid``,
``paper`` = configs/paper_grid.yaml (Table 1, 72 points), ``old`` = the 4-point grid the default
config had before (kernels x GRU width).  Timed: ``--epochs`` epochs of
sernoise.training.loop.train_one per point (training + validation pass), with training crops
of ``--max-frames`` frames (0: whole utterances).  Printed: per point its seconds per epoch and
validation UAR after the epochs (a hint only: a few epochs of one fold decide nothing), then per
grid the number of points and the sum of the points' epoch times (the cost of one grid-search
epoch; a training job trains every point, each for up to tdnn.max_epochs epochs).
"""

from __future__ import annotations

import platform
import time

import torch
import yaml

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import REPO, fold_rows, training_parser
from sernoise.training.data import norm_stats, normalise
from sernoise.training.loop import SequenceData, TrainSettings, grid_points, train_one
from train import load_split

OLD_GRID = {"conv_channels": [64, 128], "conv_width": [2], "conv_layers": [5], "pool_width": [2], "gru_layers": [1],
            "gru_units": [32, 64], "dense_layers": [1]}


def grids(config: dict) -> dict[str, dict]:
    paper = yaml.safe_load((REPO / "configs" / "paper_grid.yaml").read_text())["tdnn"]["grid"]
    return {"default": config["tdnn"]["grid"], "paper": paper, "old": OLD_GRID}


def main() -> None:
    parser = training_parser(__doc__.splitlines()[0], epochs=2)
    parser.set_defaults(threads=[1])
    parser.add_argument("--grid", nargs="+", default=["default"], choices=["default", "paper", "old"])
    parser.add_argument("--max-frames", type=int, default=200, help="training crops (0: whole utterances)")
    args = parser.parse_args()

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    tdnn = config["tdnn"]
    train_rows, val_rows = fold_rows(args.data, config, args.fold)
    tick = time.perf_counter()
    train_raw, train_y = load_split(train_rows)
    val_raw, val_y = load_split(val_rows)
    mean, std = norm_stats(train_raw)
    train = SequenceData(normalise(train_raw, mean, std), train_y)
    val = SequenceData(normalise(val_raw, mean, std), val_y)
    torch.set_num_threads(args.threads[0])
    print(f"features of {len(train)} train + {len(val)} val utterances in {time.perf_counter() - tick:.1f} s "
          f"(untimed); batch {tdnn['batch_size']}, {args.epochs} epochs per point, crops {args.max_frames or 'none'}, "
          f"{args.threads[0]} thread(s); torch {torch.__version__}, {platform.processor() or platform.machine()}")
    settings = TrainSettings.from_config({**tdnn, "max_epochs": args.epochs, "patience": args.epochs,
                                          "max_frames": args.max_frames or None}, device="cpu")
    timed: dict[tuple, tuple[float, float]] = {}  # a point shared by two grids is timed once
    totals = []
    for name in args.grid:
        points = grid_points(grids(config)[name])
        print(f"\ngrid {name}: {len(points)} points")
        print(f"{'kernels':>8}{'pool':>6}{'GRU layers':>11}{'GRU units':>10}{'dense':>6}{'epoch s':>9}{'val UAR':>9}")
        total = 0.0
        for point in points:
            key = tuple(sorted(point.as_dict().items()))
            if key not in timed:
                result = train_one(point, train, val, settings, seed=0)
                timed[key] = (result.seconds / result.epochs_run, result.curve[-1]["val_uar"])
            per_epoch, score = timed[key]
            total += per_epoch
            print(f"{point.conv_channels:>8}{point.pool_width:>6}{point.gru_layers:>11}{point.gru_units:>10}"
                  f"{point.dense_layers:>6}{per_epoch:>9.2f}{score:>9.3f}")
        totals.append((name, len(points), total))
    print(f"\n{'grid':<8}{'points':>7}{'grid epoch s':>14}")
    for name, n, total in totals:
        print(f"{name:<8}{n:>7}{total:>14.1f}")


if __name__ == "__main__":
    main()
