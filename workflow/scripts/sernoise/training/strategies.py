"""Training strategies: named bundles of hooks into the shared epoch loop (:func:`sernoise.training.loop.run_epochs`).

A :class:`Strategy` may set any of four hooks; with none set (the built-in ``standard``) training
is exactly the plain loop (paper §7.2.3, §7.3):

* ``items(ctx: EpochContext)`` -> the training examples used in epoch ``ctx.epoch``: None (all),
  an int array of example indices (repeats allowed: an example drawn twice is seen twice), or an
  :class:`EpochItems` with per-example loss ``weights``.  MetricAug (Wu & Lee) builds each epoch's
  augmented set from validation gaps measured after the previous epoch: ``ctx.model`` and
  ``ctx.curve`` (the validation rows so far) are there for that.
* ``transform(ctx: BatchContext)`` -> (inputs, targets) replacing the batch before the forward pass,
  e.g. mixup (Latif et al.); targets may become soft (class probabilities).
* ``extra_loss(ctx: BatchContext)`` -> a scalar tensor added to the task loss, computed after the
  forward pass with ``ctx.outputs`` (the student's outputs) at hand; a teacher-student strategy
  (Leem et al.) runs its frozen teacher (:func:`frozen`) on ``ctx.inputs`` or, through
  ``ctx.index`` (the batch's training-example indices), on the clean counterparts of the batch.
* ``selection_metric``: the validation metric that picks the best epoch and grid point, ``loss``
  (default, lowest), ``uar``, ``f1_weighted`` or ``ccc`` (highest).

Determinism: hooks never draw from a global generator.  ``EpochContext.rng`` is seeded by
``derive_seed(seed, "strategy-items", epoch)`` and ``BatchContext.rng`` by ``derive_seed(seed,
"strategy-batch", epoch, batch)`` (``seed``: the training's seed), so a strategy's draws depend
only on the config, fold, repetition and position in training, not on what else it drew.

Strategies are built by factories registered under a name (:func:`register_strategy`), given the
options of the config (e.g. mixup's ``alpha``) by :func:`get_strategy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where a hook runs: the plan checks strategy names without it
    import torch
    from torch import nn

from sernoise.seeds import rng_for
from sernoise.tasks import SELECTION_METRICS, TaskError


class StrategyError(ValueError):
    """A strategy is unknown or badly configured, or a hook returned something unusable."""


@dataclass
class EpochContext:
    """What an ``items`` hook sees at the start of an epoch."""

    epoch: int  # 1-based
    n_train: int
    model: nn.Module
    curve: list[dict]  # the rows of the epochs run so far (train_loss, val_loss, val_<metric>...)
    rng: np.random.Generator


@dataclass(frozen=True)
class EpochItems:
    """The examples of one epoch: ``indices`` (None: all) and per-example loss ``weights`` (length n_train, or None)."""

    indices: Any = None
    weights: Any = None


@dataclass
class BatchContext:
    """One training batch as the ``transform`` and ``extra_loss`` hooks see it."""

    epoch: int
    batch: int  # 1-based within the epoch
    index: np.ndarray  # training-example indices of the batch rows
    inputs: tuple  # the model's arguments (T-DNN: features, lengths; E-DNN: waveforms, relative lengths)
    targets: torch.Tensor  # class indices, class probabilities, or (batch, attributes) floats
    model: nn.Module
    n_outputs: int
    seed: int
    outputs: torch.Tensor | None = None  # set after the forward pass (for extra_loss)

    @property
    def rng(self) -> np.random.Generator:
        """The batch's own generator (see the module doc); the same object for every call on this batch."""
        if "_rng" not in self.__dict__:
            self.__dict__["_rng"] = rng_for(self.seed, "strategy-batch", self.epoch, self.batch)
        return self.__dict__["_rng"]


