"""Task registry (sernoise.tasks): targets per kind, CCC, the CCC loss, config entries and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sernoise.config import ConfigError, load_config
from sernoise.tasks import (
    BUILTIN_TASKS, Task, TaskError, ccc, get_task, is_better, known_tasks, register_task, task_from_entry,
)
from sernoise.training.data import TrainingDataError, labels_of
from sernoise.training.losses import CCCLoss, ccc_per_column

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"tasks": {
    "emotion4": {"kind": "categorical", "classes": ["angry", "happy", "neutral", "sad"],
                 "mapping": {"ravdess": {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"},
                             "iemocap": {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral",
                                         "sad": "sad"}}},
    "avd": {"kind": "dimensional", "attributes": ["activation", "valence", "dominance"]},
}}


def _manifest():
    return pd.DataFrame({
        "utt_id": ["u1", "u2", "u3", "u4", "u5"],
        "emotion": ["ang", "exc", "fru", "neu", "sad"],
        "activation": [1.0, 5.0, 3.0, "", 2.0],
        "valence": [2.0, 4.0, 3.0, 3.0, 1.5],
        "dominance": [3.0, 3.0, 3.0, 3.0, 4.0],
        "activation_bin": ["low", "high", "mid", "", "low"],
        "valence_bin": ["low", "high", "mid", "mid", "low"],
    })


def test_bins_tasks_are_the_old_labels():
    manifest = _manifest()
    assert get_task("activation").targets(manifest) == {"u1": 0, "u2": 2, "u3": 1, "u5": 0}
    assert labels_of(manifest, "valence") == {"u1": 0, "u2": 2, "u3": 1, "u4": 1, "u5": 0}
    task = get_task("activation")
    assert (task.output_size, task.chance, task.primary_metric) == (3, pytest.approx(1 / 3), "uar")
    with pytest.raises(TrainingDataError, match=r"unknown task 'arousal'; known: \['activation', 'valence'\]"):
        labels_of(manifest, "arousal")


def test_categorical_targets_map_the_corpus_vocabulary():
    task = get_task("emotion4", CONFIG)
    assert task.output_size == 4 and task.chance == 0.25
    # fru is not mapped: left out; exc merged into happy
    assert task.targets(_manifest(), "iemocap") == {"u1": 0, "u2": 1, "u4": 2, "u5": 3}
    assert labels_of(_manifest(), "emotion4", corpus="iemocap", config=CONFIG) == {"u1": 0, "u2": 1, "u4": 2, "u5": 3}
    with pytest.raises(TaskError, match=r"config key tasks\.emotion4\.mapping has no entry for corpus 'msp_podcast'"):
        task.targets(_manifest(), "msp_podcast")
    with pytest.raises(TaskError, match="needs the corpus name"):
        task.targets(_manifest())


def test_dimensional_targets_are_rescaled_to_minus_one_one():
    task = get_task("avd", CONFIG)
    assert (task.output_size, task.primary_metric, task.chance) == (3, "ccc", 0.0)
    targets = task.targets(_manifest(), "iemocap")
    assert sorted(targets) == ["u1", "u2", "u3", "u5"]  # u4 has no activation rating
    assert targets["u1"] == (-1.0, -0.5, 0.0)  # (x - 1) / 4 * 2 - 1 on the 1-5 scale
    assert targets["u2"] == (1.0, 0.5, 0.0)
    one = task_from_entry("val", {"kind": "dimensional", "attributes": ["valence"], "scale": {"mine": [0, 10]}})
    assert one.targets(_manifest(), "mine")["u5"] == (-0.7,)


def test_dimensional_errors_name_task_and_corpus():
    task = get_task("avd", CONFIG)
    ravdess = _manifest().assign(activation="", valence="", dominance="")
    with pytest.raises(TaskError, match=r"task 'avd': corpus 'ravdess' has no activation/valence/dominance ratings"):
        task.targets(ravdess, "ravdess")
    with pytest.raises(TaskError, match=r"no rating scale for corpus 'other'"):
        task.targets(_manifest(), "other")
    with pytest.raises(TaskError, match=r"u2 has a rating outside the msp_improv"):
        task.targets(_manifest().assign(valence=[2.0, 6.0, 3.0, 3.0, 1.5]), "msp_improv")


def test_ccc_against_a_hand_computation():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([2.0, 2.0, 3.0, 5.0])
    # means 2.5 / 3; population variances 1.25 / 1.5; covariance from the deviations (-1.5, -.5, .5, 1.5), (-1, -1, 0, 2)
    cov = ((-1.5) * (-1) + (-0.5) * (-1) + 0.5 * 0 + 1.5 * 2) / 4
    expected = 2 * cov / (1.25 + 1.5 + 0.5**2)
    assert ccc(t, p) == pytest.approx(expected)
    assert ccc(t, t) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert abs(ccc(rng.normal(size=20000), rng.normal(size=20000))) < 0.03
    torch_ccc = ccc_per_column(torch.tensor(p)[:, None], torch.tensor(t)[:, None])
    assert float(torch_ccc[0]) == pytest.approx(expected, rel=1e-6)
    metrics = get_task("avd", CONFIG).metrics(np.c_[t, t, t], np.c_[p, t, -t])
    assert metrics["ccc_activation"] == pytest.approx(expected) and metrics["ccc_valence"] == pytest.approx(1.0)
    negated = 2 * -1.25 / (1.25 + 1.25 + 5.0**2)  # means 2.5 and -2.5
    assert metrics["ccc_dominance"] == pytest.approx(negated)
    assert metrics["ccc"] == pytest.approx((expected + 1 + negated) / 3)


def test_ccc_loss_decreases_under_gradient_steps():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = torch.stack([x[:, 0] - x[:, 1], 0.5 * x[:, 2], x[:, 3]], dim=1)
    head = torch.nn.Linear(5, 3)
    criterion = get_task("avd", CONFIG).loss()
    assert isinstance(criterion, CCCLoss)
    optimiser = torch.optim.SGD(head.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = criterion(head(x), y)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0] and 0 <= losses[-1] <= 2


def test_classification_metrics_and_selection_direction():
    task = get_task("activation")
    logits = np.eye(3)[[0, 1, 2, 2]]
    metrics = task.metrics([0, 1, 2, 1], logits)
    assert metrics["uar"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert 0 < metrics["f1_weighted"] < 1
    assert is_better("loss", 0.4, 0.5) and not is_better("uar", 0.4, 0.5) and is_better("ccc", 0.1, None)
    assert not is_better("uar", float("nan"), None)
    with pytest.raises(TaskError, match="unknown selection metric 'auc'"):
        is_better("auc", 0.1, 0.2)


def test_registry_merges_config_over_built_ins():
    assert set(known_tasks(CONFIG)) >= {"activation", "valence", "emotion4", "avd"}
    replaced = {"tasks": {"valence": {"kind": "bins", "column": "activation_bin"}}}
    assert get_task("valence", replaced).column == "activation_bin"
    assert get_task("valence").column == "valence_bin"
    with pytest.raises(TaskError, match=r"unknown task 'nope'; known: \['activation', 'avd', 'emotion4', 'valence'\]"):
        get_task("nope", CONFIG)
    with pytest.raises(TaskError, match="already registered"):
        register_task(BUILTIN_TASKS["activation"])


def test_bad_task_entries_name_the_key():
    with pytest.raises(TaskError, match=r"tasks\.e3\.mapping\.ravdess\.calm: 'calm' is not one of the classes"):
        task_from_entry("e3", {"kind": "categorical", "classes": ["happy", "sad"],
                               "mapping": {"ravdess": {"calm": "calm"}}})
    with pytest.raises(TaskError, match=r"tasks\.x\.attributes: unknown \['arousal'\]"):
        task_from_entry("x", {"kind": "dimensional", "attributes": ["arousal"]})
    with pytest.raises(TaskError, match="kind must be one of"):
        Task("y", "ordinal", ("a",))


def test_config_tasks_section_is_validated(tmp_path):
    config = load_config([ROOT / "config.yaml"], ROOT / "schemas" / "config.schema.yaml")
    assert get_task("emotion4", config).labels == ("angry", "happy", "neutral", "sad")
    assert get_task("avd", config).labels == ("activation", "valence", "dominance")
    assert config["training"]["tasks"] == ["activation", "valence"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  e2: {kind: categorical, classes: [a, b], mapping: {ravdess: {happy: c}}}\n"
                   "  d1: {kind: dimensional, classes: [a, b]}\n  b1: {kind: bins}\n")
    with pytest.raises(ConfigError) as error:
        load_config([ROOT / "config.yaml", bad], ROOT / "schemas" / "config.schema.yaml")
    text = str(error.value)
    assert "tasks.e2.mapping.ravdess.happy: 'c' is not one of the classes" in text
    assert "config key tasks.d1" in text and "config key tasks.b1" in text
