"""The paper's evaluation protocol (Leem et al. §4.1): three non-consecutive best epochs × 30 test groups.

:func:`separated_best_epochs`: the ``n`` best development epochs of a training, never two
consecutive ones (greedy: epochs in order of their score, best first, an epoch taken unless it is
next to one already taken; equal scores: the earlier epoch first).  A short training may allow
fewer than ``n`` (three need at least five epochs); the caller records how many it got.

:func:`evaluation_groups`: the test utterances cut into ``n_groups`` disjoint groups of (nearly) equal
size after a seeded shuffle, so that each (model, condition) gives one score per group.
"""

from __future__ import annotations

import math

import numpy as np

from sernoise.seeds import rng_for


def separated_best_epochs(scores: dict[int, float], n: int = 3, *, higher_is_better: bool = True) -> list[int]:
    """Up to ``n`` epochs (keys of ``scores``) with the best finite scores, no two consecutive, best first."""
    if n < 1:
        raise ValueError(f"number of epochs to choose must be >= 1, got {n}")
    finite = [(e, s) for e, s in scores.items() if math.isfinite(s)]
    ranked = sorted(finite, key=lambda es: ((-es[1] if higher_is_better else es[1]), es[0]))
    chosen: list[int] = []
    for epoch, _ in ranked:
        if all(abs(epoch - other) > 1 for other in chosen):
            chosen.append(epoch)
            if len(chosen) == n:
                break
    return chosen


def evaluation_groups(utt_ids, n_groups: int, seed: int, *parts) -> list[list[str]]:
    """``utt_ids`` (sorted first) shuffled with a generator of (seed, parts) and cut into ``n_groups`` groups."""
    ordered = sorted(str(u) for u in utt_ids)
    if n_groups < 1:
        raise ValueError(f"config key ctsl.test_groups: must be >= 1, got {n_groups}")
    if len(ordered) < n_groups:
        raise ValueError(f"config key ctsl.test_groups: {n_groups} groups need at least as many test "
                         f"utterances, got {len(ordered)}")
    order = rng_for(seed, "ctsl-test-groups", *parts).permutation(len(ordered))
    return [[ordered[i] for i in part] for part in np.array_split(order, n_groups)]
