"""MetricAug's noisy items, head model and ``metricaug`` strategy hook (hand-made data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sernoise.metricaug.names import config_problems
from sernoise.metricaug.superset import SupersetError, item_id, noisy_items, snr_grid
from sernoise.models.metricaug_head import HeadConfig, MetricAugHead
from sernoise.training import strategies
from sernoise.training.strategies import EpochContext, StrategyError, get_strategy
from sernoise.seeds import rng_for


class ToneNoise:
    """A NoiseSource of two tonal clips per category (deterministic, no files)."""

    def __init__(self):
        t = np.arange(16000 * 2) / 16000
        self.clips = {f"{c}:{i}": (0.1 * np.sin(2 * np.pi * (300 + 200 * i + 50 * k) * t)).astype(np.float32)
                      for k, c in enumerate(("nat", "hum", "int")) for i in range(2)}

    def files(self, category):
        return sorted(k for k in self.clips if k.startswith(category + ":"))

    def read(self, key):
        return self.clips[key]

    def draw(self, category, rng):
        keys = self.files(category)
        key = keys[int(rng.integers(len(keys)))]
        return key, self.clips[key]


@pytest.fixture
def registered(monkeypatch):
    """sernoise.metricaug.strategy, its ``metricaug`` registration undone after the test (the registry is
    global: tests/test_strategies.py lists the built-in strategies)."""
    monkeypatch.setattr(strategies, "_FACTORIES", dict(strategies._FACTORIES))
    monkeypatch.setattr(strategies, "_STAGE_ONLY", dict(strategies._STAGE_ONLY))
    from sernoise.metricaug import strategy as module

    strategies.register_strategy("metricaug", module.metricaug, replace=True,
                                  stage="metricaug")  # a second import registers nothing
    return module


def _speech(seconds=1.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))  # syllable-like modulation
    return (0.2 * envelope * (np.sin(2 * np.pi * 150 * t) + 0.3 * rng.standard_normal(t.size))).astype(np.float32)


def test_snr_grid_and_category_checks():
    assert snr_grid(0, 30, 2) == [float(s) for s in range(0, 31, 2)]
    assert len(snr_grid(0, 30, 2)) == 16
    with pytest.raises(SupersetError, match="metricaug.superset.snr_db"):
        snr_grid(0, 30, 0)
    section = {"categories": ["nat", "hum"], "unseen_category": "int", "superset": {"snr_db": [0, 30, 2]},
               "hidden": [8, 16]}
    known = ("nat", "hum", "int")
    assert config_problems(section, known) == []
    problems = config_problems({**section, "categories": ["nat", "int"], "hidden": [9]}, known)
    assert any("metricaug.unseen_category" in p for p in problems) and any("metricaug.hidden" in p for p in problems)
    assert any("not among noise.categories" in p for p in config_problems({**section, "unseen_category": "x"}, known))
    assert any("metricaug.superset.snr_db" in p
               for p in config_problems({**section, "superset": {"snr_db": [30, 0, 2]}}, known))


def test_noisy_items_hit_their_snr_and_record_metrics_deterministically():
    x = _speech()
    kwargs = dict(categories=["nat", "hum"], snrs=[0.0, 20.0], noise=ToneNoise(), seed=5, tag="superset",
                  metrics=("stoi", "fwsnrseg"))
    items = noisy_items("utt1", x, **kwargs)
    assert [it.item_id for it in items] == [item_id("utt1", c, s) for c in ("nat", "hum") for s in (0.0, 20.0)]
    for it in items:
        assert it.row["status"] == "ok"
        assert it.row["snr_measured"] == pytest.approx(it.row["snr_target"], abs=0.1)
        assert it.features.shape[1] == 40
    by_snr = {it.row["snr_target"]: it for it in items if it.row["category"] == "nat"}
    assert by_snr[20.0].row["stoi"] > by_snr[0.0].row["stoi"]
    assert by_snr[20.0].row["fwsnrseg"] > by_snr[0.0].row["fwsnrseg"]
    again = noisy_items("utt1", x, **kwargs)
    assert all(np.array_equal(a.features, b.features) and a.row == b.row for a, b in zip(items, again))


def test_unseen_items_draw_their_snr_in_the_range():
    items = noisy_items("utt2", _speech(seed=1), categories=["int"], snrs=None, random_snr=(0.0, 30.0),
                        noise=ToneNoise(), seed=5, tag="unseen", metrics=())
    (item,) = items
    assert item.item_id == "utt2~int~rand"
    assert 0.0 <= item.row["snr_target"] <= 30.0
    assert item.row["snr_measured"] == pytest.approx(item.row["snr_target"], abs=0.1)
    with pytest.raises(SupersetError, match="either fixed SNRs or a random"):
        noisy_items("u", _speech(), categories=["int"], snrs=[0], random_snr=(0, 1), noise=ToneNoise(), seed=1,
                    tag="t")


def test_head_shapes_and_padding_invariance():
    torch.manual_seed(0)
    model = MetricAugHead(HeadConfig(hidden=8)).eval()
    short, long = torch.randn(1, 30, 40), torch.randn(1, 50, 40)
    batch = torch.zeros(2, 50, 40)
    batch[0, :30], batch[1] = short[0], long[0]
    with torch.no_grad():
        together = model(batch, torch.tensor([30, 50]))
        alone = model(short, torch.tensor([30]))
    assert together.shape == (2, 4)
    assert torch.allclose(together[0], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        HeadConfig(hidden=9)


def test_strategy_hook_uniform_first_then_algorithm1_and_history(registered):
    strategy = get_strategy("metricaug", {"metric": "stoi", "levels": "uniform", "k": 5})
    hook = strategy.items
    assert isinstance(hook, registered.MetricAugItems) and strategy.selection_metric == "f1_weighted"
    ctx = EpochContext(1, 4 + 50, model=None, curve=[], rng=rng_for(1, "strategy-items", 1))
    with pytest.raises(StrategyError, match="no superset bound"):
        hook(ctx)
    levels = np.repeat([1, 2, 3, 4, 5], 10)
    clean_and_levels = (0.80, [0.80, 0.79, 0.78, 0.73, 0.70])  # gaps 0, .01, .02, .07, .10
    hook.bind(n_clean=4, item_levels=levels, evaluate=lambda model, clean_wf1=None: clean_and_levels)
    first = hook(ctx)
    assert first[:4].tolist() == [0, 1, 2, 3] and first.size == 4 + 4  # N = n_per_epoch * 4 clean
    assert hook.history[0]["weight_level1"] == pytest.approx(0.2) and math.isnan(hook.history[0]["gap_level1"])
    second = hook(EpochContext(2, 54, model=None, curve=[], rng=rng_for(1, "strategy-items", 2)))
    row = hook.history[1]
    assert [row[f"gap_level{k}"] for k in range(1, 6)] == pytest.approx([0.0, 0.01, 0.02, 0.07, 0.10])
    assert row["weight_level5"] == pytest.approx(0.10 / 0.19 * 0.9)
    assert sum(row[f"drawn_level{k}"] for k in range(1, 6)) == 4
    assert (second[4:] >= 4).all() and (second[4:] < 54).all()


def test_strategy_options_are_checked(registered):
    with pytest.raises(StrategyError, match="metric must be one of"):
        get_strategy("metricaug", {"metric": "snr"})
    with pytest.raises(StrategyError, match="levels must be one of"):
        registered.metricaug(levels="kmeans")


@pytest.fixture
def head_family():
    """sernoise.metricaug.family imported, its registration undone after the test (the registry is global)."""
    import sys

    from sernoise.model_registry import register_model, unregister_model

    from sernoise.metricaug import family

    register_model(family.FAMILY, replace=True)  # a second import registers nothing
    try:
        yield family
    finally:
        unregister_model("metricaug_head")
        sys.modules.pop("sernoise.metricaug.family", None)


def _separable(n, seed):
    from sernoise.training.loop import SequenceData

    rng = np.random.default_rng(seed)
    arrays, labels = [], []
    for i in range(n):
        k = i % 4
        a = rng.normal(size=(int(rng.integers(6, 30)), 40)).astype(np.float32)
        a[:, 10 * k:10 * k + 10] += 1.5
        arrays.append(a)
        labels.append(k)
    return SequenceData(arrays, labels)


def test_head_family_plans_trains_and_reloads(head_family, tmp_path):
    import yaml

    from sernoise.plan import build_plan
    from sernoise.config import load_config
    from sernoise.tasks import get_task
    from sernoise.training.artifacts import selection_fields
    from sernoise.training.loop import TrainSettings, predict_proba
    from sernoise.training.predict import save_state
    from workflow_helpers import REPO

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"plugins": ["sernoise.metricaug.family"],
                                       "training": {"models": ["tdnn", "metricaug_head"], "sweep": {"model": "tdnn"}}}))
    config = load_config([REPO / "config.yaml", overlay], REPO / "schemas" / "config.schema.yaml")
    plan = build_plan(config, attack_defaults=None, perception_defaults={})
    assert plan.models_by_input("features") == ["tdnn", "metricaug_head"]
    assert plan.label("metricaug_head") == "MetricAug head"

    torch.set_num_threads(1)  # two threads on a busy two-core machine cost ten times more
    task = get_task("emotion4", config)
    settings = TrainSettings(max_epochs=5, patience=8, batch_size=16, learning_rate=1e-2)
    best, rows = head_family.search({"hidden": [8, 16]}, _separable(80, 0), _separable(40, 1), settings, seed=3,
                                    task=task)
    assert [r["hidden"] for r in rows] == [8, 16] and sum(r["selected"] for r in rows) == 1
    assert best.best_val_uar > 0.8  # separable classes are learnt
    save_state(best.state_dict, tmp_path / "model.pt")
    (tmp_path / "hparams.yaml").write_text(yaml.safe_dump(selection_fields("metricaug_head", best, rows)))
    model = head_family.load(tmp_path / "model.pt", tmp_path / "hparams.yaml")
    reference = head_family.load(tmp_path / "model.pt", tmp_path / "hparams.yaml")
    test = _separable(12, 2).arrays
    assert np.array_equal(predict_proba(model, test), predict_proba(reference, test))
    assert (predict_proba(model, test).argmax(axis=1) == np.arange(12) % 4).mean() > 0.8


def test_a_level_without_validation_items_counts_as_the_floor(registered):
    hook = registered.metricaug(metric="pesq", levels="gmm").items
    levels = np.repeat([1, 2, 3, 4, 5], 4)
    hook.bind(n_clean=10, item_levels=levels, evaluate=lambda model, clean_wf1=None: (0.8, [0.8, 0.7, math.nan, 0.6, 0.7]))
    hook(EpochContext(1, 30, model=None, curve=[], rng=rng_for(0, "e", 1)))
    hook(EpochContext(2, 30, model=None, curve=[], rng=rng_for(0, "e", 2)))
    row = hook.history[1]
    assert math.isnan(row["gap_level3"])
    # gaps 0, .1, (none), .2, .1: levels 1 and 3 floored, .9 shared as .1 : .2 : .1
    assert [row[f"weight_level{k}"] for k in range(1, 6)] == pytest.approx([0.05, 0.225, 0.05, 0.45, 0.225])


def test_metricaug_model_is_checked_against_the_registries():
    section = {"categories": ["nat"], "unseen_category": "int", "superset": {"snr_db": [0, 30, 2]}, "hidden": [8]}
    known = ("nat", "int")
    assert config_problems({**section, "model": "tdnn"}, known) == []
    assert config_problems({**section, "model": "metricaug_head"}, known) == []
    (problem,) = config_problems({**section, "model": "ednn"}, known)
    assert "metricaug.model: 'ednn' has no MetricAug entry" in problem
    from sernoise.metricaug.models import MetricAugModel, register_metricaug_model, unregister_metricaug_model

    # an entry for a family that reads the waveform is refused: the superset holds filterbank features
    register_metricaug_model(MetricAugModel("ednn", "E-DNN", None, None, None, "Adam", None, None))
    try:
        (problem,) = config_problems({**section, "model": "ednn"}, known)
        assert "reads waveform" in problem
    finally:
        unregister_metricaug_model("ednn")


@pytest.mark.parametrize("family", ["tdnn", "metricaug_head"])
def test_a_registered_model_trains_under_the_metricaug_strategy(family):
    """metricaug.model: the job's search trains the chosen family with Algorithm 1's per-epoch draw
    (a history row per epoch), and the selected point rebuilds into a network that loads its state."""
    from sernoise.metricaug.models import get_metricaug_model
    from sernoise.metricaug.strategy import metricaug
    from sernoise.metricaug.train import level_evaluator, search_model
    from sernoise.tasks import get_task
    from sernoise.training.loop import SequenceData, TrainSettings

    rng = np.random.default_rng(0)

    def data(n):
        return SequenceData([rng.standard_normal((int(t), 40)).astype(np.float32) for t in rng.integers(30, 60, n)],
                            rng.integers(0, 4, n))

    task = get_task("emotion4", {"tasks": {"emotion4": {"kind": "categorical",
                                                        "classes": ["angry", "happy", "neutral", "sad"]}}})
    clean, items, val = data(24), data(40), data(12)
    train = SequenceData(clean.arrays + items.arrays, np.concatenate([clean.labels, items.labels]))
    strategy = metricaug(metric="stoi", levels="gmm", k=2)
    evaluate = level_evaluator(val, [data(6), data(6)], 16, "cpu")

    def bind():
        strategy.items.bind(n_clean=24, item_levels=np.repeat([1, 2], 20), evaluate=evaluate)

    config = {"tdnn": {"grid": {"conv_channels": [4], "conv_layers": [1], "pool_width": [2], "gru_units": [4]}}}
    entry = get_metricaug_model(family)
    settings = TrainSettings(max_epochs=3, patience=None, batch_size=16, learning_rate=1e-3)
    best, rows, history = search_model(entry, config, {"hidden": [8]}, train, val, settings, seed=3, task=task,
                                       strategy=strategy, bind=bind)
    assert len(rows) == 1 and rows[0]["selected"] and best.epochs_run == 3
    assert [h["epoch"] for h in history] == [1, 2, 3]
    # the gaps' clean side is the loop's own validation WF1 of the previous epoch, and it is the value
    # a separate pass over the clean validation set gives (the one the hook no longer makes)
    assert [h["val_wf1_clean"] for h in history[1:]] == [row["val_f1_weighted"] for row in best.curve[:2]]
    selected = entry.build(best.config)
    selected.load_state_dict(best.state_dict)
    assert evaluate(selected)[0] == best.curve[best.best_epoch - 1]["val_f1_weighted"]
    assert all(h["drawn_level1"] + h["drawn_level2"] == 24 for h in history)
    model = entry.build(best.config)
    model.load_state_dict(best.state_dict)
    assert type(model).__name__ == {"tdnn": "TDNN", "metricaug_head": "MetricAugHead"}[family]
    # same seed, same points: the search is deterministic
    again = search_model(entry, config, {"hidden": [8]}, train, val, settings, seed=3, task=task, strategy=strategy,
                         bind=bind)[0]
    assert all(torch.equal(best.state_dict[k], again.state_dict[k]) for k in best.state_dict)
