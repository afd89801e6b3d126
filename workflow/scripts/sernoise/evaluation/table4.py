"""Table 4 (paper §8.4, Table 4; SPEC §8): UAR of the noise-robust (NR) arms.

The same rows, cells, statistics and writers as Table 3 (:mod:`sernoise.evaluation.uar_table`),
with the model columns of the noise-robust arms, in the registry's order:

* NR-T-DNN (``tdnn_nr``): the T-DNN trained, validated and tested on RNNoise-denoised audio
  (every clean and noisy utterance passed through RNNoise before features, paper §7.4.1);
* DFN3-T-DNN (``tdnn_dfn3``): the same T-DNN on DeepFilterNet3-denoised audio (beside NR-T-DNN:
  does a stronger denoiser help the T-DNN more?); shown when it has predictions;
* NR-E-DNN (``ednn_nr``): the end-to-end model on wav2vec2-large-robust (paper §7.4.2).

A paper arm without predictions keeps its columns, filled with "–" (Table 3 drops such models;
Table 4's layout); an arm beyond the paper's (DFN3-T-DNN, a plugin's) is shown only when it has
predictions.  Comparisons, as in Table 3: (a) Clean column, each row against No noise;
(b) Mismatch and Match columns, each row against the Clean column of the same row; the test of
config ``statistics`` (default: speaker-level paired bootstrap; ``fold_ttest``: the paper's t-test
over (fold, repetition) pairs), Bonferroni over all comparisons of THIS table.  Table 3's
comparison (c), All noises** vs Perception-retaining, is Table 3's only.
"""

from __future__ import annotations

from .labels import noise_robust_models
from .uar_table import UarTable, build_uar_table, uar_caption

TITLE = "Table 4"
CSV_NAME = "table4.csv"
PAPER_ARMS = ("tdnn_nr", "ednn_nr")  # always shown ("–" without predictions): the paper's fixed layout
ARMS = ("NR-T-DNN: the T-DNN trained, validated and tested on RNNoise-denoised audio (all audio, clean and noisy, "
        "denoised before features); NR-E-DNN: the end-to-end model on wav2vec2-large-robust")
EXTRA_ARMS = {"tdnn_dfn3": "DFN3-T-DNN: the same T-DNN on audio denoised with DeepFilterNet3 instead of RNNoise"}


def build_table4(confusion, config: dict, conditions, *, models=None, **options) -> UarTable:
    """Table 4 from confusion counts (every model's; only ``models`` are read) and the configuration;
    ``options`` are :func:`sernoise.evaluation.uar_table.build_uar_table`'s.  ``models``: default the
    registry's noise-robust arms: the paper's (tdnn_nr, ednn_nr) always, the others (tdnn_dfn3) when
    ``confusion`` has their predictions."""
    present = set(confusion["model"].unique()) if len(confusion) else set()
    if models is None:
        models = [m for m in noise_robust_models() if m in PAPER_ARMS or m in present]
    table = build_uar_table(confusion, config, conditions, title=TITLE, csv_name=CSV_NAME, models=list(models),
                            **options)
    for model in table.models:
        if model not in present:
            table.notes.append(f"{table.label(model)}: no predictions yet (training.models does not include "
                               f"{model!r}, or it has not been trained); its columns are –.")
    table.caption_text = caption(table)
    return table


def caption(table: UarTable) -> str:
    """The UAR-table caption (:func:`sernoise.evaluation.uar_table.uar_caption`) for the NR arms, without its asides."""
    arms = "; ".join([ARMS] + [text for model, text in EXTRA_ARMS.items() if model in table.models])
    return uar_caption(table, f"the noise-robust (NR) arms. {arms}", asides=False)
