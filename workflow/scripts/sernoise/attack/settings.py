"""The ``attack:`` config section, checked against the rest of the config when the workflow starts.

The schema (schemas/config.schema.yaml) checks types and ranges; this module checks what refers
to other sections, and resolves the noise sets to categories:

* ``categories``: name -> condition ids whose noise instances the category draws from; every id
  must be a configured condition of a type usable as attack noise (every type: additive noise,
  reverb and fade at an SNR, speed, pitch and fillers at a fraction of their strength, word and
  letter drops at their configured strength: :func:`sernoise.attack.perturb.attack_kind`), and
  all conditions of a category must share one perception class and one family (they are the
  category's);
* ``noise_sets``: name -> ``all`` (every category), ``retaining`` (the perception-retaining
  categories), ``environmental`` / ``signal_manipulation`` (the categories of that family: paper
  §8.5) or a list of categories;
* ``models`` within ``training.models``, with an attack predictor
  (the model registry's ``attack`` entry point: tdnn, tdnn_nr, ednn, ednn_nr) and trained in
  ``regime`` (``training.model_regimes``, when it limits a model's regime kinds); null: every
  trained model that has a predictor and is trained in ``regime``; ``tasks`` within
  ``training.tasks`` (null: all of them); ``regime`` one of the regimes being trained;
* ``budgets``: integers >= 1 and ``inf`` (or null), each once.

Every problem is reported at once, each naming its key.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .algorithm import check_budget
from sernoise.model_registry import registered_models
from .perturb import AttackNoiseError, attack_kind


# noise-set spec -> the condition family its categories belong to (sernoise.conditions.base.FAMILIES)
FAMILY_SPECS = {"environmental": "environmental", "signal_manipulation": "distortion"}


class AttackConfigError(ValueError):
    """The attack section refers to something that does not exist or cannot be attacked with."""


def _task_kind(name: str, config: dict) -> str | None:
    """The kind of task ``name`` (bins, categorical, dimensional); None when unknown (the plan says why)."""
    from sernoise.tasks import TaskError, get_task

    try:
        return get_task(name, config).kind
    except TaskError:
        return None


def resolve(attack: dict, config: dict, conditions: Mapping, regimes: Iterable[str]) -> dict:
    """The checked attack settings (plain data for rule params); AttackConfigError lists every problem.
    ``regimes``: the regimes being trained, names or name -> regime (:class:`sernoise.regimes.Regime`,
    whose ``kind`` is checked against ``training.model_regimes``)."""
    problems: list[str] = []
    categories: dict[str, list[str]] = {}
    perception: dict[str, str] = {}
    family: dict[str, str] = {}
    for category, members in attack["categories"].items():
        classes, families = set(), set()
        for i, cid in enumerate(members):
            key = f"config key attack.categories.{category}[{i}]"
            if cid not in conditions:
                problems.append(f"{key}: unknown condition {cid!r}")
                continue
            try:
                attack_kind(conditions[cid])
            except AttackNoiseError as error:
                problems.append(f"{key}: {error}")
                continue
            classes.add(conditions[cid].perception)
            families.add(conditions[cid].family)
        if len(classes) > 1:
            problems.append(f"config key attack.categories.{category}: conditions of one category must share a "
                            f"perception class, got {sorted(classes)}")
        if len(families) > 1:
            problems.append(f"config key attack.categories.{category}: conditions of one category must share a "
                            f"family (environmental or distortion), got {sorted(families)}")
        categories[category] = list(members)
        perception[category] = classes.pop() if len(classes) == 1 else "retaining"
        family[category] = families.pop() if len(families) == 1 else "distortion"
    noise_sets: dict[str, list[str]] = {}
    for name, spec in attack["noise_sets"].items():
        if spec == "all":
            members = list(categories)
        elif spec == "retaining":
            members = [c for c in categories if perception[c] == "retaining"]
        elif isinstance(spec, str) and spec in FAMILY_SPECS:
            members = [c for c in categories if family[c] == FAMILY_SPECS[spec]]
        else:
            members = list(spec)
            for i, category in enumerate(members):
                if category not in categories:
                    problems.append(f"config key attack.noise_sets.{name}[{i}]: unknown category {category!r}; "
                                    f"defined under attack.categories: {sorted(categories)}")
        if not members:
            problems.append(f"config key attack.noise_sets.{name}: no category in this noise set")
        noise_sets[name] = members
    trained = config.get("training", {}).get("models", [])
    model_kinds = config.get("training", {}).get("model_regimes") or {}
    kind = getattr(regimes.get(attack["regime"]), "kind", None) if isinstance(regimes, Mapping) else None

    def in_regime(model) -> bool:
        return kind is None or model not in model_kinds or kind in model_kinds[model]

    attackable = sorted(name for name, family in registered_models().items() if family.attack)
    models = attack.get("models")
    if models is None:  # every trained model that has a predictor and a model of the attacked regime
        models = [m for m in trained if m in attackable and in_regime(m)]
    for i, model in enumerate(models):
        if model not in trained:
            problems.append(f"config key attack.models[{i}]: model {model!r} is not trained (training.models: {trained})")
        elif model not in attackable:
            problems.append(f"config key attack.models[{i}]: no attack predictor for model {model!r} "
                            f"(model families with one: {attackable})")
        elif not in_regime(model):
            problems.append(f"config key attack.models[{i}]: model {model!r} is not trained in regime "
                            f"{attack['regime']!r} (training.model_regimes.{model}: {model_kinds[model]})")
    tasks = config.get("training", {}).get("tasks", [])
    # the attack degrades a predicted class: dimensional tasks (trained for CTSL's teachers) have none
    scored = [t for t in tasks if _task_kind(t, config) != "dimensional"]
    attack_tasks = scored if attack.get("tasks") is None else attack["tasks"]
    for i, task in enumerate(attack_tasks if attack.get("tasks") is not None else []):
        if task not in tasks:
            problems.append(f"config key attack.tasks[{i}]: task {task!r} is not trained (training.tasks: {tasks})")
        elif task not in scored:
            problems.append(f"config key attack.tasks[{i}]: task {task!r} is dimensional; the attack needs a "
                            "classification task")
    regimes = list(regimes)
    if attack["regime"] not in regimes:
        problems.append(f"config key attack.regime: regime {attack['regime']!r} is not trained; trained: {regimes}")
    budgets: list[str] = []
    for i, budget in enumerate(attack["budgets"]):
        try:
            name = "inf" if check_budget(budget) is None else str(check_budget(budget))
        except (TypeError, ValueError) as error:
            problems.append(f"config key attack.budgets[{i}]: {error}")
            continue
        if name in budgets:
            problems.append(f"config key attack.budgets[{i}]: budget {name} is listed twice")
        budgets.append(name)
    if problems:
        raise AttackConfigError(f"invalid configuration ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    budgets.sort(key=lambda b: float(b))
    return {
        "regime": attack["regime"],
        "models": list(models),
        "tasks": list(attack_tasks),
        "budgets": budgets,
        "noise_sets": noise_sets,
        "noise_set_specs": {name: spec if isinstance(spec, str) else "list" for name, spec in attack["noise_sets"].items()},
        "knowledge": list(attack["knowledge"]),
        "runs": int(attack["runs"]),
        "start_snr": float(attack["start_snr"]),
        "max_utterances": attack.get("max_utterances"),
        "knowledge_utterances": attack.get("knowledge_utterances"),
        "categories": categories,
        "perception": perception,
        "family": family,
        "batch": bool(attack["batch"]),
        "threads": int(attack["threads"]),
    }
