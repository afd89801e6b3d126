"""Power, validity and cost of the tables' tests at demo scale (sernoise.evaluation.stats).

Usage (from the repository root)::

    .venv/bin/python benchmarks/stats_power.py [--sims 100] [--resamples 20000] [--family 142]
        [--speakers 10] [--folds 5] [--reps 1] [--utterances 60] [--speaker-sd 0.8]

Simulated predictions shaped like the demo (RAVDESS actors 01-10: 10 speakers, 2 per test fold,
5 folds, 1 repetition, 60 utterances per speaker, 3 classes): each utterance has a difficulty
(its speaker's offset, N(0, speaker-sd) on the logit scale, plus its own, N(0, 0.5)) shared by
both conditions, so the two sides are paired at the utterance as in a table; each side is right
with probability sigmoid(side's logit + difficulty), wrong ones spread over the other classes.
Scenarios: the demo's drop (UAR about 0.58 -> 0.42), a small drop (0.55 -> 0.50) and no
difference (validity: how often each test rejects a true null).

Prints, per scenario and test (the paper's fold t-test, speaker jackknife, bootstrap and permutation):
the share of simulations with p <= 0.05 and with p <= 0.05 / family (Bonferroni over a table of
that many comparisons), and the seconds one comparison takes (without the per-table cache of
speaker draws that the tables use).  Measured (200 simulations, 2000 resamples): README "Statistics".
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import REPO  # noqa: F401  (puts workflow/scripts on sys.path)

from sernoise.evaluation.stats import (
    ALPHA, ClusterCounts, cluster_bootstrap_test, cluster_jackknife_test, cluster_permutation_test, paired_ttest,
    uar_of_counts,
)

SCENARIOS = {"demo drop 0.58 -> 0.42": (0.58, 0.42), "small drop 0.55 -> 0.50": (0.55, 0.50),
             "no difference 0.50 -> 0.50": (0.50, 0.50)}


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def simulate(rng, accuracy_a, accuracy_b, *, speakers, folds, reps, utterances, speaker_sd):
    """Two ClusterCounts (a, b) of the same test utterances."""
    counts = np.zeros((2, folds * reps, speakers, 9), dtype=np.int64)
    pairs = [(fold, rep) for fold in range(1, folds + 1) for rep in range(1, reps + 1)]
    offsets = rng.normal(0, speaker_sd, speakers)
    true = np.arange(utterances) % 3
    for s in range(speakers):
        fold = s % folds + 1
        difficulty = offsets[s] + rng.normal(0, 0.5, utterances)
        for rep in range(1, reps + 1):
            p = pairs.index((fold, rep))
            for side, accuracy in enumerate((accuracy_a, accuracy_b)):
                right = rng.random(utterances) < 1 / (1 + np.exp(-(logit(accuracy) + difficulty)))
                predicted = np.where(right, true, (true + rng.integers(1, 3, utterances)) % 3)
                np.add.at(counts[side, p, s], true * 3 + predicted, 1)
    names = tuple(f"spk{s:02d}" for s in range(speakers))
    return ClusterCounts(tuple(pairs), names, counts[0]), ClusterCounts(tuple(pairs), names, counts[1])


def fold_ttest(a: ClusterCounts, b: ClusterCounts):
    import pandas as pd

    index = pd.MultiIndex.from_tuples(a.pairs, names=["fold", "rep"])
    return paired_ttest(pd.Series(uar_of_counts(a.counts.sum(axis=1)), index=index),
                        pd.Series(uar_of_counts(b.counts.sum(axis=1)), index=index))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--resamples", type=int, default=20000)
    parser.add_argument("--family", type=int, default=142, help="Bonferroni family size m")
    parser.add_argument("--speakers", type=int, default=10)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--utterances", type=int, default=60, help="per speaker")
    parser.add_argument("--speaker-sd", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=20231015)
    args = parser.parse_args()
    shape = dict(speakers=args.speakers, folds=args.folds, reps=args.reps, utterances=args.utterances,
                 speaker_sd=args.speaker_sd)
    tests = {
        "fold_ttest": lambda a, b, i: fold_ttest(a, b).p,
        "speaker_jackknife": lambda a, b, i: cluster_jackknife_test(a, b, resamples=args.resamples,
                                                                    seed=args.seed + i).p,
        "speaker_bootstrap": lambda a, b, i: cluster_bootstrap_test(a, b, resamples=args.resamples, seed=args.seed + i).p,
        "speaker_permutation": lambda a, b, i: cluster_permutation_test(a, b, resamples=args.resamples,
                                                                        seed=args.seed + i).p,
    }
    print(f"{args.sims} simulations; {args.speakers} speakers, {args.folds} folds x {args.reps} reps, "
          f"{args.utterances} utterances per speaker; resamples {args.resamples}; Bonferroni m = {args.family}")
    print(f"{'scenario':28s} {'test':20s} {'mean UAR a, b':>14s} {'p<=0.05':>8s} {'p<=0.05/m':>10s} {'s/test':>8s}")
    for name, (acc_a, acc_b) in SCENARIOS.items():
        rng = np.random.default_rng(args.seed)
        data = [simulate(rng, acc_a, acc_b, **shape) for _ in range(args.sims)]
        uars = np.mean([[uar_of_counts(x.counts.sum(axis=1)).mean() for x in pair] for pair in data], axis=0)
        for test, run in tests.items():
            tick = time.perf_counter()
            p = np.array([run(a, b, i) for i, (a, b) in enumerate(data)])
            seconds = (time.perf_counter() - tick) / len(data)
            p = np.where(np.isfinite(p), p, 1.0)
            print(f"{name:28s} {test:20s} {uars[0]:6.2f}, {uars[1]:5.2f} {np.mean(p <= ALPHA):8.2f} "
                  f"{np.mean(p <= ALPHA / args.family):10.2f} {seconds:8.3f}")


if __name__ == "__main__":
    main()
