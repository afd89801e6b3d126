"""What each condition type is, without importing or building it.

The workflow plan (:mod:`sernoise.plan`) needs the family, perception class, requirements and
descriptive arguments (category, position, SNR) of every configured condition when the
Snakefile is parsed, and the Snakefile's process must not import the audio stack or build
condition objects.  This catalog holds that metadata per type, plus a JSON schema of each
type's constructor arguments, so that a misspelt or mistyped argument fails at parse time with
the config key.  Value checks the schema cannot express stay in the constructors, which run in
the jobs.

``tests/test_plan.py`` checks the catalog against the classes (family, default perception,
requirements, additivity, the constructor's keyword names), so the two cannot drift apart.
Only the standard library and jsonschema are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jsonschema

_NUMBER = {"type": "number"}
_SNR = {"type": "number", "minimum": -10, "maximum": 40}  # env.SNR_RANGE
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_FRACTION = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
_MS = {"type": "number", "minimum": 0}
_STRINGS = {"type": "array", "items": {"type": "string"}, "minItems": 1}


@dataclass(frozen=True)
class ConditionType:
    """One condition type: where its class lives and what the plan may know of it unbuilt."""

    name: str
    target: str  # "module:Class", imported by sernoise.conditions.condition_class
    family: str  # environmental | distortion
    default_perception: str  # retaining | altering
    requires: frozenset = frozenset()  # noise | alignment | fillers
    additive: bool = False
    arguments: dict = field(default_factory=dict)  # argument -> JSON schema (perception excluded)
    required: tuple = ()
    defaults: dict = field(default_factory=dict)  # descriptive defaults the plan reports (e.g. snr_db)

    def schema(self) -> dict:
        properties = dict(self.arguments, type={"const": self.name}, perception={"enum": ["retaining", "altering"]})
        return {"type": "object", "properties": properties, "required": ["type", *self.required],
                "additionalProperties": False}


def _type(name, target, family, perception, requires=(), additive=False, required=(), defaults=None, **arguments):
    return ConditionType(name, target, family, perception, frozenset(requires), additive, arguments,
                         tuple(required), defaults or {})


CONDITION_TYPES: dict[str, ConditionType] = {
    t.name: t
    for t in (
        _type("env", "sernoise.conditions.env:EnvironmentalNoise", "environmental", "retaining", ["noise"], True,
              required=["category", "position"], defaults={"snr_db": 10.0},  # env.DEFAULT_START_SNR_DB
              category={"enum": ["nat", "hum", "int", "laugh", "cry", "music"]}, position={"enum": ["start", "cont"]},
              snr_db=_SNR, fade_seconds={"type": "array", "items": _POSITIVE, "minItems": 2, "maxItems": 2},
              fade_out_fraction=_FRACTION),
        _type("insert", "sernoise.conditions.insert:InsertClip", "distortion", "altering", ["noise"], True,
              required=["category"], defaults={"snr_db": 5.0},  # insert.DEFAULT_SNR_DB
              category={"enum": ["laugh", "cry"]}, snr_db=_SNR),
        _type("fade", "sernoise.conditions.fade:Fade", "distortion", "retaining", required=["direction"],
              direction={"enum": ["in", "out"]}, rate_per_second=_POSITIVE),
        _type("speed_segment", "sernoise.conditions.speed:SpeedSegment", "distortion", "retaining",
              factor=_POSITIVE, max_fraction=_FRACTION, min_fraction=_FRACTION, crossfade_ms=_MS),
        _type("speed_utterance", "sernoise.conditions.speed:SpeedUtterance", "distortion", "altering",
              factor=_POSITIVE),
        _type("pitch", "sernoise.conditions.pitch:PitchShift", "distortion", "altering",
              factor=_POSITIVE, formant={"type": "boolean"}, engine={"enum": ["fine", "fast"]},
              crisp={"type": ["integer", "null"]}),
        _type("reverb", "sernoise.conditions.reverb:Reverb", "distortion", "retaining",
              **{name: {"anyOf": [_NUMBER, {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}]}
                 for name in ("reverberance", "room_scale", "hf_damping", "pre_delay_ms", "wet_gain_db")},
              wet_only={"type": "boolean"}),
        _type("drop_words", "sernoise.conditions.drop:DropWords", "distortion", "retaining", ["alignment"],
              words=_STRINGS, probability=_PROBABILITY, crossfade_ms=_MS),
        _type("drop_letters", "sernoise.conditions.drop:DropLetters", "distortion", "retaining", ["alignment"],
              patterns=_STRINGS, probability=_PROBABILITY, crossfade_ms=_MS),
        _type("filler", "sernoise.conditions.filler:Filler", "distortion", "altering", ["alignment", "fillers"],
              pause={"enum": ["short", "long"]},
              pause_seconds={"type": "array", "items": _POSITIVE, "minItems": 2, "maxItems": 2},
              exclude_same_utterance={"type": "boolean"}, level_db=_NUMBER),
    )
}


class CatalogError(ValueError):
    """A condition entry does not fit its type (the message names the config key)."""


@dataclass(frozen=True)
class ConditionInfo:
    """What the plan, the tables and the plots know of one configured condition (plain data: rule
    params).  The first six fields are what a UAR table reads (:mod:`sernoise.evaluation.uar_table`)."""

    id: str
    family: str
    perception: str
    category: str | None = None
    position: str | None = None
    snr_db: float | None = None
    type: str = ""
    requires: frozenset = frozenset()
    additive: bool = False

    @property
    def type_name(self) -> str:  # the attribute name of built conditions (sernoise.attack.perturb.attack_kind)
        return self.type

    def as_dict(self) -> dict:
        """The evaluation scripts' condition record (id, family, perception, category, position, snr_db)."""
        return {"id": self.id, "family": self.family, "perception": self.perception, "category": self.category,
                "position": self.position, "snr_db": self.snr_db}

    to_dict = as_dict

    @classmethod
    def of(cls, condition) -> ConditionInfo:
        """From a record of :meth:`as_dict`, a built condition object or a ConditionInfo."""
        if isinstance(condition, ConditionInfo):
            return condition
        if isinstance(condition, dict):
            return cls(**{k: condition.get(k) for k in ("id", "family", "perception", "category", "position", "snr_db")})
        return cls(
            id=condition.id,
            family=condition.family,
            perception=condition.perception,
            category=getattr(condition, "category", None),
            position=getattr(condition, "position", None),
            snr_db=getattr(condition, "snr_db", None),
            type=getattr(condition, "type_name", ""),
            requires=frozenset(getattr(condition, "requires", ())),
            additive=bool(getattr(condition, "additive", False)),
        )


