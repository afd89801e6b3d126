"""Paired t-test and Bonferroni correction (sernoise.evaluation.stats)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from sernoise.evaluation.stats import ALPHA as ALPHA_, bonferroni, direction, paired_ttest


def series(values: dict) -> pd.Series:
    return pd.Series(list(values.values()), index=pd.MultiIndex.from_tuples(list(values), names=["fold", "rep"]))


def test_paired_ttest_matches_scipy():
    a = series({(1, 1): 0.61, (1, 2): 0.58, (2, 1): 0.66, (2, 2): 0.60, (3, 1): 0.64, (3, 2): 0.55})
    b = series({(1, 1): 0.52, (1, 2): 0.50, (2, 1): 0.60, (2, 2): 0.49, (3, 1): 0.58, (3, 2): 0.53})
    result = paired_ttest(a, b)
    expected = ttest_rel(a.to_numpy(), b.to_numpy())
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p == pytest.approx(expected.pvalue)
    assert result.n_pairs == 6 and result.n_dropped == 0 and result.note == ""


def test_pairs_are_matched_by_key_not_position():
    a = series({(1, 1): 0.6, (1, 2): 0.7, (2, 1): 0.5})
    b = series({(2, 1): 0.45, (1, 1): 0.52, (1, 2): 0.69})  # other order
    result = paired_ttest(a, b)
    expected = ttest_rel([0.6, 0.7, 0.5], [0.52, 0.69, 0.45])
    assert result.p == pytest.approx(expected.pvalue)


def test_missing_pairs_dropped_with_note():
    a = series({(1, 1): 0.6, (1, 2): 0.7, (2, 1): 0.5, (2, 2): 0.55})
    b = series({(1, 1): 0.5, (1, 2): 0.66, (2, 1): 0.41, (3, 1): 0.2})
    result = paired_ttest(a, b)
    assert result.n_pairs == 3 and result.n_dropped == 2 and "dropped" in result.note
    assert result.p == pytest.approx(ttest_rel([0.6, 0.7, 0.5], [0.5, 0.66, 0.41]).pvalue)


def test_fewer_than_two_pairs_is_undefined():
    result = paired_ttest(series({(1, 1): 0.6, (1, 2): 0.7}), series({(1, 1): 0.5}))
    assert result.n_pairs == 1 and math.isnan(result.p) and "undefined" in result.note
    same = series({(1, 1): 0.6, (1, 2): 0.7, (2, 1): 0.5})
    assert math.isnan(paired_ttest(same, same).p)


def test_bonferroni_counts_every_defined_comparison():
    p = np.array([0.001, 0.01, 0.2, np.nan, 0.012, 0.0099])
    adjusted, significant, m = bonferroni(p)
    assert m == 5
    assert np.allclose(adjusted[[0, 1, 2, 4, 5]], np.minimum(1, p[[0, 1, 2, 4, 5]] * 5))
    assert np.isnan(adjusted[3]) and not significant[3]
    # adjusted p <= 0.05: 0.005, 0.05 (the boundary) and 0.0495 are significant; 1 and 0.06 are not
    assert list(significant) == [True, True, False, False, False, True]
    adjusted, significant, m = bonferroni([0.01, 0.02, 0.03, 0.04, 0.05])
    assert m == 5 and significant.tolist() == [True, False, False, False, False]
    assert bonferroni([np.nan])[2] == 0


def test_direction():
    assert direction(0.5, 0.4) == "up" and direction(0.3, 0.4) == "down"
    assert direction(float("nan"), 0.4) == "" and direction(0.4, 0.4) == ""


# -- speaker-level tests (sernoise.evaluation.stats: cluster_*) ------------------------------------

from sernoise.evaluation.metrics import uar_from_confusion  # noqa: E402
from sernoise.evaluation.stats import (  # noqa: E402
    ClusterCounts, SpeakerBootstrap, align, cell_uar, cluster_bootstrap_ci, cluster_bootstrap_test,
    cluster_jackknife_test, cluster_permutation_test, uar_of_counts,
)

SEED = 20231015
BIG_FAMILY = 142  # the demo Table 3's Bonferroni family before this test existed


def speaker_counts(accuracy, *, n_pairs=2, speakers_per_pair=4, n_utt=12, seed=0, speaker_accuracy=None):
    """Hand-made predictions: ``n_pairs`` (fold, rep) pairs, each testing its own speakers, each speaker
    with ``n_utt`` utterances (classes in turn), each right with probability ``accuracy`` (or that
    speaker's ``speaker_accuracy``), wrong ones predicted as the next class."""
    rng = np.random.default_rng(seed)
    n_speakers = n_pairs * speakers_per_pair
    counts = np.zeros((n_pairs, n_speakers, 9), dtype=np.int64)
    for s in range(n_speakers):
        p = s // speakers_per_pair
        acc = accuracy if speaker_accuracy is None else speaker_accuracy[s]
        for u in range(n_utt):
            true = u % 3
            predicted = true if rng.random() < acc else (true + 1) % 3
            counts[p, s, true * 3 + predicted] += 1
    return ClusterCounts(tuple((fold, 1) for fold in range(1, n_pairs + 1)),
                         tuple(f"spk{s:02d}" for s in range(n_speakers)), counts)


def test_uar_of_counts_matches_the_metrics_uar():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 6, size=(7, 9))
    counts[0, 3:6] = 0  # a class without support
    counts[1] = 0  # no support at all
    expected = [uar_from_confusion(c) for c in counts]
    assert np.allclose(uar_of_counts(counts), expected, equal_nan=True)


