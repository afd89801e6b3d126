"""Table 4 (paper §8.4, Table 4; SPEC §8): UAR of the noise-robust (NR) arms.

The same rows, cells, statistics and writers as Table 3 (:mod:`sernoise.evaluation.table3`),
with the model columns fixed to the two noise-robust arms of the paper, in its order:

* NR-T-DNN (``tdnn_nr``): the T-DNN trained, validated and tested on RNNoise-denoised audio
  (every clean and noisy utterance passed through RNNoise before features, paper §7.4.1);
* NR-E-DNN (``ednn_nr``): the end-to-end model on wav2vec2-large-robust (paper §7.4.2).

A model without predictions keeps its columns, filled with "–" (Table 3 drops such models;
Table 4 has the paper's fixed layout).  Comparisons, as in Table 3: (a) Clean column, each row
against No noise; (b) Mismatch and Match columns, each row against the Clean column of the same
row; paired t-tests over (fold, repetition) pairs, Bonferroni over all comparisons of THIS table.
"""

from __future__ import annotations

from .stats import ALPHA
from .table3 import NR_MODELS, Table3, build_table3, task_label, write_table3

TITLE = "Table 4"


def build_table4(confusion, config: dict, conditions, *, tested=None, skipped=None, corpus: str = "",
                 regimes=None, models=NR_MODELS, model_labels=None, model_notes=None) -> Table3:
    """Table 4 from confusion counts (every model's; only ``models`` are read) and the configuration;
    the arguments are :func:`sernoise.evaluation.table3.build_table3`'s."""
    table = build_table3(confusion, config, conditions, tested=tested, skipped=skipped, corpus=corpus,
                         regimes=regimes, models=list(models), model_labels=model_labels, model_notes=model_notes)
    table.title = TITLE
    table.notes = [n.replace("table3.csv", "table4.csv") for n in table.notes]
    present = set(confusion["model"].unique()) if len(confusion) else set()
    for model in table.models:
        if model not in present:
            table.notes.append(f"{table.label(model)}: no predictions yet (training.models does not include "
                               f"{model!r}, or it has not been trained); its columns are –.")
    table.caption_text = caption(table)
    return table


def caption(table: Table3) -> str:
    tasks = ", ".join(f"{task_label(t)}: {t}" for t in table.tasks)
    corpus = f" on {table.corpus}" if table.corpus else ""
    return (
        f"Table 4: UAR{corpus} (mean over folds × repetitions) of the noise-robust (NR) arms. "
        "NR-T-DNN: the T-DNN trained, validated and tested on RNNoise-denoised audio (all audio, clean and "
        "noisy, denoised before features); NR-E-DNN: the end-to-end model on wav2vec2-large-robust. "
        "No noise: clean test speech. All noises**: every test condition, perception-altering ones included "
        "(uncertain ground truth). Perception-retaining: the perception-retaining conditions pooled; "
        "the environmental and signal distortion rows show perception-retaining conditions only. "
        "Clean: trained on clean speech; Clean+Noise Mismatch: trained with noise, tested on the noise type "
        "held out of training; Clean+Noise Match: trained with every perception-retaining noise type "
        "(All noises**: with every noise). Aggregate rows pool the predictions of their conditions, each from "
        f"its own source model. {tasks}. Chance UAR is 0.33. "
        "Significance: paired t-test over (fold, repetition) pairs, Bonferroni correction over the "
        f"m = {table.m} comparisons of this table, significant when adjusted p ≤ {ALPHA:g}. "
        "Comparisons: (a) Clean column: each row vs No noise; (b) Mismatch and Match columns: each row vs the "
        "Clean column of the same row. ↑/↓: significantly higher/lower than that reference. –: no model for "
        "this cell or no predictions."
        + "".join(f" {note}" for note in table.model_notes)
    )


def write_table4(table: Table3, csv=None, markdown=None, latex=None, html_path=None) -> None:
    write_table3(table, csv=csv, markdown=markdown, latex=latex, html_path=html_path)
