"""Training strategies and the hooks of the shared epoch loop (sernoise.training.strategies, training.loop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sernoise.models.tdnn import TDNN, TDNNConfig
from sernoise.seeds import rng_for
from sernoise.tasks import get_task, task_from_entry
from sernoise.training import ednn as ednn_training
from sernoise.training.loop import (
    SequenceData, TrainingError, TrainSettings, grid_points, improves, run_epochs, train_one,
)
from sernoise.training.strategies import (
    BatchContext, EpochItems, Strategy, StrategyError, StrategyRun, frozen, get_strategy, mixup_transform,
)

SMALL = TDNNConfig(conv_channels=8, conv_width=2, conv_layers=2, pool_width=2, gru_layers=1, gru_units=8,
                   dense_layers=1)
SETTINGS = TrainSettings(max_epochs=3, patience=3, batch_size=8, learning_rate=3e-3)


def _data(n: int, seed: int, targets=None) -> SequenceData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    arrays = []
    for label in labels:
        x = rng.normal(size=(int(rng.integers(6, 20)), 40)).astype(np.float32)
        x[:, 10 * label: 10 * label + 10] += 1.0
        arrays.append(x)
    return SequenceData(arrays, labels if targets is None else targets(labels, rng))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_explicit_standard_strategy_is_bit_identical_to_none():
    train, val = _data(30, 0), _data(10, 1)
    plain = train_one(SMALL, train, val, SETTINGS, seed=4)
    standard = train_one(SMALL, train, val, SETTINGS, seed=4, strategy=get_strategy("standard"),
                         task=get_task("activation"))
    assert _same(plain.state_dict, standard.state_dict)
    assert plain.curve == standard.curve and plain.selection_metric == "loss"
    assert plain.best_val_score == plain.best_val_loss
    mixed = train_one(SMALL, train, val, SETTINGS, seed=4, strategy=get_strategy("mixup", {"alpha": 0.4}))
    assert not _same(plain.state_dict, mixed.state_dict)
    again = train_one(SMALL, train, val, SETTINGS, seed=4, strategy=get_strategy("mixup", {"alpha": 0.4}))
    assert _same(mixed.state_dict, again.state_dict)  # mixup draws are seeded


def _recording(items):
    seen = []

    def transform(ctx):
        seen.append((ctx.epoch, ctx.index.tolist()))
        return ctx.inputs, ctx.targets

    return Strategy("recording", items=items, transform=transform), seen


def test_items_per_epoch_restrict_what_is_seen():
    train, val = _data(30, 0), _data(10, 1)
    calls = []

    def items(ctx):
        calls.append((ctx.epoch, ctx.n_train, len(ctx.curve)))
        chosen = ctx.rng.choice(ctx.n_train, size=12, replace=False)
        return np.concatenate([chosen, chosen[:2]])  # two examples twice
    strategy, seen = _recording(items)
    train_one(SMALL, train, val, SETTINGS, seed=2, strategy=strategy)
    assert calls == [(1, 30, 0), (2, 30, 1), (3, 30, 2)]
    for epoch in (1, 2, 3):
        rows = [i for e, index in seen if e == epoch for i in index]
        chosen = rng_for(2, "strategy-items", epoch).choice(30, size=12, replace=False)
        assert sorted(rows) == sorted(chosen.tolist() + chosen[:2].tolist())


def test_epoch_weights_leave_out_zero_weight_examples_and_weight_the_loss():
    train, val = _data(30, 0), _data(10, 1)
    weights = np.zeros(30, np.float32)
    weights[:10] = 2.0
    strategy, seen = _recording(lambda ctx: EpochItems(weights=weights))
    result = train_one(SMALL, train, val, SETTINGS, seed=2, strategy=strategy)
    assert {i for _, index in seen for i in index} == set(range(10))
    # equal weights give the unweighted mean loss: the same training as indices 0..9 alone
    strategy, _ = _recording(lambda ctx: np.arange(10))
    assert _same(result.state_dict, train_one(SMALL, train, val, SETTINGS, seed=2, strategy=strategy).state_dict)
    with pytest.raises(StrategyError, match="weights must be 30"):
        train_one(SMALL, train, val, SETTINGS, seed=2, strategy=Strategy(items=lambda ctx: EpochItems(weights=[1.0])))
    with pytest.raises(TrainingError, match="indices in"):
        train_one(SMALL, train, val, SETTINGS, seed=2, strategy=Strategy(items=lambda ctx: np.array([0, 30])))


def test_extra_loss_sees_the_teacher_and_changes_gradients():
    torch.manual_seed(0)
    teacher_model = TDNN(SMALL)
    before = {k: v.clone() for k, v in teacher_model.state_dict().items()}
    teacher = frozen(teacher_model)
    seen = []

    def distil(ctx):
        target = teacher(*ctx.inputs)
        seen.append((ctx.outputs.shape, target.requires_grad))
        return 10.0 * torch.mean((ctx.outputs - target) ** 2)

    train = _data(16, 0)
    x = torch.from_numpy(np.stack([a[:6] for a in train.arrays[:4]]))
    n = torch.full((4,), 6)
    y = torch.from_numpy(train.labels[:4])
    grads = []
    for strategy in (Strategy(), Strategy("distil", extra_loss=distil)):
        torch.manual_seed(1)
        student = TDNN(SMALL)
        run = StrategyRun(strategy, 0, len(train), torch.nn.CrossEntropyLoss(), 3)
        run.epoch_items(1, student, [])
        run.batch_loss(student, student, np.arange(4), (x, n), y).backward()
        grads.append(student.output.weight.grad.clone())
    assert seen == [(torch.Size([4, 3]), False)]
    assert not torch.equal(grads[0], grads[1])
    result = train_one(SMALL, train, _data(8, 1), SETTINGS, seed=0, strategy=Strategy("distil", extra_loss=distil))
    assert len(seen) > 1 and result.epochs_run == 3
    assert _same(before, teacher_model.state_dict())  # the teacher never learns


def test_mixup_makes_convex_combinations():
    x = torch.arange(4 * 5 * 2, dtype=torch.float32).reshape(4, 5, 2)
    lengths = torch.tensor([5, 3, 2, 4])
    y = torch.tensor([0, 1, 2, 1])
    ctx = BatchContext(epoch=2, batch=3, index=np.arange(4), inputs=(x, lengths), targets=y, model=None,
                       n_outputs=3, seed=9)
    (mixed, longest), soft = mixup_transform(0.4)(ctx)
    rng = rng_for(9, "strategy-batch", 2, 3)
    lam = rng.beta(0.4, 0.4)
    perm = rng.permutation(4)
    assert 0 <= lam <= 1
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    assert torch.equal(longest, torch.maximum(lengths, lengths[perm]))
    onehot = torch.eye(3)[y]
    assert torch.allclose(soft, lam * onehot + (1 - lam) * onehot[perm])
    assert torch.allclose(soft.sum(dim=1), torch.ones(4))
    floats = torch.tensor([[0.5], [-1.0], [0.0], [1.0]])
    ctx = BatchContext(2, 3, np.arange(4), (x, lengths), floats, None, 1, 9)
    _, mixed_targets = mixup_transform(0.4)(ctx)
    assert torch.allclose(mixed_targets, lam * floats + (1 - lam) * floats[perm])  # regression targets too
    with pytest.raises(StrategyError, match="alpha must be > 0"):
        get_strategy("mixup", {"alpha": 0})


def test_selection_by_uar_picks_the_best_validation_uar():
    scores = [{"loss": 1.0, "uar": 0.4}, {"loss": 0.9, "uar": 0.7}, {"loss": 0.8, "uar": 0.5}, {"loss": 0.7, "uar": 0.6}]

    def fit(select):
        it, snaps = iter(scores), iter(range(10))
        return run_epochs(torch.nn.Linear(1, 1), lambda index: torch.tensor(0.1), lambda m: next(it),
                          lambda: next(snaps), lengths=np.ones(4, np.int64), batch_size=2,
                          rng=np.random.default_rng(0), max_epochs=4, patience=None, select=select)

    by_uar, by_loss = fit("uar"), fit("loss")
    assert (by_uar["best_epoch"], by_uar["best_val_score"], by_uar["best_val_loss"]) == (2, 0.7, 0.9)
    assert (by_loss["best_epoch"], by_loss["best_val_score"]) == (4, 0.7)
    assert by_uar["curve"][1] == {"epoch": 2, "train_loss": pytest.approx(0.1), "val_loss": 0.9, "val_uar": 0.7}
    with pytest.raises(TrainingError, match="selection metric 'ccc' is not among"):
        fit("ccc")

    train, val = _data(30, 0), _data(12, 1)
    result = train_one(SMALL, train, val, TrainSettings(max_epochs=5, patience=5, batch_size=8, learning_rate=3e-3),
                       seed=3, strategy=Strategy("by-f1", selection_metric="f1_weighted"))
    f1 = [row["val_f1_weighted"] for row in result.curve]
    # The best F1, an exact tie (here F1 1.0 twice) going to the lower validation loss.
    best = min((row for row in result.curve if row["val_f1_weighted"] == max(f1)), key=lambda row: row["val_loss"])
    assert result.best_epoch == best["epoch"] and result.best_val_score == max(f1)


def _scripted_selection(scores, select, patience=None, min_epochs=1):
    """run_epochs whose epoch k has the validation ``scores[k - 1]``; the snapshot is the epoch's number."""
    epoch = iter(range(1, len(scores) + 1))
    seen = []

    def evaluate(model):
        seen.append(next(epoch))
        return scores[seen[-1] - 1]

    return run_epochs(torch.nn.Linear(1, 1), lambda index: torch.tensor(0.1), evaluate,
                      lambda: seen[-1], lengths=np.ones(4, np.int64), batch_size=2, rng=np.random.default_rng(0),
                      max_epochs=len(scores), patience=patience, select=select, min_epochs=min_epochs)


