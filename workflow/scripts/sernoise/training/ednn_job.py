"""The E-DNN's jobs (model registry entries ednn, ednn_nr; rules train_audio_model, predict_audio_model).

:func:`train`: one E-DNN (wav2vec2 + mean pooling + dense) of one (model, regime, fold,
repetition, task), on the same examples as the T-DNN (sernoise.training.data.assemble) read as
audio.  Writes into the model folder: model.pt (the parameters training changed: dense layers +
unfrozen wav2vec2 parameters; the frozen rest is the pre-trained backbone, whose fingerprint
hparams.yaml records), hparams.yaml, curve.csv/png, selection.csv and versions.yaml, after the
degenerate-model check (as for the T-DNN: with training.on_degenerate fail a flagged model raises
before any output is written).
:func:`predict`: the trained E-DNN on its fold's test-role utterances, clean and in every
condition (TEST-pool audio datasets), in the T-DNN's predictions format; the backbone folder must
be the one the model was trained on (its fingerprint is checked).  See sernoise.training.ednn and
sernoise.training.artifacts.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # load from the local folder only, before any HF import
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import functools  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from sernoise.corpora.manifest import read_manifest  # noqa: E402
from sernoise.predictions import CLEAN, LABELS  # noqa: E402
from sernoise.pretrained import backbone_fingerprint  # noqa: E402
from sernoise.runlog import rule_log  # noqa: E402
from sernoise.tasks import get_task  # noqa: E402
from sernoise.training.artifacts import (  # noqa: E402
    TrainingRun, degenerate_entry, log_sets, outcome_fields, selection_fields, versions_record, write_curve, write_selection, write_yaml,
)
from sernoise.training.ednn import (  # noqa: E402
    EDNNSettings, WaveData, check_backbone, grid_search, load_ednn, load_waveforms, open_store, predict_proba,
    read_utterances, save_trainable, store_utterances,
)
from sernoise.training.loop import resolve_device  # noqa: E402
from sernoise.training.predict import (  # noqa: E402
    ScoredRun, labelled_test_utterances, predict_views_to_files,
)


def library_versions() -> dict:
    import huggingface_hub
    import speechbrain
    import transformers

    return {"transformers": transformers.__version__, "speechbrain": speechbrain.__version__,
            "huggingface_hub": huggingface_hub.__version__}


def train(smk) -> None:
    with rule_log(smk) as log:
        p, inp, out = smk.params, smk.input, smk.output
        run = TrainingRun.from_rule(smk.wildcards, p, smk.config, getattr(smk.input, "partition", None))
        threads = int(smk.threads)
        torch.set_num_threads(threads)
        device = resolve_device(p.device)
        backbone = dict(p.backbone)
        seed = run.seed
        name = f"{run.model} ({backbone['label']})" if backbone["label"] else run.model
        log.info("%s on %s: regime %s fold %d rep %d task %s: device %s, %d thread(s), seed %d", name,
                 backbone["folder"], run.regime.name, run.fold, run.rep, run.task, device, threads, seed)

        train_indexes = dict(zip(p.conditions, inp.indexes))
        sets = run.assemble(read_manifest(inp.manifest), pd.read_csv(inp.folds, dtype={"group": str}),
                            augmented_per_clean=p.augmented_per_clean,
                            available={c: store_utterances(index) for c, index in train_indexes.items()})
        log_sets(log, sets)

        tick = time.perf_counter()
        indexes = {CLEAN: inp.clean_index, **train_indexes}
        train = WaveData(load_waveforms(sets.train, indexes), [e.label for e in sets.train])
        val = WaveData(load_waveforms(sets.val, indexes), [e.label for e in sets.val])
        log.info("audio loaded in %.1f s: %.0f s of training speech; class counts %s", time.perf_counter() - tick,
                 train.lengths.sum() / 16000, dict(zip(LABELS, np.bincount(train.labels, minlength=len(LABELS)).tolist())))

        fingerprint = backbone_fingerprint(backbone["folder"])
        settings = EDNNSettings.from_config(p.settings, device=device, min_epochs=run.min_epochs)
        best, selection = grid_search(p.settings, backbone["folder"], train, val, settings, seed, save_path=p.save_path,
                                      progress=log.info, task=run.task_spec, strategy=run.strategy)
        log.info("selected %s: best epoch %d, validation loss %.4f, UAR %.3f; %d of %d parameters trained",
                 best.config.as_dict(), best.best_epoch, best.best_val_loss, best.best_val_uar,
                 best.n_trainable, best.n_parameters)
        degenerate = degenerate_entry(run, best, log)  # raises (on_degenerate: fail) before any output exists

        save_trainable(best.state_dict, out.model)
        write_curve(best, out.curve, out.curve_png, run.title(name))
        write_selection(selection, out.selection)
        write_yaml({
            **selection_fields(run.model, best, selection),
            "backbone": {**backbone, "fingerprint": fingerprint},
            "checkpoint": "trainable parameters only (dense layers + unfrozen wav2vec2 parameters); "
                          "the frozen rest comes from the backbone folder",
            "n_parameters": int(best.n_parameters),
            "n_trainable": int(best.n_trainable),
            "training": {**settings.as_dict(), "optimizer": "Adam", "loss": "cross-entropy",
                         "augmented_per_clean": float(p.augmented_per_clean)},
            **run.record(),
            **outcome_fields(sets, best, device),
            "degenerate": degenerate,
        }, out.hparams)
        write_yaml(versions_record(
            device, threads, libraries=library_versions(),
            inputs={"backbone": backbone["repo_id"] if not backbone["label"]
                    else f"{backbone['label']} (for {backbone['repo_id']})",
                    "backbone_kind": backbone["kind"]},
            runtime={"amp": bool(settings.amp and device == "cuda")},
        ), out.versions)


def predict(smk) -> None:
    """The E-DNN's prediction of one run (``smk``: a one-run job or view)."""
    with rule_log(smk) as log:
        predict_views(smk, [smk], log)


