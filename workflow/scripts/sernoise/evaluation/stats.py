"""Significance (paper §7.2.3; SPEC §8): paired t-test over (fold, repetition) pairs, Bonferroni
over all comparisons of one table, significance at adjusted p <= 0.05.

* Two cells are compared on the (fold, rep) pairs present on both sides; pairs present on only
  one side (or with an undefined UAR) are dropped and counted in the result's note.
* With fewer than 2 pairs, or when the paired differences have no variance (all equal), the
  t-test is undefined: p is NaN and the comparison is not significant.
* Bonferroni: p_adjusted = min(1, p * m), m = the number of comparisons of the table that have a
  defined p (undefined tests are not tests; they are reported, never counted as significant).

Speaker-level tests (the default of Tables 3 and 4; config ``statistics.test``).  With 5 (fold,
repetition) pairs the t-test has almost no power: its p cannot survive a Bonferroni family of a
hundred comparisons even for a large, consistent drop.  Both sides of a comparison are predictions
of the same test utterances (the same utterances in another condition, or by the model of another
regime), so the comparison is paired at the utterance; utterances of one speaker are not
independent, so the resampling unit is the speaker (a cluster):

* :class:`ClusterCounts` holds a cell's confusion counts per ((fold, rep) pair, speaker); a
  cell's UAR is the mean over pairs of the UAR of the pair's summed counts (as the table's mean);
* ``speaker_jackknife`` (default; :func:`cluster_jackknife_test`): leave one speaker out of both
  sides at a time; standard error of the difference from the S leave-one-out differences, p from
  Student's t with S - 1 degrees of freedom (holds its level with 10 speakers:
  benchmarks/stats_power.py, README "Statistics");
* ``speaker_bootstrap`` (:func:`cluster_bootstrap_test`): draw speakers with replacement (the
  same draw for both sides), recompute both cells' UAR and their difference; the standard error
  of the difference is the resampled differences' standard deviation times sqrt(S / (S - 1))
  (the usual few-cluster correction, S speakers), and the two-sided p is Student's t with S - 1
  degrees of freedom of difference / standard error.  (The percentile p, 2 x the share of
  resampled differences beyond 0, rejects far too often with 10 speakers: 11 % of true nulls at
  0.05 and 1 % at 0.05 / 142 in benchmarks/stats_power.py.)  The confidence interval of the
  difference is the percentile one;
* ``speaker_permutation`` (:func:`cluster_permutation_test`): swap the two sides' predictions of
  each speaker with probability 1/2 (every swap pattern when 2^speakers <= resamples: exact);
  p = share of swapped differences at least as large in magnitude as the observed one;
* :func:`cluster_bootstrap_ci`: percentile confidence interval of one cell's UAR from the same
  speaker resampling.

Speakers are drawn from the whole test set (every fold), each speaker's predictions in every
(fold, rep) staying together; a (fold, rep) pair none of whose speakers is drawn has no UAR in
that resample and is left out of its mean.  Resampling is vectorised (a (resamples x speakers)
weight matrix times the (speakers x counts) matrix), so tens of thousands of resamples cost
milliseconds per comparison.  Every generator comes from :func:`sernoise.seeds.rng_for`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from scipy.stats import ttest_rel
from statsmodels.stats.multitest import multipletests

from sernoise.seeds import rng_for

ALPHA = 0.05
TESTS = ("speaker_jackknife", "speaker_bootstrap", "speaker_permutation", "fold_ttest")
# Bonferroni families (statistics.family): "question", one family per model, task and comparison
# kind ((a) does noise hurt, (b) does training with noise help, (c) All noises** vs
# Perception-retaining); "table", every comparison of the table in one family.
FAMILIES = ("question", "table")
DEFAULT_STATISTICS = {"test": "speaker_jackknife", "resamples": 20000, "ci": 0.95, "family": "question"}


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


# -- speaker-level (cluster) tests ----------------------------------------------------------------


@dataclass(frozen=True)
class ClusterCounts:
    """Confusion counts of one cell per ((fold, rep) pair, speaker): ``counts[p, s]`` is the flat
    k*k confusion matrix of speaker ``speakers[s]``'s predictions in pair ``pairs[p]`` (zeros where
    the speaker is not tested in that pair)."""

    pairs: tuple
    speakers: tuple
    counts: np.ndarray  # (pairs, speakers, k*k)

    @property
    def n_predictions(self) -> int:
        return int(self.counts.sum())

    def present(self) -> np.ndarray:
        """(pairs, speakers): whether the speaker has predictions in the pair."""
        return self.counts.sum(axis=-1) > 0

    def subset(self, pairs, speakers) -> "ClusterCounts":
        """The counts of ``pairs`` and ``speakers`` (a speaker or pair this cell lacks counts zeros)."""
        p_index = {p: i for i, p in enumerate(self.pairs)}
        s_index = {s: i for i, s in enumerate(self.speakers)}
        out = np.zeros((len(pairs), len(speakers), self.counts.shape[-1]), dtype=self.counts.dtype)
        for i, pair in enumerate(pairs):
            if pair not in p_index:
                continue
            for j, speaker in enumerate(speakers):
                if speaker in s_index:
                    out[i, j] = self.counts[p_index[pair], s_index[speaker]]
        return ClusterCounts(tuple(pairs), tuple(speakers), out)


def uar_of_counts(counts: np.ndarray) -> np.ndarray:
    """UAR of flat k*k confusion counts along the last axis (any leading shape); NaN without support
    (as :func:`sernoise.evaluation.metrics.uar_from_confusion`)."""
    counts = np.asarray(counts, dtype=float)
    k = int(round(counts.shape[-1] ** 0.5))
    support = counts.reshape(counts.shape[:-1] + (k, k)).sum(axis=-1)
    diag = counts[..., :: k + 1]  # the flat diagonal: cm[c, c] at c * (k + 1)
    # a class without support has a 0 diagonal: dividing by max(support, 1) leaves it 0, and it is not counted
    recall_sum = (diag / np.maximum(support, 1.0)).sum(axis=-1)
    n_present = (support > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_present > 0, recall_sum / n_present, np.nan)


def _pair_mean(uars: np.ndarray) -> np.ndarray:
    """Mean over the pair axis (last) of the defined UARs; NaN where none is defined."""
    defined = np.isfinite(uars)
    total = np.where(defined, uars, 0.0).sum(axis=-1)
    n = defined.sum(axis=-1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def cell_uar(cell: ClusterCounts) -> float:
    """A cell's UAR: mean over its pairs of the UAR of each pair's counts (all speakers)."""
    return float(_pair_mean(uar_of_counts(cell.counts.sum(axis=1))))


def _resampled_means(weights: np.ndarray, cell: ClusterCounts) -> np.ndarray:
    """Per resample (rows of ``weights``, (resamples, speakers)): the cell's mean pair UAR with its
    speakers' counts weighted (a bootstrap draw: how often each speaker was drawn).

    Only each class's support and diagonal count enter a UAR, so only the speakers' (pairs x classes)
    supports and diagonals are resampled: one matrix product for both."""
    n_pairs, n_speakers, width = cell.counts.shape
    k = int(round(width ** 0.5))
    counts = cell.counts.astype(float)
    support = counts.reshape(n_pairs, n_speakers, k, k).sum(axis=-1)
    diag = counts[..., :: k + 1]
    both = np.concatenate([support, diag], axis=-1).transpose(1, 0, 2).reshape(n_speakers, -1)
    resampled = (weights @ both).reshape(len(weights), n_pairs, 2 * k)
    support_b, diag_b = resampled[..., :k], resampled[..., k:]
    recall_sum = (diag_b / np.maximum(support_b, 1.0)).sum(axis=-1)  # an unsupported class has a 0 diagonal
    n_present = (support_b > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        uar = np.where(n_present > 0, recall_sum / n_present, np.nan)
    return _pair_mean(uar)


def bootstrap_weights(rng: np.random.Generator, n_speakers: int, resamples: int) -> np.ndarray:
    """(resamples, speakers) draw counts of a bootstrap with replacement over speakers."""
    draws = rng.integers(0, n_speakers, size=(resamples, n_speakers))
    # counts per row in one bincount (faster than Generator.multinomial row by row)
    offsets = (draws + np.arange(resamples)[:, None] * n_speakers).ravel()
    return np.bincount(offsets, minlength=resamples * n_speakers).reshape(resamples, n_speakers).astype(float)


@dataclass(frozen=True)
class ClusterResult:
    difference: float  # observed UAR difference (a - b)
    p: float
    ci_low: float  # confidence interval of the difference (bootstrap; NaN for the permutation test)
    ci_high: float
    n_speakers: int
    n_pairs: int
    resamples: int
    note: str = ""


def align(a: ClusterCounts, b: ClusterCounts) -> tuple[ClusterCounts, ClusterCounts, list[str]]:
    """The two cells on their common (fold, rep) pairs and the speakers both have in those pairs;
    notes say what was dropped (never paired silently)."""
    notes = []
    pairs = [p for p in a.pairs if p in set(b.pairs)]
    dropped_pairs = len(set(a.pairs) | set(b.pairs)) - len(pairs)
    if dropped_pairs:
        notes.append(f"{dropped_pairs} (fold, rep) pair(s) present on one side only dropped")
    union = sorted(set(a.speakers) | set(b.speakers))
    a2, b2 = a.subset(pairs, union), b.subset(pairs, union)
    both = a2.present() & b2.present()
    one_side = (a2.present() | b2.present()) & ~both
    if one_side.any():
        lost = sorted({union[j] for j in np.nonzero(one_side.any(axis=0))[0]})
        notes.append(f"speaker(s) {', '.join(map(str, lost[:5]))}{' ...' if len(lost) > 5 else ''} tested on one "
                     "side only (different test utterance sets): left out of the comparison")
        a2 = ClusterCounts(a2.pairs, a2.speakers, np.where(both[..., None], a2.counts, 0))
        b2 = ClusterCounts(b2.pairs, b2.speakers, np.where(both[..., None], b2.counts, 0))
    keep = [j for j in range(len(union)) if both[:, j].any()]
    speakers = [union[j] for j in keep]
    a3 = ClusterCounts(a2.pairs, tuple(speakers), a2.counts[:, keep])
    b3 = ClusterCounts(b2.pairs, tuple(speakers), b2.counts[:, keep])
    return a3, b3, notes


def _undefined(a: ClusterCounts, resamples: int, notes: list[str], why: str) -> ClusterResult:
    notes.append(why)
    return ClusterResult(float("nan"), float("nan"), float("nan"), float("nan"), len(a.speakers), len(a.pairs),
                         resamples, "; ".join(notes))


class SpeakerBootstrap:
    """The speaker draws of one table and each cell's resampled UARs, computed once.

    The draws depend only on the config seed, the number of resamples and the speakers (the names
    of what is randomised, :func:`sernoise.seeds.rng_for`), so every cell on the same speakers sees
    the same draws: a cell's confidence interval and each comparison it enters use one set of
    resampled UARs, and a comparison's difference is the difference of the two cells' resampled
    UARs under the same draw (paired)."""

    def __init__(self, seed: int, resamples: int):
        self.seed, self.resamples = int(seed), int(resamples)
        self._weights: dict = {}
        self._means: dict = {}

    def weights(self, speakers) -> np.ndarray:
        speakers = tuple(speakers)
        if speakers not in self._weights:
            rng = rng_for(self.seed, "statistics", "speaker_bootstrap", self.resamples, *speakers)
            self._weights[speakers] = bootstrap_weights(rng, len(speakers), self.resamples)
        return self._weights[speakers]

    def means(self, cell: ClusterCounts, key=None) -> np.ndarray:
        """The cell's mean pair UAR in each resample (NaN where no pair has a drawn speaker);
        ``key`` (hashable) names the cell for the cache (None: not cached)."""
        cache_key = None if key is None else (key, cell.pairs, cell.speakers)
        if cache_key is not None and cache_key in self._means:
            return self._means[cache_key]
        means = _resampled_means(self.weights(cell.speakers), cell)
        if cache_key is not None:
            self._means[cache_key] = means
        return means


def cluster_bootstrap_test(a: ClusterCounts, b: ClusterCounts, *, resamples: int, seed: int, ci: float = 0.95,
                           bootstrap: SpeakerBootstrap | None = None, keys=(None, None)) -> ClusterResult:
    """Speaker-level paired bootstrap of the UAR difference ``a - b`` (module docstring).
    ``bootstrap``: the table's draws and cache (default: a new one of ``seed`` and ``resamples``);
    ``keys``: the two cells' cache keys."""
    bootstrap = bootstrap or SpeakerBootstrap(seed, resamples)
    a, b, notes = align(a, b)
    if len(a.speakers) < 2:
        return _undefined(a, bootstrap.resamples, notes, f"{len(a.speakers)} speaker(s) in common: test undefined")
    observed = cell_uar(a) - cell_uar(b)
    # aligned cells that lost pairs or speakers are other cells: not cached under the original keys
    key_a, key_b = (None, None) if notes else keys
    diffs = bootstrap.means(a, key_a) - bootstrap.means(b, key_b)
    diffs = diffs[np.isfinite(diffs)]
    if not len(diffs) or not math.isfinite(observed):
        return _undefined(a, bootstrap.resamples, notes, "no defined UAR difference: test undefined")
    n = len(a.speakers)
    # few speakers: the percentile p of the resampled differences is too small (10 speakers: 11 % of true
    # nulls below 0.05, benchmarks/stats_power.py); the bootstrap standard error with the few-cluster
    # correction sqrt(n / (n - 1)) against Student's t with n - 1 degrees of freedom holds the level
    se = float(np.std(diffs, ddof=1)) * math.sqrt(n / (n - 1)) if len(diffs) > 1 else 0.0
    if se > 0:
        p = float(2 * student_t.sf(abs(observed) / se, n - 1))
    else:
        p = 1.0 if observed == 0 else 0.0
        if observed != 0:
            notes.append("the difference does not vary over the resamples")
    low, high = np.quantile(diffs, [(1 - ci) / 2, (1 + ci) / 2])
    return ClusterResult(observed, min(1.0, p), float(low), float(high), n, len(a.pairs), len(diffs),
                         "; ".join(notes))


