"""Table 4 (the noise-robust arms, sernoise.evaluation.table4) from synthetic prediction files:
the paper layout with fixed NR-T-DNN / NR-E-DNN columns, Table 3's statistics, and Table 3
without the NR arms."""

from __future__ import annotations

import pandas as pd
import pytest

from fixtures.synthetic_predictions import (
    EXPECTED_ROWS, SKIPPED, SPEAKERS, synthetic_config, write_synthetic_predictions,
)
from sernoise.conditions import build_conditions
from sernoise.evaluation.labels import noise_robust_models
from sernoise.evaluation.metrics import compute_metrics, speaker_confusion
from sernoise.evaluation.render import EMPTY
from sernoise.evaluation.table3 import build_table3
from sernoise.evaluation.table4 import build_table4
from sernoise.evaluation.uar_table import write_uar_table


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("table4")
    config = synthetic_config()
    config["training"]["models"] = ["tdnn", "tdnn_nr"]
    conditions = build_conditions(config["conditions"])
    paths = write_synthetic_predictions(root, config, model="tdnn_nr")
    paths += write_synthetic_predictions(root, config, model="tdnn", regimes=["clean"], tested=["fade-in"])
    _, confusion = compute_metrics(paths)
    speakers = speaker_confusion(paths, SPEAKERS)
    table = build_table4(confusion, config, conditions.values(), skipped=SKIPPED, corpus="ravdess", speakers=speakers)
    return {"root": root, "config": config, "conditions": conditions, "confusion": confusion, "speakers": speakers,
            "table": table}


def test_columns_are_the_two_nr_arms_in_paper_order(setup):
    table = setup["table"]
    # the DFN3 arm is registered but has no predictions here: only the paper's two arms
    assert list(noise_robust_models()) == ["tdnn_nr", "tdnn_dfn3", "ednn_nr"]
    assert table.models == ["tdnn_nr", "ednn_nr"]
    assert [row.name for row in table.rows] == EXPECTED_ROWS
    assert len(table.cells) == len(EXPECTED_ROWS) * 2 * 3 * 2
    assert set(table.cells["model_label"]) == {"NR-T-DNN", "NR-E-DNN"}


def test_cells_and_statistics_equal_table3s_for_the_same_predictions(setup):
    table, confusion = setup["table"], setup["confusion"]
    # Table 3 built for the NR model alone (without its All noises** vs Perception-retaining comparisons, which
    # Table 4 does not make) gives the same cells and tests; only m (Bonferroni) is per table
    alone = build_table3(confusion, setup["config"], setup["conditions"].values(), skipped=SKIPPED,
                         models=["tdnn_nr"], speakers=setup["speakers"], all_vs_retaining=False)
    mine = table.cells[table.cells.model == "tdnn_nr"].reset_index(drop=True)
    for column in ("row_key", "column", "task", "mean", "std", "ci_low", "ci_high", "n_pairs", "n_speakers", "t", "p",
                   "difference", "comparison"):
        pd.testing.assert_series_equal(mine[column], alone.cells[column], check_names=False)
    assert table.m == alone.m  # NR-E-DNN has no predictions: no comparison
    worse = table.cell("env-nat-cont-snr0", "tdnn_nr", "clean", "activation")
    assert worse["significant"] and worse["value"].endswith("↓")
    better = table.cell("env-nat-cont-snr0", "tdnn_nr", "match", "valence")
    assert better["significant"] and better["value"].endswith("↑")


def test_a_model_without_predictions_keeps_empty_columns(setup):
    table = setup["table"]
    assert set(table.cells[table.cells.model == "ednn_nr"]["value"]) == {EMPTY}
    assert any(n.startswith("NR-E-DNN: no predictions yet") for n in table.notes)


def test_table3_of_the_workflow_leaves_the_nr_arms_out(setup):
    table3 = build_table3(setup["confusion"], setup["config"], setup["conditions"].values(), exclude=noise_robust_models(),
                          speakers=setup["speakers"])
    assert table3.models == ["tdnn"]


def test_renderings(setup, tmp_path):
    table = setup["table"]
    write_uar_table(table, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.tex", tmp_path / "t.html")
    md = (tmp_path / "t.md").read_text()
    assert md.startswith("Table 4: UAR on ravdess") and "RNNoise" in md and f"{table.m} comparisons in all" in md
    assert "Bonferroni families: one per model, task and question" in md
    # the family and the units are stated; Table 4 makes no All noises** vs Perception-retaining comparison
    assert f"{table.family['a']} × (a) each row vs No noise" in md and "(c)" not in md and table.family["c"] == 0
    assert "clustered by the 12 test speakers" in md and "paired at the utterance" in md
    assert "| NR-T-DNN |" in md and "| NR-E-DNN |" in md and "table3.csv" not in md
    tex = (tmp_path / "t.tex").read_text()
    assert r"\label{tab:table4}" in tex and r"\multicolumn{6}{c}{NR-T-DNN}" in tex and "% Table 4" in tex
    html = (tmp_path / "t.html").read_text()
    assert "<title>Table 4</title>" in html and "NR-E-DNN" in html
    assert len(pd.read_csv(tmp_path / "t.csv")) == len(table.cells)


def test_the_dfn3_arm_sits_beside_nr_t_dnn_when_it_has_predictions(setup, tmp_path):
    config = dict(setup["config"], training=dict(setup["config"]["training"], models=["tdnn_nr", "tdnn_dfn3"]))
    paths = write_synthetic_predictions(tmp_path / "nr", config, model="tdnn_nr")
    paths += write_synthetic_predictions(tmp_path / "dfn3", config, model="tdnn_dfn3")
    _, confusion = compute_metrics(paths)
    table = build_table4(confusion, config, setup["conditions"].values(), skipped=SKIPPED, corpus="ravdess",
                         speakers=speaker_confusion(paths, SPEAKERS))
    assert table.models == ["tdnn_nr", "tdnn_dfn3", "ednn_nr"]
    dfn3 = table.cells[table.cells.model == "tdnn_dfn3"]
    assert set(dfn3["model_label"]) == {"DFN3-T-DNN"} and len(dfn3) == len(EXPECTED_ROWS) * 3 * 2
    assert dfn3["value"].ne(EMPTY).any()  # cells of its own predictions, not the "–" of a missing arm
    # same rows and statistics as NR-T-DNN; Bonferroni over the comparisons of both arms
    nr = table.cells[table.cells.model == "tdnn_nr"]
    assert list(dfn3["row_key"]) == list(nr["row_key"]) and table.m == 2 * setup["table"].m
    assert "DeepFilterNet3" in table.caption_text
