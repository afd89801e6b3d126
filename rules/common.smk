# Helpers shared by every stage: config validation, the plan, wildcard constraints, path builders
# and input functions. Everything the job graph needs is resolved by sernoise.plan (pure Python,
# unit-tested in process); this file only turns the plan into constraints, paths and input
# functions. Domain logic lives in workflow/scripts/sernoise, never here. Parsing imports no
# audio or model library (tests/test_plan.py checks it): the Snakemake process needs only the
# host environment of envs/snakemake.yaml.

import re
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

# The rule scripts find `sernoise` beside them (Snakemake puts a script's folder on sys.path);
# the Snakefile itself needs it on the path for the config and the plan.
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

from sernoise.config import ConfigError, validate_config  # noqa: E402
from sernoise.model_registry import DENOISED_AUDIO  # noqa: E402
from sernoise.plan import PlanError, build_plan  # noqa: E402
from sernoise.pretrained import PRETRAINED_ROOT, READY, TINY_NAME  # noqa: E402
from sernoise.scheduling import coalesce_rescheduling_timers  # noqa: E402

# Snakemake's scheduler multiplies its re-scheduling timers with every job end while jobs wait
# (measured: 40-50 % of a core in the 2-core demo); keep one pending (sernoise.scheduling).
try:
    from snakemake.scheduling.job_scheduler import JobScheduler
except ImportError:  # another Snakemake layout: nothing to work around
    pass
else:
    coalesce_rescheduling_timers(JobScheduler)

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"


def _section_defaults(name):
    """Schema defaults of an optional top-level section (perception, attack) the config leaves out."""
    return validate_config(dict(config, **{name: {}}), SCHEMA)[name]


try:
    validate_config(config, SCHEMA)
    PLAN = build_plan(
        config,
        attack_defaults=None if "attack" in config else _section_defaults("attack"),
        perception_defaults=None if "perception" in config else _section_defaults("perception"),
    )
except (ConfigError, PlanError) as error:
    raise WorkflowError(str(error)) from None

CORPUS = PLAN.corpus
NOISE_BANKS = config["noise"]["banks"]
PERCEPTION = PLAN.perception
ATTACK = PLAN.attack
TRAIN_GPU = 1 if config["training"]["device"] == "cuda" else 0


def _alternatives(names):
    """A wildcard constraint matching exactly ``names`` (never anything when empty)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


wildcard_constraints:
    corpus=_alternatives(config["corpora"]),
    bank=_alternatives(config["noise_banks"]),
    shard=r"\d{3}",
    condition=_alternatives(PLAN.conditions),
    pool="train|test",
    denoised=_alternatives(DENOISED_AUDIO),
    fold=r"\d+",
    rep=r"\d+",


# Wildcards of the model rules (rules/models.smk) and the attack (rules/attack.smk).
MODEL_WILDCARDS = {
    "regime": _alternatives(PLAN.all_regimes),
    "task": _alternatives(PLAN.tasks),
    "features_model": _alternatives(PLAN.models_by_input("features")),
    "waveform_model": _alternatives(PLAN.models_by_input("waveform")),
    "model": _alternatives(PLAN.models),
}
ATTACK_WILDCARDS = {
    "model": _alternatives(ATTACK["models"]) if ATTACK else "(?!)",
    "task": _alternatives(ATTACK["tasks"]) if ATTACK else "(?!)",
}


def corpus_config(corpus):
    return config["corpora"][corpus]


def shard_ids(corpus):
    return [f"{i:03d}" for i in range(corpus_config(corpus)["shards"])]


def official_fold_params():
    """Rule make_folds's parameters beyond n_folds: the tested partitions under folds.scheme official, so that
    changing them reruns the rule; none for the other schemes (a new parameter would rerun the rule, and all
    after it, in every existing workspace)."""
    if config["folds"].get("scheme") != "official":
        return {}
    return {"test_partitions": config["folds"].get("test_partitions")}  # absent: the default (sernoise.folds)


def _ready_marker(kind, name, entry, key):
    """Input function body: the download marker, nothing when the data was already there, or a clear error.

    Once downloaded, the marker stays the input so that the input set (and so the need to
    rerun) does not change between the run that downloaded and the runs after it.
    """
    root = Path(entry["root"])
    marker = f"resources/downloads/{kind}_{name}.complete"
    if "download" in entry and Path(marker).exists():
        return marker
    if root.exists():
        return []
    if "download" in entry:
        return marker
    hint = (
        " IEMOCAP is licensed and never downloaded: put or symlink your IEMOCAP_full_release/ there."
        if entry.get("adapter") == "iemocap"
        else ""
    )
    raise WorkflowError(f"config key {key}.root: {root} does not exist and no download is configured.{hint}")


def corpus_ready(wildcards):
    return _ready_marker("corpus", wildcards.corpus, corpus_config(wildcards.corpus), f"corpora.{wildcards.corpus}")


def noise_bank_ready(wildcards):
    entry = config["noise_banks"][wildcards.bank]
    return _ready_marker("noise", wildcards.bank, entry, f"noise_banks.{wildcards.bank}")


def manifest_alignments(wildcards):
    """Input function of build_manifest: the corpus's alignments.csv (rules/align.smk) unless align.enabled is false."""
    return f"results/{wildcards.corpus}/alignments/alignments.csv" if config["align"]["enabled"] else []


