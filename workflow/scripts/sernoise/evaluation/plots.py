"""Plots of the evaluation (SPEC §10): UAR against SNR, UAR per condition.

Both read ``metrics.csv`` (one UAR per model, regime, fold, rep, task and test condition) and
show means over (fold, rep) with the standard deviation as error bars; the dashed line is chance
(1/3).

* :func:`plot_uar_vs_snr`: one panel per model (rows) and task (columns); one line per
  environmental category (colour) and Table 3 column (line style: Clean, Clean+Noise Mismatch,
  Clean+Noise Match; each point read from the column's source regime, as in Table 3) over the
  continuous-noise conditions at each SNR (perception-retaining ones), plus clean test speech at
  SNR ∞ (the source regime's UAR on clean speech).
* :func:`plot_uar_per_condition`: one panel per model and task; per test condition (clean speech
  first, then config order) a bar for the model trained on clean speech and one for the matched
  model (trained with every perception-retaining condition); labels of perception-altering
  conditions are red; conditions without predictions (e.g. skipped on this corpus) say "n/a".
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sernoise.predictions import CLEAN  # noqa: E402
from sernoise.regimes import column_source  # noqa: E402

from .flags import panel_flag
from .labels import CATEGORY_LABELS, COLUMN_LABELS, COLUMNS, model_label, ordered_categories  # noqa: E402
from .uar_table import condition_infos, evaluation_regimes, ordered_names  # noqa: E402

CHANCE = 1 / 3
CATEGORY_COLORS = {"nat": "#2e7d32", "int": "#1565c0", "hum": "#c62828"}
EXTRA_COLORS = ["#6a1b9a", "#ef6c00", "#00838f", "#5d4037"]
COLUMN_STYLES = {"clean": ("-", "o"), "mismatch": (":", "s"), "match": ("--", "^")}
BAR_REGIMES = (("clean", "Trained on clean speech", "#9e9e9e"), ("matched", "Matched (Clean+Noise)", "#1976d2"))


def _stats(metrics: pd.DataFrame, model, task, regime, condition) -> tuple[float, float, int]:
    rows = metrics[(metrics["model"] == model) & (metrics["task"] == task) & (metrics["regime"] == regime)
                   & (metrics["condition"] == condition)]["uar"].dropna()
    if rows.empty:
        return math.nan, math.nan, 0
    return float(rows.mean()), float(rows.std(ddof=1)) if len(rows) > 1 else 0.0, int(len(rows))


def _models_and_tasks(config: dict, metrics: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The panel rows and columns: models with metrics and tasks, in config order then the others
    (one "(none)" placeholder when there is nothing, so an empty run still gives a figure)."""
    training = config.get("training", {})
    present = set(metrics["model"])
    models = [m for m in ordered_names(training.get("models"), present) if m in present]
    tasks = ordered_names(training.get("tasks"), metrics["task"].unique())
    return models or ["(none)"], tasks or ["(none)"]


def _panels(n_rows, n_cols, width, height):
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows), squeeze=False,
                             sharey=True, constrained_layout=True)
    return fig, axes


