"""Training regimes and how Table 3 reads them (paper §7.1, §7.4, Table 3).

Regimes (``training.regimes`` in config):

* ``clean``: train and validate on clean speech only.
* ``matched``: clean data plus every perception-retaining condition, in training,
  validation and test (paper: "all noise types are introduced to the training, testing,
  and validation data").
* ``mismatched``: one regime per noise type ``t`` of ``noise_types`` (paper: {hum, int,
  nat} and {speed-seg, fade, reverb}): ``mismatched-t`` trains and validates on the
  perception-retaining conditions of the other types and is tested on ``t``.
* ``all``: clean data plus every condition, perception-altering ones included: the "All
  noises" row, whose ground truth is uncertain.
* ``fraction-<p>`` (``training.sweep``, paper §8.4): the augmentation-fraction sweep. p % of
  the clean training (and validation) utterances get ONE augmented copy each, drawn from the
  perception-retaining conditions (train pool); the other utterances stay clean only.  Built
  by :func:`sweep_regimes`, trained only for ``training.sweep.model``; see
  :func:`sernoise.training.data.assemble`.

Perception classes come from the config (the defaults of the paper, or a study's
partition copied into config), so the job graph is known before anything runs.

Table 3 columns read the predictions of:

* Clean: the ``clean`` model, for every row.
* Clean+Noise | Mismatch: for a condition of type ``t``, the ``mismatched-t`` model; for
  a condition of no type (e.g. drop-word, or perception-altering ones) no model held it out
  by design, so the ``matched`` model, which never saw it, stands in if the condition is
  outside the matched training set; otherwise the cell is empty.
* Clean+Noise | Match: the ``matched`` model for perception-retaining rows; the ``all``
  model for the "All noises" row.

Aggregate rows ("All noises", "Perception-retaining") pool the predictions of their
conditions, each condition read from its own source for the column; only the Match cell of
"All noises" has a dedicated model (``all``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SWEEP_PREFIX = "fraction-"
COLUMNS = ("clean", "mismatch", "match")


class RegimeError(ValueError):
    """A regime or noise type refers to something that is not configured."""


@dataclass(frozen=True)
class Regime:
    name: str
    kind: str
    train_conditions: tuple[str, ...] = field(default_factory=tuple)
    held_out_type: str | None = None
    fraction: float | None = None  # fraction regimes: share of clean training utterances augmented (0, 1]

    def as_dict(self) -> dict:
        """Plain data (rule params; sernoise.training.artifacts.TrainingRun reads it back)."""
        return asdict(self)


def perception_of(config: dict, conditions: dict) -> dict[str, str]:
    """Perception class per condition id: the config entry's ``perception`` or its class default."""
    result = {}
    for cid, condition in conditions.items():
        result[cid] = getattr(condition, "perception", None) or config["conditions"][cid].get("perception", "retaining")
    return result


def type_of(config: dict) -> dict[str, str]:
    """Noise type per condition id (conditions in no type are absent)."""
    owner = {}
    for noise_type, members in (config.get("noise_types") or {}).items():
        for cid in members:
            if cid in owner:
                raise RegimeError(f"config key noise_types.{noise_type}: condition {cid!r} is already in type {owner[cid]!r}")
            owner[cid] = noise_type
    return owner


def _clean(config, conditions, retaining) -> list[Regime]:
    return [Regime("clean", "clean")]


def _matched(config, conditions, retaining) -> list[Regime]:
    return [Regime("matched", "matched", tuple(retaining))]


def _all(config, conditions, retaining) -> list[Regime]:
    return [Regime("all", "all", tuple(conditions))]


def _mismatched(config, conditions, retaining) -> list[Regime]:
    types = config.get("noise_types") or {}
    if not types:
        raise RegimeError("config key training.regimes: 'mismatched' needs noise_types")
    typed = {cid for members in types.values() for cid in members}
    return [Regime(f"mismatched-{t}", "mismatched", tuple(c for c in retaining if c in typed and c not in members), t)
            for t, members in types.items()]


