"""T-DNN training speed: seconds per epoch and utterances per second.

Usage (from the repository root)::

    .venv/bin/python benchmarks/train.py [--data ../shared/data] [--fold 1] [--epochs 3] [--threads 1 2]
                                         [--max-frames 0 200]

Data: the clean TRAIN-role utterances of one fold of the shared RAVDESS (actors 01-10, five
speaker-independent folds as the workflow builds them), activation labels; features are
computed untimed with sernoise.features.log_mel_fbank and z-normalised.  Model: the smallest
point of the default grid (config.yaml tdnn.grid: fewest kernels, units, layers).  Timed:
``--epochs`` epochs of sernoise.training.loop.train_one (length-bucketed batches, RMSprop,
validation pass on the fold's clean validation utterances included), once per thread count on
the CPU and once on CUDA when a GPU is available, each without training crops ("crop" 0) and
with crops of ``--max-frames`` frames (config ``tdnn.max_frames``: a random window per utterance
and epoch; the demo overlays use 200).  "epoch s" = wall seconds per epoch (training +
validation); "train utt/s" = training utterances per second of an epoch.
"""

from __future__ import annotations

import platform
import time

import soundfile as sf
import torch
import yaml
from torch.nn import functional as F

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import REPO, fold_rows, training_parser
from sernoise.features import log_mel_fbank
from sernoise.training.data import LABEL_INDEX, norm_stats, normalise
from sernoise.models.tdnn import TDNN
from sernoise.training.loop import SequenceData, TrainSettings, grid_points, train_one


class OldPaddingTDNN(TDNN):
    """The T-DNN with the convolutions' "same" padding as an explicit F.pad copy (before 2026-12)."""

    def conv_stack(self, h, mask=None):
        for conv in self.convs:
            h = F.relu(conv(F.pad(h, self._pad)))
            if mask is not None:
                h = h * mask
        return h


def smallest_point(grid: dict):
    return min(grid_points(grid), key=lambda c: (c.conv_channels * c.conv_layers, c.gru_units * c.gru_layers,
                                                  c.dense_layers, -c.pool_width))


def load_split(rows) -> tuple[list, list[int]]:
    arrays = []
    for path in rows["path"]:
        x, sr = sf.read(path, dtype="float32")
        arrays.append(log_mel_fbank(x if x.ndim == 1 else x.mean(axis=1), sr))
    return arrays, [LABEL_INDEX[b] for b in rows["activation_bin"]]


def main() -> None:
    parser = training_parser(__doc__.splitlines()[0], epochs=3)
    parser.add_argument("--max-frames", type=int, nargs="+", default=[0, 200],
                        help="training crops to time (0: whole utterances)")
    parser.add_argument("--compare", action="store_true", help="also time the old path (explicit F.pad), in turn")
    args = parser.parse_args()

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    tdnn = config["tdnn"]
    point = smallest_point(tdnn["grid"])
    train_rows, val_rows = fold_rows(args.data, config, args.fold)
    tick = time.perf_counter()
    train_raw, train_y = load_split(train_rows)
    val_raw, val_y = load_split(val_rows)
    mean, std = norm_stats(train_raw)
    train = SequenceData(normalise(train_raw, mean, std), train_y)
    val = SequenceData(normalise(val_raw, mean, std), val_y)
    print(f"features of {len(train)} train + {len(val)} val utterances in {time.perf_counter() - tick:.1f} s "
          f"(untimed); mean {train.lengths.mean():.0f} frames per utterance")
    print(f"model: {point.as_dict()}; batch {tdnn['batch_size']}, {args.epochs} epochs; "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")

    devices = [("cpu", t) for t in args.threads]
    if torch.cuda.is_available():
        devices.append(("cuda", 1))
    paths = [("old", OldPaddingTDNN), ("new", None)] if args.compare else [("new", None)]
    print(f"\n{'device':<8}{'threads':>8}{'crop':>6}{'path':>5}{'epoch s':>9}{'cpu s':>7}{'train utt/s':>13}"
          f"{'val UAR':>9}")
    for device, threads in devices:
        torch.set_num_threads(threads)
        for crop in args.max_frames:
            settings = TrainSettings.from_config({**tdnn, "max_epochs": args.epochs, "patience": args.epochs,
                                                  "max_frames": crop or None}, device=device)
            # warm-up (CUDA, and the first training of a process: lazy imports, oneDNN kernels)
            train_one(point, train, val, settings, seed=0)
            timings = {}
            for _ in range(2 if args.compare else 1):
                for path, model_class in paths:
                    cpu = time.process_time()
                    result = train_one(point, train, val, settings, seed=0, model_class=model_class)
                    cpu = (time.process_time() - cpu) / result.epochs_run
                    wall = result.seconds / result.epochs_run
                    if path not in timings or cpu < timings[path][1]:
                        timings[path] = (wall, cpu, result.curve[-1]["val_uar"])
            name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
            for path, (wall, cpu, val_uar) in timings.items():
                per = wall if device == "cuda" else cpu
                print(f"{name:<8}{threads:>8}{crop:>6}{path:>5}{wall:>9.2f}{cpu:>7.2f}{len(train) / per:>13.1f}"
                      f"{val_uar:>9.3f}")

if __name__ == "__main__":
    main()
