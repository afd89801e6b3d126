"""Training data assembly (regimes, folds, z-normalisation), the training loop and model files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fixtures.training_corpus import assemble_toy, toy_manifest
from sernoise.features import write_feature_archive
from sernoise.folds import make_folds
from sernoise.models.tdnn import TDNN, TDNNConfig
from sernoise.predictions import CLEAN, PREDICTION_COLUMNS, prediction_keys, read_predictions
from sernoise.regimes import Regime
from sernoise.training.data import (
    LABEL_INDEX,
    TrainingDataError,
    draw_pairs,
    labels_of,
    load_and_normalise,
    load_norm,
    norm_stats,
    role_utterances,
    save_norm,
)
from sernoise.training.loop import (
    SequenceData,
    TrainSettings,
    bucket_batches,
    class_weights,
    collate,
    grid_points,
    grid_search,
    predict_proba,
    run_epochs,
    train_one,
)
from sernoise.training.predict import (
    load_model,
    predict_features,
    predictions_frame,
    save_state,
    write_predictions,
)


# ------------------------------------------------------------------------------ data


@pytest.fixture
def corpus():
    manifest = toy_manifest()
    folds = make_folds(manifest["group"], 5)
    everything = list(manifest["utt_id"])
    available = {"c1": everything, "c2": everything, "c3": [], "c9": everything}  # c3 skipped
    return manifest, folds, available


def test_labels_map_low_mid_high_to_0_1_2():
    manifest = pd.DataFrame({"utt_id": ["a", "b", "c", "d"], "activation_bin": ["low", "mid", "high", ""],
                             "valence_bin": ["high", "high", "low", "mid"]})
    assert labels_of(manifest, "activation") == {"a": 0, "b": 1, "c": 2}  # empty bin left out
    assert labels_of(manifest, "valence") == {"a": 2, "b": 2, "c": 0, "d": 1}
    assert LABEL_INDEX == {"low": 0, "mid": 1, "high": 2}
    with pytest.raises(TrainingDataError, match="activation_bin"):
        labels_of(manifest.assign(activation_bin=["low", "x", "mid", "mid"]), "activation")


def test_clean_regime_is_clean_train_and_val_roles_only(corpus):
    manifest, folds, _ = corpus
    sets = assemble_toy(corpus, Regime("clean", "clean"))
    assert {e.condition for e in sets.train + sets.val} == {CLEAN}
    assert [e.utt_id for e in sets.train] == role_utterances(manifest, folds, 2, "train")
    assert [e.utt_id for e in sets.val] == role_utterances(manifest, folds, 2, "val")
    labels = labels_of(manifest, "activation")
    assert all(e.label == labels[e.utt_id] for e in sets.train + sets.val)


def test_noisy_regimes_have_equal_sizes_and_draw_only_their_conditions(corpus):
    manifest, folds, _ = corpus
    n_clean = len(role_utterances(manifest, folds, 2, "train"))
    n_val = len(role_utterances(manifest, folds, 2, "val"))
    matched = assemble_toy(corpus, Regime("matched", "matched", ("c1", "c2", "c3")))
    single = assemble_toy(corpus, Regime("mismatched-x", "mismatched", ("c2",), "x"))
    clean = assemble_toy(corpus, Regime("clean", "clean"))
    assert len(clean.train) == n_clean
    assert len(matched.train) == len(single.train) == 2 * n_clean  # augmented_per_clean = 1
    assert len(matched.val) == len(single.val) == 2 * n_val
    assert {e.condition for e in matched.train + matched.val} == {CLEAN, "c1", "c2"}  # never c9 (not in regime)
    assert {e.condition for e in single.train + single.val} == {CLEAN, "c2"}
    assert matched.left_out == {"c3": matched.left_out["c3"]} and "skipped" in matched.left_out["c3"]
    # Augmented examples are utterances of the same role, with their own labels.
    train_ids = set(role_utterances(manifest, folds, 2, "train"))
    assert all(e.utt_id in train_ids for e in matched.train)
    half = assemble_toy(corpus, Regime("matched", "matched", ("c1", "c2")), augmented_per_clean=0.5)
    assert half.n_augmented_train == round(0.5 * n_clean)


def test_no_test_role_utterance_in_training_or_validation(corpus):
    manifest, folds, _ = corpus
    for fold in range(1, 6):
        test = set(role_utterances(manifest, folds, fold, "test"))
        for regime in (Regime("clean", "clean"), Regime("all", "all", ("c1", "c2", "c3"))):
            sets = assemble_toy(corpus, regime, fold=fold)
            used = {e.utt_id for e in sets.train + sets.val}
            assert used and not used & test
            assert not {e.utt_id for e in sets.train} & {e.utt_id for e in sets.val}


def test_augmented_draws_are_seeded_per_regime_fold_rep_task(corpus):
    regime = Regime("matched", "matched", ("c1", "c2"))
    first = assemble_toy(corpus, regime)
    assert first.train == assemble_toy(corpus, regime).train
    assert first.train != assemble_toy(corpus, regime, rep=2).train
    assert first.train != assemble_toy(corpus, regime, seed=8).train
    # The order of conditions in the config does not matter.
    assert first.train == assemble_toy(corpus, Regime("matched", "matched", ("c2", "c1"))).train


def test_draws_without_replacement_then_whole_rounds():
    pool = [(f"u{i}", "c") for i in range(5)]
    rng = np.random.default_rng(0)
    assert len(set(draw_pairs(pool, 5, rng))) == 5
    many = draw_pairs(pool, 12, rng)
    assert len(many) == 12 and all(many.count(p) >= 2 for p in pool)


def test_a_regime_with_only_skipped_conditions_is_an_error(corpus):
    with pytest.raises(TrainingDataError, match="skipped"):
        assemble_toy(corpus, Regime("mismatched-y", "mismatched", ("c3",), "y"))


def _write_archives(tmp_path, manifest, folds, fold, *, other_offset):
    """Clean and c1 archives: train-role frames ~ N(0, 1); val/test-role frames shifted by other_offset."""
    rng = np.random.default_rng(3)
    train_ids = set(role_utterances(manifest, folds, fold, "train"))
    paths = {}
    for condition in (CLEAN, "c1"):
        items = []
        for u in manifest["utt_id"]:
            feats = rng.normal(size=(int(rng.integers(5, 20)), 40))
            items.append((u, feats if u in train_ids else feats + other_offset))
        paths[condition] = tmp_path / f"{condition}-{other_offset}.h5"
        write_feature_archive(paths[condition], items)
    return paths


def test_z_normalisation_uses_training_statistics_only(corpus, tmp_path):
    manifest, folds, available = corpus
    sets = assemble_toy(corpus, Regime("matched", "matched", ("c1",)))
    results = []
    for offset in (0.0, 50.0):
        paths = _write_archives(tmp_path, manifest, folds, 2, other_offset=offset)
        results.append(load_and_normalise(sets, paths))
    (train_a, val_a, mean_a, std_a), (train_b, val_b, mean_b, std_b) = results
    # Val/test features changed a lot; the statistics did not move at all.
    assert np.array_equal(mean_a, mean_b) and np.array_equal(std_a, std_b)
    assert all(np.array_equal(a, b) for a, b in zip(train_a, train_b))
    frames = np.concatenate(train_a)
    assert np.allclose(frames.mean(axis=0), 0, atol=1e-3) and np.allclose(frames.std(axis=0), 1, atol=1e-3)
    # Validation is normalised with the training statistics: the shift shows.
    assert np.concatenate(val_b).mean() > 40
    mean, std = norm_stats([np.ones((3, 40)), 3 * np.ones((1, 40))])
    assert np.allclose(mean, 1.5) and np.allclose(std, np.sqrt(0.75))
    save_norm(tmp_path / "norm.npz", mean_a, std_a)
    loaded = load_norm(tmp_path / "norm.npz")
    assert np.array_equal(loaded[0], mean_a) and np.array_equal(loaded[1], std_a)


# ------------------------------------------------------------------------------ loop

SMALL = TDNNConfig(conv_channels=8, conv_width=2, conv_layers=2, pool_width=2, gru_layers=1, gru_units=8,
                   dense_layers=1)


def _separable(n: int, seed: int, flip: bool = False) -> SequenceData:
    """Class k has +1.5 on channels 10k..10k+9 (flip: label (k + 1) mod 3 instead)."""
    rng = np.random.default_rng(seed)
    arrays, labels = [], []
    for i in range(n):
        k = i % 3
        a = rng.normal(size=(int(rng.integers(6, 30)), 40)).astype(np.float32)
        a[:, 10 * k:10 * k + 10] += 1.5
        arrays.append(a)
        labels.append((k + 1) % 3 if flip else k)
    return SequenceData(arrays, labels)


def _settings(**overrides) -> TrainSettings:
    values = dict(max_epochs=25, patience=25, batch_size=16, learning_rate=3e-3)
    values.update(overrides)
    return TrainSettings(**values)


def test_learns_a_separable_problem():
    torch.set_num_threads(1)
    train, val = _separable(150, 0), _separable(60, 1)
    result = train_one(SMALL, train, val, _settings(max_epochs=15, patience=5), seed=1)
    model = TDNN(SMALL)
    model.load_state_dict(result.state_dict)
    predicted = predict_proba(model, val.arrays).argmax(axis=1)
    accuracy = float(np.mean(predicted == val.labels))
    assert accuracy > 0.9 and result.best_val_uar > 0.9
    # The result keeps the best epoch's validation predictions (for the degenerate-model check): those
    # of the restored model, in the evaluator's order (sorted by length).
    order = np.argsort(val.lengths, kind="stable")
    assert np.array_equal(result.val_labels, val.labels[order]) and np.array_equal(result.val_predicted, predicted[order])
    assert [row["epoch"] for row in result.curve] == list(range(1, result.epochs_run + 1))
    assert set(result.curve[0]) == {"epoch", "train_loss", "val_loss", "val_uar"}


def test_early_stopping_restores_the_best_epoch():
    torch.set_num_threads(1)
    train = _separable(150, 0)
    val = _separable(60, 1, flip=True)  # what training learns makes validation worse
    result = train_one(SMALL, train, val, _settings(max_epochs=40, patience=3), seed=1)
    losses = [row["val_loss"] for row in result.curve]
    assert result.stopped_early and result.epochs_run == result.best_epoch + 3 < 40
    assert result.best_epoch == int(np.argmin(losses)) + 1 and result.best_val_loss == min(losses)
    assert losses[-1] > result.best_val_loss
    # The returned weights are those of the best epoch: they reproduce its validation loss.
    model = TDNN(SMALL)
    model.load_state_dict(result.state_dict)
    scores = predict_proba(model, val.arrays)
    loss = -np.mean(np.log(scores[np.arange(len(val)), val.labels]))
    assert loss == pytest.approx(result.best_val_loss, rel=1e-4)


def _scripted(val_losses, *, patience, max_epochs, min_epochs=None):
    """run_epochs on a dummy model whose validation losses are ``val_losses``, in order."""
    losses = iter(val_losses)
    extra = {} if min_epochs is None else {"min_epochs": min_epochs}
    return run_epochs(torch.nn.Linear(1, 1), lambda index: torch.tensor(0.1), lambda m: (next(losses), 0.5),
                      lambda: "weights", lengths=np.ones(4, np.int64), batch_size=2, rng=np.random.default_rng(0),
                      max_epochs=max_epochs, patience=patience, **extra)


def test_min_epochs_holds_off_early_stopping_then_patience_counts():
    never_again = [1.0] + [1.1] * 19  # no improvement after epoch 1
    plain = _scripted(never_again, patience=2, max_epochs=20)
    assert (plain["epochs_run"], plain["best_epoch"], plain["stopped_early"]) == (3, 1, True)
    held = _scripted(never_again, patience=2, max_epochs=20, min_epochs=8)
    assert (held["epochs_run"], held["best_epoch"], held["stopped_early"]) == (8, 1, True)
    # Held to epoch 7, the run sees the improvement of epoch 7; the wait restarts there and patience 2
    # ends the run at epoch 9; the best epoch is chosen over every epoch run.
    late = _scripted([1.0, 1.1, 1.1, 1.1, 1.1, 1.1, 0.9] + [1.0] * 13, patience=2, max_epochs=20, min_epochs=7)
    assert (late["epochs_run"], late["best_epoch"], late["best_val_loss"]) == (9, 7, 0.9)
    capped = _scripted(never_again, patience=2, max_epochs=5, min_epochs=8)  # max_epochs still caps
    assert (capped["epochs_run"], capped["stopped_early"]) == (5, False)


def test_min_epochs_one_is_the_old_loop_and_a_longer_run_shares_its_first_epochs():
    torch.set_num_threads(1)
    train, val = _separable(90, 0), _separable(30, 1, flip=True)  # stops early (see the test above)
    old = train_one(SMALL, train, val, _settings(max_epochs=30, patience=2), seed=3)
    assert old.stopped_early and old.epochs_run == old.best_epoch + 2
    for min_epochs in (1, old.epochs_run):  # a bound the run reaches anyway changes nothing, bit for bit
        same = train_one(SMALL, train, val, _settings(max_epochs=30, patience=2, min_epochs=min_epochs), seed=3)
        assert same.curve == old.curve and same.epochs_run == old.epochs_run
        assert all(torch.equal(same.state_dict[k], old.state_dict[k]) for k in old.state_dict)
        assert np.array_equal(same.val_predicted, old.val_predicted)
    longer = train_one(SMALL, train, val, _settings(max_epochs=30, patience=2, min_epochs=old.epochs_run + 3),
                       seed=3)
    assert longer.epochs_run >= old.epochs_run + 3 and longer.curve[: old.epochs_run] == old.curve


def test_same_seed_same_weights_other_seed_other_weights():
    torch.set_num_threads(1)
    train, val = _separable(60, 0), _separable(30, 1)
    settings = _settings(max_epochs=3, patience=3)
    a = train_one(SMALL, train, val, settings, seed=5)
    b = train_one(SMALL, train, val, settings, seed=5)
    c = train_one(SMALL, train, val, settings, seed=6)
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.curve == b.curve
    assert not all(torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)


def _recorded_training(monkeypatch, run, train, val):
    """train_one with ``run.seed``, recording the model's weights at construction and every epoch's batch order."""
    from sernoise.training import loop

    record = {"initial": None, "orders": []}

    class RecordingTDNN(TDNN):
        def __init__(self, config, **options):
            super().__init__(config, **options)
            record["initial"] = {k: v.detach().clone() for k, v in self.state_dict().items()}

    def recording_batches(lengths, batch_size, rng):
        batches = bucket_batches(lengths, batch_size, rng)
        record["orders"].append(np.concatenate(batches))
        return batches

    monkeypatch.setattr(loop, "TDNN", RecordingTDNN)
    monkeypatch.setattr(loop, "bucket_batches", recording_batches)
    train_one(SMALL, train, val, _settings(max_epochs=2, patience=2, max_frames=12), seed=run.seed)
    return record


def test_common_random_numbers_across_regimes_and_model_variants(monkeypatch):
    """Repetition r of one (fold, task) starts from the same weights and shuffles alike in every regime and variant."""
    from types import SimpleNamespace

    from sernoise.training.artifacts import TrainingRun

    torch.set_num_threads(1)
    clean = {"name": "clean", "kind": "clean"}
    matched = {"name": "matched", "kind": "matched", "train_conditions": ("c1", "c2")}

    def run(model, regime, rep=1):
        wildcards = SimpleNamespace(model=model, fold="2", rep=str(rep), task="activation")
        return TrainingRun.from_rule(wildcards, SimpleNamespace(regime=regime, seed=42))

    runs = {"tdnn clean": run("tdnn", clean), "tdnn matched": run("tdnn", matched),
            "tdnn_nr clean": run("tdnn_nr", clean), "tdnn_nr matched": run("tdnn_nr", matched)}
    assert len({r.seed for r in runs.values()}) == 1
    other_rep = run("tdnn", clean, rep=2)
    assert other_rep.seed != runs["tdnn clean"].seed

    # Same data (T-DNN vs T-DNN-NR see the same examples when denoising keeps the lengths; here
    # literally the same arrays): identical initial weights and identical batch orders.
    train, val = _separable(60, 0), _separable(30, 1)
    seen = {name: _recorded_training(monkeypatch, r, train, val) for name, r in runs.items()}
    reference = seen["tdnn clean"]
    for name, record in seen.items():
        assert record["initial"].keys() == reference["initial"].keys()
        assert all(torch.equal(record["initial"][k], reference["initial"][k]) for k in reference["initial"]), name
        assert len(record["orders"]) == 2
        assert all(np.array_equal(a, b) for a, b in zip(record["orders"], reference["orders"])), name
    # Other data (a regime's augmented copies): still the same initial weights.
    matched_other_data = _recorded_training(monkeypatch, runs["tdnn matched"], _separable(60, 7), val)
    assert all(torch.equal(matched_other_data["initial"][k], reference["initial"][k]) for k in reference["initial"])
    # The control: another repetition starts elsewhere and shuffles otherwise.
    elsewhere = _recorded_training(monkeypatch, other_rep, train, val)
    assert not all(torch.equal(elsewhere["initial"][k], reference["initial"][k]) for k in reference["initial"])
    assert not np.array_equal(elsewhere["orders"][0], reference["orders"][0])


def test_grid_search_trains_every_point_and_keeps_the_lowest_validation_loss():
    torch.set_num_threads(1)
    train, val = _separable(45, 0), _separable(15, 1)
    grid = {"conv_channels": [4, 8], "conv_width": [2], "conv_layers": [1], "pool_width": [2, 4],
            "gru_layers": [1], "gru_units": [4], "dense_layers": [1]}
    best, rows = grid_search(grid, train, val, _settings(max_epochs=2, patience=2), seed=0)
    assert len(rows) == len(grid_points(grid)) == 4
    assert sum(r["selected"] for r in rows) == 1
    chosen = next(r for r in rows if r["selected"])
    assert chosen["best_val_loss"] == min(r["best_val_loss"] for r in rows) == best.best_val_loss
    assert (best.config.conv_channels, best.config.pool_width) == (chosen["conv_channels"], chosen["pool_width"])
    with pytest.raises(Exception, match="unknown"):
        grid_points({"kernels": [3]})


def test_bucketed_batches_cover_every_example_once():
    lengths = np.random.default_rng(0).integers(10, 500, size=1000)
    batches = bucket_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000)) and max(len(b) for b in batches) == 32
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.25 * np.ptp(lengths)  # batches hold similar lengths


def test_training_crops_respect_max_frames():
    arrays = [np.ones((n, 40), np.float32) for n in (5, 50, 120)]
    x, n = collate(arrays, np.arange(3), "cpu", max_frames=40, rng=np.random.default_rng(0))
    assert n.tolist() == [5, 40, 40] and x.shape == (3, 40, 40)
    train, val = _separable(30, 0), _separable(15, 1)
    result = train_one(SMALL, train, val, _settings(max_epochs=1, max_frames=10), seed=0)
    assert result.epochs_run == 1


def test_class_weights():
    weights = class_weights(np.array([0, 0, 0, 1]))
    assert weights[2] == 0 and weights[1] == pytest.approx(3 * weights[0])


# ------------------------------------------------------------------------------ model files


def test_checkpoint_loads_with_weights_only_and_predicts_the_same(tmp_path):
    torch.set_num_threads(1)
    train, val = _separable(30, 0), _separable(15, 1)
    result = train_one(SMALL, train, val, _settings(max_epochs=1), seed=0)
    save_state(result.state_dict, tmp_path / "model.pt")
    (tmp_path / "hparams.yaml").write_text(yaml.safe_dump({"hparams": SMALL.as_dict()}))
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(state) == set(result.state_dict)
    model = load_model(tmp_path / "model.pt", tmp_path / "hparams.yaml")
    reference = TDNN(SMALL)
    reference.load_state_dict(result.state_dict)
    assert np.allclose(predict_proba(model, val.arrays), predict_proba(reference, val.arrays))
    # Raw features are normalised with the saved statistics before prediction.
    save_norm(tmp_path / "norm.npz", np.full(40, 2.0, np.float32), np.full(40, 4.0, np.float32))
    raw = [4 * a + 2 for a in val.arrays]
    assert np.allclose(predict_features(model, raw, tmp_path / "norm.npz"), predict_proba(reference, val.arrays),
                       atol=1e-5)


def test_predictions_file_format(tmp_path):
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    frames = [predictions_frame("clean", ["a", "b"], [0, 1], scores),
              predictions_frame("fade-in", [], [], np.zeros((0, 3)))]
    keys = prediction_keys("ravdess", "tdnn", "matched", "2", "1", "valence")
    write_predictions(frames, tmp_path / "p.csv", keys)
    table = read_predictions(tmp_path / "p.csv")
    assert list(table.columns) == PREDICTION_COLUMNS
    assert table[["corpus", "model", "regime", "fold", "rep", "task"]].drop_duplicates().to_dict("records") == [
        {"corpus": "ravdess", "model": "tdnn", "regime": "matched", "fold": 2, "rep": 1, "task": "valence"}]
    with pytest.raises(ValueError, match=r"p\.csv: prediction key\(s\) \['task'\] not given"):
        write_predictions(frames, tmp_path / "p.csv", {k: v for k, v in keys.items() if k != "task"})
    assert table["true"].tolist() == ["low", "mid"] and table["predicted"].tolist() == ["low", "high"]
    assert table["condition"].tolist() == ["clean", "clean"]
    assert np.allclose(table[["score_low", "score_mid", "score_high"]].to_numpy(), scores)
