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
in the paper), and the state of the epoch with the lowest validation loss kept.  Batches are
length-bucketed as for the T-DNN; ``max_seconds`` crops long training utterances to a random
window drawn anew each epoch (validation and test always see whole utterances).

Grid search: every combination of ``ednn.grid`` (``dense_layers``, ``dense_units``) is trained
with the same seed and the lowest best validation loss wins, as for the T-DNN.

Mixed precision: on CUDA with ``amp`` the forward pass runs under ``torch.autocast`` (bfloat16
where the GPU supports it, else float16 with a gradient scaler); the loss is computed in
float32.  On CPU everything is float32 and, with the same seed, bit-for-bit reproducible.  The
CUDA path has not been run on a GPU yet.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sernoise.audio_store import AudioStore
from sernoise.models.ednn import EDNN, HPARAM_KEYS, EDNNConfig, relative_lengths
from sernoise.training.data import Example, TrainingDataError
from sernoise.training.loop import (
    TrainingError, bucket_batches, class_weights, seed_everything, sorted_batches, uar,
)

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
    device: str = "cpu"

    @classmethod
    def from_config(cls, ednn: dict, device: str = "cpu") -> "EDNNSettings":
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
            device=device,
        )

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "device"}


def model_config(ednn: dict, point: dict | None = None) -> EDNNConfig:
    """The EDNNConfig of config ``ednn`` (freeze, top_k, dropout) and one grid point."""
    values = {"freeze": ednn.get("freeze", "feature_extractor"), "top_k": int(ednn.get("top_k", 2)),
              "dropout": float(ednn.get("dropout", 0.1))}
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
    needed: dict[str, list[str]] = {}
    for example in examples:
        needed.setdefault(example.condition, []).append(example.utt_id)
    loaded = {}
    for condition, utts in needed.items():
        if condition not in indexes:
            raise TrainingDataError(f"no audio dataset given for {condition!r}")
        loaded[condition] = read_utterances(open_store(indexes[condition]), utts)
    return [loaded[e.condition][e.utt_id] for e in examples]


@dataclass
class WaveData:
    """float32 waveforms and their class indices."""

    arrays: list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.arrays) != len(self.labels):
            raise TrainingError(f"{len(self.arrays)} waveforms but {len(self.labels)} labels")
        self.lengths = np.asarray([a.shape[0] for a in self.arrays], dtype=np.int64)
        if len(self.arrays) and int(self.lengths.min()) < 1:
            raise TrainingError("empty waveform")

    def __len__(self) -> int:
        return len(self.arrays)


