"""What the train rules share (sernoise.training.artifacts) and the shared training machinery of loop.py."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sernoise.models.tdnn import TDNNConfig
from sernoise.regimes import Regime
from sernoise.seeds import derive_seed
from sernoise.training.artifacts import (
    CURVE_COLUMNS,
    TrainingRun,
    log_sets,
    outcome_fields,
    selection_fields,
    versions_record,
    write_curve,
    write_selection,
    write_yaml,
)
from sernoise.predictions import CLEAN
from sernoise.training.data import Example, TrainingSets
from sernoise.training.loop import (
    LabelledArrays,
    TrainingError,
    grid_combinations,
    padded_batch,
    run_epochs,
    search_grid,
)
from sernoise.training.predict import (
    ModelFileError, ScoredRun, load_weights, predict_conditions, predict_conditions_runs, save_state,
)

REGIME = {"name": "mismatched-nat", "kind": "mismatched", "train_conditions": ("c1", "c2"), "held_out_type": "nat"}


def _run() -> TrainingRun:
    wildcards = SimpleNamespace(model="tdnn", fold="2", rep="1", task="activation")
    return TrainingRun.from_rule(wildcards, SimpleNamespace(regime=REGIME, seed=42))


def _sets() -> TrainingSets:
    train = [Example("a", CLEAN, 0), Example("b", CLEAN, 1), Example("a", "c1", 0)]
    return TrainingSets(train=train, val=[Example("c", CLEAN, 2)], n_clean_train=2, n_clean_val=1,
                        used_conditions=["c1"], left_out={"c2": "no usable utterance"})


def _result(curve=None):
    curve = curve or [{"epoch": 1, "train_loss": 1.2, "val_loss": 1.1, "val_uar": 0.4},
                      {"epoch": 2, "train_loss": 0.9, "val_loss": 1.0, "val_uar": 0.5}]
    return SimpleNamespace(config=TDNNConfig(), curve=curve, best_epoch=2, best_val_loss=np.float64(1.0),
                           best_val_uar=np.float32(0.5), epochs_run=2, stopped_early=False)


def test_training_run_seed_title_and_record():
    run = _run()
    assert (run.fold, run.rep, run.regime) == (2, 1, Regime(**REGIME))
    assert run.seed == derive_seed(42, "train", 2, 1, "activation")
    assert run.title("T-DNN") == "T-DNN mismatched-nat fold 2 rep 1 activation"
    assert run.record() == {
        "seed": run.seed, "config_seed": 42, "regime": "mismatched-nat", "regime_kind": "mismatched",
        "regime_conditions": ["c1", "c2"], "held_out_type": "nat", "fold": 2, "rep": 1, "task": "activation",
        "task_kind": "bins", "labels": ["low", "mid", "high"],
        "strategy": {"name": "standard", "selection_metric": "loss"},
    }
    assert list(run.record()) == ["seed", "config_seed", "regime", "regime_kind", "regime_conditions",
                                  "held_out_type", "fold", "rep", "task", "task_kind", "labels", "strategy"]


def test_hparams_fields_keep_their_order_and_plain_types(tmp_path):
    selection = [{"point": 0, "selected": False}, {"point": 1, "selected": True}]
    head = selection_fields("tdnn", _result(), selection)
    assert list(head) == ["model", "hparams", "grid_point"] and head["grid_point"] == 1
    assert head["hparams"] == TDNNConfig().as_dict()
    tail = outcome_fields(_sets(), _result(), "cpu")
    assert list(tail) == [*_sets().summary(), "best_epoch", "best_val_loss", "best_val_uar", "epochs_run",
                          "stopped_early", "device"]
    assert type(tail["best_val_loss"]) is float and type(tail["best_val_uar"]) is float
    write_yaml({"z": 1, **tail, "a": 2}, tmp_path / "hparams.yaml")  # numpy scalars would not safe_dump
    text = (tmp_path / "hparams.yaml").read_text()
    assert text.startswith("z: 1\nn_train: 3\n") and text.endswith("a: 2\n")
    assert yaml.safe_load(text)["n_train_augmented"] == 1


def test_versions_record_order_with_and_without_model_entries():
    plain = versions_record("cpu", 3)
    assert list(plain) == ["python", "torch", "numpy", "sernoise", "device", "cuda", "gpu", "threads"]
    assert plain["gpu"] is None and plain["threads"] == 3 and plain["torch"] == str(torch.__version__)
    full = versions_record("cpu", 1, libraries={"transformers": "x"}, inputs={"backbone": "b"},
                           runtime={"amp": False})
    assert list(full) == ["python", "torch", "numpy", "transformers", "sernoise", "backbone", "device", "cuda",
                          "gpu", "amp", "threads"]


def test_curve_and_selection_files(tmp_path):
    write_curve(_result(), tmp_path / "curve.csv", tmp_path / "curve.png", "T-DNN clean fold 1 rep 1 activation")
    assert (tmp_path / "curve.csv").read_text().splitlines() == [
        ",".join(CURVE_COLUMNS), "1,1.200000,1.100000,0.400000", "2,0.900000,1.000000,0.500000"]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    write_selection([{"point": 0, "best_val_loss": 1 / 3, "selected": True}], tmp_path / "selection.csv")
    assert pd.read_csv(tmp_path / "selection.csv").to_dict("records") == [
        {"point": 0, "best_val_loss": 0.333333, "selected": True}]


def test_log_sets_reports_left_out_conditions_and_sizes(caplog):
    with caplog.at_level(logging.INFO, logger="sernoise.test"):
        log_sets(logging.getLogger("sernoise.test"), _sets())
    assert "condition c2 left out of the augmented pool: no usable utterance" in caplog.text
    assert "training set 3 (2 clean + 1 augmented), validation 1 (1 clean + 0 augmented)" in caplog.text


# ------------------------------------------------------------------------------ predict.py helpers


def test_predict_conditions_leave_out_what_a_condition_lacks_but_clean_must_hold_every_test_utterance():
    test, labels = ["a", "b", "c"], {"a": 0, "b": 1, "c": 2}
    stored = {"clean.h5": {"a", "b", "c"}, "c1.h5": {"b"}}

    def score(opened, utts):
        return np.tile([0.2, 0.3, 0.5], (len(utts), 1))

    frames = predict_conditions([(CLEAN, "clean.h5"), ("c1", "c1.h5")], test, labels, open_source=stored.get,
                                score=score, what="features")
    assert [(f["condition"].iloc[0], list(f["utt_id"])) for f in frames] == [(CLEAN, ["a", "b", "c"]), ("c1", ["b"])]
    assert list(frames[0]["predicted"]) == ["high"] * 3 and list(frames[0]["true"]) == ["low", "mid", "high"]
    with pytest.raises(ValueError, match=r"c1\.h5: 2 test utterance\(s\) have no clean features"):
        predict_conditions([(CLEAN, "c1.h5")], test, labels, open_source=stored.get, score=score, what="features")


def test_several_runs_read_each_condition_once_and_get_the_frames_each_would_get_alone():
    """A prediction job's runs (two tasks with different labelled utterances) share one read per
    condition, of the union of what they need, and each run's frames equal its own pass."""
    stored = {"clean.h5": {"a", "b", "c", "d"}, "c1.h5": {"b", "c", "d"}}
    reads = []

    def read(opened, utts):
        reads.append(list(utts))
        return {u: float(ord(u)) for u in utts}  # stands for the utterances' features

    def scorer(offset):
        return lambda data, utts: np.array([[data[u] % 3 + offset, 1.0, 0.5] for u in utts])

    runs = [ScoredRun(["a", "b", "d"], {"a": 0, "b": 1, "d": 2}, ("low", "mid", "high"), scorer(0.0)),
            ScoredRun(["b", "c"], {"b": 1, "c": 0}, ("neg", "neu", "pos"), scorer(2.0))]
    sources = [(CLEAN, "clean.h5"), ("c1", "c1.h5")]
    together = predict_conditions_runs(sources, runs, open_source=stored.get, read=read, what="features")
    assert reads == [["a", "b", "d", "c"], ["b", "d", "c"]]  # once per condition, the union in run order
    for run, frames in zip(runs, together):
        alone = predict_conditions(sources, run.test, run.labels, open_source=stored.get, what="features",
                                   score=lambda opened, utts, run=run: run.score(read(opened, utts), utts),
                                   classes=run.classes)
        assert len(frames) == len(alone) == 2
        for a, b in zip(frames, alone):
            pd.testing.assert_frame_equal(a, b)
    assert list(together[1][1]["utt_id"]) == ["b", "c"] and list(together[1][0]["true"]) == ["neu", "neg"]
    with pytest.raises(ValueError, match=r"c1\.h5: 1 test utterance\(s\) have no clean features"):
        predict_conditions_runs([(CLEAN, "c1.h5")], runs, open_source=stored.get, read=read, what="features")


