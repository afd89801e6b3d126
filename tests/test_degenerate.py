"""The degenerate-model check (sernoise.training.degenerate) and what the T-DNN job does with it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from sernoise.config import validate_config
from sernoise.corpora.manifest import to_manifest_frame
from sernoise.features import N_MELS, write_feature_archive
from sernoise.folds import make_folds
from sernoise.predictions import LABELS
from sernoise.regimes import Regime
from sernoise.training import tdnn_job
from sernoise.training.degenerate import DegenerateModelError, chance_margin, check, not_checked


def _predictions(per_class: int, correct: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels (``per_class`` of each of 3 classes) and predictions right for a ``correct`` fraction
    of each class (the wrong ones spread over the other two classes)."""
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(3), per_class)
    predicted = true.copy()
    for k in range(3):
        index = np.flatnonzero(true == k)
        wrong = rng.permutation(index)[: int(round((1 - correct) * per_class))]
        predicted[wrong] = (k + 1 + rng.integers(0, 2, size=len(wrong))) % 3
    return true, predicted


def test_all_predictions_in_one_class_are_flagged():
    true = np.repeat(np.arange(3), 50)
    found = check(true, np.ones_like(true), 3, labels=LABELS)
    assert found.flagged and found.reason == "all 150 validation predictions are class 'mid'"
    assert (found.uar, found.chance, found.margin) == (pytest.approx(1 / 3), pytest.approx(1 / 3), 0.0)
    assert found.predicted_counts == (0, 150, 0) and found.true_counts == (50, 50, 50)


def test_near_chance_on_a_small_set_is_flagged_but_not_on_a_large_one():
    small = check(*_predictions(10, 0.4), 3)  # UAR 0.4 on 30 examples: within what guessing gives
    assert small.uar == pytest.approx(0.4) and small.flagged
    assert "not above chance 0.333" in small.reason and "30 validation examples" in small.reason
    large = check(*_predictions(1000, 0.4), 3)  # the same UAR on 3000 examples is above chance
    assert large.uar == pytest.approx(0.4) and not large.flagged and large.reason is None
    assert large.margin < small.margin


def test_a_healthy_model_is_not_flagged_and_its_record_has_plain_types():
    found = check(*_predictions(40, 0.7), 3, labels=LABELS)
    assert not found.flagged and found.uar == pytest.approx(0.7)
    record = found.record(LABELS)
    assert list(record) == ["checked", "flagged", "reason", "val_uar", "chance", "margin", "alpha", "n_val",
                            "predicted_counts", "true_counts"]
    assert record["true_counts"] == {"low": 40, "mid": 40, "high": 40}
    assert yaml.safe_load(yaml.safe_dump(record)) == record  # no numpy scalars


def test_margin_shrinks_as_one_over_root_n():
    margins = [chance_margin([n, n, n], [n, 2 * n, n])[1] for n in (10, 40, 160, 640)]
    assert all(a > b for a, b in zip(margins, margins[1:]))
    assert margins[1] == pytest.approx(margins[0] / 2) and margins[3] == pytest.approx(margins[0] / 8)
    chance, margin = chance_margin([10, 10, 10], [10, 10, 10], alpha=0.01)
    assert chance == pytest.approx(1 / 3) and margin > chance_margin([10, 10, 10], [10, 10, 10], alpha=0.05)[1]


def test_a_random_guesser_escapes_the_flag_about_alpha_of_the_time():
    rng = np.random.default_rng(11)
    true = np.repeat(np.arange(3), [70, 50, 30])
    escaped = np.mean([not check(true, rng.choice(3, size=true.size, p=[0.5, 0.3, 0.2]), 3).flagged
                       for _ in range(2000)])
    assert 0.02 < escaped < 0.09  # alpha 0.05, normal approximation


