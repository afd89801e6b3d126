"""Latif et al.'s tables (1: clean UAR, 2: UAR in noise per SNR, 3: UAR under FGSM/BIM) and the
cross-corpus table behind Figure 2, from the runs' predictions files (rule latif_tables,
latif_cross_corpus).

A run's UAR is computed over its test utterances (one test speaker per leave-one-speaker-out fold);
a cell's value is the mean over its (fold, repetition) runs.  Its ± is the standard deviation over
repetitions of the fold-averaged UAR, as the paper's mean ± std over 10 repetitions; with one
repetition it is the standard deviation over folds (said in the notes).  Each baseline is compared
with the proposed model in the same augmentation and column by a paired t-test over the
(fold, repetition) pairs both have (:func:`sernoise.evaluation.stats.paired_ttest`), Bonferroni over
every comparison of the table; ↑/↓ mark a baseline significantly above/below the proposed model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sernoise.evaluation.metrics import confusion, uar_from_confusion
from sernoise.evaluation.render import EMPTY, MARKS, latex_close, latex_open, markdown_notes, tex_escape
from sernoise.evaluation.stats import bonferroni, direction, paired_ttest
from sernoise.latif.plan import AUGMENTATION_LABELS

PROPOSED = "proposed"
PREDICTION_COLUMNS = ("utt_id", "speaker", "test_set", "label", "prediction", "model", "augmentation", "fold", "rep")
ATTACK_LABELS = {"fgsm": "FGSM", "bim": "BIM"}


class LatifTableError(ValueError):
    """Predictions that cannot make the tables (the message names the file)."""


def read_predictions(paths) -> pd.DataFrame:
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"utt_id": str, "speaker": str, "label": str, "prediction": str})
        missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
        if missing:
            raise LatifTableError(f"{path}: missing columns {missing}")
        if frame.empty:
            raise LatifTableError(f"{path}: no predictions")
        frames.append(frame)
    if not frames:
        raise LatifTableError("no predictions files")
    return pd.concat(frames, ignore_index=True)


def run_uars(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, augmentation, fold, rep, test_set): the run's UAR over its test utterances."""
    labels = tuple(sorted(set(predictions["label"]) | set(predictions["prediction"])))
    rows = []
    keys = ["model", "augmentation", "fold", "rep", "test_set"]
    for key, group in predictions.groupby(keys, sort=False):
        rows.append({**dict(zip(keys, key)), "n": len(group),
                     "uar": uar_from_confusion(confusion(group["label"], group["prediction"], labels))})
    return pd.DataFrame(rows, columns=[*keys, "n", "uar"])


def _spread(runs: pd.DataFrame) -> tuple[float, str]:
    """The cell's ± (std over repetitions of the fold-mean UAR; over folds with one repetition)."""
    per_rep = runs.groupby("rep")["uar"].mean()
    if len(per_rep) >= 2:
        return float(per_rep.std(ddof=1)), "repetitions"
    if len(runs) >= 2:
        return float(runs["uar"].std(ddof=1)), "folds"
    return math.nan, ""


def cells(uars: pd.DataFrame, columns: list[tuple[str, str]], models: list[str], augmentations: list[str],
          table: str) -> pd.DataFrame:
    """The cells of one table: ``columns`` are (test_set, column label) pairs."""
    rows = []
    for augmentation in augmentations:
        for model in models:
            for test_set, label in columns:
                runs = uars[(uars["model"] == model) & (uars["augmentation"] == augmentation)
                            & (uars["test_set"] == test_set)]
                std, over = _spread(runs)
                rows.append({"table": table, "augmentation": augmentation, "model": model, "test_set": test_set,
                             "column": label, "mean": float(runs["uar"].mean()) if len(runs) else math.nan,
                             "std": std, "std_over": over, "n_runs": len(runs)})
    frame = pd.DataFrame(rows)
    return _compare_with_proposed(frame, uars)


