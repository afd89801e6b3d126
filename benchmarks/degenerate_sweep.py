"""How often does a demo T-DNN end at chance: with and without ``training.min_epochs``, and per ``tdnn.conv_init``?

Usage (from the repository root)::

    .venv/bin/python benchmarks/degenerate_sweep.py --results results [--seeds 10] [--folds 1 2 3]
        [--regimes clean matched] [--tasks activation valence] [--models tdnn tdnn_nr]
        [--min-epochs 1 10] [--conv-init he pytorch] [--threads 1]

Data: the feature archives, manifest and folds a previous workflow run (``make demo`` or any
``snakemake`` run of the demo overlay) left under ``--results`` (``ravdess/features/...``,
``ravdess/manifest.csv``, ``ravdess/folds.csv``); nothing there is written.  ``tdnn`` reads
``features/``, ``tdnn_nr`` the RNNoise-denoised ``features/denoised/``.  Regimes: ``clean``, and
``matched`` on every condition whose TRAIN-pool archive is present (the run's own conditions).

Settings: config.yaml with tests/configs/shared_data.yaml (the demo's T-DNN: max_epochs 15,
patience 3, crops, class weighting, one grid point) unless ``--config`` names other overlays.
Each (model, regime, task, fold) trains ``--seeds`` times, repetition r = 1..seeds taking the
workflow's seed of repetition r (sernoise.training.artifacts.TrainingRun: derived from the config
seed), once per ``--min-epochs`` value and ``--conv-init`` initialisation; every other setting is
the same, so between two ``--min-epochs`` values the first epochs are identical and only the
stopping rule differs, and between two initialisations only the starting weights of the
convolutions differ (same seed, same batches).  Each run's selected model goes
through the degenerate-model check (sernoise.training.degenerate, the config's alpha).

Prints one row per (model, regime, task, min_epochs, conv_init): runs, the fraction flagged as degenerate,
the mean best validation UAR and the mean epochs run.  Cost: one T-DNN training per run (about
10-40 s each on one CPU thread at demo scale).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

# benchmarks/_common.py; importing it puts workflow/scripts on sys.path for sernoise
from _common import REPO
from sernoise.config import deep_update, validate_config
from sernoise.corpora.manifest import read_manifest
from sernoise.predictions import CLEAN
from sernoise.regimes import Regime
from sernoise.training.artifacts import TrainingRun
from sernoise.training.data import archive_utterances, load_and_normalise
from sernoise.training.degenerate import check
from sernoise.training.loop import SequenceData, TrainSettings, grid_search

FEATURES = {"tdnn": "features", "tdnn_nr": "features/denoised"}


def load_config(overlays: list[Path]) -> dict:
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for path in overlays:
        config = deep_update(config, yaml.safe_load(Path(path).read_text()))
    return validate_config(config, REPO / "schemas" / "config.schema.yaml")


def regimes(features: Path, names: list[str]) -> dict[str, tuple[Regime, dict[str, Path]]]:
    """The regimes asked for and their training archives ({condition: train.h5})."""
    built = sorted(p.parent.name for p in features.glob("*/train.h5"))
    out = {}
    for name in names:
        if name == "clean":
            out[name] = (Regime("clean", "clean"), {})
        elif name == "matched":
            out[name] = (Regime("matched", "matched", tuple(built)), {c: features / c / "train.h5" for c in built})
        else:
            raise SystemExit(f"regime {name!r}: this benchmark knows clean and matched")
    return out


def train_once(config, corpus: Path, model: str, regime: Regime, archives: dict, fold: int, rep: int, task: str,
               min_epochs: int, conv_init: str) -> dict:
    run = TrainingRun.from_rule(SimpleNamespace(model=model, fold=fold, rep=rep, task=task, corpus="ravdess"),
                                SimpleNamespace(regime=regime.as_dict(), seed=config["seed"]), config)
    sets = run.assemble(read_manifest(corpus / "manifest.csv"), pd.read_csv(corpus / "folds.csv", dtype={"group": str}),
                        augmented_per_clean=config["training"]["augmented_per_clean"],
                        available={c: archive_utterances(p) for c, p in archives.items()})
    features = corpus / FEATURES[model]
    train_x, val_x, _, _ = load_and_normalise(sets, {CLEAN: features / "clean.h5", **archives})
    train = SequenceData(train_x, [e.label for e in sets.train])
    val = SequenceData(val_x, [e.label for e in sets.val])
    settings = TrainSettings.from_config({**config["tdnn"], "conv_init": conv_init}, min_epochs=min_epochs)
    # the workflow's selection rule (training.strategy: the best epoch and grid point by validation
    # UAR in config.yaml), so that the selected model is the one the workflow would keep
    best, _ = grid_search(config["tdnn"]["grid"], train, val, settings, run.seed, task=run.task_spec,
                          strategy=run.strategy)
    found = check(best.val_labels, best.val_predicted, run.task_spec.output_size, alpha=run.degenerate_alpha)
    return {"flagged": found.flagged, "val_uar": best.best_val_uar, "epochs_run": best.epochs_run,
            "best_epoch": best.best_epoch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "results", help="a workflow run's results folder")
    parser.add_argument("--config", type=Path, nargs="*", default=[REPO / "tests" / "configs" / "shared_data.yaml"],
                        help="overlays of config.yaml (default: the demo overlay)")
    parser.add_argument("--seeds", type=int, default=10, help="repetitions per (model, regime, task, fold)")
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="default: every fold of folds.csv")
    parser.add_argument("--regimes", nargs="+", default=["clean", "matched"])
    parser.add_argument("--tasks", nargs="+", default=["activation", "valence"])
    parser.add_argument("--models", nargs="+", default=["tdnn", "tdnn_nr"], choices=sorted(FEATURES))
    parser.add_argument("--min-epochs", type=int, nargs="+", default=None,
                        help="values compared (default: 1 and the config's training.min_epochs)")
    parser.add_argument("--conv-init", nargs="+", default=None, choices=["he", "pytorch"],
                        help="initialisations compared (default: the config's tdnn.conv_init)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    corpus = args.results / "ravdess"
    for model in args.models:
        if not (corpus / FEATURES[model] / "clean.h5").is_file():
            raise SystemExit(f"no {corpus / FEATURES[model] / 'clean.h5'} ({model}): run the workflow (make demo) first")
    folds = args.folds or sorted(pd.read_csv(corpus / "folds.csv")["fold"].unique().tolist())
    min_epochs = args.min_epochs or sorted({1, int(config["training"]["min_epochs"])})
    inits = args.conv_init or [config["tdnn"]["conv_init"]]
    print(f"T-DNN {config['tdnn']['max_epochs']} epochs max, patience {config['tdnn']['patience']}; "
          f"alpha {config['training']['degenerate_alpha']}; folds {folds}; seeds {args.seeds}; {corpus}", flush=True)

    rows = []
    for model in args.models:
        for name, (regime, archives) in regimes(corpus / FEATURES[model], args.regimes).items():
            for task in args.tasks:
                for fold in folds:
                    for rep in range(1, args.seeds + 1):
                        for m, init in itertools.product(min_epochs, inits):
                            tick = time.perf_counter()
                            row = train_once(config, corpus, model, regime, archives, fold, rep, task, m, init)
                            rows.append({"model": model, "regime": name, "task": task, "fold": fold, "rep": rep,
                                         "min_epochs": m, "conv_init": init, **row})
                            print(f"  {model} {name} {task} fold {fold} rep {rep} min_epochs {m} {init} init: "
                                  f"val UAR {row['val_uar']:.3f}, {row['epochs_run']} epochs"
                                  f"{' DEGENERATE' if row['flagged'] else ''} ({time.perf_counter() - tick:.0f} s)",
                                  flush=True)
    table = (pd.DataFrame(rows).groupby(["model", "regime", "task", "min_epochs", "conv_init"], sort=False)
             .agg(runs=("flagged", "size"), at_chance=("flagged", "mean"), mean_val_uar=("val_uar", "mean"),
                  mean_epochs=("epochs_run", "mean"))
             .reset_index())
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nall runs at chance: " + ", ".join(
        f"min_epochs {m}, {init} init: {np.mean([r['flagged'] for r in rows if (r['min_epochs'], r['conv_init']) == (m, init)]):.3f}"
        for m, init in itertools.product(min_epochs, inits)))


if __name__ == "__main__":
    main()
