"""E-DNN speed: training and inference utterances per second; on a GPU, seconds per epoch and peak memory.

Usage (from the repository root)::

    .venv/bin/python benchmarks/e2e.py [--data ../shared/data] [--fold 1] [--epochs 1] [--threads 1 2]
                                       [--gpu-sizes base large] [--json out.json]

Data: the clean TRAIN-role (training) and VAL-role (validation, inference) utterances of one fold of
the shared RAVDESS (actors 01-10, five speaker-independent folds as the workflow builds them),
activation labels, read untimed at 16 kHz.

* CPU: the tiny random wav2vec2 of the demo (sernoise.pretrained.TINY_CONFIG), E-DNN settings of
  config.yaml (feature extractor frozen, batch size, one dense layer).  Timed: ``--epochs`` epochs
  of sernoise.training.ednn.train_one (training + validation pass), and predict_proba on the
  validation utterances; once per thread count.  "train utt/s" = training utterances per second
  of the training part of an epoch (the validation pass is timed separately as inference);
  "infer utt/s" = utterances per second of predict_proba.
* CUDA (only when torch sees a GPU): randomly initialised models of the size of wav2vec2-base
  (95 M parameters, GroupNorm CNN) and of wav2vec2-large-robust (317 M, LayerNorm CNN, stable
  layer norm), mixed precision as configured (``ednn.amp``): seconds per training epoch on the
  fold's training utterances, inference utt/s and peak GPU memory (torch.cuda.max_memory_allocated).

The backbones are written to a temporary folder as Hugging Face model folders and loaded through
the same code as the workflow (SpeechBrain's wrapper, local files only); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import REPO, fold_rows, training_parser  # noqa: E402
from sernoise.pretrained import make_tiny_wav2vec2  # noqa: E402
from sernoise.training.data import LABEL_INDEX  # noqa: E402
from sernoise.models.ednn import EDNN  # noqa: E402
from sernoise.training.ednn import EDNNSettings, WaveData, model_config, predict_proba, train_one  # noqa: E402

SR = 16000
# Layouts of the real models (transformers' Wav2Vec2Config defaults = wav2vec2-base); random weights.
GPU_SIZES = {
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "conv_dim": (512,) * 7, "conv_kernel": (10, 3, 3, 3, 3, 2, 2), "conv_stride": (5, 2, 2, 2, 2, 2, 2),
             "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
             "feat_extract_norm": "group", "do_stable_layer_norm": False},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
              "conv_dim": (512,) * 7, "conv_kernel": (10, 3, 3, 3, 3, 2, 2), "conv_stride": (5, 2, 2, 2, 2, 2, 2),
              "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
              "feat_extract_norm": "layer", "do_stable_layer_norm": True},
}


def load_split(rows) -> WaveData:
    arrays = []
    for path in rows["path"]:
        x, sr = sf.read(path, dtype="float32")
        x = x if x.ndim == 1 else x.mean(axis=1)
        if sr != SR:
            import soxr

            x = soxr.resample(x, sr, SR).astype(np.float32)
        arrays.append(x)
    return WaveData(arrays, [LABEL_INDEX[b] for b in rows["activation_bin"]])


def run_case(folder, ednn: dict, settings: EDNNSettings, train: WaveData, val: WaveData, device: str) -> dict:
    """One timed training (``settings.max_epochs`` epochs, validation included) and one timed inference pass."""
    config = model_config(ednn, {"dense_layers": 1, "dense_units": ednn["grid"]["dense_units"][0]})
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    tick = time.perf_counter()
    result = train_one(config, folder, train, val, settings, seed=1)
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - tick
    model = EDNN(config, folder).to(device)
    model.load_trainable_state(result.state_dict)
    predict_proba(model, val.arrays[: settings.eval_batch_size], batch_size=settings.eval_batch_size,
                  device=device, amp=settings.amp)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    tick = time.perf_counter()
    predict_proba(model, val.arrays, batch_size=settings.eval_batch_size, device=device, amp=settings.amp)
    if device == "cuda":
        torch.cuda.synchronize()
    infer = time.perf_counter() - tick
    epoch = total / settings.max_epochs
    train_part = max(epoch - infer, 1e-9)  # an epoch's validation pass costs about one inference pass
    return {
        "epoch_s": epoch,
        "train_utt_per_s": len(train) / train_part,
        "infer_utt_per_s": len(val) / infer,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "parameters": result.n_parameters,
        "trainable": result.n_trainable,
        "val_uar": result.best_val_uar,
    }


def main() -> None:
    parser = training_parser(__doc__.splitlines()[0], epochs=1)
    parser.add_argument("--gpu-sizes", nargs="*", default=["base", "large"], choices=sorted(GPU_SIZES))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    ednn = config["ednn"]
    train_rows, val_rows = fold_rows(args.data, config, args.fold)
    tick = time.perf_counter()
    train = load_split(train_rows)
    val = load_split(val_rows)
    print(f"audio of {len(train)} train + {len(val)} val utterances loaded in {time.perf_counter() - tick:.1f} s "
          f"(untimed); mean {train.lengths.mean() / SR:.2f} s per utterance")
    print(f"E-DNN: freeze {ednn['freeze']}, batch {ednn['batch_size']} (eval {ednn['eval_batch_size']}), "
          f"{args.epochs} epoch(s); torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU(s)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny"
        make_tiny_wav2vec2(tiny, seed=0)
        settings = EDNNSettings.from_config({**ednn, "max_epochs": args.epochs}, device="cpu")
        print(f"\n{'model':<8}{'device':<8}{'threads':>8}{'epoch s':>10}{'train utt/s':>13}{'infer utt/s':>13}"
              f"{'peak MiB':>10}{'params':>12}")
        for threads in args.threads:
            torch.set_num_threads(threads)
            row = {"model": "tiny", "device": "cpu", "threads": threads,
                   **run_case(tiny, ednn, settings, train, val, "cpu")}
            results.append(row)
            _print(row)
        if torch.cuda.is_available():
            settings = EDNNSettings.from_config({**ednn, "max_epochs": args.epochs}, device="cuda")
            for size in args.gpu_sizes:
                folder = Path(tmp) / size
                make_tiny_wav2vec2(folder, seed=0, **GPU_SIZES[size])
                row = {"model": size, "device": torch.cuda.get_device_name(0), "threads": torch.get_num_threads(),
                       **run_case(folder, ednn, settings, train, val, "cuda")}
                results.append(row)
                _print(row)
        else:
            print("(no CUDA device: the wav2vec2-base/large-size GPU cases were not run)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _print(row: dict) -> None:
    peak = "-" if row["peak_gpu_mib"] is None else f"{row['peak_gpu_mib']:.0f}"
    print(f"{row['model']:<8}{row['device'][:8]:<8}{row['threads']:>8}{row['epoch_s']:>10.2f}"
          f"{row['train_utt_per_s']:>13.1f}{row['infer_utt_per_s']:>13.1f}{peak:>10}{row['parameters']:>12,}",
          flush=True)


if __name__ == "__main__":
    main()
