"""Leem et al. (issue 14): the CTSL section of the config and what the stage builds (sernoise.ctsl.plan)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sernoise.config import ConfigError, deep_update, validate_config
from sernoise.ctsl.plan import build_ctsl_plan
from sernoise.plan import PlanError, build_plan

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "config.schema.yaml"


def _config(*overlays: dict) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for overlay in overlays:
        deep_update(config, overlay)
    return validate_config(config, SCHEMA)


def _ctsl(*overlays: dict):
    config = _config(*overlays)
    return build_ctsl_plan(config, build_plan(config))


def test_default_builds_six_strategies_on_demand():
    config = _config()
    assert config["ctsl"]["lambda_tl"] == 100 and config["ctsl"]["lambda_cl"] == 10 and config["ctsl"]["tau"] == 0.1
    ctsl = build_ctsl_plan(config, build_plan(config))
    assert ctsl.strategies == ["original", "rh", "rm", "rm_tl", "rm_cl", "rm_tl_cl"]
    assert ctsl.targets("ravdess") == []  # not enabled: on request only
    files = ctsl.run_files("ravdess", "scores.csv")  # strategies x 5 folds x 5 repetitions
    assert len(files) == 6 * 5 * 5 and files[0] == "results/ravdess/ctsl/tdnn/original/fold1/rep1/activation/scores.csv"
    enabled = _ctsl({"ctsl": {"enabled": True}})
    assert "results/ravdess/tables/ctsl.csv" in enabled.targets("ravdess")


def test_schema_defaults_fill_a_config_without_the_section():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    del config["ctsl"]
    validated = validate_config(config, SCHEMA)
    assert validated["ctsl"]["target"] == {"category": "nat", "max_minutes": 30, "snr_db": 0}
    assert validated["ctsl"]["epochs"] == 20 and validated["ctsl"]["test_groups"] == 30


@pytest.mark.parametrize("overlay, key", [
    ({"ctsl": {"models": ["ednn_x"]}}, "ctsl.models"),  # not trained by this config
    ({"ctsl": {"models": ["tdnn_nr"]}}, "ctsl.models"),  # denoised audio: not supported
    ({"ctsl": {"tasks": ["dominance"]}}, "ctsl.tasks"),
    ({"training": {"model_regimes": {"tdnn": ["matched"]}}}, "ctsl.models"),  # no clean teacher
])
def test_plan_errors_name_the_config_key(overlay, key):
    pattern = key.replace(".", r"\.")
    with pytest.raises(PlanError, match=pattern):
        _ctsl(overlay, {"ctsl": {"enabled": True}})
    # Off: the rest of the workflow still plans; asking for the CTSL tables raises the same error.
    ctsl = _ctsl(overlay)
    assert ctsl.targets("ravdess") == []
    with pytest.raises(PlanError, match=pattern):
        ctsl.run_files("ravdess", "scores.csv")


def test_the_e_dnn_is_adapted_beside_the_t_dnn():
    ctsl = _ctsl({"ctsl": {"models": ["tdnn", "ednn"]}})
    assert {f.split("/")[3] for f in ctsl.run_files("ravdess", "scores.csv")} == {"tdnn", "ednn"}


def test_schema_rejects_unknown_strategies_and_keys():
    with pytest.raises(ConfigError, match="ctsl"):
        _config({"ctsl": {"strategies": ["rm_tl_cl", "nope"]}})
    with pytest.raises(ConfigError, match="ctsl"):
        _config({"ctsl": {"lambda": 3}})


def test_a_ctsl_strategy_is_not_a_training_strategy():
    # It needs the teacher and the target-noise views that only the CTSL stage gives it.
    with pytest.raises(PlanError, match=r"training\.strategy\.name: 'ctsl_rm' runs in the 'ctsl' stage only .*"
                                        r"takes \[.*'mixup', 'standard'\]"):
        build_plan(_config({"training": {"strategy": {"name": "ctsl_rm"}}}))


def test_a_dimensional_task_trains_the_teachers_but_is_not_scored():
    """avd (CCC) beside activation: the T-DNN trains both, only activation gets predictions, metrics, the attack."""
    overlay = {"training": {"models": ["tdnn"], "tasks": ["activation", "avd"], "sweep": {"fractions": []},
                            "strategy": {"name": "standard", "options": {"selection_metric": "loss"}}},
               "ctsl": {"tasks": ["avd"]}}
    config = _config(overlay)
    plan = build_plan(config)
    assert plan.tasks == ["activation", "avd"] and plan.scored_tasks == ["activation"]
    assert not [f for f in plan.prediction_targets() if f.endswith("/avd.csv")]
    assert plan.attack["tasks"] == ["activation"]
    assert build_ctsl_plan(config, plan).run_files("ravdess", "scores.csv")[0].endswith("/fold1/rep1/avd/scores.csv")
    only = _config({"training": {"models": ["tdnn"], "tasks": ["avd"], "sweep": {"fractions": []},
                                 "strategy": {"name": "standard", "options": {"selection_metric": "ccc"}}},
                    "attack": {"models": []}, "ctsl": {"tasks": ["avd"], "enabled": True}})
    plan = build_plan(only)
    assert plan.scored_tasks == [] and not [t for t in plan.all_targets() if "/metrics/" in t or "/tables/" in t]
    with pytest.raises(PlanError, match=r"attack.tasks\[0\]: task 'avd' is dimensional"):
        build_plan(_config(overlay, {"attack": {"tasks": ["avd"]}}))
    with pytest.raises(PlanError, match="ednn cannot learn task 'avd'"):
        build_plan(_config(overlay, {"training": {"models": ["ednn"]}}))
