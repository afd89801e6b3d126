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


def _fill_defaults(instance, schema: dict):
    """Insert schema defaults for absent object properties (recursively, in place)."""
    if not isinstance(schema, dict):
        return
    if isinstance(instance, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in instance and isinstance(sub, dict) and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                _fill_defaults(instance[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in instance.items():
                if name not in (schema.get("properties") or {}):
                    _fill_defaults(value, extra)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"])


def _describe(error: jsonschema.ValidationError) -> str:
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"config key {where}: {error.message}{hint}"
    if error.validator == "required":
        return f"config key {where}: {error.message}"
    return f"config key {where}: {error.message}"


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
    return problems


def validate_config(config: dict, schema_path) -> dict:
    """Validate ``config`` in place against the schema (filling defaults); raise ConfigError listing all problems."""
    schema = load_schema(schema_path)
    _fill_defaults(config, schema)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    problems = [_describe(e) for e in errors]
    if not problems:
        problems = _cross_checks(config)
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
