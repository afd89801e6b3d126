"""Latif et al. (issue 15): the `latif` config section and what the stage builds (sernoise.latif.plan)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sernoise.config import ConfigError, deep_update, validate_config
from sernoise.latif.plan import AUGMENTATIONS, MODELS, build_latif_plan
from sernoise.plan import PlanError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "config.schema.yaml"


def _config(*overlays: dict) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for overlay in overlays:
        deep_update(config, overlay)
    return validate_config(config, SCHEMA)


def test_default_is_the_paper_grid_on_request():
    plan = build_latif_plan(_config())
    assert plan.models == list(MODELS) and plan.augmentations == list(AUGMENTATIONS)
    assert plan.folds == list(range(1, 11)) and plan.reps == list(range(1, 11)) and plan.target is None
    assert plan.targets("ravdess") == []  # off: `snakemake latif` builds it
    runs = plan.run_files("ravdess", "predictions.csv")
    assert len(runs) == 5 * 4 * 10 * 10 and runs[0] == \
        "results/ravdess/latif/runs/proposed/none/fold1/rep1/predictions.csv"
    assert plan.cross_files("ravdess", "predictions.csv") == []
    assert "results/ravdess/tables/latif_table3.tex" in plan.outputs("ravdess")
    assert not any("cross" in o for o in plan.outputs("ravdess"))


def test_a_demo_subset_with_a_cross_corpus_target():
    config = _config({"corpora": {"urdu": {"adapter": "generic", "root": "/nowhere"}}},
                     {"latif": {"enabled": True, "models": ["proposed", "cnn"], "run_folds": [1, 3], "repetitions": 2,
                                "cross_corpus": {"target": "urdu"}}})
    plan = build_latif_plan(config)
    assert plan.folds == [1, 3] and plan.reps == [1, 2]
    assert len(plan.run_files("ravdess", "predictions.csv")) == 2 * 4 * 2 * 2
    assert plan.cross_files("ravdess", "model.pt")[0] == "results/ravdess/latif/cross/urdu/proposed/none/rep1/model.pt"
    assert {"results/ravdess/latif/cross_corpus.png", "results/ravdess/tables/latif_cross_corpus.csv"} <= \
        set(plan.targets("ravdess"))


@pytest.mark.parametrize("overlay, key", [
    ({"latif": {"run_folds": [11]}}, "latif.run_folds"),
    ({"latif": {"cross_corpus": {"target": "msp_improv"}}}, "latif.cross_corpus.target"),
    ({"latif": {"cross_corpus": {"target": "ravdess"}}}, "latif.cross_corpus.target"),
    ({"latif": {"speed_factors": [1.0, 1.1]}}, "latif.speed_factors"),
    ({"latif": {"task": "avd"}}, "latif.task"),
])
def test_plan_errors_name_the_config_key(overlay, key):
    with pytest.raises(PlanError, match=key.replace(".", r"\.")):
        build_latif_plan(_config(overlay))


@pytest.mark.parametrize("overlay", [
    {"latif": {"models": ["resnet"]}},
    {"latif": {"augmentations": ["specaugment"]}},
    {"latif": {"adversarial": {"epsilon": 0}}},
    {"latif": {"cross_corpus": {"selection_fraction": 1.0}}},
    {"latif": {"folds": 3}},
])
def test_schema_rejects_bad_values(overlay):
    with pytest.raises(ConfigError, match="latif"):
        _config(overlay)


def test_the_plan_lists_the_models_the_module_builds():
    from sernoise.latif import models

    assert tuple(models.MODELS) == MODELS and set(models.MODEL_LABELS) == set(MODELS)