def test_a_large_real_difference_is_significant_with_two_folds_where_the_t_test_cannot_be():
    clean = speaker_counts(0.85, seed=1)
    noisy = ClusterCounts(clean.pairs, clean.speakers, speaker_counts(0.35, seed=2).counts)
    result = cluster_bootstrap_test(noisy, clean, resamples=20000, seed=SEED)
    assert result.difference == pytest.approx(cell_uar(noisy) - cell_uar(clean)) and result.difference < -0.3
    assert result.p * BIG_FAMILY < ALPHA_
    assert result.ci_high < 0 and result.n_speakers == 8 and result.n_pairs == 2
    # the paper's t-test over the same 2 (fold, rep) pairs cannot reach significance after Bonferroni
    per_pair = lambda c: series({pair: uar_from_confusion(c.counts[i].sum(axis=0))  # noqa: E731
                                 for i, pair in enumerate(c.pairs)})
    t = paired_ttest(per_pair(noisy), per_pair(clean))
    assert not (t.p * BIG_FAMILY <= ALPHA_)
    jackknife = cluster_jackknife_test(noisy, clean, resamples=2000, seed=SEED)
    assert jackknife.p * BIG_FAMILY < ALPHA_ and jackknife.difference == result.difference
    assert jackknife.ci_high < 0 and jackknife.n_speakers == 8
    permutation = cluster_permutation_test(noisy, clean, resamples=20000, seed=SEED)
    # 8 speakers: every one of the 256 swap patterns; only the observed one and its mirror are as extreme
    assert permutation.p == pytest.approx(2 / 256) and "exact" in permutation.note


def test_no_difference_is_not_significant():
    a = speaker_counts(0.6, seed=3, n_pairs=3)
    b = ClusterCounts(a.pairs, a.speakers, speaker_counts(0.6, seed=4, n_pairs=3).counts)
    for test in (cluster_jackknife_test, cluster_bootstrap_test, cluster_permutation_test):
        result = test(a, b, resamples=5000, seed=SEED)
        assert result.p > 0.05, test.__name__
    same = cluster_bootstrap_test(a, a, resamples=2000, seed=SEED)
    assert same.difference == 0 and same.p == 1


