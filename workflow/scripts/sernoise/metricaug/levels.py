"""Distortion levels of a MetricAug superset (Wu & Lee §2.3.2): one metric's values in K levels.

Two quantisers, both returning a :class:`Levels` (edges, counts, each item's level):

``uniform``
    Equal counts: the items sorted by value (ties by position, so the split is deterministic)
    and cut into K runs whose sizes differ by at most one (the first runs take the extra item).
``gmm``
    scikit-learn's :class:`~sklearn.mixture.GaussianMixture` with K one-dimensional components,
    seeded, each item in its most probable component.

Level 1 is the LEAST distorted (highest metric value) and level K the most distorted, for both:
STOI, PESQ and fwSNRseg all grow with quality, and the paper's Table 3 numbers its GMM levels
so (C_1 has the smallest WF1 drop).  GMM components are therefore ordered by decreasing mean.

Items whose metric is undefined (NaN: PESQ or STOI failed on a short clip) get level 0 and are
never drawn; they are counted in ``undefined``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

METHODS = ("uniform", "gmm")
DEFAULT_K = 5


class LevelError(ValueError):
    """Values cannot be quantised as asked (the message names the metric)."""


@dataclass(frozen=True)
class Levels:
    """K levels of one metric: ``edges[k]`` .. ``edges[k+1]`` is the value range of level k + 1.

    ``edges`` are K + 1 values in decreasing order (the largest value first); for ``gmm``,
    where levels are components rather than intervals, each level's range is that of the
    values assigned to it (ranges of neighbouring components can overlap at the tails), so
    ``edges`` holds the upper end of each level and the lower end of the last.  ``means`` are
    the levels' mean values (GMM: the component means).
    """

    metric: str
    method: str
    k: int
    edges: list[float]
    counts: list[int]
    means: list[float]
    undefined: int
    item_levels: np.ndarray = field(repr=False)  # (n,) int: 1..K, 0 for undefined values

    def to_dict(self) -> dict:
        """Everything but the per-item levels, as plain JSON data."""
        out = asdict(self)
        out.pop("item_levels")
        return out

    def save(self, path) -> None:
        """JSON summary (``path``); the per-item levels go beside it as a CSV by the caller."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _check(values, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise LevelError(f"metric {metric!r}: expected one value per item, got shape {values.shape}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise LevelError(f"metric {metric!r}: number of levels must be a positive integer, got {k!r}")
    defined = np.flatnonzero(np.isfinite(values))
    if defined.size < k:
        raise LevelError(f"metric {metric!r}: {defined.size} items with a defined value cannot fill {k} levels")
    return values, defined


def _summary(metric: str, method: str, k: int, values: np.ndarray, levels: np.ndarray) -> Levels:
    counts, means, uppers, lowers = [], [], [], []
    for level in range(1, k + 1):
        members = values[levels == level]
        counts.append(int(members.size))
        means.append(float(members.mean()) if members.size else math.nan)
        uppers.append(float(members.max()) if members.size else math.nan)
        lowers.append(float(members.min()) if members.size else math.nan)
    return Levels(metric, method, k, uppers + [lowers[-1]], counts, means, int((levels == 0).sum()), levels)


def uniform_levels(values, metric: str, k: int = DEFAULT_K) -> Levels:
    """Equal-count levels (see the module doc); level 1 holds the highest values."""
    values, defined = _check(values, metric, k)
    # Highest first; ties keep item order (stable sort of the negated values).
    order = defined[np.argsort(-values[defined], kind="stable")]
    levels = np.zeros(values.size, dtype=np.int64)
    for level, part in enumerate(np.array_split(order, k), start=1):
        levels[part] = level
    return _summary(metric, "uniform", k, values, levels)


def gmm_levels(values, metric: str, k: int = DEFAULT_K, *, seed: int = 0) -> Levels:
    """GMM levels (see the module doc): components ordered by decreasing mean, level 1 the highest."""
    from sklearn.mixture import GaussianMixture

    values, defined = _check(values, metric, k)
    if np.unique(values[defined]).size < k:
        raise LevelError(f"metric {metric!r}: fewer than {k} distinct values; a {k}-component GMM is undefined")
    x = values[defined].reshape(-1, 1)
    mixture = GaussianMixture(n_components=k, covariance_type="full", n_init=1, random_state=int(seed) % 2**32)
    component = mixture.fit(x).predict(x)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-mixture.means_.ravel(), kind="stable")] = np.arange(1, k + 1)
    levels = np.zeros(values.size, dtype=np.int64)
    levels[defined] = rank[component]
    result = _summary(metric, "gmm", k, values, levels)
    component_means = [float(m) for m in np.sort(mixture.means_.ravel())[::-1]]
    return Levels(result.metric, "gmm", k, result.edges, result.counts, component_means, result.undefined,
                  result.item_levels)


def quantise(values, metric: str, method: str, k: int = DEFAULT_K, *, seed: int = 0) -> Levels:
    """Levels of ``values`` by ``method`` (``uniform`` | ``gmm``); errors name the metric and method."""
    if method == "uniform":
        return uniform_levels(values, metric, k)
    if method == "gmm":
        return gmm_levels(values, metric, k, seed=seed)
    raise LevelError(f"metric {metric!r}: unknown level method {method!r}; known: {list(METHODS)}")