def plot_uar_vs_snr(metrics: pd.DataFrame, config: dict, conditions, path, tested=None, regimes=None,
                    flagged: dict | None = None, model_labels: dict | None = None) -> None:
    """UAR against the SNR of continuous environmental noise, per category and regime column, one panel
    per (model, task); a panel holding models the degenerate-model check flagged (``flagged``:
    metrics.read_flags) says so in its title (evaluation.flags.panel_flag); ``model_labels``: the
    panel label of a model on a stand-in backbone (as in the tables)."""
    infos = condition_infos(conditions)
    regimes = evaluation_regimes(config, infos, regimes)
    tested = set(infos if tested is None else tested)
    cont = [c for c in infos.values() if c.id in tested and c.family == "environmental"
            and c.perception == "retaining" and c.position == "cont" and c.snr_db is not None]
    snrs = sorted({float(c.snr_db) for c in cont}, reverse=True)
    categories = ordered_categories(c.category for c in cont)
    colors = {k: CATEGORY_COLORS.get(k) or EXTRA_COLORS[i % len(EXTRA_COLORS)] for i, k in enumerate(categories)}
    models, tasks = _models_and_tasks(config, metrics)
    fig, axes = _panels(len(models), len(tasks), 5.6, 4.2)
    x_labels = ["clean\n(∞)"] + [f"{s:g} dB" for s in snrs]
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            for category in categories:
                members = [c for c in cont if c.category == category]
                for column in COLUMNS:
                    style, marker = COLUMN_STYLES[column]
                    xs, ys, es = [], [], []
                    sources = {column_source(config, regimes, column, c.id) for c in members}
                    clean_source = sources.pop() if len(sources) == 1 else None
                    if clean_source:
                        mean, std, _ = _stats(metrics, model, task, clean_source, CLEAN)
                        if not math.isnan(mean):
                            xs.append(0), ys.append(mean), es.append(std)
                    for k, snr in enumerate(snrs, start=1):
                        values = []
                        for c in members:
                            if float(c.snr_db) != snr:
                                continue
                            source = column_source(config, regimes, column, c.id)
                            if source:
                                values.append(_stats(metrics, model, task, source, c.id)[:2])
                        values = [v for v in values if not math.isnan(v[0])]
                        if values:
                            xs.append(k)
                            ys.append(float(np.mean([v[0] for v in values])))
                            es.append(float(np.mean([v[1] for v in values])))
                    if xs:
                        ax.errorbar(xs, ys, yerr=es, color=colors[category], linestyle=style, marker=marker,
                                    markersize=5, capsize=2, linewidth=1.6, alpha=0.9)
            ax.axhline(CHANCE, color="black", linestyle=(0, (4, 3)), linewidth=0.9)
            ax.text(-0.3, CHANCE + 0.01, "chance", fontsize=8, ha="left", va="bottom")
            ax.set_xticks(range(len(x_labels)), x_labels)
            ax.set_xlim(-0.35, len(snrs) + 0.35)
            ax.set_ylim(0, 1)
            ax.grid(axis="y", alpha=0.3)
            ax.set_title(f"{model_label(model, model_labels)}: {task}{panel_flag(flagged, model, task)}", fontsize=11)
            ax.set_xlabel("SNR of continuous noise")
            if j == 0:
                ax.set_ylabel("UAR (mean ± sd over folds × repetitions)")
    handles = [Line2D([], [], color=colors[k], linewidth=2.5, label=CATEGORY_LABELS.get(k, k)) for k in categories]
    handles += [Line2D([], [], color="black", linestyle=COLUMN_STYLES[c][0], marker=COLUMN_STYLES[c][1],
                       label=COLUMN_LABELS[c]) for c in COLUMNS]
    fig.legend(handles=handles, loc="outside right center", fontsize=9, title="noise / training", title_fontsize=9)
    fig.suptitle("UAR against SNR per environmental noise category", fontsize=12)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_uar_per_condition(metrics: pd.DataFrame, config: dict, conditions, path, tested=None,
                           flagged: dict | None = None, model_labels: dict | None = None) -> None:
    """UAR per test condition of the clean and matched models, one panel per (model, task); flagged
    models are named in the panel titles as in :func:`plot_uar_vs_snr`."""
    infos = condition_infos(conditions)
    order = [CLEAN] + [c for c in infos if tested is None or c in set(tested)]
    models, tasks = _models_and_tasks(config, metrics)
    panels = [(m, t) for m in models for t in tasks]
    width = max(9.0, 0.42 * len(order) + 2)
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 3.6 * len(panels)), squeeze=False,
                             sharey=True, constrained_layout=True)
    x = np.arange(len(order))
    bar = 0.38
    for (model, task), ax in zip(panels, axes[:, 0]):
        any_bar = np.zeros(len(order), dtype=bool)
        for k, (regime, label, color) in enumerate(BAR_REGIMES):
            stats = [_stats(metrics, model, task, regime, c) for c in order]
            means = np.array([s[0] for s in stats])
            errs = np.array([s[1] for s in stats])
            ok = ~np.isnan(means)
            any_bar |= ok
            ax.bar(x[ok] + (k - 0.5) * bar, means[ok], bar, yerr=errs[ok], color=color, label=label,
                   capsize=1.5, error_kw={"linewidth": 0.8})
        for xi in np.flatnonzero(~any_bar):
            ax.text(xi, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="#555555")
        ax.axhline(CHANCE, color="black", linestyle=(0, (4, 3)), linewidth=0.9, label="chance (1/3)")
        ax.set_xticks(x, order, rotation=55, ha="right", fontsize=8)
        for tick, cid in zip(ax.get_xticklabels(), order):
            if cid in infos and infos[cid].perception == "altering":
                tick.set_color("#c62828")
        ax.set_xlim(-0.6, len(order) - 0.4)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylabel("UAR")
        ax.set_title(f"{model_label(model, model_labels)}: {task}  (red labels: perception-altering conditions)"
                     f"{panel_flag(flagged, model, task)}", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=9, ncols=3)
    fig.suptitle("UAR per test condition (mean ± sd over folds × repetitions)", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)
