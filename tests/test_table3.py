"""Table 3 and the plots from synthetic prediction files (sernoise.evaluation.table3, .uar_table, .plots).

The synthetic predictions (tests/fixtures/synthetic_predictions.py) are built so that the outcome
is known: the clean model is clearly worse on env-nat-cont-snr0 (↓ in the Clean column) while the
matched model is good there (↑ against the Clean column).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import balanced_accuracy_score

from fixtures.synthetic_predictions import (
    EXPECTED_ROWS, FOLDS, N_SPEAKERS, REPS, SKIPPED, SPEAKERS, synthetic_config, write_synthetic_predictions,
)
from sernoise.conditions import build_conditions
from sernoise.evaluation.metrics import compute_metrics, speaker_confusion
from sernoise.evaluation.plots import plot_uar_per_condition, plot_uar_vs_snr
from sernoise.evaluation.render import EMPTY
from sernoise.evaluation.table3 import build_table3
from sernoise.evaluation.uar_table import (
    ConditionInfo,
    skipped_from_statuses,
    table_rows,
    to_html,
    to_latex,
    to_markdown,
    write_uar_table,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("table3")
    config = synthetic_config()
    conditions = build_conditions(config["conditions"])
    paths = write_synthetic_predictions(root, config)
    predictions = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    metrics, confusion = compute_metrics(paths)
    speakers = speaker_confusion(paths, SPEAKERS)
    table = build_table3(confusion, config, conditions.values(), skipped=SKIPPED, corpus="ravdess", speakers=speakers)
    return {"root": root, "config": config, "conditions": conditions, "paths": paths, "predictions": predictions,
            "metrics": metrics, "confusion": confusion, "speakers": speakers, "table": table}


def expected_cell(predictions, sources, task) -> tuple[float, int]:
    """Mean over (fold, rep) of sklearn's balanced accuracy on the pooled rows of the sources."""
    values = []
    for fold in FOLDS:
        for rep in REPS:
            parts = [predictions[(predictions.regime == regime) & (predictions.condition == condition)
                                 & (predictions.fold == fold) & (predictions.rep == rep) & (predictions.task == task)]
                     for condition, regime in sources]
            pooled = pd.concat(parts)
            values.append(balanced_accuracy_score(pooled["true"], pooled["predicted"]))
    return float(np.mean(values)), len(values)


def test_rows_in_paper_order(setup):
    assert [row.name for row in setup["table"].rows] == EXPECTED_ROWS
    table = setup["table"]
    assert list(table.cells.drop_duplicates("row_order")["row"]) == EXPECTED_ROWS
    all_row = table.rows[1]
    assert set(all_row.conditions) == set(setup["conditions"])
    retaining = {c for c, cond in setup["conditions"].items() if cond.perception == "retaining"}
    assert set(table.rows[2].conditions) == retaining


def test_rows_follow_config_snr_and_distortions():
    conditions = [
        ConditionInfo("b-hum-0", "environmental", "retaining", "hum", "cont", 0),
        ConditionInfo("b-hum-15", "environmental", "retaining", "hum", "cont", 15),
        ConditionInfo("b-nat-5", "environmental", "retaining", "nat", "cont", 5),
        ConditionInfo("b-nat-start", "environmental", "retaining", "nat", "start", 10),
        ConditionInfo("b-nat-loud", "environmental", "altering", "nat", "cont", -5),
        ConditionInfo("reverb", "distortion", "retaining"),
        ConditionInfo("pitch-up", "distortion", "altering"),
        ConditionInfo("my-dist", "distortion", "retaining"),
    ]
    names = [row.name for row in table_rows(conditions)]
    assert names == ["No noise", "All noises**", "Perception-retaining", "Nature: At start", "Nature: Cont. 5 dB",
                     "Human: Cont. 15 dB", "Human: Cont. 0 dB", "Reverb", "my-dist"]


