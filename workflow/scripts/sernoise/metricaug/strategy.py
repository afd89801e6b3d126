"""The ``metricaug`` training strategy: each epoch trains on the clean training set plus N items
drawn from the superset's training part by level weights (Wu & Lee Eq. 1-3, Algorithm 1).

The strategy is an ``items`` hook of the shared epoch loop (:mod:`sernoise.training.strategies`).
Its training set is laid out as ``[clean training examples | superset training items]``; at the
start of epoch i the hook

1. (i > 1) evaluates the model as it stands after epoch i - 1 on the clean validation set and on
   each level's validation items (weighted F1), and turns the gaps into weights (Algorithm 1,
   :func:`~sernoise.metricaug.weights.level_weights`); epoch 1 uses uniform weights;
2. draws ``N`` superset items by those weights with the epoch's seeded generator
   (:func:`~sernoise.metricaug.weights.draw_items`), N = ``n_per_epoch`` x the clean training size;
3. returns every clean index plus the drawn ones, and keeps one row per epoch (weights, gaps,
   counts, WF1s) in :attr:`MetricAugItems.history` for the model folder's weights CSV and plot.

The data are not known when the strategy is built from config options (:func:`metricaug`), so the
training job binds them (:meth:`MetricAugItems.bind`) before training; an unbound strategy fails
naming what is missing.  Selection defaults to validation weighted F1 (the paper's criterion).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sernoise.metricaug.levels import DEFAULT_K, METHODS
from sernoise.metricaug.superset import METRICS
from sernoise.metricaug.weights import DEFAULT_FLOOR, draw_items, level_weights, uniform_weights
from sernoise.training.strategies import EpochContext, Strategy, StrategyError, register_strategy


class MetricAugItems:
    """The ``items`` hook (see the module doc)."""

    def __init__(self, metric: str, levels: str, k: int, floor: float, n_per_epoch: float):
        self.metric, self.levels, self.k, self.floor, self.n_per_epoch = metric, levels, k, floor, n_per_epoch
        self.n_clean: int | None = None
        self.item_levels: np.ndarray | None = None
        self.evaluate: Callable | None = None
        self.history: list[dict] = []

    def bind(self, *, n_clean: int, item_levels, evaluate: Callable) -> "MetricAugItems":
        """``item_levels``: level (1..K, 0 never drawn) of each superset training item, in training-set
        order after the ``n_clean`` clean examples; ``evaluate(model, clean_wf1=None)`` -> (clean WF1, [WF1 of
        level k]), given the clean WF1 when the loop measured it already
        (:func:`sernoise.metricaug.train.level_evaluator`)."""
        self.n_clean, self.item_levels, self.evaluate = int(n_clean), np.asarray(item_levels), evaluate
        self.history = []
        return self

    def n_draw(self) -> int:
        return int(round(self.n_per_epoch * self.n_clean))

    def __call__(self, ctx: EpochContext) -> np.ndarray:
        if self.evaluate is None:
            raise StrategyError("strategy 'metricaug' has no superset bound: train it through the MetricAug "
                                "training job (sernoise.metricaug.job), which binds the superset's levels")
        if self.n_clean + self.item_levels.size != ctx.n_train:
            raise StrategyError(f"strategy 'metricaug': {self.n_clean} clean + {self.item_levels.size} superset "
                                f"items bound, but the training set holds {ctx.n_train} examples")
        if ctx.epoch == 1:
            weights, gaps, clean, per_level = uniform_weights(self.k), [math.nan] * self.k, math.nan, [math.nan] * self.k
        else:
            # The loop scored the clean validation set with this very model after the previous epoch
            # (when it selects by weighted F1, as MetricAug does): the gap's clean side is that number,
            # not a second pass over the same utterances.
            measured = ctx.curve[-1].get("val_f1_weighted") if ctx.curve else None
            clean, per_level = self.evaluate(ctx.model, clean_wf1=measured)
            gaps = [clean - v for v in per_level]
            # A level without validation items (a small GMM level can have none) gives no evidence
            # that it is hard: it counts as the floor, like a negative gap (its gap stays NaN in the history).
            weights = level_weights([g if math.isfinite(g) else 0.0 for g in gaps], self.floor)
        drawn, counts = draw_items(self.item_levels, weights, self.n_draw(), ctx.rng)
        self.history.append({
            "epoch": ctx.epoch, "val_wf1_clean": clean,
            **{f"val_wf1_level{k + 1}": v for k, v in enumerate(per_level)},
            **{f"gap_level{k + 1}": g for k, g in enumerate(gaps)},
            **{f"weight_level{k + 1}": float(w) for k, w in enumerate(weights)},
            **{f"drawn_level{k + 1}": int(c) for k, c in enumerate(counts)},
        })
        return np.concatenate([np.arange(self.n_clean), self.n_clean + drawn]).astype(np.int64)


def metricaug(metric: str = "stoi", levels: str = "gmm", k: int = DEFAULT_K, floor: float = DEFAULT_FLOOR,
              n_per_epoch: float = 1.0, selection_metric: str = "f1_weighted") -> Strategy:
    """The ``metricaug`` strategy (options: metric stoi|pesq|fwsnrseg, levels uniform|gmm, k, floor,
    n_per_epoch = N as a multiple of the clean training size, selection_metric)."""
    if metric not in METRICS:
        raise StrategyError(f"strategy metricaug: metric must be one of {list(METRICS)}, got {metric!r}")
    if levels not in METHODS:
        raise StrategyError(f"strategy metricaug: levels must be one of {list(METHODS)}, got {levels!r}")
    if not isinstance(k, int) or k < 1:
        raise StrategyError(f"strategy metricaug: k must be a positive integer, got {k!r}")
    if not 0 <= floor <= 1 / k:
        raise StrategyError(f"strategy metricaug: floor must be in [0, 1/k], got {floor}")
    if not n_per_epoch > 0:
        raise StrategyError(f"strategy metricaug: n_per_epoch must be > 0, got {n_per_epoch}")
    hook = MetricAugItems(metric, levels, k, float(floor), float(n_per_epoch))
    return Strategy("metricaug", items=hook, selection_metric=selection_metric,
                    options={"metric": metric, "levels": levels, "k": k, "floor": float(floor),
                             "n_per_epoch": float(n_per_epoch)})


register_strategy("metricaug", metricaug, replace=True, stage="metricaug")
