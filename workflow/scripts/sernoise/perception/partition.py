"""The perception partition as an input of the experiments (paper §6, Table 2; SPEC §6).

Rule ``perception_partition`` writes ``results/{corpus}/perception/partition.csv``: the class
(retaining | altering) of every built condition, from the study's Table 2 where the study judged
the condition (``source`` = ``study``) and from the config otherwise (``source`` = ``config``: the
paper's Table 2 as the defaults of the condition types, or a ``perception:`` entry).  The file is
an input of the rules whose meaning depends on the classes, and each applies it here:

* the training regimes that use only perception-retaining conditions (``matched``,
  ``mismatched-<type>``, ``fraction-<p>``): :func:`regime_under_partition`, in the training job;
* Tables 3 and 4, their plots and the sweep (the "Perception-retaining" rows and which model
  fills each cell): :func:`settings_under_partition`;
* the attack's ``retaining`` noise sets: :func:`attack_settings_under_partition`.

Without study responses the file holds the config's classes, so applying it changes nothing; the
captions say which partition the numbers rest on (:func:`describe`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

from sernoise.io import read_csv_checked

from .table2 import PARTITION_COLUMNS

PERCEPTION = ("retaining", "altering")


class PartitionError(ValueError):
    """The partition file is unusable or does not fit what the job expects (the message names the file)."""


@dataclass(frozen=True)
class Partition:
    """Perception class and its source (study | config) per condition id, read from ``path``."""

    path: str
    perception: dict
    source: dict

    @property
    def from_study(self) -> list[str]:
        return [c for c, s in self.source.items() if s == "study"]

    def of(self, condition: str) -> str:
        try:
            return self.perception[condition]
        except KeyError:
            raise PartitionError(f"{self.path}: no perception class for condition {condition!r}") from None


def read_partition(path) -> Partition:
    frame = read_csv_checked(path, PARTITION_COLUMNS, dtype={"condition": str, "perception": str, "source": str},
                             keep_default_na=False)
    bad = sorted(set(frame["perception"]) - set(PERCEPTION))
    if bad:
        raise PartitionError(f"{path}: column perception has {bad}; expected {list(PERCEPTION)}")
    if frame["condition"].duplicated().any():
        raise PartitionError(f"{path}: conditions listed twice: {sorted(frame.loc[frame['condition'].duplicated(), 'condition'])}")
    return Partition(str(path), dict(zip(frame["condition"], frame["perception"])),
                     dict(zip(frame["condition"], frame["source"])))


def describe(partition: Partition | None) -> str:
    """The caption sentence naming the partition a table rests on."""
    if partition is None:
        return "Perception classes: from the config (the paper's Table 2)."
    altering = sorted(c for c, p in partition.perception.items() if p == "altering")
    studied = partition.from_study
    if not studied:
        return (f"Perception classes: from the config (the paper's Table 2; no study responses), "
                f"{len(altering)} of {len(partition.perception)} conditions perception-altering.")
    return (f"Perception classes: from this corpus's perception study for {len(studied)} of "
            f"{len(partition.perception)} conditions (Table 2, {Path(partition.path).name}), the config for the "
            f"rest; perception-altering: {', '.join(altering) or 'none'}.")


@dataclass(frozen=True)
class _Perceived:
    """A condition as :func:`sernoise.regimes.build_regimes` reads it: its perception class."""

    perception: str


def regime_under_partition(regime, config: dict, partition: Partition):
    """``regime`` (:class:`sernoise.regimes.Regime`) rebuilt with the partition's classes: the same
    name and kind, its conditions chosen among the partition's (the built) conditions as the regime
    kind chooses them.  PartitionError when the regime does not exist under the partition (e.g. a
    mismatched type left without perception-retaining conditions)."""
    from sernoise.regimes import RegimeError, build_regimes, sweep_regimes

    if regime.kind in ("clean", "all"):
        return regime  # no perception class involved (clean: none; all: every condition)
    conditions = {cid: _Perceived(p) for cid, p in partition.perception.items()}
    types = {t: [c for c in members if c in conditions] for t, members in (config.get("noise_types") or {}).items()}
    restricted = dict(config, noise_types={t: m for t, m in types.items() if m})
    try:
        regimes = sweep_regimes(restricted, conditions) if regime.kind == "fraction" else \
            build_regimes(dict(restricted, training=dict(config["training"], regimes=[regime.kind])), conditions)
    except RegimeError as error:
        raise PartitionError(f"{partition.path}: regime {regime.name}: {error}") from None
    rebuilt = regimes.get(regime.name)
    if rebuilt is None or not rebuilt.train_conditions:
        raise PartitionError(f"{partition.path}: regime {regime.name} has no perception-retaining condition under "
                             f"this partition; remove it from training.regimes or revise the partition")
    return replace(regime, train_conditions=rebuilt.train_conditions)


def settings_under_partition(settings: dict, partition: Partition | None) -> dict:
    """The evaluation settings (:meth:`sernoise.plan.Plan.evaluation_settings`) with every condition's
    class from the partition, and the caption sentence saying so under ``partition_note``."""
    settings = copy.deepcopy(settings)
    if partition is not None:
        for condition in settings["conditions"]:
            condition["perception"] = partition.of(condition["id"])
    settings["partition_note"] = describe(partition)
    return settings


def attack_settings_under_partition(settings: dict, partition: Partition | None) -> dict:
    """The resolved attack settings (:func:`sernoise.attack.settings.resolve`) with each category's class
    from the partition (retaining when all its conditions are; a condition the partition does not
    list, i.e. one augmentation does not build, keeps its config class) and the ``retaining`` noise
    sets re-chosen accordingly; ``partition_note`` says which partition it is."""
    settings = copy.deepcopy(settings)
    if partition is not None:
        configured = settings["perception"]
        settings["perception"] = {
            category: "retaining" if all(partition.perception.get(c, configured[category]) == "retaining"
                                         for c in members) else "altering"
            for category, members in settings["categories"].items()
        }
        for name, spec in settings.get("noise_set_specs", {}).items():
            if spec == "retaining":
                settings["noise_sets"][name] = [c for c in settings["categories"]
                                                if settings["perception"][c] == "retaining"]
    settings["partition_note"] = describe(partition)
    return settings


def optional_partition(path) -> Partition | None:
    """:func:`read_partition` of a rule's ``partition`` input, None when the rule has none."""
    return read_partition(path) if path else None