def test_cells_equal_hand_computed_means(setup):
    table, predictions = setup["table"], setup["predictions"]
    for task in ("activation", "valence"):
        mean, n = expected_cell(predictions, [("clean", "clean")], task)
        cell = table.cell("clean", "tdnn", "clean", task)
        assert cell["mean"] == pytest.approx(mean, abs=1e-12) and cell["n_pairs"] == n == 6
        for column, regime in (("clean", "clean"), ("mismatch", "mismatched-nat"), ("match", "matched")):
            mean, _ = expected_cell(predictions, [("env-nat-cont-snr0", regime)], task)
            assert table.cell("env-nat-cont-snr0", "tdnn", column, task)["mean"] == pytest.approx(mean, abs=1e-12)
        mean, _ = expected_cell(predictions, [("reverb", "mismatched-reverb")], task)
        assert table.cell("reverb", "tdnn", "mismatch", task)["mean"] == pytest.approx(mean, abs=1e-12)


def test_aggregate_rows_pool_each_condition_from_its_source(setup):
    table, predictions, config = setup["table"], setup["predictions"], setup["config"]
    conditions = setup["conditions"]
    types = {c: t for t, members in config["noise_types"].items() for c in members}
    tested = [c for c in conditions if c not in SKIPPED]
    retaining = [c for c in tested if conditions[c].perception == "retaining"]
    # Perception-retaining, Mismatch: each typed condition from mismatched-<type>; the untyped
    # retaining drop-word has no source (drop-letters is skipped).
    sources = [(c, f"mismatched-{types[c]}") for c in retaining if c in types]
    mean, _ = expected_cell(predictions, sources, "valence")
    cell = table.cell("RETAINING", "tdnn", "mismatch", "valence")
    assert cell["mean"] == pytest.approx(mean, abs=1e-12)
    # the pooled UAR is not the mean of the per-condition UARs
    per_condition = np.mean([expected_cell(predictions, [s], "valence")[0] for s in sources])
    assert cell["mean"] != pytest.approx(per_condition, abs=1e-9)
    # All noises**, Mismatch: typed -> mismatched-<type>, never-seen (altering) -> matched
    altering = [c for c in tested if conditions[c].perception == "altering"]
    mean, _ = expected_cell(predictions, sources + [(c, "matched") for c in altering], "activation")
    assert table.cell("ALL", "tdnn", "mismatch", "activation")["mean"] == pytest.approx(mean, abs=1e-12)
    # All noises**, Match: the dedicated `all` model on every condition
    mean, _ = expected_cell(predictions, [(c, "all") for c in tested], "activation")
    assert table.cell("ALL", "tdnn", "match", "activation")["mean"] == pytest.approx(mean, abs=1e-12)
    assert table.cell("ALL", "tdnn", "match", "activation")["sources"] == "all"
    mean, _ = expected_cell(predictions, [(c, "clean") for c in tested], "activation")
    assert table.cell("ALL", "tdnn", "clean", "activation")["mean"] == pytest.approx(mean, abs=1e-12)


def test_empty_cells_and_skip_notes(setup):
    table = setup["table"]
    for task in ("activation", "valence"):
        for column in ("mismatch", "match"):
            assert table.cell("clean", "tdnn", column, task)["value"] == EMPTY
        # drop-word: retaining but of no noise type, so no model held it out: no Mismatch source
        assert table.cell("drop-word", "tdnn", "mismatch", task)["value"] == EMPTY
        assert table.cell("drop-word", "tdnn", "match", task)["value"] != EMPTY
        # drop-letters: skipped on this corpus, no predictions at all
        for column in ("clean", "mismatch", "match"):
            assert table.cell("drop-letters", "tdnn", column, task)["value"] == EMPTY
    assert any("drop-letters" in n and "skipped" in n and "phone alignments" in n for n in table.notes)
    assert "All noises** / Clean+Noise Mismatch: pooled without drop-word (no model held them out of training: " \
        "no mismatched source)." in table.notes
    assert not any(n.startswith("All noises** / Clean+Noise Match") for n in table.notes)


