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

from .table3 import NR_MODELS, Table3, build_table3, uar_caption, write_table3

TITLE = "Table 4"
ARMS = ("NR-T-DNN: the T-DNN trained, validated and tested on RNNoise-denoised audio (all audio, clean and noisy, "
        "denoised before features); NR-E-DNN: the end-to-end model on wav2vec2-large-robust")


def build_table4(confusion, config: dict, conditions, *, tested=None, skipped=None, corpus: str = "",
                 regimes=None, models=NR_MODELS, model_labels=None, model_notes=None, model_regimes=None) -> Table3:
    """Table 4 from confusion counts (every model's; only ``models`` are read) and the configuration;
    the arguments are :func:`sernoise.evaluation.table3.build_table3`'s."""
    table = build_table3(confusion, config, conditions, tested=tested, skipped=skipped, corpus=corpus,
                         regimes=regimes, models=list(models), model_labels=model_labels, model_notes=model_notes,
                         model_regimes=model_regimes)
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
    """Table 3's caption (:func:`sernoise.evaluation.table3.uar_caption`) for the NR arms, without its asides."""
    return uar_caption(table, f"the noise-robust (NR) arms. {ARMS}", asides=False)


def write_table4(table: Table3, csv=None, markdown=None, latex=None, html_path=None) -> None:
    write_table3(table, csv=csv, markdown=markdown, latex=latex, html_path=html_path)