def download_of(kind, name):
    entry = config["corpora"][name] if kind == "corpus" else config["noise_banks"][name]
    download = entry["download"]
    return {
        "url": download["url"],
        "checksum": download.get("checksum"),
        "target": download.get("extract_to") or entry["root"],
    }


def augment_conditions():
    """Condition ids built by default: augment.conditions, or every configured condition."""
    return list(PLAN.built)


# The gallery shows the test conditions (the train pool when only that one is built).
GALLERY_POOL = "test" if "test" in PLAN.pools else PLAN.pools[0]


def _condition_needs(condition_id, what):
    return what in PLAN.conditions[condition_id].requires


def augment_shard_inputs(wc):
    """Input function of augment_shard: the clean shard, plus noise banks / filler bank when the condition needs them."""
    inputs = {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "shard": f"results/{wc.corpus}/audio/shard-{wc.shard}.h5",
    }
    if _condition_needs(wc.condition, "noise"):
        inputs["banks"] = PLAN.noise_targets()
        inputs["bank_audio"] = [f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS]
    if _condition_needs(wc.condition, "fillers"):
        inputs["fillers"] = f"results/{wc.corpus}/fillers.h5"
    return inputs


SHARD_FILES = {"shard": "shard-{shard}.h5", "params": "params-{shard}.csv", "status": "status-{shard}.json"}


def dataset_parts(stage, kind, dataset="{condition}/{pool}"):
    """Input function: one per-shard file (kind: shard, params or status) of a ``stage`` (augmented,
    denoised) dataset per clean shard of the corpus: a (condition, pool) dataset, or ``dataset``
    "clean" (the denoised clean corpus).  ``stage`` "{denoised}": the job's denoised variant."""

    def parts(wc):
        name = dataset.format(condition=wc.get("condition"), pool=wc.get("pool"))
        folder = f"results/{wc.corpus}/{stage.format(denoised=wc.get('denoised'))}/{name}"
        return [f"{folder}/{SHARD_FILES[kind].format(shard=s)}" for s in shard_ids(wc.corpus)]

    return parts


def denoiser_of(wc):
    """Param of the denoising rules: the denoiser of the job's {denoised} folder (DENOISED_AUDIO)."""
    return DENOISED_AUDIO[wc.denoised]


def denoiser_options(wc):
    """Param of the denoising rules: the config options of that denoiser (denoise.dfn3; none for RNNoise)."""
    return config["denoise"].get(DENOISED_AUDIO[wc.denoised]) or {}


def gallery_inputs(wc):
    """Input function of augment_gallery: the merged outputs of every built condition in GALLERY_POOL."""
    folder = f"results/{wc.corpus}/augmented/{{condition}}/{GALLERY_POOL}/"
    return {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "index": f"results/{wc.corpus}/audio/index.csv",
        "params": [f"{folder.format(condition=c)}params.csv" for c in PLAN.built],
        "indexes": [f"{folder.format(condition=c)}index.csv" for c in PLAN.built],
        "statuses": [f"{folder.format(condition=c)}status.json" for c in PLAN.built],
    }