def test_selection_rule_breaks_exact_uar_ties_by_the_lower_validation_loss():
    assert improves("uar", {"uar": 0.5, "loss": 0.8}, {"uar": 0.5, "loss": 0.9})
    assert not improves("uar", {"uar": 0.5, "loss": 0.9}, {"uar": 0.5, "loss": 0.9})  # full tie: keep the first
    assert not improves("uar", {"uar": 0.5, "loss": 0.1}, {"uar": 0.5000001, "loss": 0.9})  # only exact ties
    assert improves("uar", {"uar": 0.6, "loss": 2.0}, {"uar": 0.5, "loss": 0.9})  # UAR first, loss never overrides
    assert not improves("uar", {"uar": float("nan"), "loss": 0.1}, {"uar": 0.5, "loss": 0.9})
    assert improves("loss", {"loss": 0.8, "uar": 0.1}, {"loss": 0.9, "uar": 0.9})
    assert not improves("loss", {"loss": 0.9, "uar": 0.9}, {"loss": 0.9, "uar": 0.1})  # loss: ties keep the first
    assert improves("uar", {"uar": 1 / 3, "loss": 1.1}, None)

    # Chance-level epochs (one class predicted: UAR exactly 1/3) whose loss still falls: the last of
    # them is kept; a later epoch of equal UAR and higher loss is not.
    third = 1 / 3
    scores = [{"loss": 1.10, "uar": third}, {"loss": 1.05, "uar": third}, {"loss": 1.00, "uar": third},
              {"loss": 1.02, "uar": third}, {"loss": 0.99, "uar": 0.5}, {"loss": 0.95, "uar": 0.5},
              {"loss": 0.97, "uar": 0.5}]
    fit = _scripted_selection(scores, "uar")
    assert (fit["best_epoch"], fit["state_dict"], fit["best_val_score"], fit["best_val_loss"]) == (6, 6, 0.5, 0.95)
    no_tie_break_would_keep = 5  # the first epoch reaching UAR 0.5
    assert fit["best_epoch"] != no_tie_break_would_keep
    # Patience runs on the same rule: the tie-broken improvements at epochs 2-3 restart the wait, so
    # patience 2 stops at epoch 5, two epochs after epoch 3 (on UAR alone: at epoch 3, epoch 1 kept).
    stopped = _scripted_selection(scores[:4] + [{"loss": 1.2, "uar": third}] * 3, "uar", patience=2)
    assert (stopped["best_epoch"], stopped["epochs_run"], stopped["stopped_early"]) == (3, 5, True)


