"""Configuration validation (sernoise.config) against the real schema, config.yaml and overlays."""

from __future__ import annotations

import copy

import pytest
import yaml

from sernoise.config import ConfigError, deep_update, key_path, load_config, validate_config


@pytest.fixture(scope="module")
def schema(repo_root):
    return repo_root / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def _base(repo_root):
    with open(repo_root / "config.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture
def base(_base):
    """A fresh deep copy of config.yaml (validate_config fills defaults in place)."""
    return copy.deepcopy(_base)


def _error(config, schema) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, schema)
    return str(info.value)


# --- valid configurations -------------------------------------------------------------------


def test_default_config_validates(base, schema):
    out = validate_config(base, schema)
    assert out is base  # validated (and filled) in place
    assert out["corpus"] == "ravdess"
    assert out["folds"]["n_folds"] == 5


@pytest.mark.parametrize("overlay", ["configs/demo.yaml", "tests/configs/shared_data.yaml"])
def test_overlays_validate(repo_root, schema, overlay):
    config = load_config([repo_root / "config.yaml", repo_root / overlay], schema)
    assert config["corpora"]["ravdess"]["shards"] == 2
    # the overlay changes a few keys; the rest of config.yaml survives the merge
    assert config["corpora"]["ravdess"]["adapter"] == "ravdess"
    assert config["corpora"]["iemocap"]["shards"] == 4
    assert config["seed"] == 20231015


def test_shared_data_overlay_merges_noise_banks(repo_root, schema):
    config = load_config([repo_root / "config.yaml", repo_root / "tests/configs/shared_data.yaml"], schema)
    assert config["noise"]["banks"] == ["shared"]  # lists replace
    assert set(config["noise_banks"]) == {"esc50", "shared"}  # mappings merge
    assert config["corpora"]["ravdess"]["root"] == "../shared/data/ravdess/Audio_Speech_Actors_01-24"
    # the download block of config.yaml is kept under the overridden root
    assert config["corpora"]["ravdess"]["download"]["checksum"].startswith("md5:")


def test_defaults_are_filled(base, schema):
    for key in ("folds", "prepare"):
        base.pop(key, None)
    for key in ("categories", "test_fraction"):
        base["noise"].pop(key, None)
    for key in ("shards", "options"):
        base["corpora"]["iemocap"].pop(key, None)
    config = validate_config(base, schema)
    assert config["folds"] == {"n_folds": 5}
    assert config["prepare"] == {
        "sample_rate": 16000,
        "silence_peak": 1.0e-4,
        "max_reject_fraction": 0.01,
        "compression": "bitshuffle-lz4",
        "compression_level": 4,
    }
    assert config["noise"]["categories"] == ["nat", "hum", "int", "laugh", "cry"]
    assert config["noise"]["test_fraction"] == 0.3
    # defaults inside additionalProperties sub-schemas (one corpus entry) are filled too
    assert config["corpora"]["iemocap"]["shards"] == 4
    assert config["corpora"]["iemocap"]["options"] == {}
    # and inside $ref'd definitions: the esc50 download has no checksum configured
    assert config["noise_banks"]["esc50"]["download"]["checksum"] is None


def test_defaults_do_not_override_given_values(base, schema):
    base["folds"] = {"n_folds": 7}
    base["prepare"] = {"compression": "lzf"}
    config = validate_config(base, schema)
    assert config["folds"]["n_folds"] == 7
    assert config["prepare"]["compression"] == "lzf"
    assert config["prepare"]["compression_level"] == 4


def test_filled_defaults_are_copies(schema, _base):
    """Two validated configs must not share a default object (one run mutating it would leak)."""
    a, b = copy.deepcopy(_base), copy.deepcopy(_base)
    del a["noise"]["categories"], b["noise"]["categories"]
    validate_config(a, schema)
    validate_config(b, schema)
    a["noise"]["categories"].remove("cry")
    assert b["noise"]["categories"] == ["nat", "hum", "int", "laugh", "cry"]


# --- errors name the dotted key path ---------------------------------------------------------


def test_unknown_top_level_key(base, schema):
    base["sed"] = 1
    message = _error(base, schema)
    assert "config key sed: unknown key" in message
    assert "seed" in message  # the allowed keys are listed as a hint


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda c: c["corpora"]["ravdess"].update(shardz=3), "corpora.ravdess.shardz"),
        (lambda c: c["prepare"].update(compresion="gzip"), "prepare.compresion"),
        (lambda c: c["corpora"]["ravdess"]["download"].update(sha="x"), "corpora.ravdess.download.sha"),
    ],
)
def test_unknown_nested_key_names_full_path(base, schema, mutate, path):
    mutate(base)
    message = _error(base, schema)
    assert path in message