def _compare_with_proposed(frame: pd.DataFrame, uars: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(vs="", p=math.nan, n_pairs=0)
    if PROPOSED not in set(frame["model"]):
        return frame.assign(p_adjusted=math.nan, significant=False, direction="")

    def series(model, augmentation, test_set):
        runs = uars[(uars["model"] == model) & (uars["augmentation"] == augmentation) & (uars["test_set"] == test_set)]
        return runs.set_index(["fold", "rep"])["uar"]

    for i, row in frame.iterrows():
        if row["model"] == PROPOSED:
            continue
        result = paired_ttest(series(row["model"], row["augmentation"], row["test_set"]),
                              series(PROPOSED, row["augmentation"], row["test_set"]))
        frame.loc[i, ["vs", "p", "n_pairs"]] = [PROPOSED, result.p, result.n_pairs]
    adjusted, significant, _ = bonferroni(frame["p"].to_numpy())
    frame["p_adjusted"], frame["significant"] = adjusted, significant
    proposed_mean = {(r.augmentation, r.test_set): r.mean for r in frame.itertuples() if r.model == PROPOSED}
    frame["direction"] = [direction(r.mean, proposed_mean.get((r.augmentation, r.test_set), math.nan))
                          if r.model != PROPOSED else "" for r in frame.itertuples()]
    return frame


def cell_text(row) -> str:
    if not isinstance(row["mean"], float) or math.isnan(row["mean"]):
        return EMPTY
    text = f"{100 * row['mean']:.1f}"
    if not math.isnan(row["std"]):
        text += f" ± {100 * row['std']:.1f}"
    if row.get("significant"):
        text += MARKS.get(row["direction"], "")
    return text


def layout(frame: pd.DataFrame, model_labels: dict, *, by_augmentation: bool) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the rendered table: one row per (augmentation, model) or per model with a column
    per augmentation (Table 1 and the cross-corpus table)."""
    if by_augmentation:
        columns = list(dict.fromkeys(frame["column"]))
        header = ["Training", "Model", *columns]
        rows = []
        for (augmentation, model), group in frame.groupby(["augmentation", "model"], sort=False):
            texts = {r["column"]: cell_text(r) for _, r in group.iterrows()}
            rows.append([AUGMENTATION_LABELS[augmentation], model_labels.get(model, model),
                         *[texts.get(c, EMPTY) for c in columns]])
        return header, rows
    augmentations = list(dict.fromkeys(frame["augmentation"]))
    header = ["Model", *[AUGMENTATION_LABELS[a] for a in augmentations]]
    rows = []
    for model, group in frame.groupby("model", sort=False):
        texts = {r["augmentation"]: cell_text(r) for _, r in group.iterrows()}
        rows.append([model_labels.get(model, model), *[texts.get(a, EMPTY) for a in augmentations]])
    return header, rows


def render_markdown(title: str, caption: str, header, rows, notes) -> str:
    lines = [f"## {title}", "", caption, "", "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines + markdown_notes(notes)) + "\n"


def render_latex(title: str, caption: str, header, rows, notes) -> str:
    labels = 2 if header[0] == "Training" else 1  # the row-label columns
    lines = latex_open(title, caption, "l" * labels + "r" * (len(header) - labels))
    lines.append(" & ".join(tex_escape(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(tex_escape(c) for c in row) + r" \\" for row in rows]
    return "\n".join(lines + latex_close(notes)) + "\n"


def spread_note(frame: pd.DataFrame) -> str:
    over = {o for o in frame["std_over"] if o}
    if not over:
        return "No ± : one run per cell."
    if over == {"folds"}:
        return "± : standard deviation over folds (one repetition)."
    return "± : standard deviation over repetitions of the fold-averaged UAR."


def test_note(frame: pd.DataFrame) -> str:
    m = int(np.isfinite(frame["p"].to_numpy(dtype=float)).sum())
    if m == 0:
        return ("No paired test against the proposed model: a comparison needs two or more (fold, repetition) "
                "pairs with different UAR differences.")
    return (f"↑/↓: a baseline significantly above/below the proposed model in the same training setting and column "
            f"(paired t-test over (fold, repetition) pairs, Bonferroni over the table's {m} tests, adjusted p ≤ 0.05).")


def write_table(frame: pd.DataFrame, paths: dict, title: str, caption: str, notes: list[str], model_labels: dict,
                *, by_augmentation: bool) -> None:
    header, rows = layout(frame, model_labels, by_augmentation=by_augmentation)
    notes = [*notes, spread_note(frame), test_note(frame)]
    frame.to_csv(paths["csv"], index=False, lineterminator="\n", float_format="%.6f")
    with open(paths["md"], "w", encoding="utf-8") as handle:
        handle.write(render_markdown(title, caption, header, rows, notes))
    with open(paths["tex"], "w", encoding="utf-8") as handle:
        handle.write(render_latex(title, caption, header, rows, notes))