def test_significance_marks(setup):
    table = setup["table"]
    cells = table.cells
    tested = cells[cells["p"].notna()]
    rq3 = cells[cells["vs_retaining_p"].notna()]
    # (a) and (b) on every cell, (c) All noises** vs Perception-retaining per column; Bonferroni within
    # each (model, task, kind) family by default
    assert table.m == len(tested) + len(rq3) > 100 and len(rq3) == 3 * 2
    assert table.family == {"a": int((tested["column"] == "clean").sum()), "b": int((tested["column"] != "clean").sum()),
                            "c": 6}
    expected_family = [f"{r.model}/{r.task}/{'a' if r.column == 'clean' else 'b'}" for r in tested.itertuples()]
    assert list(tested["family"]) == expected_family
    sizes = tested.groupby("family")["p"].transform("size")
    assert (tested["family_size"] == sizes).all() and sizes.min() > 5
    assert np.allclose(tested["p_adjusted"], np.minimum(1, tested["p"] * sizes))
    assert set(rq3["vs_retaining_family"]) == {f"tdnn/{t}/c" for t in ("activation", "valence")}
    assert (rq3["vs_retaining_family_size"] == 3).all()
    assert np.allclose(rq3["vs_retaining_p_adjusted"], np.minimum(1, rq3["vs_retaining_p"] * 3))
    assert (cells.loc[cells["p"].isna(), "family"] == "").all()
    assert set(cells.loc[cells["comparison"] != "", "test"]) == {"speaker_jackknife"}
    for task in ("activation", "valence"):
        worse = table.cell("env-nat-cont-snr0", "tdnn", "clean", task)
        assert worse["significant"] and worse["direction"] == "down" and worse["value"].endswith("↓")
        assert worse["comparison"] == "vs No noise, Clean column"
        better = table.cell("env-nat-cont-snr0", "tdnn", "match", task)
        assert better["significant"] and better["direction"] == "up" and better["value"].endswith("↑")
        assert better["comparison"] == "vs Clean column, same row"
        assert better["reference_mean"] == pytest.approx(worse["mean"])
        control = table.cell("reverb", "tdnn", "clean", task)
        assert not control["significant"] and control["value"][-1].isdigit()
    assert not table.cell("clean", "tdnn", "clean", "activation")["comparison"]