# Perception study (rules/perception.smk). The section is optional: without it the rules still run
# on request, with the schema defaults, but `all` does not build the study.
def perception_conditions():
    """The study's conditions (those augmentation builds), with family and perception class from config."""
    return [
        {"condition": c, "family": PLAN.conditions[c].family, "perception": PLAN.conditions[c].perception}
        for c in PLAN.built
    ]


def perception_augmented(corpus, name):
    """params.csv / status.json / index.csv of each study condition's augmented test dataset."""
    return [f"results/{corpus}/augmented/{c}/test/{name}" for c in PLAN.built]


def perception_responses(wildcards):
    """Input function of perception_table2: the configured responses file, or a clear error."""
    path = PERCEPTION.get("responses")
    if not path:
        raise WorkflowError("config key perception.responses is not set: Table 2 needs the study's responses CSV")
    if not path.startswith("results/") and not Path(path).exists():
        raise WorkflowError(f"config key perception.responses: {path} does not exist")
    return path


def perception_table2_input(corpus):
    """Input of perception_partition: Table 2 when the study has responses (for the configured corpus)."""
    return PLAN.table2_targets()[:1] if corpus == CORPUS else []


# Models (rules/models.smk): one training per (model, regime, fold, repetition, task), the family's
# code and files from sernoise.model_registry; regimes from the plan.
def training_regime(wc):
    try:
        return PLAN.regime(wc.regime)
    except PlanError as error:
        raise WorkflowError(str(error)) from None


def feature_root(corpus, audio):
    """Folder of the feature archives of ``audio`` (raw, or a denoised variant: T-DNN-NR's RNNoise-denoised
    audio in features/denoised, tdnn_dfn3's in features/denoised_dfn3)."""
    return f"results/{corpus}/features" if audio == "raw" else f"results/{corpus}/features/{audio}"


def feature_file(corpus, family):
    """Feature archive of the clean corpus, for the audio the family reads."""
    return f"{feature_root(corpus, family.audio)}/clean.h5"


def audio_dataset(corpus, condition, pool):
    """index.csv and shards of an audio dataset: the clean corpus (condition None) or a condition's pool."""
    folder = f"results/{corpus}/audio" if condition is None else f"results/{corpus}/augmented/{condition}/{pool}"
    return f"{folder}/index.csv", [f"{folder}/shard-{s}.h5" for s in shard_ids(corpus)]


# The datasets a model job reads, by source: filterbank features of raw or denoised audio, or the audio.
def dataset_source(family):
    """features, features-denoised, features-denoised_dfn3 (the family's audio) or waveform."""
    return family.input if family.audio == "raw" else f"{family.input}-{family.audio}"


DATASET_SOURCES = sorted({dataset_source(PLAN.models[m]) for m in PLAN.models})


def in_denoise_scope(condition):
    """Whether the denoised arms cover ``condition`` (denoise.conditions; null: every condition)."""
    scope = config["denoise"]["conditions"]
    return scope is None or condition in scope


def outside_denoise_scope_file(corpus, audio):
    """The one empty feature archive that stands, in a denoised arm's dataset lists, for every condition
    outside denoise.conditions (rule outside_denoise_scope_features)."""
    return f"{feature_root(corpus, audio)}/outside_denoise_conditions.h5"


def dataset_file(corpus, source, condition, pool):
    """The file that stands for a (condition, pool) dataset of ``source``: its feature archive, or its
    audio's index.csv (which stands for its shards: the rule writing it takes every shard as input).
    A denoised source's condition outside denoise.conditions is the empty archive of
    outside_denoise_scope_file: its training and prediction jobs find no utterance there, as in a
    condition skipped on the corpus, and none of its audio is denoised (in the demo that was 144
    denoising, 72 merging and 72 feature jobs that each wrote an empty dataset)."""
    if source == "waveform":
        return audio_dataset(corpus, condition, pool)[0]
    audio = source.partition("-")[2] or "raw"
    if audio != "raw" and not in_denoise_scope(condition):
        return outside_denoise_scope_file(corpus, audio)
    return f"{feature_root(corpus, audio)}/{condition}/{pool}.h5"


