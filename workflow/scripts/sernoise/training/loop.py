"""Training of the T-DNN (paper §7.2.3) and the hyper-parameter grid search (Table 1).

One training: cross-entropy (optionally weighted by inverse training class frequency),
RMSprop, at most ``max_epochs`` epochs, early stopping when the validation score has not
improved for ``patience`` consecutive epochs (but never before ``min_epochs`` epochs: a model
whose loss sits at ln 3 for the first few epochs would otherwise be stopped before it starts
to learn), and the weights reverted to the best epoch; "improved" and "best" follow the
selection rule below (the plain loop: the validation loss).  The validation loss uses the same
criterion as training (with class weights, the weighted mean over all validation examples).

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
differ only in their hyper-parameters); the point whose best epoch is best by the selection
rule (:func:`improves`) wins (ties: the first point in grid order).

Selection rule (:func:`improves`, for the best epoch and the grid point alike): the strategy's
selection metric decides (config ``training.strategy``; the default config selects on validation
UAR, the paper's Table 1 caption); when an epoch's (point's) metric exactly equals the best so
far, the lower validation loss wins.  UAR moves in steps and ties often (every epoch that
predicts one class has UAR exactly 1/3), so without the tie-break the first of equal epochs
would be kept however much its loss still fell.  With ``selection_metric: loss`` the rule is
the paper's §7.2.3 (lowest validation loss).  The selection table holds no timings (they go to the log), so
the same config gives the same files.

Determinism: :func:`seed_everything` seeds torch (CPU and CUDA) and makes cuDNN
deterministic; batch order comes from a NumPy generator with the same seed.  On CPU the same
seed and data give bit-identical weights; on CUDA, torch's deterministic mode is asked for
with ``warn_only`` (a kernel without a deterministic version warns instead of failing).

Tasks and strategies: a training predicts one task (:mod:`sernoise.tasks`: its output size,
loss and validation metrics; default the 3-bin classification) and follows one strategy
(:mod:`sernoise.training.strategies`: the examples of each epoch, batch transforms, extra loss
terms, the validation metric that selects the best epoch and grid point).  The default
strategy sets no hook and selects on the validation loss: training is then exactly the plain
loop described above (same operations, same random draws).

Shared with the E-DNN (:mod:`sernoise.training.ednn`), which differs in model, optimiser,
precision and data but not in how it is trained and selected: :class:`LabelledArrays`,
:func:`padded_batch`, :func:`softmax_scores`, :class:`ValidationEvaluator`,
:func:`start_training`, :func:`run_epochs` (the epochs, early stopping, best epoch),
:func:`grid_combinations` and :func:`search_grid`.
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
from sernoise.tasks import BUILTIN_TASKS, Task, is_better
from sernoise.training.losses import task_loss
from sernoise.training.strategies import STANDARD, Strategy, StrategyRun
from sernoise.predictions import uar

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
    min_epochs: int = 1  # no early stop before this many epochs (config training.min_epochs); 1: the paper's loop
    conv_init: str = "he"  # T-DNN convolution initialisation (config tdnn.conv_init; see sernoise.models.tdnn)

    @classmethod
    def from_config(cls, tdnn: dict, device: str = "cpu", min_epochs: int = 1) -> "TrainSettings":
        return cls(
            max_epochs=int(tdnn["max_epochs"]),
            patience=int(tdnn["patience"]),
            batch_size=int(tdnn["batch_size"]),
            learning_rate=float(tdnn["learning_rate"]),
            class_weighting=bool(tdnn["class_weighting"]),
            device=device,
            max_frames=None if tdnn.get("max_frames") is None else int(tdnn["max_frames"]),
            min_epochs=int(min_epochs),
            conv_init=str(tdnn.get("conv_init", "he")),
        )


@dataclass
class LabelledArrays:
    """Examples as arrays of varying length (axis 0: time) and their class indices.

    The common shape of the T-DNN's feature sequences and the E-DNN's waveforms: batching,
    evaluation and the training epochs (:func:`run_epochs`) only need ``arrays``, ``labels``
    and ``lengths``.
    """

    arrays: list[np.ndarray]
    labels: np.ndarray  # class indices (int64), or (n, attributes) float32 targets of a dimensional task
    noun = "arrays"  # what an array is, for error messages (a class attribute, not a field)

    def __post_init__(self):
        labels = np.asarray(self.labels)
        floats = labels.size > 0 and labels.dtype.kind == "f"
        self.labels = labels.astype(np.float32) if floats else labels.astype(np.int64)
        if len(self.arrays) != len(self.labels):
            raise TrainingError(f"{len(self.arrays)} {self.noun} but {len(self.labels)} labels")
        self.lengths = np.asarray([a.shape[0] for a in self.arrays], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.arrays)


@dataclass
class SequenceData(LabelledArrays):
    """z-normalised float32 sequences (frames, 40) and their class indices."""

    noun = "sequences"


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
    selection_metric: str = "loss"  # the validation metric that chose best_epoch
    best_val_score: float = math.nan  # its value at best_epoch
    # Validation class indices and the best epoch's predicted classes (same order; None for a
    # dimensional task): what the degenerate-model check (sernoise.training.degenerate) reads.
    val_labels: np.ndarray | None = None
    val_predicted: np.ndarray | None = None


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


def padded_batch(arrays: list[np.ndarray], index, *, max_len: int | None = None,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``arrays[index]`` zero-padded along axis 0 into one float32 array (batch, longest, ...) and their lengths.

    With ``max_len``, a longer array is replaced by a window of ``max_len`` steps at a random
    offset drawn from ``rng`` (training crops; one draw per cropped array, in batch order).
    """
    chosen = [arrays[i] for i in index]
    if max_len is not None:
        cropped = []
        for a in chosen:
            if a.shape[0] > max_len:
                start = int(rng.integers(0, a.shape[0] - max_len + 1))
                a = a[start:start + max_len]
            cropped.append(a)
        chosen = cropped
    lengths = np.asarray([a.shape[0] for a in chosen], dtype=np.int64)
    batch = np.zeros((len(chosen), int(lengths.max()), *chosen[0].shape[1:]), dtype=np.float32)
    for row, a in enumerate(chosen):
        batch[row, : a.shape[0]] = a
    return batch, lengths


