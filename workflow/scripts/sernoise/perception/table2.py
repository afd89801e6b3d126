"""Table 2 (paper §6.1, §8.1), Cohen's kappa with annotators as individuals, perception partition.

Definitions (valid responses only, i.e. after quality control; test pairs only):

* A *judgement* is one worker's response to one pair.  It **changes dimension d** (valence or
  activation) when the worker answered ``different`` AND their rating r_d differs from the
  original o_d by more than ``tolerance`` (default 0.5): ``|r_d - o_d| > 0.5``.  o_d is the
  corpus rating on the 1-5 scale, or the bin midpoint (low 2, mid 3, high 4) for corpora without
  ratings (``key.csv``: original_source).  With integer ratings and the default tolerance this
  means "r_d is not the scale point nearest to o_d" (for a rating exactly between two points,
  e.g. 2.5, neither neighbour counts as a change).  A ``same`` answer changes nothing.
* A *pair's* dimension d is **changed** when a strict majority of its valid judgements change d
  (more than half of them: 2 of 3, 2 of 2, 1 of 1).
* ``frac_valence`` / ``frac_activation``: share of the condition's pairs (with at least one valid
  judgement) whose valence / activation is changed.
* ``delta_valence`` / ``delta_activation``: mean normalised change (r_d - o_d) / 4, in [-1, 1],
  over the judgements that change d in the pairs where d is changed (empty when there are none).
* ``frac_different``: share of pairs a strict majority called ``different`` (the paper's first
  label type); ``pairs.csv`` also gives each pair's mean perceived rating (the paper's second label
  type; a ``same`` answer counts as the original value).

Cohen's kappa, annotators as individuals (Hoek & Scholman 2017): for dimension d, the items x
annotators table holds each valid judgement's "changes d" (0/1), missing where the annotator did
not judge the item.  For every pair of annotators sharing at least ``min_shared`` (default 10)
items, Cohen's kappa (``sklearn.metrics.cohen_kappa_score``) is computed on the shared items.
Reported: the mean over annotator pairs weighted by their number of shared items, the number of
annotator pairs that entered it, and the number left out because kappa is undefined there (both
annotators gave one and the same label to every shared item: expected agreement 1).

Partition: a studied condition is ``altering`` when frac_valence or frac_activation exceeds
(``>``) the threshold (default 0.05, SPEC §5), otherwise ``retaining`` (source ``study``);
conditions without any valid judgement keep their configured perception (source ``config``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DIMENSIONS = ("valence", "activation")
TABLE2_COLUMNS = ["condition", "family", "perception", "frac_valence", "frac_activation", "delta_valence",
                  "delta_activation", "frac_different", "n_pairs", "n_judgements"]
KAPPA_COLUMNS = ["dimension", "kappa", "n_annotator_pairs", "n_shared_items", "n_undefined_pairs", "min_shared"]
PARTITION_COLUMNS = ["condition", "perception", "source", "frac_valence", "frac_activation", "threshold"]


def judgements(valid: pd.DataFrame, *, tolerance: float = 0.5) -> pd.DataFrame:
    """Valid test responses with changed_<d> (bool) and delta_<d> ((r - o) / 4, NaN unless changed)."""
    out = valid[valid["kind"] == "test"].copy()
    for d in DIMENSIONS:
        diff = out[d] - out[f"original_{d}"]
        changed = ~out["same"] & (diff.abs() > tolerance)
        out[f"changed_{d}"] = changed.fillna(False).astype(bool)
        out[f"delta_{d}"] = (diff / 4.0).where(out[f"changed_{d}"])
        out[f"perceived_{d}"] = out[d].where(~out["same"], out[f"original_{d}"])
    return out.reset_index(drop=True)


def pair_labels(judged: pd.DataFrame) -> pd.DataFrame:
    """One row per test pair: majority labels and mean perceived ratings."""
    g = judged.groupby("pair_id", sort=True)
    pairs = g.agg(condition=("condition", "first"), utt_id=("utt_id", "first"), n_valid=("worker", "size"),
                  n_different=("same", lambda s: int((~s).sum())),
                  n_changed_valence=("changed_valence", "sum"), n_changed_activation=("changed_activation", "sum"),
                  mean_perceived_valence=("perceived_valence", "mean"),
                  mean_perceived_activation=("perceived_activation", "mean")).reset_index()
    pairs["different"] = pairs["n_different"] > pairs["n_valid"] / 2
    for d in DIMENSIONS:
        pairs[f"changed_{d}"] = pairs[f"n_changed_{d}"] > pairs["n_valid"] / 2
    return pairs


def build_table2(judged: pd.DataFrame, pairs: pd.DataFrame, conditions: pd.DataFrame) -> pd.DataFrame:
    """Per configured condition (config order); conditions not in the study have n_pairs 0 and empty values."""
    changed_pairs = {d: set(pairs.loc[pairs[f"changed_{d}"], "pair_id"]) for d in DIMENSIONS}
    rows = []
    for c in conditions.itertuples(index=False):
        p = pairs[pairs["condition"] == c.condition]
        j = judged[judged["condition"] == c.condition]
        row = {"condition": c.condition, "family": c.family, "perception": c.perception,
               "n_pairs": len(p), "n_judgements": len(j)}
        for d in DIMENSIONS:
            row[f"frac_{d}"] = float(p[f"changed_{d}"].mean()) if len(p) else math.nan
            sel = j[j[f"changed_{d}"] & j["pair_id"].isin(changed_pairs[d])]
            row[f"delta_{d}"] = float(sel[f"delta_{d}"].mean()) if len(sel) else math.nan
        row["frac_different"] = float(p["different"].mean()) if len(p) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS)


def annotator_kappa(judged: pd.DataFrame, dimension: str, *, min_shared: int = 10) -> dict:
    """Weighted mean Cohen's kappa over annotator pairs with >= min_shared shared items (see module doc)."""
    # imported here: this module is imported by every job that reads the perception partition (the
    # attack's), and scikit-learn costs ~1.3 s of each such job's start (issue 17)
    from sklearn.metrics import cohen_kappa_score

    table = judged.pivot_table(index="pair_id", columns="worker", values=f"changed_{dimension}", aggfunc="first")
    values = table.to_numpy(dtype=float)  # NaN where the annotator did not judge the item
    present = ~np.isnan(values)
    shared = present.T.astype(np.int64) @ present.astype(np.int64)
    kappas, weights, undefined = [], [], 0
    n = values.shape[1]
    for i in range(n):
        for k in range(i + 1, n):
            if shared[i, k] < min_shared:
                continue
            both = present[:, i] & present[:, k]
            a, b = values[both, i].astype(int), values[both, k].astype(int)
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")
                kappa = cohen_kappa_score(a, b, labels=[0, 1])
            if not np.isfinite(kappa):
                undefined += 1
                continue
            kappas.append(kappa)
            weights.append(int(shared[i, k]))
    mean = float(np.average(kappas, weights=weights)) if kappas else math.nan
    return {"dimension": dimension, "kappa": mean, "n_annotator_pairs": len(kappas),
            "n_shared_items": int(sum(weights)), "n_undefined_pairs": undefined, "min_shared": min_shared}


