"""Training and prediction of the E-DNN (paper §7.3; E-DNN-NR §7.4.2) on audio.

Data: the same examples as the T-DNN (:func:`sernoise.training.data.assemble`: same regimes,
folds, repetitions, subsampling of augmented pairs, labels), read as 16 kHz waveforms from the
audio datasets instead of feature archives: clean speech from ``results/{corpus}/audio/`` and
each condition from ``results/{corpus}/augmented/{condition}/{pool}/`` (its ``index.csv`` lists
exactly the utterances with status ok, as the condition's feature archive does).  No
z-normalisation: the E-DNN normalises each waveform itself (:mod:`sernoise.models.ednn`).

One training: cross-entropy (optionally weighted by inverse training class frequency), Adam
with two learning rates (``learning_rate`` for the dense layers, ``backbone_learning_rate`` for
the unfrozen wav2vec2 parameters; SpeechBrain's IEMOCAP emotion recipe uses 1e-4 / 1e-5), at
most ``max_epochs`` epochs (paper: 8), optional early stopping (``patience``, off by default as
in the paper; never before ``min_epochs`` epochs, as for the T-DNN), and the state of the best epoch kept (the selection rule of
:func:`sernoise.training.loop.improves`: the strategy's metric, exact ties to the lower validation loss).  Batches are
length-bucketed as for the T-DNN; ``max_seconds`` crops long training utterances to a random
window drawn anew each epoch (validation and test always see whole utterances).

Grid search: every combination of ``ednn.grid`` (``dense_layers``, ``dense_units``) is trained
with the same seed and the best point by the same selection rule wins, as for the T-DNN.

Mixed precision: on CUDA with ``amp`` the forward pass runs under ``torch.autocast`` (bfloat16
where the GPU supports it, else float16 with a gradient scaler); the loss is computed in
float32.  On CPU everything is float32 and, with the same seed, bit-for-bit reproducible.  The
CUDA path has not been run on a GPU yet.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sernoise.audio_store import AudioStore
from sernoise.models.ednn import EDNN, HPARAM_KEYS, N_CLASSES, EDNNConfig, relative_lengths
from sernoise.training.data import Example, TrainingDataError, load_by_condition
from sernoise.training.loop import (
    BestPredictions, LabelledArrays, TrainingError, TrainResult, ValidationEvaluator, grid_combinations, loss_weights, padded_batch,
    prepare_task, run_epochs, search_grid, softmax_scores, start_training,
)
from sernoise.training.losses import task_loss
from sernoise.training.strategies import STANDARD, Strategy, StrategyRun
from sernoise.training.predict import load_weights, save_state

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class EDNNSettings:
    max_epochs: int = 8
    patience: int | None = None
    batch_size: int = 8
    eval_batch_size: int = 16
    learning_rate: float = 1e-4
    backbone_learning_rate: float = 1e-5
    class_weighting: bool = False
    max_seconds: float | None = None
    amp: bool = True
    min_epochs: int = 1  # no early stop before this many epochs (config training.min_epochs)
    device: str = "cpu"

    @classmethod
    def from_config(cls, ednn: dict, device: str = "cpu", min_epochs: int = 1) -> "EDNNSettings":
        return cls(
            max_epochs=int(ednn["max_epochs"]),
            patience=None if ednn.get("patience") is None else int(ednn["patience"]),
            batch_size=int(ednn["batch_size"]),
            eval_batch_size=int(ednn.get("eval_batch_size", ednn["batch_size"])),
            learning_rate=float(ednn["learning_rate"]),
            backbone_learning_rate=float(ednn["backbone_learning_rate"]),
            class_weighting=bool(ednn["class_weighting"]),
            max_seconds=None if ednn.get("max_seconds") is None else float(ednn["max_seconds"]),
            amp=bool(ednn.get("amp", True)),
            min_epochs=int(min_epochs),
            device=device,
        )

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "device"}


def model_config(ednn: dict, point: dict | None = None, n_outputs: int = N_CLASSES) -> EDNNConfig:
    """The EDNNConfig of config ``ednn`` (freeze, top_k, dropout), one grid point and the task's output size."""
    values = {"freeze": ednn.get("freeze", "feature_extractor"), "top_k": int(ednn.get("top_k", 2)),
              "dropout": float(ednn.get("dropout", 0.1)), "n_classes": int(n_outputs)}
    values.update({k: int(v) for k, v in (point or {}).items()})
    return EDNNConfig(**values)