def collate(arrays: list[np.ndarray], index: np.ndarray, device, *, max_frames: int | None = None,
            rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (batch, max_len, 40) float32 tensor and the lengths of ``arrays[index]``.

    With ``max_frames``, a longer sequence is replaced by a window of ``max_frames`` frames at a
    random offset drawn from ``rng``.
    """
    batch, lengths = padded_batch(arrays, index, max_len=max_frames, rng=rng)
    return torch.from_numpy(batch).to(device), torch.from_numpy(lengths)


@torch.no_grad()
def equal_length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of at most ``batch_size`` indices whose examples all have the same length (no padding)."""
    lengths = np.asarray(lengths)
    batches = []
    for length in np.unique(lengths):
        index = np.flatnonzero(lengths == length)
        batches += [index[i: i + batch_size] for i in range(0, len(index), batch_size)]
    return batches


def softmax_scores(model: nn.Module, lengths, batch_size: int, logits_of, *, equal_lengths: bool = False) -> np.ndarray:
    """(n, classes) float32 softmax scores, in the examples' order, of ``n`` examples of the given lengths.

    ``logits_of(index)`` runs ``model`` on the examples ``index``; the batches hold examples of
    similar length (little padding, which never changes an output of a masked model), or, with
    ``equal_lengths``, of exactly one length: for models whose output padding would change
    (wav2vec2-base's GroupNorm feature encoder normalises over the padded samples too), so that an
    example's scores never depend on the rest of its batch.
    """
    model.eval()
    out = np.zeros((len(lengths), model.config.n_classes), dtype=np.float32)
    batches = (equal_length_batches if equal_lengths else sorted_batches)(np.asarray(lengths), batch_size)
    with torch.no_grad():
        for index in batches:
            out[index] = torch.softmax(logits_of(index).float(), dim=1).cpu().numpy()
    return out


def predict_proba(model: nn.Module, arrays: list[np.ndarray], batch_size: int = 64, device="cpu") -> np.ndarray:
    """(n, classes) softmax scores of ``model`` for normalised ``arrays`` (in the given order)."""
    return softmax_scores(model, [a.shape[0] for a in arrays], batch_size,
                          lambda index: model(*collate(arrays, index, device)))


class ValidationEvaluator:
    """Validation loss and metrics of a model over fixed length-sorted batches.

    Classification: the loss is the training criterion (with class weights, if any) summed over
    all examples and divided by their total weight: the weighted mean over the validation set,
    whatever the batching; the metrics are ``uar`` and those of ``metrics`` (the task's, e.g.
    ``f1_weighted``).  Dimensional task: the loss is the task loss (1 - mean CCC) over the whole
    validation set, the metrics all the task's (``ccc`` and per attribute).  Subclasses say how a
    batch reaches the model (:meth:`batch_logits`).
    """

    def __init__(self, data: LabelledArrays, batch_size: int, weight: torch.Tensor | None,
                 task: Task | None = None, metrics=()):
        self.index_batches = sorted_batches(data.lengths, batch_size)
        self.labels = np.concatenate([data.labels[i] for i in self.index_batches])
        self.task = task if task is not None else BUILTIN_TASKS["activation"]
        self.metrics = tuple(metrics) if self.task.is_classification else self.task.metric_names
        self.criterion = nn.CrossEntropyLoss(weight=weight, reduction="sum") if self.task.is_classification \
            else task_loss(self.task)
        self.weight = weight
        self.denominator = float(weight[torch.from_numpy(self.labels).to(weight.device)].sum()) if weight is not None \
            else float(len(self.labels))
        self.predicted = None  # the last call's predicted classes, in the order of ``labels`` (classification)

    def batch_logits(self, model: nn.Module):
        """Yield (logits, labels on the device) for each batch of ``index_batches``, in order."""
        raise NotImplementedError

    def __call__(self, model: nn.Module) -> tuple[float, float]:
        """(validation loss, validation UAR; NaN for a dimensional task)."""
        scores = self.scores(model)
        return scores["loss"], scores.get("uar", math.nan)

    @torch.no_grad()
    def scores(self, model: nn.Module) -> dict[str, float]:
        """{"loss": validation loss, metric: value} for ``uar`` (classification) and the evaluator's metrics."""
        model.eval()
        total, predicted, outputs = 0.0, [], []
        classification = self.task.is_classification
        for logits, y in self.batch_logits(model):
            if classification:
                total += float(self.criterion(logits.float(), y))
                predicted.append(logits.argmax(dim=1).cpu().numpy())
            if self.metrics:
                outputs.append(logits.float().cpu())
        if classification:
            self.predicted = np.concatenate(predicted)
            scores = {"loss": total / self.denominator,
                      "uar": uar(self.labels, self.predicted, range(self.task.output_size))}
        else:
            scores = {"loss": float(self.criterion(torch.cat(outputs), torch.from_numpy(self.labels)))}
        wanted = [m for m in self.metrics if m not in scores]
        if wanted:
            values = self.task.metrics(self.labels, torch.cat(outputs).numpy())
            scores.update({m: values[m] for m in wanted})
        return scores


class _Evaluator(ValidationEvaluator):
    """T-DNN validation, with the batches padded once and kept on the device (feature sequences are small)."""

    def __init__(self, data: SequenceData, batch_size: int, device, weight: torch.Tensor | None,
                 task: Task | None = None, metrics=()):
        super().__init__(data, batch_size, weight, task, metrics)
        self.batches = [(collate(data.arrays, index, device), torch.from_numpy(data.labels[index]).to(device))
                        for index in self.index_batches]

    def batch_logits(self, model: nn.Module):
        for (x, n), y in self.batches:
            yield model(x, n), y


class BestPredictions:
    """A ``snapshot`` for :func:`run_epochs` that also keeps the evaluator's predictions at that epoch.

    :func:`run_epochs` takes the snapshot right after the validation pass of an improving epoch,
    so the predictions kept are those of the selected (best) model: the degenerate-model check
    reads them without a second validation pass.
    """

    def __init__(self, evaluator: ValidationEvaluator, snapshot):
        self.evaluator, self.snapshot = evaluator, snapshot
        self.predicted = None

    def __call__(self):
        predicted = self.evaluator.predicted
        self.predicted = None if predicted is None else predicted.copy()
        return self.snapshot()

    def fields(self) -> dict:
        """The :class:`TrainResult` fields of the validation labels and the best epoch's predictions."""
        classification = self.evaluator.task.is_classification
        return {"val_labels": self.evaluator.labels if classification else None, "val_predicted": self.predicted}


def start_training(train: LabelledArrays, val: LabelledArrays, seed: int) -> np.random.Generator:
    """Check that both sets hold examples, seed torch and return the generator of batch order and crops.

    Call it before building the model: the model's initial weights come from torch's generator.
    """
    if len(train) == 0 or len(val) == 0:
        raise TrainingError(f"empty training ({len(train)}) or validation ({len(val)}) set")
    seed_everything(seed)
    return np.random.default_rng(int(seed))


def loss_weights(labels: np.ndarray, n_classes: int, device, class_weighting: bool) -> torch.Tensor | None:
    """The class weights of the cross-entropy (see :func:`class_weights`) on ``device``; None without weighting."""
    if not class_weighting:
        return None
    return torch.from_numpy(class_weights(labels, n_classes)).to(device)


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, chosen) -> list[np.ndarray]:
    """The batches of one epoch: of every example (``chosen`` None), or of the examples ``chosen`` (repeats allowed).

    Either way :func:`bucket_batches` with ``rng``; the batches hold example indices.
    """
    if chosen is None:
        return bucket_batches(lengths, batch_size, rng)
    chosen = np.asarray(chosen)
    if chosen.ndim != 1 or chosen.size == 0 or chosen.dtype.kind not in "iu" \
            or chosen.min() < 0 or chosen.max() >= len(lengths):
        raise TrainingError(f"the examples of an epoch must be a non-empty list of indices in [0, {len(lengths)})")
    return [chosen[index] for index in bucket_batches(lengths[chosen], batch_size, rng)]