def test_clustering_by_speaker_gives_wider_intervals_when_speakers_differ():
    # speakers differ a lot: 4 good, 4 poor; the utterance-level bootstrap treats 96 predictions as independent
    accuracies = [0.95, 0.3, 0.9, 0.35, 0.95, 0.3, 0.9, 0.35]
    by_speaker = speaker_counts(None, speaker_accuracy=accuracies, seed=5)
    rows = [(p, s, c) for p in range(2) for s in range(8) for c in range(9) for _ in range(by_speaker.counts[p, s, c])]
    by_utterance = np.zeros((2, len(rows), 9), dtype=np.int64)
    for u, (p, _, c) in enumerate(rows):
        by_utterance[p, u, c] = 1
    utterances = ClusterCounts(by_speaker.pairs, tuple(f"u{u}" for u in range(len(rows))), by_utterance)
    assert cell_uar(utterances) == pytest.approx(cell_uar(by_speaker))
    low_s, high_s = cluster_bootstrap_ci(by_speaker, resamples=4000, seed=SEED)
    low_u, high_u = cluster_bootstrap_ci(utterances, resamples=4000, seed=SEED)
    assert low_s < cell_uar(by_speaker) < high_s and low_u < cell_uar(by_speaker) < high_u
    assert high_s - low_s > 1.3 * (high_u - low_u)


def test_resampling_is_deterministic_and_seeded():
    a = speaker_counts(0.7, seed=6)
    b = ClusterCounts(a.pairs, a.speakers, speaker_counts(0.6, seed=7).counts)
    first = cluster_bootstrap_test(a, b, resamples=3000, seed=SEED)
    assert cluster_bootstrap_test(a, b, resamples=3000, seed=SEED) == first
    assert cluster_bootstrap_ci(a, resamples=3000, seed=SEED) == cluster_bootstrap_ci(a, resamples=3000, seed=SEED)
    other = cluster_bootstrap_test(a, b, resamples=3000, seed=SEED + 1)
    assert other.difference == first.difference and (other.p, other.ci_low) != (first.p, first.ci_low)
    # the cache of a table: the same draws for a cell's interval and its comparisons, whatever the order
    shared = SpeakerBootstrap(SEED, 3000)
    assert cluster_bootstrap_ci(a, resamples=3000, seed=SEED, bootstrap=shared, key="a") == \
        cluster_bootstrap_ci(a, resamples=3000, seed=SEED)
    assert cluster_bootstrap_test(a, b, resamples=3000, seed=SEED, bootstrap=shared, keys=("a", "b")) == first
    many = cluster_permutation_test(speaker_counts(0.7, speakers_per_pair=8, seed=8),
                                    speaker_counts(0.6, speakers_per_pair=8, seed=9), resamples=1000, seed=SEED)
    assert "exact" not in many.note and many.resamples == 1000


def test_speakers_or_pairs_on_one_side_only_are_left_out_and_said():
    a = speaker_counts(0.7, n_pairs=3, seed=10)
    b = ClusterCounts(a.pairs[:2], a.speakers[:6], speaker_counts(0.6, n_pairs=2, speakers_per_pair=3,
                                                                    seed=11).counts)
    a2, b2, notes = align(a, b)
    assert a2.pairs == b2.pairs == a.pairs[:2] and a2.speakers == b2.speakers
    assert any("1 (fold, rep) pair(s) present on one side only dropped" in n for n in notes)
    assert any("tested on one side only" in n for n in notes)
    lonely = ClusterCounts(a.pairs, ("x",), np.ones((3, 1, 9), dtype=np.int64))
    result = cluster_bootstrap_test(a, lonely, resamples=500, seed=SEED)
    assert math.isnan(result.p) and "test undefined" in result.note


def test_the_default_jackknife_holds_its_level_under_the_null_with_few_speakers():
    # 10 speakers that differ (accuracy 0.35-0.85), both sides with the same accuracy per speaker: a true null.
    # Here the bootstrap's percentile p rejected 0.16-0.19 of these nulls at 0.05 and its standard-error t about
    # 0.10; the leave-one-speaker-out standard error 0.03.
    rng = np.random.default_rng(12)
    rejections = 0
    n = 80
    for i in range(n):
        accuracies = rng.uniform(0.35, 0.85, 10)
        a = speaker_counts(None, n_pairs=5, speakers_per_pair=2, speaker_accuracy=accuracies, seed=1000 + i)
        b = ClusterCounts(a.pairs, a.speakers, speaker_counts(None, n_pairs=5, speakers_per_pair=2,
                                                              speaker_accuracy=accuracies, seed=5000 + i).counts)
        rejections += cluster_jackknife_test(a, b, resamples=200, seed=SEED + i).p <= 0.05
    assert rejections / n <= 0.06
