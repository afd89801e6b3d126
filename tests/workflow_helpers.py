"""Helpers of the end-to-end workflow tests (tests/test_workflow*.py).

Each test runs the real `snakemake` of the virtual environment in a temporary working directory,
with `config.yaml` plus an overlay, the way a user runs it.  Paths in overlays are made absolute
so the runs do not depend on the current directory.  Helpers that need torch import it when
called, so that test modules without training stay quick to import.  tests/conftest.py registers this module for
pytest's assertion rewriting, so the ``assert_*`` helpers fail with the usual detail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sernoise.corpora.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# The tiny training setup of the T-DNN / E-DNN / T-DNN-NR / attack workflow tests: RAVDESS actors
# 01-06 of ../shared/data in 3 folds, two conditions (one additive noise, one distortion), the
# activation task, one repetition, a one-point T-DNN grid of at most 2 epochs.
TINY_CONDITIONS = ["env-nat-cont-snr10", "fade-in"]
TINY_FOLDS = 3
TINY_TDNN = {"max_epochs": 2, "patience": 2, "batch_size": 32,
             "grid": {"conv_channels": [16], "conv_layers": [2], "pool_width": [4], "gru_units": [8]}}
POOLS = ("train", "test")


def run_snakemake(workdir: Path, overlay: dict | None, *args: str, check: bool = True,
                  timeout: int = 600) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in ``workdir`` with config.yaml + ``overlay``."""
    workdir.mkdir(parents=True, exist_ok=True)
    configfiles = [str(REPO / "config.yaml")]
    if overlay is not None:
        overlay_path = workdir / "overlay.yaml"
        overlay_path.write_text(yaml.safe_dump(overlay))
        configfiles.append(str(overlay_path))
    # --configfile takes several values, so it goes last (it would swallow the targets).
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           *args, "--configfile", *configfiles]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def module_run(name: str, overlay_of, *targets: str, timeout: int = 600):
    """A module-scoped fixture ``name``: (workdir, overlay) once ``targets`` are built in a new working
    directory, with ``overlay = overlay_of(ravdess_root, noise_root)`` (the shared-data fixtures)."""

    def run(tmp_path_factory, ravdess_root, noise_root):
        """(workdir, overlay) of a workflow run, shared by the module's tests."""
        workdir = tmp_path_factory.mktemp(name)
        overlay = overlay_of(ravdess_root, noise_root)
        run_snakemake(workdir, overlay, *targets, timeout=timeout)
        return workdir, overlay

    return pytest.fixture(run, scope="module", name=name)


def shared_overlay(ravdess_root: Path, noise_root: Path) -> dict:
    """tests/configs/shared_data.yaml with absolute paths to the shared RAVDESS and noise folders."""
    overlay = yaml.safe_load((REPO / "tests" / "configs" / "shared_data.yaml").read_text())
    overlay["corpora"]["ravdess"]["root"] = str(ravdess_root)
    overlay["noise_banks"]["shared"]["root"] = str(noise_root)
    return overlay


def tiny_training_overlay(ravdess_root: Path, noise_root: Path, *, models: list[str],
                          regimes: list[str], **training) -> dict:
    """The tiny training setup (see TINY_CONDITIONS) training exactly ``models`` in ``regimes``.

    The overlay's ``training`` section replaces shared_data.yaml's as a whole, so nothing of the
    demo's (its models, model_regimes) carries over; the augmentation-fraction sweep is off unless
    ``training`` sets ``sweep``, and the attack is off (the demo attacks models these runs do not
    train) unless the caller replaces ``overlay["attack"]``.  ``training``: further keys of that section.
    """
    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["corpora"]["ravdess"]["options"] = {"actors": [1, 2, 3, 4, 5, 6]}
    overlay["folds"] = {"n_folds": TINY_FOLDS}
    overlay["augment"] = {"conditions": TINY_CONDITIONS,
                          "quality": {"stoi": False, "pesq": False, "dnsmos": False, "fwsnrseg": False}}
    overlay["noise_types"] = {"nat": ["env-nat-cont-snr10"], "fade": ["fade-in"]}
    # on_degenerate warn: these one- or two-epoch runs on six actors test the plumbing, not learning,
    # and config.yaml's fail would stop them whenever a model stays at chance.
    overlay["training"] = {"models": models, "regimes": regimes, "tasks": ["activation"], "repetitions": 1,
                           "device": "cpu", "sweep": {"fractions": []}, "on_degenerate": "warn", **training}
    overlay["tdnn"] = TINY_TDNN
    overlay["attack"] = {"models": []}
    return overlay