def test_unknown_nested_key_names_parent_and_key(base, schema):
    base["corpora"]["ravdess"]["shardz"] = 3
    message = _error(base, schema)
    assert "corpora.ravdess.shardz: unknown key" in message
    assert "shards" in message  # the allowed keys are listed as a hint


@pytest.mark.parametrize(
    "mutate, path, fragment",
    [
        (lambda c: c.update(seed="x"), "seed", "'x'"),
        (lambda c: c.update(seed=-1), "seed", "-1"),
        (lambda c: c["prepare"].update(max_reject_fraction=2), "prepare.max_reject_fraction", "2"),
        (lambda c: c["prepare"].update(compression="zstd"), "prepare.compression", "zstd"),
        (lambda c: c["folds"].update(n_folds=2), "folds.n_folds", "2"),
        (lambda c: c["corpora"]["ravdess"].update(shards=0), "corpora.ravdess.shards", "0"),
        (lambda c: c["corpora"]["ravdess"].update(adapter="wav"), "corpora.ravdess.adapter", "wav"),
        (lambda c: c["corpora"]["ravdess"]["options"].update(actors=[1, 25]), "corpora.ravdess.options.actors[1]", "25"),
        (lambda c: c["noise"].update(banks=[]), "noise.banks", "[]"),
        (lambda c: c["noise"].update(categories=["nat", "speech"]), "noise.categories[1]", "speech"),
        (lambda c: c["noise"].update(test_fraction=1.0), "noise.test_fraction", "1.0"),
        (
            lambda c: c["corpora"]["ravdess"]["download"].update(checksum="md5:XYZ"),
            "corpora.ravdess.download.checksum",
            "md5:XYZ",
        ),
        (
            lambda c: c["corpora"]["ravdess"]["download"].update(checksum="sha1:" + "0" * 40),
            "corpora.ravdess.download.checksum",
            "sha1:",
        ),
        (
            lambda c: c["corpora"]["ravdess"]["download"].update(url="ftp://example.org/x.zip"),
            "corpora.ravdess.download.url",
            "ftp://",
        ),
        (
            lambda c: c["corpora"]["ravdess"]["options"]["circumplex"]["happy"].update(normal=["mid", "hi"]),
            "corpora.ravdess.options.circumplex.happy.normal[1]",
            "'hi'",
        ),
        (
            lambda c: c["corpora"]["ravdess"]["options"]["circumplex"]["sad"].update(strong=["low"]),
            "corpora.ravdess.options.circumplex.sad.strong",
            "short",
        ),
    ],
)
def test_bad_value_names_key_path(base, schema, mutate, path, fragment):
    mutate(base)
    message = _error(base, schema)
    assert f"config key {path}:" in message
    assert fragment in message


def test_missing_required_key(base, schema):
    del base["corpora"]["ravdess"]["root"]
    message = _error(base, schema)
    assert "config key corpora.ravdess:" in message
    assert "'root'" in message


def test_unknown_circumplex_emotion(base, schema):
    base["corpora"]["ravdess"]["options"]["circumplex"]["bored"] = {"normal": ["low", "low"]}
    message = _error(base, schema)
    assert "corpora.ravdess.options.circumplex" in message
    assert "bored" in message


def test_valid_checksums_accepted(base, schema):
    base["corpora"]["ravdess"]["download"]["checksum"] = "sha256:" + "a" * 64
    base["noise_banks"]["esc50"]["download"]["checksum"] = None
    validate_config(base, schema)


# --- cross-references ------------------------------------------------------------------------


def test_unknown_corpus(base, schema):
    base["corpus"] = "crema"
    message = _error(base, schema)
    assert "config key corpus:" in message
    assert "'crema'" in message
    assert "ravdess" in message  # the defined corpora are listed


def test_unknown_noise_bank(base, schema):
    base["noise"]["banks"] = ["esc50", "musan"]
    message = _error(base, schema)
    assert "config key noise.banks[1]:" in message
    assert "'musan'" in message
    assert "noise.banks[0]" not in message


def test_unknown_category_in_class_to_category(base, schema):
    base["noise_banks"]["esc50"]["class_to_category"]["rain"] = "weather"
    message = _error(base, schema)
    assert "config key noise_banks.esc50.class_to_category.rain:" in message
    assert "'weather'" in message


def test_category_must_be_among_configured_categories(base, schema):
    """A valid paper category that the experiment does not use is still an error for a bank mapping."""
    base["noise"]["categories"] = ["nat", "hum", "laugh", "cry"]
    message = _error(base, schema)
    assert "noise_banks.esc50.class_to_category.door_wood_knock:" in message
    assert "'int'" in message
    assert "noise_banks.esc50.class_to_category.rain" not in message


# --- all problems at once --------------------------------------------------------------------


