"""Rule train_ednn: one E-DNN (wav2vec2 + mean pooling + dense) of one (model, regime, fold, repetition, task).

Same examples as train_tdnn (sernoise.training.data.assemble), read as audio.  Writes into the model
folder: model.pt (the parameters training changed: dense layers + unfrozen wav2vec2 parameters;
the frozen rest is the pre-trained backbone, whose fingerprint hparams.yaml records),
hparams.yaml, curve.csv/png, selection.csv and versions.yaml.  See sernoise.training.ednn.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # load from the local folder only, before any HF import
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

import sernoise  # noqa: E402
from sernoise.corpora.manifest import read_manifest  # noqa: E402
from sernoise.pretrained import backbone_fingerprint  # noqa: E402
from sernoise.regimes import Regime  # noqa: E402
from sernoise.runlog import rule_log  # noqa: E402
from sernoise.seeds import derive_seed  # noqa: E402
from sernoise.training.data import CLEAN, LABELS, assemble  # noqa: E402
from sernoise.training.ednn import (  # noqa: E402
    EDNNSettings, WaveData, grid_search, load_waveforms, save_trainable, store_utterances,
)
from sernoise.training.loop import resolve_device  # noqa: E402


def library_versions() -> dict:
    import huggingface_hub
    import speechbrain
    import transformers

    return {"transformers": transformers.__version__, "speechbrain": speechbrain.__version__,
            "huggingface_hub": huggingface_hub.__version__}


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
    wc, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
    fold, rep, task = int(wc.fold), int(wc.rep), wc.task
    threads = int(snakemake.threads)
    torch.set_num_threads(threads)
    device = resolve_device(p.device)
    regime = Regime(**p.regime)
    backbone = dict(p.backbone)
    seed = derive_seed(p.seed, "train", wc.model, regime.name, fold, rep, task)
    name = f"{wc.model} ({backbone['label']})" if backbone["label"] else wc.model
    log.info("%s on %s: regime %s fold %d rep %d task %s: device %s, %d thread(s), seed %d", name,
             backbone["folder"], regime.name, fold, rep, task, device, threads, seed)

    manifest = read_manifest(inp.manifest)
    folds = pd.read_csv(inp.folds, dtype={"group": str})
    train_indexes = dict(zip(p.conditions, inp.indexes))
    available = {c: store_utterances(index) for c, index in train_indexes.items()}
    sets = assemble(manifest, folds, regime=regime, fold=fold, rep=rep, task=task, seed=p.seed,
                    augmented_per_clean=p.augmented_per_clean, available=available)
    for condition, why in sets.left_out.items():
        log.warning("condition %s left out of the augmented pool: %s", condition, why)
    log.info("training set %d (%d clean + %d augmented), validation %d (%d clean + %d augmented)",
             len(sets.train), sets.n_clean_train, sets.n_augmented_train,
             len(sets.val), sets.n_clean_val, sets.n_augmented_val)

    tick = time.perf_counter()
    indexes = {CLEAN: inp.clean_index, **train_indexes}
    train = WaveData(load_waveforms(sets.train, indexes), [e.label for e in sets.train])
    val = WaveData(load_waveforms(sets.val, indexes), [e.label for e in sets.val])
    log.info("audio loaded in %.1f s: %.0f s of training speech; class counts %s", time.perf_counter() - tick,
             train.lengths.sum() / 16000, dict(zip(LABELS, np.bincount(train.labels, minlength=len(LABELS)).tolist())))

    fingerprint = backbone_fingerprint(backbone["folder"])
    settings = EDNNSettings.from_config(p.ednn, device=device)
    best, selection = grid_search(p.ednn, backbone["folder"], train, val, settings, seed, save_path=p.save_path,
                                  progress=log.info)
    log.info("selected %s: best epoch %d, validation loss %.4f, UAR %.3f; %d of %d parameters trained",
             best.config.as_dict(), best.best_epoch, best.best_val_loss, best.best_val_uar,
             best.n_trainable, best.n_parameters)

    save_trainable(best.state_dict, out.model)
    curve = pd.DataFrame(best.curve, columns=["epoch", "train_loss", "val_loss", "val_uar"])
    curve.to_csv(out.curve, index=False, lineterminator="\n", float_format="%.6f")
    plot_curve(curve, best.best_epoch, f"{name} {regime.name} fold {fold} rep {rep} {task}", out.curve_png)
    pd.DataFrame(selection).to_csv(out.selection, index=False, lineterminator="\n", float_format="%.6f")
    backbone_record = {**backbone, "fingerprint": fingerprint}
    hparams = {
        "model": wc.model,
        "hparams": best.config.as_dict(),
        "grid_point": next(row["point"] for row in selection if row["selected"]),
        "backbone": backbone_record,
        "checkpoint": "trainable parameters only (dense layers + unfrozen wav2vec2 parameters); "
                      "the frozen rest comes from the backbone folder",
        "n_parameters": int(best.n_parameters),
        "n_trainable": int(best.n_trainable),
        "training": {**settings.as_dict(), "optimizer": "Adam", "loss": "cross-entropy",
                     "augmented_per_clean": float(p.augmented_per_clean)},
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
        **library_versions(),
        "sernoise": sernoise.__version__,
        "backbone": backbone["repo_id"] if not backbone["label"] else f"{backbone['label']} (for {backbone['repo_id']})",
        "backbone_kind": backbone["kind"],
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "amp": bool(settings.amp and device == "cuda"),
        "threads": threads,
    }
    with open(out.versions, "w", encoding="utf-8") as handle:
        yaml.safe_dump(versions, handle, sort_keys=False)
