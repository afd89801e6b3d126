"""Table 5 (paper §8.5, Table 5; SPEC §9, §10): success rate of the black-box noise attack.

Layout (the paper's): rows = knowledge ("Performance impact per noise is unknown" / "... is
known") × noise set (``attack.noise_sets`` order; by default the paper's §8.5 sets: All
noises** — perception-altering noises included, uncertain ground truth —, Perception-retaining,
Environmental, Signal manipulation, Reverb only) × number of allowed
attempts (the budgets, ascending, inf last); columns = task (Activation, Valence) × model
(T-DNN, E-DNN, T-DNN-NR, E-DNN-NR: ``attack.models`` order).  Lower is better.

A cell's value: each utterance's success is first averaged over its runs, then over the
utterances of one (fold, repetition); the cell is the mean over (fold, repetition) pairs
(std over pairs in the CSV).  The per-pair means are also the unit of the significance test.

Significance: per (model, task, knowledge, budget), a paired t-test over (fold, repetition)
pairs of the All-noises** set against the Perception-retaining set
(:func:`sernoise.evaluation.stats.paired_ttest`), Bonferroni over all those comparisons of
the table (:func:`sernoise.evaluation.stats.bonferroni`), significant at adjusted p <= 0.05;
the All-noises** cell is then marked ↑ (higher success than with perception-retaining noise
only) or ↓.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sernoise.evaluation.render import (
    EMPTY, latex_close, latex_open, markdown_notes, tex_escape, value_text, write_table_files,
)
from sernoise.evaluation.stats import ALPHA, bonferroni, direction, paired_ttest
from sernoise.evaluation.flags import flagged_note, mark_flagged
from sernoise.evaluation.labels import labels_and_notes, model_label

from .runner import budget_sort_key

KNOWLEDGE_LABELS = {"none": "Performance impact per noise is unknown", "degradation": "Performance impact per noise is known"}
SET_LABELS = {"all": "All noises**", "retaining": "Perception-retaining", "environmental": "Environmental",
              "signal_manipulation": "Signal manipulation"}
NAMED_SET_LABELS = {"reverb": "Reverb only"}  # list-spec sets with a label of their own (paper §8.5)
TASK_NAMES = {"activation": "Activation", "valence": "Valence", "dominance": "Dominance"}
KEYS = ["model", "task", "knowledge", "noise_set", "budget"]
PAIR = ["fold", "rep"]
CSV_COLUMNS = [
    "row_order", "knowledge", "knowledge_label", "noise_set", "noise_set_label", "budget", "model", "model_label",
    "task", "task_label", "value", "mean", "std", "n_pairs", "n_utterances", "n_rows", "queries_mean",
    "decrease_mean", "comparison", "reference_mean", "t", "p", "p_adjusted", "significant", "direction", "note",
]


def set_label(name: str, spec: str) -> str:
    return SET_LABELS.get(spec) or NAMED_SET_LABELS.get(name) or name.replace("_", " ").capitalize()


def task_name(task: str) -> str:
    return TASK_NAMES.get(task, task)


@dataclass
class Table5:
    cells: pd.DataFrame
    models: list[str]
    tasks: list[str]
    knowledge: list[str]
    noise_sets: list[str]
    set_specs: dict
    budgets: list[str]
    m: int
    corpus: str = ""
    notes: list[str] = field(default_factory=list)
    labels: dict = field(default_factory=dict)  # model -> column label replacing the registry's (stand-in backbones)
    model_notes: list[str] = field(default_factory=list)  # caption sentences about the models (e.g. a stand-in)
    context_notes: list[str] = field(default_factory=list)  # caption sentences on what it rests on (partition)

    def label(self, model: str) -> str:
        return model_label(model, self.labels)


def pair_rates(results: pd.DataFrame) -> pd.Series:
    """Success rate per (model, task, knowledge, noise set, budget, fold, rep): runs, then utterances."""
    frame = results.assign(success=results["success"].astype(float), budget=results["budget"].astype(str))
    per_utt = frame.groupby(KEYS + PAIR + ["utt_id"], sort=False)["success"].mean()
    return per_utt.groupby(level=KEYS + PAIR, sort=False).mean()


def build_table5(results: pd.DataFrame, settings: dict, *, corpus: str = "", model_labels: dict | None = None,
                 model_notes: list[str] | None = None, flagged: dict | None = None) -> Table5:
    """Table 5 from the concatenated attack result rows and the resolved attack settings;
    ``model_labels``, ``model_notes`` and ``flagged`` as for
    :func:`sernoise.evaluation.uar_table.build_uar_table` (the column label of an E-DNN on a stand-in
    backbone, and what it means; the attacked models the degenerate-model check flagged)."""
    models = list(settings["models"])
    labels, model_notes = labels_and_notes(models, model_labels, model_notes)
    tasks = list(settings["tasks"])
    knowledge = list(settings["knowledge"])
    noise_sets = list(settings["noise_sets"])
    specs = dict(settings.get("noise_set_specs") or {})
    budgets = sorted(settings["budgets"], key=budget_sort_key)
    rates = pair_rates(results) if len(results) else pd.Series(dtype=float)
    frame = results.assign(budget=results["budget"].astype(str)) if len(results) else results
    rows, flag_notes = [], []
    order = 0
    for k in knowledge:
        for s in noise_sets:
            for b in budgets:
                order += 1
                for t in tasks:
                    for mdl in models:
                        key = (mdl, t, k, s, b)
                        pairs = _pairs(rates, key)
                        sel = _select(frame, key)
                        successes = sel[sel["success"]] if len(sel) else sel
                        flag_notes.append(flagged_note(flagged, mdl, t, [settings.get("regime", "clean")], pairs.index))
                        rows.append({
                            "row_order": order, "knowledge": k, "knowledge_label": KNOWLEDGE_LABELS.get(k, k),
                            "noise_set": s, "noise_set_label": set_label(s, specs.get(s, "list")), "budget": b,
                            "model": mdl, "model_label": model_label(mdl, labels),
                            "task": t, "task_label": task_name(t),
                            "mean": float(pairs.mean()) if len(pairs) else math.nan,
                            "std": float(pairs.std(ddof=1)) if len(pairs) > 1 else (0.0 if len(pairs) else math.nan),
                            "n_pairs": int(len(pairs)),
                            "n_utterances": int(sel.groupby(PAIR + ["utt_id"]).ngroups) if len(sel) else 0,
                            "n_rows": int(len(sel)),
                            "queries_mean": float(sel["queries"].mean()) if len(sel) else math.nan,
                            "decrease_mean": float(successes["decrease_db"].mean()) if len(successes) else math.nan,
                            "comparison": "", "reference_mean": math.nan, "t": math.nan, "p": math.nan,
                            "p_adjusted": math.nan, "significant": False, "direction": "", "note": "",
                        })
    cells = pd.DataFrame(rows, columns=[c for c in CSV_COLUMNS if c != "value"])
    m = _compare(cells, rates, specs)
    cells["value"] = [value_text(r.mean, r.significant, r.direction) for r in cells.itertuples()]
    cells = cells[CSV_COLUMNS]
    notes = []
    missing = cells[cells["n_pairs"] == 0]
    if len(missing):
        notes.append(f"{len(missing)} cell(s) without attack results ({EMPTY}).")
    mark_flagged(cells, flag_notes, notes, "table5.csv")
    return Table5(cells, models, tasks, knowledge, noise_sets, specs, budgets, m, corpus, notes, labels, model_notes)


def _pairs(rates: pd.Series, key: tuple) -> pd.Series:
    if rates.empty:
        return rates
    try:
        return rates.xs(key, level=KEYS).dropna()
    except KeyError:
        return pd.Series(dtype=float)


def _select(frame: pd.DataFrame, key: tuple) -> pd.DataFrame:
    if not len(frame):
        return frame
    mask = np.ones(len(frame), dtype=bool)
    for column, value in zip(KEYS, key):
        mask &= (frame[column].astype(str) == str(value)).to_numpy()
    return frame[mask]


def _compare(cells: pd.DataFrame, rates: pd.Series, specs: dict) -> int:
    """All-noises** vs Perception-retaining per (model, task, knowledge, budget); Bonferroni; returns m."""
    all_sets = [s for s, spec in specs.items() if spec == "all"]
    retaining = [s for s, spec in specs.items() if spec == "retaining"]
    tests = []
    for s_all in all_sets:
        for s_ret in retaining:
            for index in cells.index[cells["noise_set"] == s_all]:
                row = cells.loc[index]
                key = (row["model"], row["task"], row["knowledge"], row["budget"])
                a = _pairs(rates, (key[0], key[1], key[2], s_all, key[3]))
                b = _pairs(rates, (key[0], key[1], key[2], s_ret, key[3]))
                result = paired_ttest(a, b)
                tests.append((index, s_ret, result, float(b.mean()) if len(b) else math.nan))
    adjusted, significant, m = bonferroni([r.p for _, _, r, _ in tests])
    for (index, s_ret, result, reference), p_adj, sig in zip(tests, adjusted, significant):
        cells.loc[index, ["comparison", "reference_mean", "t", "p", "p_adjusted", "significant", "direction", "note"]] = [
            f"vs {s_ret} (paired t-test over (fold, rep))", reference, result.statistic, result.p, p_adj, bool(sig),
            direction(cells.loc[index, "mean"], reference) if sig else "", result.note,
        ]
    cells["significant"] = cells["significant"].astype(bool)
    return m


def caption(table: Table5) -> str:
    corpus = f" on {table.corpus}" if table.corpus else ""
    models = ", ".join(table.label(m) for m in table.models)
    return (
        f"Table 5: success rate of the black-box noise attack (Algorithm 1){corpus} against {models}, "
        "per number of allowed attempts (model queries; the clean reference prediction is not counted); "
        "lower is better. Each utterance's success is averaged over its runs, then over utterances, then over "
        "(fold, repetition) pairs. All noises**: every attack noise category, perception-altering ones included "
        "(uncertain ground truth); Perception-retaining: only categories that do not change human perception; "
        "Reverb: reverberation only. Unknown / known: categories tried in random order / in the order of their "
        "measured UAR drop on the validation role. Significance: paired t-test over (fold, repetition) pairs of "
        "All noises** against Perception-retaining (same model, task, knowledge and attempts), Bonferroni over the "
        f"m = {table.m} comparisons of this table, adjusted p ≤ {ALPHA:g}; ↑/↓: significantly higher/lower success "
        f"than with perception-retaining noises. {EMPTY}: no results."
        + "".join(f" {note}" for note in table.model_notes + table.context_notes)
    )


def _grid(table: Table5) -> list[tuple[str, str, str, list[str]]]:
    values = {(r.knowledge, r.noise_set, r.budget, r.model, r.task): r.value for r in table.cells.itertuples()}
    out, last_k, last_s = [], None, None
    for k in table.knowledge:
        for s in table.noise_sets:
            for b in table.budgets:
                k_text = KNOWLEDGE_LABELS.get(k, k) if k != last_k else ""
                s_text = set_label(s, table.set_specs.get(s, "list")) if (k, s) != last_s else ""
                last_k, last_s = k, (k, s)
                out.append((k_text, s_text, b, [values[(k, s, b, mdl, t)] for t in table.tasks for mdl in table.models]))
    return out


def to_markdown(table: Table5) -> str:
    n = len(table.models)
    head_tasks = []
    for t in table.tasks:
        head_tasks += [task_name(t)] + [""] * (n - 1)
    head_models = [table.label(m) for _ in table.tasks for m in table.models]
    lines = [caption(table), ""]
    lines.append("| Knowledge | Noise set | No. of attempts | " + " | ".join(head_tasks) + " |")
    lines.append("|---|---|---:|" + "---:|" * (n * len(table.tasks)))
    lines.append("| | | | " + " | ".join(head_models) + " |")
    for k_text, s_text, budget, values in _grid(table):
        lines.append(f"| {k_text} | {s_text} | {budget} | " + " | ".join(values) + " |")
    lines += markdown_notes(table.notes)
    return "\n".join(lines) + "\n"


def to_latex(table: Table5) -> str:
    n = len(table.models)
    lines = latex_open("Table 5", caption(table), "llr" + "c" * (n * len(table.tasks))) + [
        " & & & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{tex_escape(task_name(t))}}}" for t in table.tasks) + r" \\",
        "".join(rf"\cmidrule(lr){{{4 + i * n}-{3 + (i + 1) * n}}}" for i in range(len(table.tasks))),
        r"Knowledge & Noise set & Attempts & "
        + " & ".join(tex_escape(table.label(m)) for _ in table.tasks for m in table.models) + r" \\",
        r"\midrule",
    ]
    for i, (k_text, s_text, budget, values) in enumerate(_grid(table)):
        if i and k_text:
            lines.append(r"\midrule")
        elif i and s_text:
            lines.append(r"\addlinespace")
        cells = [tex_escape(k_text), tex_escape(s_text), tex_escape(budget)] + [tex_escape(v) for v in values]
        lines.append(" & ".join(cells) + r" \\")
    lines += latex_close(table.notes)
    return "\n".join(lines) + "\n"


def write_table5(table: Table5, csv=None, markdown=None, latex=None) -> None:
    write_table_files(table.cells, csv, table, ((markdown, to_markdown), (latex, to_latex)))


# ------------------------------------------------------------------------------------ plot

SET_COLORS = ["#c62828", "#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"]
KNOWLEDGE_STYLES = {"none": ("-", "o"), "degradation": ("--", "s")}


def plot_attack_budget(table: Table5, path) -> None:
    """Success rate against the budget: one panel per task (rows) and model (columns); colour: noise
    set; line style: knowledge; mean over (fold, rep) pairs with one standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    finite = [float(b) for b in table.budgets if b != "inf"]
    top = max(finite) if finite else 1.0
    positions = {b: (float(b) if b != "inf" else top + max(10.0, 0.4 * top)) for b in table.budgets}
    fig, axes = plt.subplots(len(table.tasks), len(table.models), squeeze=False, sharey=True, sharex=True,
                             figsize=(4.2 * len(table.models), 3.2 * len(table.tasks)), constrained_layout=True)
    cells = table.cells
    colors = {s: SET_COLORS[i % len(SET_COLORS)] for i, s in enumerate(table.noise_sets)}
    for r, task in enumerate(table.tasks):
        for c, mdl in enumerate(table.models):
            ax = axes[r][c]
            for s in table.noise_sets:
                for k in table.knowledge:
                    sel = cells[(cells.task == task) & (cells.model == mdl) & (cells.noise_set == s) & (cells.knowledge == k)]
                    sel = sel.assign(x=sel["budget"].map(positions)).sort_values("x")
                    sel = sel[sel["n_pairs"] > 0]
                    if sel.empty:
                        continue
                    style, marker = KNOWLEDGE_STYLES.get(k, (":", "^"))
                    ax.errorbar(sel["x"], sel["mean"], yerr=sel["std"].fillna(0.0), color=colors[s], linestyle=style,
                                marker=marker, capsize=3, linewidth=1.4, markersize=4)
            ax.set_xticks([positions[b] for b in table.budgets])
            ax.set_xticklabels(["∞" if b == "inf" else b for b in table.budgets])
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(f"{table.label(mdl)}, {task_name(task)}")
            if c == 0:
                ax.set_ylabel("attack success rate")
            if r == len(table.tasks) - 1:
                ax.set_xlabel("query budget (allowed attempts)")
    handles = [Line2D([], [], color=colors[s], label=set_label(s, table.set_specs.get(s, "list"))) for s in table.noise_sets]
    handles += [Line2D([], [], color="k", linestyle=KNOWLEDGE_STYLES.get(k, (":", "^"))[0],
                       marker=KNOWLEDGE_STYLES.get(k, (":", "^"))[1],
                       label=f"knowledge: {'degradation order' if k == 'degradation' else k}") for k in table.knowledge]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize="small")
    fig.suptitle("Black-box noise attack: success rate against the query budget (lower is better)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