def test_several_schema_problems_reported_together(base, schema):
    base["seed"] = "x"
    base["prepare"]["max_reject_fraction"] = 2
    base["corpora"]["ravdess"]["download"]["checksum"] = "md5:nothex"
    base["corpora"]["ravdess"]["shardz"] = 3
    message = _error(base, schema)
    assert "(4 problem(s))" in message
    for path in ("seed", "prepare.max_reject_fraction", "corpora.ravdess.download.checksum", "corpora.ravdess.shardz"):
        assert f"config key {path}:" in message
    assert len(message.splitlines()) == 5  # header + one line per problem


def test_several_cross_reference_problems_reported_together(base, schema):
    base["corpus"] = "crema"
    base["noise"]["banks"] = ["musan", "esc50", "fsd"]
    base["noise_banks"]["esc50"]["class_to_category"]["rain"] = "weather"
    message = _error(base, schema)
    assert "(4 problem(s))" in message
    for path in ("corpus", "noise.banks[0]", "noise.banks[2]", "noise_banks.esc50.class_to_category.rain"):
        assert f"config key {path}:" in message


def test_model_regimes_and_denoise_scope_checked_against_their_references(base, schema):
    base["training"]["models"] = ["tdnn", "ednn"]
    base["training"]["regimes"] = ["clean", "matched"]
    base["training"]["model_regimes"] = {"ednn": ["clean", "all"], "ednn_nr": ["clean"]}
    base["denoise"]["conditions"] = ["reverb", "env-nat-cont-snr5"]
    message = _error(base, schema)
    assert "(2 problem(s))" in message  # ednn_nr is not trained: its entry is ignored
    assert "config key training.model_regimes.ednn: regime 'all' is not in training.regimes" in message
    assert "config key denoise.conditions[1]: unknown condition 'env-nat-cont-snr5'" in message


def test_model_regimes_schema_rejects_unknown_kind(base, schema):
    # unknown model names are the plan's to reject (the model registry): tests/test_plan.py
    base["training"]["model_regimes"] = {"ednn": ["noisy"]}
    message = _error(base, schema)
    assert "config key training.model_regimes.ednn: regime 'noisy' is not in training.regimes" in message


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


# --- merging and loading ---------------------------------------------------------------------


def test_deep_update_semantics():
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": [1, 2], "c": 1}
    other = {"a": {"y": {"q": 3, "r": 4}, "z": 5}, "b": [9], "c": {"now": "mapping"}, "d": None}
    out = deep_update(base, other)
    assert out is base
    assert base == {
        "a": {"x": 1, "y": {"p": 1, "q": 3, "r": 4}, "z": 5},
        "b": [9],
        "c": {"now": "mapping"},
        "d": None,
    }


def test_deep_update_replaces_mapping_with_scalar_and_copies():
    base = {"a": {"x": 1}}
    other = {"a": 3, "b": {"inner": [1]}}
    deep_update(base, other)
    assert base["a"] == 3
    other["b"]["inner"].append(2)  # mutating the overlay afterwards must not reach the merged config
    assert base["b"] == {"inner": [1]}


def test_load_config_later_files_win(tmp_path, repo_root, schema):
    first = tmp_path / "one.yaml"
    second = tmp_path / "two.yaml"
    first.write_text("seed: 1\nfolds: {n_folds: 4}\ncorpora: {ravdess: {shards: 3}}\n")
    second.write_text("seed: 2\ncorpora: {ravdess: {shards: 7}}\n")
    config = load_config([repo_root / "config.yaml", first, second], schema)
    assert config["seed"] == 2
    assert config["folds"]["n_folds"] == 4
    assert config["corpora"]["ravdess"]["shards"] == 7
    assert config["corpora"]["ravdess"]["root"] == "resources/ravdess/Audio_Speech_Actors_01-24"


def test_load_config_empty_overlay_is_noop(tmp_path, repo_root, schema):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    config = load_config([repo_root / "config.yaml", empty], schema)
    assert config["corpus"] == "ravdess"


def test_load_config_rejects_non_mapping(tmp_path, repo_root, schema):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml"):
        load_config([repo_root / "config.yaml", bad], schema)


def test_load_config_validates(tmp_path, repo_root, schema):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prepare: {max_reject_fraction: 2}\n")
    with pytest.raises(ConfigError, match=r"prepare\.max_reject_fraction"):
        load_config([repo_root / "config.yaml", bad], schema)


def test_key_path():
    assert key_path([]) == "<top level>"
    assert key_path(["noise", "banks", 1]) == "noise.banks[1]"
    assert key_path(["corpora", "ravdess", "options", "circumplex", "happy", "normal", 0]) == (
        "corpora.ravdess.options.circumplex.happy.normal[0]"
    )
