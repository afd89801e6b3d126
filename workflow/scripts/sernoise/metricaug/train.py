"""Training of the MetricAug head (Wu & Lee §2.2, §3): Adam, learning rate 1e-3, batch 32, early
stopping with patience 10, the best epoch by validation weighted F1, H from a grid.

The epochs, early stopping, best-epoch selection and grid search are the shared loop's
(:func:`sernoise.training.loop.train_one` with the head and Adam in place of the T-DNN and
RMSprop; :func:`~sernoise.training.loop.search_grid`).  With the
``metricaug`` strategy the training set is ``[clean | superset training items]`` and the hook
(:class:`~sernoise.metricaug.strategy.MetricAugItems`) is bound to it for every grid point, so
each point starts from uniform weights and its own weight history.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sernoise.evaluation.metrics import f1_weighted
from sernoise.models.metricaug_head import HeadConfig, MetricAugHead
from sernoise.tasks import Task
from sernoise.training.loop import SequenceData, TrainResult, TrainSettings, predict_proba, search_grid, train_one
from sernoise.training.strategies import Strategy


def weighted_f1(model, arrays: list[np.ndarray], labels: np.ndarray, batch_size: int, device) -> float:
    """Weighted F1 of ``model`` on normalised ``arrays`` (NaN for an empty set)."""
    if not len(arrays):
        return float("nan")
    predicted = predict_proba(model, arrays, batch_size, device).argmax(axis=1)
    labels = np.asarray(labels)
    # over the classes seen in either, as scikit-learn's f1_score without labels= (not imported: issue 17)
    return f1_weighted(labels, predicted, np.union1d(labels, predicted))


def level_evaluator(clean: SequenceData, levels: list[SequenceData], batch_size: int, device) -> Callable:
    """``evaluate(model, clean_wf1=None)`` -> (WF1 on clean validation, [WF1 on each level's validation items]):
    the gaps of Algorithm 1 (Eq. 5).  ``clean_wf1``: the clean validation WF1 of this model when the caller
    has it already (the training loop measures it after every epoch), so it is not computed twice."""

    def evaluate(model, clean_wf1=None):
        if clean_wf1 is None:
            clean_wf1 = weighted_f1(model, clean.arrays, clean.labels, batch_size, device)
        return clean_wf1, [weighted_f1(model, level.arrays, level.labels, batch_size, device) for level in levels]

    return evaluate


def train_head(config: HeadConfig, train: SequenceData, val: SequenceData, settings: TrainSettings, seed: int, *,
               task: Task, strategy: Strategy | None = None, progress=None, tag: str = "") -> TrainResult:
    """One MetricAug head, trained with Adam and early stopping (the shared loop); best epoch's state on the CPU."""
    return train_one(config, train, val, settings, seed, progress=progress, tag=tag, task=task, strategy=strategy,
                     model_class=MetricAugHead, optimiser_class=torch.optim.Adam)


def search_model(entry, config: dict, section: dict, train: SequenceData, val: SequenceData, settings: TrainSettings,
                 seed: int, *, task: Task, strategy: Strategy, bind: Callable | None = None, progress=None):
    """Every hyper-parameter point of the MetricAug model ``entry`` (:mod:`sernoise.metricaug.models`) trained
    with the same seed; (best result, selection rows, the best point's strategy history).  ``bind()``
    (re)binds the strategy's data before each point, so each point starts from uniform weights."""
    points = entry.points(config, section, train.arrays[0].shape[1], task.output_size)
    histories = {}

    def train_point(point, tag):
        if bind is not None:
            bind()
        result = train_one(point, train, val, settings, seed, progress=progress, tag=tag, task=task,
                           strategy=strategy, model_class=entry.model_class,
                           optimiser_class=entry.optimiser_class() if entry.optimiser_class else None)
        histories[point] = list(getattr(strategy.items, "history", []))
        return result

    best, rows = search_grid(points, entry.keys(), train_point, progress=progress, select=strategy.selection_metric)
    return best, rows, histories[best.config]


def search_hidden(hidden_sizes, train: SequenceData, val: SequenceData, settings: TrainSettings, seed: int, *,
                  task: Task, strategy: Strategy, bind: Callable | None = None, progress=None):
    """The head (:func:`search_model` with ``metricaug_head``) for every H of ``hidden_sizes``."""
    from sernoise.metricaug.models import get_metricaug_model

    return search_model(get_metricaug_model("metricaug_head"), {}, {"hidden": list(hidden_sizes)}, train, val,
                        settings, seed, task=task, strategy=strategy, bind=bind, progress=progress)
