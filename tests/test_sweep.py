"""Augmentation-fraction sweep (paper §8.4): fraction regimes, their training-set sizes, the sweep table and plot."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from fixtures.synthetic_predictions import synthetic_config, write_synthetic_predictions
from fixtures.training_corpus import assemble_toy, toy_manifest
from sernoise.conditions import build_conditions
from sernoise.evaluation.metrics import compute_metrics
from sernoise.evaluation.sweep import build_sweep, plot_sweep, sweep_points, to_markdown, write_sweep
from sernoise.folds import make_folds
from sernoise.predictions import CLEAN
from sernoise.regimes import Regime, RegimeError, fraction_name, sweep_regimes
from sernoise.training.data import draw_fraction, fraction_count, role_utterances

FRACTIONS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


@pytest.fixture
def corpus():
    manifest = toy_manifest(n_groups=5, per_group=20)
    folds = make_folds(manifest["group"], 5)
    everything = list(manifest["utt_id"])
    available = {"c1": everything, "c2": everything[::2], "c3": []}  # c3 skipped on this corpus
    return manifest, folds, available


def _fraction(p):
    return Regime(fraction_name(p), "fraction", ("c1", "c2", "c3"), fraction=p / 100)


def test_fraction_count_rounds_half_up_within_bounds():
    assert [fraction_count(p / 100, 36) for p in FRACTIONS] == [4, 7, 11, 14, 18, 22, 25, 29, 32, 36]
    assert fraction_count(0.5, 5) == 3 and fraction_count(1.0, 0) == 0
    with pytest.raises(ValueError):
        fraction_count(0.0, 10)


@pytest.mark.parametrize("p", FRACTIONS)
def test_p_percent_of_clean_utterances_get_one_copy(corpus, p):
    manifest, folds, _ = corpus
    sets = assemble_toy(corpus, _fraction(p))
    for role, examples, n_clean in (("train", sets.train, sets.n_clean_train), ("val", sets.val, sets.n_clean_val)):
        utts = role_utterances(manifest, folds, 2, role)
        clean = [e for e in examples if e.condition == CLEAN]
        augmented = [e for e in examples if e.condition != CLEAN]
        assert [e.utt_id for e in clean] == utts and n_clean == len(utts)  # every clean utterance, once
        assert len(augmented) == fraction_count(p / 100, len(utts))  # p % of them ...
        assert len({e.utt_id for e in augmented}) == len(augmented)  # ... one copy each
        assert {e.condition for e in augmented} <= {"c1", "c2"}  # regime's conditions that stored them
        stored_c2 = set(corpus[2]["c2"])
        assert all(e.utt_id in stored_c2 for e in augmented if e.condition == "c2")
    assert "c3" in sets.left_out


def test_fractions_are_nested_and_seeded(corpus):
    previous: set = set()
    for p in FRACTIONS:
        chosen = {(e.utt_id, e.condition) for e in assemble_toy(corpus, _fraction(p)).train if e.condition != CLEAN}
        assert previous <= chosen  # a smaller fraction's copies are among a larger one's
        previous = chosen
    full = assemble_toy(corpus, _fraction(100))
    assert full.train == assemble_toy(corpus, _fraction(100)).train
    assert full.train != assemble_toy(corpus, _fraction(100), rep=2).train
    both = {e.condition for e in full.train if e.condition != CLEAN}
    assert both == {"c1", "c2"}


def test_draw_fraction_prefix_property():
    pool = [(f"u{i:02d}", c) for i in range(30) for c in ("a", "b")]
    small = draw_fraction(pool, 0.2, 30, np.random.default_rng(4))
    large = draw_fraction(pool, 0.7, 30, np.random.default_rng(4))
    assert len(small) == 6 and len(large) == 21 and set(small) <= set(large)
    assert len(draw_fraction(pool[:10], 1.0, 30, np.random.default_rng(0))) == 5  # only 5 utterances usable


def test_sweep_regimes_from_config():
    config = copy.deepcopy(synthetic_config())
    conditions = build_conditions(config["conditions"])
    config["training"].pop("sweep", None)
    assert sweep_regimes(config, conditions) == {}  # absent: no sweep
    config["training"]["sweep"] = {"model": "tdnn", "fractions": [10, 25.5, 100]}
    regimes = sweep_regimes(config, conditions)
    assert list(regimes) == ["fraction-10", "fraction-25.5", "fraction-100"]
    retaining = tuple(c for c, cond in conditions.items() if cond.perception == "retaining")
    assert all(r.kind == "fraction" and r.train_conditions == retaining for r in regimes.values())
    assert regimes["fraction-25.5"].fraction == pytest.approx(0.255)
    config["training"]["sweep"]["fractions"] = []
    assert sweep_regimes(config, conditions) == {}
    altering = {c: cond for c, cond in conditions.items() if cond.perception == "altering"}
    config["training"]["sweep"]["fractions"] = [50]
    with pytest.raises(RegimeError, match="perception-retaining"):
        sweep_regimes(config, altering)


def test_sweep_table_and_plot(tmp_path):
    config = synthetic_config()
    conditions = build_conditions(config["conditions"])
    fractions = [10, 50, 100]
    regimes = ["clean"] + [fraction_name(p) for p in fractions]
    tested = ["env-nat-cont-snr0", "env-hum-start", "fade-in", "pitch-up"]
    paths = write_synthetic_predictions(tmp_path, config, regimes=regimes, tested=tested)
    metrics, confusion = compute_metrics(paths)
    table = build_sweep(confusion, conditions.values(), model="tdnn", fractions=fractions,
                        tasks=config["training"]["tasks"], tested=tested, regimes_trained=["clean", "matched"])
    assert sweep_points(fractions, ["clean"]) == [(0.0, "clean"), (10.0, "fraction-10"), (50.0, "fraction-50"),
                                                 (100.0, "fraction-100")]
    assert len(table) == 4 * 2 * 2 and (table["n_pairs"] == 6).all()
    clean = table[(table["test"] == "clean") & (table["fraction"] == 0) & (table["task"] == "activation")].iloc[0]
    expected = metrics[(metrics.regime == "clean") & (metrics.condition == "clean") & (metrics.task == "activation")]
    assert clean["mean"] == pytest.approx(expected["uar"].mean()) and clean["std"] == pytest.approx(expected["uar"].std())
    retaining = table[table["test"] == "retaining"]
    assert (retaining["conditions"] == "env-hum-start;env-nat-cont-snr0;fade-in").all()  # config order
    assert not retaining["conditions"].str.contains("pitch-up").any()  # perception-altering: not in the pool
    assert retaining["p"].notna().all() and table.loc[table["test"] == "clean", "p"].isna().all()
    write_sweep(table, tmp_path / "s.csv", tmp_path / "s.md", corpus="ravdess")
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back["fraction"].unique()) == [0, 10, 50, 100]
    md = (tmp_path / "s.md").read_text()
    assert "0 % (clean)" in md and "| 50 % |" in md and "±" in md and "Bonferroni" in md
    assert md == to_markdown(table, "ravdess")
    plot_sweep(table, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
