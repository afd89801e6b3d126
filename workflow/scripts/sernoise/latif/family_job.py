"""The jobs of the Latif model families (sernoise.latif.family; rules train_audio_model, predict_audio_model).

:func:`train`: one Latif network of one (model, regime, fold, repetition, task), on the examples every
family of the run trains on (:meth:`sernoise.training.artifacts.TrainingRun.assemble`: the fold's
clean training utterances plus the regime's augmented copies), read as audio and cut into log-spectrogram
segments; validation on the run's validation examples.  Writes into the model folder: model.pt (the
state dict of :class:`sernoise.latif.models.Normalised`: the network and the training statistics),
hparams.yaml, curve.csv/png, selection.csv (one row: the network has no grid) and versions.yaml,
after the degenerate-model check (as for the T-DNN and E-DNN: with training.on_degenerate fail a
flagged model raises before any output is written).

Settings: ``latif.training`` (learning rate, batch size, max_epochs, halve_patience,
stop_patience), ``latif.context`` and ``latif.hop``; from ``training:`` as for every family the seed
(:attr:`TrainingRun.seed`: common to every model and regime of a fold, repetition and task),
``min_epochs``, ``device`` and the strategy: ``standard``, or ``mixup`` (Latif et al.'s mixup on the
segments, :func:`sernoise.latif.training.mixup_batch`, with the strategy's ``alpha``), each selecting
on ``uar`` or ``loss``; other strategies hook into the shared loop's padded sequences, which segments
do not have, and are refused.

:func:`predict`: the trained network on its fold's test-role utterances, clean and in every condition
(TEST-pool audio datasets), in the predictions format of every family
(:func:`sernoise.training.predict.write_predictions`); an utterance's scores are the mean of its
segments' posteriors.  :class:`LatifAttackPredictor`: the same scoring behind the attack's black-box
interface.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from sernoise.attack.models import CountingPredictor
from sernoise.corpora.manifest import read_manifest
from sernoise.latif.family import network_of
from sernoise.latif.models import MODEL_LABELS, Normalised, build_model, count_parameters
from sernoise.latif.spectrogram import CONTEXT, N_BINS, fit_normaliser, log_spectrogram, segment
from sernoise.latif.training import (
    LatifSettings,
    SegmentData,
    predict_utterances,
    segment_probabilities,
    train_segments,
    utterance_posteriors,
)
from sernoise.predictions import CLEAN, prediction_keys
from sernoise.runlog import rule_log
from sernoise.tasks import get_task
from sernoise.training.artifacts import (
    CURVE_COLUMNS,
    TrainingRun,
    degenerate_entry,
    log_sets,
    outcome_fields,
    selection_fields,
    versions_record,
    write_curve,
    write_selection,
    write_yaml,
)
from sernoise.training.data import load_by_condition
from sernoise.training.ednn import SAMPLE_RATE, open_store, read_utterances, store_utterances
from sernoise.training.loop import TrainingError, resolve_device
from sernoise.training.predict import (
    ModelFileError,
    labelled_test_utterances,
    load_weights,
    predict_conditions,
    save_state,
    write_predictions,
)

STRATEGIES = ("standard", "mixup")
SELECTION_METRICS = ("uar", "loss")
EVAL_BATCH_SIZE = 128  # segments per forward pass when scoring (memory only; fixed, so the same bytes)
UTTERANCES_PER_PASS = 256  # utterances whose segments are built and scored together (bounds the memory)


@dataclass(frozen=True)
class LatifHparams:
    """What rebuilds a trained network: hparams.yaml's ``hparams`` entry."""

    network: str
    n_classes: int
    n_bins: int = N_BINS
    context: int = CONTEXT
    hop: int | None = None  # None: = context (no overlap)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def settings_for(run: TrainingRun, section: dict, device: str) -> LatifSettings:
    """The run's :class:`LatifSettings`: ``latif.training`` with the run's seed, the config's
    min_epochs and strategy (mixup and its alpha; the selection metric), on ``device``."""
    strategy = run.strategy
    if strategy.name not in STRATEGIES:
        raise TrainingError(
            f"config key training.strategy.name: the Latif families ({run.model}) train with "
            f"{list(STRATEGIES)}, not {strategy.name!r} (its hooks act on the shared loop's "
            "padded sequences; the Latif loop trains on fixed-size segments)"
        )
    if strategy.selection_metric not in SELECTION_METRICS:
        raise TrainingError(
            f"config key training.strategy.options.selection_metric: the Latif families "
            f"({run.model}) select on {list(SELECTION_METRICS)}, not {strategy.selection_metric!r}"
        )
    mixup = {"mixup": True, "mixup_alpha": float(strategy.options["alpha"])} if strategy.name == "mixup" else {}
    return LatifSettings.from_mapping(
        section.get("training") or {},
        **mixup,
        seed=run.seed,
        device=device,
        min_epochs=run.min_epochs,
        selection_metric=strategy.selection_metric,
    )