# ------------------------------------------------------------------------------ audio


def open_store(index_csv) -> AudioStore:
    store = AudioStore.from_index(index_csv)
    if store.sample_rate not in (None, SAMPLE_RATE):
        raise TrainingDataError(f"{index_csv}: audio at {store.sample_rate} Hz; wav2vec2 needs {SAMPLE_RATE} Hz "
                                "(config key prepare.sample_rate)")
    return store


def store_utterances(index_csv) -> list[str]:
    """The utterances of an audio dataset (for an augmented one: those with status ok)."""
    return open_store(index_csv).utt_ids


def read_utterances(store: AudioStore, utt_ids: Iterable[str]) -> dict[str, np.ndarray]:
    """float32 waveforms of ``utt_ids``: a block-wise pass over a shard when much of it is needed, else single reads."""
    wanted = list(dict.fromkeys(utt_ids))
    missing = [u for u in wanted if u not in store]
    if missing:
        raise TrainingDataError(f"audio store has no {len(missing)} utterance(s), e.g. {missing[:3]}")
    by_shard: dict[int, list[str]] = {}
    for u in wanted:
        by_shard.setdefault(id(store.shard_of(u)), []).append(u)
    out = {}
    for shard in store.shards:
        needed = by_shard.get(id(shard))
        if not needed:
            continue
        if len(needed) > 0.25 * len(shard):
            keep = set(needed)
            out.update({u: x for u, x in shard if u in keep})
        else:
            out.update({u: shard.read(u) for u in needed})
        shard.close()
    return out


def load_waveforms(examples: list[Example], indexes: Mapping[str, str]) -> list[np.ndarray]:
    """Waveforms of each example, in order; ``indexes`` maps CLEAN / condition id -> index.csv of its audio."""
    return load_by_condition(examples, indexes, lambda index, utts: read_utterances(open_store(index), utts),
                             "audio dataset")


@dataclass
class WaveData(LabelledArrays):
    """float32 waveforms and their class indices."""

    noun = "waveforms"

    def __post_init__(self):
        super().__post_init__()
        if len(self.arrays) and int(self.lengths.min()) < 1:
            raise TrainingError("empty waveform")


def collate_waves(arrays, index, device, *, max_samples: int | None = None,
                  rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (batch, samples) float32 waveforms and their relative lengths (longest = 1.0).

    With ``max_samples``, a longer waveform is replaced by a window of that many samples at a
    random offset drawn from ``rng``.
    """
    batch, lengths = padded_batch(arrays, index, max_len=max_samples, rng=rng)
    return torch.from_numpy(batch).to(device), relative_lengths(lengths).to(device)


# ------------------------------------------------------------------------------ precision


def autocast_dtype(device: torch.device, amp: bool):
    """The autocast dtype on CUDA with ``amp`` (bfloat16 where supported, else float16); None otherwise."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def predict_proba(model: EDNN, arrays: list[np.ndarray], batch_size: int = 16, device="cpu",
                  amp: bool = True) -> np.ndarray:
    """(n, classes) softmax scores for waveforms (in the given order).

    A backbone fed without an attention mask (wav2vec2-base: GroupNorm feature encoder) sees only
    batches of equal-length waveforms, so no padding reaches it and a waveform's scores are the
    same in any batch (the attack's clean reference equals the predictions file's label).
    """
    device = torch.device(device)
    dtype = autocast_dtype(device, amp)

    def logits_of(index):
        with _autocast(device, dtype):
            return model(*collate_waves(arrays, index, device))

    return softmax_scores(model, [a.shape[0] for a in arrays], batch_size, logits_of,
                          equal_lengths=not model.use_attention_mask)


