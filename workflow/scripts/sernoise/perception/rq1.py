"""RQ1 checks beside Table 2 (paper §8.1): does perception change depend on the utterance?

The paper asks whether the change in perception that noise causes depends on the utterance
length, the speaker's gender or the original emotion, and answers with paired t-tests (none of
the three did).  Mirrored here on the study's per-pair labels (``pairs.csv`` of
:mod:`sernoise.perception.table2`: a pair's valence / activation is *changed* when a strict
majority of its valid judgements changed it):

* **length**: pairs of short utterances (``duration < Q1``) against long ones (``> Q3``), Q1 and
  Q3 the corpus-wide quartiles of the manifest's durations (the same split that selected the
  study's length extremes, :func:`sernoise.perception.select.length_quartiles`);
* **gender**: female (``F``) against male (``M``) speakers;
* **emotion**: each original emotion (manifest ``emotion``) against all other emotions.

Pairing by condition: for a comparison of groups a and b and a dimension d, each condition that
has pairs of both groups gives one paired observation (the fraction of its group-a pairs whose
d changed, and the same for group b); the paired t-test (``scipy.stats.ttest_rel``, two-sided)
asks whether the mean of the differences is 0.  Conditions thus act as the repeated measure,
so that a group that happened to draw more perception-altering conditions cannot fake an
effect.  Significance as in the paper (§7.2.3): Bonferroni-corrected ``p <= alpha`` (0.05), the
correction over the tests of one factor and dimension (1 for length and gender, one per emotion
for emotion).  A difference that is the same in every condition has no variance: when it is 0,
t = 0 and p = 1; otherwise t = ±inf and p = 0 (noted in ``note``).  With fewer than two paired
conditions there is no test (t, p empty, ``note`` says why).

Two scopes: ``all`` (every studied condition) and ``altering`` (the conditions Table 2 finds
perception-altering: a changed fraction above the threshold in valence or activation), since
retaining conditions change almost nothing in either group and only dilute a dependence.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .select import GENDERS, PerceptionError, length_quartiles
from .table2 import DIMENSIONS

ALPHA = 0.05  # paper §7.2.3: significant when p <= 0.05 (Bonferroni-corrected)
FACTORS = ("length", "gender", "emotion")
RQ1_COLUMNS = [
    "scope", "factor", "dimension", "group_a", "group_b", "n_conditions", "n_pairs_a", "n_pairs_b",
    "frac_a", "frac_b", "mean_difference", "t", "p", "n_tests", "p_bonferroni", "significant", "note",
]
LENGTH_GROUPS = ("short", "long")
REST = "other"  # the group of every other emotion


def utterance_groups(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per utterance: ``utt_id``, ``length`` (short < Q1, long > Q3, else middle), ``gender``, ``emotion``."""
    missing = [c for c in ("utt_id", "duration", "gender", "emotion") if c not in manifest.columns]
    if missing:
        raise PerceptionError(f"manifest: RQ1 needs the column(s) {missing}")
    q1, q3 = length_quartiles(manifest)
    duration = pd.to_numeric(manifest["duration"], errors="coerce")
    length = np.where(duration < q1, "short", np.where(duration > q3, "long", "middle"))
    return pd.DataFrame({
        "utt_id": manifest["utt_id"].astype(str).to_numpy(),
        "length": np.where(duration.isna(), "", length),
        "gender": manifest["gender"].fillna("").astype(str).str.strip().str.upper().to_numpy(),
        "emotion": manifest["emotion"].fillna("").astype(str).str.strip().to_numpy(),
    })


def _paired(frame: pd.DataFrame, column: str, a, b, dimension: str) -> dict:
    """The paired comparison of pairs whose ``column`` is in ``a`` with those in ``b`` (each a set of values)."""
    changed = f"changed_{dimension}"
    in_a, in_b = frame[frame[column].isin(a)], frame[frame[column].isin(b)]
    frac_a = in_a.groupby("condition")[changed].mean()
    frac_b = in_b.groupby("condition")[changed].mean()
    both = frac_a.index.intersection(frac_b.index)
    x, y = frac_a[both].to_numpy(dtype=float), frac_b[both].to_numpy(dtype=float)
    row = {"n_conditions": len(both), "n_pairs_a": int(in_a["condition"].isin(both).sum()),
           "n_pairs_b": int(in_b["condition"].isin(both).sum()),
           "frac_a": float(x.mean()) if len(both) else math.nan, "frac_b": float(y.mean()) if len(both) else math.nan,
           "mean_difference": float((x - y).mean()) if len(both) else math.nan,
           "t": math.nan, "p": math.nan, "note": ""}
    if len(both) < 2:
        row["note"] = f"{len(both)} condition(s) with pairs of both groups: no paired test"
        return row
    diff = x - y
    if np.all(diff == diff[0]):  # no variance: ttest_rel is undefined (0 / 0)
        if diff[0] == 0:
            row.update(t=0.0, p=1.0, note="no difference in any condition")
        else:
            row.update(t=math.copysign(math.inf, diff[0]), p=0.0, note="the same difference in every condition")
        return row
    result = stats.ttest_rel(x, y)
    row.update(t=float(result.statistic), p=float(result.pvalue))
    return row