def predictions_path(model: str, regime: str, fold: int) -> str:
    """The activation predictions of repetition 1 (the tiny setup's only task and repetition)."""
    return f"results/ravdess/predictions/{model}/{regime}/fold{fold}/rep1/activation.csv"


def model_dir(model: str, workdir: Path, regime: str, fold: int) -> Path:
    """The model folder of repetition 1, activation (``model`` first, for functools.partial)."""
    return workdir / f"results/ravdess/models/{model}/{regime}/fold{fold}/rep1/activation"


def assert_feature_archives_hold_the_ok_utterances(results: Path, conditions, *, audio: str = "augmented",
                                                   features: str = "features") -> None:
    """``features``/clean.h5 holds every manifest utterance, ``features``/<condition>/<pool>.h5 the
    utterances that ``audio``/<condition>/<pool>/params.csv lists as ok."""
    from sernoise.features import FeatureArchive

    manifest = read_manifest(results / "manifest.csv")
    assert set(FeatureArchive(results / features / "clean.h5").utt_ids) == set(manifest["utt_id"])
    for condition in conditions:
        for pool in POOLS:
            params = pd.read_csv(results / audio / condition / pool / "params.csv", dtype=str)
            archive = FeatureArchive(results / features / condition / f"{pool}.h5")
            assert set(archive.utt_ids) == set(params.loc[params["status"] == "ok", "utt_id"])


def assert_predictions_cover_the_test_role(workdir: Path, model: str, regimes, conditions, n_folds: int) -> None:
    """Every prediction file of ``model``: the test-role utterances of its fold, once per condition
    (clean included), true labels from the manifest, scores a distribution whose argmax is the prediction."""
    from sernoise.predictions import PREDICTION_COLUMNS, read_predictions

    manifest = read_manifest(workdir / "results/ravdess/manifest.csv").set_index("utt_id")
    folds = pd.read_csv(workdir / "results/ravdess/folds.csv", dtype={"group": str})
    for regime in regimes:
        for fold in range(1, n_folds + 1):
            table = read_predictions(workdir / predictions_path(model, regime, fold))
            assert list(table.columns) == PREDICTION_COLUMNS
            test_groups = set(folds[(folds["fold"] == fold) & (folds["role"] == "test")]["group"])
            test_ids = set(manifest.index[manifest["group"].isin(test_groups)])
            assert set(table["condition"]) == {"clean", *conditions}
            for condition, rows in table.groupby("condition"):
                assert set(rows["utt_id"]) == test_ids, (regime, fold, condition)
            assert (table["true"] == manifest.loc[table["utt_id"], "activation_bin"].to_numpy()).all()
            assert set(table["predicted"]) <= {"low", "mid", "high"}
            scores = table[["score_low", "score_mid", "score_high"]].to_numpy()
            assert np.allclose(scores.sum(axis=1), 1, atol=1e-4) and (scores >= 0).all()
            best = np.asarray(["low", "mid", "high"])[scores.argmax(axis=1)]
            assert (best == table["predicted"]).all()


def check_model_folders(workdir: Path, model: str, regimes, n_folds: int, files) -> dict:
    """The model folders of ``model`` in each regime and fold: each holds ``files``, its hparams.yaml
    names (regime, fold, rep 1, activation), its model.pt loads with ``weights_only`` as tensors only;
    matched trains on every clean utterance plus as many augmented ones, clean on the clean ones only
    (``regimes`` holds both).  Returns {(regime, fold): (folder, hparams, state dict)} for the
    model's own checks."""
    import torch

    folders = {}
    for regime in regimes:
        for fold in range(1, n_folds + 1):
            folder = model_dir(model, workdir, regime, fold)
            assert all((folder / name).is_file() for name in files)
            hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
            identity = (hparams["regime"], hparams["fold"], hparams["rep"], hparams["task"])
            assert identity == (regime, fold, 1, "activation")
            state = torch.load(folder / "model.pt", weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
            folders[(regime, fold)] = (folder, hparams, state)
    sizes = {key: (h["n_train"], h["n_train_clean"], h["n_train_augmented"]) for key, (_, h, _) in folders.items()}
    for fold in range(1, n_folds + 1):
        n, clean, augmented = sizes[("matched", fold)]
        assert augmented == clean and n == 2 * clean and sizes[("clean", fold)] == (clean, clean, 0)
    return folders