def improves(select: str, scores: dict, best: dict | None) -> bool:
    """Whether validation ``scores`` ({"loss": ..., metric: ...}) beat ``best`` (None: nothing yet) under the selection rule.

    The metric ``select`` decides (:func:`sernoise.tasks.is_better`: a non-finite value never
    improves); a value exactly equal to the best one improves when its validation loss is
    lower (the tie-break; see the module doc).  For ``select == "loss"`` equal losses tie and
    the earlier one is kept.
    """
    value = scores[select]
    if best is None:
        return is_better(select, value, None)
    if is_better(select, value, best[select]):
        return True
    if select != "loss" and value == best[select]:
        return is_better("loss", scores["loss"], best["loss"])
    return False


def run_epochs(model: nn.Module, step, evaluate, snapshot, *, lengths: np.ndarray, batch_size: int,
               rng: np.random.Generator, max_epochs: int, patience: int | None, progress=None,
               tag: str = "", items=None, select: str = "loss", min_epochs: int = 1) -> dict:
    """The epochs of one training with early stopping and the best epoch kept (T-DNN and E-DNN alike).

    Each epoch calls ``step(index)`` (one optimiser step on the examples ``index``; returns that
    batch's mean loss) for every length-bucketed batch of ``lengths`` (:func:`bucket_batches`
    with ``rng``), then ``evaluate(model)`` -> {"loss": validation loss, metric: value, ...}
    (or the pair (validation loss, validation UAR)).  ``items(epoch, model, curve)``, if given,
    returns the indices of the examples of that epoch (None: all; see
    :meth:`sernoise.training.strategies.StrategyRun.epoch_items`).  ``snapshot()`` is taken at
    every epoch that improves on the best so far by the selection rule (:func:`improves`): the
    (finite) validation metric ``select`` (``loss``, lower is better, the default, or a metric
    ``evaluate`` returns: ``uar``, ``f1_weighted``, ``ccc``, higher is better), an exact tie
    broken by the lower validation loss.  Training stops after ``patience`` epochs without
    improvement (None: never) or ``max_epochs`` epochs; early stopping waits until at least ``min_epochs`` epochs
    have run (the epochs without improvement still count from the best epoch, so a run that
    has not improved for ``patience`` epochs by then stops at ``min_epochs``).  The best epoch
    is chosen over every epoch run; ``min_epochs`` 1 is the plain rule.

    Returns the keyword arguments of a :class:`TrainResult` other than ``config``, the best
    epoch's snapshot as ``state_dict``.
    """
    best_score, best_scores, best_epoch, best_state = None, None, 0, None
    curve, waited, stopped_early = [], 0, False
    start = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        tick = time.perf_counter()
        chosen = None if items is None else items(epoch, model, curve)
        model.train()
        total, count = 0.0, 0
        for index in epoch_batches(lengths, batch_size, rng, chosen):
            loss = step(index)
            total += float(loss.detach()) * len(index)
            count += len(index)
        train_loss = total / count
        scores = evaluate(model)
        if not isinstance(scores, dict):
            scores = dict(zip(("loss", "uar"), scores))
        if select not in scores:
            raise TrainingError(f"{tag}selection metric {select!r} is not among the validation metrics {sorted(scores)}")
        curve.append({"epoch": epoch, "train_loss": train_loss, **{f"val_{k}": v for k, v in scores.items()}})
        # Patience counts the epochs since the selected (best) epoch under the same rule that
        # selects it: an epoch that ties on the metric but lowers the loss becomes the best epoch
        # and restarts the wait, so early stopping never ends a run whose selected epoch is
        # still moving, and never waits on a quantity that selection ignores.
        improved = improves(select, scores, best_scores)
        if improved:
            best_score, best_scores, best_epoch, waited = scores[select], scores, epoch, 0
            best_state = snapshot()
        else:
            waited += 1
        if progress is not None:
            others = "".join(f" val_{k} {v:.3f}" for k, v in scores.items() if k not in ("loss", "uar"))
            progress(
                f"{tag}epoch {epoch}/{max_epochs} train_loss {train_loss:.4f} val_loss {scores['loss']:.4f} "
                f"val_uar {scores.get('uar', math.nan):.3f}{others} ({time.perf_counter() - tick:.1f} s)"
                f"{' *' if improved else ''}"
            )
        if not math.isfinite(train_loss):
            raise TrainingError(f"{tag}training loss is {train_loss} at epoch {epoch}")
        if patience is not None and waited >= patience and epoch >= min_epochs:
            stopped_early = epoch < max_epochs
            break
    if best_state is None:
        raise TrainingError(f"{tag}validation {'loss' if select == 'loss' else select} was never finite")
    return {
        "state_dict": best_state,
        "best_epoch": best_epoch,
        "best_val_loss": best_scores["loss"],
        "best_val_uar": best_scores.get("uar", math.nan),
        "epochs_run": len(curve),
        "seconds": time.perf_counter() - start,
        "curve": curve,
        "stopped_early": stopped_early,
        "selection_metric": select,
        "best_val_score": best_score,
    }