def utterance_segments(wave: np.ndarray, context: int, hop: int | None) -> np.ndarray:
    """(n, context, 128) raw (un-normalised) log-spectrogram segments of one 16 kHz waveform."""
    return segment(log_spectrogram(np.asarray(wave, dtype=np.float32), SAMPLE_RATE), context, hop)


def segment_data(blocks: list[np.ndarray], labels) -> SegmentData:
    """The segments of each example (``blocks``, in order) with the example's class: one "utterance" each."""
    if not blocks:
        raise TrainingError("no examples to cut into segments")
    index = np.repeat(np.arange(len(blocks), dtype=np.int64), [len(b) for b in blocks])
    return SegmentData(np.concatenate(blocks), index, np.asarray(labels, dtype=np.int64))


class SegmentScorer:
    """Utterance scores of a trained network on waveforms: segments, softmax per segment, mean per utterance."""

    def __init__(self, model: Normalised, hparams: LatifHparams, *, batch_size: int = EVAL_BATCH_SIZE):
        self.model, self.hparams, self.batch_size = model.eval(), hparams, int(batch_size)

    def segments(self, wave: np.ndarray) -> np.ndarray:
        return utterance_segments(wave, self.hparams.context, self.hparams.hop)

    def score_segments(self, blocks: list[np.ndarray]) -> np.ndarray:
        """(len(blocks), classes) mean posteriors of each utterance's raw segments."""
        out = [np.zeros((0, self.hparams.n_classes))]
        for start in range(0, len(blocks), UTTERANCES_PER_PASS):
            part = blocks[start : start + UTTERANCES_PER_PASS]
            index = np.repeat(np.arange(len(part)), [len(b) for b in part])
            _, posteriors = utterance_posteriors(
                segment_probabilities(self.model, np.concatenate(part), self.batch_size), index
            )
            out.append(posteriors)
        return np.concatenate(out)

    def scores(self, waves: list[np.ndarray]) -> np.ndarray:
        """(len(waves), classes) scores of waveforms, built and scored a bounded number of utterances at a time."""
        parts = [np.zeros((0, self.hparams.n_classes))]
        for start in range(0, len(waves), UTTERANCES_PER_PASS):
            parts.append(self.score_segments([self.segments(w) for w in waves[start : start + UTTERANCES_PER_PASS]]))
        return np.concatenate(parts)


def load(model_pt, hparams_yaml, device="cpu") -> SegmentScorer:
    """The trained network of a model folder (weights_only) behind a :class:`SegmentScorer`."""
    record = yaml.safe_load(Path(hparams_yaml).read_text(encoding="utf-8"))
    if not isinstance(record, dict) or "hparams" not in record:
        raise ModelFileError(f"{hparams_yaml}: no 'hparams' entry")
    try:
        hparams = LatifHparams(**record["hparams"])
    except TypeError as error:
        raise ModelFileError(f"{hparams_yaml}: not the hparams of a Latif network: {error}") from None
    net = build_model(hparams.network, hparams.n_classes, n_bins=hparams.n_bins, context=hparams.context)
    model = Normalised(net, np.zeros(hparams.n_bins, np.float32), np.ones(hparams.n_bins, np.float32))
    model = load_weights(
        model, model_pt, device=device, mismatch=f"weights do not fit the hyper-parameters of {hparams_yaml}: "
    )
    return SegmentScorer(model, hparams)