@dataclass(frozen=True)
class Strategy:
    name: str = "standard"
    items: Callable[[EpochContext], Any] | None = None
    transform: Callable[[BatchContext], tuple] | None = None
    extra_loss: Callable[[BatchContext], torch.Tensor] | None = None
    selection_metric: str = "loss"
    options: Mapping = field(default_factory=dict)  # what built it (recorded with the model)

    def __post_init__(self):
        if self.selection_metric not in SELECTION_METRICS:
            raise StrategyError(f"strategy {self.name!r}: unknown selection metric {self.selection_metric!r}; "
                                f"known: {sorted(SELECTION_METRICS)}")


STANDARD = Strategy()


class StrategyRun:
    """One training's use of a strategy: seeded contexts for the hooks, the epoch's example weights, the batch loss."""

    def __init__(self, strategy: Strategy | None, seed: int, n_train: int, criterion, n_outputs: int):
        self.strategy = strategy or STANDARD
        self.seed, self.n_train, self.criterion, self.n_outputs = int(seed), int(n_train), criterion, int(n_outputs)
        self.epoch, self.batch, self.weights = 0, 0, None

    def epoch_items(self, epoch: int, model: nn.Module, curve: list[dict]) -> np.ndarray | None:
        """The ``items`` hook's indices for ``epoch`` (None: every example); keeps its weights for the batches."""
        import torch

        self.epoch, self.batch, self.weights = epoch, 0, None
        hook = self.strategy.items
        if hook is None:
            return None
        chosen = hook(EpochContext(epoch, self.n_train, model, curve, rng_for(self.seed, "strategy-items", epoch)))
        if not isinstance(chosen, EpochItems):
            chosen = EpochItems(indices=chosen)
        if chosen.weights is not None:
            weights = np.asarray(chosen.weights, dtype=np.float32)
            if weights.shape != (self.n_train,) or not np.isfinite(weights).all() or (weights < 0).any():
                raise StrategyError(f"strategy {self.strategy.name!r}, epoch {epoch}: weights must be "
                                    f"{self.n_train} finite non-negative values")
            self.weights = torch.from_numpy(weights)
        indices = chosen.indices
        if indices is None and self.weights is not None:
            indices = np.flatnonzero(self.weights.numpy() > 0)  # a zero weight leaves the example out
        return indices

    def batch_loss(self, model: nn.Module, forward, index: np.ndarray, inputs: tuple, targets: torch.Tensor):
        """Transform, forward pass (``forward(*inputs)``), task loss (example-weighted if asked) and extra loss."""
        import torch

        self.batch += 1
        strategy = self.strategy
        ctx = BatchContext(self.epoch, self.batch, np.asarray(index), tuple(inputs), targets, model,
                           self.n_outputs, self.seed)
        if strategy.transform is not None:
            ctx.inputs, ctx.targets = strategy.transform(ctx)
        ctx.outputs = forward(*ctx.inputs)
        if self.weights is None:
            loss = self.criterion(ctx.outputs.float(), ctx.targets)
        else:
            from sernoise.training.losses import weighted_loss

            loss = weighted_loss(self.criterion, ctx.outputs.float(), ctx.targets,
                                 self.weights[torch.as_tensor(ctx.index)].to(ctx.outputs.device))
        if strategy.extra_loss is not None:
            loss = loss + strategy.extra_loss(ctx)
        return loss


def frozen(teacher: nn.Module):
    """``run(*inputs)``: the teacher's outputs without gradients, in eval mode, its parameters frozen.

    For teacher-student strategies: the teacher never learns and never adds randomness (no dropout).
    """
    import torch

    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)

    def run(*inputs):
        with torch.no_grad():
            return teacher(*inputs)

    return run


# ------------------------------------------------------------------------------ mixup


