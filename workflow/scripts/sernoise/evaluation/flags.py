"""Marking results that rest on models the degenerate-model check flagged (Tables 3, 4 and 5).

The check (:mod:`sernoise.training.degenerate`) runs after every training and records its verdict in
the model's ``hparams.yaml``; :func:`sernoise.evaluation.metrics.degenerate_flags` collects them.  A
table cell averages over (fold, repetition) pairs, each from one trained model per source regime:
when any of those models is flagged, the cell's value gets :data:`FLAG_MARK`, its note names the
models and why, and the table's notes say what the mark means.
"""

from __future__ import annotations

import pandas as pd

FLAG_MARK = "†"


def flagged_note(flagged: dict, model: str, task: str, regimes, pairs) -> str:
    """The note of a cell of ``model`` / ``task`` pooling the (fold, rep) ``pairs`` of ``regimes`` that
    rests on flagged models: which (regime, fold, rep) and why; "" when none."""
    if not flagged:
        return ""
    found = [f"{regime} fold {fold} rep {rep} ({flagged[(model, regime, int(fold), int(rep), task)]})"
             for regime in dict.fromkeys(regimes) for fold, rep in pairs
             if (model, regime, int(fold), int(rep), task) in flagged]
    return f"rests on model(s) flagged as degenerate: {'; '.join(found)}" if found else ""


def mark_flagged(cells: pd.DataFrame, flag_notes: list[str], notes: list[str], csv_name: str) -> None:
    """Mark the cells with a flag note (value + FLAG_MARK, note extended) and add the table note (in place)."""
    marked = [bool(n) for n in flag_notes]
    if not any(marked):
        return
    cells["value"] = [v + FLAG_MARK if m else v for v, m in zip(cells["value"], marked)]
    cells["note"] = ["; ".join(x for x in (old, new) if x) for old, new in zip(cells["note"], flag_notes)]
    models = sorted({m for m, flag in zip(cells["model"], marked) if flag})
    notes.append(f"{FLAG_MARK}: {sum(marked)} cell(s) rest on models that the degenerate-model check flagged "
                 f"(validation predictions in one class, or validation UAR not above chance; models: "
                 f"{', '.join(models)}); their numbers say little about the noise. Which models and why: the "
                 f"note column of {csv_name} and the models' hparams.yaml.")


def panel_flag(flagged: dict | None, model: str, task: str) -> str:
    """A plot panel's mark: " † flagged: <regime> (<k> of its models)…" when any model of ``model`` /
    ``task`` was flagged (the panel's points include its predictions), else ""."""
    counts: dict[str, int] = {}
    for m, regime, _fold, _rep, t in (flagged or {}):
        if m == model and t == task:
            counts[regime] = counts.get(regime, 0) + 1
    if not counts:
        return ""
    return f" {FLAG_MARK} degenerate: " + ", ".join(f"{r} ({n})" for r, n in sorted(counts.items()))
