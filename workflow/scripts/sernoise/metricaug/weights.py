"""Level weights (Wu & Lee, Algorithm 1) and the per-epoch draw from the superset's levels.

Algorithm 1: the gaps ``g_k = WF1(clean validation) - WF1(level-k validation)`` measured after
epoch i - 1 become the weights of epoch i.  ``w_k = g_k / |sum g|``; then, until the weights sum
to 1 with none under the floor ``L``: every weight under ``L`` is set to ``L`` (and stays
there), and the remaining mass ``M' = 1 - (number floored) * L`` is shared by the other levels
in proportion to their gaps (``g_k / sum of their gaps * M'``, line 6 of the algorithm).

Two cases the paper leaves open, decided here:

* a negative gap (the model does better on level k than on clean speech) counts as the floor:
  it is floored in the first pass and never enters a normalisation (otherwise a negative gap
  would shrink the sum and inflate the other weights);
* when no level has a positive gap (every level at or above clean WF1) the gaps carry no
  ranking, and the weights are uniform ``1/K``, as in the first epoch.  The same holds when
  ``K * L >= 1`` leaves no mass to share.

The draw (:func:`level_counts`, :func:`draw_items`): N items, ``w_k * N`` of them from level k,
rounded by largest remainder (ties to the lower level) so that the counts sum to exactly N;
within a level, items are drawn without replacement while the level has enough of them, and
whole permutations are chained when it has fewer.  The generator is the caller's (the epoch
loop's, seeded per training seed and epoch), so the same (fold, repetition, epoch) draws the
same items.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_FLOOR = 0.05
_TOLERANCE = 1e-12


class WeightError(ValueError):
    """Bad gaps, weights or levels for Algorithm 1 or the draw."""


def uniform_weights(k: int) -> np.ndarray:
    return np.full(int(k), 1.0 / int(k))


def level_weights(gaps, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """Algorithm 1: the next epoch's weights (sum 1, each >= ``floor``) from the levels' WF1 gaps."""
    gaps = np.asarray(gaps, dtype=np.float64)
    if gaps.ndim != 1 or gaps.size == 0 or not np.isfinite(gaps).all():
        raise WeightError(f"gaps must be a non-empty vector of finite numbers, got {gaps!r}")
    k = gaps.size
    if not 0.0 <= floor <= 1.0 / k:
        raise WeightError(f"floor {floor} must lie in [0, 1/K] = [0, {1.0 / k:.4g}] for K = {k} levels")
    positive = gaps > 0
    if not positive.any() or k * floor >= 1.0 - _TOLERANCE:
        return uniform_weights(k)
    weights = gaps / abs(gaps.sum())
    floored = ~positive  # a negative (or zero) gap counts as the floor from the start
    while True:
        floored |= weights < floor
        free = ~floored
        if not free.any():  # cannot happen while K*L < 1 and the gaps sum to a positive mass
            return uniform_weights(k)
        weights = np.where(floored, floor, 0.0)
        weights[free] = gaps[free] / gaps[free].sum() * (1.0 - floored.sum() * floor)
        if weights[free].min() >= floor and math.isclose(weights.sum(), 1.0, abs_tol=1e-9):
            return weights


def level_counts(weights, n: int) -> np.ndarray:
    """Items per level: ``weights * n`` rounded by largest remainder (ties: lower level first), summing to ``n``."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or (weights < 0).any() or not math.isclose(weights.sum(), 1.0, abs_tol=1e-9):
        raise WeightError(f"weights must be non-negative and sum to 1, got {weights.tolist()}")
    if int(n) != n or n < 0:
        raise WeightError(f"the number of items to draw must be a non-negative integer, got {n!r}")
    exact = weights * int(n)
    counts = np.floor(exact + 1e-9).astype(np.int64)
    missing = int(n) - int(counts.sum())
    if missing > 0:
        remainder = exact - counts
        order = np.lexsort((np.arange(weights.size), -np.round(remainder, 9)))
        counts[order[:missing]] += 1
    return counts


def draw_level(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` members of ``pool``: without replacement, chaining permutations when the pool is smaller."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if pool.size == 0:
        raise WeightError(f"cannot draw {count} items from an empty level")
    parts, left = [], count
    while left > 0:
        take = min(left, pool.size)
        parts.append(pool[rng.permutation(pool.size)[:take]])
        left -= take
    return np.concatenate(parts).astype(np.int64)


def draw_items(item_levels, weights, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's superset items: indices into ``item_levels`` (levels 1..K; 0 = never drawn).

    Returns (indices, counts per level).  A level without items gives its share to the others
    in proportion to their weights (GMM levels can be empty on a small superset).
    """
    item_levels = np.asarray(item_levels)
    weights = np.asarray(weights, dtype=np.float64)
    pools = [np.flatnonzero(item_levels == level) for level in range(1, weights.size + 1)]
    present = np.array([p.size > 0 for p in pools])
    if not present.any():
        raise WeightError("no superset item has a level: nothing to draw")
    if not present.all():
        weights = np.where(present, weights, 0.0)
        weights = weights / weights.sum()
    counts = level_counts(weights, n)
    drawn = [draw_level(pool, int(c), rng) for pool, c in zip(pools, counts)]
    return np.concatenate(drawn), counts
