"""Simulated crowd responses with known true effects (tests, demos; never a substitute for a study).

Truth: for a test pair of condition c with ``true_change[c] = (p_valence, p_activation,
mean_shift_valence, mean_shift_activation)``, the modulated sample's valence is truly changed
with probability p_valence (independently activation with p_activation); a changed dimension
moves by mean_shift (normalised units, (rating - original) / 4) plus rating noise.  Conditions not
in ``true_change`` change nothing.

Workers (ids ``w001``...; which are bad is drawn by the seed and returned separately):

* good: answer the truth, except that with probability ``error_rate`` they flip same/different
  (a wrong "different" changes one random dimension by one scale point); an unchanged dimension
  is rated at the scale point nearest the original; they take 1.1-2x the pairs' combined
  length plus a few seconds;
* careless (half of the bad workers, rounded up): random answers and ratings on test pairs, and
  they fail every gold pair (different on gold identical, same on gold noisy);
* fast (the other bad workers): answer like good workers but about half of their responses (at
  least the first) take less than the combined length of the two samples.

Each batch of ``tasks`` is done by ``workers_per_pair`` distinct workers drawn from the pool.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..seeds import rng_for
from .responses import RESPONSE_COLUMNS


def _nearest(o: float) -> int:
    return int(min(5, max(1, math.floor(o + 0.5))))


def _changed_rating(o: float, shift: float, rng, tolerance: float) -> int:
    r = int(np.clip(np.rint(o + 4 * shift + rng.normal(0, 0.3)), 1, 5))
    if abs(r - o) > tolerance:
        return r
    up, down = math.floor(o + tolerance) + 1, math.ceil(o - tolerance) - 1
    if shift >= 0:
        return up if up <= 5 else down
    return down if down >= 1 else up


def simulate_responses(tasks: pd.DataFrame, key: pd.DataFrame, *, true_change: dict, n_workers: int = 30,
                       bad_worker_fraction: float = 0.1, seed: int = 0, workers_per_pair: int = 3,
                       error_rate: float = 0.05, tolerance: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(responses with RESPONSE_COLUMNS, workers: worker, kind good|careless|fast)."""
    if workers_per_pair > n_workers:
        raise ValueError(f"workers_per_pair ({workers_per_pair}) > n_workers ({n_workers})")
    rng = rng_for(seed, "perception", "simulate")
    workers = [f"w{i + 1:03d}" for i in range(n_workers)]
    n_bad = int(round(n_workers * bad_worker_fraction))
    bad = rng.permutation(n_workers)[:n_bad]
    kind = {w: "good" for w in workers}
    n_careless = math.ceil(n_bad / 2)
    for j, i in enumerate(bad):
        kind[workers[i]] = "careless" if j < n_careless else "fast"

    info = key.set_index("pair_id")
    truth = {}
    for pid in tasks.loc[tasks["kind"] == "test", "pair_id"]:
        p_v, p_a, s_v, s_a = true_change.get(info.at[pid, "condition"], (0.0, 0.0, 0.0, 0.0))
        truth[pid] = (rng.random() < p_v, rng.random() < p_a, s_v, s_a)

    rows, first_fast = [], set()
    for _batch, items in tasks.sort_values(["batch", "position"]).groupby("batch", sort=True):
        for w in (workers[i] for i in rng.choice(n_workers, size=workers_per_pair, replace=False)):
            for pid, pair_kind in zip(items["pair_id"], items["kind"]):
                o_a, o_v = float(info.at[pid, "original_activation"]), float(info.at[pid, "original_valence"])
                length = float(info.at[pid, "duration_original"] + info.at[pid, "duration_modulated"])
                seconds = length * rng.uniform(1.1, 2.0) + rng.exponential(3.0)
                if kind[w] == "fast" and (w not in first_fast or rng.random() < 0.5):
                    first_fast.add(w)
                    seconds = length * rng.uniform(0.2, 0.8)
                ratings = None  # None: "same"; else (activation, valence)
                if kind[w] == "careless":
                    if pair_kind == "gold_identical":
                        ratings = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
                    elif pair_kind == "test" and rng.random() < 0.5:
                        ratings = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
                elif pair_kind == "gold_noisy":
                    ratings = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
                elif pair_kind == "test":
                    c_v, c_a, s_v, s_a = truth[pid]
                    flip = rng.random() < error_rate
                    if (c_v or c_a) != flip:  # says "different"
                        if c_v or c_a:
                            r_v = _changed_rating(o_v, s_v, rng, tolerance) if c_v else _nearest(o_v)
                            r_a = _changed_rating(o_a, s_a, rng, tolerance) if c_a else _nearest(o_a)
                        else:  # a wrong "different": one dimension moved by one point
                            r_v, r_a = _nearest(o_v), _nearest(o_a)
                            step = int(rng.choice([-1, 1]))
                            if rng.random() < 0.5:
                                r_v = _changed_rating(o_v, step / 4, rng, tolerance)
                            else:
                                r_a = _changed_rating(o_a, step / 4, rng, tolerance)
                        ratings = (r_a, r_v)
                rows.append({"worker": w, "pair_id": pid, "same": "same" if ratings is None else "different",
                             "activation": "" if ratings is None else ratings[0],
                             "valence": "" if ratings is None else ratings[1], "seconds": round(seconds, 2)})
    responses = pd.DataFrame(rows, columns=RESPONSE_COLUMNS)
    roster = pd.DataFrame({"worker": workers, "kind": [kind[w] for w in workers]})
    return responses, roster
