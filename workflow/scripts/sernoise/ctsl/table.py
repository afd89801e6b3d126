"""The CTSL table (Leem et al., Table 1 layout) and its one-tailed Welch tests.

Input: the score rows of the adaptation jobs (:mod:`sernoise.ctsl.adapt`), one per (model,
strategy, fold, rep, chosen epoch, condition, test group, attribute): the CCC of that group
(dimensional tasks) or its UAR (classification).  A cell (model, strategy, condition, attribute)
is the mean of its values (90 in the paper: 3 epochs × 30 groups; here folds × reps × epochs ×
groups).  Each strategy is tested against Original (mark ``*``), RH (``†``) and RM (``‡``) with a
one-tailed Welch t-test (``scipy.stats.ttest_ind(equal_var=False, alternative="greater")``: is
the strategy better?), significant at p <= 0.05 without correction for multiple comparisons, as
in the paper.  The best mean of a column (per model) is in bold in the Markdown and LaTeX
renderings.  A test with fewer than two values on a side, or no variance on both, is undefined
(p NaN, no mark).  Each column header names its metric (``snr0 valence CCC``, ``clean activation
UAR``) and the first note says what the values are (:func:`values_note`), from the scores' ``metric``
column: the table says which metric it holds, whatever the task.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind

from sernoise.ctsl.strategies import VARIANTS
from sernoise.evaluation.render import EMPTY, latex_close, latex_open, markdown_notes, tex_escape, write_table_files

ALPHA = 0.05
REFERENCES = {"original": "*", "rh": "†", "rm": "‡"}
# the metric is part of a cell's key: a bins task "activation" (UAR) and the attribute "activation" of a
# dimensional task (CCC) are different cells when ctsl.tasks holds both
KEYS = ["model", "strategy", "condition", "attribute", "metric"]
METRIC_LABELS = {"ccc": "CCC", "uar": "UAR"}
METRIC_NOTES = {
    "ccc": "CCC (concordance correlation coefficient) of each attribute of the dimensional task (task loss: "
           "the sum over the attributes of 1 - CCC)",
    "uar": "UAR (unweighted average recall) of the classification task (task loss: cross-entropy)",
}
SCORE_COLUMNS = ["model", "strategy", "fold", "rep", "epoch", "condition", "group", "attribute", "metric", "value"]


def welch_greater(a, b) -> float:
    """One-tailed Welch p of mean(a) > mean(b); NaN when undefined (see the module doc)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2 or (a.var() == 0 and b.var() == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def _snr_of(condition: str) -> float:
    """``snr5`` -> 5.0 (the names :func:`sernoise.ctsl.adapt.snr_condition` gives); other names sort last."""
    try:
        return float(condition[3:]) if condition.startswith("snr") else math.inf
    except ValueError:
        return math.inf


def condition_order(conditions, matched: str) -> list[str]:
    """The matched condition first, then the other noisy ones (lowest SNR first), clean last."""
    noisy = sorted((c for c in conditions if c not in (matched, "clean")), key=lambda c: (_snr_of(c), c))
    return [c for c in [matched, *noisy, "clean"] if c in set(conditions)]


def build_cells(scores: pd.DataFrame, strategies: list[str]) -> pd.DataFrame:
    """One row per (model, strategy, condition, attribute, metric): mean, n, Welch p against each reference, marks."""
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"CTSL scores lack the columns {missing}")
    values = {key: group["value"].to_numpy(float) for key, group in scores.groupby(KEYS, sort=False)}
    rows = []
    for (model, strategy, condition, attribute, metric), v in values.items():
        row = {"model": model, "strategy": strategy, "label": VARIANTS[strategy][0], "condition": condition,
               "attribute": attribute, "metric": metric,
               "mean": float(np.nanmean(v)) if np.isfinite(v).any() else math.nan, "n": int(np.isfinite(v).sum())}
        marks = ""
        for reference, mark in REFERENCES.items():
            other = values.get((model, reference, condition, attribute, metric))
            p = math.nan if other is None or reference == strategy else welch_greater(v, other)
            row[f"p_vs_{reference}"] = p
            if math.isfinite(p) and p <= ALPHA:
                marks += mark
        row["marks"] = marks
        rows.append(row)
    cells = pd.DataFrame(rows)
    rank = {s: i for i, s in enumerate(strategies)}
    cells["_order"] = cells["strategy"].map(rank)
    # attributes in the task's order (activation, valence, dominance), as the scores give them
    order = {key: i for i, key in enumerate(dict.fromkeys(zip(scores["attribute"], scores["metric"])))}
    cells["_attribute"] = [order[key] for key in zip(cells["attribute"], cells["metric"])]
    return cells.sort_values(["model", "_order", "condition", "_attribute"], kind="stable") \
        .drop(columns=["_order", "_attribute"]).reset_index(drop=True)


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def values_note(cells: pd.DataFrame) -> str:
    """The note that says what the values are: CCC (dimensional tasks) or UAR (classification), per the scores."""
    metrics = list(dict.fromkeys(cells["metric"]))
    what = "; ".join(METRIC_NOTES.get(m, m) for m in metrics)
    return (f"Values: {what}, of each test group, for the best non-consecutive development epochs; mean over "
            "folds, repetitions, epochs and groups.")


