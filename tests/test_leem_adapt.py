"""Leem et al. (issue 14): one CTSL adaptation end to end on synthetic audio (sernoise.ctsl.adapt)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sernoise.ctsl.adapt import AdaptData, CtslSettings, FeatureInputs, adapt, adapt_and_score
from sernoise.ctsl.table import build_cells, write_ctsl_table, write_embedding_table
from sernoise.ctsl.target_noise import TargetNoise
from sernoise.models.tdnn import TDNN, TDNNConfig
from sernoise.tasks import get_task

SMALL = TDNNConfig(conv_channels=4, conv_width=2, conv_layers=1, pool_width=4, gru_layers=1, gru_units=6,
                   dense_layers=1)
SETTINGS = CtslSettings(epochs=5, batch_size=8, learning_rate=3e-3, snr_db=0.0, test_snrs=(0.0, 10.0), n_best=3,
                        test_groups=4)


class FakePool:
    def __init__(self, split, seed):
        rng = np.random.default_rng(seed)
        self.split = split
        self.clips = {f"bank:{split}{i}.wav": rng.normal(size=16000 * 3).astype(np.float32) for i in range(3)}

    def files(self, category):
        return sorted(self.clips)

    def read(self, key):
        return self.clips[key]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _data():
    rng = np.random.default_rng(0)
    audio, targets = {}, {}
    for i in range(48):
        label = i % 3
        t = np.arange(8000) / 16000
        audio[f"u{i:02d}"] = (0.3 * np.sin(2 * np.pi * (200 + 300 * label) * t)
                              + 0.01 * rng.normal(size=t.size)).astype(np.float32)
        targets[f"u{i:02d}"] = label
    ids = sorted(audio)
    noise = {s: TargetNoise(FakePool(s, k), "nat", max_minutes=1, seed=5, reference="whole")
             for k, s in enumerate(("train", "test"))}
    return AdaptData(audio=audio, targets=targets, train=ids[:24], val=ids[24:36], test=ids[36:],
                     target_noise=noise["train"], test_noise=noise["test"],
                     inputs=FeatureInputs(np.zeros(40, np.float32) - 5, np.ones(40, np.float32) * 3))


def _teacher():
    torch.manual_seed(0)
    return TDNN(SMALL)


def test_adaptation_leaves_the_teacher_unchanged_and_picks_separated_epochs():
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    task = get_task("activation")
    states, curve, chosen = adapt(teacher, "rm_tl_cl", _data(), task, SETTINGS, seed=1, fold=1, rep=1,
                                  corpus="ravdess")
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert len(curve) == 5 and 1 <= len(chosen) <= 3 and sorted(states) == sorted(chosen)
    assert all(abs(a - b) > 1 for a in chosen for b in chosen if a != b)
    moved = [not torch.equal(states[chosen[0]][k], before[k]) for k in before]
    assert any(moved)  # the student did learn


def test_rh_moves_only_the_head_and_original_trains_nothing():
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    task = get_task("activation")
    states, _, chosen = adapt(teacher, "rh", _data(), task, SETTINGS, seed=1, fold=1, rep=1, corpus="ravdess")
    state = states[chosen[0]]
    for name, value in state.items():
        if not name.startswith(("dense.", "output.")):  # the body is the teacher's
            assert torch.equal(value, before[name]), name
    assert not torch.equal(state["output.weight"], before["output.weight"])
    assert torch.equal(state["gru.weight_ih_l0"], before["gru.weight_ih_l0"])
    states, curve, chosen = adapt(teacher, "original", _data(), task, SETTINGS, seed=1, fold=1, rep=1,
                                  corpus="ravdess")
    assert chosen == [0] and curve == [] and torch.equal(states[0]["output.weight"], before["output.weight"])


def test_adapt_and_score_is_deterministic_and_builds_the_tables(tmp_path):
    task = get_task("activation")
    runs = []
    for _ in range(2):
        runs.append(adapt_and_score(_teacher(), "rm_cl", _data(), task, SETTINGS, seed=1, fold=1, rep=1,
                                    corpus="ravdess", model_name="tdnn"))
    scores, embeddings, curve, chosen = runs[0]
    pd.testing.assert_frame_equal(scores, runs[1][0])
    pd.testing.assert_frame_equal(embeddings, runs[1][1])
    assert len(scores) == len(chosen) * 3 * 4  # epochs x (clean, snr0, snr10) x groups (one attribute: the task)
    assert set(scores["condition"]) == {"clean", "snr0", "snr10"} and set(scores["metric"]) == {"uar"}
    assert set(embeddings["condition"]) == {"snr0", "snr10"}
    assert (embeddings["cosine"].abs() <= 1 + 1e-6).all() and (embeddings["rmse"] >= 0).all()
    original = adapt_and_score(_teacher(), "original", _data(), task, SETTINGS, seed=1, fold=1, rep=1,
                               corpus="ravdess", model_name="tdnn")
    all_scores = pd.concat([original[0], scores])
    cells = write_ctsl_table(all_scores, strategies=["original", "rm_cl"], matched="snr0",
                             model_labels={"tdnn": "T-DNN"}, notes=["a note"], csv=tmp_path / "t.csv",
                             md=tmp_path / "t.md", tex=tmp_path / "t.tex")
    assert len(cells) == 2 * 3 and cells.equals(build_cells(all_scores, ["original", "rm_cl"]))
    md = (tmp_path / "t.md").read_text()
    assert md.index("snr0 activation") < md.index("snr10 activation") < md.index("clean activation")
    assert "T-DNN RM+CL" in md and "\\begin{tabular}" in (tmp_path / "t.tex").read_text()
    write_embedding_table(pd.concat([original[1], embeddings]), strategies=["original", "rm_cl"],
                          model_labels={"tdnn": "T-DNN"}, csv=tmp_path / "e.csv", md=tmp_path / "e.md", title="E")
    assert "T-DNN Original" in (tmp_path / "e.md").read_text()


def test_ednn_stand_in_adapts_with_its_feature_encoder_frozen(tiny):
    """The E-DNN on the tiny random wav2vec2: waveform inputs, its frozen CNN stays the teacher's."""
    from sernoise.ctsl.adapt import WaveInputs
    from sernoise.models.ednn import EDNN, EDNNConfig

    torch.manual_seed(0)
    teacher = EDNN(EDNNConfig(dense_layers=1, dense_units=8), tiny)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    data = _data()
    data.inputs = WaveInputs(attention_mask=teacher.use_attention_mask)
    settings = CtslSettings(epochs=3, batch_size=8, learning_rate=1e-3, body_learning_rate=1e-4, snr_db=0.0,
                            test_snrs=(0.0,), n_best=2, test_groups=2)
    scores, embeddings, curve, chosen = adapt_and_score(teacher, "rm_tl_cl", data, get_task("activation"), settings,
                                                        seed=1, fold=1, rep=1, corpus="ravdess", model_name="ednn")
    assert chosen and len(scores) == len(chosen) * 2 * 2 and len(embeddings) == 1
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    states, _, chosen = adapt(teacher, "rm", data, get_task("activation"), settings, seed=1, fold=1, rep=1,
                              corpus="ravdess")
    state = states[chosen[0]]
    encoder = [k for k in state if ".feature_extractor." in k]
    assert encoder and all(torch.equal(state[k], before[k]) for k in encoder)
    assert not torch.equal(state["output.weight"], before["output.weight"])


def test_class_weighting_follows_the_clean_training():
    from sernoise.ctsl.adapt import _criterion

    task = get_task("activation")
    weighted = _criterion(task, [0, 0, 0, 1, 2, 2], class_weighting=True)
    # inverse frequency (6/3, 6/1, 6/2) normalised to mean 1
    assert torch.allclose(weighted.weight, torch.tensor([2.0, 6.0, 3.0]) / (11 / 3))
    assert _criterion(task, [0, 1], class_weighting=False).weight is None
    assert CtslSettings.from_config({"epochs": 2, "batch_size": 4, "learning_rate": None, "target": {"snr_db": 0},
                                     "test_snrs": [0], "n_best_epochs": 1, "test_groups": 1, "lambda_tl": 1,
                                     "lambda_cl": 1, "tau": 0.1},
                                    {"learning_rate": 0.01, "class_weighting": True}).class_weighting