class _Evaluator(ValidationEvaluator):
    """E-DNN validation: each batch padded when it is needed (whole waveforms would fill the device)."""

    def __init__(self, data: WaveData, batch_size: int, device, weight, dtype, task=None, metrics=()):
        super().__init__(data, batch_size, weight, task, metrics)
        self.data, self.device, self.dtype = data, device, dtype

    def batch_logits(self, model: EDNN):
        for index in self.index_batches:
            wav, lens = collate_waves(self.data.arrays, index, self.device)
            y = torch.from_numpy(self.data.labels[index]).to(self.device)
            with _autocast(self.device, self.dtype):
                logits = model(wav, lens)
            yield logits, y


@dataclass
class EDNNResult(TrainResult):
    """A :class:`TrainResult` whose ``config`` is an EDNNConfig and whose ``state_dict`` holds the trainable
    parameters of the best epoch (CPU) only; with the model's parameter counts."""

    n_trainable: int = 0
    n_parameters: int = 0


def build_optimizer(model: EDNN, settings: EDNNSettings) -> torch.optim.Optimizer:
    head = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("wav2vec2.")]
    backbone = [p for name, p in model.named_parameters() if p.requires_grad and name.startswith("wav2vec2.")]
    groups = [{"params": head, "lr": settings.learning_rate}]
    if backbone:
        groups.append({"params": backbone, "lr": settings.backbone_learning_rate})
    return torch.optim.Adam(groups)


