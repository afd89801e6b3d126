"""Rule train_tdnn: one T-DNN of one (regime, fold, repetition, task), hyper-parameters chosen on validation.

Writes model.pt (state_dict), hparams.yaml, norm.npz, curve.csv/png, selection.csv and
versions.yaml into the model folder.  See sernoise.training.{data,loop,predict,artifacts}.
"""

import time

import numpy as np
import pandas as pd
import torch

from sernoise.corpora.manifest import read_manifest
from sernoise.predictions import CLEAN, LABELS
from sernoise.runlog import rule_log
from sernoise.training.artifacts import (
    TrainingRun, log_sets, outcome_fields, selection_fields, versions_record, write_curve, write_selection, write_yaml,
)
from sernoise.training.data import archive_utterances, load_and_normalise, save_norm
from sernoise.training.loop import SequenceData, TrainSettings, grid_search, resolve_device
from sernoise.training.predict import save_state

with rule_log(snakemake) as log:
    p, out = snakemake.params, snakemake.output
    run = TrainingRun.from_rule(snakemake.wildcards, p)
    threads = int(snakemake.threads)
    torch.set_num_threads(threads)
    device = resolve_device(p.device)
    seed = run.seed
    log.info("T-DNN regime %s fold %d rep %d task %s: device %s, %d thread(s), seed %d",
             run.regime.name, run.fold, run.rep, run.task, device, threads, seed)

    train_archives = dict(zip(p.conditions, snakemake.input.conditions))
    sets = run.assemble(read_manifest(snakemake.input.manifest),
                        pd.read_csv(snakemake.input.folds, dtype={"group": str}),
                        augmented_per_clean=p.augmented_per_clean,
                        available={c: archive_utterances(path) for c, path in train_archives.items()})
    log_sets(log, sets)

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
    write_curve(best, out.curve, out.curve_png, run.title("T-DNN"))
    write_selection(selection, out.selection)
    write_yaml({
        **selection_fields(run.model, best, selection),
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
        **run.record(),
        "norm": "norm.npz",
        **outcome_fields(sets, best, device),
    }, out.hparams)
    write_yaml(versions_record(device, threads), out.versions)
