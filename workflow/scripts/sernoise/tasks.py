"""Task registry: what a model predicts, from which manifest columns, with which loss and metrics.

A :class:`Task` is one of three kinds:

* ``bins``: the paper's 3-bin activation / valence classification (§4).  Classes ``low, mid,
  high`` (indices 0, 1, 2) from a manifest column (``activation_bin``, ``valence_bin``);
  utterances with an empty bin are left out.  Built in: ``activation`` and ``valence``.
* ``categorical``: a list of classes and, per corpus, a mapping from the manifest's ``emotion``
  vocabulary onto those classes (e.g. the 4-class set angry/happy/neutral/sad of Latif et al.
  and MetricAug, IEMOCAP ``exc`` merged into ``happy``).  Unmapped emotions are left out; a
  corpus without a mapping is an error naming the config key.
* ``dimensional``: regression of the manifest's ``activation``, ``valence``, ``dominance``
  ratings (one model predicts all of ``attributes`` jointly, as Leem et al. do).  Targets are
  rescaled linearly from the corpus rating scale ``[lo, hi]`` (``scale``; defaults in
  :data:`RATING_SCALES`) onto ``[-1, 1]`` (:data:`TARGET_RANGE`), so that one linear head fits
  any corpus and an untrained head (outputs near 0) starts mid-scale.  Loss: 1 - CCC, averaged
  over the attributes; metric: CCC.  A corpus without ratings (RAVDESS) is an error naming the
  task and the corpus.

Tasks come from :data:`BUILTIN_TASKS`, from :func:`register_task` (code), and from the config's
``tasks:`` section (which wins over both for the same name); :func:`get_task` resolves a name.

This module is pure Python + NumPy/pandas: it is imported by the config validation and by the
data assembly, neither of which needs torch.  The torch losses are built on demand by
:meth:`Task.loss` (see :mod:`sernoise.training.losses`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

KINDS = ("bins", "categorical", "dimensional")
BIN_LABELS = ("low", "mid", "high")
ATTRIBUTES = ("activation", "valence", "dominance")  # manifest rating columns
TARGET_RANGE = (-1.0, 1.0)
# Rating scales of the corpora that have dimensional labels (IEMOCAP and MSP-IMPROV: 1-5 SAM
# scales; MSP-Podcast: 1-7).  A config entry's ``scale`` overrides or adds corpora.
RATING_SCALES = {"iemocap": (1.0, 5.0), "msp_improv": (1.0, 5.0), "msp_podcast": (1.0, 7.0)}
# Validation metrics a model can be selected on, and whether larger is better.
SELECTION_METRICS = {"loss": False, "uar": True, "f1_weighted": True, "ccc": True}


class TaskError(ValueError):
    """A task is unknown, badly defined, or cannot be applied to a corpus; the message names the key."""


def ccc(true, predicted) -> float:
    """Lin's concordance correlation coefficient 2 cov / (var_t + var_p + (mean_t - mean_p)^2), population moments.

    NaN when both series are constant and equal (0 / 0): there is no agreement to measure.
    """
    t = np.asarray(true, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    mt, mp = t.mean(), p.mean()
    cov = np.mean((t - mt) * (p - mp))
    denominator = t.var() + p.var() + (mt - mp) ** 2
    return float(2 * cov / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class Task:
    """One prediction task (see the module doc).  ``labels``: the classes, or the attributes of a dimensional task."""

    name: str
    kind: str
    labels: tuple[str, ...]
    column: str | None = None  # bins: the manifest column holding the bin
    mapping: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # categorical: corpus -> emotion -> class
    scale: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # dimensional: corpus -> rating scale
    source: str = "built-in"  # where the definition comes from, for error messages ("tasks.<name>" for config)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TaskError(f"{self.source}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise TaskError(f"{self.source}: {self.label_key} must be a non-empty list without repeats")
        if self.kind == "bins" and not self.column:
            raise TaskError(f"{self.source}: a bins task needs the manifest column of its bins")
        if self.kind == "categorical":
            for corpus, emotions in self.mapping.items():
                for emotion, target in emotions.items():
                    if target not in self.labels:
                        raise TaskError(f"{self.source}.mapping.{corpus}.{emotion}: {target!r} is not one of the "
                                        f"classes {list(self.labels)}")
        if self.kind == "dimensional":
            unknown = [a for a in self.labels if a not in ATTRIBUTES]
            if unknown:
                raise TaskError(f"{self.source}.attributes: unknown {unknown}; known: {list(ATTRIBUTES)}")
            for corpus, (lo, hi) in self.scale.items():
                if not lo < hi:
                    raise TaskError(f"{self.source}.scale.{corpus}: expected [low, high] with low < high")

    # -- shape -----------------------------------------------------------------------
    @property
    def is_classification(self) -> bool:
        return self.kind != "dimensional"

    @property
    def label_key(self) -> str:
        return "attributes" if self.kind == "dimensional" else "classes"

    @property
    def output_size(self) -> int:
        """Model outputs: one logit per class, or one value per attribute (a linear head)."""
        return len(self.labels)

    @property
    def chance(self) -> float:
        """The selection metric of a chance predictor: 1 / classes for UAR, 0 for CCC."""
        return 1.0 / len(self.labels) if self.is_classification else 0.0

    @property
    def primary_metric(self) -> str:
        """The metric reported first and used for model selection when a config asks for the task's own."""
        return "uar" if self.is_classification else "ccc"

    @property
    def metric_names(self) -> tuple[str, ...]:
        if self.is_classification:
            return ("uar", "f1_weighted")
        return ("ccc",) + tuple(f"ccc_{a}" for a in self.labels)

    # -- targets ---------------------------------------------------------------------
    def targets(self, manifest: pd.DataFrame, corpus: str | None = None) -> dict:
        """utt_id -> class index (classification) or tuple of rescaled ratings (dimensional).

        Utterances without a target for the task (empty bin, unmapped emotion, missing rating)
        are absent from the result.
        """
        if self.kind == "bins":
            return self._bin_targets(manifest)
        if corpus is None:
            raise TaskError(f"task {self.name!r} ({self.kind}) needs the corpus name to read its targets")
        if self.kind == "categorical":
            return self._categorical_targets(manifest, corpus)
        return self._dimensional_targets(manifest, corpus)

    def _bin_targets(self, manifest: pd.DataFrame) -> dict[str, int]:
        index = {name: i for i, name in enumerate(self.labels)}
        out = {}
        for utt_id, value in zip(manifest["utt_id"].astype(str), manifest[self.column].fillna("").astype(str)):
            if value == "":
                continue
            if value not in index:
                raise TaskError(f"manifest column {self.column}: {utt_id} has bin {value!r}; expected one of "
                                f"{self.labels}")
            out[utt_id] = index[value]
        return out

    def _categorical_targets(self, manifest: pd.DataFrame, corpus: str) -> dict[str, int]:
        if corpus not in self.mapping:
            raise TaskError(f"{self.source}.mapping has no entry for corpus {corpus!r} (mapped: "
                            f"{sorted(self.mapping)}): say which of its emotions map onto {list(self.labels)}")
        index = {name: i for i, name in enumerate(self.labels)}
        emotions = self.mapping[corpus]
        return {utt_id: index[emotions[emotion]]
                for utt_id, emotion in zip(manifest["utt_id"].astype(str), manifest["emotion"].fillna("").astype(str))
                if emotion in emotions}

    def _dimensional_targets(self, manifest: pd.DataFrame, corpus: str) -> dict[str, tuple[float, ...]]:
        values = manifest[list(self.labels)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).any():
            raise TaskError(f"task {self.name!r}: corpus {corpus!r} has no {'/'.join(self.labels)} ratings "
                            "(dimensional tasks need a corpus with ratings, e.g. IEMOCAP)")
        scales = {**RATING_SCALES, **self.scale}
        if corpus not in scales:
            raise TaskError(f"{self.source}.scale: no rating scale for corpus {corpus!r}; give [low, high]")
        lo, hi = scales[corpus]
        outside = np.isfinite(values) & ((values < lo) | (values > hi))
        if outside.any():
            row = int(np.flatnonzero(outside.any(axis=1))[0])
            raise TaskError(f"task {self.name!r}: {manifest['utt_id'].iloc[row]} has a rating outside the "
                            f"{corpus} scale [{lo}, {hi}] ({self.source}.scale)")
        a, b = TARGET_RANGE
        scaled = a + (values - lo) * (b - a) / (hi - lo)
        complete = np.isfinite(scaled).all(axis=1)
        return {str(u): tuple(float(v) for v in row)
                for u, row, ok in zip(manifest["utt_id"], scaled, complete) if ok}

    # -- loss and metrics --------------------------------------------------------------
    def loss(self, weight=None):
        """The training criterion (torch): mean cross-entropy (hard or soft targets), or 1 - mean CCC."""
        from sernoise.training.losses import task_loss

        return task_loss(self, weight)

    def metrics(self, true, outputs) -> dict[str, float]:
        """The task's metrics of model ``outputs`` (n, output_size: logits or values) against targets ``true``."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.is_classification:
            from sklearn.metrics import f1_score, recall_score

            true = np.asarray(true, dtype=np.int64)
            predicted = outputs.argmax(axis=1)
            present = np.unique(true)  # UAR over the classes present, as training.loop.uar
            return {"uar": float(recall_score(true, predicted, labels=present, average="macro", zero_division=0)),
                    "f1_weighted": float(f1_score(true, predicted, average="weighted", zero_division=0))}
        true = np.asarray(true, dtype=np.float64).reshape(len(outputs), -1)
        per = {f"ccc_{a}": ccc(true[:, k], outputs[:, k]) for k, a in enumerate(self.labels)}
        return {"ccc": float(np.mean(list(per.values()))), **per}


def selection_direction(metric: str) -> bool:
    """True when a larger value of the validation ``metric`` is better; unknown metric -> TaskError."""
    try:
        return SELECTION_METRICS[metric]
    except KeyError:
        raise TaskError(f"unknown selection metric {metric!r}; known: {sorted(SELECTION_METRICS)}") from None


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether a finite ``value`` of ``metric`` improves on ``best`` (None: nothing yet)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if selection_direction(metric) else value < best


# ------------------------------------------------------------------------------ registry

BUILTIN_TASKS: dict[str, Task] = {
    "activation": Task("activation", "bins", BIN_LABELS, column="activation_bin"),
    "valence": Task("valence", "bins", BIN_LABELS, column="valence_bin"),
}
_REGISTERED: dict[str, Task] = {}


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Make ``task`` known to :func:`get_task` under its name (an existing name only with ``replace``)."""
    if not replace and (task.name in BUILTIN_TASKS or task.name in _REGISTERED):
        raise TaskError(f"task {task.name!r} is already registered")
    _REGISTERED[task.name] = task
    return task


