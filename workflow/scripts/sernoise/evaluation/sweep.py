"""Augmentation-fraction sweep (paper §8.4; SPEC §8): UAR against the share of training data augmented.

Regimes ``fraction-<p>`` (:func:`sernoise.regimes.sweep_regimes`) augment p % of the clean training
utterances with one perception-retaining copy each; the ``clean`` regime of the same model is the
0 % point when it was trained.  For every fraction and task this module gives, over (fold,
repetition) pairs (mean ± sample standard deviation):

* ``clean``: UAR on clean test speech;
* ``retaining``: UAR on the perception-retaining test conditions, their predictions pooled (as
  Table 3's "Perception-retaining" row: summed confusion counts per (fold, rep));
* the gap clean − retaining and a paired t-test of it (Bonferroni over the fractions × tasks of
  the sweep, significant at adjusted p ≤ 0.05): the paper asks from which fraction the model is
  "equivalent" on noisy and clean test speech, i.e. the gap is no longer significant.

Outputs: ``sweep.csv`` (one row per fraction, task and test set), ``sweep.md`` (paper-style
table with caption) and ``sweep.png`` (UAR against the fraction, one panel per task).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sernoise.predictions import CLEAN
from sernoise.regimes import fraction_name

from .labels import labels_and_notes, model_label, task_label
from .render import write_table_files
from .stats import ALPHA, bonferroni, paired_ttest
from .uar_table import ConfusionIndex, condition_infos

TESTS = ("clean", "retaining")
TEST_LABELS = {"clean": "Clean test", "retaining": "Perception-retaining test"}
CSV_COLUMNS = ["model", "fraction", "regime", "task", "test", "mean", "std", "n_pairs", "value", "conditions",
               "gap_mean", "t", "p", "p_adjusted", "significant"]


def sweep_points(fractions, regimes_trained) -> list[tuple[float, str]]:
    """(percent, regime) of every sweep point, 0 % (the clean regime) first when it was trained."""
    points = [(0.0, "clean")] if "clean" in set(regimes_trained or []) else []
    return points + sorted((float(p), fraction_name(p)) for p in fractions)


def build_sweep(confusion: pd.DataFrame, conditions, *, model: str, fractions, tasks, tested=None,
                regimes_trained=("clean",)) -> pd.DataFrame:
    """The sweep table (CSV_COLUMNS) from confusion counts of the sweep model's predictions."""
    infos = list(condition_infos(conditions).values())
    tested = [c.id for c in infos] if tested is None else list(tested)
    retaining = [c.id for c in infos if c.perception == "retaining" and c.id in set(tested)]
    index = ConfusionIndex(confusion)
    records, pairs = [], {}
    for percent, regime in sweep_points(fractions, regimes_trained):
        for task in tasks:
            for test in TESTS:
                sources = [(CLEAN, regime)] if test == "clean" else [(c, regime) for c in retaining]
                series, used, _, _ = index.pair_uars(model, task, sources)
                pairs[(percent, task, test)] = series
                mean = float(series.mean()) if len(series) else math.nan
                std = float(series.std(ddof=1)) if len(series) > 1 else math.nan
                records.append({"model": model, "fraction": percent, "regime": regime, "task": task, "test": test,
                                "mean": mean, "std": std, "n_pairs": int(len(series)),
                                "value": _value(mean, std), "conditions": ";".join(used)})
    table = pd.DataFrame(records, columns=CSV_COLUMNS[:10])
    gaps, ts, ps = [], [], []
    for row in table.itertuples():
        clean = pairs[(row.fraction, row.task, "clean")]
        noisy = pairs[(row.fraction, row.task, row.test)]
        gap = t = p = math.nan
        if row.test == "retaining" and len(clean) and len(noisy):
            common = clean.index.intersection(noisy.index)
            if len(common):
                gap = float((clean.loc[common] - noisy.loc[common]).mean())
            result = paired_ttest(clean, noisy)
            t, p = result.statistic, result.p
        gaps.append(gap)
        ts.append(t)
        ps.append(p)
    table["gap_mean"], table["t"], table["p"] = gaps, ts, ps
    adjusted, significant, _ = bonferroni(table["p"].to_numpy(dtype=float))
    table["p_adjusted"], table["significant"] = adjusted, significant
    return table[CSV_COLUMNS]