def train_one(config: EDNNConfig, backbone_folder, train: WaveData, val: WaveData, settings: EDNNSettings,
              seed: int, *, save_path=None, progress=None, tag: str = "", task=None,
              strategy: Strategy | None = None) -> EDNNResult:
    """Fine-tune one E-DNN; the returned state is the best epoch's trainable parameters (on the CPU).

    ``task`` and ``strategy`` as for the T-DNN (:func:`sernoise.training.loop.train_one`).
    """
    rng = start_training(train, val, seed)
    task, strategy, metrics = prepare_task(task, strategy, config.n_classes, train, settings.class_weighting)
    device = torch.device(settings.device)
    model = EDNN(config, backbone_folder, save_path=save_path).to(device)
    dtype = autocast_dtype(device, settings.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    weight = loss_weights(train.labels, config.n_classes, device, settings.class_weighting)
    hooks = StrategyRun(strategy, seed, len(train), task_loss(task, weight), config.n_classes)
    optimiser = build_optimizer(model, settings)
    labels = torch.from_numpy(train.labels)
    max_samples = None if settings.max_seconds is None else int(round(settings.max_seconds * SAMPLE_RATE))

    def forward(wav, lens):
        with _autocast(device, dtype):
            return model(wav, lens)

    def step(index):
        wav, lens = collate_waves(train.arrays, index, device, max_samples=max_samples, rng=rng)
        y = labels[index].to(device)
        optimiser.zero_grad(set_to_none=True)
        loss = hooks.batch_loss(model, forward, index, (wav, lens), y)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        return loss

    evaluator = _Evaluator(val, settings.eval_batch_size, device, weight, dtype, task, metrics)
    best = BestPredictions(evaluator, model.trainable_state)
    fitted = run_epochs(
        model, step, evaluator.scores, best,
        lengths=train.lengths if max_samples is None else np.minimum(train.lengths, max_samples),
        batch_size=settings.batch_size, rng=rng, max_epochs=settings.max_epochs, patience=settings.patience,
        progress=progress, tag=tag, items=hooks.epoch_items, select=strategy.selection_metric,
        min_epochs=settings.min_epochs,
    )
    return EDNNResult(
        config=config, **fitted, **best.fields(), n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        n_parameters=sum(p.numel() for p in model.parameters()),
    )


def grid_points(ednn: dict, n_outputs: int = N_CLASSES) -> list[EDNNConfig]:
    """Every combination of ``ednn.grid`` (dense_layers, dense_units), in a fixed order; ``n_outputs`` outputs."""
    points = grid_combinations(ednn.get("grid") or {}, HPARAM_KEYS, EDNNConfig(), "ednn.grid")
    return [model_config(ednn, point, n_outputs) for point in points]


def grid_search(ednn: dict, backbone_folder, train: WaveData, val: WaveData, settings: EDNNSettings, seed: int,
                *, save_path=None, progress=None, task=None,
                strategy: Strategy | None = None) -> tuple[EDNNResult, list[dict]]:
    """Train every grid point (output layer sized by ``task``); the best result and one row per point."""
    return search_grid(
        grid_points(ednn, N_CLASSES if task is None else task.output_size), HPARAM_KEYS,
        lambda config, tag: train_one(config, backbone_folder, train, val, settings, seed, save_path=save_path,
                                      progress=progress, tag=tag, task=task, strategy=strategy),
        progress=progress, select=(strategy or STANDARD).selection_metric,
    )


# ------------------------------------------------------------------------------ saved models


def save_trainable(state: dict, path) -> None:
    """Save the trainable parameters (:meth:`EDNN.trainable_state`) as a state dict of tensors."""
    save_state(state, path)


def load_ednn(model_pt, hparams: dict, backbone_folder, *, save_path=None, device="cpu") -> EDNN:
    """The E-DNN of ``hparams`` (hparams.yaml content) on the backbone folder, with the trainable weights of
    ``model_pt`` (``torch.load(weights_only=True)``), in eval mode."""
    model = EDNN(EDNNConfig.from_dict(hparams["hparams"]), backbone_folder, save_path=save_path)
    return load_weights(model, model_pt, model.load_trainable_state, device=device)


def check_backbone(hparams: dict) -> str:
    """The backbone folder of a trained model (hparams.yaml content), after checking that its weights are
    the ones the model was trained on (fingerprint recorded at training)."""
    from sernoise.pretrained import backbone_fingerprint

    backbone = hparams["backbone"]
    if backbone_fingerprint(backbone["folder"]) != backbone["fingerprint"]:
        raise ValueError(f"{backbone['folder']}: the backbone weights differ from those the model was trained on "
                         "(re-run train_audio_model)")
    return backbone["folder"]


class EdnnPredictor:
    """Black-box access to a trained E-DNN for the noise attack (``sernoise.attack.models``): a batch of
    16 kHz audio arrays -> predicted class indices.  Counts calls and samples and times the model."""

    def __init__(self, model: EDNN, *, device: str = "cpu", batch_size: int = 16, amp: bool = True):
        self.model, self.device, self.batch_size, self.amp = model, device, int(batch_size), bool(amp)
        self.calls = 0
        self.samples = 0
        self.seconds = {"features": 0.0, "model": 0.0}

    @classmethod
    def from_folder(cls, folder, device: str = "cpu", save_path=None) -> "EdnnPredictor":
        import yaml
        from pathlib import Path

        folder = Path(folder)
        hparams = yaml.safe_load((folder / "hparams.yaml").read_text(encoding="utf-8"))
        model = load_ednn(folder / "model.pt", hparams, check_backbone(hparams), save_path=save_path, device=device)
        training = hparams.get("training") or {}
        return cls(model, device=device, batch_size=training.get("eval_batch_size", 16), amp=training.get("amp", True))

    def scores(self, batch) -> np.ndarray:
        tick = time.perf_counter()
        scores = predict_proba(self.model, [np.asarray(a, dtype=np.float32) for a in batch],
                               batch_size=self.batch_size, device=self.device, amp=self.amp)
        self.seconds["model"] += time.perf_counter() - tick
        self.calls += 1
        self.samples += len(batch)
        return scores

    def __call__(self, batch) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.scores(batch).argmax(axis=1)
