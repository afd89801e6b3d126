"""Significance (paper §7.2.3; SPEC §8): paired t-test over (fold, repetition) pairs, Bonferroni
over all comparisons of one table, significance at adjusted p <= 0.05.

* Two cells are compared on the (fold, rep) pairs present on both sides; pairs present on only
  one side (or with an undefined UAR) are dropped and counted in the result's note.
* With fewer than 2 pairs, or when the paired differences have no variance (all equal), the
  t-test is undefined: p is NaN and the comparison is not significant.
* Bonferroni: p_adjusted = min(1, p * m), m = the number of comparisons of the table that have a
  defined p (undefined tests are not tests; they are reported, never counted as significant).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05


@dataclass(frozen=True)
class PairedResult:
    statistic: float
    p: float
    n_pairs: int
    n_dropped: int
    note: str = ""


def paired_ttest(a: pd.Series, b: pd.Series) -> PairedResult:
    """Paired t-test of ``a`` against ``b`` (Series indexed by pair key, e.g. (fold, rep))."""
    a, b = a.dropna(), b.dropna()
    common = a.index.intersection(b.index)
    dropped = len(a.index.union(b.index)) - len(common)
    notes = []
    if dropped:
        notes.append(f"{dropped} pair(s) present on one side only dropped")
    if len(common) < 2:
        notes.append(f"{len(common)} pair(s): t-test undefined")
        return PairedResult(float("nan"), float("nan"), len(common), dropped, "; ".join(notes))
    x = a.loc[common].to_numpy(dtype=float)
    y = b.loc[common].to_numpy(dtype=float)
    if np.allclose(x - y, (x - y)[0], rtol=0, atol=1e-12):
        notes.append("paired differences have no variance: t-test undefined")
        return PairedResult(float("nan"), float("nan"), len(common), dropped, "; ".join(notes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ttest_rel(x, y)
    return PairedResult(float(result.statistic), float(result.pvalue), len(common), dropped, "; ".join(notes))


def bonferroni(pvalues, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray, int]:
    """Adjusted p-values, significance (adjusted p <= alpha) and m, the number of defined tests."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    significant = np.zeros(p.shape, dtype=bool)
    defined = np.isfinite(p)
    m = int(defined.sum())
    if m:
        _, corrected, _, _ = multipletests(p[defined], alpha=alpha, method="bonferroni")
        adjusted[defined] = corrected
        significant[defined] = corrected <= alpha
    return adjusted, significant, m


def direction(mean: float, reference: float) -> str:
    """``up`` when ``mean`` is above ``reference``, ``down`` below (``""`` when undefined)."""
    if math.isnan(mean) or math.isnan(reference) or mean == reference:
        return ""
    return "up" if mean > reference else "down"
