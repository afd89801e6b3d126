"""White-box FGSM and BIM on spectrogram segments (sernoise.latif.adversarial)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional

from sernoise.latif.adversarial import AttackError, adversarial_predictions, bim, fgsm
from sernoise.latif.training import LatifSettings, SegmentData, predict_utterances, train_segments, uar

CONTEXT, BINS, CLASSES = 8, 12, 3
EPS = 0.08
TOLERANCE = 1e-6


class TinySegmentNet(nn.Module):
    """Stand-in for sernoise.latif.models: (batch, context, bins) -> logits, with batch norm and dropout."""

    def __init__(self, n_classes: int = CLASSES, bins: int = BINS):
        super().__init__()
        self.hidden = nn.Linear(bins, 32)
        self.norm = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(32, n_classes)

    def forward(self, x):
        return self.out(self.drop(torch.tanh(self.norm(self.hidden(x.mean(dim=1))))))


def _segments(n_utterances: int, seed: int, shift: float = 1.0) -> SegmentData:
    rng = np.random.default_rng(seed)
    labels = np.arange(n_utterances) % CLASSES
    index = np.repeat(np.arange(n_utterances), rng.integers(1, 4, n_utterances))
    x = rng.normal(size=(len(index), CONTEXT, BINS)).astype(np.float32)
    for row, utterance in enumerate(index):
        c = labels[utterance]
        x[row, :, 4 * c: 4 * c + 4] += shift
    return SegmentData(x, index, labels)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    val = _segments(30, 1)
    result = train_segments(lambda: TinySegmentNet(), _segments(60, 0), val,
                            LatifSettings(batch_size=16, max_epochs=10, learning_rate=3e-3, seed=0))
    assert result.best_val_uar > 0.7
    return result.model, val


def _batch(data: SegmentData):
    return torch.from_numpy(data.segments), torch.from_numpy(data.segment_labels)


def _loss(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float(functional.cross_entropy(model(x), y, reduction="sum"))


def test_fgsm_stays_in_the_ball_and_raises_the_loss(trained):
    model, val = trained
    x, y = _batch(val)
    adversarial = fgsm(model, x, y, eps=EPS)
    delta = adversarial - x
    assert float(delta.abs().max()) <= EPS + TOLERANCE
    assert float((delta.abs() - EPS).abs().max()) < 1e-5  # a sign step: every entry moves by ε (non-zero gradients)
    assert _loss(model, adversarial, y) > _loss(model, x, y)
    assert not adversarial.requires_grad
    assert fgsm(model, x, y, eps=0.0).equal(x)


def test_fgsm_follows_the_analytic_gradient_of_a_linear_model():
    torch.manual_seed(3)
    linear = nn.Linear(CONTEXT * BINS, 2)
    model = nn.Sequential(nn.Flatten(), linear)
    x, y = torch.randn(5, CONTEXT, BINS), torch.tensor([0, 1, 1, 1, 0])
    with torch.no_grad():  # d CE / d x = W^T (softmax - onehot), row by row
        residual = torch.softmax(model(x), dim=1) - functional.one_hot(y, 2).float()
        gradient = (residual @ linear.weight).reshape(x.shape)
    corner = x + 0.3 * gradient.sign()
    assert fgsm(model, x, y, eps=0.3).equal(corner)
    # two classes: the gradient is (p1 - y)(w1 - w0), whose sign never changes, so FGSM's corner
    # maximises the loss over the ball and BIM walks to the same corner
    assert torch.allclose(bim(model, x, y, eps=0.3, iterations=6), corner, atol=1e-6)


def test_bim_is_projected_and_at_least_as_strong_as_fgsm(trained):
    model, val = trained
    x, y = _batch(val)
    huge_steps = bim(model, x, y, eps=EPS, step=1.0, iterations=25)  # every step leaves the ball: projection
    assert float((huge_steps - x).abs().max()) <= EPS + TOLERANCE
    one = _loss(model, fgsm(model, x, y, eps=EPS), y)
    many = _loss(model, bim(model, x, y, eps=EPS), y)
    assert many >= one - 1e-4  # a near-linear model in a small ball: FGSM's one step is nearly optimal
    # a larger ball, where the model bends: following the gradient pays clearly
    assert _loss(model, bim(model, x, y, eps=0.5), y) > 1.05 * _loss(model, fgsm(model, x, y, eps=0.5), y)
    assert _loss(model, bim(model, x, y, eps=4 * EPS), y) > many  # a larger ball, a larger loss


def test_no_clamping_to_an_image_range(trained):
    model, val = trained
    x, y = _batch(val)
    x = x * 3.0 - 1.0  # plenty of values outside [0, 1]
    for adversarial in (fgsm(model, x, y, eps=EPS), bim(model, x, y, eps=EPS)):
        assert float(adversarial.min()) < -1.0 and float(adversarial.max()) > 2.0
        assert float((adversarial - x).abs().max()) <= EPS + TOLERANCE


def test_attacks_freeze_the_model_and_restore_its_modes(trained):
    model, val = trained
    x, y = _batch(val)
    model.zero_grad(set_to_none=True)
    model.train()
    model.drop.eval()  # a module's own mode survives
    try:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        first = bim(model, x, y, eps=EPS)
        second = bim(model, x, y, eps=EPS)
        assert first.equal(second)  # eval mode: no dropout, so the attack is deterministic
        assert model.training and model.norm.training and not model.drop.training
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # batch-norm statistics kept
        assert all(p.grad is None for p in model.parameters())  # gradients reach the input only
    finally:
        model.eval()


def test_a_row_is_attacked_independently_of_its_batch(trained):
    model, val = trained
    x, y = _batch(val)
    whole = fgsm(model, x, y, eps=EPS)
    part = fgsm(model, x[:5], y[:5], eps=EPS)
    assert torch.allclose(whole[:5], part, atol=1e-6)


def test_adversarial_predictions_average_attacked_segments(trained):
    model, val = trained
    ids, clean = predict_utterances(model, val.segments, val.utterance_index)
    same_ids, through = adversarial_predictions(model, val.segments, val.utterance_index, val.labels, "clean",
                                                batch_size=7)
    assert np.array_equal(ids, same_ids)
    np.testing.assert_allclose(through, clean, atol=1e-6)
    scores = {}
    for attack, options in (("fgsm", {"eps": 0.5}), ("bim", {"eps": 0.5, "iterations": 5})):
        attacked_ids, posteriors = adversarial_predictions(model, val.segments, val.utterance_index, val.labels,
                                                           attack, batch_size=7, **options)
        assert np.array_equal(attacked_ids, ids)
        np.testing.assert_allclose(posteriors.sum(axis=1), 1.0, atol=1e-6)
        # by hand: attack all segments in one batch, average per utterance
        x, y = _batch(val)
        attack_fn = fgsm if attack == "fgsm" else bim
        with torch.no_grad():
            probabilities = torch.softmax(model(attack_fn(model, x, y, **options)), dim=1).numpy()
        for k, utterance in enumerate(ids):
            np.testing.assert_allclose(posteriors[k], probabilities[val.utterance_index == utterance].mean(axis=0),
                                       atol=1e-5)
        scores[attack] = uar(val.labels[ids], posteriors.argmax(axis=1), CLASSES)
    clean_uar = uar(val.labels[ids], clean.argmax(axis=1), CLASSES)
    assert scores["bim"] <= scores["fgsm"] < clean_uar


def test_bad_attacks_and_options_are_refused(trained):
    model, val = trained
    x, y = _batch(val)
    args = (model, val.segments, val.utterance_index, val.labels)
    with pytest.raises(AttackError, match="unknown attack 'pgd'"):
        adversarial_predictions(*args, "pgd")
    with pytest.raises(AttackError, match=r"'fgsm': unknown option\(s\) \['step'\]"):
        adversarial_predictions(*args, "fgsm", step=0.1)
    with pytest.raises(AttackError, match="eps"):
        fgsm(model, x, y, eps=-0.1)
    with pytest.raises(AttackError, match="step"):
        bim(model, x, y, step=0.0)
    with pytest.raises(AttackError, match="iterations"):
        bim(model, x, y, iterations=0)
    with pytest.raises(AttackError, match="labels"):
        fgsm(model, x, y[:3])


def test_benchmark_runs_with_the_stand_in():
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "latif_attack.py"), "--stand-in", "--segments", "2",
         "--batch-size", "2", "--iterations", "2", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("stand-in CNN-LSTM"))
    clean, fgsm_ms, fgsm_ratio, bim_ms, bim_ratio = (float(v) for v in row.split()[-5:])
    # timings on a shared machine are noisy: only the table's consistency is checked
    assert min(clean, fgsm_ms, bim_ms) > 0
    assert fgsm_ratio == pytest.approx(fgsm_ms / clean, abs=0.1) and bim_ratio == pytest.approx(bim_ms / clean, abs=0.1)
