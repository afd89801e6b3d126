"""The workflow plan: everything the job graph needs, resolved from the validated config.

:func:`build_plan` turns a config (already validated against the schema) into a :class:`Plan`:
the corpus and its outputs, the configured conditions with their family and perception class
(from :mod:`sernoise.conditions.catalog`, without building them), the conditions built and
tested, the tasks, the model families (:mod:`sernoise.model_registry`) and the regimes each
trains in, folds and repetitions, the augmentation-fraction sweep, the pretrained backbones,
the perception study and attack settings, the tables and plots to build, and every target of
``rule all``.  ``rules/common.smk`` only turns it into wildcard constraints, paths and input
functions, so the Snakefile holds no logic and this module is tested in process.

Every problem is a :class:`PlanError` naming the config key.  Only light modules are imported
here (the standard library, jsonschema, numpy through the conditions package): the process
that parses the Snakefile never loads torch, librosa, soundfile, h5py, pystoi or pesq
(``tests/test_plan.py`` checks it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from sernoise.attack.settings import AttackConfigError
from sernoise.attack.settings import resolve as resolve_attack
from sernoise.conditions.catalog import CatalogError, ConditionInfo, describe_condition
from sernoise.model_registry import ModelFamily, RegistryError, get_model, registered_models
from sernoise.pretrained import PRETRAINED_ROOT, Backbone, PretrainedError, folder_name, resolve_backbone
from sernoise.regimes import Regime, RegimeError, build_regimes, sweep_regimes
from sernoise.tasks import TaskError, get_task
from sernoise.training.strategies import StrategyError, get_strategy, known_strategies, strategy_stage

TABLE_FORMATS = ("csv", "md", "tex", "html")


class PlanError(ValueError):
    """The config cannot be turned into a job graph (the message names the config key)."""


def results(corpus: str, *parts: str) -> str:
    """Path of an artifact of ``corpus`` under results/ (tables and plots live per corpus)."""
    return "/".join(("results", corpus, *parts))


def load_plugins(config: dict) -> list[str]:
    """Import the modules of ``plugins:`` (they register model families, tasks, strategies)."""
    loaded = []
    for i, name in enumerate(config.get("plugins") or []):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise PlanError(f"config key plugins[{i}]: cannot import {name!r} ({error})") from None
        loaded.append(name)
    return loaded


@dataclass
class Plan:
    config: dict
    corpus: str
    conditions: dict[str, ConditionInfo]  # every configured condition, config order
    built: list[str]  # the conditions augmentation builds
    pools: list[str]
    tasks: list[str]
    task_kinds: dict[str, str]
    strategy: str  # training.strategy.name (sernoise.training.strategies)
    models: dict[str, ModelFamily]  # training.models, in config order
    regimes: dict[str, Regime]  # the trained regimes (sweep excluded)
    model_regimes: dict[str, list[str]]
    folds: list[int]
    reps: list[int]
    sweep_model: str | None = None
    sweep_regimes: dict[str, Regime] = field(default_factory=dict)
    backbones: dict[str, Backbone] = field(default_factory=dict)  # model -> backbone, pretrained families
    hub_repos: dict[str, tuple] = field(default_factory=dict)  # folder -> (key, repo id, revision)
    perception: dict = field(default_factory=dict)
    perception_configured: bool = False
    attack: dict | None = None
    attack_configured: bool = False
    plugins: list[str] = field(default_factory=list)

    # -- what is trained and tested -----------------------------------------------------------
    @property
    def tested(self) -> list[str]:
        """Conditions every model is tested on: the built ones, when the test pool is built."""
        return list(self.built) if "test" in self.pools else []

    @property
    def all_regimes(self) -> dict[str, Regime]:
        """What the train and predict rules accept: the trained regimes and the sweep's."""
        return {**self.regimes, **self.sweep_regimes}

    def regime(self, name: str) -> Regime:
        try:
            return self.all_regimes[name]
        except KeyError:
            raise PlanError(f"unknown regime {name!r}; configured: {sorted(self.all_regimes)}") from None

    def family(self, model: str) -> ModelFamily:
        try:
            return self.models[model]
        except KeyError:
            raise PlanError(f"model {model!r} is not in training.models {list(self.models)}") from None

    def models_by_input(self, kind: str) -> list[str]:
        return [name for name, family in self.models.items() if family.input == kind]

    def label(self, model: str) -> str:
        """Table label of a model; a stand-in backbone is named (e.g. "E-DNN (tiny random wav2vec2)")."""
        family = get_model(model)
        backbone = self.backbones.get(model)
        return f"{family.label} ({backbone.label})" if backbone and backbone.label else family.label

    def model_labels(self) -> dict[str, str]:
        return {m: self.label(m) for m in self.models}

    def stand_in_notes(self) -> list[str]:
        """One caption sentence per model on a stand-in backbone: what it replaces and why."""
        return [
            f"{self.label(m)}: a tiny randomly initialised wav2vec2 ({b.folder}) stands in for {b.repo_id}, whose "
            f"weights were not in {PRETRAINED_ROOT}/ (pretrained.missing: tiny_random); its numbers test the "
            "pipeline and say nothing about wav2vec2."
            for m, b in self.backbones.items()
            if b.label
        ]

    def noise_robust_models(self) -> list[str]:
        return [m for m, f in self.models.items() if f.noise_robust]

    def standard_models(self) -> list[str]:
        return [m for m, f in self.models.items() if not f.noise_robust]

    # -- paths -------------------------------------------------------------------------------
    def model_folder(self, corpus, model, regime, fold, rep, task) -> str:
        return results(corpus, "models", model, regime, f"fold{fold}", f"rep{rep}", task)

    def prediction_file(self, corpus, model, regime, fold, rep, task) -> str:
        return results(corpus, "predictions", model, regime, f"fold{fold}", f"rep{rep}", f"{task}.csv")

    @property
    def scored_tasks(self) -> list[str]:
        """The tasks that get prediction files, metrics and tables: the classification tasks (UAR).  A
        dimensional task (CCC) is trained only, for the stages that use its models (CTSL's teachers)."""
        return [t for t in self.tasks if self.task_kinds[t] != "dimensional"]

    def runs(self, model: str, regimes=None) -> list[tuple]:
        """(regime, fold, repetition, task) of every scored training of ``model`` (its regimes by default)."""
        regimes = self.model_regimes[model] if regimes is None else regimes
        return [(r, f, k, t) for r in regimes for f in self.folds for k in self.reps for t in self.scored_tasks]

    def predictions(self, corpus: str, model: str, regimes=None) -> list[str]:
        """One prediction file per (regime of ``model``, fold, repetition, task)."""
        return [self.prediction_file(corpus, model, *run) for run in self.runs(model, regimes)]

    def model_file(self, corpus: str, model: str, name: str, regimes=None) -> list[str]:
        """File ``name`` (e.g. hparams.yaml) of every model folder of ``model``, like :meth:`predictions`."""
        return [f"{self.model_folder(corpus, model, *run)}/{name}" for run in self.runs(model, regimes)]

    def table(self, name: str, ext: str, corpus: str | None = None) -> str:
        return results(corpus or self.corpus, "tables", f"{name}.{ext}")

    def plot(self, name: str, corpus: str | None = None) -> str:
        return results(corpus or self.corpus, "plots", f"{name}.png")

    def metrics(self, name: str, models, corpus: str | None = None) -> list[str]:
        """results/{corpus}/metrics/{model}/{name}.csv of ``models`` (one job per model, so that Table 3
        does not wait for the noise-robust arms, nor Table 4 for the others)."""
        return [results(corpus or self.corpus, "metrics", m, f"{name}.csv") for m in models]

    # -- the evaluation scripts' view ------------------------------------------------------------
    def evaluation_settings(self) -> dict:
        """What the evaluation scripts need: the regimes' config (noise types restricted to the built
        conditions), the built conditions with their classes, the tested ones, the labels of models
        on stand-in backbones and the models trained in fewer regimes."""
        config = self.config
        types = {t: [c for c in members if c in self.built] for t, members in (config.get("noise_types") or {}).items()}
        limited = config["training"].get("model_regimes") or {}
        return {
            "config": {
                "training": config["training"],
                "noise_types": {t: members for t, members in types.items() if members},
                "conditions": {c: config["conditions"][c] for c in self.built},
            },
            "conditions": [self.conditions[c].as_dict() for c in self.built],
            "tested": self.tested,
            "regimes": list(self.regimes),
            # every model's label: job processes need not import the plugins that define families
            "model_labels": self.model_labels(),
            "model_notes": self.stand_in_notes(),
            "model_regimes": {m: self.model_regimes[m] for m in self.models if m in limited},
        }

    # -- targets of `rule all` ----------------------------------------------------------------
    def corpus_targets(self) -> list[str]:
        return [results(self.corpus, name) for name in ("manifest.csv", "folds.csv", "rejects.csv")]

    def noise_targets(self) -> list[str]:
        return [f"results/noise/{bank}/bank.csv" for bank in self.config["noise"]["banks"]]

    def augment_targets(self) -> list[str]:
        if not self.built:
            return []
        return [results(self.corpus, "augmented", c, pool, "params.csv") for c in self.built for pool in self.pools] \
            + [results(self.corpus, "augmented", "gallery.png")]

    def table2_targets(self) -> list[str]:
        """Table 2 (csv first) and, written beside it by the same rule, the RQ1 checks (paper §8.1)."""
        if not self.perception.get("responses"):
            return []
        folder = results(self.corpus, "perception")
        return [self.table("table2", ext) for ext in ("csv", "md")] + [f"{folder}/rq1.csv", f"{folder}/rq1.md"]

    def perception_targets(self) -> list[str]:
        if not (self.perception_configured and self.built):
            return []
        folder = results(self.corpus, "perception")
        return [f"{folder}/sample.csv", f"{folder}/export/tasks.csv", f"{folder}/partition.csv"] + self.table2_targets()

    def prediction_targets(self) -> list[str]:
        return [path for model in self.models for path in self.predictions(self.corpus, model)]

    def evaluation_targets(self) -> list[str]:
        tables = [self.table("table3", ext) for ext in TABLE_FORMATS]
        if self.noise_robust_models():
            tables += [self.table("table4", ext) for ext in TABLE_FORMATS]
        quality = [self.plot("quality_vs_uar")] if self.tested and self.standard_models() else []
        return tables + [self.plot("uar_vs_snr"), self.plot("uar_per_condition")] + quality

    def sweep_predictions(self) -> list[str]:
        """The sweep's model under every fraction regime, and under `clean` (the 0 % point)."""
        if not self.sweep_regimes:
            return []
        regimes = list(self.sweep_regimes) + (["clean"] if "clean" in self.model_regimes[self.sweep_model] else [])
        return self.predictions(self.corpus, self.sweep_model, regimes)

    def sweep_targets(self) -> list[str]:
        if not self.sweep_regimes:
            return []
        return [self.table("sweep", "csv"), self.table("sweep", "md"), self.plot("sweep")]

    def attacked_runs(self) -> list[tuple]:
        """(model, fold, repetition, task) of every attacked model (one run_attack job each), attack.regime."""
        attack = self.attack
        if not attack or not attack["models"]:
            return []
        return [(m, f, k, t) for m in attack["models"] for f in self.folds for k in self.reps for t in attack["tasks"]]

    def attack_results(self, corpus: str | None = None) -> list[str]:
        """One attack result per (model, fold, repetition, task, noise set, knowledge)."""
        attack = self.attack
        return [results(corpus or self.corpus, "attack", m, f"fold{f}", f"rep{k}", t, f"{s}-{kn}.csv")
                for m, f, k, t in self.attacked_runs() for s in attack["noise_sets"] for kn in attack["knowledge"]]

    def attacked_model_files(self, name: str, corpus: str | None = None) -> list[str]:
        """File ``name`` of the model folder of every attacked (model, fold, repetition, task), attack.regime."""
        return [f"{self.model_folder(corpus or self.corpus, m, self.attack['regime'], f, k, t)}/{name}"
                for m, f, k, t in self.attacked_runs()]

    def attack_targets(self) -> list[str]:
        if not (self.attack_configured and self.attack_results()):
            return []
        return [self.table("table5", ext) for ext in ("csv", "md", "tex")] + [self.plot("attack_budget")]

    def all_targets(self) -> list[str]:
        """Everything ``all`` builds. Every prediction file is built, as an input of its model's metrics: the
        metrics stand for them here, so that ``all`` has a few inputs instead of one per trained model
        (each input is a lookup while Snakemake builds the DAG).  With dimensional tasks only (CTSL's teachers)
        nothing is scored: no metrics, tables or plots (their models are built for the CTSL tables)."""
        scored = (self.metrics("metrics", self.models) + self.evaluation_targets() + self.sweep_targets()
                  if self.scored_tasks else [])
        return (self.corpus_targets() + self.noise_targets() + self.augment_targets() + self.perception_targets()
                + scored + self.attack_targets())