# Regime kinds (training.regimes): kind -> builder(config, conditions, retaining ids) -> regimes.  The
# paper's four are the first entries; a plugin adds a kind with register_regime_kind.
_REGIME_KINDS = {"clean": _clean, "matched": _matched, "mismatched": _mismatched, "all": _all}


def register_regime_kind(kind: str, builder, *, replace: bool = False) -> None:
    """Make ``kind`` usable in training.regimes; ``builder(config, conditions, retaining) -> [Regime, ...]``."""
    if kind in _REGIME_KINDS and not replace:
        raise RegimeError(f"regime kind {kind!r} is already registered")
    _REGIME_KINDS[kind] = builder


def regime_kinds() -> list[str]:
    return list(_REGIME_KINDS)


def build_regimes(config: dict, conditions: dict) -> dict[str, Regime]:
    """All regimes the config asks for, by name (``mismatched`` expands to one per type)."""
    perception = perception_of(config, conditions)
    retaining = [cid for cid in conditions if perception[cid] == "retaining"]
    for noise_type, members in (config.get("noise_types") or {}).items():
        for cid in members:
            if cid not in conditions:
                raise RegimeError(f"config key noise_types.{noise_type}: unknown condition {cid!r}")
    type_of(config)  # checks that no condition has two types
    regimes: dict[str, Regime] = {}
    for kind in config["training"]["regimes"]:
        if kind not in _REGIME_KINDS:
            raise RegimeError(f"config key training.regimes: unknown regime {kind!r}; known: {tuple(_REGIME_KINDS)}")
        for regime in _REGIME_KINDS[kind](config, conditions, retaining):
            regimes[regime.name] = regime
    return regimes


def fraction_name(percent: float) -> str:
    """Regime name of a sweep point: 10 -> 'fraction-10', 12.5 -> 'fraction-12.5'."""
    return f"{SWEEP_PREFIX}{float(percent):g}"


def sweep_regimes(config: dict, conditions: dict) -> dict[str, Regime]:
    """The ``fraction-<p>`` regimes of ``training.sweep`` (empty when absent or without fractions).

    Each trains on the perception-retaining conditions of ``conditions`` (the built ones);
    ``p`` is a percentage in (0, 100].
    """
    sweep = (config.get("training") or {}).get("sweep") or {}
    fractions = list(sweep.get("fractions") or [])
    if not fractions:
        return {}
    perception = perception_of(config, conditions)
    retaining = tuple(cid for cid in conditions if perception[cid] == "retaining")
    if not retaining:
        raise RegimeError("config key training.sweep: the sweep needs perception-retaining conditions, none is built")
    regimes = {}
    for percent in fractions:
        if not 0 < float(percent) <= 100:
            raise RegimeError(f"config key training.sweep.fractions: {percent} is not a percentage in (0, 100]")
        name = fraction_name(percent)
        if name in regimes:
            raise RegimeError(f"config key training.sweep.fractions: {percent} is listed twice")
        regimes[name] = Regime(name, "fraction", retaining, fraction=float(percent) / 100.0)
    return regimes


def column_source(config: dict, regimes: dict[str, Regime], column: str, condition: str | None) -> str | None:
    """Regime whose predictions fill Table 3's ``column`` for a condition row (None: empty cell).

    ``condition`` None stands for the "No noise" row (clean test speech), "ALL" for the
    All-noises row (match column only) and a condition id otherwise.
    """
    if column == "clean":
        return "clean" if "clean" in regimes else None
    if condition is None:
        return None  # the paper leaves the noisy-training columns empty on clean test data
    if column == "match":
        if condition == "ALL":
            return "all" if "all" in regimes else None
        matched = regimes.get("matched")
        return "matched" if matched and condition in matched.train_conditions else None
    if column == "mismatch":
        if condition == "ALL":
            return None  # aggregate rows pool each condition's own mismatch source (see module doc)
        noise_type = type_of(config).get(condition)
        if noise_type is not None:
            name = f"mismatched-{noise_type}"
            return name if name in regimes else None
        matched = regimes.get("matched")
        if matched and condition not in matched.train_conditions:
            return "matched"
        return None
    raise RegimeError(f"unknown Table 3 column {column!r}; known: {COLUMNS}")
