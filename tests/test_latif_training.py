"""Latif et al.'s training (sernoise.latif.training): mixup, posterior averaging, schedule, determinism."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from torch import nn

from sernoise.latif.training import (
    LatifSettings, SegmentData, TrainingError, mixup_batch, predict_utterances, train_segments, uar,
    utterance_posteriors,
)

CONTEXT, BINS, CLASSES = 8, 12, 3


class TinySegmentNet(nn.Module):
    """Stand-in for sernoise.latif.models: (batch, context, bins) -> logits, with batch norm and dropout."""

    def __init__(self, n_classes: int = CLASSES, bins: int = BINS):
        super().__init__()
        self.hidden = nn.Linear(bins, 16)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.out(self.drop(torch.relu(self.norm(self.hidden(x.mean(dim=1))))))


class FrozenNet(nn.Module):
    """Outputs that never change: its one parameter enters the loss with zero gradient (Adam leaves it)."""

    def __init__(self, n_classes: int = CLASSES):
        super().__init__()
        self.register_buffer("logits", torch.linspace(0.0, 1.0, n_classes))
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1) + 0.0 * self.weight * x.mean()


def _segments(n_utterances: int, seed: int, shift: float = 1.5) -> SegmentData:
    """Utterances of 1-3 segments; class c raises bins 4c..4c+3 (separable with noise)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_utterances) % CLASSES
    counts = rng.integers(1, 4, n_utterances)
    index = np.repeat(np.arange(n_utterances), counts)
    x = rng.normal(size=(len(index), CONTEXT, BINS)).astype(np.float32)
    for row, utterance in enumerate(index):
        c = labels[utterance]
        x[row, :, 4 * c: 4 * c + 4] += shift
    return SegmentData(x, index, labels)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ mixup


def test_mixup_mixes_labels_with_the_inputs_lambda():
    n = 16
    x = torch.arange(n, dtype=torch.float64).reshape(n, 1, 1).expand(n, 2, 3).clone()  # row i holds i
    y = nn.functional.one_hot(torch.from_numpy(np.random.default_rng(0).integers(0, 4, n)), 4).double()
    for seed in range(5):
        x_mixed, y_mixed, lam = mixup_batch(x, y, 1.0, torch.Generator().manual_seed(seed))
        assert 0.0 <= lam <= 1.0
        assert torch.allclose(y_mixed.sum(dim=1), torch.ones(n, dtype=y_mixed.dtype))
        if min(lam, 1 - lam) < 1e-3:
            continue  # the partner cannot be read back from x
        partner = (x_mixed[:, 0, 0] - lam * torch.arange(n)) / (1 - lam)
        j = partner.round().long()
        assert torch.allclose(partner, j.double(), atol=1e-6) and sorted(j.tolist()) == list(range(n))
        assert torch.allclose(x_mixed, lam * x + (1 - lam) * x[j])
        assert torch.allclose(y_mixed, lam * y + (1 - lam) * y[j])


def test_mixup_is_seeded_and_lambda_follows_beta():
    x, y = torch.randn(8, 4, 5), nn.functional.one_hot(torch.arange(8) % 3, 3)
    first = mixup_batch(x, y, 0.2, torch.Generator().manual_seed(7))
    again = mixup_batch(x, y, 0.2, torch.Generator().manual_seed(7))
    other = mixup_batch(x, y, 0.2, torch.Generator().manual_seed(8))
    assert first[2] == again[2] and torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert other[2] != first[2]
    generator = torch.Generator().manual_seed(0)
    lams = np.array([mixup_batch(x[:2], y[:2], 0.2, generator)[2] for _ in range(3000)])
    # Beta(0.2, 0.2): mean 1/2, variance 1/(4(2α+1)) = 0.179, mostly near 0 or 1
    assert abs(lams.mean() - 0.5) < 0.03 and abs(lams.var() - 1 / 5.6) < 0.02
    assert np.mean((lams < 0.1) | (lams > 0.9)) > 0.5


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan")])
def test_mixup_refuses_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        mixup_batch(torch.zeros(2, 1, 1), torch.eye(2), alpha, torch.Generator())


# ------------------------------------------------------------------------------ posteriors, UAR


def test_utterance_posteriors_average_the_segments():
    probabilities = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.5, 0.5], [0.3, 0.7]])
    ids, mean = utterance_posteriors(probabilities, np.array([2, 0, 2, 2, 5]))
    assert ids.tolist() == [0, 2, 5]
    np.testing.assert_allclose(mean, [[0.4, 0.6], [1.4 / 3, 1.6 / 3], [0.3, 0.7]])
    # utterance 2: two of its three segments vote class 0, but the mean posterior says class 1
    assert mean[1].argmax() == 1
    with pytest.raises(ValueError, match="utterance_index"):
        utterance_posteriors(probabilities, np.array([0, 1]))


