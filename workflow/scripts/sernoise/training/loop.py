"""Training of the T-DNN (paper §7.2.3) and the hyper-parameter grid search (Table 1).

One training: cross-entropy (optionally weighted by inverse training class frequency),
RMSprop, at most ``max_epochs`` epochs, early stopping when the validation loss has not
improved for ``patience`` consecutive epochs, and the weights reverted to the epoch with the
lowest validation loss.  The validation loss uses the same criterion as training (with
class weights, the weighted mean over all validation examples).

Training crops: with ``max_frames`` (config ``tdnn.max_frames``), a training utterance longer
than that is cut to a window of ``max_frames`` frames at a random offset, drawn anew every
epoch (a speed knob for CPU runs: the cost of an epoch grows with the frames; validation and
test always see whole utterances, which mean pooling over time allows).

Batches are length-bucketed: the examples are shuffled, cut into chunks of
``BUCKET_BATCHES`` batches, each chunk sorted by length and cut into batches, and the batch
order shuffled again.  Batches then hold utterances of similar length (little padding) and
still differ from epoch to epoch.  Padding never changes a model output (see
:mod:`sernoise.models.tdnn`), so bucketing changes speed, not results.

Grid search: every combination of the grid is trained with the same seed (so that points
differ only in their hyper-parameters); the lowest best validation loss wins (ties: the
first point in grid order).  The selection table holds no timings (they go to the log), so
the same config gives the same files.

Determinism: :func:`seed_everything` seeds torch (CPU and CUDA) and makes cuDNN
deterministic; batch order comes from a NumPy generator with the same seed.  On CPU the same
seed and data give bit-identical weights; on CUDA, torch's deterministic mode is asked for
with ``warn_only`` (a kernel without a deterministic version warns instead of failing).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sernoise.models.tdnn import HPARAM_KEYS, N_CLASSES, TDNN, TDNNConfig

BUCKET_BATCHES = 16


class TrainingError(RuntimeError):
    """A training cannot run (no data, bad settings)."""


@dataclass(frozen=True)
class TrainSettings:
    max_epochs: int = 50
    patience: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    class_weighting: bool = False
    device: str = "cpu"
    max_frames: int | None = None  # training crops (see module doc); None: whole utterances

    @classmethod
    def from_config(cls, tdnn: dict, device: str = "cpu") -> "TrainSettings":
        return cls(
            max_epochs=int(tdnn["max_epochs"]),
            patience=int(tdnn["patience"]),
            batch_size=int(tdnn["batch_size"]),
            learning_rate=float(tdnn["learning_rate"]),
            class_weighting=bool(tdnn["class_weighting"]),
            device=device,
            max_frames=None if tdnn.get("max_frames") is None else int(tdnn["max_frames"]),
        )


@dataclass
class SequenceData:
    """z-normalised float32 sequences (frames, 40) and their class indices."""

    arrays: list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.arrays) != len(self.labels):
            raise TrainingError(f"{len(self.arrays)} sequences but {len(self.labels)} labels")
        self.lengths = np.asarray([a.shape[0] for a in self.arrays], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.arrays)


@dataclass
class TrainResult:
    config: TDNNConfig
    state_dict: dict
    best_epoch: int
    best_val_loss: float
    best_val_uar: float
    epochs_run: int
    seconds: float
    curve: list[dict] = field(default_factory=list)
    stopped_early: bool = False


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' without a GPU is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("config key training.device is 'cuda' but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise TrainingError(f"config key training.device: unknown device {name!r}")
    return name


def seed_everything(seed: int) -> None:
    """Seed torch and ask for deterministic kernels (cuDNN included)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(int(seed))
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def uar(true, predicted, n_classes: int = N_CLASSES) -> float:
    """Unweighted average recall over the classes present in ``true`` (NaN when empty)."""
    true = np.asarray(true)
    predicted = np.asarray(predicted)
    recalls = [float(np.mean(predicted[true == k] == k)) for k in range(n_classes) if np.any(true == k)]
    return float(np.mean(recalls)) if recalls else float("nan")


