"""Torch training criteria of the tasks (:mod:`sernoise.tasks`), kept out of that module so it needs no torch.

* Classification (bins, categorical): :class:`torch.nn.CrossEntropyLoss`, mean over the batch,
  optionally class-weighted.  It takes class indices (the default) or class probabilities
  (soft targets, e.g. from mixup); with probabilities and class weights torch averages over the
  batch size, not over the summed weights.
* Dimensional: :class:`CCCLoss`, 1 - CCC per attribute over the batch, averaged over the
  attributes (Leem et al., Eq. 1, divided by the number of attributes so that it lies in [0, 2]
  whatever their number).
"""

from __future__ import annotations

import torch
from torch import nn


def ccc_per_column(predicted: torch.Tensor, true: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(k,) concordance correlation coefficients of the columns of (n, k) predictions and targets (population moments).

    ``eps`` keeps the value finite when both columns are constant (the gradient then pushes the
    predictions apart from that degenerate point rather than producing NaN).
    """
    predicted, true = predicted.float(), true.float()
    mp, mt = predicted.mean(dim=0), true.mean(dim=0)
    vp = ((predicted - mp) ** 2).mean(dim=0)
    vt = ((true - mt) ** 2).mean(dim=0)
    cov = ((predicted - mp) * (true - mt)).mean(dim=0)
    return 2 * cov / (vp + vt + (mp - mt) ** 2 + eps)


class CCCLoss(nn.Module):
    """1 - CCC, averaged over the attributes (columns); targets (n, k) floats."""

    def forward(self, predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return 1 - ccc_per_column(predicted, true.reshape(predicted.shape)).mean()


def task_loss(task, weight: torch.Tensor | None = None) -> nn.Module:
    """The criterion of ``task`` (None: a classification task): cross-entropy (``weight``: class weights) or CCC."""
    if task is None or task.is_classification:
        return nn.CrossEntropyLoss(weight=weight)
    if weight is not None:
        raise ValueError(f"task {task.name!r}: class weights apply to classification tasks only")
    return CCCLoss()


def weighted_loss(criterion: nn.Module, outputs: torch.Tensor, targets: torch.Tensor,
                  sample_weight: torch.Tensor) -> torch.Tensor:
    """The cross-entropy ``criterion`` with each example's loss multiplied by ``sample_weight``.

    A weighted mean: sum(w_i * l_i) / sum(w_i * c_i), ``c_i`` the class weight of a hard target
    (1 without class weights or with soft targets), so that equal sample weights give exactly
    the unweighted criterion.  The CCC is not a sum over examples: weights need a classification task.
    """
    if not isinstance(criterion, nn.CrossEntropyLoss):
        raise ValueError("per-example weights need a classification (cross-entropy) task")
    per = nn.functional.cross_entropy(outputs, targets, weight=criterion.weight, reduction="none")
    norm = sample_weight
    if criterion.weight is not None and not targets.dtype.is_floating_point:
        norm = sample_weight * criterion.weight[targets]
    return (sample_weight * per).sum() / norm.sum().clamp(min=1e-12)