def _value(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if not math.isnan(std) else f"{mean:.2f}"


def _percent(p: float) -> str:
    return f"{p:g} %" if p else "0 % (clean)"


def caption(table: pd.DataFrame, corpus: str = "", model_labels: dict | None = None,
            model_notes: list[str] | None = None, context_notes: list[str] | None = None) -> str:
    """``model_labels`` / ``model_notes``: the label of a model on a stand-in backbone and what it
    means (sernoise.plan.Plan.model_labels, stand_in_notes), as in Tables 3-5; ``context_notes``:
    sentences on what the sweep rests on (the perception partition)."""
    name = str(table["model"].iloc[0]) if len(table) else ""
    model = model_label(name, model_labels) if name else ""
    _, notes = labels_and_notes([name], model_labels, model_notes)
    m = int(np.isfinite(table["p"].to_numpy(dtype=float)).sum()) if len(table) else 0
    where = f" on {corpus}" if corpus else ""
    return (
        f"Augmentation-fraction sweep{where} ({model}; paper §8.4): p % of the clean training (and validation) "
        "utterances get one augmented copy each (a perception-retaining condition, train noise pool), the others "
        "stay clean only; 0 % is the model trained on clean speech. UAR mean ± standard deviation over "
        "(fold, repetition) pairs on clean test speech and on the perception-retaining test conditions "
        "(predictions pooled). Δ: clean − retaining; * marks a gap that is significant (paired t-test, "
        f"Bonferroni over m = {m} comparisons, adjusted p ≤ {ALPHA:g}); no * = the model is equivalent on noisy "
        "and clean test speech at that fraction. Chance UAR is 0.33."
    ) + "".join(f" {note}" for note in notes + list(context_notes or []))


def to_markdown(table: pd.DataFrame, corpus: str = "", model_labels: dict | None = None,
                model_notes: list[str] | None = None, context_notes: list[str] | None = None) -> str:
    tasks = list(dict.fromkeys(table["task"]))
    lines = [caption(table, corpus, model_labels, model_notes, context_notes), ""]
    header = ["Augmented"]
    for task in tasks:
        header += [f"{task_label(task)}: {TEST_LABELS['clean']}", f"{task_label(task)}: {TEST_LABELS['retaining']}",
                   f"{task_label(task)}: Δ"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|" + "---:|" * (len(header) - 1))
    for percent in dict.fromkeys(table["fraction"]):
        cells = [_percent(percent)]
        for task in tasks:
            sub = table[(table["fraction"] == percent) & (table["task"] == task)].set_index("test")
            cells += [sub.loc["clean", "value"], sub.loc["retaining", "value"]]
            gap = sub.loc["retaining", "gap_mean"]
            cells.append("–" if pd.isna(gap) else f"{gap:+.2f}" + ("*" if sub.loc["retaining", "significant"] else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_sweep(table: pd.DataFrame, csv=None, markdown=None, corpus: str = "", model_labels: dict | None = None,
                model_notes: list[str] | None = None, context_notes: list[str] | None = None) -> None:
    write_table_files(table, csv, table,
                      ((markdown, lambda t: to_markdown(t, corpus, model_labels, model_notes, context_notes)),))


def plot_sweep(table: pd.DataFrame, path, corpus: str = "", model_labels: dict | None = None) -> None:
    """UAR against the augmented percentage: one panel per task, clean and retaining test sets, ± std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"])) or ["activation"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    styles = {"clean": ("#424242", "o", "-"), "retaining": ("#1976d2", "s", "--")}
    for ax, task in zip(axes[0], tasks):
        for test in TESTS:
            sub = table[(table["task"] == task) & (table["test"] == test)].sort_values("fraction")
            color, marker, line = styles[test]
            ax.errorbar(sub["fraction"], sub["mean"], yerr=sub["std"].fillna(0), color=color, marker=marker, ls=line,
                        capsize=3, ms=4, label=TEST_LABELS[test])
        ax.axhline(1 / 3, color="grey", ls=":", lw=1, label="chance")
        ax.set(xlabel="training utterances augmented (%)", ylabel="UAR", title=f"{task}", ylim=(0, 1), xlim=(-5, 105))
        ax.legend(fontsize=8, loc="lower right")
    model = model_label(str(table["model"].iloc[0]), model_labels) if len(table) else ""
    fig.suptitle(f"Augmentation-fraction sweep ({model}{', ' + corpus if corpus else ''})", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