def kappa_table(judged: pd.DataFrame, *, min_shared: int = 10) -> pd.DataFrame:
    return pd.DataFrame([annotator_kappa(judged, d, min_shared=min_shared) for d in DIMENSIONS], columns=KAPPA_COLUMNS)


def partition_from_config(conditions: pd.DataFrame, threshold: float) -> pd.DataFrame:
    return pd.DataFrame({"condition": conditions["condition"], "perception": conditions["perception"],
                         "source": "config", "frac_valence": math.nan, "frac_activation": math.nan,
                         "threshold": threshold}, columns=PARTITION_COLUMNS)


def partition(table2: pd.DataFrame, conditions: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Perception class per configured condition: from the study where it has judgements, else config."""
    out = partition_from_config(conditions, threshold)
    studied = table2.set_index("condition")
    for i, cid in enumerate(out["condition"]):
        if cid in studied.index and studied.at[cid, "n_pairs"] > 0:
            fv, fa = float(studied.at[cid, "frac_valence"]), float(studied.at[cid, "frac_activation"])
            out.loc[i, ["perception", "source", "frac_valence", "frac_activation"]] = [
                "altering" if (fv > threshold or fa > threshold) else "retaining", "study", fv, fa]
    return out


def _fmt(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def write_markdown(path, table2: pd.DataFrame, kappas: pd.DataFrame, qc: dict | None = None,
                   corpus: str = "") -> None:
    """Human-readable Table 2 (paper layout: V, A, delta V, delta A per condition) with kappa and QC."""
    lines = [f"# Table 2: perception change per noise condition{f' ({corpus})' if corpus else ''}", "",
             "Fraction of pairs whose valence (V) / activation (A) a majority of valid workers judged changed; "
             "δV, δA: mean normalised change (rating − original) / 4 over the changed judgements.", ""]
    lines += ["| condition | family | perception (config) | V | A | δV | δA | pairs | judgements |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in table2.itertuples(index=False):
        lines.append(f"| {r.condition} | {r.family} | {r.perception} | {_fmt(r.frac_valence)} | "
                     f"{_fmt(r.frac_activation)} | {_fmt(r.delta_valence, True)} | {_fmt(r.delta_activation, True)} | "
                     f"{r.n_pairs} | {r.n_judgements} |")
    lines += ["", "Cohen's kappa, annotators as individuals (Hoek & Scholman 2017), weighted by shared items:", "",
              "| dimension | kappa | annotator pairs | shared items | undefined pairs |", "|---|---:|---:|---:|---:|"]
    for r in kappas.itertuples(index=False):
        lines.append(f"| {r.dimension} | {_fmt(r.kappa)} | {r.n_annotator_pairs} | {r.n_shared_items} | "
                     f"{r.n_undefined_pairs} |")
    if qc:
        lines += ["", f"Quality control: {qc['n_excluded_workers']} of {qc['n_workers']} workers excluded "
                  f"(failure rate {qc['worker_failure_rate']:.1%}); {qc['n_excluded_responses']} of "
                  f"{qc['n_responses']} responses discarded."]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