def cluster_jackknife_test(a: ClusterCounts, b: ClusterCounts, *, resamples: int, seed: int, ci: float = 0.95,
                           bootstrap: SpeakerBootstrap | None = None, keys=(None, None)) -> ClusterResult:
    """Speaker-level paired test of the UAR difference ``a - b`` with a leave-one-speaker-out
    (jackknife) standard error: SE^2 = (S - 1) / S * sum_i (d_(i) - mean d_(.))^2 over the S
    differences with speaker i left out of both sides; two-sided p from Student's t with S - 1
    degrees of freedom.  With few speakers it holds its level where the bootstrap standard error
    does not quite (benchmarks/stats_power.py).  The interval of the difference is the speaker
    bootstrap's percentile one (``bootstrap``, ``keys``: as :func:`cluster_bootstrap_test`)."""
    bootstrap = bootstrap or SpeakerBootstrap(seed, resamples)
    a, b, notes = align(a, b)
    n = len(a.speakers)
    if n < 3:
        return _undefined(a, bootstrap.resamples, notes, f"{n} speaker(s) in common: test undefined")
    observed = cell_uar(a) - cell_uar(b)
    leave_one_out = np.ones((n, n)) - np.eye(n)
    jack = _resampled_means(leave_one_out, a) - _resampled_means(leave_one_out, b)
    if not math.isfinite(observed) or not np.isfinite(jack).all():
        return _undefined(a, bootstrap.resamples, notes, "no defined UAR difference without some speaker: test undefined")
    se = math.sqrt((n - 1) / n * float(((jack - jack.mean()) ** 2).sum()))
    if se > 0:
        p = float(2 * student_t.sf(abs(observed) / se, n - 1))
    else:
        p = 1.0 if observed == 0 else 0.0
        if observed != 0:
            notes.append("the difference does not vary with the speakers left out")
    key_a, key_b = (None, None) if notes else keys
    diffs = bootstrap.means(a, key_a) - bootstrap.means(b, key_b)
    diffs = diffs[np.isfinite(diffs)]
    low, high = np.quantile(diffs, [(1 - ci) / 2, (1 + ci) / 2]) if len(diffs) else (math.nan, math.nan)
    return ClusterResult(observed, min(1.0, p), float(low), float(high), n, len(a.pairs), len(diffs), "; ".join(notes))