def test_uar_is_the_projects_metric():
    assert uar([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx(0.75)
    assert uar([0, 0, 0, 2], [0, 0, 1, 2], 3) == pytest.approx((2 / 3 + 1) / 2)  # absent class 1 has no recall


def test_predict_utterances_in_eval_mode_and_mode_restored():
    torch.manual_seed(0)
    model, data = TinySegmentNet(), _segments(9, 1)
    model.train()
    model.norm.eval()  # a module's own mode is restored, not the parent's
    running = model.norm.running_mean.clone()
    ids, first = predict_utterances(model, data.segments, data.utterance_index, batch_size=4)
    _, second = predict_utterances(model, data.segments, data.utterance_index, batch_size=64)
    assert model.training and model.drop.training and not model.norm.training
    assert torch.equal(model.norm.running_mean, running)
    assert ids.tolist() == list(range(9))
    np.testing.assert_allclose(first, second, atol=1e-6)  # no dropout, batch-independent
    np.testing.assert_allclose(first.sum(axis=1), 1.0, atol=1e-6)


# ------------------------------------------------------------------------------ settings and data


@pytest.mark.parametrize("field, value", [
    ("learning_rate", 0.0), ("batch_size", 0), ("max_epochs", 1.5), ("halve_patience", 0), ("stop_patience", -1),
    ("mixup", "yes"), ("mixup_alpha", -0.2), ("selection_metric", "accuracy"), ("seed", None), ("device", "tpu"),
])
def test_settings_errors_name_the_field(field, value):
    with pytest.raises(TrainingError, match=f"LatifSettings.{field}"):
        LatifSettings(**{field: value})


def test_settings_from_a_config_section():
    settings = LatifSettings.from_mapping({"batch_size": 16, "mixup": True}, seed=3)
    assert (settings.batch_size, settings.mixup, settings.seed, settings.learning_rate) == (16, True, 3, 1e-3)
    with pytest.raises(TrainingError, match=r"latif.training.*unknown setting.*'lr'"):
        LatifSettings.from_mapping({"lr": 0.1})
    with pytest.raises(TrainingError, match="latif.training: LatifSettings.batch_size"):
        LatifSettings.from_mapping({"batch_size": 0})


def test_segment_data_checks():
    x = np.zeros((3, CONTEXT, BINS), np.float32)
    with pytest.raises(TrainingError, match="no segment"):
        SegmentData(x, [0, 0, 2], [0, 1, 2])
    with pytest.raises(TrainingError, match=r"utterance_index must lie in \[0, 2\)"):
        SegmentData(x, [0, 1, 2], [0, 1])
    with pytest.raises(TrainingError, match="segments must be"):
        SegmentData(x[0], [0], [0])
    data = SegmentData(x, [1, 0, 1], [2, 0])
    assert data.segment_labels.tolist() == [0, 2, 0] and len(data) == 3


def test_labels_beyond_the_model_outputs_are_refused():
    train, val = _segments(6, 0), _segments(3, 1)
    with pytest.raises(TrainingError, match="label 2 but the model has 2 outputs"):
        train_segments(lambda: TinySegmentNet(n_classes=2), train, val, LatifSettings(max_epochs=1))


# ------------------------------------------------------------------------------ training


def test_learns_separable_segments_deterministically(caplog):
    train, val = _segments(60, 0), _segments(30, 1)
    settings = LatifSettings(batch_size=16, max_epochs=12, seed=5, learning_rate=3e-3)
    with caplog.at_level(logging.INFO, logger="sernoise.latif"):
        result = train_segments(lambda: TinySegmentNet(), train, val, settings)
    assert sum("epoch" in r.getMessage() and "val_uar" in r.getMessage() for r in caplog.records) == result.epochs_run
    assert result.best_val_uar > 0.8  # chance: 1/3
    assert result.n_classes == CLASSES and result.selection_metric == "uar"
    rows = result.history
    assert [r["epoch"] for r in rows] == list(range(1, result.epochs_run + 1))
    assert {"train_loss", "val_loss", "val_uar", "learning_rate", "selected"} <= set(rows[0])
    assert [r["epoch"] for r in rows if r["selected"]] == [result.best_epoch]
    assert rows[result.best_epoch - 1]["val_uar"] == result.best_val_uar == max(r["val_uar"] for r in rows)
    # the returned model holds the best epoch's weights, in eval mode
    assert not result.model.training
    assert all(torch.equal(v, result.state_dict[k]) for k, v in result.model.state_dict().items())
    ids, posteriors = predict_utterances(result.model, val.segments, val.utterance_index)
    assert uar(val.labels[ids], posteriors.argmax(axis=1), CLASSES) == pytest.approx(result.best_val_uar)

    again = train_segments(lambda: TinySegmentNet(), train, val, settings)
    assert _bytes(again.state_dict) == _bytes(result.state_dict)
    assert again.history == result.history
    other = train_segments(lambda: TinySegmentNet(), train, val,
                           LatifSettings(batch_size=16, max_epochs=12, seed=6, learning_rate=3e-3))
    assert _bytes(other.state_dict) != _bytes(result.state_dict)


def test_mixup_training_is_seeded_and_differs_from_plain():
    train, val = _segments(30, 2), _segments(12, 3)
    plain = LatifSettings(batch_size=8, max_epochs=3, seed=1)
    mixed = LatifSettings(batch_size=8, max_epochs=3, seed=1, mixup=True, mixup_alpha=0.4)
    first = train_segments(lambda: TinySegmentNet(), train, val, mixed)
    again = train_segments(lambda: TinySegmentNet(), train, val, mixed)
    base = train_segments(lambda: TinySegmentNet(), train, val, plain)
    assert _bytes(first.state_dict) == _bytes(again.state_dict)
    assert first.history == again.history
    assert _bytes(first.state_dict) != _bytes(base.state_dict)


def test_learning_rate_halves_after_the_patience_and_training_stops_after_twenty():
    train, val = _segments(6, 0), _segments(3, 1)
    result = train_segments(lambda: FrozenNet(), train, val, LatifSettings(batch_size=4, max_epochs=100))
    # nothing ever improves on epoch 1: halvings after 5, 10, 15 epochs without improvement, stop after 20
    assert result.best_epoch == 1 and result.epochs_run == 21 and result.stopped_early
    rates = [r["learning_rate"] for r in result.history]
    assert rates == [1e-3] * 6 + [5e-4] * 5 + [2.5e-4] * 5 + [1.25e-4] * 5


def test_custom_patiences_and_the_max_epochs_cap():
    train, val = _segments(6, 0), _segments(3, 1)
    short = train_segments(lambda: FrozenNet(), train, val,
                           LatifSettings(batch_size=4, halve_patience=2, stop_patience=5))
    assert short.epochs_run == 6 and short.stopped_early
    assert [r["learning_rate"] for r in short.history] == [1e-3] * 3 + [5e-4] * 2 + [2.5e-4]
    capped = train_segments(lambda: FrozenNet(), train, val, LatifSettings(batch_size=4, max_epochs=4))
    assert capped.epochs_run == 4 and not capped.stopped_early


class ScriptedNet(nn.Module):
    """Validation outputs scripted per epoch: logits ``quality[epoch] * x.mean(time)``.

    The segments of class c hold 1 in bin c, so any positive quality predicts every class right
    (UAR 1, a tie) and a higher one lowers the validation loss: an epoch improves exactly when its
    quality beats the best so far.  The shared loop calls ``train()`` once per epoch.
    """

    def __init__(self, quality):
        super().__init__()
        self.quality, self.epoch = list(quality), 0
        self.weight = nn.Parameter(torch.ones(1))

    def train(self, mode: bool = True):
        self.epoch += int(mode)
        return super().train(mode)

    def forward(self, x):
        scale = 0.0 if self.training else self.quality[self.epoch - 1] if self.epoch else 1.0
        return scale * x.mean(dim=1) + 0.0 * self.weight


def test_an_improvement_restarts_both_counts():
    x = np.tile(np.eye(CLASSES, dtype=np.float32)[:, None, :], (1, CONTEXT, 1))
    data = SegmentData(x, np.arange(CLASSES), np.arange(CLASSES))
    quality = [1.0, 0.5, 0.5, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    result = train_segments(lambda: ScriptedNet(quality), data, data,
                            LatifSettings(batch_size=2, halve_patience=2, stop_patience=3, max_epochs=10))
    assert [r["val_uar"] for r in result.history] == [1.0] * 7
    # epochs 2-3 do not improve (halving after 3), epoch 4 does and restarts both counts:
    # halving after 6 (2 epochs since 4), stop after 7 (3 epochs since 4)
    assert result.best_epoch == 4 and result.epochs_run == 7 and result.stopped_early
    assert [r["learning_rate"] for r in result.history] == [1e-3] * 3 + [5e-4] * 3 + [2.5e-4]


def test_a_one_segment_batch_trains_with_batch_norm():
    rng = np.random.default_rng(0)
    train = SegmentData(rng.normal(size=(9, CONTEXT, BINS)), np.arange(9) % 3, [0, 1, 2])
    val = _segments(3, 1)
    assert len(train) % 8 == 1
    result = train_segments(lambda: TinySegmentNet(), train, val, LatifSettings(batch_size=8, max_epochs=2))
    assert result.epochs_run == 2


def test_empty_sets_are_refused():
    val = _segments(3, 1)
    empty = SegmentData(np.zeros((0, CONTEXT, BINS), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    with pytest.raises(TrainingError, match="empty"):
        train_segments(lambda: TinySegmentNet(), empty, val, LatifSettings())