def test_chance_counts_only_classes_present_in_the_labels():
    true = np.array([0, 0, 1, 1])
    found = check(true, np.array([0, 2, 1, 2]), 3)  # class 2 absent from the labels, predicted twice
    assert found.uar == pytest.approx(0.5) and found.chance == pytest.approx(0.25)
    with pytest.raises(ValueError, match="as many predictions"):
        check(true, np.array([0, 1]), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        check(true, np.array([0, 1, 3, 0]), 3)
    assert not_checked("dimensional task") == {"checked": False, "flagged": False, "reason": "dimensional task"}


# ------------------------------------------------------------------------------ the T-DNN job

N_GROUPS, PER_GROUP = 6, 12


@pytest.fixture(scope="module")
def random_corpus(tmp_path_factory):
    """Manifest, folds and clean filterbank archive of a corpus whose labels are random: no model can learn it."""
    root = tmp_path_factory.mktemp("random_corpus")
    rng = np.random.default_rng(5)
    rows, clean = [], []
    for g in range(1, N_GROUPS + 1):
        for i in range(PER_GROUP):
            utt = f"g{g}-u{i:02d}"
            rows.append({"utt_id": utt, "path": f"{utt}.wav", "speaker": f"s{g}", "gender": "F", "group": f"pair{g:02d}",
                         "duration": 1.0, "sample_rate": 16000, "emotion": "neutral",
                         "activation_bin": LABELS[i % 3], "valence_bin": LABELS[i % 3]})
            clean.append((utt, rng.normal(size=(30 + i, N_MELS)).astype(np.float32)))
    to_manifest_frame(rows).to_csv(root / "manifest.csv", index=False)
    make_folds([f"pair{g:02d}" for g in range(1, N_GROUPS + 1)], 3).to_csv(root / "folds.csv", index=False)
    write_feature_archive(root / "clean.h5", clean)
    return root


def _train_job(repo_root, corpus, folder, on_degenerate: str):
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config.update(corpus="ravdess", folds={"n_folds": 3})
    config["training"].update(on_degenerate=on_degenerate, min_epochs=3)
    config["tdnn"].update(max_epochs=4, patience=1, grid={"conv_channels": [8], "conv_layers": [2], "pool_width": [2],
                                                           "gru_units": [8]})
    config = validate_config(config, repo_root / "schemas" / "config.schema.yaml")
    folder.mkdir()
    names = {"model": "model.pt", "norm": "norm.npz", "curve": "curve.csv", "curve_png": "curve.png",
             "selection": "selection.csv", "hparams": "hparams.yaml", "versions": "versions.yaml"}
    smk = SimpleNamespace(
        wildcards=SimpleNamespace(corpus="ravdess", model="tdnn", regime="clean", fold="1", rep="1", task="activation"),
        config=config, threads=1, rule="train_model", log=[str(folder / "train.log")],
        input=SimpleNamespace(manifest=str(corpus / "manifest.csv"), folds=str(corpus / "folds.csv"),
                              clean=str(corpus / "clean.h5"), conditions=[]),
        output=SimpleNamespace(**{key: str(folder / name) for key, name in names.items()}),
        params=SimpleNamespace(regime=Regime("clean", "clean").as_dict(), conditions=[], seed=config["seed"],
                               augmented_per_clean=1.0, device="cpu", settings=config["tdnn"]))
    tdnn_job.train(smk)
    return [folder / name for name in names.values()]


def test_fail_mode_stops_the_tdnn_job_naming_the_model_before_any_output(repo_root, random_corpus, tmp_path):
    folder = tmp_path / "fail"
    with pytest.raises(DegenerateModelError,
                       match=r"degenerate model \(model tdnn regime clean fold 1 rep 1 task activation\): "):
        _train_job(repo_root, random_corpus, folder, "fail")
    assert sorted(p.name for p in folder.iterdir()) == ["train.log"]  # no model.pt, hparams.yaml, ...
    assert "DegenerateModelError" in (folder / "train.log").read_text()


def test_warn_mode_keeps_the_model_and_records_the_check(repo_root, random_corpus, tmp_path):
    outputs = _train_job(repo_root, random_corpus, tmp_path / "warn", "warn")
    assert all(p.is_file() for p in outputs)
    hparams = yaml.safe_load((tmp_path / "warn" / "hparams.yaml").read_text())
    assert list(hparams)[-1] == "degenerate" and hparams["degenerate"]["flagged"] is True
    assert hparams["degenerate"]["action"] == "warn" and hparams["degenerate"]["n_val"] == hparams["n_val"]
    assert hparams["degenerate"]["val_uar"] == pytest.approx(hparams["best_val_uar"])
    assert hparams["training"]["min_epochs"] == 3 and hparams["epochs_run"] >= 3
    assert "WARNING" in (tmp_path / "warn" / "train.log").read_text()