def dataset_list(corpus, source, listing):
    """A dataset list, written by list_datasets; ``listing`` is ``test`` (every tested condition, TEST pool)
    or ``train-<regime>`` (the regime's training conditions, TRAIN pool)."""
    return f"results/{corpus}/datasets/{source}/{listing}.json"


def listed_conditions(wc):
    """The conditions of a dataset list: the tested ones, or a regime's training conditions."""
    if wc.listing == "test":
        return list(PLAN.tested)
    return training_conditions(SimpleNamespace(corpus=wc.corpus, regime=wc.listing.removeprefix("train-")))


def listed_datasets(wc):
    pool = "test" if wc.listing == "test" else "train"
    return [dataset_file(wc.corpus, wc.source, c, pool) for c in listed_conditions(wc)]


def _examples(wc, family, listing):
    """The data of one model's examples: features or audio of the clean corpus, and the list of the
    condition datasets of ``listing`` (sernoise.job_views: the job's views read it). One list file
    instead of a file per dataset keeps each model job at a few inputs: with every condition's
    dataset as an input, the model jobs' edges were most of the paper-scale DAG's build time."""
    inputs = {"manifest": f"results/{wc.corpus}/manifest.csv", "folds": f"results/{wc.corpus}/folds.csv"}
    if family.input == "features":
        inputs["clean"] = feature_file(wc.corpus, family)
    else:
        inputs["clean_index"] = audio_dataset(wc.corpus, None, None)[0]
    inputs["datasets"] = dataset_list(wc.corpus, dataset_source(family), listing)
    if wc.model in PLAN.backbones:
        inputs["backbone"] = PLAN.backbones[wc.model].ready
    return inputs


def partition_file(corpus):
    """The perception partition, written by perception_partition: from the study's Table 2 when it has responses."""
    return f"results/{corpus}/perception/partition.csv"


def study_partition(corpus):
    """True when the partition of ``corpus`` comes from study responses (perception.responses; Table 2 is
    built for the configured corpus only), so that it may differ from the config's classes."""
    return bool(PLAN.perception.get("responses")) and corpus == CORPUS


def training_conditions(wc):
    """The TRAIN-pool datasets a training job reads: the regime's conditions; for a regime that uses only
    perception-retaining conditions while a study partition is in force, every condition the regime kind
    may choose (the job picks the retaining ones from partition.csv: sernoise.perception.partition)."""
    regime = training_regime(wc)
    if regime.kind in ("clean", "all") or not study_partition(wc.corpus):
        return list(regime.train_conditions)
    if regime.held_out_type is None:
        return list(PLAN.built)
    types = config.get("noise_types") or {}
    typed = {c for members in types.values() for c in members}  # a mismatched regime trains on typed conditions
    return [c for c in PLAN.built if c in typed and c not in types[regime.held_out_type]]


def train_inputs(wc):
    """Input function of train_*_model: the fold's data, the regime's TRAIN-pool datasets, the backbone and,
    for regimes of perception-retaining conditions, the perception partition."""
    regime = training_regime(wc)
    if regime.train_conditions and "train" not in PLAN.pools:
        raise WorkflowError(f"config key augment.pools: regime {regime.name} needs the train pool")
    inputs = _examples(wc, PLAN.family(wc.model), f"train-{wc.regime}")
    if regime.kind not in ("clean", "all"):
        inputs["partition"] = partition_file(wc.corpus)
    return inputs


# One prediction job per (model, regime, fold) scores the models of every (repetition, task): a job per
# model doubled the paper-scale DAG (issue 16), and the runs share their test data.
# Dimensional tasks are trained but not scored (PLAN.scored_tasks).
PREDICTION_RUNS = [(rep, task) for rep in PLAN.reps for task in PLAN.scored_tasks]


def prediction_outputs():
    """Output files of predict_*_model, one per (repetition, task), in PREDICTION_RUNS' order."""
    return [
        PLAN.prediction_file("{corpus}", "{model}", "{regime}", "{fold}", rep, task) for rep, task in PREDICTION_RUNS
    ]


