"""What the train rules (train_model, train_audio_model; sernoise.training.tdnn_job, ednn_job) share besides the training itself.

* :class:`TrainingRun`: which model a rule trains (model, regime, fold, repetition, task), its
  seed (common to every regime and model of one fold, repetition and task), its training sets and the config's training checks (``min_epochs``, ``on_degenerate``).
* :func:`degenerate_entry`: the degenerate-model check of a finished training
  (:mod:`sernoise.training.degenerate`), logged, and raised in ``fail`` mode.
* The files of a model folder other than the weights: ``curve.csv`` / ``curve.png`` (the
  selected grid point's learning curve), ``selection.csv`` (one row per grid point),
  ``hparams.yaml`` and ``versions.yaml``.  Both models write the entries built here with the
  same keys in the same order, so the tables code and the tests read either folder alike;
  the model-specific entries (T-DNN: training settings, ``norm``; E-DNN: backbone, parameter
  counts) come from the rule scripts.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import yaml

import sernoise
from sernoise.regimes import Regime
from sernoise.seeds import derive_seed
from sernoise.tasks import get_task
from sernoise.training import degenerate
from sernoise.training.strategies import get_strategy
from sernoise.training.data import TrainingSets, assemble

CURVE_COLUMNS = ["epoch", "train_loss", "val_loss", "val_uar"]


@dataclass(frozen=True)
class TrainingRun:
    """One trained model: (model, regime, fold, repetition, task) and the config's global seed."""

    model: str
    regime: Regime
    fold: int
    rep: int
    task: str
    config_seed: int
    corpus: str | None = None
    config: dict | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_rule(cls, wildcards, params, config=None, partition=None) -> TrainingRun:
        """From a train rule's wildcards (corpus, model, fold, rep, task), params (regime, seed, conditions),
        the config (its ``tasks:`` define tasks beyond the paper's bins) and the rule's perception
        ``partition`` input when it has one: the regime's conditions are then the ones the partition
        makes perception-retaining (:func:`sernoise.perception.partition.regime_under_partition`)."""
        regime = Regime(**params.regime)
        if partition:
            from sernoise.perception.partition import PartitionError, read_partition, regime_under_partition

            regime = regime_under_partition(regime, config or {}, read_partition(partition))
            missing = sorted(set(regime.train_conditions) - set(getattr(params, "conditions", None) or []))
            if missing:
                raise PartitionError(f"{partition}: regime {regime.name} needs conditions {missing}, which are not "
                                     f"inputs of this job; rerun Snakemake so that it re-plans from the partition")
        return cls(model=wildcards.model, regime=regime, fold=int(wildcards.fold),
                   rep=int(wildcards.rep), task=wildcards.task, config_seed=params.seed,
                   corpus=getattr(wildcards, "corpus", None), config=config)

    @property
    def strategy(self):
        """The configured training strategy (config ``training.strategy``; standard when there is no config)."""
        spec = ((self.config or {}).get("training") or {}).get("strategy") or {}
        return get_strategy(spec.get("name", "standard"), spec.get("options"))

    @property
    def _training(self) -> dict:
        return (self.config or {}).get("training") or {}

    @property
    def min_epochs(self) -> int:
        """Config ``training.min_epochs``: no early stop before this many epochs (1 without a config: the plain loop)."""
        return int(self._training.get("min_epochs", 1))

    @property
    def on_degenerate(self) -> str:
        """Config ``training.on_degenerate``: ``warn`` or ``fail`` (``warn`` without a config)."""
        action = self._training.get("on_degenerate", "warn")
        if action not in degenerate.ACTIONS:
            raise ValueError(f"config key training.on_degenerate: expected one of {degenerate.ACTIONS}, got {action!r}")
        return action

    @property
    def degenerate_alpha(self) -> float:
        """Config ``training.degenerate_alpha``: the level of the degenerate check's chance bound."""
        return float(self._training.get("degenerate_alpha", degenerate.DEFAULT_ALPHA))

    def describe(self) -> str:
        """The run in words, for messages: model, regime, fold, repetition and task."""
        return f"model {self.model} regime {self.regime.name} fold {self.fold} rep {self.rep} task {self.task}"

    @property
    def task_spec(self):
        """The run's task from the task registry (labels, output size, loss, metrics)."""
        return get_task(self.task, self.config)

    @property
    def seed(self) -> int:
        """The training seed (model initialisation, data order, training crops, strategy draws).

        Common random numbers: derived from the global seed, the fold, the repetition and the task
        only, NOT from the regime or the model variant, so repetition r starts from the same
        initial weights and draws the same batch order in every regime and in T-DNN and T-DNN-NR
        alike, and the paired comparisons of Tables 3 and 4 pair like with like (the difference
        between two cells is then the regime's or the denoiser's, not the luck of one seed).
        What must differ between regimes keeps its own seed: the augmented copies a regime draws
        (:func:`sernoise.training.data.assemble`, seeded by the regime's name).
        """
        return derive_seed(self.config_seed, "train", self.fold, self.rep, self.task)

    def title(self, name: str) -> str:
        """The learning-curve title, ``name`` being the model's display name."""
        return f"{name} {self.regime.name} fold {self.fold} rep {self.rep} {self.task}"

    def assemble(self, manifest: pd.DataFrame, folds: pd.DataFrame, *, augmented_per_clean: float,
                 available) -> TrainingSets:
        """The training and validation examples of this run (:func:`sernoise.training.data.assemble`)."""
        return assemble(manifest, folds, regime=self.regime, fold=self.fold, rep=self.rep, task=self.task,
                        seed=self.config_seed, augmented_per_clean=augmented_per_clean, available=available,
                        corpus=self.corpus, config=self.config)

    def record(self) -> dict:
        """The hparams.yaml entries that say which run a model folder holds."""
        return {
            "seed": int(self.seed),
            "config_seed": int(self.config_seed),
            "regime": self.regime.name,
            "regime_kind": self.regime.kind,
            "regime_conditions": list(self.regime.train_conditions),
            "held_out_type": self.regime.held_out_type,
            "fold": self.fold,
            "rep": self.rep,
            "task": self.task,
            "task_kind": self.task_spec.kind,
            "labels": list(self.task_spec.labels),
            "strategy": {"name": self.strategy.name, **self.strategy.options,
                         "selection_metric": self.strategy.selection_metric},
        }