def test_renderings(setup, tmp_path):
    table = setup["table"]
    write_uar_table(table, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.tex", tmp_path / "t.html")
    back = pd.read_csv(tmp_path / "t.csv")
    assert len(back) == len(EXPECTED_ROWS) * 3 * 2
    assert {"mean", "std", "n_pairs", "p", "p_adjusted", "significant", "comparison"} <= set(back.columns)
    md = (tmp_path / "t.md").read_text()
    assert "m = " in md and "vs No noise" in md and "| T-DNN |" in md and "Clean+Noise" in md
    body = [line for line in md.splitlines() if line.startswith("| ")]
    labels = [line.split("|")[1].strip() for line in body]
    assert labels.index("No noise") < labels.index("All noises**") < labels.index("Perception-retaining") \
        < labels.index("Nature") < labels.index("Interior") < labels.index("Human") < labels.index("Reverb")
    assert "| Nature | At start | " in md and "|  | Cont. 0 dB | " in md
    tex = (tmp_path / "t.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex and r"\multicolumn{6}{c}{T-DNN}" in tex
    assert r"$\downarrow$" in tex and "↓" not in tex and "–" not in tex
    rows = [line for line in tex.splitlines() if line.endswith(r"\\") and "&" in line]
    assert all(line.count("&") == 2 + 6 - 1 for line in rows if not line.startswith(" &") and "multicolumn" not in line)
    assert "<table>" in to_html(table)
    assert to_markdown(table) == md and to_latex(table) == tex


def test_missing_pairs_are_dropped(setup):
    config, conditions = setup["config"], setup["conditions"]
    confusion = setup["confusion"]
    keep = ~((confusion.regime == "clean") & (confusion.condition == "reverb") & (confusion.fold == 2)
             & (confusion.rep == 1) & (confusion.task == "valence"))
    table = build_table3(confusion[keep], config, conditions.values(), skipped=SKIPPED,
                         statistics={"test": "fold_ttest"})
    cell = table.cell("reverb", "tdnn", "clean", "valence")
    assert cell["n_pairs"] == 5 and "dropped" in cell["note"]
    pooled = table.cell("RETAINING", "tdnn", "clean", "valence")
    assert pooled["n_pairs"] == 5 and "missing for some pooled condition" in pooled["note"]


def test_extra_model_appears_without_code_change(setup, tmp_path):
    config, conditions = setup["config"], setup["conditions"]
    paths = write_synthetic_predictions(tmp_path, config, model="ednn", regimes=["clean"])
    _, extra = compute_metrics(paths)
    confusion = pd.concat([setup["confusion"], extra], ignore_index=True)
    table = build_table3(confusion, config, conditions.values(), skipped=SKIPPED, statistics={"test": "fold_ttest"})
    assert table.models == ["tdnn", "ednn"]
    assert table.cell("clean", "ednn", "clean", "activation")["value"] != EMPTY
    assert table.cell("env-nat-cont-snr0", "ednn", "match", "activation")["value"] == EMPTY
    md = to_markdown(table)
    assert "| T-DNN |" in md and "E-DNN" in md
    assert r"\multicolumn{6}{c}{E-DNN}" in to_latex(table)
    # configured but without predictions: columns kept, all empty
    config2 = copy.deepcopy(config)
    config2["training"]["models"] = ["tdnn", "ednn_nr"]
    table2 = build_table3(setup["confusion"], config2, conditions.values(), statistics={"test": "fold_ttest"})
    assert table2.models == ["tdnn", "ednn_nr"]
    assert set(table2.cells[table2.cells.model == "ednn_nr"]["value"]) == {EMPTY}


def test_a_model_trained_in_fewer_regimes_gets_empty_cells_not_partial_pools(setup, tmp_path):
    """training.model_regimes: an E-DNN trained in clean and matched only. Aggregate Mismatch cells
    pool several regimes' models; without its mismatched models such a cell must stay empty rather
    than pool the few conditions whose source happens to be trained."""
    config, conditions = setup["config"], setup["conditions"]
    trained = ["clean", "matched"]
    paths = write_synthetic_predictions(tmp_path, config, model="ednn", regimes=trained)
    _, extra = compute_metrics(paths)
    confusion = pd.concat([setup["confusion"], extra], ignore_index=True)
    config2 = copy.deepcopy(config)
    config2["training"]["models"] = ["tdnn", "ednn"]
    table = build_table3(confusion, config2, conditions.values(), skipped=SKIPPED, model_regimes={"ednn": trained},
                         statistics={"test": "fold_ttest"})
    ednn = table.cells[table.cells.model == "ednn"]
    mismatch = ednn[ednn.column == "mismatch"]
    assert set(mismatch["value"]) == {EMPTY}
    assert mismatch["note"].str.contains("not trained in regime").any()
    assert table.cell("RETAINING", "ednn", "match", "activation")["value"] != EMPTY
    assert table.cell("ALL", "ednn", "match", "activation")["value"] == EMPTY  # needs the `all` regime
    assert table.cell("clean", "ednn", "clean", "activation")["value"] != EMPTY
    # the fully trained model is unaffected
    assert table.cell("ALL", "tdnn", "mismatch", "activation")["mean"] == setup["table"].cell(
        "ALL", "tdnn", "mismatch", "activation")["mean"]


def test_partial_skip_notes_quote_an_example_reason(tmp_path):
    folder = tmp_path / "results/ravdess/augmented/env-nat-start/test"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({
        "condition": "env-nat-start", "skipped": False, "n_ok": 8, "n_skipped": 2,
        "skip_reasons": {"the first # s are (near) silent": 2}}))
    pd.DataFrame({"utt_id": ["a", "b", "c"], "status": ["ok", "skipped: the first 1.074 s are (near) silent",
                                                        "skipped: the first 0.9 s are (near) silent"]}).to_csv(
        folder / "params.csv", index=False)
    reason = skipped_from_statuses([folder / "status.json"])["env-nat-start"]
    assert reason == "partial: 2 of 10 utterances skipped (e.g. the first 1.074 s are (near) silent)"
    (folder / "params.csv").unlink()  # without params.csv: the masked kind
    assert "the first # s" in skipped_from_statuses([folder / "status.json"])["env-nat-start"]


def test_plots_are_written(setup, tmp_path):
    config, conditions, metrics = setup["config"], setup["conditions"], setup["metrics"]
    tested = [c for c in conditions if c not in SKIPPED] + list(SKIPPED)
    plot_uar_vs_snr(metrics, config, conditions.values(), tmp_path / "snr.png", tested=tested)
    plot_uar_per_condition(metrics, config, conditions.values(), tmp_path / "bars.png", tested=tested)
    flagged = {("tdnn", "clean", 1, 1, "valence"): "all one class"}
    plot_uar_vs_snr(metrics, config, conditions.values(), tmp_path / "snr-flagged.png", tested=tested, flagged=flagged)
    plot_uar_per_condition(metrics, config, conditions.values(), tmp_path / "bars-flagged.png", tested=tested,
                           flagged=flagged)
    for name in ("snr.png", "bars.png", "snr-flagged.png", "bars-flagged.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert (tmp_path / "snr.png").read_bytes() != (tmp_path / "snr-flagged.png").read_bytes()


def test_plot_panels_name_flagged_models():
    from sernoise.evaluation.flags import panel_flag

    flagged = {("tdnn", "clean", 1, 1, "valence"): "x", ("tdnn", "clean", 2, 1, "valence"): "y",
               ("tdnn", "matched", 1, 1, "valence"): "z", ("ednn", "clean", 1, 1, "valence"): "w"}
    assert panel_flag(flagged, "tdnn", "valence") == " † degenerate: clean (2), matched (1)"
    assert panel_flag(flagged, "tdnn", "activation") == "" and panel_flag(None, "tdnn", "valence") == ""


def test_cells_resting_on_degenerate_models_are_marked_and_noted(setup, tmp_path):
    """A model the degenerate-model check flagged marks every cell that pools its predictions (†),
    names it in the cell's note, and the table's notes say what the mark means; other cells are unchanged."""
    from sernoise.evaluation.metrics import degenerate_flags, read_flags

    folder = tmp_path / "models"
    folder.mkdir()
    paths = []
    for i, (regime, flagged) in enumerate([("clean", True), ("matched", False), ("clean", False)]):
        path = folder / f"h{i}.yaml"
        entry = {"flagged": flagged, "reason": "all validation predictions are 'low'" if flagged else ""}
        path.write_text(yaml.safe_dump({"model": "tdnn", "regime": regime, "fold": 1 if i < 2 else 2, "rep": 1,
                                        "task": "valence", "degenerate": entry}))
        paths.append(path)
    flags = degenerate_flags(paths)
    assert flags["flagged"].tolist() == [True, False, False]
    flags.to_csv(tmp_path / "flags.csv", index=False)
    flagged = read_flags([tmp_path / "flags.csv"])
    assert flagged == {("tdnn", "clean", 1, 1, "valence"): "all validation predictions are 'low'"}

    table = build_table3(setup["confusion"], setup["config"], setup["conditions"].values(), skipped=SKIPPED,
                         corpus="ravdess", flagged=flagged, speakers=setup["speakers"])
    plain = setup["table"]
    cell = table.cell("clean", "tdnn", "clean", "valence")
    assert cell["value"].endswith("†") and "clean fold 1 rep 1 (all validation predictions are 'low')" in cell["note"]
    assert table.cell("env-nat-cont-snr0", "tdnn", "match", "valence")["value"] == \
        plain.cell("env-nat-cont-snr0", "tdnn", "match", "valence")["value"]  # matched: not flagged
    assert not table.cell("clean", "tdnn", "clean", "activation")["value"].endswith("†")  # other task
    assert any(n.startswith("†:") and "tdnn" in n for n in table.notes)
    marked = table.cells["value"].str.endswith("†")
    assert set(table.cells.loc[marked, "column"]) == {"clean"} and set(table.cells.loc[marked, "task"]) == {"valence"}
    assert (table.cells.loc[~marked, "value"].to_numpy() == plain.cells.loc[~marked, "value"].to_numpy()).all()
    assert r"\dag{}" in to_latex(table) and "†" in to_markdown(table)


# -- statistics: the speaker-level default, the paper's t-test option, intervals, family, units ---------


def test_one_family_per_table_on_request(setup):
    per_question = setup["table"]
    table = build_table3(setup["confusion"], setup["config"], setup["conditions"].values(), skipped=SKIPPED,
                         speakers=setup["speakers"], statistics={"family": "table"})
    cells, tested = table.cells, table.cells[table.cells["p"].notna()]
    pd.testing.assert_series_equal(tested["p"], per_question.cells.loc[tested.index, "p"])  # same tests
    assert set(tested["family"]) == {"table"} and (tested["family_size"] == table.m).all()
    assert np.allclose(tested["p_adjusted"], np.minimum(1, tested["p"] * table.m))
    # a larger family: never more significant than per question
    assert (tested["p_adjusted"] >= per_question.cells.loc[tested.index, "p_adjusted"]).all()
    assert cells["significant"].sum() <= per_question.cells["significant"].sum()
    assert f"Bonferroni family: m = {table.m} comparisons of this table" in table.caption_text
    with pytest.raises(ValueError, match="statistics.family"):
        build_table3(setup["confusion"], setup["config"], setup["conditions"].values(), speakers=setup["speakers"],
                     statistics={"family": "row"})



def test_caption_states_the_test_units_and_bonferroni_family(setup):
    table = setup["table"]
    caption = table.caption_text
    family = table.family
    assert table.units == {"speakers": N_SPEAKERS, "pairs": len(FOLDS) * len(REPS), "utterances": 3 * 60}
    assert "speaker-level paired test of the UAR difference" in caption and "leaving out one speaker" in caption
    assert "paired at the utterance" in caption and f"clustered by the {N_SPEAKERS} test speakers" in caption
    assert "180 clean test utterances per repetition, 6 (fold, repetition) pairs" in caption
    sizes = sorted(set(table.cells.loc[table.cells["family"] != "", "family_size"]) | {3})
    assert (f"Bonferroni families: one per model, task and question, 6 families of m = {sizes[0]}–{sizes[-1]} "
            f"comparisons") in caption
    assert (f"{table.m} comparisons in all ({family['a']} × (a) each row vs No noise in the Clean column") in caption
    assert f"{family['b']} × (b) each row vs the Clean column of the same row" in caption
    assert "6 × (c) All noises** vs Perception-retaining in each column (RQ3)" in caption
    assert "95% confidence interval (speaker-level bootstrap, percentile)" in caption
    assert caption in to_markdown(table) and "⇑/⇓" in caption


def test_every_cell_has_a_speaker_level_confidence_interval(setup, tmp_path):
    table = setup["table"]
    filled = table.cells[table.cells["n_pairs"] > 0]
    assert filled[["ci_low", "ci_high"]].notna().all(axis=None)
    assert (filled["ci_low"] <= filled["mean"] + 0.02).all() and (filled["mean"] <= filled["ci_high"] + 0.02).all()
    assert (filled["ci_high"] - filled["ci_low"]).between(0.005, 0.5).all()
    assert (filled["n_speakers"] == N_SPEAKERS).all()
    clean = table.cell("clean", "tdnn", "clean", "activation")
    assert clean["n_predictions"] == len(FOLDS) * len(REPS) * 60
    # hidden by default, shown on request (tables.show_ci)
    assert "[" not in "".join(line for line in to_markdown(table).splitlines() if line.startswith("| No noise"))
    shown = copy.copy(table)
    shown.statistics = {**table.statistics, "show_ci": True}
    row = next(line for line in to_markdown(shown).splitlines() if line.startswith("| No noise"))
    assert f"{clean['value']} [{clean['ci_low']:.2f}, {clean['ci_high']:.2f}]" in row
    assert "; shown in brackets" not in table.caption_text


def test_the_papers_fold_t_test_is_an_option_with_its_old_numbers(setup):
    from scipy.stats import ttest_rel

    config, conditions = setup["config"], setup["conditions"]
    table = build_table3(setup["confusion"], config, conditions.values(), skipped=SKIPPED,
                         statistics={"test": "fold_ttest", "family": "table"}, all_vs_retaining=False)
    cells = table.cells
    tested = cells[cells["p"].notna()]
    # the old default: t-test over (fold, rep) pairs, Bonferroni over (a) and (b) only; no speakers needed
    assert table.m == len(tested) and table.family["c"] == 0 and set(tested["test"]) == {"fold_ttest"}
    assert np.allclose(tested["p_adjusted"], np.minimum(1, tested["p"] * table.m))
    worse = table.cell("env-nat-cont-snr0", "tdnn", "clean", "valence")
    mine, ref = table.pairs[("env-nat-cont-snr0", "tdnn", "clean", "valence")], table.pairs[("clean", "tdnn", "clean",
                                                                                               "valence")]
    expected = ttest_rel(mine.to_numpy(), ref.loc[mine.index].to_numpy())
    assert worse["p"] == pytest.approx(expected.pvalue) and worse["t"] == pytest.approx(expected.statistic)
    assert worse["significant"] and worse["value"].endswith("↓")
    assert "paper's paired t-test over the 6 (fold, repetition) pairs" in table.caption_text
    assert cells["ci_low"].isna().all()  # no per-speaker counts given: no intervals
    # the means are the default table's: only the tests differ
    assert np.allclose(cells["mean"], setup["table"].cells["mean"], equal_nan=True)


def test_speaker_level_tests_need_the_speaker_counts(setup):
    with pytest.raises(ValueError, match="statistics.test 'speaker_jackknife' needs the per-speaker confusion"):
        build_table3(setup["confusion"], setup["config"], setup["conditions"].values())
    with pytest.raises(ValueError, match="statistics.test: 'welch'"):
        build_table3(setup["confusion"], setup["config"], setup["conditions"].values(), statistics={"test": "welch"})


def test_all_noises_vs_perception_retaining_and_utterance_sets_that_differ(setup):
    config, conditions = setup["config"], setup["conditions"]
    confusion, speakers = setup["confusion"].copy(), setup["speakers"].copy()
    # every perception-altering condition predicted perfectly: All noises** rises above Perception-retaining
    altering = [c for c, info in conditions.items() if info.perception == "altering"]
    labels = ("low", "mid", "high")
    for frame in (confusion, speakers):
        rows = frame["condition"].isin(altering)
        for t in labels:
            total = sum(frame.loc[rows, f"cm_{t}_{p}"] for p in labels)
            for p in labels:
                frame.loc[rows, f"cm_{t}_{p}"] = total if p == t else 0
    # one speaker's reverb utterances differ from its clean ones (as when a condition skips utterances)
    speakers.loc[(speakers["condition"] == "reverb") & (speakers["speaker"] == "spk0"), "utt_digest"] = "other"
    table = build_table3(confusion, config, conditions.values(), skipped=SKIPPED, speakers=speakers,
                         statistics={"resamples": 20000})
    for column in ("clean", "mismatch", "match"):
        cell = table.cell("ALL", "tdnn", column, "activation")
        assert cell["vs_retaining_mean"] == pytest.approx(table.cell("RETAINING", "tdnn", column, "activation")["mean"])
        assert cell["vs_retaining_difference"] > 0.03
        assert cell["vs_retaining_significant"] and cell["vs_retaining_direction"] == "up" and "⇑" in cell["value"]
    reverb = table.cell("reverb", "tdnn", "clean", "activation")
    assert "test utterances differ in" in reverb["note"] and "paired by speaker, not by utterance" in reverb["note"]
    assert "utterance sets that differ" in " ".join(table.notes)
    assert r"$\Uparrow$" in to_latex(table)


def test_same_predictions_same_bytes_and_the_permutation_option(setup, tmp_path):
    config, conditions, speakers = setup["config"], setup["conditions"], setup["speakers"]
    texts = []
    for _ in range(2):
        table = build_table3(setup["confusion"], config, conditions.values(), skipped=SKIPPED, speakers=speakers,
                             statistics={"resamples": 500})
        texts.append(table.cells.to_csv(index=False) + to_markdown(table) + to_latex(table))
    assert texts[0] == texts[1]
    permutation = build_table3(setup["confusion"], config, conditions.values(), skipped=SKIPPED, speakers=speakers,
                               statistics={"test": "speaker_permutation", "resamples": 500, "family": "table"})
    # 500 random swap patterns (2^12 > 500): the smallest p is 1/501 and nothing survives Bonferroni over the
    # whole table; the table says so (per question, the smallest family (m = 3) leaves room: no such note)
    tested = permutation.cells[permutation.cells["p"].notna()]
    assert set(tested["test"]) == {"speaker_permutation"} and tested["p"].min() == pytest.approx(1 / 501)
    assert "exact" not in " ".join(tested["note"])  # said once, in the caption
    assert "speaker-level paired permutation test" in permutation.caption_text
    bootstrap = build_table3(setup["confusion"], config, conditions.values(), skipped=SKIPPED, speakers=speakers,
                             statistics={"test": "speaker_bootstrap", "resamples": 500})
    worse = bootstrap.cell("env-nat-cont-snr0", "tdnn", "clean", "activation")
    assert worse["test"] == "speaker_bootstrap" and worse["significant"] and worse["diff_ci_high"] < 0
    assert "speaker-level paired bootstrap of the UAR difference (500 resamples)" in bootstrap.caption_text
    assert any("no comparison can be significant" in note for note in permutation.notes)
    per_question = build_table3(setup["confusion"], config, conditions.values(), skipped=SKIPPED, speakers=speakers,
                                statistics={"test": "speaker_permutation", "resamples": 500})
    assert not any("no comparison can be significant" in note for note in per_question.notes)