def prediction_runs(wc):
    """params.runs of predict_*_model: the (repetition, task, model folder) of each output file, and the
    file of its training job that the prediction waits on (sernoise.job_views.prediction_views)."""
    return [
        {
            "rep": rep,
            "task": task,
            "folder": PLAN.model_folder(wc.corpus, wc.model, wc.regime, wc.fold, rep, task),
            "trained": trained_model_file(wc.corpus, wc.model, wc.regime, wc.fold, rep),
        }
        for rep, task in PREDICTION_RUNS
    ]


def trained_model_file(corpus, model, regime, fold, rep):
    """The file that stands for a train_*_model job (model, regime, fold, rep) in its consumers' inputs:
    the family's first model file of the first task. The job writes every task's files, so waiting on
    one waits on all (and a rerun of the job renews it); one input per training job instead of one per
    model file keeps the paper-scale DAG ~4,000 edges smaller (issue 16)."""
    folder = PLAN.model_folder(corpus, model, regime, fold, rep, PLAN.tasks[0])
    return f"{folder}/{PLAN.family(model).model_files[0]}"


def prediction_job_files(wc):
    """One prediction file per predict_*_model job of wc.model (its first output): what compute_metrics
    waits on. A job writes every (repetition, task) file it scores, so waiting on one waits on all, and
    a rerun renews it; compute_metrics reads the full list (PLAN.predictions) from its params."""
    first = prediction_outputs()[0]
    return [
        first.format(corpus=wc.corpus, model=wc.model, regime=regime, fold=fold)
        for regime in PLAN.model_regimes[wc.model]
        for fold in PLAN.folds
    ]


def prediction_runtime(wc):
    """Minutes of a predict_*_model job: the family's prediction runtime (one model) per run it scores."""
    return len(PREDICTION_RUNS) * int(PLAN.family(wc.model).resource("predict", "runtime", config, 60))


def predict_inputs(wc):
    """Input function of predict_*_model: the trained models' files, clean and TEST-pool datasets."""
    family = PLAN.family(wc.model)
    inputs = _examples(wc, family, "test")
    inputs["models"] = [trained_model_file(wc.corpus, wc.model, wc.regime, wc.fold, rep) for rep in PLAN.reps]
    return inputs


def model_resource(stage, key, default):
    """Resource function: the family's `key` of `stage` (sernoise.model_registry.ModelFamily.resource)."""
    return lambda wc: PLAN.family(wc.model).resource(stage, key, config, default)


def model_output_names(kind):
    """The files a train_*_model job writes into each model folder: those of its input kind's families
    (one set per rule)."""
    families = [PLAN.models[m] for m in PLAN.models_by_input(kind)]
    files = families[0].outputs if families else ("model.pt", "hparams.yaml")
    differ = [f.name for f in families if f.outputs != files]
    if differ:
        raise WorkflowError(
            f"model families {differ} write other files than {families[0].name} ({files}); "
            f"families of input {kind!r} share one training rule"
        )
    return files


# One training job per (model, regime, fold, repetition) trains every task, one model folder each (a job
# per task doubled the paper-scale DAG, issue 16; the tasks share the job's start-up and data).
def model_outputs(kind):
    """Output files of train_*_model: the model files of every task's folder."""
    return [
        f"{PLAN.model_folder('{corpus}', '{model}', '{regime}', '{fold}', '{rep}', task)}/{name}"
        for task in PLAN.tasks
        for name in model_output_names(kind)
    ]


def training_runs(wc):
    """params.runs of train_*_model: the task and model folder of each model it trains (sernoise.job_views)."""
    return [
        {"task": t, "folder": PLAN.model_folder(wc.corpus, wc.model, wc.regime, wc.fold, wc.rep, t)} for t in PLAN.tasks
    ]


def training_runtime(wc):
    """Minutes of a train_*_model job: the family's training runtime (one model) per task it trains."""
    return len(PLAN.tasks) * int(PLAN.family(wc.model).resource("train", "runtime", config, 480))


# Evaluation (rules/evaluate.smk): metrics of the prediction files, Tables 3 and 4, plots, the sweep.
EVALUATION_SETTINGS = PLAN.evaluation_settings()


