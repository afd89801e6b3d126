"""How much each test condition costs a model trained on clean speech, against how much it
degrades the signal: UAR drop against the condition's median STOI, PESQ, DNSMOS OVRL and fwSNRseg.

* :func:`condition_quality`: the median of each quality column over the ``ok`` utterances of each
  condition's test-pool ``params.csv`` (columns a run did not measure are absent or empty: NaN).
* :func:`uar_drops`: per (model, task, condition), the drop ``UAR(clean test speech) − UAR(condition)``
  of the models trained in the ``clean`` regime, paired per (fold, repetition) and averaged over the
  pairs (its sd too), read from ``metrics.csv``.
* :func:`quality_vs_uar`: both joined, one row per (model, task, condition): the CSV beside the plot.
* :func:`plot_quality_vs_uar`: one panel per (model, task) row and quality measure column, one
  labelled point per condition (perception-altering ones red); a measure without values (e.g. PESQ
  switched off) gets a panel that says so.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sernoise.augmented_io import load_params  # noqa: E402
from sernoise.predictions import CLEAN  # noqa: E402

from .labels import model_label  # noqa: E402
from .uar_table import ordered_names  # noqa: E402

# quality column of params.csv -> (name, axis label, the augment.quality key that switches it on)
MEASURES = {
    "stoi": ("STOI", "median STOI", "stoi"),
    "pesq": ("PESQ", "median PESQ (wide band, MOS-LQO)", "pesq"),
    "dnsmos_ovrl": ("DNSMOS", "median DNSMOS OVRL (P.835)", "dnsmos"),
    "fwsnrseg": ("fwSNRseg", "median fwSNRseg (dB)", "fwsnrseg"),
}
EXTRA_COLUMNS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_p808")  # in the CSV, not plotted
REGIME = "clean"
CSV_COLUMNS = ["model", "task", "condition", "perception", "n_utterances",
               *(f"median_{c}" for c in (*MEASURES, *EXTRA_COLUMNS)),
               "uar_clean", "uar_condition", "uar_drop", "uar_drop_sd", "n_runs"]


def condition_quality(params_paths: dict) -> pd.DataFrame:
    """condition -> medians of the quality columns over its ok utterances (``params_paths``:
    condition -> test-pool params.csv); one row per condition, NaN where a column is absent or empty."""
    rows = []
    for condition, path in params_paths.items():
        params = load_params(path)
        ok = params[params["status"] == "ok"]
        row = {"condition": condition, "n_utterances": int(len(ok)),
               "perception": str(ok["perception"].iloc[0]) if len(ok) and "perception" in ok else ""}
        for column in (*MEASURES, *EXTRA_COLUMNS):
            values = pd.to_numeric(ok[column], errors="coerce").dropna() if column in ok else pd.Series(dtype=float)
            row[f"median_{column}"] = float(values.median()) if len(values) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["condition", "n_utterances", "perception",
                                       *(f"median_{c}" for c in (*MEASURES, *EXTRA_COLUMNS))])


def uar_drops(metrics: pd.DataFrame, regime: str = REGIME) -> pd.DataFrame:
    """(model, task, condition) -> mean UAR on clean test speech, on the condition, and the drop
    (clean − condition) averaged over the (fold, repetition) runs that have both, with its sd."""
    m = metrics[metrics["regime"] == regime]
    keys = ["model", "task", "fold", "rep"]
    clean = m[m["condition"] == CLEAN][keys + ["uar"]].rename(columns={"uar": "uar_clean"})
    noisy = m[m["condition"] != CLEAN][keys + ["condition", "uar"]].rename(columns={"uar": "uar_condition"})
    paired = noisy.merge(clean, on=keys, how="inner").dropna(subset=["uar_clean", "uar_condition"])
    paired["uar_drop"] = paired["uar_clean"] - paired["uar_condition"]
    columns = ["model", "task", "condition", "uar_clean", "uar_condition", "uar_drop", "uar_drop_sd", "n_runs"]
    if paired.empty:
        return pd.DataFrame(columns=columns)
    grouped = paired.groupby(["model", "task", "condition"], sort=False)
    out = grouped[["uar_clean", "uar_condition", "uar_drop"]].mean()
    out["uar_drop_sd"] = grouped["uar_drop"].std(ddof=1).fillna(0.0)
    out["n_runs"] = grouped.size()
    return out.reset_index()[columns]


def quality_vs_uar(metrics: pd.DataFrame, params_paths: dict, models=None, tasks=None) -> pd.DataFrame:
    """One row per (model, task, tested condition): the condition's median quality and the clean-trained
    model's UAR drop (NaN where there is none, e.g. a condition skipped on this corpus); models and
    tasks in the given order (default: as in ``metrics``), conditions in ``params_paths`` order."""
    quality = condition_quality(params_paths)
    drops = uar_drops(metrics)
    present = metrics[metrics["regime"] == REGIME]
    models = [m for m in ordered_names(models, present["model"].unique()) if m in set(present["model"])]
    tasks = [t for t in ordered_names(tasks, present["task"].unique()) if t in set(present["task"])]
    grid = pd.DataFrame([(m, t, c) for m in models for t in tasks for c in quality["condition"]],
                        columns=["model", "task", "condition"])
    table = grid.merge(quality, on="condition", how="left").merge(drops, on=["model", "task", "condition"], how="left")
    table["n_runs"] = table["n_runs"].fillna(0).astype(int)
    return table[CSV_COLUMNS]


def plot_quality_vs_uar(table: pd.DataFrame, path, *, labels: dict | None = None,
                        missing_reason: dict | None = None) -> None:
    """UAR drop against each measure's median, one panel per (model, task) and measure; ``labels``: model
    label overrides (evaluation settings' ``model_labels``); ``missing_reason``: measure -> why it has no
    values (shown in its panels; default: switched off or not measured)."""
    panels = list(dict.fromkeys(zip(table["model"], table["task"]))) or [("(none)", "(none)")]
    fig, axes = plt.subplots(len(panels), len(MEASURES), figsize=(4.4 * len(MEASURES), 3.8 * len(panels)),
                             squeeze=False, sharey="row", constrained_layout=True)
    for i, (model, task) in enumerate(panels):
        rows = table[(table["model"] == model) & (table["task"] == task)]
        for j, (measure, (name, axis_label, key)) in enumerate(MEASURES.items()):
            ax = axes[i][j]
            ax.set_title(f"{model_label(model, labels) if model != '(none)' else model}: {task}", fontsize=10)
            ax.set_xlabel(axis_label)
            if j == 0:
                ax.set_ylabel("UAR drop (clean test − condition)\nmodel trained on clean speech")
            ax.axhline(0, color="black", linewidth=0.8)
            ax.grid(alpha=0.3)
            x = rows[f"median_{measure}"].to_numpy(dtype=float)
            y = rows["uar_drop"].to_numpy(dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                reason = (missing_reason or {}).get(measure) or (
                    f"{name} not measured\n(augment.quality.{key} off,\nor test pool not in augment.quality.pools)"
                    if not np.isfinite(x).any() else "no UAR drop for any\nmeasured condition")
                ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", fontsize=9,
                        color="#555555")
                ax.set_xticks([])
                continue
            altering = (rows["perception"] == "altering").to_numpy()
            ax.errorbar(x[ok], y[ok], yerr=rows["uar_drop_sd"].to_numpy(dtype=float)[ok], fmt="none",
                        ecolor="#9e9e9e", elinewidth=0.8, capsize=1.5)
            for sel, color in ((ok & ~altering, "#1565c0"), (ok & altering, "#c62828")):
                ax.scatter(x[sel], y[sel], s=22, color=color, zorder=3)
            for xi, yi, label, alt in zip(x[ok], y[ok], rows["condition"].to_numpy()[ok], altering[ok]):
                ax.annotate(label, (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=6.5,
                            color="#c62828" if alt else "#333333")
            if len(x[ok]) > 2 and np.ptp(x[ok]) > 0:
                r = float(np.corrcoef(x[ok], y[ok])[0, 1])
                ax.text(0.98, 0.97, f"r = {r:+.2f} (n = {int(ok.sum())})", transform=ax.transAxes, ha="right",
                        va="top", fontsize=8)
    fig.suptitle("UAR drop of the clean-trained model against the median quality of each test condition "
                 "(mean ± sd over folds × repetitions; red: perception-altering)", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
