"""Leem et al. (issue 14): the CTSL table for the E-DNN stand-in (tiny random wav2vec2), end to end at tiny
scale on RAVDESS actors 01-06 of ../shared/data: the teacher is the E-DNN of the clean regime; Original,
RM and RM+TL+CL adapt it; the table labels the stand-in."""

from __future__ import annotations

import pandas as pd
import pytest

from sernoise.pretrained import TINY_LABEL
import workflow_helpers as wf

pytestmark = pytest.mark.workflow

STRATEGIES = ["original", "rm", "rm_tl_cl"]
TABLE = "results/ravdess/tables/ctsl.csv"


def _overlay(ravdess_root, noise_root) -> dict:
    overlay = wf.tiny_training_overlay(ravdess_root, noise_root, models=["ednn"], regimes=["clean"])
    overlay["align"] = {"enabled": False}  # no condition of this run needs alignments
    overlay["pretrained"] = {"missing": "tiny_random"}
    overlay["ednn"] = {"max_epochs": 1, "batch_size": 16, "learning_rate": 0.001, "backbone_learning_rate": 0.0001,
                       "max_seconds": 2.0, "grid": {"dense_layers": [1], "dense_units": [16]}}
    overlay["ctsl"] = {"models": ["ednn"], "tasks": ["activation"], "strategies": STRATEGIES,
                       "target": {"category": "nat", "max_minutes": 2, "snr_db": 0}, "test_snrs": [0],
                       "epochs": 3, "batch_size": 16, "n_best_epochs": 2, "test_groups": 4}
    return overlay


# one core, as the other workflow tests of CTSL (later --cores wins)
ctsl_ednn_run = wf.module_run("ctsl_ednn_run", _overlay, "--cores", "1", TABLE, timeout=2400)


def test_stand_in_table_is_labelled_and_complete(ctsl_ednn_run):
    workdir, _ = ctsl_ednn_run
    cells = pd.read_csv(workdir / TABLE)
    assert set(cells["strategy"]) == set(STRATEGIES) and set(cells["model"]) == {"ednn"}
    assert set(cells["condition"]) == {"clean", "snr0"} and cells["mean"].between(0, 1).all()
    md = (workdir / "results/ravdess/tables/ctsl.md").read_text()
    assert TINY_LABEL in md  # the stand-in is named in the rows and in the notes
    embeddings = pd.read_csv(workdir / "results/ravdess/tables/ctsl_embeddings.csv")
    assert set(embeddings["strategy"]) == set(STRATEGIES)
