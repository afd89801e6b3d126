"""Degenerate-model check: did a trained classifier learn anything its validation set can show?

A run whose training loss never leaves ln(classes) ends with a model that predicts one class,
or guesses; its test UAR then enters the tables as if it were a result.  After every training
the job checks the selected model's validation predictions (:func:`check`) and records the
outcome in hparams.yaml (``degenerate:``); config ``training.on_degenerate`` says whether a
flagged model fails the job or only warns.

A model is flagged when

(a) every validation prediction is the same class, or
(b) its validation UAR is not above the UAR of a *chance predictor* by more than a margin the
    validation set justifies: ``UAR <= chance + margin``.

Chance predictor (the null hypothesis): predictions drawn independently of the true label,
class ``k`` with probability ``q_k`` = the fraction of validation examples the model itself
assigned to ``k`` (its observed prediction counts).  For a true class ``k`` with ``n_k``
validation examples its recall is then Binomial(n_k, q_k) / n_k, and recalls of different
classes are independent (disjoint examples), so over the ``K`` classes present in the labels

    chance = E[UAR] = (1/K) sum_k q_k               (1 / K when every prediction is a present class)
    var    = (1/K^2) sum_k q_k (1 - q_k) / n_k
    margin = z_(1-alpha) * sqrt(var)                 (one-sided normal bound, level alpha)

Why this null: conditioning on the model's own prediction counts asks "could these counts,
spread over the examples at random, have scored this UAR?"; a model that leans to one class
gets the (smaller) spread of such a guesser instead of a uniform guesser's.  Why a normal
bound: UAR is a mean of independent scaled binomials, so it is close to normal once every
``n_k q_k (1 - q_k)`` is a few units (the demo's validation sets hold 80+ examples per class);
it needs no random draws (a permutation test would need a seed and thousands of passes) and
gives the same answer for the same predictions.  With few examples per class the normal bound
is approximate.  ``alpha`` (config ``training.degenerate_alpha``, default 0.05) is the chance
that a true guesser escapes the flag; the margin shrinks as 1 / sqrt(n).

Pure NumPy (and the standard library's normal quantile): unit-tested without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_ALPHA = 0.05
ACTIONS = ("warn", "fail")


class DegenerateModelError(RuntimeError):
    """A trained model is degenerate and config ``training.on_degenerate`` is ``fail``."""


@dataclass(frozen=True)
class DegenerateCheck:
    flagged: bool
    reason: str | None  # why it is flagged (None when it is not)
    uar: float
    chance: float
    margin: float
    alpha: float
    n: int
    predicted_counts: tuple[int, ...]  # validation predictions per class index
    true_counts: tuple[int, ...]  # validation examples per class index

    def record(self, labels) -> dict:
        """The hparams.yaml entry (plain types; class counts keyed by label)."""
        return {
            "checked": True,
            "flagged": self.flagged,
            "reason": self.reason,
            "val_uar": self.uar,
            "chance": self.chance,
            "margin": self.margin,
            "alpha": self.alpha,
            "n_val": self.n,
            "predicted_counts": dict(zip(labels, self.predicted_counts)),
            "true_counts": dict(zip(labels, self.true_counts)),
        }


def chance_margin(true_counts, predicted_counts, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """(chance UAR, margin) of the chance predictor with the model's prediction counts (see the module doc).

    Classes absent from the labels have no recall and do not enter either value.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n_k = np.asarray(true_counts, dtype=np.float64)
    q = np.asarray(predicted_counts, dtype=np.float64)
    q = q / q.sum()
    present = n_k > 0
    k = int(present.sum())
    chance = float(q[present].sum() / k)
    variance = float(np.sum(q[present] * (1 - q[present]) / n_k[present]) / k ** 2)
    return chance, float(NormalDist().inv_cdf(1 - alpha) * np.sqrt(variance))


def check(true, predicted, n_classes: int, *, alpha: float = DEFAULT_ALPHA, labels=None) -> DegenerateCheck:
    """Check validation class indices ``true`` against a model's predicted class indices ``predicted``.

    ``labels`` name the classes in the reason (default: the indices).
    """
    true = np.asarray(true, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if true.shape != predicted.shape or true.ndim != 1 or true.size == 0:
        raise ValueError(f"need as many predictions as labels (at least one), got {predicted.shape} and {true.shape}")
    if true.min() < 0 or predicted.min() < 0 or max(true.max(), predicted.max()) >= n_classes:
        raise ValueError(f"class indices must be in [0, {n_classes})")
    names = [str(x) for x in (labels if labels is not None else range(n_classes))]
    true_counts = np.bincount(true, minlength=n_classes)
    predicted_counts = np.bincount(predicted, minlength=n_classes)
    present = np.flatnonzero(true_counts)
    uar = float(np.mean([np.mean(predicted[true == k] == k) for k in present]))
    chance, margin = chance_margin(true_counts, predicted_counts, alpha)
    used = np.flatnonzero(predicted_counts)
    if len(used) == 1:
        reason = f"all {true.size} validation predictions are class {names[used[0]]!r}"
    elif not uar > chance + margin:
        reason = (f"validation UAR {uar:.3f} is not above chance {chance:.3f} by more than the margin "
                  f"{margin:.3f} of {true.size} validation examples (alpha {alpha:g})")
    else:
        reason = None
    return DegenerateCheck(flagged=reason is not None, reason=reason, uar=uar, chance=chance, margin=margin,
                           alpha=float(alpha), n=int(true.size),
                           predicted_counts=tuple(int(c) for c in predicted_counts),
                           true_counts=tuple(int(c) for c in true_counts))


def not_checked(why: str) -> dict:
    """The hparams.yaml entry of a model the check does not apply to (e.g. a dimensional task)."""
    return {"checked": False, "flagged": False, "reason": why}