# ------------------------------------------------------------------------------ jobs


def train(smk) -> None:
    with rule_log(smk) as log:
        p, inp, out = smk.params, smk.input, smk.output
        run = TrainingRun.from_rule(smk.wildcards, p, smk.config, getattr(inp, "partition", None))
        network = network_of(run.model)
        threads = int(smk.threads)
        torch.set_num_threads(threads)
        device = resolve_device(p.device)
        section = p.settings
        settings = settings_for(run, section, device)
        task = run.task_spec
        hparams = LatifHparams(
            network, len(task.labels), N_BINS, int(section.get("context", CONTEXT)), section.get("hop")
        )
        name = MODEL_LABELS[network]
        log.info(
            "%s (%s) regime %s fold %d rep %d task %s: device %s, %d thread(s), seed %d, %s",
            name,
            run.model,
            run.regime.name,
            run.fold,
            run.rep,
            run.task,
            device,
            threads,
            settings.seed,
            "mixup" if settings.mixup else "no mixup",
        )

        train_indexes = dict(zip(p.conditions, inp.indexes))
        sets = run.assemble(
            read_manifest(inp.manifest),
            pd.read_csv(inp.folds, dtype={"group": str}),
            augmented_per_clean=p.augmented_per_clean,
            available={c: store_utterances(index) for c, index in train_indexes.items()},
        )
        log_sets(log, sets)

        tick = time.perf_counter()
        indexes = {CLEAN: inp.clean_index, **train_indexes}

        def read_segments(index, utts):  # each waveform becomes segments at once: no set of waveforms is kept
            return {
                u: utterance_segments(x, hparams.context, hparams.hop)
                for u, x in read_utterances(open_store(index), utts).items()
            }

        train_data = segment_data(
            load_by_condition(sets.train, indexes, read_segments, "audio dataset"), [e.label for e in sets.train]
        )
        val_data = segment_data(
            load_by_condition(sets.val, indexes, read_segments, "audio dataset"), [e.label for e in sets.val]
        )
        mean, std = fit_normaliser(train_data.segments)  # statistics of the training set only
        log.info(
            "segments in %.1f s: %d training (%d examples), %d validation (%d examples); class counts %s",
            time.perf_counter() - tick,
            len(train_data),
            len(sets.train),
            len(val_data),
            len(sets.val),
            dict(zip(task.labels, np.bincount(train_data.labels, minlength=len(task.labels)).tolist())),
        )

        result = train_segments(
            lambda: Normalised(
                build_model(network, hparams.n_classes, n_bins=hparams.n_bins, context=hparams.context), mean, std
            ),
            train_data,
            val_data,
            settings,
            tag=f"{run.model}: ",
        )
        ids, posteriors = predict_utterances(
            result.model, val_data.segments, val_data.utterance_index, settings.eval_batch_size
        )
        outcome = Outcome.of(result, hparams, val_data.labels[ids], posteriors.argmax(axis=1))
        selection = [
            {
                "point": 0,
                **hparams.as_dict(),
                "best_epoch": result.best_epoch,
                "best_val_loss": result.best_val_loss,
                "val_uar_at_best": result.best_val_uar,
                "epochs_run": result.epochs_run,
                "selected": True,
            }
        ]
        log.info(
            "best epoch %d, validation loss %.4f, UAR %.3f",
            result.best_epoch,
            result.best_val_loss,
            result.best_val_uar,
        )
        degenerate = degenerate_entry(run, outcome, log)  # raises (on_degenerate: fail) before any output exists

        save_state(result.state_dict, out.model)
        write_curve(outcome, out.curve, out.curve_png, run.title(f"{name} (Latif)"))
        write_selection(selection, out.selection)
        training = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("seed", "device")}
        write_yaml(
            {
                **selection_fields(run.model, outcome, selection),
                "network": name,
                "n_parameters": int(count_parameters(result.model)),
                "normalisation": "per-bin mean and std of the training segments: buffers mean, std of model.pt",
                "training": {
                    **training,
                    "optimizer": "Adam",
                    "loss": "cross-entropy",
                    "augmented_per_clean": float(p.augmented_per_clean),
                },
                **run.record(),
                "training_segments": int(len(train_data)),
                "validation_segments": int(len(val_data)),
                **outcome_fields(sets, outcome, device),
                "degenerate": degenerate,
            },
            out.hparams,
        )
        write_yaml(versions_record(device, threads), out.versions)


