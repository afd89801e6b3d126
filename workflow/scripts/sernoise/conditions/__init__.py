"""Noise conditions (SPEC §5): one module per condition family, built by name from config.

``config.yaml`` has a ``conditions:`` mapping ``id -> {type: ..., perception: ..., **arguments}``.
:func:`build_condition` turns one entry into a :class:`~sernoise.conditions.base.Condition`;
arguments are checked in the constructors, so a bad value fails when the workflow starts,
naming the condition id and the argument.
"""

from __future__ import annotations

import importlib

from .base import Condition, ConditionError, Context, Result, SkipUtterance
from .catalog import CONDITION_TYPES

# type name in config -> "module:Class" (imported lazily: SoX/rubberband wrappers, librosa...);
# the catalog also holds what the workflow plan needs to know of a type without importing it.
TYPES = {name: ctype.target for name, ctype in CONDITION_TYPES.items()}


def condition_class(type_name: str):
    if type_name not in TYPES:
        raise ConditionError(f"unknown condition type {type_name!r}; known: {sorted(TYPES)}")
    module_name, class_name = TYPES[type_name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_condition(condition_id: str, spec: dict, *, snr_reference: str | None = None) -> Condition:
    """One condition from its config entry; ConditionError names the id and the bad argument.

    ``snr_reference`` (config ``snr.reference``; None: the default, ``active``) is how the
    condition measures the speech level of its SNR.
    """
    spec = dict(spec)
    type_name = spec.pop("type", None)
    if type_name is None:
        raise ConditionError(f"condition {condition_id}: missing 'type'")
    cls = condition_class(type_name)
    try:
        condition = cls(condition_id, **spec)
    except TypeError as error:  # unknown or missing keyword argument
        raise ConditionError(f"condition {condition_id} (type {type_name}): {error}") from None
    if snr_reference is not None:
        try:
            condition.use_snr_reference(snr_reference)
        except ValueError as error:
            raise ConditionError(f"condition {condition_id}: {error}") from None
    return condition


def build_conditions(specs: dict, *, snr_reference: str | None = None) -> dict[str, Condition]:
    """All conditions of a config's ``conditions:`` mapping, in config order."""
    return {cid: build_condition(cid, spec, snr_reference=snr_reference) for cid, spec in specs.items()}


__all__ = [
    "Condition",
    "ConditionError",
    "Context",
    "Result",
    "SkipUtterance",
    "TYPES",
    "build_condition",
    "build_conditions",
    "condition_class",
]