# ------------------------------------------------------------------------------------- building


def _conditions(config: dict) -> tuple[dict[str, ConditionInfo], list[str]]:
    problems, infos = [], {}
    for cid, spec in config["conditions"].items():
        try:
            infos[cid] = describe_condition(cid, spec)
        except CatalogError as error:
            problems.append(str(error))
    selected = config["augment"].get("conditions")
    for i, cid in enumerate(selected or []):
        if cid not in config["conditions"]:
            problems.append(f"config key augment.conditions[{i}]: unknown condition {cid!r}; "
                            f"defined: {sorted(config['conditions'])}")
    if problems:
        raise PlanError(f"invalid configuration ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    built = list(infos) if selected is None else list(selected)
    return infos, built


def _tasks(config: dict) -> dict[str, str]:
    """Task name -> kind (bins, categorical, dimensional) of training.tasks, from the task registry."""
    kinds = {}
    for i, name in enumerate(config["training"]["tasks"]):
        try:
            kinds[name] = get_task(name, config).kind
        except TaskError as error:
            raise PlanError(f"config key training.tasks[{i}]: {error}") from None
    return kinds


def _strategy(config: dict, task_kinds: dict[str, str]) -> str:
    """The training strategy's name, after building it once with its options (errors name the key).

    Its selection metric must apply to every trained task (UAR and F1 to classes, CCC to
    dimensional ratings; the loss to all), or the first training job would fail on it.
    """
    spec = config["training"].get("strategy") or {}
    name = spec.get("name", "standard")
    stage = strategy_stage(name)
    if stage is not None:
        raise PlanError(f"config key training.strategy.name: {name!r} runs in the {stage!r} stage only (config "
                        f"section {stage}), which gives it its inputs; training.strategy takes "
                        f"{known_strategies(standalone=True)}")
    try:
        metric = get_strategy(name, spec.get("options")).selection_metric
    except StrategyError as error:
        raise PlanError(f"config key training.strategy: {error}") from None
    dimensional = metric == "ccc"
    misfits = [task for task, kind in task_kinds.items() if metric != "loss" and (kind == "dimensional") != dimensional]
    if misfits:
        fits = "ccc or loss" if not dimensional else "uar, f1_weighted or loss"
        raise PlanError(f"config key training.strategy.options.selection_metric: {metric!r} does not apply to the "
                        f"task(s) {misfits} of training.tasks; choose {fits}")
    return name


def _models(config: dict, task_kinds: dict[str, str]) -> dict[str, ModelFamily]:
    models = {}
    for i, name in enumerate(config["training"]["models"]):
        try:
            family = get_model(name)
        except RegistryError as error:
            raise PlanError(f"config key training.models[{i}]: {error}") from None
        for task, kind in task_kinds.items():
            if kind not in family.tasks:
                raise PlanError(f"config key training.models[{i}]: {name} cannot learn task {task!r} "
                                f"(kind {kind}; {name} supports {list(family.tasks)})")
        models[name] = family
    return models


def _regimes(config: dict, conditions: dict, built: list[str]) -> dict[str, Regime]:
    """The trained regimes over the built conditions: noise types keep their built members (a type with
    none gives no mismatched regime), and a noisy regime left without conditions is dropped (it would
    be clean renamed)."""
    built_infos = {cid: conditions[cid] for cid in built}
    types = {t: [c for c in members if c in built_infos] for t, members in (config.get("noise_types") or {}).items()}
    try:
        regimes = build_regimes(dict(config, noise_types={t: m for t, m in types.items() if m}), built_infos)
    except RegimeError as error:
        raise PlanError(f"invalid configuration: {error}") from None
    return {name: r for name, r in regimes.items() if r.kind == "clean" or r.train_conditions}


def _model_regimes(config: dict, models, regimes: dict[str, Regime]) -> dict[str, list[str]]:
    # an entry of a model that is not trained is ignored (an overlay may limit every model it knows)
    limited = config["training"].get("model_regimes") or {}
    return {m: [name for name, r in regimes.items() if m not in limited or r.kind in limited[m]] for m in models}


def _sweep(config: dict, conditions, built, models) -> tuple[str | None, dict[str, Regime]]:
    sweep = config["training"].get("sweep") or {}
    if not sweep.get("fractions"):
        return None, {}
    model = sweep.get("model", "tdnn")
    if model not in models:
        raise PlanError(f"config key training.sweep.model: {model!r} is not in training.models {list(models)}")
    if "train" not in config["augment"]["pools"]:
        raise PlanError("config key augment.pools: training.sweep needs the train pool")
    try:
        return model, sweep_regimes(config, {cid: conditions[cid] for cid in built})
    except RegimeError as error:
        raise PlanError(f"invalid configuration: {error}") from None


def _backbones(config: dict, models, base_dir) -> tuple[dict[str, Backbone], dict[str, tuple]]:
    pretrained = config["pretrained"]
    backbones, repos = {}, {}
    for key in sorted({f.pretrained for f in registered_models().values() if f.pretrained}):  # every configured Hub backbone can be fetched (rule fetch_pretrained)
        repo_id = pretrained.get(key)
        if not repo_id or key in (pretrained.get("local") or {}):
            continue
        try:
            repos[folder_name(repo_id)] = (key, repo_id, (pretrained.get("revisions") or {}).get(key))
        except PretrainedError as error:
            raise PlanError(f"invalid configuration: config key pretrained.{key}: {error}") from None
    for name, family in models.items():
        if family.pretrained:
            try:
                backbones[name] = resolve_backbone(pretrained, family.pretrained, base_dir=base_dir)
            except PretrainedError as error:
                raise PlanError(f"invalid configuration: {error}") from None
    return backbones, repos


def build_plan(config: dict, *, attack_defaults: dict | None = None, perception_defaults: dict | None = None,
               base_dir: str | Path = ".") -> Plan:
    """The plan of a validated config.

    ``attack_defaults`` / ``perception_defaults``: the schema defaults of the optional ``attack:``
    and ``perception:`` sections, used when the config leaves them out (their rules still run on
    request, but ``all`` does not build them).  ``base_dir``: where relative paths are checked.
    """
    plugins = load_plugins(config)
    conditions, built = _conditions(config)
    task_kinds = _tasks(config)
    models = _models(config, task_kinds)
    strategy = _strategy(config, task_kinds)
    regimes = _regimes(config, conditions, built)
    sweep_model, sweep = _sweep(config, conditions, built, models)
    backbones, repos = _backbones(config, models, base_dir)
    perception_configured = "perception" in config
    perception = config["perception"] if perception_configured else dict(perception_defaults or {})
    attack_configured = "attack" in config
    attack_section = config["attack"] if attack_configured else attack_defaults
    attack = None
    if attack_section is not None:
        try:
            attack = resolve_attack(attack_section, config, conditions, regimes)
        except AttackConfigError as error:
            if attack_configured:
                raise PlanError(str(error)) from None  # else the defaults do not fit: the attack rules refuse
    return Plan(
        config=config,
        corpus=config["corpus"],
        conditions=conditions,
        built=built,
        pools=list(config["augment"]["pools"]),
        tasks=list(task_kinds),
        strategy=strategy,
        task_kinds=task_kinds,
        models=models,
        regimes=regimes,
        model_regimes=_model_regimes(config, models, regimes),
        folds=list(range(1, config["folds"]["n_folds"] + 1)),
        reps=list(range(1, config["training"]["repetitions"] + 1)),
        sweep_model=sweep_model,
        sweep_regimes=sweep,
        backbones=backbones,
        hub_repos=repos,
        perception=perception,
        perception_configured=perception_configured,
        attack=attack,
        attack_configured=attack_configured,
        plugins=plugins,
    )