@dataclass(frozen=True)
class Outcome:
    """A Latif training as the shared artifacts code reads a result (sernoise.training.artifacts: the curve,
    the selection fields, the degenerate check and the outcome fields of hparams.yaml)."""

    config: LatifHparams
    curve: list[dict]
    best_epoch: int
    best_val_loss: float
    best_val_uar: float
    epochs_run: int
    stopped_early: bool
    val_labels: np.ndarray  # the validation examples' classes ...
    val_predicted: np.ndarray  # ... and the best epoch's predictions of them (the degenerate check)

    @classmethod
    def of(cls, result, config: LatifHparams, val_labels, val_predicted) -> "Outcome":
        return cls(
            config,
            [{k: row[k] for k in CURVE_COLUMNS} for row in result.history],
            int(result.best_epoch),
            float(result.best_val_loss),
            float(result.best_val_uar),
            int(result.epochs_run),
            bool(result.stopped_early),
            np.asarray(val_labels),
            np.asarray(val_predicted),
        )


def predict(smk) -> None:
    with rule_log(smk) as log:
        wc, p, inp = smk.wildcards, smk.params, smk.input
        torch.set_num_threads(int(smk.threads))
        device = resolve_device(p.device)
        scorer = load(inp.model, inp.hparams, device=device)
        task = get_task(wc.task, smk.config)
        if scorer.hparams.n_classes != len(task.labels):
            raise ModelFileError(
                f"{inp.model}: {scorer.hparams.n_classes} outputs, task {wc.task} has {len(task.labels)} classes"
            )
        test, labels = labelled_test_utterances(
            read_manifest(inp.manifest),
            pd.read_csv(inp.folds, dtype={"group": str}),
            wc.fold,
            task,
            corpus=wc.corpus,
            config=smk.config,
        )
        log.info("fold %s: %d labelled test utterances; device %s", wc.fold, len(test), device)

        def score(store, utts: list[str]):
            audio = read_utterances(store, utts)
            return scorer.scores([audio[u] for u in utts])

        frames = predict_conditions(
            [(CLEAN, inp.clean_index)] + list(zip(p.conditions, inp.indexes)),
            test,
            labels,
            open_source=open_store,
            score=score,
            what="audio",
            log=log,
            classes=task.labels,
        )
        keys = prediction_keys(wc.corpus, wc.model, wc.regime, wc.fold, wc.rep, wc.task)
        table = write_predictions(frames, smk.output[0], keys, task.labels)
        log.info("%d predictions -> %s", len(table), smk.output[0])


class LatifAttackPredictor(CountingPredictor):
    """A trained Latif network on raw 16 kHz audio for the black-box attack: the log-spectrogram segments
    of each sample (``seconds["features"]``), the mean of their posteriors, argmax; the path of
    :func:`predict`, so a clean utterance gets the label of the predictions file."""

    def __init__(self, scorer: SegmentScorer):
        super().__init__()
        self.scorer = scorer

    @classmethod
    def from_folder(cls, folder, device: str = "cpu") -> "LatifAttackPredictor":
        folder = Path(folder)
        return cls(load(folder / "model.pt", folder / "hparams.yaml", device=device))

    def features(self, audio: np.ndarray) -> np.ndarray:
        return self.scorer.segments(audio)

    def model_scores(self, features: list[np.ndarray]) -> np.ndarray:
        return self.scorer.score_segments(features)