def prepare_task(task: Task | None, strategy: Strategy | None, n_outputs: int, train: LabelledArrays,
                 class_weighting: bool) -> tuple[Task, Strategy, tuple[str, ...]]:
    """Check that a model of ``n_outputs`` outputs, ``strategy`` and the settings fit the task.

    Returns the task (None: the built-in 3-bin classification), the strategy (None: standard)
    and the validation metrics to compute besides the loss (classification: ``uar``, plus the
    selection metric).
    """
    explicit = task is not None
    task = task if explicit else BUILTIN_TASKS["activation"]
    strategy = strategy or STANDARD
    if explicit and n_outputs != task.output_size:
        raise TrainingError(f"task {task.name!r} needs {task.output_size} model outputs, the model has {n_outputs}")
    if task.is_classification != (train.labels.dtype.kind != "f"):
        raise TrainingError(f"task {task.name!r} ({task.kind}) does not fit the targets given ({train.labels.dtype})")
    if class_weighting and not task.is_classification:
        raise TrainingError(f"class_weighting applies to classification tasks only, not {task.name!r}")
    select = strategy.selection_metric
    allowed = ("loss", "uar", "f1_weighted") if task.is_classification else ("loss", "ccc")
    if select not in allowed:
        raise TrainingError(f"selection metric {select!r} does not apply to task {task.name!r} ({task.kind}); "
                            f"choose one of {list(allowed)}")
    metrics = ("uar",) + ((select,) if select == "f1_weighted" else ())
    return task, strategy, metrics