def collate_waves(arrays, index, device, *, max_samples: int | None = None,
                  rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (batch, samples) float32 waveforms and their relative lengths (longest = 1.0).

    With ``max_samples``, a longer waveform is replaced by a window of that many samples at a
    random offset drawn from ``rng``.
    """
    chosen = [arrays[i] for i in index]
    if max_samples is not None:
        cropped = []
        for a in chosen:
            if a.shape[0] > max_samples:
                start = int(rng.integers(0, a.shape[0] - max_samples + 1))
                a = a[start:start + max_samples]
            cropped.append(a)
        chosen = cropped
    lengths = np.asarray([a.shape[0] for a in chosen], dtype=np.int64)
    batch = np.zeros((len(chosen), int(lengths.max())), dtype=np.float32)
    for row, a in enumerate(chosen):
        batch[row, : a.shape[0]] = a
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


@torch.no_grad()
def predict_proba(model: EDNN, arrays: list[np.ndarray], batch_size: int = 16, device="cpu",
                  amp: bool = True) -> np.ndarray:
    """(n, classes) softmax scores for waveforms (in the given order)."""
    device = torch.device(device)
    model.eval()
    out = np.zeros((len(arrays), model.config.n_classes), dtype=np.float32)
    if not arrays:
        return out
    dtype = autocast_dtype(device, amp)
    lengths = np.asarray([a.shape[0] for a in arrays])
    for index in sorted_batches(lengths, batch_size):
        wav, lens = collate_waves(arrays, index, device)
        with _autocast(device, dtype):
            logits = model(wav, lens)
        out[index] = torch.softmax(logits.float(), dim=1).cpu().numpy()
    return out


class _Evaluator:
    def __init__(self, data: WaveData, batch_size: int, device, weight, dtype):
        self.data, self.batch_size, self.device, self.dtype = data, batch_size, device, dtype
        self.batches = sorted_batches(data.lengths, batch_size)
        self.labels = np.concatenate([data.labels[i] for i in self.batches])
        self.criterion = nn.CrossEntropyLoss(weight=weight, reduction="sum")
        self.denominator = (float(weight[torch.from_numpy(self.labels).to(weight.device)].sum())
                            if weight is not None else float(len(self.labels)))

    @torch.no_grad()
    def __call__(self, model: EDNN) -> tuple[float, float]:
        model.eval()
        total, predicted = 0.0, []
        for index in self.batches:
            wav, lens = collate_waves(self.data.arrays, index, self.device)
            y = torch.from_numpy(self.data.labels[index]).to(self.device)
            with _autocast(self.device, self.dtype):
                logits = model(wav, lens)
            total += float(self.criterion(logits.float(), y))
            predicted.append(logits.argmax(dim=1).cpu().numpy())
        return total / self.denominator, uar(self.labels, np.concatenate(predicted))


@dataclass
class EDNNResult:
    config: EDNNConfig
    state_dict: dict           # trainable parameters of the best epoch (CPU)
    best_epoch: int
    best_val_loss: float
    best_val_uar: float
    epochs_run: int
    seconds: float
    curve: list[dict] = field(default_factory=list)
    stopped_early: bool = False
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
              seed: int, *, save_path=None, progress=None, tag: str = "") -> EDNNResult:
    """Fine-tune one E-DNN; the returned state is the best epoch's trainable parameters (on the CPU)."""
    if len(train) == 0 or len(val) == 0:
        raise TrainingError(f"empty training ({len(train)}) or validation ({len(val)}) set")
    device = torch.device(settings.device)
    seed_everything(seed)
    rng = np.random.default_rng(int(seed))
    model = EDNN(config, backbone_folder, save_path=save_path).to(device)
    dtype = autocast_dtype(device, settings.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    weight = None
    if settings.class_weighting:
        weight = torch.from_numpy(class_weights(train.labels, config.n_classes)).to(device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    optimiser = build_optimizer(model, settings)
    evaluate = _Evaluator(val, settings.eval_batch_size, device, weight, dtype)
    labels = torch.from_numpy(train.labels)
    max_samples = None if settings.max_seconds is None else int(round(settings.max_seconds * SAMPLE_RATE))
    lengths = train.lengths if max_samples is None else np.minimum(train.lengths, max_samples)

    best_loss, best_uar, best_epoch, best_state = math.inf, float("nan"), 0, None
    curve, waited, stopped_early = [], 0, False
    start = time.perf_counter()
    for epoch in range(1, settings.max_epochs + 1):
        tick = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for index in bucket_batches(lengths, settings.batch_size, rng):
            wav, lens = collate_waves(train.arrays, index, device, max_samples=max_samples, rng=rng)
            y = labels[index].to(device)
            optimiser.zero_grad(set_to_none=True)
            with _autocast(device, dtype):
                logits = model(wav, lens)
            loss = criterion(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            total += float(loss.detach()) * len(index)
            count += len(index)
        train_loss = total / count
        val_loss, val_uar = evaluate(model)
        curve.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_uar": val_uar})
        improved = math.isfinite(val_loss) and val_loss < best_loss
        if improved:
            best_loss, best_uar, best_epoch, waited = val_loss, val_uar, epoch, 0
            best_state = model.trainable_state()
        else:
            waited += 1
        if progress is not None:
            progress(f"{tag}epoch {epoch}/{settings.max_epochs} train_loss {train_loss:.4f} val_loss {val_loss:.4f} "
                     f"val_uar {val_uar:.3f} ({time.perf_counter() - tick:.1f} s){' *' if improved else ''}")
        if not math.isfinite(train_loss):
            raise TrainingError(f"{tag}training loss is {train_loss} at epoch {epoch}")
        if settings.patience is not None and waited >= settings.patience:
            stopped_early = epoch < settings.max_epochs
            break
    if best_state is None:
        raise TrainingError(f"{tag}validation loss was never finite")
    return EDNNResult(
        config=config, state_dict=best_state, best_epoch=best_epoch, best_val_loss=best_loss,
        best_val_uar=best_uar, epochs_run=len(curve), seconds=time.perf_counter() - start, curve=curve,
        stopped_early=stopped_early, n_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        n_parameters=sum(p.numel() for p in model.parameters()),
    )


def grid_points(ednn: dict) -> list[EDNNConfig]:
    """Every combination of ``ednn.grid`` (dense_layers, dense_units), in a fixed order."""
    grid = ednn.get("grid") or {}
    unknown = set(grid) - set(HPARAM_KEYS)
    if unknown:
        raise TrainingError(f"config key ednn.grid: unknown hyper-parameter(s) {sorted(unknown)}")
    defaults = EDNNConfig()
    values = [list(grid.get(key, [getattr(defaults, key)])) for key in HPARAM_KEYS]
    for key, options in zip(HPARAM_KEYS, values):
        if not options:
            raise TrainingError(f"config key ednn.grid.{key}: no values")
    return [model_config(ednn, dict(zip(HPARAM_KEYS, combo))) for combo in itertools.product(*values)]


def grid_search(ednn: dict, backbone_folder, train: WaveData, val: WaveData, settings: EDNNSettings, seed: int,
                *, save_path=None, progress=None) -> tuple[EDNNResult, list[dict]]:
    """Train every grid point; the result with the lowest best validation loss and one row per point."""
    points = grid_points(ednn)
    best, rows, best_index = None, [], 0
    for i, config in enumerate(points):
        tag = f"[grid {i + 1}/{len(points)}] " if len(points) > 1 else ""
        if progress is not None:
            progress(f"{tag}hyper-parameters {config.as_dict()}")
        result = train_one(config, backbone_folder, train, val, settings, seed, save_path=save_path,
                           progress=progress, tag=tag)
        if progress is not None:
            progress(f"{tag}best epoch {result.best_epoch}, validation loss {result.best_val_loss:.4f} "
                     f"({result.epochs_run} epochs, {result.seconds:.1f} s)")
        rows.append({
            "point": i, **{key: getattr(config, key) for key in HPARAM_KEYS},
            "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
            "val_uar_at_best": result.best_val_uar, "epochs_run": result.epochs_run, "selected": False,
        })
        if best is None or result.best_val_loss < best.best_val_loss:
            best, best_index = result, i
        else:
            del result
    rows[best_index]["selected"] = True
    return best, rows


# ------------------------------------------------------------------------------ saved models


def save_trainable(state: dict, path) -> None:
    torch.save({k: v.detach().cpu() for k, v in state.items()}, path)


def load_ednn(model_pt, hparams: dict, backbone_folder, *, save_path=None, device="cpu") -> EDNN:
    """The E-DNN of ``hparams`` (hparams.yaml content) on the backbone folder, with the trainable weights of
    ``model_pt`` (``torch.load(weights_only=True)``), in eval mode."""
    config = EDNNConfig.from_dict(hparams["hparams"])
    model = EDNN(config, backbone_folder, save_path=save_path)
    state = torch.load(model_pt, map_location="cpu", weights_only=True)
    try:
        model.load_trainable_state(state)
    except ValueError as error:
        raise ValueError(f"{model_pt}: {error}") from None
    return model.to(device).eval()


def check_backbone(hparams: dict) -> str:
    """The backbone folder of a trained model (hparams.yaml content), after checking that its weights are
    the ones the model was trained on (fingerprint recorded at training)."""
    from sernoise.pretrained import backbone_fingerprint

    backbone = hparams["backbone"]
    if backbone_fingerprint(backbone["folder"]) != backbone["fingerprint"]:
        raise ValueError(f"{backbone['folder']}: the backbone weights differ from those the model was trained on "
                         "(re-run train_ednn)")
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