def table_outputs(name, caption, title):
    """Outputs of a UAR table rule: CSV and HTML in the report, Markdown and LaTeX beside them."""
    return {
        "csv": report(
            PLAN.table(name, "csv"),
            caption=caption,
            category="Tables",
            labels={"table": title, "format": "CSV (one row per cell)"},
        ),
        "markdown": PLAN.table(name, "md"),
        "latex": PLAN.table(name, "tex"),
        "html": report(
            PLAN.table(name, "html"),
            caption=caption,
            category="Tables",
            labels={"table": title, "format": "paper layout"},
        ),
    }


# Black-box noise attack (rules/attack.smk; paper §7.5, Table 5). Optional section, like the
# perception study: without `attack:` the rules still run on request (schema defaults), but `all`
# builds no Table 5; `attack: {models: []}` switches it off too.
def attack_mem_mb(wc):
    """MB of memory of an attack job: 3000, or what the family's prediction gets when that is more."""
    return max(3000, int(PLAN.family(wc.model).resource("predict", "mem_mb", config, 3000)))


def attack_inputs(wc):
    """Input function of run_attack: the attacked model's files (attack.regime), the fold's data, the
    clean audio, the noise banks and the model's backbone when it has one."""
    if ATTACK is None:
        raise WorkflowError("config key attack: the attack needs an `attack:` section that fits this config")
    folder = PLAN.model_folder(wc.corpus, wc.model, ATTACK["regime"], wc.fold, wc.rep, wc.task)
    inputs = {
        # one file stands for the model's training job (see trained_model_file); the job loads the folder
        "model": [f"{folder}/{PLAN.family(wc.model).model_files[0]}"],
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "folds": f"results/{wc.corpus}/folds.csv",
        "index": f"results/{wc.corpus}/audio/index.csv",  # stands for its shards (see _examples)
        "banks": PLAN.noise_targets(),
        "bank_audio": [f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS],
    }
    if wc.model in PLAN.backbones:
        inputs["backbone"] = PLAN.backbones[wc.model].ready
    if any(_condition_needs(cid, "fillers") for cid in attack_conditions()):
        inputs["fillers"] = f"results/{wc.corpus}/fillers.h5"
    inputs["partition"] = partition_file(wc.corpus)  # which categories a `retaining` noise set holds
    return inputs


def attack_runs():
    """(noise set, knowledge) of every attack of a run_attack job, in the order it runs them (config order)."""
    return [(s, k) for s in ATTACK["noise_sets"] for k in ATTACK["knowledge"]] if ATTACK else []


def attack_outputs():
    """Outputs of run_attack (wildcards corpus, model, fold, rep, task): `knowledge`, the measured
    degradation order, when a knowledge setting is 'degradation', and `results`, one
    {noise_set}-{knowledge}.csv per attack_runs() (PLAN.attack_results() lists them for all jobs)."""
    folder = "results/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}"
    if not ATTACK:  # the rule's wildcard constraints match nothing then (ATTACK_WILDCARDS)
        return {"results": [f"{folder}/unconfigured.csv"]}
    outputs = {"results": [f"{folder}/{s}-{k}.csv" for s, k in attack_runs()]}
    if "degradation" in ATTACK["knowledge"]:
        outputs = {"knowledge": f"{folder}/knowledge.csv", **outputs}
    return outputs


def attack_job_files():
    """One result file per run_attack job (its first attack's), what make_table5 waits on; like
    prediction_job_files, the table reads every result (PLAN.attack_results) from its params."""
    if not PLAN.attacked_runs():
        return []
    first = attack_outputs()["results"][0]
    return [first.format(corpus=CORPUS, model=m, fold=f, rep=k, task=t) for m, f, k, t in PLAN.attacked_runs()]


def attack_conditions():
    """Config entries of the conditions the attack categories draw from."""
    return {
        cid: config["conditions"][cid] for members in (ATTACK or {}).get("categories", {}).values() for cid in members
    }


# ---- MetricAug (rules/metricaug.smk; METRICAUG* are set there)


def metricaug_set_files(corpus, name, kind):
    ext = "h5" if kind == "features" else "csv"
    return [f"results/{corpus}/metricaug/{name}/{kind}-{s}.{ext}" for s in shard_ids(corpus)]