def _layout(cells: pd.DataFrame, conditions: list[str], strategies: list[str], model_labels: dict):
    """Column headers ("condition attribute METRIC") and body rows (row label, [(text, bold)])."""
    attributes = list(dict.fromkeys(zip(cells["attribute"], cells["metric"])))
    columns = [(c, a, m) for c in conditions for a, m in attributes]
    lookup = {(r.model, r.strategy, r.condition, r.attribute, r.metric): r for r in cells.itertuples()}
    headers = [f"{c} {a} {metric_label(m)}" for c, a, m in columns]
    body = []
    for model in dict.fromkeys(cells["model"]):
        best = {}
        for column in columns:
            means = [lookup[(model, s, *column)].mean for s in strategies if (model, s, *column) in lookup]
            means = [m for m in means if math.isfinite(m)]
            best[column] = max(means) if means else None
        for strategy in strategies:
            texts = []
            for column in columns:
                cell = lookup.get((model, strategy, *column))
                if cell is None or not math.isfinite(cell.mean):
                    texts.append((EMPTY, False))
                else:
                    texts.append((f"{cell.mean:.3f}{cell.marks}", cell.mean == best[column]))
            body.append((f"{model_labels.get(model, model)} {VARIANTS[strategy][0]}", texts))
    return headers, body


def render_markdown(cells, conditions, strategies, model_labels, title, notes) -> str:
    columns, body = _layout(cells, conditions, strategies, model_labels)
    lines = [f"# {title}", "", "| model / strategy | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, texts in body:
        lines.append(f"| {name} | " + " | ".join(f"**{t}**" if bold else t for t, bold in texts) + " |")
    return "\n".join(lines + markdown_notes(notes)) + "\n"


def render_latex(cells, conditions, strategies, model_labels, title, notes) -> str:
    columns, body = _layout(cells, conditions, strategies, model_labels)
    lines = latex_open(title, title, "l" + "c" * len(columns))
    lines.append(" & " + " & ".join(tex_escape(h) for h in columns) + r" \\")
    lines.append(r"\midrule")
    for name, texts in body:
        lines.append(tex_escape(name) + " & " + " & ".join(
            (r"\textbf{" + tex_escape(t) + "}") if bold else tex_escape(t) for t, bold in texts) + r" \\")
    return "\n".join(lines + latex_close(notes)) + "\n"


def write_ctsl_table(scores: pd.DataFrame, *, strategies: list[str], matched: str, model_labels: dict, notes,
                     csv, md, tex, title: str = "CTSL") -> pd.DataFrame:
    """Cells (:func:`build_cells`) to ``csv``; the Table 1 layout to ``md`` and ``tex``, ``notes`` after
    :func:`values_note`."""
    cells = build_cells(scores, strategies)
    notes = [values_note(cells), *notes]
    conditions = condition_order(list(dict.fromkeys(cells["condition"])), matched)
    write_table_files(cells, csv, cells, [
        (md, lambda c: render_markdown(c, conditions, strategies, model_labels, title, notes)),
        (tex, lambda c: render_latex(c, conditions, strategies, model_labels, title, notes)),
    ])
    return cells


EMBEDDING_MEASURES = ("rmse", "cosine", "infonce")


def write_embedding_table(embeddings: pd.DataFrame, *, strategies: list[str], model_labels: dict, csv, md,
                          title: str, matched: str | None = None) -> pd.DataFrame:
    """The embedding analysis (the paper's Table 2): per (model, strategy, condition) the mean over folds and
    repetitions of the RMSE and cosine similarity between the original model's clean embeddings and the
    model's noisy embeddings, and of the InfoNCE loss; to ``csv`` and, laid out like Table 2, to ``md``."""
    missing = [c for c in ("model", "strategy", "condition", *EMBEDDING_MEASURES) if c not in embeddings.columns]
    if missing:
        raise ValueError(f"CTSL embedding rows lack the columns {missing}")
    cells = embeddings.groupby(["model", "strategy", "condition"], sort=False)[list(EMBEDDING_MEASURES)] \
        .mean().reset_index()
    cells["runs"] = embeddings.groupby(["model", "strategy", "condition"], sort=False).size().to_numpy()
    rank = {s: i for i, s in enumerate(strategies)}
    cells = cells.assign(_order=cells["strategy"].map(rank)).sort_values(["model", "_order", "condition"],
                                                                          kind="stable").drop(columns="_order")
    conditions = condition_order(list(dict.fromkeys(cells["condition"])), matched)
    lookup = {(r.model, r.strategy, r.condition): r for r in cells.itertuples()}
    lines = [f"# {title}", "", "| model / strategy | " + " | ".join(
        f"{c} {m}" for c in conditions for m in ("RMSE", "cos", "InfoNCE")) + " |",
        "|---|" + "---|" * (3 * len(conditions))]
    for model in dict.fromkeys(cells["model"]):
        for strategy in strategies:
            texts = []
            for condition in conditions:
                cell = lookup.get((model, strategy, condition))
                texts += [EMPTY] * 3 if cell is None else [f"{getattr(cell, m):.3f}" for m in EMBEDDING_MEASURES]
            lines.append(f"| {model_labels.get(model, model)} {VARIANTS[strategy][0]} | " + " | ".join(texts) + " |")
    notes = ["RMSE and cosine similarity between the original (clean-trained) model's embeddings of clean "
             "development utterances and each model's embeddings of their noisy copies (TEST-pool noise of the "
             "target category at each SNR); InfoNCE as in training; batches of the adaptation's batch size, "
             "best development epoch, mean over folds and repetitions."]
    write_table_files(cells, csv, cells, [(md, lambda _: "\n".join(lines + markdown_notes(notes)) + "\n")])
    return cells