def train_one(
    config: TDNNConfig,
    train: SequenceData,
    val: SequenceData,
    settings: TrainSettings,
    seed: int,
    *,
    progress=None,
    tag: str = "",
    task: Task | None = None,
    strategy: Strategy | None = None,
    model_class=None,
    optimiser_class=None,
) -> TrainResult:
    """Train one T-DNN with early stopping; the returned state is the best epoch's (on the CPU).

    ``task`` (default: 3-bin classification) must have ``config.n_classes`` outputs;
    ``strategy`` (default: standard) hooks into the epochs (see the module doc).  Another model of
    padded feature sequences (``model_class(config)``, called as ``model(x, lengths)``; None: the
    T-DNN) and its optimiser (``optimiser_class(parameters, lr=...)``; None: RMSprop) train through the same loop (the MetricAug
    head: :mod:`sernoise.metricaug.train`).
    """
    rng = start_training(train, val, seed)
    task, strategy, metrics = prepare_task(task, strategy, config.n_classes, train, settings.class_weighting)
    device = torch.device(settings.device)
    # tdnn.conv_init is the T-DNN's: another model class initialises itself
    model = (TDNN(config, conv_init=settings.conv_init) if model_class is None else model_class(config)).to(device)
    weight = loss_weights(train.labels, config.n_classes, device, settings.class_weighting)
    hooks = StrategyRun(strategy, seed, len(train), task_loss(task, weight), config.n_classes)
    optimiser = (optimiser_class or torch.optim.RMSprop)(model.parameters(), lr=settings.learning_rate)
    labels = torch.from_numpy(train.labels)

    def step(index):
        x, n = collate(train.arrays, index, device, max_frames=settings.max_frames, rng=rng)
        y = labels[index].to(device)
        optimiser.zero_grad(set_to_none=True)
        loss = hooks.batch_loss(model, model, index, (x, n), y)
        loss.backward()
        optimiser.step()
        return loss

    def snapshot():
        return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    evaluator = _Evaluator(val, settings.batch_size, device, weight, task, metrics)
    best = BestPredictions(evaluator, snapshot)
    fitted = run_epochs(
        model, step, evaluator.scores, best,
        lengths=train.lengths if settings.max_frames is None else np.minimum(train.lengths, settings.max_frames),
        batch_size=settings.batch_size, rng=rng, max_epochs=settings.max_epochs, patience=settings.patience,
        progress=progress, tag=tag, items=hooks.epoch_items, select=strategy.selection_metric,
        min_epochs=settings.min_epochs,
    )
    return TrainResult(config=config, **fitted, **best.fields())


