"""MSP-Podcast's official split as one fixed fold (``folds.scheme: official``; sernoise.folds) on the tiny fixture."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from fixtures.msp_podcast_fixture import make_msp_podcast_fixture
from sernoise.config import ConfigError, load_config, validate_config
from sernoise.corpora import scan_corpus
from sernoise.folds import FoldError, check_official_folds, folds_from_config, make_official_folds, split_of
from sernoise.training.data import role_utterances

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
OFFICIAL = {"scheme": "official", "n_folds": 1}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = make_msp_podcast_fixture(tmp_path_factory.mktemp("msp_podcast"), audio=False)
    return scan_corpus("msp_podcast", root)


def test_one_fold_train_development_test1(manifest, tmp_path):
    folds = folds_from_config(manifest, OFFICIAL)
    assert folds.to_dict("records") == [
        {"fold": 1, "group": "Train", "role": "train"},
        {"fold": 1, "group": "Development", "role": "val"},
        {"fold": 1, "group": "Test1", "role": "test"},
    ]
    path = tmp_path / "folds.csv"
    folds.to_csv(path, index=False)
    folds = pd.read_csv(path, dtype={"group": str})  # as the jobs read it
    for role, partition in (("train", "Train"), ("val", "Development"), ("test", "Test1")):
        expected = sorted(manifest.loc[manifest["group"] == partition, "utt_id"])
        assert role_utterances(manifest, folds, 1, role) == expected
    tested = split_of(manifest, folds, 1, "test")
    assert len(tested) == 20 and "Test2" not in set(tested["group"])  # Test2 plays no role by default


def test_test_partitions_are_configurable(manifest):
    folds = folds_from_config(manifest, {**OFFICIAL, "test_partitions": ["Test1", "Test2"]})
    assert folds.loc[folds["role"] == "test", "group"].tolist() == ["Test1", "Test2"]
    assert len(split_of(manifest, folds, 1, "test")) == 26
    only2 = make_official_folds(manifest, ["Test2"])
    assert only2.loc[only2["role"] == "test", "group"].tolist() == ["Test2"]


def test_errors_name_the_key(manifest):
    with pytest.raises(
        FoldError, match="folds.scheme official makes one fixed fold but folds.n_folds is 5; set folds.n_folds: 1"
    ):
        folds_from_config(manifest, {"scheme": "official", "n_folds": 5})
    with pytest.raises(
        FoldError,
        match=r"folds.test_partitions: the corpus has no utterance in the partition "
        r"'Test3' \(the manifest's groups: \['Development', 'Test1', 'Test2', 'Train'\]",
    ):
        folds_from_config(manifest, {**OFFICIAL, "test_partitions": ["Test3"]})
    with pytest.raises(FoldError, match=r"folds.test_partitions: \['Development'\] cannot be tested"):
        folds_from_config(manifest, {**OFFICIAL, "test_partitions": ["Development"]})
    no_dev = manifest[manifest["group"] != "Development"]  # e.g. every Development file rejected
    with pytest.raises(
        FoldError, match="folds.scheme official: the corpus has no utterance in the partition 'Development'"
    ):
        folds_from_config(no_dev, OFFICIAL)
    ravdess_like = manifest.assign(group=manifest["group"].map(lambda g: f"pair{len(g)}"))
    with pytest.raises(FoldError, match="no utterance in the partition 'Train'"):
        folds_from_config(ravdess_like, OFFICIAL)


def test_a_speaker_in_two_partitions_is_a_leak(manifest):
    leaky = manifest.copy()
    first_test = leaky.index[leaky["group"] == "Test1"][0]
    leaky.loc[first_test, "speaker"] = "101"  # a Train speaker
    folds = make_official_folds(leaky)
    with pytest.raises(
        FoldError,
        match=r"official split check failed .*\n  1 speaker\(s\) in two roles, "
        r"e.g. \['101 \(test and train\)'\]",
    ):
        check_official_folds(leaky, folds)
    folds_from_config(manifest, OFFICIAL)  # the fixture's partitions share no speaker


def test_config_schema_and_cross_checks():
    base = load_config([ROOT / "config.yaml"], SCHEMA)
    assert base["folds"] == {"n_folds": 5}  # nothing filled in
    config = copy.deepcopy(base)
    config["folds"] = {"scheme": "official", "n_folds": 1, "test_partitions": ["Test1", "Test2"]}
    validate_config(config, SCHEMA)
    config["folds"] = {"scheme": "official"}  # n_folds defaults to 5
    with pytest.raises(
        ConfigError, match="config key folds.n_folds: folds.scheme official makes one fixed fold; set folds.n_folds: 1"
    ):
        validate_config(config, SCHEMA)
    config["folds"] = {"n_folds": 2}
    with pytest.raises(ConfigError, match="config key folds.n_folds: 2 is less than the minimum of 3"):
        validate_config(config, SCHEMA)
    config["folds"] = {"scheme": "official", "n_folds": 1, "test_partitions": []}
    with pytest.raises(ConfigError, match="folds.test_partitions"):
        validate_config(config, SCHEMA)


def test_plan_and_ctsl_plan_have_the_one_fold():
    from sernoise.ctsl.plan import build_ctsl_plan
    from sernoise.plan import build_plan

    config = load_config([ROOT / "config.yaml"], SCHEMA)
    config["folds"] = {"scheme": "official", "n_folds": 1}
    plan = build_plan(config, attack_defaults=None, perception_defaults={})
    assert plan.folds == [1]
    assert {f.split("/fold")[1][0] for f in plan.prediction_targets()} == {"1"}
    ctsl = build_ctsl_plan(config, plan)
    assert (
        ctsl.run_files("msp_podcast", "scores.csv")[0]
        == "results/msp_podcast/ctsl/tdnn/original/fold1/rep1/activation/scores.csv"
    )
    assert all("/fold1/" in f for f in ctsl.run_files("msp_podcast", "scores.csv"))
