"""Leem et al. (issue 14): the CTSL table end to end, at tiny scale on RAVDESS actors 01-06 of ../shared/data.

The teacher is the T-DNN of the clean regime (3 folds); all six strategies adapt it to natural
noise at 0 dB for a few epochs and are scored clean and at 0 and 10 dB; the table holds every
(strategy, condition) cell with its Welch tests, and the embedding table every strategy.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import workflow_helpers as wf

pytestmark = pytest.mark.workflow

STRATEGIES = ["original", "rh", "rm", "rm_tl", "rm_cl", "rm_tl_cl"]
TABLE = "results/ravdess/tables/ctsl.csv"


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = wf.tiny_training_overlay(ravdess_root, noise_root, models=["tdnn"], regimes=["clean"])
    overlay["align"] = {"enabled": False}  # no condition of this run needs alignments
    overlay["ctsl"] = {"models": ["tdnn"], "tasks": ["activation"], "strategies": STRATEGIES,
                       "target": {"category": "nat", "max_minutes": 2, "snr_db": 0}, "test_snrs": [0, 10],
                       "epochs": 5, "batch_size": 32, "test_groups": 5}
    return overlay


# one core: the table builds in a few minutes, and the machine may be busy (later --cores wins)
ctsl_run = wf.module_run("ctsl_run", _overlay, "--cores", "1", TABLE, timeout=1800)


def test_table_has_every_strategy_condition_and_welch_marks(ctsl_run):
    workdir, _ = ctsl_run
    cells = pd.read_csv(workdir / TABLE)
    assert set(cells["strategy"]) == set(STRATEGIES)
    assert set(cells["condition"]) == {"clean", "snr0", "snr10"}
    assert set(cells["metric"]) == {"uar"} and set(cells["attribute"]) == {"activation"}
    assert cells["mean"].between(0, 1).all()
    original = cells[cells["strategy"] == "original"]
    assert (original["n"] == wf.TINY_FOLDS * 5).all()  # one model per fold x 5 groups
    adapted = cells[cells["strategy"] != "original"]
    assert (adapted["n"] > wf.TINY_FOLDS * 5).all()  # more than one chosen epoch per fold
    assert original["p_vs_original"].isna().all() and adapted["p_vs_original"].between(0, 1).all()
    md = (workdir / "results/ravdess/tables/ctsl.md").read_text()
    assert md.index("snr0 activation") < md.index("snr10 activation") < md.index("clean activation")
    assert "Welch" in md and "T-DNN RM+TL+CL" in md
    embeddings = pd.read_csv(workdir / "results/ravdess/tables/ctsl_embeddings.csv")
    assert set(embeddings["strategy"]) == set(STRATEGIES) and set(embeddings["condition"]) == {"snr0", "snr10"}


def test_adaptation_records_and_teacher_files(ctsl_run):
    workdir, _ = ctsl_run
    for fold in range(1, wf.TINY_FOLDS + 1):
        teacher = wf.model_dir("tdnn", workdir, "clean", fold)
        record = yaml.safe_load((workdir / f"results/ravdess/ctsl/tdnn/rm_tl_cl/fold{fold}/rep1/activation/"
                                 "record.yaml").read_text())
        assert record["teacher"].endswith(f"models/tdnn/clean/fold{fold}/rep1/activation/model.pt")
        assert (teacher / "model.pt").is_file()
        assert record["target_noise"]["category"] == "nat" and record["target_noise"]["seconds"] <= 120
        assert set(record["target_noise"]["files"]).isdisjoint(record["test_noise"]["files"])
        chosen = record["chosen_epochs"]
        assert 1 <= len(chosen) <= 3 and all(abs(a - b) > 1 for a in chosen for b in chosen if a != b)
        curve = pd.read_csv(workdir / f"results/ravdess/ctsl/tdnn/rm_tl_cl/fold{fold}/rep1/activation/curve.csv")
        assert list(curve["epoch"]) == [1, 2, 3, 4, 5]