def grid_combinations(grid: dict, keys, defaults, config_key: str) -> list[dict]:
    """Every combination of the values of ``grid`` (config key ``config_key``) as {key: value}.

    Fixed order: ``itertools.product`` over ``keys`` in their order; a key the grid leaves out
    takes its value in ``defaults`` (a model config).
    """
    unknown = set(grid) - set(keys)
    if unknown:
        raise TrainingError(f"config key {config_key}: unknown hyper-parameter(s) {sorted(unknown)}")
    values = [list(grid.get(key, [getattr(defaults, key)])) for key in keys]
    for key, options in zip(keys, values):
        if not options:
            raise TrainingError(f"config key {config_key}.{key}: no values")
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def grid_points(grid: dict, n_outputs: int = N_CLASSES) -> list[TDNNConfig]:
    """Every combination of the grid (config ``tdnn.grid``), in a fixed order (keys as in HPARAM_KEYS).

    ``n_outputs``: the size of the output layer (the task's :attr:`~sernoise.tasks.Task.output_size`).
    """
    return [TDNNConfig(**point, n_classes=n_outputs)
            for point in grid_combinations(grid, HPARAM_KEYS, TDNNConfig(), "tdnn.grid")]


def search_grid(points: list, keys, train_point, *, progress=None, select: str = "loss") -> tuple:
    """Train every grid point with ``train_point(config, tag)``; the best result and one selection row per point.

    Best: by the selection rule (:func:`improves`) on each point's best epoch: the best
    validation ``select`` metric (default: the lowest best validation loss), an exact tie broken
    by the lower validation loss at the best epoch, and a full tie by grid order (the first point).  A row holds the point's index,
    its hyper-parameters ``keys`` and its training outcome, no timings (and the selection
    metric's value when it is neither the loss nor the UAR).
    """
    best, rows, best_index, best_scores = None, [], 0, None
    for i, config in enumerate(points):
        tag = f"[grid {i + 1}/{len(points)}] " if len(points) > 1 else ""
        if progress is not None:
            progress(f"{tag}hyper-parameters {config.as_dict()}")
        result = train_point(config, tag)
        if progress is not None:
            progress(f"{tag}best epoch {result.best_epoch}, validation loss {result.best_val_loss:.4f} "
                     f"({result.epochs_run} epochs, {result.seconds:.1f} s)")
        rows.append({
            "point": i,
            **{key: getattr(config, key) for key in keys},
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "val_uar_at_best": result.best_val_uar,
            **({f"val_{select}_at_best": result.best_val_score} if select not in ("loss", "uar") else {}),
            "epochs_run": result.epochs_run,
            "selected": False,
        })
        scores = {"loss": result.best_val_loss,
                  select: result.best_val_loss if select == "loss" else result.best_val_score}
        if best is None or improves(select, scores, best_scores):
            best, best_index, best_scores = result, i, scores
        del result  # a worse point's weights are freed before the next point trains
    rows[best_index]["selected"] = True
    return best, rows


def grid_search(
    grid: dict,
    train: SequenceData,
    val: SequenceData,
    settings: TrainSettings,
    seed: int,
    *,
    progress=None,
    task: Task | None = None,
    strategy: Strategy | None = None,
) -> tuple[TrainResult, list[dict]]:
    """Train every grid point (output layer sized by ``task``); the best result (see :func:`search_grid`) and one row per point."""
    return search_grid(
        grid_points(grid, N_CLASSES if task is None else task.output_size), HPARAM_KEYS,
        lambda config, tag: train_one(config, train, val, settings, seed, progress=progress, tag=tag, task=task,
                                      strategy=strategy),
        progress=progress, select=(strategy or STANDARD).selection_metric,
    )