def test_load_weights_reads_tensors_and_names_the_file_when_they_do_not_fit(tmp_path):
    source = torch.nn.Linear(2, 3)
    save_state(source, tmp_path / "model.pt")
    model = load_weights(torch.nn.Linear(2, 3), tmp_path / "model.pt")
    assert not model.training and torch.equal(model.weight, source.weight)
    with pytest.raises(ModelFileError, match=r"(?s)model\.pt: of hparams: .*size mismatch"):
        load_weights(torch.nn.Linear(2, 4), tmp_path / "model.pt", mismatch="of hparams: ")


# ------------------------------------------------------------------------------ loop.py helpers


def test_padded_batch_pads_features_and_waveforms_alike():
    features, lengths = padded_batch([np.ones((3, 2), np.float16), np.ones((5, 2), np.float16)], [1, 0])
    assert features.shape == (2, 5, 2) and features.dtype == np.float32 and lengths.tolist() == [5, 3]
    assert features[1, 3:].sum() == 0
    waves, lengths = padded_batch([np.ones(7, np.float32), np.ones(2, np.float32)], [0, 1], max_len=4,
                                  rng=np.random.default_rng(0))
    assert waves.shape == (2, 4) and lengths.tolist() == [4, 2]


def test_labelled_arrays_check_their_labels():
    data = LabelledArrays([np.zeros(3), np.zeros(5)], [0, 2])
    assert len(data) == 2 and data.lengths.tolist() == [3, 5] and data.labels.dtype == np.int64
    with pytest.raises(TrainingError, match="2 arrays but 1 labels"):
        LabelledArrays([np.zeros(3), np.zeros(5)], [0])