def cluster_permutation_test(a: ClusterCounts, b: ClusterCounts, *, resamples: int, seed: int) -> ClusterResult:
    """Speaker-level paired permutation test of the UAR difference ``a - b``: each speaker's
    predictions (every pair) swapped between the sides with probability 1/2; every swap pattern
    (exact test) when 2^speakers <= resamples."""
    a, b, notes = align(a, b)
    n = len(a.speakers)
    if n < 2:
        return _undefined(a, resamples, notes, f"{n} speaker(s) in common: test undefined")
    observed = cell_uar(a) - cell_uar(b)
    if not math.isfinite(observed):
        return _undefined(a, resamples, notes, "no defined UAR difference: test undefined")
    if 2 ** n <= resamples:
        swaps = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
    else:
        rng = rng_for(seed, "statistics", "speaker_permutation", resamples, *a.speakers)
        swaps = (rng.random((resamples, n)) < 0.5).astype(float)
    keep = 1.0 - swaps
    # a side's counts after the swaps: its own speakers kept plus the other side's swapped in
    diffs = ((_swapped_means(keep, swaps, a, b)) - _swapped_means(keep, swaps, b, a))
    diffs = diffs[np.isfinite(diffs)]
    exact = 2 ** n <= resamples
    extreme = int((np.abs(diffs) >= abs(observed) - 1e-12).sum())
    p = extreme / len(diffs) if exact else (1 + extreme) / (len(diffs) + 1)
    return ClusterResult(observed, min(1.0, p), float("nan"), float("nan"), n, len(a.pairs), len(diffs),
                         "; ".join(notes + (["exact (every swap pattern)"] if exact else [])))