def describe_condition(condition_id: str, spec: dict) -> ConditionInfo:
    """The metadata of one ``conditions:`` entry, after checking it against its type's argument schema."""
    key = f"config key conditions.{condition_id}"
    type_name = spec.get("type")
    if type_name not in CONDITION_TYPES:
        raise CatalogError(f"{key}.type: unknown condition type {type_name!r}; known: {sorted(CONDITION_TYPES)}")
    ctype = CONDITION_TYPES[type_name]
    errors = sorted(jsonschema.Draft202012Validator(ctype.schema()).iter_errors(spec), key=lambda e: list(e.path))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.path)
            if error.validator == "additionalProperties":
                extra = sorted(set(spec) - set(ctype.schema()["properties"]))
                lines.append(f"{key}: unknown argument(s) {extra} for type {type_name}; "
                             f"known: {sorted(ctype.arguments)}")
            else:
                lines.append(f"{key}{'.' + where if where else ''}: {error.message}")
        raise CatalogError("; ".join(lines))
    category = spec.get("category")
    position = spec.get("position")
    snr = spec.get("snr_db", ctype.defaults.get("snr_db"))
    return ConditionInfo(
        id=condition_id,
        type=type_name,
        family=ctype.family,
        perception=spec.get("perception") or ctype.default_perception,
        requires=ctype.requires,
        additive=ctype.additive,
        category=category,
        position=position,
        snr_db=None if snr is None else float(snr),
    )