def metricaug_train_inputs(wc):
    """The fold's clean features, the method's training data and every test set."""
    corpus = wc.corpus
    inputs = {
        "manifest": f"results/{corpus}/manifest.csv",
        "folds": f"results/{corpus}/folds.csv",
        "clean": f"results/{corpus}/features/clean.h5",
        "test_features": metricaug_set_files(corpus, "test", "features"),
        "test_params": metricaug_set_files(corpus, "test", "params"),
        "unseen_features": metricaug_set_files(corpus, "unseen", "features"),
        "unseen_params": metricaug_set_files(corpus, "unseen", "params"),
    }
    if wc.method in ("fixed", "copypaste"):
        inputs["fixed_features"] = metricaug_set_files(corpus, "fixed", "features")
        inputs["fixed_params"] = metricaug_set_files(corpus, "fixed", "params")
    if wc.method == "copypaste":
        inputs["copypaste_features"] = f"results/{corpus}/metricaug/copypaste/fold{wc.fold}.h5"
        inputs["copypaste_params"] = f"results/{corpus}/metricaug/copypaste/fold{wc.fold}.csv"
    if wc.method == "none" or wc.method.startswith("metricaug-"):
        # none: the clean model's WF1 drop per level (Table 3)
        inputs["superset_features"] = metricaug_set_files(corpus, "superset", "features")
        inputs["levels"] = f"results/{corpus}/metricaug/levels/fold{wc.fold}.csv"
    return inputs


def metricaug_targets():
    return [f"results/{CORPUS}/tables/metricaug.{ext}" for ext in ("csv", "md", "tex")] + [
        f"results/{CORPUS}/metricaug/levels/fold{fold}.png" for fold in range(1, config["folds"]["n_folds"] + 1)
    ]


# ---- CTSL (rules/ctsl.smk; CTSL is set there)


def ctsl_teacher(wc):
    """The teacher's files (teacher_model, teacher_hparams, teacher_norm...): the family's model files of its
    clean-regime training of this fold, repetition and task; and its backbone when it has one."""
    folder = PLAN.model_folder(wc.corpus, wc.model, "clean", wc.fold, wc.rep, wc.task)
    family = PLAN.family(wc.model)
    inputs = {f"teacher_{Path(name).stem}": f"{folder}/{name}" for name in family.model_files}
    if wc.model in PLAN.backbones:
        inputs["backbone"] = PLAN.backbones[wc.model].ready
    return inputs


# ---- Latif et al. (rules/latif.smk; LATIF is set there)


def latif_segment_files(corpus, name):
    """The segment archives of one set (clean, speed, noisy) of every audio shard of ``corpus``."""
    return [f"results/{corpus}/latif/segments/{name}-{s}.h5" for s in shard_ids(corpus)]


def latif_spectrogram_inputs(wc):
    """The shard's audio; the noise banks for the noisy test copies."""
    inputs = {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "shard": f"results/{wc.corpus}/audio/shard-{wc.shard}.h5",
    }
    if wc.set == "noisy":
        inputs["banks"] = PLAN.noise_targets()
        inputs["bank_audio"] = [f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS]
    return inputs


def latif_train_inputs(wc):
    """A within-corpus run: the folds, the clean and noisy segments, the speed copies when its augmentation has them."""
    inputs = {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "folds": f"results/{wc.corpus}/latif/folds.csv",
        "clean": latif_segment_files(wc.corpus, "clean"),
        "noisy": latif_segment_files(wc.corpus, "noisy"),
    }
    if wc.augmentation.startswith("speed"):
        inputs["speed"] = latif_segment_files(wc.corpus, "speed")
    return inputs


def latif_cross_inputs(wc):
    """A cross-corpus run: every segment of the training corpus, the target's segments and its selection split."""
    inputs = {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "clean": latif_segment_files(wc.corpus, "clean"),
        "target_manifest": f"results/{wc.target}/manifest.csv",
        "target_split": f"results/{wc.target}/latif/selection_split.csv",
        "target_clean": latif_segment_files(wc.target, "clean"),
    }
    if wc.augmentation.startswith("speed"):
        inputs["speed"] = latif_segment_files(wc.corpus, "speed")
    return inputs