def log_sets(log, sets: TrainingSets) -> None:
    """Log the conditions left out of the augmented pool and the sizes of the training and validation sets."""
    for condition, why in sets.left_out.items():
        log.warning("condition %s left out of the augmented pool: %s", condition, why)
    log.info("training set %d (%d clean + %d augmented), validation %d (%d clean + %d augmented)",
             len(sets.train), sets.n_clean_train, sets.n_augmented_train,
             len(sets.val), sets.n_clean_val, sets.n_augmented_val)


# ------------------------------------------------------------------------------ curve and selection


def plot_curve(curve: pd.DataFrame, best_epoch: int, title: str, path) -> None:
    """Training and validation loss, and validation UAR, per epoch (curve.png); the best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_uar) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(curve["epoch"], curve["train_loss"], marker="o", ms=3, label="train")
    ax_loss.plot(curve["epoch"], curve["val_loss"], marker="o", ms=3, label="validation")
    ax_loss.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_loss.legend(fontsize=8)
    ax_uar.plot(curve["epoch"], curve["val_uar"], marker="o", ms=3, color="tab:green")
    ax_uar.axhline(1 / 3, color="grey", ls=":", lw=1, label="chance")
    ax_uar.axvline(best_epoch, color="grey", ls="--", lw=1)
    ax_uar.set(xlabel="epoch", ylabel="UAR", title="validation UAR", ylim=(0, 1))
    ax_uar.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_curve(result, csv_path, png_path, title: str) -> None:
    """The learning curve of a training result (``result.curve``, ``result.best_epoch``) as CSV and plot."""
    curve = pd.DataFrame(result.curve, columns=CURVE_COLUMNS)
    curve.to_csv(csv_path, index=False, lineterminator="\n", float_format="%.6f")
    plot_curve(curve, result.best_epoch, title, png_path)


def write_selection(rows: list[dict], path) -> None:
    """The grid search's rows (one per point, no timings: the same config gives the same file)."""
    pd.DataFrame(rows).to_csv(path, index=False, lineterminator="\n", float_format="%.6f")