def predict_runs(smk, views, log) -> None:
    """The model registry's ``predict_runs`` entry point: every run (``views``, sernoise.job_views) of a
    ``predict_audio_model`` job in one pass over the test audio."""
    predict_views(smk, views, log)


def predict_views(smk, views, log) -> None:
    """Predictions of the E-DNNs of ``views`` (one prediction job's runs: the same fold, conditions and
    audio datasets) with each condition's test audio read once for all of them, not once per task (the
    demo's jobs: 8 % less time); each view's file is the one :func:`predict` writes for it alone (the
    same waveforms, order and batches)."""
    wc, p, inp = smk.wildcards, smk.params, views[0].input
    torch.set_num_threads(int(smk.threads))
    device = resolve_device(p.device)
    manifest, folds = read_manifest(inp.manifest), pd.read_csv(inp.folds, dtype={"group": str})
    batch = int(p.settings.get("eval_batch_size", p.settings["batch_size"]))
    amp = bool(p.settings.get("amp", True))
    runs = []
    for view in views:
        hparams = yaml.safe_load(open(view.input.hparams, encoding="utf-8"))
        model = load_ednn(view.input.model, hparams, check_backbone(hparams), save_path=p.save_path, device=device)
        task = get_task(view.wildcards.task, smk.config)
        test, labels = labelled_test_utterances(manifest, folds, wc.fold, task, corpus=wc.corpus, config=smk.config)
        runs.append(ScoredRun(test, labels, tuple(task.labels), functools.partial(_score_audio, model, batch, device,
                                                                                  amp)))
        log.info("rep %s %s: fold %s: %d labelled test utterances; device %s", view.wildcards.rep,
                 view.wildcards.task, wc.fold, len(test), device)
    predict_views_to_files(smk, views, runs, [(CLEAN, inp.clean_index)] + list(zip(p.conditions, inp.indexes)),
                           open_source=open_store, read=read_utterances, what="audio", log=log)


def _score_audio(model, batch: int, device, amp: bool, audio: dict, utts: list[str]):
    return predict_proba(model, [audio[u] for u in utts], batch_size=batch, device=device, amp=amp)
