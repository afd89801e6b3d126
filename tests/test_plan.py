"""The workflow plan (sernoise.plan), the condition catalog and the model registry, in process.

Also: parsing the Snakefile loads no audio or model library (a subprocess with those libraries
replaced by modules that refuse to import), so the Snakemake process needs only the host
environment the README states (envs/snakemake.yaml).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sernoise.conditions import build_condition, condition_class
from sernoise.conditions.catalog import CONDITION_TYPES, describe_condition
from sernoise.config import deep_update, validate_config
from sernoise.model_registry import ModelFamily, RegistryError, get_model, register_model, unregister_model
from sernoise.plan import PlanError, build_plan

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "config.schema.yaml"
HEAVY = ("torch", "torchaudio", "librosa", "soundfile", "h5py", "pystoi", "pesq", "speechbrain", "transformers",
         "matplotlib", "scipy", "sklearn")


def _config(*overlays: dict) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for overlay in overlays:
        deep_update(config, overlay)
    return validate_config(config, SCHEMA)


def _shared_overlay() -> dict:
    return yaml.safe_load((REPO / "tests" / "configs" / "shared_data.yaml").read_text())


def _plan(*overlays: dict):
    config = _config(*overlays)
    return build_plan(config, attack_defaults=None, perception_defaults={})


# -- the condition catalog -------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(CONDITION_TYPES))
def test_catalog_matches_the_condition_classes(type_name):
    ctype, cls = CONDITION_TYPES[type_name], condition_class(type_name)
    assert (cls.type_name, cls.family, cls.default_perception) == (type_name, ctype.family, ctype.default_perception)
    assert set(cls.requires) == set(ctype.requires) and bool(cls.additive) == ctype.additive
    keywords = {name for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind == p.KEYWORD_ONLY} - {"perception"}
    assert keywords == set(ctype.arguments), "catalog arguments differ from the constructor's keywords"


def test_described_conditions_equal_the_built_ones():
    config = _config(_shared_overlay())
    for cid, spec in config["conditions"].items():
        info, built = describe_condition(cid, spec), build_condition(cid, spec)
        assert (info.family, info.perception, set(info.requires)) == (built.family, built.perception, set(built.requires))
        for attribute in ("category", "position", "snr_db"):
            assert getattr(info, attribute) == getattr(built, attribute, None), (cid, attribute)


@pytest.mark.parametrize("spec, fragment", [
    ({"type": "env", "category": "nat", "position": "cont", "snr": 10}, "unknown argument(s) ['snr']"),
    ({"type": "env", "category": "weather", "position": "cont", "snr_db": 10}, "conditions.bad.category"),
    ({"type": "fade", "direction": "in", "rate_per_second": "fast"}, "conditions.bad.rate_per_second"),
    ({"type": "fade"}, "'direction' is a required property"),
])
def test_bad_condition_entries_name_the_key(spec, fragment):
    with pytest.raises(PlanError, match="config key conditions.bad") as error:
        _plan({"conditions": {"bad": spec}})
    assert fragment in str(error.value)


def test_unknown_condition_type_names_the_key():
    from sernoise.conditions.catalog import CatalogError

    with pytest.raises(CatalogError, match=r"config key conditions.bad.type: unknown condition type 'warp'"):
        describe_condition("bad", {"type": "warp"})


# -- the plan --------------------------------------------------------------------------------


def test_plan_of_the_shared_data_config():
    plan = _plan(_shared_overlay())
    assert plan.corpus == "ravdess" and list(plan.models) == ["tdnn", "ednn", "tdnn_nr", "tdnn_dfn3", "ednn_nr"]
    assert plan.tasks == ["activation", "valence"] and plan.folds == [1, 2, 3, 4, 5] and plan.reps == [1]
    assert plan.model_regimes["ednn"] == ["clean"] and plan.model_regimes["tdnn_nr"] == ["clean", "matched"]
    # the DFN3 arm beside the RNNoise arm: same regimes, features of its own denoised audio
    assert plan.model_regimes["tdnn_dfn3"] == ["clean", "matched"] and plan.family("tdnn_dfn3").audio == "denoised_dfn3"
    assert "mismatched-nat" in plan.model_regimes["tdnn"]
    assert plan.noise_robust_models() == ["tdnn_nr", "tdnn_dfn3", "ednn_nr"]
    assert plan.standard_models() == ["tdnn", "ednn"]
    assert plan.models_by_input("features") == ["tdnn", "tdnn_nr", "tdnn_dfn3"]
    assert plan.models_by_input("waveform") == ["ednn", "ednn_nr"]
    assert plan.label("ednn") == "E-DNN (tiny random wav2vec2)" and plan.label("tdnn") == "T-DNN"
    targets = plan.all_targets()
    assert "results/ravdess/tables/table3.csv" in targets and "results/ravdess/tables/table4.html" in targets
    assert "results/ravdess/tables/table5.csv" in targets and "results/ravdess/plots/attack_budget.png" in targets
    assert not any(t.startswith("results/tables") or t.startswith("results/plots") for t in targets)
    assert plan.predictions("ravdess", "ednn") == [
        f"results/ravdess/predictions/ednn/clean/fold{f}/rep1/{t}.csv" for f in plan.folds for t in plan.tasks]
    settings = plan.evaluation_settings()
    assert settings["tested"] == plan.built and settings["model_labels"] == {
        "tdnn": "T-DNN", "ednn": "E-DNN (tiny random wav2vec2)", "tdnn_nr": "NR-T-DNN", "tdnn_dfn3": "DFN3-T-DNN",
        "ednn_nr": "NR-E-DNN (tiny random wav2vec2)"}
    assert "results/ravdess/predictions/tdnn_dfn3/matched/fold5/rep1/valence.csv" in plan.prediction_targets()


def test_categorical_task_from_config_is_planned():
    plan = _plan({"training": {"tasks": ["emotion4"]}})
    assert plan.task_kinds == {"emotion4": "categorical"} and plan.strategy == "standard"
    assert "results/ravdess/predictions/tdnn/clean/fold1/rep1/emotion4.csv" in plan.prediction_targets()


def test_plan_of_the_default_config_and_its_sweep():
    plan = _plan()
    # the paper's whole design: four arms (the DFN3 arm is one overlay away), the sweep on the
    # noise-robust end-to-end model (paper §8.4)
    assert list(plan.models) == ["tdnn", "ednn", "tdnn_nr", "ednn_nr"]
    assert plan.sweep_model == "ednn_nr" and "fraction-50" in plan.sweep_regimes
    assert len(plan.prediction_targets()) == len(plan.models) * len(plan.regimes) * 5 * 5 * 2
    assert "results/ravdess/tables/sweep.csv" in plan.all_targets()
    assert plan.attack["models"] == ["tdnn", "ednn", "tdnn_nr", "ednn_nr"]
    assert list(plan.attack["noise_sets"]) == ["all", "perception_retaining", "environmental", "signal_manipulation",
                                               "reverb"]
    assert "results/ravdess/tables/table5.csv" in plan.attack_targets()


@pytest.mark.parametrize("overlay, fragment", [
    ({"training": {"models": ["tdnn", "cnn"]}}, "config key training.models[1]: unknown model family 'cnn'"),
    ({"training": {"tasks": ["arousal_bins"]}}, "config key training.tasks[0]"),
    ({"training": {"models": ["tdnn", "tdnn_nr"]}},
     "config key training.sweep.model: 'ednn_nr' is not in training.models"),
    ({"augment": {"conditions": ["reverb", "nope"]}}, "config key augment.conditions[1]: unknown condition 'nope'"),
    ({"plugins": ["sernoise_no_such_plugin"]}, "config key plugins[0]: cannot import 'sernoise_no_such_plugin'"),
    ({"training": {"models": ["tdnn", "tdnn_nr"], "sweep": {"model": "tdnn"}}, "attack": {"models": ["ednn"]}},
     "config key attack.models[0]"),
    ({"training": {"strategy": {"name": "nope"}}}, "config key training.strategy: unknown training strategy 'nope'"),
    ({"training": {"strategy": {"name": "mixup", "options": {"alpha": 0}}}}, "alpha must be > 0"),
    ({"training": {"strategy": {"options": {"selection_metric": "ccc"}}}},
     "config key training.strategy.options.selection_metric: 'ccc' does not apply to the task(s) ['activation', "
     "'valence'] of training.tasks; choose uar, f1_weighted or loss"),
    ({"training": {"regimes": ["clean", "noisy"]}}, "config key training.regimes: unknown regime 'noisy'"),
    # the T-DNN learns dimensional tasks (CTSL's teachers), the E-DNN does not
    ({"training": {"tasks": ["avd"]}}, "config key training.models[1]: ednn cannot learn task 'avd'"),
])
def test_bad_configs_fail_naming_the_key(overlay, fragment):
    with pytest.raises(PlanError) as error:
        _plan(overlay)
    assert fragment in str(error.value)


def test_a_plugin_registers_a_family_the_plan_then_trains(tmp_path, monkeypatch):
    (tmp_path / "toy_family_plugin.py").write_text(
        "from sernoise.model_registry import ModelFamily, register_model\n"
        "register_model(ModelFamily('toy', 'Toy', input='features', feature='fbank40',\n"
        "    train='toy_family_plugin:train', predict='toy_family_plugin:predict',\n"
        "    model_files=('model.pt', 'hparams.yaml', 'norm.npz')), replace=True)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        plan = _plan({"plugins": ["toy_family_plugin"],
                      "training": {"models": ["tdnn", "toy"], "sweep": {"model": "tdnn"}}})
        assert plan.plugins == ["toy_family_plugin"] and plan.models_by_input("features") == ["tdnn", "toy"]
        assert plan.label("toy") == "Toy" and "results/ravdess/predictions/toy/clean/fold1/rep1/activation.csv" in \
            plan.prediction_targets()
    finally:
        unregister_model("toy")
        sys.modules.pop("toy_family_plugin", None)


def test_a_registered_regime_kind_is_planned():
    from sernoise.regimes import Regime, _REGIME_KINDS, register_regime_kind

    register_regime_kind("reverb_only", lambda config, conditions, retaining: [
        Regime("reverb_only", "reverb_only", tuple(c for c in conditions if c == "reverb"))])
    try:
        plan = _plan({"training": {"regimes": ["clean", "reverb_only"]}})
        assert list(plan.regimes) == ["clean", "reverb_only"] and plan.regimes["reverb_only"].train_conditions == ("reverb",)
    finally:
        _REGIME_KINDS.pop("reverb_only")


def test_registry_rejects_bad_entries_and_second_registrations():
    with pytest.raises(RegistryError, match="input 'spectrum'"):
        ModelFamily("x", "X", input="spectrum", train="m:f", predict="m:g")
    with pytest.raises(RegistryError, match="needs a feature type"):
        ModelFamily("x", "X", input="features", train="m:f", predict="m:g")
    with pytest.raises(RegistryError, match="'module:function'"):
        ModelFamily("x", "X", input="waveform", train="no_colon", predict="m:g")
    with pytest.raises(RegistryError, match="predict_runs entry point 'no_colon'"):
        ModelFamily("x", "X", input="waveform", train="m:f", predict="m:g", predict_runs="no_colon")
    with pytest.raises(RegistryError, match="already registered"):
        register_model(ModelFamily("tdnn", "Other", input="waveform", train="m:f", predict="m:g"))
    assert get_model("tdnn").label == "T-DNN"


def test_resources_come_from_the_family_and_its_config_section():
    config = _config()
    tdnn, ednn = get_model("tdnn"), get_model("ednn")
    assert tdnn.resource("train", "mem_mb", config) == 6000 and tdnn.resource("predict", "mem_mb", config) == 3000
    assert ednn.resource("train", "mem_mb", config) == config["ednn"]["mem_mb"]
    assert ednn.resource("train", "runtime", config) == config["ednn"]["runtime"]
    assert ednn.resource("predict", "runtime", config) == 60


# -- the Snakefile's process -----------------------------------------------------------------


@pytest.mark.workflow
def test_parsing_the_snakefile_imports_no_audio_or_model_library(tmp_path):
    """`snakemake -n` on the full default config with the heavy libraries made unimportable."""
    poison = tmp_path / "poison"
    for name in HEAVY:
        (poison / name).mkdir(parents=True)
        (poison / name / "__init__.py").write_text(f"raise ImportError('{name} imported while parsing the Snakefile')\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(poison)
    snakemake = str(Path(sys.executable).parent / "snakemake")
    proc = subprocess.run([snakemake, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "work"), "-n", "--quiet",
                           "rules", "--configfile", str(REPO / "config.yaml")],
                          capture_output=True, text=True, env=env, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "imported while parsing" not in output
    assert "train_model" in output and "make_table3" in output


def test_every_rule_runs_the_script_of_its_name():
    """A newcomer finds a rule's code from its name: rule X runs workflow/scripts/X.py; a rule declared
    with `use rule X as Y with:` runs X's script."""
    import re

    mismatched, rules = [], 0
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", smk.read_text(), flags=re.M | re.S):
            script = re.search(r"script:\s*\n\s*\"\.\./workflow/scripts/(\w+)\.py\"", body)
            rules += 1
            if script and script.group(1) != name:
                mismatched.append(f"{smk.name}: rule {name} runs {script.group(1)}.py")
    assert rules > 20 and not mismatched, mismatched
