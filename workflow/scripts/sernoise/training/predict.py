"""Saving, loading and running a trained T-DNN; the predictions file format.

Shared with the E-DNN (:mod:`sernoise.training.ednn`): saving and loading weights
(:func:`save_state`, :func:`load_weights`), the test utterances and the loop over conditions of
the predict rules (:func:`labelled_test_utterances`, :func:`predict_conditions`).

A model folder (results/{corpus}/models/tdnn/{regime}/fold{k}/rep{r}/{task}/) holds
``model.pt`` (the state_dict only, loaded with ``torch.load(weights_only=True)``: no pickled
code is ever executed), ``hparams.yaml`` (the selected grid point under ``hparams``) and
``norm.npz`` (the training z-normalisation statistics).

Predictions: one CSV per model, in the format of :mod:`sernoise.predictions` (consumed by the
metrics and tables code).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import yaml

from sernoise.io import write_csv_atomic
from sernoise.models.tdnn import TDNN, TDNNConfig
from sernoise.predictions import (
    CLEAN, KEY_COLUMNS, LABELS, prediction_columns, prediction_keys, row_columns, score_columns,
)
from sernoise.training.data import labels_of, load_norm, normalise, role_utterances
from sernoise.training.loop import predict_proba


class ModelFileError(ValueError):
    """A model folder is incomplete or its files do not fit together."""


def save_state(model_or_state, path) -> None:
    """Save a state_dict (tensors only) with torch.save."""
    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else model_or_state
    torch.save({k: v.detach().cpu() for k, v in state.items()}, path)


def load_weights(model: torch.nn.Module, model_pt, load_state=None, *, device="cpu", mismatch: str = ""):
    """``model`` with the weights of ``model_pt``, on ``device``, in eval mode.

    The file is read with ``torch.load(weights_only=True)``: tensors only, no pickled code is ever
    executed.  ``load_state`` puts them into the model (default ``model.load_state_dict``); weights
    that do not fit it are a :class:`ModelFileError` naming the file, then ``mismatch``.
    """
    state = torch.load(model_pt, map_location="cpu", weights_only=True)
    try:
        (load_state or model.load_state_dict)(state)
    except (RuntimeError, ValueError) as error:  # load_state_dict raises RuntimeError, EDNN.load_trainable_state ValueError
        raise ModelFileError(f"{model_pt}: {mismatch}{error}") from None
    return model.to(device).eval()


def load_model(model_pt, hparams_yaml, device="cpu") -> TDNN:
    """The T-DNN of ``hparams.yaml`` with the weights of ``model.pt`` (weights_only=True), in eval mode."""
    hparams = yaml.safe_load(Path(hparams_yaml).read_text(encoding="utf-8"))
    if not isinstance(hparams, dict) or "hparams" not in hparams:
        raise ModelFileError(f"{hparams_yaml}: no 'hparams' entry")
    model = TDNN(TDNNConfig.from_dict(hparams["hparams"]))
    return load_weights(model, model_pt, device=device,
                        mismatch=f"weights do not fit the hyper-parameters of {hparams_yaml}: ")


def predictions_frame(condition: str, utt_ids, true, scores: np.ndarray, labels=LABELS) -> pd.DataFrame:
    """Rows of the predictions file for one condition (``true``: class indices into ``labels``, the
    task's classes; ``scores``: one column per class)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, len(labels))
    names = np.asarray(labels)
    return pd.DataFrame({
        "condition": condition,
        "utt_id": list(utt_ids),
        "true": names[np.asarray(true, dtype=np.int64)] if len(scores) else [],
        "predicted": names[scores.argmax(axis=1)] if len(scores) else [],
        **{column: scores[:, k] for k, column in enumerate(score_columns(labels))},
    }, columns=row_columns(labels))


def predict_features(model: TDNN, features: list[np.ndarray], norm, *, batch_size: int = 64, device="cpu") -> np.ndarray:
    """Softmax scores (n, 3) for raw (un-normalised) feature sequences, normalised with the model's statistics
    (``norm``: its norm.npz, or the (mean, std) already read from it)."""
    mean, std = norm if isinstance(norm, tuple) else load_norm(norm)
    return predict_proba(model, normalise(features, mean, std), batch_size=batch_size, device=device)


def write_predictions(frames: list[pd.DataFrame], path, keys: dict, labels=LABELS) -> pd.DataFrame:
    """The prediction file of one model: its ``keys`` (:func:`sernoise.predictions.prediction_keys`:
    corpus, model, regime, fold, rep, task) on every row of the condition ``frames`` (of the task's
    class ``labels``)."""
    missing = [c for c in KEY_COLUMNS if c not in keys]
    if missing:
        raise ValueError(f"{path}: prediction key(s) {missing} not given")
    rows = row_columns(labels)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=rows)
    table = table[rows].assign(**{c: keys[c] for c in KEY_COLUMNS})[prediction_columns(labels)]
    write_csv_atomic(table, path, float_format="%.6f")
    return table


