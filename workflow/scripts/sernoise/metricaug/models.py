"""Which model a MetricAug training job trains (config ``metricaug.model``): the paper's head
(``metricaug_head``, default) or another family of the model registry that learns from the
workflow's filterbank sequences through the shared training loop (:func:`sernoise.training.loop.train_one`).

A family takes part through an entry here, :class:`MetricAugModel`: its name in the model registry,
the hyper-parameter points to try (from its own config section), the model class and optimiser the
loop trains, and how to rebuild the selected model for the test sets.  ``metricaug_head`` and
``tdnn`` (the T-DNN on the filterbanks of raw audio, its grid from ``tdnn.grid`` and its
RMSprop) are registered here; a plugin (config ``plugins:``) registers its own family with
:func:`register_metricaug_model`.  Families that read the waveform (the E-DNN) cannot take part:
the superset is stored as filterbank features.

Standard library only at import: the Snakemake process checks ``metricaug.model`` at parse time
(:func:`sernoise.metricaug.names.config_problems`); torch and the model modules load in the jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricAugModel:
    """A model family's part in MetricAug.

    ``points(config, section, n_features, n_classes)``: the hyper-parameter points (frozen dataclasses
    with ``as_dict()``) to search, best by validation weighted F1; ``keys``: the hyper-parameter names
    a selection row records; ``model_class(point)``: the network (None: the T-DNN with the loop's
    ``conv_init``); ``optimiser``: its name and ``optimiser_class()`` the torch class (None: RMSprop);
    ``label``: the family in captions and plots."""

    family: str
    label: str
    points: Callable
    keys: Callable  # () -> tuple of hyper-parameter names (imports the model module)
    model_class: Callable | None
    optimiser: str
    optimiser_class: Callable | None
    build: Callable  # (point) -> the network, for loading the selected state


def _head_points(config, section, n_features, n_classes):
    from sernoise.models.metricaug_head import HeadConfig

    return [HeadConfig(hidden=int(h), n_features=n_features, n_classes=n_classes) for h in section["hidden"]]


def _head_keys():
    from sernoise.models.metricaug_head import HPARAM_KEYS

    return HPARAM_KEYS


def _head_class(point):
    from sernoise.models.metricaug_head import MetricAugHead

    return MetricAugHead(point)


def _adam():
    import torch

    return torch.optim.Adam


def _tdnn_points(config, section, n_features, n_classes):
    from sernoise.models.tdnn import HPARAM_KEYS, TDNNConfig
    from sernoise.training.loop import grid_combinations

    grid = (config.get("tdnn") or {}).get("grid") or {}
    return [TDNNConfig(**point, n_features=n_features, n_classes=n_classes)
            for point in grid_combinations(grid, HPARAM_KEYS, TDNNConfig(), "tdnn.grid")]


def _tdnn_keys():
    from sernoise.models.tdnn import HPARAM_KEYS

    return HPARAM_KEYS


def _tdnn_build(point):
    from sernoise.models.tdnn import TDNN

    return TDNN(point)


_MODELS: dict[str, MetricAugModel] = {}


def register_metricaug_model(entry: MetricAugModel, *, replace: bool = False) -> MetricAugModel:
    if entry.family in _MODELS and not replace:
        raise ValueError(f"MetricAug model {entry.family!r} is already registered")
    _MODELS[entry.family] = entry
    return entry


def unregister_metricaug_model(family: str) -> None:
    _MODELS.pop(family, None)


def metricaug_models() -> list[str]:
    return sorted(_MODELS)


def get_metricaug_model(family: str) -> MetricAugModel:
    try:
        return _MODELS[family]
    except KeyError:
        raise ValueError(f"config key metricaug.model: {family!r} has no MetricAug entry; registered: "
                         f"{metricaug_models()} (a plugin adds one with register_metricaug_model)") from None


def model_problems(family: str) -> list[str]:
    """What keeps ``family`` (config ``metricaug.model``) from training in MetricAug: no MetricAug entry,
    or not a model-registry family that reads filterbank features."""
    from sernoise.model_registry import RegistryError, get_model

    if family not in _MODELS:
        return [f"metricaug.model: {family!r} has no MetricAug entry (registered: {metricaug_models()}; a "
                "plugin adds one with sernoise.metricaug.models.register_metricaug_model)"]
    try:
        registered = get_model(family)
    except RegistryError:
        return []  # the head's family is registered by its plugin module only; its MetricAug entry is enough
    if registered.input != "features" or registered.audio != "raw":
        return [f"metricaug.model: {family!r} reads {registered.input} ({registered.audio} audio); MetricAug's "
                "superset holds filterbank features of raw audio"]
    return []


register_metricaug_model(MetricAugModel(
    family="metricaug_head", label="MetricAug head", points=_head_points, keys=_head_keys, model_class=_head_class,
    optimiser="Adam", optimiser_class=_adam, build=_head_class))
register_metricaug_model(MetricAugModel(
    family="tdnn", label="T-DNN", points=_tdnn_points, keys=_tdnn_keys, model_class=None, optimiser="RMSprop",
    optimiser_class=None, build=_tdnn_build))