def task_from_entry(name: str, entry: Mapping) -> Task:
    """A :class:`Task` from one entry of the config's ``tasks:`` section (errors name ``tasks.<name>...``)."""
    source = f"config key tasks.{name}"
    kind = entry.get("kind")
    if kind == "bins":
        return Task(name, kind, tuple(entry.get("classes") or BIN_LABELS), column=entry.get("column"), source=source)
    if kind == "categorical":
        mapping = {str(c): {str(e): str(t) for e, t in (m or {}).items()} for c, m in (entry.get("mapping") or {}).items()}
        return Task(name, kind, tuple(entry.get("classes") or ()), mapping=mapping, source=source)
    if kind == "dimensional":
        scale = {str(c): (float(v[0]), float(v[1])) for c, v in (entry.get("scale") or {}).items()}
        return Task(name, kind, tuple(entry.get("attributes") or ATTRIBUTES), scale=scale, source=source)
    raise TaskError(f"{source}.kind: must be one of {KINDS}, got {kind!r}")


def known_tasks(config: Mapping | None = None) -> dict[str, Task]:
    """Every task by name: built-ins, then registered ones, then the config's ``tasks:`` entries (last wins)."""
    tasks = {**BUILTIN_TASKS, **_REGISTERED}
    for name, entry in ((config or {}).get("tasks") or {}).items():
        tasks[str(name)] = task_from_entry(str(name), entry or {})
    return tasks


def get_task(name: str, config: Mapping | None = None) -> Task:
    """The task called ``name``; ``config``: the whole workflow config (its ``tasks:`` section is used)."""
    if isinstance(name, Task):
        return name
    tasks = known_tasks(config)
    try:
        return tasks[name]
    except KeyError:
        raise TaskError(f"unknown task {name!r}; known: {sorted(tasks)}") from None


def config_problems(config: Mapping) -> list[str]:
    """Problems of the config's ``tasks:`` entries the schema cannot see (mapping onto a class not listed...)."""
    problems = []
    for name, entry in (config.get("tasks") or {}).items():
        try:
            task_from_entry(str(name), entry or {})
        except TaskError as error:
            problems.append(str(error))
    return problems