def _swapped_means(keep: np.ndarray, swaps: np.ndarray, own: ClusterCounts, other: ClusterCounts) -> np.ndarray:
    n_pairs, n_speakers, width = own.counts.shape
    own_flat = own.counts.transpose(1, 0, 2).reshape(n_speakers, -1).astype(float)
    other_flat = other.counts.transpose(1, 0, 2).reshape(n_speakers, -1).astype(float)
    mixed = (keep @ own_flat + swaps @ other_flat).reshape(len(keep), n_pairs, width)
    return _pair_mean(uar_of_counts(mixed))


def cluster_bootstrap_ci(cell: ClusterCounts, *, resamples: int, seed: int, ci: float = 0.95,
                         bootstrap: SpeakerBootstrap | None = None, key=None) -> tuple[float, float]:
    """Percentile ``ci`` interval of a cell's UAR (mean over pairs) from a speaker-level bootstrap;
    NaN with fewer than 2 speakers.  ``bootstrap``, ``key``: as :func:`cluster_bootstrap_test`."""
    if len(cell.speakers) < 2 or not cell.counts.any():
        return float("nan"), float("nan")
    bootstrap = bootstrap or SpeakerBootstrap(seed, resamples)
    means = bootstrap.means(cell, key)
    means = means[np.isfinite(means)]
    if not len(means):
        return float("nan"), float("nan")
    low, high = np.quantile(means, [(1 - ci) / 2, (1 + ci) / 2])
    return float(low), float(high)
