"""Regime construction and Table 3's column sources (sernoise.regimes)."""

import copy
from pathlib import Path

import pytest

from sernoise.conditions import build_conditions
from sernoise.config import load_config
from sernoise.regimes import RegimeError, build_regimes, column_source, type_of

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup():
    config = load_config([REPO / "config.yaml"], REPO / "schemas" / "config.schema.yaml")
    conditions = build_conditions(config["conditions"])
    return config, conditions, build_regimes(config, conditions)


def test_regime_names_and_training_sets(setup):
    config, conditions, regimes = setup
    types = config["noise_types"]
    assert set(regimes) == {"clean", "matched", "all"} | {f"mismatched-{t}" for t in types}
    assert regimes["clean"].train_conditions == ()
    retaining = {c for c, cond in conditions.items() if cond.perception == "retaining"}
    assert set(regimes["matched"].train_conditions) == retaining
    assert set(regimes["all"].train_conditions) == set(conditions)
    assert "laugh" not in regimes["matched"].train_conditions and "laugh" in regimes["all"].train_conditions


@pytest.mark.parametrize("held_out", ["hum", "int", "nat", "speed-seg", "fade", "reverb"])
def test_mismatched_leaves_exactly_its_type_out(setup, held_out):
    config, conditions, regimes = setup
    regime = regimes[f"mismatched-{held_out}"]
    train = set(regime.train_conditions)
    assert not train & set(config["noise_types"][held_out])
    others = {c for t, members in config["noise_types"].items() if t != held_out for c in members}
    assert train == {c for c in others if conditions[c].perception == "retaining"}
    # drop-word is retaining but of no type: never part of a mismatched training set
    assert "drop-word" not in train


def test_table3_sources(setup):
    config, _, regimes = setup
    assert column_source(config, regimes, "clean", None) == "clean"
    assert column_source(config, regimes, "match", None) is None
    assert column_source(config, regimes, "mismatch", "env-hum-cont-snr10") == "mismatched-hum"
    assert column_source(config, regimes, "mismatch", "fade-out") == "mismatched-fade"
    assert column_source(config, regimes, "match", "env-hum-cont-snr10") == "matched"
    assert column_source(config, regimes, "match", "ALL") == "all"
    assert column_source(config, regimes, "mismatch", "ALL") is None
    assert column_source(config, regimes, "mismatch", "laugh") == "matched"  # never seen by matched
    assert column_source(config, regimes, "mismatch", "drop-word") is None  # matched trained on it
    assert column_source(config, regimes, "match", "laugh") is None
    with pytest.raises(RegimeError):
        column_source(config, regimes, "other", "laugh")


def test_bad_noise_types_are_named(setup):
    config, conditions, _ = setup
    broken = copy.deepcopy(config)
    broken["noise_types"]["hum"] = ["env-hum-start", "no-such-condition"]
    with pytest.raises(RegimeError, match="noise_types.hum.*no-such-condition"):
        build_regimes(broken, conditions)
    twice = copy.deepcopy(config)
    twice["noise_types"]["nat"] = twice["noise_types"]["nat"] + ["env-hum-start"]
    with pytest.raises(RegimeError, match="already in type"):
        type_of(twice)
    no_types = copy.deepcopy(config)
    no_types["noise_types"] = {}
    with pytest.raises(RegimeError, match="needs noise_types"):
        build_regimes(no_types, conditions)
