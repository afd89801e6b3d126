"""The perception partition as an input of regimes, tables and the attack (sernoise.perception.partition)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from sernoise.perception.partition import (
    PartitionError,
    attack_settings_under_partition,
    describe,
    read_partition,
    regime_under_partition,
    settings_under_partition,
)
from sernoise.perception.table2 import PARTITION_COLUMNS
from sernoise.regimes import Regime
from sernoise.training.artifacts import TrainingRun

CONFIG = {
    "training": {"regimes": ["clean", "matched", "mismatched", "all"], "sweep": {"fractions": [50]}},
    "noise_types": {"nat": ["nat-10", "nat-0"], "fade": ["fade-in"], "reverb": ["reverb"]},
}
# config classes: the paper's (pitch altering); the "study" below finds nat-0 altering and pitch retaining
CONFIG_CLASSES = {"nat-10": "retaining", "nat-0": "retaining", "fade-in": "retaining", "reverb": "retaining",
                  "pitch": "altering"}
STUDY_CLASSES = {**CONFIG_CLASSES, "nat-0": "altering", "pitch": "retaining"}


def write_partition(path, classes, source="study"):
    rows = [{"condition": c, "perception": p, "source": source, "frac_valence": 0.0, "frac_activation": 0.0,
             "threshold": 0.05} for c, p in classes.items()]
    pd.DataFrame(rows, columns=PARTITION_COLUMNS).to_csv(path, index=False)
    return path


@pytest.fixture()
def study(tmp_path):
    return read_partition(write_partition(tmp_path / "partition.csv", STUDY_CLASSES))


def test_matched_and_fraction_regimes_take_the_partitions_retaining_conditions(study):
    matched = Regime("matched", "matched", ("nat-10", "nat-0", "fade-in", "reverb"))
    assert regime_under_partition(matched, CONFIG, study).train_conditions == ("nat-10", "fade-in", "reverb", "pitch")
    fraction = Regime("fraction-50", "fraction", ("nat-10", "nat-0", "fade-in", "reverb"), fraction=0.5)
    rebuilt = regime_under_partition(fraction, CONFIG, study)
    assert rebuilt.train_conditions == ("nat-10", "fade-in", "reverb", "pitch") and rebuilt.fraction == 0.5


def test_mismatched_regime_keeps_its_held_out_type_out(study):
    regime = Regime("mismatched-fade", "mismatched", ("nat-10", "nat-0", "reverb"), "fade")
    # nat-0 alters under the study; pitch retains but has no noise type (mismatched regimes use typed ones)
    assert regime_under_partition(regime, CONFIG, study).train_conditions == ("nat-10", "reverb")


def test_clean_and_all_regimes_do_not_depend_on_the_partition(study):
    for regime in (Regime("clean", "clean"), Regime("all", "all", tuple(CONFIG_CLASSES))):
        assert regime_under_partition(regime, CONFIG, study) is regime


def test_a_regime_left_without_retaining_conditions_is_a_clear_error(tmp_path):
    everything_alters = read_partition(write_partition(tmp_path / "p.csv", dict.fromkeys(CONFIG_CLASSES, "altering")))
    with pytest.raises(PartitionError, match="regime matched has no perception-retaining condition"):
        regime_under_partition(Regime("matched", "matched", ("nat-10",)), CONFIG, everything_alters)


def test_bad_partition_files_name_the_file(tmp_path):
    path = write_partition(tmp_path / "p.csv", {"nat-10": "maybe"})
    with pytest.raises(PartitionError, match=r"p\.csv: column perception has \['maybe'\]"):
        read_partition(path)


def test_training_run_reads_its_regime_from_the_partition(tmp_path):
    path = write_partition(tmp_path / "partition.csv", STUDY_CLASSES)
    wildcards = SimpleNamespace(model="tdnn", fold="1", rep="1", task="activation", corpus="c")
    params = SimpleNamespace(regime=Regime("matched", "matched", ("nat-10", "nat-0", "fade-in", "reverb")).as_dict(),
                             seed=3, conditions=list(CONFIG_CLASSES))
    run = TrainingRun.from_rule(wildcards, params, CONFIG, str(path))
    assert run.regime.train_conditions == ("nat-10", "fade-in", "reverb", "pitch")
    assert run.record()["regime_conditions"] == ["nat-10", "fade-in", "reverb", "pitch"]
    assert TrainingRun.from_rule(wildcards, params, CONFIG).regime.train_conditions[1] == "nat-0"  # no partition
    params.conditions = ["nat-10", "fade-in", "reverb"]  # the job was planned without pitch's dataset
    with pytest.raises(PartitionError, match=r"needs conditions \['pitch'\], which are not inputs of this job"):
        TrainingRun.from_rule(wildcards, params, CONFIG, str(path))


def test_evaluation_settings_take_the_partitions_classes_and_say_so(study, tmp_path):
    settings = {"conditions": [{"id": c, "perception": p} for c, p in CONFIG_CLASSES.items()], "tested": []}
    under = settings_under_partition(settings, study)
    assert {c["id"]: c["perception"] for c in under["conditions"]} == STUDY_CLASSES
    assert settings["conditions"][1]["perception"] == "retaining"  # the rule's params are not changed
    assert "perception study for 5 of 5 conditions" in under["partition_note"] and "nat-0" in under["partition_note"]
    config_only = read_partition(write_partition(tmp_path / "c.csv", CONFIG_CLASSES, source="config"))
    assert "from the config (the paper's Table 2; no study responses)" in describe(config_only)
    assert settings_under_partition(settings, None)["partition_note"].startswith("Perception classes: from the config")


def test_attack_retaining_sets_follow_the_partition(study):
    settings = {"categories": {"nat": ["nat-10", "nat-0"], "reverb": ["reverb"], "pitch": ["pitch"],
                               "laugh": ["laugh"]},
                "perception": {"nat": "retaining", "reverb": "retaining", "pitch": "altering", "laugh": "altering"},
                "noise_sets": {"all": ["nat", "reverb", "pitch", "laugh"], "perception_retaining": ["nat", "reverb"],
                               "reverb": ["reverb"]},
                "noise_set_specs": {"all": "all", "perception_retaining": "retaining", "reverb": "list"}}
    under = attack_settings_under_partition(settings, study)
    # nat holds an altering condition now; pitch is retaining; laugh is not in the partition: its config class
    assert under["noise_sets"]["perception_retaining"] == ["reverb", "pitch"]
    assert under["perception"] == {"nat": "altering", "reverb": "retaining", "pitch": "retaining", "laugh": "altering"}
    assert under["noise_sets"]["all"] == settings["noise_sets"]["all"] and under["noise_sets"]["reverb"] == ["reverb"]
