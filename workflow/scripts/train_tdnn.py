"""Rule train_tdnn: one T-DNN of one (regime, fold, repetition, task), hyper-parameters chosen on validation.

Writes model.pt (state_dict), hparams.yaml, norm.npz, curve.csv/png, selection.csv and
versions.yaml into the model folder.  See sernoise.training.{data,loop,predict}.
"""

import platform
import time

import numpy as np
import pandas as pd
import torch
import yaml

import sernoise
from sernoise.corpora.manifest import read_manifest
from sernoise.regimes import Regime
from sernoise.runlog import rule_log
from sernoise.seeds import derive_seed
from sernoise.training.data import (
    CLEAN, LABELS, archive_utterances, assemble, load_and_normalise, save_norm,
)
from sernoise.training.loop import SequenceData, TrainSettings, grid_search, resolve_device
from sernoise.training.predict import save_state


def plot_curve(curve: pd.DataFrame, best_epoch: int, title: str, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_uar) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(curve["epoch"], curve["train_loss"], marker="o", ms=3, label="train")
    ax_loss.plot(curve["epoch"], curve["val_loss"], marker="o", ms=3, label="validation")
    ax_loss.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_loss.legend(fontsize=8)
    ax_uar.plot(curve["epoch"], curve["val_uar"], marker="o", ms=3, color="tab:green")
    ax_uar.axhline(1 / 3, color="grey", ls=":", lw=1, label="chance")
    ax_uar.axvline(best_epoch, color="grey", ls="--", lw=1)
    ax_uar.set(xlabel="epoch", ylabel="UAR", title="validation UAR", ylim=(0, 1))
    ax_uar.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


with rule_log(snakemake) as log:
    wc, p, out = snakemake.wildcards, snakemake.params, snakemake.output
    fold, rep, task = int(wc.fold), int(wc.rep), wc.task
    threads = int(snakemake.threads)
    torch.set_num_threads(threads)
    device = resolve_device(p.device)
    regime = Regime(**p.regime)
    seed = derive_seed(p.seed, "train", wc.model, regime.name, fold, rep, task)
    log.info("T-DNN regime %s fold %d rep %d task %s: device %s, %d thread(s), seed %d",
             regime.name, fold, rep, task, device, threads, seed)

    manifest = read_manifest(snakemake.input.manifest)
    folds = pd.read_csv(snakemake.input.folds, dtype={"group": str})
    train_archives = dict(zip(p.conditions, snakemake.input.conditions))
    available = {c: archive_utterances(path) for c, path in train_archives.items()}
    sets = assemble(manifest, folds, regime=regime, fold=fold, rep=rep, task=task, seed=p.seed,
                    augmented_per_clean=p.augmented_per_clean, available=available)
    for condition, why in sets.left_out.items():
        log.warning("condition %s left out of the augmented pool: %s", condition, why)
    log.info("training set %d (%d clean + %d augmented), validation %d (%d clean + %d augmented)",
             len(sets.train), sets.n_clean_train, sets.n_augmented_train,
             len(sets.val), sets.n_clean_val, sets.n_augmented_val)

    tick = time.perf_counter()
    archives = {CLEAN: snakemake.input.clean, **train_archives}
    train_x, val_x, mean, std = load_and_normalise(sets, archives)  # statistics of the training set only
    train = SequenceData(train_x, [e.label for e in sets.train])
    val = SequenceData(val_x, [e.label for e in sets.val])
    log.info("features loaded in %.1f s; %d training frames; class counts %s",
             time.perf_counter() - tick, int(train.lengths.sum()),
             dict(zip(LABELS, np.bincount(train.labels, minlength=len(LABELS)).tolist())))

    settings = TrainSettings.from_config(p.tdnn, device=device)
    best, selection = grid_search(p.tdnn["grid"], train, val, settings, seed, progress=log.info)
    log.info("selected %s: best epoch %d, validation loss %.4f, UAR %.3f",
             best.config.as_dict(), best.best_epoch, best.best_val_loss, best.best_val_uar)

    save_state(best.state_dict, out.model)
    save_norm(out.norm, mean, std)
    curve = pd.DataFrame(best.curve, columns=["epoch", "train_loss", "val_loss", "val_uar"])
    curve.to_csv(out.curve, index=False, lineterminator="\n", float_format="%.6f")
    plot_curve(curve, best.best_epoch, f"T-DNN {regime.name} fold {fold} rep {rep} {task}", out.curve_png)
    pd.DataFrame(selection).to_csv(out.selection, index=False, lineterminator="\n", float_format="%.6f")
    hparams = {
        "model": wc.model,
        "hparams": best.config.as_dict(),
        "grid_point": next(row["point"] for row in selection if row["selected"]),
        "training": {
            "max_epochs": settings.max_epochs,
            "patience": settings.patience,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            "class_weighting": settings.class_weighting,
            "optimizer": "RMSprop",
            "loss": "cross-entropy",
            "augmented_per_clean": float(p.augmented_per_clean),
        },
        "seed": int(seed),
        "config_seed": int(p.seed),
        "regime": regime.name,
        "regime_kind": regime.kind,
        "regime_conditions": list(regime.train_conditions),
        "held_out_type": regime.held_out_type,
        "fold": fold,
        "rep": rep,
        "task": task,
        "labels": list(LABELS),
        "norm": "norm.npz",
        **sets.summary(),
        "best_epoch": best.best_epoch,
        "best_val_loss": float(best.best_val_loss),
        "best_val_uar": float(best.best_val_uar),
        "epochs_run": best.epochs_run,
        "stopped_early": best.stopped_early,
        "device": device,
    }
    with open(out.hparams, "w", encoding="utf-8") as handle:
        yaml.safe_dump(hparams, handle, sort_keys=False)
    versions = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "sernoise": sernoise.__version__,
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "threads": threads,
    }
    with open(out.versions, "w", encoding="utf-8") as handle:
        yaml.safe_dump(versions, handle, sort_keys=False)
