"""Leem et al. (issue 14): the CCC, transfer and contrastive losses, the strategies, the epoch choice,
the target noise and the Welch table (sernoise.ctsl), on hand-worked cases."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

from sernoise.ctsl.losses import ccc_sum_loss, contrastive_loss, label_margin, negative_mask, transfer_loss
from sernoise.ctsl.selection import evaluation_groups, separated_best_epochs
from sernoise.ctsl.strategies import VARIANTS, ctsl, head_parameters, tap
from sernoise.ctsl.table import build_cells, condition_order, welch_greater
from sernoise.ctsl.target_noise import TargetNoise, TargetNoiseError
from sernoise.models.tdnn import TDNN, TDNNConfig
from sernoise.training.strategies import StrategyError, StrategyRun, get_strategy, known_strategies

SMALL = TDNNConfig(conv_channels=4, conv_width=2, conv_layers=1, pool_width=2, gru_layers=1, gru_units=6,
                   dense_layers=1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# ------------------------------------------------------------------ CCC loss (Eq. 1)

def test_ccc_sum_loss_hand_worked():
    # column 1: t = (0, 2), p = (1, 3): means 1, 2; variances 1, 1; covariance 1 -> CCC = 2/(1+1+1) = 2/3
    # column 2: identical -> CCC = 1.  Eq. 1 sums 1 - CCC: 1/3 + 0.
    true = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    predicted = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    assert float(ccc_sum_loss(predicted, true)) == pytest.approx(1 / 3, abs=1e-6)


def test_ccc_sum_loss_is_zero_at_perfect_agreement_and_sums_attributes():
    true = torch.tensor([[1.0, -1.0, 0.5], [2.0, 0.0, 0.1], [3.0, 1.0, -0.4]])
    assert float(ccc_sum_loss(true.clone(), true)) == pytest.approx(0.0, abs=1e-6)
    constant = torch.zeros_like(true)  # CCC 0 on each of 3 attributes: summed, not averaged
    assert float(ccc_sum_loss(constant, true)) == pytest.approx(3.0, abs=1e-6)


# ------------------------------------------------------------------ transfer loss (Eq. 2)

def test_transfer_loss_is_the_mean_of_per_item_rmse():
    teacher = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    student = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    # item 0: sqrt((9 + 16) / 2); item 1: 0
    assert float(transfer_loss(teacher, student)) == pytest.approx(math.sqrt(12.5) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        transfer_loss(teacher, student[:1])


# ------------------------------------------------------------------ InfoNCE (Eq. 3)

def test_negative_selection_categorical_excludes_self_and_same_class():
    mask = negative_mask(torch.tensor([0, 0, 1, 2]))
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_negative_selection_dimensional_uses_half_a_rating_point():
    margin = label_margin((1.0, 7.0))  # MSP-Podcast 1-7 rescaled onto [-1, 1]: 0.5 points = 1/6
    assert margin == pytest.approx(1 / 6)
    # (arousal, valence) in target units: item 1 is 0.6 points from item 0 in valence only,
    # item 2 is 0.3 points away in both (not a negative), item 3 is 3 points away in arousal
    points = torch.tensor([[4.0, 4.0], [4.0, 4.6], [4.3, 4.3], [7.0, 4.0]])
    targets = -1 + (points - 1) * 2 / 6
    mask = negative_mask(targets, margin)
    expected = torch.tensor([[0, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1], [1, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_contrastive_loss_hand_worked():
    # positives: the teacher embeds each clean copy exactly as the student embeds the noisy one (cos 1)
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    teacher = student * 2.0  # cosine ignores the norm
    negatives = negative_mask(torch.tensor([0, 0, 1]))
    tau = 0.5  # (the default 0.1 makes these terms ~1e-5, below float32's resolution of the sum)
    # row 0: negative item 2 (cos -1); row 1: negative item 2 (cos 0); row 2: negatives 0 (cos -1), 1 (cos 0):
    # -log(e^(1/tau) / (e^(1/tau) + sum_neg e^(cos/tau))) = log(1 + sum_neg e^((cos - 1)/tau))
    rows = [math.log(1 + math.exp(-4)), math.log(1 + math.exp(-2)), math.log(1 + math.exp(-4) + math.exp(-2))]
    assert float(contrastive_loss(teacher, student, negatives, tau)) == pytest.approx(np.mean(rows), rel=1e-5)


def test_contrastive_loss_leaves_out_rows_without_negatives():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], requires_grad=True)
    teacher = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    # no row has a negative (one class): the loss is 0, and backward works and adds nothing
    loss = contrastive_loss(teacher, student, negative_mask(torch.tensor([0, 0, 0])))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(student.grad, torch.zeros_like(student))
    # row 1 without negatives (as a rated item can be): the mean runs over rows 0 and 2 only
    mask = torch.tensor([[0, 1, 1], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    tau = 0.5
    cos = {(0, 1): 0.0, (0, 2): 0.6, (2, 0): 0.6, (2, 1): 0.8}
    positive = {0: 0.0, 2: 1.0}  # cos(T_i, S_i)
    rows = [-(positive[i] / tau) + math.log(math.exp(positive[i] / tau) + sum(
        math.exp(c / tau) for (a, _), c in cos.items() if a == i)) for i in (0, 2)]
    assert float(contrastive_loss(teacher, student.detach(), mask, tau)) == pytest.approx(np.mean(rows), rel=1e-5)


# ------------------------------------------------------------------ strategies

def _batch(n=6, frames=12, seed=0):
    rng = np.random.default_rng(seed)
    clean = torch.from_numpy(rng.normal(size=(n, frames, 40)).astype(np.float32))
    noisy = clean + torch.from_numpy(rng.normal(size=clean.shape).astype(np.float32))
    lengths = torch.full((n,), frames)
    return (clean, lengths), (noisy, lengths), torch.tensor([0, 1, 2, 0, 1, 2])


def test_all_six_strategies_are_registered_with_the_papers_weights():
    for variant in VARIANTS:
        assert f"ctsl_{variant}" in known_strategies()
    full = get_strategy("ctsl_rm_tl_cl")
    assert full.options["lambda_tl"] == 100.0 and full.options["lambda_cl"] == 10.0 and full.options["tau"] == 0.1
    assert get_strategy("ctsl_rh").options["trains"] == "head"
    assert get_strategy("ctsl_original").options["trains"] == "nothing"
    assert get_strategy("ctsl_rm_tl", {"lambda_tl": 5}).options["lambda_tl"] == 5.0
    with pytest.raises(StrategyError, match="lambda"):
        get_strategy("ctsl_rm_cl", {"lambda_cl": -1})


@pytest.mark.parametrize("variant", ["rm_tl", "rm_cl", "rm_tl_cl"])
def test_teacher_student_gradient_reaches_only_the_student(variant):
    torch.manual_seed(0)
    teacher = TDNN(SMALL)
    student = copy.deepcopy(teacher)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    clean, noisy, labels = _batch()
    strategy = ctsl(variant, teacher=teacher, views=lambda ctx: (clean, noisy))
    run = StrategyRun(strategy, seed=1, n_train=6, criterion=torch.nn.CrossEntropyLoss(), n_outputs=3)
    run.epoch = 1
    tapped = tap(student)
    loss = run.batch_loss(tapped, tapped, np.arange(6), clean, labels)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in student.convs.parameters())
    # the extra loss is there: larger than the task loss alone on the same noisy batch
    plain = torch.nn.functional.cross_entropy(student(*noisy), labels)
    assert float(loss.detach()) > float(plain.detach())


def test_transform_feeds_the_noisy_copy_and_rh_head_parameters():
    clean, noisy, labels = _batch()
    seen = {}
    model = TDNN(SMALL)

    def forward(x, lengths):
        seen["x"] = x
        return model(x, lengths)

    run = StrategyRun(ctsl("rh", views=lambda ctx: (clean, noisy)), seed=1, n_train=6,
                      criterion=torch.nn.CrossEntropyLoss(), n_outputs=3)
    run.batch_loss(model, forward, np.arange(6), clean, labels)
    assert torch.equal(seen["x"], noisy[0])
    names = {id(p) for p in head_parameters(model)}
    assert names == {id(p) for p in [*model.dense.parameters(), *model.output.parameters()]}
    with pytest.raises(StrategyError, match="views"):
        StrategyRun(ctsl("rm"), seed=1, n_train=6, criterion=torch.nn.CrossEntropyLoss(),
                    n_outputs=3).batch_loss(model, model, np.arange(6), clean, labels)


# ------------------------------------------------------------------ epoch choice and test groups

def test_three_best_epochs_are_never_consecutive():
    scores = {1: 0.5, 2: 0.9, 3: 0.8, 4: 0.85, 5: 0.1, 6: 0.7}
    assert separated_best_epochs(scores, 3) == [2, 4, 6]
    assert separated_best_epochs({1: 1.0, 2: 0.5, 3: 0.7}, 3, higher_is_better=False) == [2]  # 1, 3 next to 2
    assert separated_best_epochs({1: 0.2, 2: float("nan"), 3: 0.2}, 3) == [1, 3]  # tie: earlier first


def test_test_groups_are_disjoint_seeded_and_cover_the_set():
    utts = [f"u{i:02d}" for i in range(65)]
    groups = evaluation_groups(utts, 30, 7, "fold1")
    assert len(groups) == 30 and sorted(sum(groups, [])) == utts
    assert {len(g) for g in groups} == {2, 3}
    assert groups == evaluation_groups(list(reversed(utts)), 30, 7, "fold1")
    assert groups != evaluation_groups(utts, 30, 8, "fold1")
    with pytest.raises(ValueError, match="ctsl.test_groups"):
        evaluation_groups(utts[:5], 30, 7)


# ------------------------------------------------------------------ target noise

class FakePool:
    split = "train"

    def __init__(self, clips):
        self.clips = clips

    def files(self, category):
        return sorted(self.clips) if category == "nat" else []

    def read(self, key):
        return self.clips[key]


def _pool():
    rng = np.random.default_rng(3)
    return FakePool({f"bank:{i}.wav": rng.normal(size=16000 * 20).astype(np.float32) * (i + 1) for i in range(4)})


def test_target_noise_pool_is_capped_and_mixed_at_the_snr():
    noise = TargetNoise(_pool(), "nat", max_minutes=0.5, seed=1, reference="whole")
    assert noise.audio.size == 30 * 16000 and len(noise.files) == 2  # 20 s + the first 10 s of a second clip
    clean = np.sin(np.linspace(0, 2000, 40000)).astype(np.float32)
    for snr in (0.0, 5.0, 10.0):
        mixed = noise.noisy(clean, "utt1", snr, "train", 1, 1, 1)
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((mixed - clean).astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.01)


def test_target_noise_is_fresh_per_epoch_and_deterministic():
    clean = np.sin(np.linspace(0, 2000, 40000)).astype(np.float32)
    a = TargetNoise(_pool(), "nat", max_minutes=30, seed=1, reference="whole")
    b = TargetNoise(_pool(), "nat", max_minutes=30, seed=1, reference="whole")
    epoch1 = a.noisy(clean, "utt1", 0.0, "train", 1, 1, 1)
    assert np.array_equal(epoch1, b.noisy(clean, "utt1", 0.0, "train", 1, 1, 1))
    assert not np.array_equal(epoch1, a.noisy(clean, "utt1", 0.0, "train", 1, 1, 2))  # next epoch
    assert not np.array_equal(epoch1, a.noisy(clean, "utt1", 0.0, "train", 2, 1, 1))  # other fold
    with pytest.raises(TargetNoiseError, match="ctsl.target.category"):
        TargetNoise(_pool(), "hum", max_minutes=30, seed=1)


# ------------------------------------------------------------------ Welch table

def test_welch_one_tailed_and_marks():
    assert welch_greater([1, 1], [1, 1]) != welch_greater([1, 1], [1, 1])  # undefined -> NaN
    better, worse = [0.50, 0.55, 0.52, 0.58, 0.51], [0.30, 0.35, 0.31, 0.33, 0.32]
    assert welch_greater(better, worse) < 0.001 < 0.99 < welch_greater(worse, better)
    rows = []
    for strategy, values in (("original", worse), ("rh", better), ("rm", worse), ("rm_tl_cl", better)):
        for g, v in enumerate(values):
            rows.append({"model": "tdnn", "strategy": strategy, "fold": 1, "rep": 1, "epoch": 1,
                         "condition": "snr0", "group": g, "attribute": "activation", "metric": "uar", "value": v})
    cells = build_cells(pd.DataFrame(rows), list(VARIANTS)).set_index("strategy")
    assert cells.loc["rm_tl_cl", "marks"] == "*‡"  # better than Original and RM, not than RH (equal)
    assert cells.loc["rh", "marks"] == "*‡" and cells.loc["original", "marks"] == ""
    assert cells.loc["rm_tl_cl", "mean"] == pytest.approx(np.mean(better)) and cells.loc["rm_tl_cl", "n"] == 5


def test_ccc_and_uar_cells_are_kept_apart_and_named(tmp_path):
    """ctsl.tasks [activation, avd]: the bins task activation (UAR) and avd's attribute activation (CCC)."""
    from sernoise.ctsl.table import write_ctsl_table

    rows = [{"model": "tdnn", "strategy": strategy, "fold": 1, "rep": 1, "epoch": 1, "condition": "snr0", "group": g,
             "attribute": attribute, "metric": metric, "value": value + 0.01 * g}
            for strategy in ("original", "rm") for g in range(3)
            for attribute, metric, value in (("activation", "uar", 0.5), ("activation", "ccc", 0.2),
                                             ("valence", "ccc", 0.1), ("dominance", "ccc", 0.3))]
    cells = write_ctsl_table(pd.DataFrame(rows), strategies=["original", "rm"], matched="snr0",
                             model_labels={"tdnn": "T-DNN"}, notes=["a note"], csv=tmp_path / "t.csv",
                             md=tmp_path / "t.md", tex=tmp_path / "t.tex")
    assert len(cells) == 2 * 4 and (cells["n"] == 3).all()
    original = cells[cells["strategy"] == "original"]
    assert list(zip(original["attribute"], original["metric"])) == [
        ("activation", "uar"), ("activation", "ccc"), ("valence", "ccc"), ("dominance", "ccc")]
    assert original["mean"].tolist() == pytest.approx([0.51, 0.21, 0.11, 0.31])
    md = (tmp_path / "t.md").read_text()
    assert "| snr0 activation UAR | snr0 activation CCC | snr0 valence CCC | snr0 dominance CCC |" in md
    assert "- Values: UAR (unweighted average recall) of the classification task" in md
    assert "; CCC (concordance correlation coefficient) of each attribute" in md and "- a note" in md
    assert "snr0 dominance CCC" in (tmp_path / "t.tex").read_text()


def test_conditions_in_the_papers_order():
    assert condition_order(["clean", "snr10", "snr2.5", "snr5", "snr0"], "snr0") == ["snr0", "snr2.5", "snr5", "snr10",
                                                                                     "clean"]
    assert condition_order(["clean", "snr10", "snr5", "snr0"], "snr5") == ["snr5", "snr0", "snr10", "clean"]