def one_hot(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class indices -> (batch, n_classes) float probabilities; float targets are returned as they are."""
    from torch import nn

    if targets.dtype.is_floating_point:
        return targets
    return nn.functional.one_hot(targets, n_classes).float()


def mixup_transform(alpha: float):
    """Mixup (Zhang et al., used for SER by Latif et al.): each row mixed with a permutation of the batch.

    One lambda ~ Beta(alpha, alpha) per batch (as in the reference implementation of mixup) and
    one permutation, both from the batch's generator; inputs and targets are mixed with the same
    lambda.  Class indices become soft targets (probabilities).  The first input is the padded
    array (features or waveforms), the second the lengths (absolute or relative): a mixed row is
    as long as the longer of its two rows, and beyond the shorter one it holds only the longer
    row's part (padding is zero), which is the convex combination of the zero-padded arrays.
    """

    def transform(ctx: BatchContext):
        import torch

        lam = float(ctx.rng.beta(alpha, alpha))
        perm = torch.from_numpy(ctx.rng.permutation(len(ctx.index)))
        x, lengths, *rest = ctx.inputs
        perm_x = perm.to(x.device)
        mixed = lam * x + (1 - lam) * x[perm_x]
        longest = torch.maximum(lengths, lengths[perm.to(lengths.device)])
        targets = one_hot(ctx.targets, ctx.n_outputs)
        soft = lam * targets + (1 - lam) * targets[perm.to(targets.device)]
        return (mixed, longest, *rest), soft

    return transform


def mixup(alpha: float = 0.2, selection_metric: str = "loss") -> Strategy:
    """The ``mixup`` strategy; ``alpha`` > 0 (config ``training.strategy_options.alpha``, Latif et al.)."""
    alpha = float(alpha)
    if not alpha > 0:
        raise StrategyError(f"strategy mixup: alpha must be > 0, got {alpha}")
    return Strategy("mixup", transform=mixup_transform(alpha), selection_metric=selection_metric,
                    options={"alpha": alpha})


# ------------------------------------------------------------------------------ registry

_FACTORIES: dict[str, Callable[..., Strategy]] = {}
# Strategies that only their own stage can run (it gives them a teacher, noisy views, metric levels):
# name -> that stage's config section.  `training.strategy` cannot name them.
_STAGE_ONLY: dict[str, str] = {}


def register_strategy(name: str, factory: Callable[..., Strategy], *, replace: bool = False,
                      stage: str | None = None) -> None:
    """Make ``factory(**options) -> Strategy`` known to :func:`get_strategy` as ``name``.

    ``stage``: the config section of the workflow stage that runs it (it needs inputs that stage
    provides); None for a strategy any training can use.
    """
    if name in _FACTORIES and not replace:
        raise StrategyError(f"strategy {name!r} is already registered")
    _FACTORIES[name] = factory
    if stage is None:
        _STAGE_ONLY.pop(name, None)
    else:
        _STAGE_ONLY[name] = stage


def known_strategies(*, standalone: bool = False) -> list[str]:
    """Registered names; ``standalone``: only those `training.strategy` may name."""
    return sorted(n for n in _FACTORIES if not (standalone and n in _STAGE_ONLY))


def strategy_stage(name: str) -> str | None:
    """The config section of the stage that alone runs ``name`` (None: any training)."""
    return _STAGE_ONLY.get(name)


def get_strategy(name: str, options: Mapping | None = None) -> Strategy:
    """The strategy ``name`` built with ``options`` (keyword arguments of its factory); errors name both."""
    if name not in _FACTORIES:
        raise StrategyError(f"unknown training strategy {name!r}; known: {known_strategies()}")
    try:
        return _FACTORIES[name](**dict(options or {}))
    except TypeError as error:  # an option the factory does not take
        raise StrategyError(f"strategy {name!r}: bad options {dict(options or {})}: {error}") from None
    except TaskError as error:
        raise StrategyError(f"strategy {name!r}: {error}") from None


register_strategy("standard", lambda selection_metric="loss": Strategy(selection_metric=selection_metric))
register_strategy("mixup", mixup)
