"""Paired t-test and Bonferroni correction (sernoise.evaluation.stats)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from sernoise.evaluation.stats import bonferroni, direction, paired_ttest


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