def test_grid_combinations_fill_defaults_in_key_order():
    defaults = SimpleNamespace(a=1, b=2)
    assert grid_combinations({"b": [3, 4]}, ("a", "b"), defaults, "x.grid") == [{"a": 1, "b": 3}, {"a": 1, "b": 4}]
    with pytest.raises(TrainingError, match=r"x\.grid: unknown"):
        grid_combinations({"c": [1]}, ("a", "b"), defaults, "x.grid")
    with pytest.raises(TrainingError, match=r"x\.grid\.a: no values"):
        grid_combinations({"a": []}, ("a", "b"), defaults, "x.grid")


def test_search_grid_selects_the_first_lowest_validation_loss():
    points = [SimpleNamespace(k=k, as_dict=lambda k=k: {"k": k}) for k in (0, 1, 2)]
    losses = {0: 0.5, 1: 0.25, 2: 0.25}

    def train_point(config, tag):
        return SimpleNamespace(best_epoch=1, best_val_loss=losses[config.k], best_val_uar=0.5, epochs_run=1,
                               seconds=0.0, k=config.k)

    messages = []
    best, rows = search_grid(points, ("k",), train_point, progress=messages.append)
    assert best.k == 1 and [r["selected"] for r in rows] == [False, True, False]
    assert list(rows[0]) == ["point", "k", "best_epoch", "best_val_loss", "val_uar_at_best", "epochs_run", "selected"]
    assert messages[0] == "[grid 1/3] hyper-parameters {'k': 0}"


def test_run_epochs_keeps_the_best_epoch_and_stops_on_patience():
    model = torch.nn.Linear(1, 1)
    val_losses = iter([1.0, 0.5, 0.7, 0.8, 0.9])
    snapshots = iter(range(100))

    def fit(patience, max_epochs):
        return run_epochs(model, lambda index: torch.tensor(0.1), lambda m: (next(val_losses), 0.5),
                          lambda: next(snapshots), lengths=np.ones(4, np.int64), batch_size=2,
                          rng=np.random.default_rng(0), max_epochs=max_epochs, patience=patience)

    fitted = fit(patience=2, max_epochs=5)
    assert (fitted["best_epoch"], fitted["best_val_loss"], fitted["epochs_run"]) == (2, 0.5, 4)
    assert fitted["state_dict"] == 1 and fitted["stopped_early"] is True
    assert [row["epoch"] for row in fitted["curve"]] == [1, 2, 3, 4]
    val_losses = iter([1.0, 1.1, 1.2])
    fitted = fit(patience=None, max_epochs=3)  # no early stopping: every epoch runs
    assert (fitted["best_epoch"], fitted["epochs_run"], fitted["stopped_early"]) == (1, 3, False)
    val_losses = iter([float("nan")])
    with pytest.raises(TrainingError, match="never finite"):
        fit(patience=None, max_epochs=1)