def _comparisons(groups: pd.DataFrame) -> list[tuple[str, str, str, set, set]]:
    """(factor, group_a, group_b, values of a, values of b) of every RQ1 comparison, in a fixed order."""
    out = [("length", "short", "long", {"short"}, {"long"}),
           ("gender", GENDERS[0], GENDERS[1], {GENDERS[0]}, {GENDERS[1]})]
    emotions = sorted(e for e in groups["emotion"].unique() if e)
    if len(emotions) >= 2:
        for emotion in emotions:
            out.append(("emotion", emotion, REST, {emotion}, set(emotions) - {emotion}))
    return out


def rq1_tests(pairs: pd.DataFrame, groups: pd.DataFrame, *, altering: list[str] | None = None,
              alpha: float = ALPHA) -> pd.DataFrame:
    """The RQ1 table (RQ1_COLUMNS): per scope, factor, dimension and comparison, the paired t-test.

    ``pairs``: pair_labels rows (condition, utt_id, changed_valence, changed_activation);
    ``groups``: :func:`utterance_groups`; ``altering``: the conditions of the ``altering`` scope
    (None: that scope is left out).
    """
    missing = [c for c in ("condition", "utt_id", *(f"changed_{d}" for d in DIMENSIONS)) if c not in pairs.columns]
    if missing:
        raise PerceptionError(f"pairs: RQ1 needs the column(s) {missing}")
    frame = pairs.assign(utt_id=pairs["utt_id"].astype(str)).merge(groups, on="utt_id", how="left")
    unknown = frame.loc[frame["length"].isna(), "utt_id"].unique()
    if len(unknown):
        raise PerceptionError(f"pairs: {len(unknown)} utterance(s) not in the manifest, e.g. {unknown[0]!r}")
    for d in DIMENSIONS:
        frame[f"changed_{d}"] = frame[f"changed_{d}"].astype(bool)
    scopes = [("all", frame)]
    if altering is not None:
        scopes.append(("altering", frame[frame["condition"].isin(altering)]))
    rows = []
    for scope, part in scopes:
        for d in DIMENSIONS:
            for factor, name_a, name_b, a, b in _comparisons(groups):
                rows.append({"scope": scope, "factor": factor, "dimension": d, "group_a": name_a, "group_b": name_b,
                             **_paired(part, factor, a, b, d)})
    table = pd.DataFrame(rows, columns=[c for c in RQ1_COLUMNS if c not in ("n_tests", "p_bonferroni", "significant")])
    family = table.groupby(["scope", "factor", "dimension"])["p"].transform(lambda p: int(p.notna().sum()))
    table["n_tests"] = family.astype(int)
    table["p_bonferroni"] = np.minimum(1.0, table["p"] * table["n_tests"])
    table["significant"] = table["p_bonferroni"].le(alpha)  # NaN (no test) is not significant
    return table[RQ1_COLUMNS]


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"


def write_rq1_markdown(path, table: pd.DataFrame, *, corpus: str = "", alpha: float = ALPHA) -> None:
    """rq1.md: the RQ1 table in words, one section per scope."""
    lines = [f"# RQ1: does perception change depend on the utterance?{f' ({corpus})' if corpus else ''}", "",
             "Paper §8.1: paired t-tests of whether the change in perception depends on the utterance length "
             "(short < Q1 against long > Q3 of the corpus durations), the speaker's gender (F against M) or the "
             "original emotion (each against all others). Paired by condition: each condition with pairs of both "
             "groups gives the changed fraction of each group; the test is on their differences. frac: mean over "
             f"those conditions of the fraction of pairs a majority judged changed. Bonferroni over the tests of "
             f"one factor and dimension; significant when the corrected p <= {alpha}.", ""]
    for scope, part in table.groupby("scope", sort=False):
        what = "every studied condition" if scope == "all" else "the conditions Table 2 finds perception-altering"
        lines += [f"## Scope: {scope} ({what})", "",
                  "| factor | dimension | a | b | conditions | pairs a | pairs b | frac a | frac b | a − b | t | p "
                  "| p (Bonferroni) | significant | note |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in part.itertuples(index=False):
            lines.append(f"| {r.factor} | {r.dimension} | {r.group_a} | {r.group_b} | {r.n_conditions} | "
                         f"{r.n_pairs_a} | {r.n_pairs_b} | {_fmt(r.frac_a)} | {_fmt(r.frac_b)} | "
                         f"{_fmt(r.mean_difference)} | {_fmt(r.t, 2)} | {_fmt(r.p)} | {_fmt(r.p_bonferroni)} | "
                         f"{'yes' if r.significant else 'no'} | {r.note} |")
        found = part[part["significant"]]
        lines += ["", "Dependence found: " + (", ".join(f"{r.factor} ({r.group_a} vs {r.group_b}, {r.dimension})"
                                                         for r in found.itertuples(index=False)) or "none") + ".", ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
