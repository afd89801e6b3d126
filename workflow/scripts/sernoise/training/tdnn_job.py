"""The T-DNN's jobs (model registry entries tdnn, tdnn_nr; rules train_model and predict_model).

:func:`train`: one T-DNN of one (model, regime, fold, repetition, task), hyper-parameters chosen
on validation; writes model.pt (state_dict), hparams.yaml, norm.npz, curve.csv/png,
selection.csv and versions.yaml into the model folder, after the degenerate-model check
(sernoise.training.degenerate; with training.on_degenerate fail a flagged model raises before
any output is written).  :func:`predict`: the trained T-DNN on its
fold's test-role utterances, clean and in every condition (TEST-pool feature archives hold only
utterances with status ok), into a predictions file (sernoise.training.predict).  Both take the
rule's ``snakemake`` object (or anything with its input, output, params, wildcards, threads, log).
See sernoise.training.{data,loop,predict,artifacts}.
"""

import functools
import time

import numpy as np
import pandas as pd
import torch

from sernoise.corpora.manifest import read_manifest
from sernoise.features import FeatureArchive
from sernoise.predictions import CLEAN
from sernoise.runlog import rule_log
from sernoise.tasks import get_task
from sernoise.training.artifacts import (
    TrainingRun, degenerate_entry, log_sets, outcome_fields, selection_fields, versions_record, write_curve, write_selection, write_yaml,
)
from sernoise.training.data import archive_utterances, load_and_normalise, load_norm, save_norm
from sernoise.training.loop import SequenceData, TrainSettings, grid_search, resolve_device
from sernoise.training.predict import (
    ScoredRun, labelled_test_utterances, load_model, predict_features, predict_views_to_files, save_state,
)


def train(smk, *, label: str = "T-DNN", search=None, optimizer: str = "RMSprop") -> None:
    """The T-DNN's training job; another model of filterbank sequences reuses it with its own grid
    ``search(settings, train, val, train_settings, seed, progress=, task=, strategy=)`` -> (best, selection
    rows) (default: the T-DNN grid search on ``settings["grid"]``), ``label`` and ``optimizer`` name."""
    with rule_log(smk) as log:
        p, out = smk.params, smk.output
        run = TrainingRun.from_rule(smk.wildcards, p, smk.config, getattr(smk.input, "partition", None))
        threads = int(smk.threads)
        torch.set_num_threads(threads)
        device = resolve_device(p.device)
        seed = run.seed
        log.info("%s regime %s fold %d rep %d task %s: device %s, %d thread(s), seed %d", label,
                 run.regime.name, run.fold, run.rep, run.task, device, threads, seed)

        train_archives = dict(zip(p.conditions, smk.input.conditions))
        sets = run.assemble(read_manifest(smk.input.manifest),
                            pd.read_csv(smk.input.folds, dtype={"group": str}),
                            augmented_per_clean=p.augmented_per_clean,
                            available={c: archive_utterances(path) for c, path in train_archives.items()})
        log_sets(log, sets)

        tick = time.perf_counter()
        archives = {CLEAN: smk.input.clean, **train_archives}
        train_x, val_x, mean, std = load_and_normalise(sets, archives)  # statistics of the training set only
        train = SequenceData(train_x, [e.label for e in sets.train])
        val = SequenceData(val_x, [e.label for e in sets.val])
        task = run.task_spec
        if task.is_classification:
            counts = f"class counts {dict(zip(task.labels, np.bincount(train.labels, minlength=len(task.labels)).tolist()))}"
        else:  # (n, attributes) ratings of a dimensional task
            counts = f"mean targets {dict(zip(task.labels, np.round(train.labels.mean(axis=0), 3).tolist()))}"
        log.info("features loaded in %.1f s; %d training frames; %s",
                 time.perf_counter() - tick, int(train.lengths.sum()), counts)

        settings = TrainSettings.from_config(p.settings, device=device, min_epochs=run.min_epochs)
        search = search or (lambda section, *args, **kwargs: grid_search(section["grid"], *args, **kwargs))
        best, selection = search(p.settings, train, val, settings, seed, progress=log.info,
                                 task=run.task_spec, strategy=run.strategy)
        log.info("selected %s: best epoch %d, validation loss %.4f, UAR %.3f, %s %.3f",
                 best.config.as_dict(), best.best_epoch, best.best_val_loss, best.best_val_uar,
                 best.selection_metric, best.best_val_score)
        degenerate = degenerate_entry(run, best, log)  # raises (on_degenerate: fail) before any output exists

        save_state(best.state_dict, out.model)
        save_norm(out.norm, mean, std)
        write_curve(best, out.curve, out.curve_png, run.title(label))
        write_selection(selection, out.selection)
        write_yaml({
            **selection_fields(run.model, best, selection),
            "training": {
                "max_epochs": settings.max_epochs,
                "min_epochs": settings.min_epochs,
                "patience": settings.patience,
                "batch_size": settings.batch_size,
                "learning_rate": settings.learning_rate,
                "conv_init": settings.conv_init,
                "class_weighting": settings.class_weighting,
                "optimizer": optimizer,
                "loss": "cross-entropy" if task.is_classification else "1 - CCC (mean over the attributes)",
                "augmented_per_clean": float(p.augmented_per_clean),
            },
            **run.record(),
            "norm": "norm.npz",
            **outcome_fields(sets, best, device),
            "degenerate": degenerate,
        }, out.hparams)
        write_yaml(versions_record(device, threads), out.versions)


def predict(smk, *, load=None) -> None:
    """The T-DNN's prediction of one run (``smk``: a one-run job or view); ``load(model_pt, hparams_yaml,
    device=)`` builds another model of filterbank sequences from its folder (default: the T-DNN,
    :func:`sernoise.training.predict.load_model`)."""
    with rule_log(smk) as log:
        predict_views(smk, [smk], log, load=load)


def predict_runs(smk, views, log) -> None:
    """The model registry's ``predict_runs`` entry point: every run (``views``, sernoise.job_views) of a
    ``predict_model`` job in one pass over the test data."""
    predict_views(smk, views, log)


def predict_views(smk, views, log, *, load=None) -> None:
    """Predictions of the models of ``views`` (one prediction job's runs: the same fold, conditions and
    feature archives) with each condition's test features read once for all of them; each view's file
    is the one :func:`predict` writes for it alone (same utterances, order and batches)."""
    wc, p, inp = smk.wildcards, smk.params, views[0].input
    torch.set_num_threads(int(smk.threads))
    device = resolve_device(p.device)
    manifest, folds = read_manifest(inp.manifest), pd.read_csv(inp.folds, dtype={"group": str})
    runs = []
    for view in views:
        model = (load or load_model)(view.input.model, view.input.hparams, device=device)
        task = get_task(view.wildcards.task, smk.config)
        test, labels = labelled_test_utterances(manifest, folds, wc.fold, task, corpus=wc.corpus, config=smk.config)
        # the statistics read once per model, not once per condition
        score = functools.partial(_score_features, model, tuple(load_norm(view.input.norm)), device)
        runs.append(ScoredRun(test, labels, tuple(task.labels), score))
        log.info("rep %s %s: %d labelled test utterances of fold %s; device %s", view.wildcards.rep,
                 view.wildcards.task, len(test), wc.fold, device)
    predict_views_to_files(smk, views, runs, [(CLEAN, inp.clean)] + list(zip(p.conditions, inp.conditions)),
                           open_source=FeatureArchive, read=FeatureArchive.read_many, what="features", log=log)


def _score_features(model, norm: tuple, device, features: dict, utts: list[str]):
    return predict_features(model, [features[u] for u in utts], norm, device=device)
