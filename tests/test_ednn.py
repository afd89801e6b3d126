"""The E-DNN (sernoise.models.ednn) and its training (sernoise.training.ednn) on a tiny random wav2vec2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sernoise.audio_store import ShardWriter
from sernoise.models.ednn import EDNN, EDNNConfig, normalise_waveforms, relative_lengths
from sernoise.predictions import CLEAN
from sernoise.pretrained import make_tiny_wav2vec2
from sernoise.training.data import Example
from sernoise.training.ednn import (
    EDNNSettings, WaveData, _Evaluator, collate_waves, grid_points, load_ednn, load_waveforms, predict_proba,
    save_trainable, train_one,
)
from sernoise.training.loop import TrainingError, seed_everything

from fixtures.tiny_wav2vec2 import SR, tone_data


@pytest.fixture(scope="module")
def tiny_group_norm(tmp_path_factory):
    """wav2vec2-base's layout: GroupNorm CNN, no attention mask."""
    folder = tmp_path_factory.mktemp("w2v_group") / "tiny-group"
    make_tiny_wav2vec2(folder, seed=5, feat_extract_norm="group", do_stable_layer_norm=False)
    return folder


def test_forward_shapes(tiny):
    model = EDNN(EDNNConfig(dense_layers=2, dense_units=16), tiny).eval()
    wav, lens = collate_waves([np.zeros(SR, np.float32) + 0.1, np.ones(SR // 2, np.float32)], [0, 1], "cpu")
    with torch.no_grad():
        assert model(wav, lens).shape == (2, 3)
        assert model.embed(wav, lens).shape == (2, 32)
    assert relative_lengths([SR, SR // 2]).tolist() == [1.0, 0.5]


def test_pooled_output_does_not_depend_on_padding(tiny):
    model = EDNN(EDNNConfig(), tiny).eval()
    data = tone_data(4, seed=1)
    short = data.arrays[0][: SR // 2]
    with torch.no_grad():
        alone = model.embed(torch.from_numpy(short)[None], torch.ones(1))[0]
        for longer in (data.arrays[1], np.concatenate([data.arrays[2], data.arrays[3]])):
            wav, lens = collate_waves([longer, short], [0, 1], "cpu")
            padded = model.embed(wav, lens)[1]
            assert torch.allclose(alone, padded, atol=1e-5), (alone - padded).abs().max()


def test_normalisation_matches_the_feature_extractor(tiny):
    from transformers import Wav2Vec2FeatureExtractor

    extractor = Wav2Vec2FeatureExtractor.from_pretrained(tiny)
    data = tone_data(2, seed=2)
    wav, lens = collate_waves(data.arrays, [0, 1], "cpu")
    ours = normalise_waveforms(wav, torch.round(lens * wav.shape[1]).long())
    for row, x in enumerate(data.arrays):
        theirs = extractor(x, sampling_rate=SR, return_tensors="np")["input_values"][0]
        assert np.allclose(ours[row, : len(x)].numpy(), theirs, atol=1e-4)
        assert (ours[row, len(x):] == 0).all()


def test_group_norm_backbone_runs_without_attention_mask(tiny_group_norm):
    model = EDNN(EDNNConfig(), tiny_group_norm).eval()
    assert not model.use_attention_mask
    data = tone_data(3)
    scores = predict_proba(model, data.arrays, batch_size=2)
    assert scores.shape == (3, 3) and np.allclose(scores.sum(axis=1), 1, atol=1e-5)


def test_group_norm_scores_do_not_depend_on_the_batch(tiny_group_norm):
    """wav2vec2-base's GroupNorm encoder normalises over padding too: predict_proba never pads for it,
    so an utterance scores the same alone and beside longer ones (the attack relies on this)."""
    model = EDNN(EDNNConfig(), tiny_group_norm).eval()
    data = tone_data(5, seed=3)
    arrays = data.arrays + [data.arrays[0].copy()]  # two of one length: batched together, unpadded
    together = predict_proba(model, arrays, batch_size=8)
    for i, x in enumerate(arrays):
        alone = predict_proba(model, [x], batch_size=8)[0]
        assert np.allclose(together[i], alone, atol=1e-5), (i, together[i], alone)
    # padding would have changed it: the same utterance zero-padded to a longer one's length
    wav, lens = collate_waves([arrays[0], np.zeros(len(arrays[0]) + SR // 2, np.float32)], [0, 1], "cpu")
    with torch.no_grad():
        padded = torch.softmax(model(wav, lens).float(), dim=1)[0].numpy()
    assert not np.allclose(padded, together[0], atol=1e-5)


@pytest.mark.parametrize("freeze", ["none", "feature_extractor", "all_but_top_k", "all"])
def test_freezing_keeps_frozen_parameters_unchanged(tiny, freeze):
    torch.manual_seed(0)
    model = EDNN(EDNNConfig(freeze=freeze, top_k=1), tiny)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainable = set(model.trainable_names())
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    data = tone_data(4)
    wav, lens = collate_waves(data.arrays, np.arange(4), "cpu")
    loss = torch.nn.functional.cross_entropy(model(wav, lens), torch.from_numpy(data.labels))
    loss.backward()
    optimiser.step()
    changed = {k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])}
    assert changed <= trainable
    assert any(k.startswith("output.") for k in changed)
    backbone = {k for k in trainable if k.startswith("wav2vec2.")}
    extractor = {k for k in before if ".feature_extractor." in k}
    if freeze == "all":
        assert not backbone
    else:
        assert changed & backbone  # the unfrozen wav2vec2 part learns
    if freeze != "none":
        assert not (trainable & extractor)
    if freeze == "all_but_top_k":
        assert all(".encoder.layers.1." in k or ".encoder.layer_norm." in k for k in backbone)
    # frozen parts stay in eval mode in training mode (no dropout / LayerDrop there)
    model.train()
    if freeze == "all":
        assert not model.wav2vec2.model.training
    elif freeze != "none":
        assert not model.wav2vec2.model.feature_extractor.training and model.wav2vec2.model.encoder.training


def test_training_decreases_loss_and_checkpoint_loads_with_weights_only(tiny, tmp_path):
    train, val = tone_data(12, seed=3), tone_data(6, seed=4)
    settings = EDNNSettings(max_epochs=2, batch_size=6, learning_rate=3e-3, backbone_learning_rate=1e-3)
    config = EDNNConfig(dense_units=16, dropout=0.0)
    seed = 11
    seed_everything(seed)
    fresh = EDNN(config, tiny)  # the initial weights train_one starts from (same seed)
    loss_of = _Evaluator(train, 8, torch.device("cpu"), None, None)
    loss_before, _ = loss_of(fresh)

    result = train_one(config, tiny, train, val, settings, seed)
    assert result.epochs_run == 2 and 1 <= result.best_epoch <= 2
    assert [row["epoch"] for row in result.curve] == [1, 2]
    assert set(result.state_dict) == set(fresh.trainable_names())
    assert result.n_trainable < result.n_parameters

    path = tmp_path / "model.pt"
    save_trainable(result.state_dict, path)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model = load_ednn(path, {"hparams": config.as_dict()}, tiny)
    loss_after, _ = loss_of(model)
    assert loss_after < loss_before
    val_loss, _ = _Evaluator(val, 4, torch.device("cpu"), None, None)(model)
    assert val_loss == pytest.approx(result.best_val_loss, rel=1e-5)

    # same seed, same data: bit-identical weights on CPU
    again = train_one(config, tiny, train, val, settings, seed)
    assert all(torch.equal(again.state_dict[k], result.state_dict[k]) for k in result.state_dict)


def test_checkpoint_of_another_freeze_setting_is_refused(tiny, tmp_path):
    model = EDNN(EDNNConfig(freeze="all"), tiny)
    save_trainable(model.trainable_state(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match="does not fit"):
        load_ednn(tmp_path / "model.pt", {"hparams": EDNNConfig(freeze="none").as_dict()}, tiny)


def test_empty_sets_and_bad_grid_are_errors(tiny):
    with pytest.raises(TrainingError):
        train_one(EDNNConfig(), tiny, WaveData([], []), tone_data(3), EDNNSettings(), 0)
    assert [(c.dense_layers, c.dense_units) for c in grid_points({"grid": {"dense_layers": [1, 2]}})] == [(1, 512), (2, 512)]
    assert grid_points({"freeze": "all", "grid": {}})[0].freeze == "all"
    with pytest.raises(TrainingError, match="ednn.grid"):
        grid_points({"grid": {"gru_units": [8]}})


def test_waveforms_come_from_the_audio_datasets(tmp_path):
    data = tone_data(6)
    clean_dir, noisy_dir = tmp_path / "audio", tmp_path / "noisy"
    for folder, scale in ((clean_dir, 1.0), (noisy_dir, 0.5)):
        rows = []
        for s, block in enumerate((range(0, 3), range(3, 6))):
            with ShardWriter(folder / f"shard-{s:03d}.h5") as writer:
                for i in block:
                    writer.add(f"u{i}", data.arrays[i] * scale)
                    rows.append({"utt_id": f"u{i}", "shard": f"shard-{s:03d}.h5"})
        pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    examples = [Example("u4", CLEAN, 1), Example("u0", "noisy", 0), Example("u4", "noisy", 1)]
    waves = load_waveforms(examples, {CLEAN: clean_dir / "index.csv", "noisy": noisy_dir / "index.csv"})
    assert np.allclose(waves[0], data.arrays[4], atol=1e-4)
    assert np.allclose(waves[1], 0.5 * data.arrays[0], atol=1e-4)
    assert np.allclose(waves[2], 0.5 * data.arrays[4], atol=1e-4)


def test_attack_predictor_reads_a_model_folder(tiny, tmp_path):
    import yaml

    from sernoise.pretrained import backbone_fingerprint
    from sernoise.training.ednn import EdnnPredictor

    config = EDNNConfig(dense_units=8)
    torch.manual_seed(0)
    model = EDNN(config, tiny).eval()
    save_trainable(model.trainable_state(), tmp_path / "model.pt")
    hparams = {"hparams": config.as_dict(), "training": {"eval_batch_size": 4, "amp": True},
               "backbone": {"folder": str(tiny), "fingerprint": backbone_fingerprint(tiny)}}
    (tmp_path / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    predictor = EdnnPredictor.from_folder(tmp_path)
    data = tone_data(5)
    labels = predictor(data.arrays)
    assert labels.shape == (5,) and predictor.calls == 1 and predictor.samples == 5
    assert (labels == predict_proba(model, data.arrays).argmax(axis=1)).all()
    assert predictor([]).shape == (0,)
    hparams["backbone"]["fingerprint"] = "0" * 64  # another backbone than the one trained on
    (tmp_path / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    with pytest.raises(ValueError, match="differ"):
        EdnnPredictor.from_folder(tmp_path)


def test_table3_labels_a_stand_in_backbone(tmp_path):
    """Table 3 labels E-DNN columns trained on the tiny stand-in and says so in its caption."""
    from sernoise.conditions import build_conditions
    from sernoise.evaluation.metrics import compute_metrics, speaker_confusion
    from fixtures.synthetic_predictions import SPEAKERS, synthetic_config, write_synthetic_predictions
    from sernoise.evaluation.table3 import build_table3
    from sernoise.evaluation.uar_table import to_html, to_latex, to_markdown

    config = synthetic_config()
    config["training"]["models"] = ["tdnn", "ednn"]
    paths = write_synthetic_predictions(tmp_path, config, model="tdnn", regimes=["clean"])
    paths += write_synthetic_predictions(tmp_path, config, model="ednn", regimes=["clean"])
    _, confusion = compute_metrics(paths)
    speakers = speaker_confusion(paths, SPEAKERS)
    label = "E-DNN (tiny random wav2vec2)"
    note = f"{label}: a tiny randomly initialised wav2vec2 stands in for facebook/wav2vec2-base."
    table = build_table3(confusion, config, build_conditions(config["conditions"]).values(),
                         model_labels={"ednn": label}, model_notes=[note, "E-DNN-NR (tiny random wav2vec2): other"],
                         speakers=speakers, statistics={"resamples": 500})
    assert set(table.cells.loc[table.cells.model == "ednn", "model_label"]) == {label}
    assert set(table.cells.loc[table.cells.model == "tdnn", "model_label"]) == {"T-DNN"}
    markdown = to_markdown(table)
    assert f"| {label} |" in markdown and note in markdown.splitlines()[0] and "E-DNN-NR" not in markdown
    assert label in to_latex(table) and label in to_html(table)