def labelled_test_utterances(manifest: pd.DataFrame, folds: pd.DataFrame, fold, task, *, corpus: str | None = None,
                             config=None) -> tuple[list[str], dict[str, int]]:
    """The sorted test-role utterances of ``fold`` that have a ``task`` label, and utt_id -> class index
    (``task``, ``corpus``, ``config``: as :func:`sernoise.training.data.labels_of`)."""
    labels = labels_of(manifest, task, corpus=corpus, config=config)
    return [u for u in role_utterances(manifest, folds, int(fold), "test") if u in labels], labels


@dataclass(frozen=True)
class ScoredRun:
    """One model's part of a prediction pass: its labelled test utterances (``test``, ``labels``: utt_id
    -> class index into ``classes``) and ``score(data, utt_ids)``, its (n, classes) scores of those
    utterances from what the pass's ``read`` returned."""

    test: list
    labels: dict
    classes: tuple
    score: Callable


def predict_conditions_runs(sources, runs, *, open_source, read, what: str, log=None) -> list[list[pd.DataFrame]]:
    """Predictions frames of several models (``runs``, :class:`ScoredRun`) in each (condition, source) of
    ``sources`` (clean first), one list per run: each condition is opened and read once for all of them.

    ``open_source(source)`` opens the data of a condition (it answers ``utt_id in ...``);
    ``read(opened, utt_ids)`` reads the utterances any run needs, and each run scores its own from that.
    A condition holds only its utterances with status ok, so a test utterance it lacks is left out;
    clean data (``what``: features, audio) must hold every test utterance.  A run's frames are the
    same as :func:`predict_conditions` gives it alone: the same utterances in the same order.
    """
    frames = [[] for _ in runs]
    for condition, source in sources:
        tick = time.perf_counter()
        opened = open_source(source)
        present = [[u for u in run.test if u in opened] for run in runs]
        for run, utts in zip(runs, present):
            if condition == CLEAN and len(utts) != len(run.test):
                raise ValueError(f"{source}: {len(run.test) - len(utts)} test utterance(s) have no clean {what}")
        data = read(opened, list(dict.fromkeys(u for utts in present for u in utts)))
        for run, utts, out in zip(runs, present, frames):
            out.append(predictions_frame(condition, utts, [run.labels[u] for u in utts], run.score(data, utts),
                                         run.classes))
        if log is not None:
            models = f", {len(runs)} models" if len(runs) > 1 else ""
            log.info("%s: %d utterances%s in %.1f s", condition, max(map(len, present), default=0), models,
                     time.perf_counter() - tick)
    return frames


def predict_views_to_files(smk, views, runs: list[ScoredRun], sources, *, open_source, read, what: str,
                           log) -> None:
    """The end of a family's ``predict_runs`` entry point: the runs (``runs``, one per view of the job
    ``smk``, sernoise.job_views) scored in one pass over ``sources`` (:func:`predict_conditions_runs`),
    each view's predictions file written, and the utterances scored per second logged."""
    wc = smk.wildcards
    tick = time.perf_counter()
    frames = predict_conditions_runs(sources, runs, open_source=open_source, read=read, what=what, log=log)
    seconds = time.perf_counter() - tick
    for view, run, run_frames in zip(views, runs, frames):
        keys = prediction_keys(wc.corpus, wc.model, wc.regime, wc.fold, view.wildcards.rep, view.wildcards.task)
        table = write_predictions(run_frames, view.output[0], keys, run.classes)
        log.info("%d predictions -> %s", len(table), view.output[0])
    scored = sum(len(f) for run_frames in frames for f in run_frames)
    log.info("%d utterances scored (%d models) in %.1f s: %.0f utterances/s", scored, len(runs), seconds,
             scored / max(seconds, 1e-9))


def predict_conditions(sources, test: list[str], labels: dict[str, int], *, open_source, score, what: str,
                       log=None, classes=LABELS) -> list[pd.DataFrame]:
    """Predictions frames of one model on ``test`` in each (condition, source) of ``sources`` (clean
    first): :func:`predict_conditions_runs` with one run whose ``score(opened, utt_ids)`` reads the
    opened source itself."""
    run = ScoredRun(list(test), labels, tuple(classes), score)
    return predict_conditions_runs(sources, [run], open_source=open_source, read=lambda opened, utts: opened,
                                   what=what, log=log)[0]