def class_weights(labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Inverse class frequency, normalised to mean 1 over the classes present (absent classes: 0)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    present = counts > 0
    weights[present] /= weights[present].mean()
    return weights.astype(np.float32)


def bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches of similar length: shuffle, sort within chunks of BUCKET_BATCHES batches, shuffle batches."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Deterministic batches for evaluation: examples sorted by length."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def collate(arrays: list[np.ndarray], index: np.ndarray, device, *, max_frames: int | None = None,
            rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (batch, max_len, 40) float32 tensor and the lengths of ``arrays[index]``.

    With ``max_frames``, a longer sequence is replaced by a window of ``max_frames`` frames at a
    random offset drawn from ``rng``.
    """
    chosen = [arrays[i] for i in index]
    if max_frames is not None:
        cropped = []
        for a in chosen:
            if a.shape[0] > max_frames:
                start = int(rng.integers(0, a.shape[0] - max_frames + 1))
                a = a[start:start + max_frames]
            cropped.append(a)
        chosen = cropped
    lengths = np.asarray([a.shape[0] for a in chosen], dtype=np.int64)
    batch = np.zeros((len(chosen), int(lengths.max()), chosen[0].shape[1]), dtype=np.float32)
    for row, a in enumerate(chosen):
        batch[row, : a.shape[0]] = a
    return torch.from_numpy(batch).to(device), torch.from_numpy(lengths)


@torch.no_grad()
def predict_proba(model: nn.Module, arrays: list[np.ndarray], batch_size: int = 64, device="cpu") -> np.ndarray:
    """(n, classes) softmax scores of ``model`` for normalised ``arrays`` (in the given order)."""
    model.eval()
    out = np.zeros((len(arrays), model.config.n_classes), dtype=np.float32)
    if not arrays:
        return out
    lengths = np.asarray([a.shape[0] for a in arrays])
    for index in sorted_batches(lengths, batch_size):
        x, n = collate(arrays, index, device)
        out[index] = torch.softmax(model(x, n), dim=1).float().cpu().numpy()
    return out


class _Evaluator:
    """Validation loss and UAR with the batches padded once and kept on the device."""

    def __init__(self, data: SequenceData, batch_size: int, device, weight: torch.Tensor | None):
        self.batches = [(collate(data.arrays, index, device), torch.from_numpy(data.labels[index]).to(device))
                        for index in sorted_batches(data.lengths, batch_size)]
        self.labels = np.concatenate([data.labels[i] for i in sorted_batches(data.lengths, batch_size)])
        self.criterion = nn.CrossEntropyLoss(weight=weight, reduction="sum")
        self.weight = weight
        self.denominator = float(weight[torch.from_numpy(self.labels).to(weight.device)].sum()) if weight is not None \
            else float(len(self.labels))

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> tuple[float, float]:
        model.eval()
        total, predicted = 0.0, []
        for (x, n), y in self.batches:
            logits = model(x, n)
            total += float(self.criterion(logits, y))
            predicted.append(logits.argmax(dim=1).cpu().numpy())
        return total / self.denominator, uar(self.labels, np.concatenate(predicted))


def train_one(
    config: TDNNConfig,
    train: SequenceData,
    val: SequenceData,
    settings: TrainSettings,
    seed: int,
    *,
    progress=None,
    tag: str = "",
) -> TrainResult:
    """Train one T-DNN with early stopping; the returned state is the best epoch's (on the CPU)."""
    if len(train) == 0 or len(val) == 0:
        raise TrainingError(f"empty training ({len(train)}) or validation ({len(val)}) set")
    device = torch.device(settings.device)
    seed_everything(seed)
    rng = np.random.default_rng(int(seed))
    model = TDNN(config).to(device)
    weight = None
    if settings.class_weighting:
        weight = torch.from_numpy(class_weights(train.labels, config.n_classes)).to(device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    optimiser = torch.optim.RMSprop(model.parameters(), lr=settings.learning_rate)
    evaluate = _Evaluator(val, settings.batch_size, device, weight)
    labels = torch.from_numpy(train.labels)
    lengths = train.lengths if settings.max_frames is None else np.minimum(train.lengths, settings.max_frames)

    best_loss, best_uar, best_epoch, best_state = math.inf, float("nan"), 0, None
    curve, waited, stopped_early = [], 0, False
    start = time.perf_counter()
    for epoch in range(1, settings.max_epochs + 1):
        tick = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for index in bucket_batches(lengths, settings.batch_size, rng):
            x, n = collate(train.arrays, index, device, max_frames=settings.max_frames, rng=rng)
            y = labels[index].to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = criterion(model(x, n), y)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
        train_loss = total / count
        val_loss, val_uar = evaluate(model)
        curve.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_uar": val_uar})
        improved = math.isfinite(val_loss) and val_loss < best_loss
        if improved:
            best_loss, best_uar, best_epoch, waited = val_loss, val_uar, epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            waited += 1
        if progress is not None:
            progress(
                f"{tag}epoch {epoch}/{settings.max_epochs} train_loss {train_loss:.4f} val_loss {val_loss:.4f} "
                f"val_uar {val_uar:.3f} ({time.perf_counter() - tick:.1f} s){' *' if improved else ''}"
            )
        if not math.isfinite(train_loss):
            raise TrainingError(f"{tag}training loss is {train_loss} at epoch {epoch}")
        if waited >= settings.patience:
            stopped_early = epoch < settings.max_epochs
            break
    if best_state is None:
        raise TrainingError(f"{tag}validation loss was never finite")
    return TrainResult(
        config=config,
        state_dict=best_state,
        best_epoch=best_epoch,
        best_val_loss=best_loss,
        best_val_uar=best_uar,
        epochs_run=len(curve),
        seconds=time.perf_counter() - start,
        curve=curve,
        stopped_early=stopped_early,
    )


def grid_points(grid: dict) -> list[TDNNConfig]:
    """Every combination of the grid (config ``tdnn.grid``), in a fixed order (keys as in HPARAM_KEYS)."""
    unknown = set(grid) - set(HPARAM_KEYS)
    if unknown:
        raise TrainingError(f"config key tdnn.grid: unknown hyper-parameter(s) {sorted(unknown)}")
    defaults = TDNNConfig()
    values = [list(grid.get(key, [getattr(defaults, key)])) for key in HPARAM_KEYS]
    for key, options in zip(HPARAM_KEYS, values):
        if not options:
            raise TrainingError(f"config key tdnn.grid.{key}: no values")
    return [TDNNConfig(**dict(zip(HPARAM_KEYS, combo))) for combo in itertools.product(*values)]


def grid_search(
    grid: dict,
    train: SequenceData,
    val: SequenceData,
    settings: TrainSettings,
    seed: int,
    *,
    progress=None,
) -> tuple[TrainResult, list[dict]]:
    """Train every grid point; the result with the lowest best validation loss and one row per point."""
    points = grid_points(grid)
    best, rows = None, []
    for i, config in enumerate(points):
        tag = f"[grid {i + 1}/{len(points)}] " if len(points) > 1 else ""
        if progress is not None:
            progress(f"{tag}hyper-parameters {config.as_dict()}")
        result = train_one(config, train, val, settings, seed, progress=progress, tag=tag)
        if progress is not None:
            progress(f"{tag}best epoch {result.best_epoch}, validation loss {result.best_val_loss:.4f} "
                     f"({result.epochs_run} epochs, {result.seconds:.1f} s)")
        rows.append({
            "point": i,
            **{key: getattr(config, key) for key in HPARAM_KEYS},
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "val_uar_at_best": result.best_val_uar,
            "epochs_run": result.epochs_run,
            "selected": False,
        })
        if best is None or result.best_val_loss < best.best_val_loss:
            best, best_index = result, i
    rows[best_index]["selected"] = True
    return best, rows