# ------------------------------------------------------------------------------ hparams.yaml


def selection_fields(model: str, result, selection: list[dict]) -> dict:
    """The first hparams.yaml entries: the model, its selected hyper-parameters and their grid point."""
    return {
        "model": model,
        "hparams": result.config.as_dict(),
        "grid_point": next(row["point"] for row in selection if row["selected"]),
    }


def outcome_fields(sets: TrainingSets, result, device: str) -> dict:
    """The last hparams.yaml entries: the sizes of the sets, how the selected training went, the device."""
    return {
        **sets.summary(),
        "best_epoch": result.best_epoch,
        "best_val_loss": float(result.best_val_loss),
        "best_val_uar": float(result.best_val_uar),
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "device": device,
    }


def degenerate_entry(run: TrainingRun, result, log) -> dict:
    """The hparams.yaml ``degenerate:`` entry of a finished training (``result.val_labels`` / ``val_predicted``).

    A flagged model is logged as a warning, or, with ``on_degenerate: fail``, raises
    :class:`~sernoise.training.degenerate.DegenerateModelError` naming the run and the reason.
    The jobs call this before writing any output, so a failed job leaves no model folder that
    looks finished (Snakemake would also remove the outputs of a failed job, but direct calls
    would not).
    """
    task = run.task_spec
    if not task.is_classification or result.val_predicted is None:
        entry = degenerate.not_checked(f"{task.kind} task: no classes to check")
        log.info("degenerate-model check: not applied (%s)", entry["reason"])
        return entry
    found = degenerate.check(result.val_labels, result.val_predicted, task.output_size, alpha=run.degenerate_alpha,
                             labels=task.labels)
    entry = {**found.record(task.labels), "action": run.on_degenerate}
    if not found.flagged:
        log.info("degenerate-model check passed: validation UAR %.3f > chance %.3f + margin %.3f",
                 found.uar, found.chance, found.margin)
        return entry
    message = (f"degenerate model ({run.describe()}): {found.reason}; validation predictions per class "
               f"{entry['predicted_counts']}")
    if run.on_degenerate == "fail":
        raise degenerate.DegenerateModelError(
            f"{message}. Its outputs are not written (config training.on_degenerate: fail; 'warn' keeps such "
            "models and records the check in hparams.yaml)")
    log.warning("%s (config training.on_degenerate: warn: the model is kept)", message)
    return entry


def write_yaml(record: dict, path) -> None:
    """A record (hparams.yaml, versions.yaml) in the order it was built."""
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(record, handle, sort_keys=False)


# ------------------------------------------------------------------------------ versions.yaml


def versions_record(device: str, threads: int, *, libraries: dict | None = None, inputs: dict | None = None,
                    runtime: dict | None = None) -> dict:
    """What a model was trained with: software versions, the device and the threads.

    ``libraries``: versions of further libraries (after numpy); ``inputs``: what the model was
    built from besides the data (after sernoise, e.g. the pre-trained backbone); ``runtime``:
    settings that depend on the device (after the GPU, e.g. mixed precision).
    """
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        **(libraries or {}),
        "sernoise": sernoise.__version__,
        **(inputs or {}),
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        **(runtime or {}),
        "threads": threads,
    }
