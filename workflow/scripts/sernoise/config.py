"""Configuration: schema validation with errors that name the key, defaults, cross-references.

The Snakefile calls :func:`validate_config` before any rule is defined, so every Snakemake
invocation (a run, a dry run, ``--lint``, a single target) refuses a bad config up front.
We use jsonschema directly rather than ``snakemake.utils.validate`` to report *every*
problem at once, each with its dotted key path (``corpora.ravdess.shards``), which is what a
user editing YAML needs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from sernoise.tasks import config_problems as task_problems


class ConfigError(ValueError):
    """The configuration is invalid; the message names each offending key."""


def key_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def load_schema(schema_path) -> dict:
    with open(schema_path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _resolve(schema, root: dict):
    """Follow a local ``$ref`` ("#/$defs/name") so defaults inside referenced definitions apply."""
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ConfigError(f"schema: only local $ref is supported, got {ref!r}")
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    return schema


def _fill_defaults(instance, schema, root: dict):
    """Insert schema defaults for absent object properties (recursively, in place)."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return
    if isinstance(instance, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            sub = _resolve(sub, root)
            if name not in instance and isinstance(sub, dict) and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                _fill_defaults(instance[name], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in instance.items():
                if name not in properties:
                    _fill_defaults(value, extra, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"], root)


def _describe(error: jsonschema.ValidationError) -> list[str]:
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        properties = error.schema.get("properties") or {}
        allowed = ", ".join(sorted(properties)) or "none"
        unexpected = sorted(k for k in error.instance if k not in properties)
        return [f"config key {key_path(where + [k])}: unknown key (allowed here: {allowed})" for k in unexpected]
    return [f"config key {key_path(where)}: {error.message}"]


def _cross_checks(config: dict) -> list[str]:
    """Checks a JSON schema cannot express: names that must refer to defined entries."""
    problems = []
    corpus = config.get("corpus")
    if corpus not in (config.get("corpora") or {}):
        problems.append(
            f"config key corpus: unknown corpus {corpus!r}; defined under corpora: {sorted(config.get('corpora') or {})}"
        )
    banks = (config.get("noise") or {}).get("banks") or []
    for i, bank in enumerate(banks):
        if bank not in (config.get("noise_banks") or {}):
            problems.append(
                f"config key noise.banks[{i}]: unknown noise bank {bank!r}; defined under noise_banks: "
                f"{sorted(config.get('noise_banks') or {})}"
            )
    for name, bank in (config.get("noise_banks") or {}).items():
        for cls, category in (bank.get("class_to_category") or {}).items():
            if category not in config["noise"]["categories"]:
                problems.append(
                    f"config key noise_banks.{name}.class_to_category.{cls}: unknown category {category!r}; "
                    f"known: {config['noise']['categories']}"
                )
    training = config.get("training") or {}
    for model, kinds in (training.get("model_regimes") or {}).items():
        # a model not in training.models is simply not trained: its entry is ignored, so that
        # `models` can be narrowed on the command line without editing model_regimes
        for kind in kinds or []:
            if kind not in training.get("regimes", []):
                problems.append(f"config key training.model_regimes.{model}: regime {kind!r} is not in "
                                f"training.regimes {training.get('regimes')}")
    for i, condition in enumerate((config.get("denoise") or {}).get("conditions") or []):
        if condition not in (config.get("conditions") or {}):
            problems.append(f"config key denoise.conditions[{i}]: unknown condition {condition!r}; "
                            f"defined under conditions: {sorted(config.get('conditions') or {})}")
    problems += _fold_problems(config.get("folds") or {})
    problems += task_problems(config)  # e.g. a mapping onto a class the task does not list
    return problems


def _fold_problems(folds: dict) -> list[str]:
    """folds.n_folds against folds.scheme, before any job: the workflow enumerates folds 1..n_folds up front."""
    scheme, n_folds = folds.get("scheme") or "groups", folds.get("n_folds")
    if not isinstance(n_folds, int):
        return []  # the schema error says what is wrong
    if scheme == "official" and n_folds != 1:
        return [f"config key folds.n_folds: folds.scheme official makes one fixed fold; set folds.n_folds: 1 "
                f"(got {n_folds})"]
    if scheme != "official" and n_folds < 3:  # the schema's minimum is 1 for the official split's sake
        return [f"config key folds.n_folds: {n_folds} is less than the minimum of 3 (folds.scheme {scheme}: "
                f"train, validation and test blocks)"]
    return []


def validate_config(config: dict, schema_path) -> dict:
    """Validate ``config`` in place against the schema (filling defaults); raise ConfigError listing all problems."""
    schema = load_schema(schema_path)
    _fill_defaults(config, schema, schema)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    problems = [line for e in errors for line in _describe(e)]
    try:
        problems += _cross_checks(config)
    except (KeyError, TypeError, AttributeError):
        pass  # the structure is broken; the schema errors above already say where
    if problems:
        raise ConfigError(f"invalid configuration ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return config


def load_config(paths, schema_path) -> dict:
    """Load and deep-merge YAML files (later ones win) and validate; for scripts and tests outside Snakemake."""
    merged: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        deep_update(merged, data)
    return validate_config(merged, schema_path)


def deep_update(base: dict, other: dict) -> dict:
    """Recursive dict update with Snakemake's semantics for overlays (mappings merge, others replace)."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def resolve_path(path, base: Path | str) -> Path:
    """Config paths are relative to the workflow directory unless absolute."""
    path = Path(path)
    return path if path.is_absolute() else Path(base) / path
