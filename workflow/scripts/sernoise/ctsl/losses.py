"""The losses of Leem et al. (Eqs. 1-3): CCC task loss, RMSE transfer loss, InfoNCE contrastive loss.

* :func:`ccc_sum_loss`: Eq. 1, ``sum_a (1 - CCC_a)`` over the attributes (summed, as in the paper;
  the workflow's :class:`sernoise.training.losses.CCCLoss` averages them instead).
* :func:`transfer_loss`: Eq. 2, the mean over the batch of the RMSE between the teacher's embedding
  of the clean utterance and the student's embedding of its noisy copy.  The paper writes
  ``sqrt((T - S)^2)`` per sample; with vector embeddings that is the root of the mean squared
  difference over the embedding's dimensions (the RMSE the text names).
* :func:`contrastive_loss`: Eq. 3 (InfoNCE, van den Oord et al.) with cosine similarity and
  temperature ``tau``: row i's positive is the teacher's clean embedding of item i, its negatives
  the student's noisy embeddings of the other items of the batch whose labels differ
  (:func:`negative_mask`).  The denominator holds the positive and the negatives (the standard
  InfoNCE; Eq. 3 as printed sums over the negatives only, which is unbounded below).  A row with
  no negative has nothing to contrast with: it is left out of the mean, and a batch where no row
  has a negative gives 0 (connected to the graph, so backward works and adds nothing).

Gradients: the teacher's embeddings come from a frozen, no-grad teacher
(:func:`sernoise.training.strategies.frozen`); the losses detach them anyway, so that only the
student learns from them whatever the caller passes.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from sernoise.training.losses import ccc_per_column

TAU = 0.1
# Leem et al. §2: two items are negatives of each other when an attribute differs by more than
# this on the rating scale (the corpus scale, e.g. 1-7 for MSP-Podcast).
RATING_MARGIN = 0.5


def ccc_sum_loss(predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``sum over attributes of (1 - CCC)`` of (n, k) predictions against (n, k) targets."""
    return (1 - ccc_per_column(predicted, true.reshape(predicted.shape))).sum()


class CCCSumLoss(torch.nn.Module):
    """:func:`ccc_sum_loss` as a criterion (the task loss of a dimensional task under CTSL)."""

    def forward(self, predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return ccc_sum_loss(predicted, true)


def transfer_loss(teacher_clean: torch.Tensor, student_noisy: torch.Tensor) -> torch.Tensor:
    """Eq. 2: mean over the batch of each row's RMSE between the teacher's and the student's embedding."""
    if teacher_clean.shape != student_noisy.shape or teacher_clean.dim() != 2:
        raise ValueError(f"transfer loss: expected two (batch, dim) embeddings of one shape, got "
                         f"{tuple(teacher_clean.shape)} and {tuple(student_noisy.shape)}")
    diff = student_noisy.float() - teacher_clean.detach().float()
    return diff.pow(2).mean(dim=1).sqrt().mean()


def label_margin(scale: tuple[float, float], target_range: tuple[float, float] = (-1.0, 1.0),
                 margin: float = RATING_MARGIN) -> float:
    """``margin`` rating points of a corpus ``scale`` in target units (tasks rescale ratings onto ``target_range``)."""
    lo, hi = scale
    a, b = target_range
    return float(margin) * (b - a) / (hi - lo)


def negative_mask(targets: torch.Tensor, margin: float | None = None) -> torch.Tensor:
    """(n, n) bool: True where item j is a negative of item i (their labels differ; never i itself).

    Class indices (1-d integer ``targets``): a different class.  Ratings ((n, k) floats):
    at least one attribute differs by more than ``margin`` (in the units of ``targets``; see
    :func:`label_margin`).  Soft targets (class probabilities) are compared by their argmax.
    """
    if targets.dim() == 1 and not targets.dtype.is_floating_point:
        differ = targets[:, None] != targets[None, :]
    elif targets.dim() == 2 and targets.dtype.is_floating_point and margin is None:
        classes = targets.argmax(dim=1)  # soft targets
        differ = classes[:, None] != classes[None, :]
    elif targets.dim() == 2 and targets.dtype.is_floating_point:
        differ = ((targets[:, None, :] - targets[None, :, :]).abs() > margin).any(dim=2)
    else:
        raise ValueError(f"negative selection: expected class indices (n,) or ratings (n, k), got "
                         f"{tuple(targets.shape)} {targets.dtype}")
    eye = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    return differ & ~eye


def contrastive_loss(teacher_clean: torch.Tensor, student_noisy: torch.Tensor, negatives: torch.Tensor,
                     tau: float = TAU) -> torch.Tensor:
    """Eq. 3 (see the module doc): InfoNCE over the rows that have at least one negative."""
    if teacher_clean.shape != student_noisy.shape or teacher_clean.dim() != 2:
        raise ValueError(f"contrastive loss: expected two (batch, dim) embeddings of one shape, got "
                         f"{tuple(teacher_clean.shape)} and {tuple(student_noisy.shape)}")
    n = len(student_noisy)
    if negatives.shape != (n, n) or negatives.dtype != torch.bool:
        raise ValueError(f"contrastive loss: negatives must be a ({n}, {n}) bool mask")
    if not tau > 0:
        raise ValueError(f"contrastive loss: temperature must be > 0, got {tau}")
    student = F.normalize(student_noisy.float(), dim=1)
    teacher = F.normalize(teacher_clean.detach().float(), dim=1)
    positive = (student * teacher).sum(dim=1, keepdim=True) / tau  # (n, 1)
    others = (student @ student.T) / tau  # (n, n): cos(S_i, S_j)
    others = others.masked_fill(~negatives, float("-inf"))
    logits = torch.cat([positive, others], dim=1)
    per_row = torch.logsumexp(logits, dim=1) - positive[:, 0]  # -log softmax of the positive
    has_negative = negatives.any(dim=1)
    if not bool(has_negative.any()):
        return student_noisy.sum() * 0.0
    return per_row[has_negative].mean()
