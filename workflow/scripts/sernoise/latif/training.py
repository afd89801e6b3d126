"""Training of the Latif et al. models on spectrogram segments (paper §4.2-4.4), mixup, posterior averaging.

Data (§4.2): every utterance is cut into segments of ``context`` frames of a normalised log
spectrogram (:mod:`sernoise.latif.spectrogram`); a segment carries its utterance's emotion label;
an utterance's prediction is the mean of its segments' softmax posteriors
(:func:`utterance_posteriors`).  :class:`SegmentData` holds the segments, each segment's
utterance index and the per-utterance labels.

Training (§4.4), :func:`train_segments`:

* cross-entropy, Adam, initial learning rate 1e-3 (the paper's values, :class:`LatifSettings`);
* the learning rate is halved whenever the validation score has not improved for
  ``halve_patience`` (5) consecutive epochs, and training stops when it has not improved for
  ``stop_patience`` (20) consecutive epochs (not before ``min_epochs``, 1 here; the main pipeline's
  families pass ``training.min_epochs``), or after ``max_epochs``.  Reading of the paper's
  "halve ... if the validation accuracy does not improve for five consecutive epochs ... stop if
  it does not improve for 20": both counters count the epochs since the last improvement (the
  best epoch); the halving repeats every 5 epochs without improvement (after 5, 10 and 15, as
  Keras' ``ReduceLROnPlateau(factor=0.5, patience=5)``, whose wait restarts after each reduction,
  does beside ``EarlyStopping(patience=20)``), and a halving does not restart the 20-epoch count.
  The weights kept are the best epoch's (Keras' ``restore_best_weights``; the paper selects on
  the validation set).
* "Validation accuracy" is the utterance-level unweighted average recall (UAR, the paper's
  reported metric) of the validation utterances, from averaged segment posteriors (config
  ``selection_metric: uar``; ``loss`` selects on the validation loss instead).  The same rule
  decides improvement for selection, halving and stopping: :func:`sernoise.training.loop.improves`,
  where a tie on the UAR is broken by the lower validation loss (UAR moves in steps on small
  validation sets).  The validation loss is the utterance-level one: the mean of
  ``-log p(true class)`` under the averaged posteriors, i.e. the loss of what is evaluated.
* Mixup (§4.3, on spectrogram segments), optional: :func:`mixup_batch`, one ``λ ~ Beta(α, α)``
  per batch and a random pairing within the batch (Zhang et al.'s reference implementation);
  the loss is then the cross-entropy with the mixed (soft) targets.  The paper gives no ``α``;
  the default 0.2 is Zhang et al.'s choice for large data (they report that ``α`` in [0.1, 0.4]
  helps and larger values underfit) and the default of the project's ``mixup`` strategy.
  Speed perturbation (§4.3) adds utterances to the training data before segmentation
  (:mod:`sernoise.latif.speed`); the loop does not know about it.

Reuse: the epochs, best-epoch snapshot, early stopping and progress lines are the shared loop's
(:func:`sernoise.training.loop.run_epochs`, as the T-DNN and E-DNN use it); segments all have the
same length, so its length-bucketed batches are plain shuffled batches.  What is specific here:
the segment batches, mixup from a ``torch.Generator``, the utterance-level validation and the
learning-rate halving (done in the validation callback, which runs once per epoch after the
training batches and before the next epoch).  The project's ``mixup`` strategy
(:mod:`sernoise.training.strategies`) is not used: it mixes padded variable-length sequences
with their lengths, which segments do not have.

Determinism: :func:`sernoise.training.loop.start_training` seeds torch (and asks for
deterministic kernels) and gives the NumPy generator of the batch order; mixup draws from its own
``torch.Generator`` seeded by ``derive_seed(seed, "latif-mixup")``.  Pass the model as a factory
(``lambda: build_model(name, 4)``) so that its initial weights come from the seed too: then the
same seed and data give the same bytes of the state dict on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from sernoise.predictions import uar as uar_over
from sernoise.seeds import derive_seed
from sernoise.training.loop import TrainingError, improves, resolve_device, run_epochs, start_training
from sernoise.training.losses import task_loss
from sernoise.training.strategies import one_hot

log = logging.getLogger("sernoise.latif")

SELECTION_METRICS = ("uar", "loss")


# ------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class LatifSettings:
    """Training settings; the paper's where it gives them (Adam at 1e-3, halve after 5, stop after 20)."""

    learning_rate: float = 1e-3
    batch_size: int = 32  # the paper gives none
    max_epochs: int = 100  # the paper stops on patience only; a cap keeps a run bounded
    halve_patience: int = 5
    stop_patience: int = 20
    mixup: bool = False
    mixup_alpha: float = 0.2  # Beta(α, α); the paper gives none (see the module doc)
    selection_metric: str = "uar"
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | auto
    eval_batch_size: int = 128  # validation batches: memory only, never results
    min_epochs: int = 1  # no early stop before this many epochs (the main pipeline's training.min_epochs)

    def __post_init__(self):
        def fail(name, message):
            raise TrainingError(f"LatifSettings.{name} {message}, got {getattr(self, name)!r}")

        for name in ("batch_size", "max_epochs", "halve_patience", "stop_patience", "eval_batch_size", "min_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                fail(name, "must be an integer >= 1")
        for name in ("learning_rate", "mixup_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                      and value > 0):
                fail(name, "must be a finite number > 0")
        if not isinstance(self.mixup, bool):
            fail("mixup", "must be true or false")
        if self.selection_metric not in SELECTION_METRICS:
            fail("selection_metric", f"must be one of {list(SELECTION_METRICS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            fail("seed", "must be an integer")
        if self.device not in ("cpu", "cuda", "auto"):
            fail("device", "must be cpu, cuda or auto")

    @classmethod
    def from_mapping(cls, mapping: Mapping, where: str = "latif.training", **overrides) -> "LatifSettings":
        """Settings from a config section (its keys are the field names); an unknown key is an error naming ``where``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise TrainingError(f"config key {where}: unknown setting(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**{**dict(mapping), **overrides})
        except TrainingError as error:
            raise TrainingError(f"config key {where}: {error}") from None


# ------------------------------------------------------------------------------ data


@dataclass
class SegmentData:
    """Segments (n, context, bins) float32, each one's utterance (index into ``labels``), per-utterance classes.

    Every utterance must have at least one segment: one without would silently drop out of the
    utterance-level scores.
    """

    segments: np.ndarray
    utterance_index: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        self.segments = np.asarray(self.segments, dtype=np.float32)
        self.utterance_index = np.asarray(self.utterance_index)
        self.labels = np.asarray(self.labels)
        if self.segments.ndim != 3:
            raise TrainingError(f"segments must be (n, context, bins), got shape {self.segments.shape}")
        if self.utterance_index.shape != (len(self.segments),) or (
                self.utterance_index.size and self.utterance_index.dtype.kind not in "iu"):
            raise TrainingError(f"utterance_index must hold one integer per segment ({len(self.segments)}), "
                                f"got shape {self.utterance_index.shape} ({self.utterance_index.dtype})")
        if self.labels.ndim != 1 or (self.labels.size and self.labels.dtype.kind not in "iu"):
            raise TrainingError(f"labels must be one class index per utterance, got shape {self.labels.shape} "
                                f"({self.labels.dtype})")
        self.utterance_index = self.utterance_index.astype(np.int64)
        self.labels = self.labels.astype(np.int64)
        if self.labels.size and self.labels.min() < 0:
            raise TrainingError(f"labels must be class indices >= 0, got {self.labels.min()}")
        if self.utterance_index.size and (self.utterance_index.min() < 0
                                          or self.utterance_index.max() >= len(self.labels)):
            raise TrainingError(f"utterance_index must lie in [0, {len(self.labels)}) (one label per utterance)")
        counts = np.bincount(self.utterance_index, minlength=len(self.labels))
        if (counts == 0).any():
            raise TrainingError(f"{int((counts == 0).sum())} utterance(s) have no segment, e.g. index "
                                f"{int(np.flatnonzero(counts == 0)[0])}")

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def segment_labels(self) -> np.ndarray:
        """Each segment's class: its utterance's."""
        return self.labels[self.utterance_index]


@dataclass
class TrainResult:
    """One training: the best epoch's weights (CPU), loaded into ``model`` too, and the epochs' history.

    ``history`` rows: ``epoch, train_loss, val_loss, val_uar, learning_rate`` (the rate the epoch
    trained with) and ``selected`` (True at the best epoch).
    """

    model: nn.Module
    state_dict: dict
    best_epoch: int
    best_val_uar: float
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    history: list[dict]
    selection_metric: str
    n_classes: int
    seconds: float


# ------------------------------------------------------------------------------ pieces


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model`` in eval mode (batch-norm statistics and dropout frozen) inside; every module's own mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def uar(labels, predictions, n_classes: int) -> float:
    """Unweighted average recall over the classes ``0..n_classes-1`` present in ``labels`` (:func:`sernoise.predictions.uar`)."""
    return uar_over(labels, predictions, range(int(n_classes)))


def mixup_batch(x: torch.Tensor, y_onehot: torch.Tensor, alpha: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup within a batch: ``x̃ = λ x_i + (1-λ) x_j``, ``ỹ = λ y_i + (1-λ) y_j`` (paper Eq. 3-4).

    ``j`` is a random permutation of the batch rows (a row may meet itself), ``λ ~ Beta(α, α)``
    one per batch; both come from ``generator`` (a CPU ``torch.Generator``).  torch's Beta sampler
    cannot take a generator, so ``λ`` is drawn by NumPy from a seed drawn from ``generator``: the
    generator alone decides every draw.  Returns the mixed inputs, the mixed targets and ``λ``.
    """
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"mixup: alpha must be a finite number > 0, got {alpha}")
    if x.shape[0] != y_onehot.shape[0] or y_onehot.ndim != 2:
        raise ValueError(f"mixup: {x.shape[0]} inputs but targets of shape {tuple(y_onehot.shape)} "
                         f"(expected (batch, classes))")
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=generator)
    if not y_onehot.dtype.is_floating_point:
        y_onehot = y_onehot.float()
    x_mixed = lam * x + (1 - lam) * x[perm.to(x.device)]
    y_mixed = lam * y_onehot + (1 - lam) * y_onehot[perm.to(y_onehot.device)]
    return x_mixed, y_mixed, lam


def utterance_posteriors(probabilities, utterance_index) -> tuple[np.ndarray, np.ndarray]:
    """(utterance ids, their mean posteriors): each utterance's segments' posteriors averaged (paper §4.2).

    ``probabilities`` (n_segments, classes), ``utterance_index`` (n_segments,) integers; the ids
    come sorted, one row of posteriors (float64) each.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    utterance_index = np.asarray(utterance_index)
    if probabilities.ndim != 2 or utterance_index.shape != (len(probabilities),):
        raise ValueError(f"posterior averaging: {probabilities.shape} probabilities but utterance_index of shape "
                         f"{utterance_index.shape} (expected (n, classes) and (n,))")
    if utterance_index.size and utterance_index.dtype.kind not in "iu":
        raise ValueError(f"posterior averaging: utterance_index must hold integers, got {utterance_index.dtype}")
    ids, inverse = np.unique(utterance_index, return_inverse=True)
    sums = np.zeros((len(ids), probabilities.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, probabilities)
    counts = np.bincount(inverse, minlength=len(ids))
    return ids, sums / counts[:, None]


def _segment_batches(segments: np.ndarray, batch_size: int, device: torch.device):
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    for start in range(0, len(segments), int(batch_size)):
        stop = start + int(batch_size)
        yield start, stop, torch.from_numpy(np.ascontiguousarray(segments[start:stop], dtype=np.float32)).to(device)


def segment_probabilities(model: nn.Module, segments, batch_size: int = 128) -> np.ndarray:
    """(n, classes) softmax posteriors of ``segments`` (n, context, bins), in eval mode, without gradients."""
    segments = np.asarray(segments)
    device = model_device(model)
    parts = []
    with eval_mode(model), torch.no_grad():
        for _, _, x in _segment_batches(segments, batch_size, device):
            parts.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
    if not parts:
        raise ValueError("no segments to predict")
    return np.concatenate(parts)


def predict_utterances(model: nn.Module, segments, utterance_index, batch_size: int = 128) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """(utterance ids, mean posteriors) of ``model`` on ``segments``: eval mode, no gradients, mode restored."""
    return utterance_posteriors(segment_probabilities(model, segments, batch_size), utterance_index)


def utterance_scores(labels, posteriors, n_classes: int) -> dict[str, float]:
    """{"loss": mean -log p(true class), "uar": UAR of the argmax} of utterance ``posteriors`` against ``labels``."""
    labels = np.asarray(labels, dtype=np.int64)
    posteriors = np.asarray(posteriors, dtype=np.float64)
    true = posteriors[np.arange(len(labels)), labels]
    return {"loss": float(-np.mean(np.log(np.maximum(true, 1e-12)))),
            "uar": uar(labels, posteriors.argmax(axis=1), n_classes)}


def output_size(model: nn.Module, data: SegmentData) -> int:
    """The number of classes: the model's output size on one segment of ``data`` (eval mode, no gradients)."""
    with eval_mode(model), torch.no_grad():
        logits = model(torch.from_numpy(data.segments[:1]).to(model_device(model)))
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise TrainingError(f"the model must return logits (batch, classes); it returned shape {tuple(logits.shape)}")
    return int(logits.shape[1])


# ------------------------------------------------------------------------------ training


def train_segments(model: nn.Module | Callable[[], nn.Module], train: SegmentData, validation: SegmentData,
                   settings: LatifSettings, *, tag: str = "") -> TrainResult:
    """Train ``model`` on segments with the paper's schedule (see the module doc); the best epoch's weights.

    ``model``: a module (its initial weights are the caller's) or a zero-argument factory, called
    after seeding so that the seed fixes the initial weights as well.  The classes are the model's
    outputs; every label must be below their number.  Progress goes to the ``sernoise.latif``
    logger, one line per epoch (``tag`` prefixes it).  A batch of one segment gets one more
    segment drawn at random (batch normalisation cannot normalise a single example in training
    mode).  On return the model holds the best epoch's weights, in eval mode.
    """
    rng = start_training(train, validation, settings.seed)
    device = torch.device(resolve_device(settings.device))
    if not isinstance(model, nn.Module):
        model = model()
        if not isinstance(model, nn.Module):
            raise TrainingError(f"the model factory returned {type(model).__name__}, not a torch.nn.Module")
    model = model.to(device)
    if train.segments.shape[1:] != validation.segments.shape[1:]:
        raise TrainingError(f"training segments {train.segments.shape[1:]} and validation segments "
                            f"{validation.segments.shape[1:]} differ in shape")
    n_classes = output_size(model, validation)
    for name, data in (("training", train), ("validation", validation)):
        if data.labels.max() >= n_classes:
            raise TrainingError(f"{name} label {int(data.labels.max())} but the model has {n_classes} outputs")

    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    criterion = task_loss(None)  # mean cross-entropy; takes class indices or mixup's class probabilities
    mixing = torch.Generator().manual_seed(derive_seed(settings.seed, "latif-mixup"))
    segment_labels = torch.from_numpy(train.segment_labels)
    select = settings.selection_metric

    def step(index):
        if len(index) == 1:
            index = np.append(index, rng.integers(len(train)))
        x = torch.from_numpy(train.segments[index]).to(device)
        y = segment_labels[index].to(device)
        if settings.mixup:
            x, y, _ = mixup_batch(x, one_hot(y, n_classes), settings.mixup_alpha, mixing)
        optimiser.zero_grad(set_to_none=True)
        loss = criterion(model(x).float(), y)
        loss.backward()
        optimiser.step()
        return loss

    plateau = {"best": None, "waited": 0}
    learning_rates = []

    def evaluate(model):
        ids, posteriors = predict_utterances(model, validation.segments, validation.utterance_index,
                                             settings.eval_batch_size)
        scores = utterance_scores(validation.labels[ids], posteriors, n_classes)
        learning_rates.append(optimiser.param_groups[0]["lr"])
        # the same rule as run_epochs' selection and stopping, applied to the same sequence of scores
        if improves(select, scores, plateau["best"]):
            plateau["best"], plateau["waited"] = scores, 0
        else:
            plateau["waited"] += 1
            if plateau["waited"] % settings.halve_patience == 0:
                for group in optimiser.param_groups:
                    group["lr"] *= 0.5
                log.info("%slearning rate halved to %.3g (%d epochs without improvement)", tag,
                         optimiser.param_groups[0]["lr"], plateau["waited"])
        return scores

    def snapshot():
        return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    tick = time.perf_counter()
    fitted = run_epochs(
        model, step, evaluate, snapshot,
        lengths=np.full(len(train), train.segments.shape[1], dtype=np.int64), batch_size=settings.batch_size,
        rng=rng, max_epochs=settings.max_epochs, patience=settings.stop_patience, progress=log.info, tag=tag,
        select=select, min_epochs=settings.min_epochs,
    )
    history = [{**row, "learning_rate": rate, "selected": row["epoch"] == fitted["best_epoch"]}
               for row, rate in zip(fitted["curve"], learning_rates)]
    optimiser.zero_grad(set_to_none=True)  # the last step's gradients: memory the caller has no use for
    model.load_state_dict(fitted["state_dict"])
    model.eval()
    log.info("%sbest epoch %d of %d: validation UAR %.3f, loss %.4f%s", tag, fitted["best_epoch"],
             fitted["epochs_run"], fitted["best_val_uar"], fitted["best_val_loss"],
             " (stopped early)" if fitted["stopped_early"] else "")
    return TrainResult(
        model=model, state_dict=fitted["state_dict"], best_epoch=fitted["best_epoch"],
        best_val_uar=fitted["best_val_uar"], best_val_loss=fitted["best_val_loss"], epochs_run=fitted["epochs_run"],
        stopped_early=fitted["stopped_early"], history=history, selection_metric=select, n_classes=n_classes,
        seconds=time.perf_counter() - tick,
    )