def test_grid_search_selects_the_point_by_the_same_rule():
    from types import SimpleNamespace

    from sernoise.training.loop import search_grid

    outcomes = {0: (0.9, 0.6), 1: (0.7, 0.6), 2: (0.5, 0.55), 3: (0.7, 0.6)}  # point -> (best val loss, best UAR)

    def train_point(config, tag):
        loss, score = outcomes[config.point]
        return SimpleNamespace(config=config, best_epoch=1, best_val_loss=loss, best_val_uar=score,
                               best_val_score=score, epochs_run=1, seconds=0.0)

    points = [SimpleNamespace(point=i, as_dict=lambda: {}) for i in outcomes]
    best, rows = search_grid(points, ["point"], train_point, select="uar")
    # Points 0, 1 and 3 tie on UAR 0.6: the lower loss of 1 wins over 0, and 3 (same loss) does not displace 1.
    assert best.config.point == 1 and [r["selected"] for r in rows] == [False, True, False, False]
    best, rows = search_grid(points, ["point"], train_point, select="loss")
    assert best.config.point == 2


def test_dimensional_and_categorical_tasks_size_the_model():
    avd = task_from_entry("avd", {"kind": "dimensional"})
    targets = lambda labels, rng: np.stack([labels - 1.0, rng.uniform(-1, 1, len(labels)), 0.5 * (labels - 1)], 1)
    train, val = _data(30, 0, targets), _data(12, 1, targets)
    assert train.labels.dtype == np.float32 and train.labels.shape == (30, 3)
    result = train_one(TDNNConfig(**{**SMALL.as_dict(), "n_classes": 3}), train, val, SETTINGS, seed=1, task=avd,
                       strategy=Strategy(selection_metric="ccc"))
    assert np.isnan(result.best_val_uar) and np.isfinite(result.best_val_score)
    assert {"val_ccc", "val_ccc_activation", "val_ccc_valence", "val_ccc_dominance"} <= set(result.curve[0])
    with pytest.raises(TrainingError, match="selection metric 'uar' does not apply"):
        train_one(SMALL, train, val, SETTINGS, seed=1, task=avd, strategy=Strategy(selection_metric="uar"))
    with pytest.raises(TrainingError, match="class_weighting applies to classification tasks only"):
        train_one(SMALL, train, val, TrainSettings(max_epochs=1, class_weighting=True), seed=1, task=avd)
    emotion4 = task_from_entry("e4", {"kind": "categorical", "classes": ["a", "h", "n", "s"], "mapping": {}})
    assert {p.n_classes for p in grid_points({"conv_channels": [8]}, emotion4.output_size)} == {4}
    assert {p.n_classes for p in ednn_training.grid_points({}, emotion4.output_size)} == {4}
    with pytest.raises(TrainingError, match="needs 4 model outputs, the model has 3"):
        train_one(SMALL, _data(8, 0), _data(4, 1), SETTINGS, seed=1, task=emotion4)


def test_strategy_registry_errors():
    # The stage modules (sernoise.ctsl, sernoise.metricaug) add names when another test imported them.
    with pytest.raises(StrategyError, match=r"unknown training strategy 'nope'; known: \[.*'mixup', 'standard'"):
        get_strategy("nope")
    with pytest.raises(StrategyError, match="bad options"):
        get_strategy("mixup", {"beta": 1})
    with pytest.raises(StrategyError, match="unknown selection metric 'auc'"):
        get_strategy("standard", {"selection_metric": "auc"})
