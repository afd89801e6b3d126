# Helpers shared by every stage: config validation, wildcard constraints, path builders and
# input functions. Domain logic lives in workflow/scripts/sernoise, never here.

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The rule scripts find `sernoise` beside them (Snakemake puts a script's folder on sys.path);
# the Snakefile itself needs it on the path for config validation.
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

from sernoise.config import ConfigError, validate_config  # noqa: E402
from sernoise.scheduling import coalesce_rescheduling_timers  # noqa: E402

# Snakemake's scheduler multiplies its re-scheduling timers with every job end while jobs wait
# (measured: 40-50 % of a core in the 2-core demo); keep one pending (sernoise.scheduling).
try:
    from snakemake.scheduling.job_scheduler import JobScheduler
except ImportError:  # another Snakemake layout: nothing to work around
    pass
else:
    coalesce_rescheduling_timers(JobScheduler)

try:
    validate_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None

from sernoise.conditions import ConditionError, build_condition  # noqa: E402


def _build_conditions(specs, selected):
    """Build every configured condition now: bad arguments fail before any job runs, naming the id."""
    built, problems = {}, []
    for cid, spec in specs.items():
        try:
            built[cid] = build_condition(cid, spec)
        except ConditionError as error:
            problems.append(f"config key conditions.{cid}: {error}")
        except ImportError as error:
            problems.append(f"config key conditions.{cid}: type {spec.get('type')!r} cannot be loaded ({error})")
    for i, cid in enumerate(selected or []):
        if cid not in specs:
            problems.append(f"config key augment.conditions[{i}]: unknown condition {cid!r}; defined: {sorted(specs)}")
    if problems:
        raise WorkflowError(f"invalid configuration ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return built


CONDITIONS = _build_conditions(config["conditions"], config["augment"].get("conditions"))


def _alternatives(names):
    # Schema restricts names to [A-Za-z][A-Za-z0-9_]*, so they are regex-safe.
    return "|".join(sorted(names)) or "(?!)"


wildcard_constraints:
    corpus=_alternatives(config["corpora"]),
    bank=_alternatives(config["noise_banks"]),
    shard=r"\d{3}",
    condition="|".join(re.escape(c) for c in sorted(CONDITIONS)) or "(?!)",
    pool="train|test",


CORPUS = config["corpus"]
NOISE_BANKS = config["noise"]["banks"]


def corpus_config(corpus):
    return config["corpora"][corpus]


def shard_ids(corpus):
    return [f"{i:03d}" for i in range(corpus_config(corpus)["shards"])]


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


def download_of(kind, name):
    entry = config["corpora"][name] if kind == "corpus" else config["noise_banks"][name]
    download = entry["download"]
    return {
        "url": download["url"],
        "checksum": download.get("checksum"),
        "target": download.get("extract_to") or entry["root"],
    }


def corpus_targets(corpus):
    return [
        f"results/{corpus}/manifest.csv",
        f"results/{corpus}/folds.csv",
        f"results/{corpus}/rejects.csv",
    ]


def noise_targets(banks):
    return [f"results/noise/{bank}/bank.csv" for bank in banks]


def augment_conditions():
    """Condition ids built by default: augment.conditions, or every configured condition."""
    selected = config["augment"].get("conditions")
    return list(CONDITIONS) if selected is None else list(selected)


# The gallery shows the test conditions (the train pool when only that one is built).
GALLERY_POOL = "test" if "test" in config["augment"]["pools"] else config["augment"]["pools"][0]


def augment_targets(corpus):
    """The augmented datasets (params.csv of each condition and pool) and the spectrogram gallery."""
    conditions = augment_conditions()
    if not conditions:
        return []
    return expand(
        "results/{corpus}/augmented/{condition}/{pool}/params.csv",
        corpus=corpus,
        condition=conditions,
        pool=config["augment"]["pools"],
    ) + [f"results/{corpus}/augmented/gallery.png"]


def _condition_needs(condition_id, what):
    return what in CONDITIONS[condition_id].requires


def augment_shard_inputs(wc):
    """Input function of augment_shard: the clean shard, plus noise banks / filler bank when the condition needs them."""
    inputs = {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "shard": f"results/{wc.corpus}/audio/shard-{wc.shard}.h5",
    }
    if _condition_needs(wc.condition, "noise"):
        inputs["banks"] = noise_targets(NOISE_BANKS)
        inputs["bank_audio"] = [f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS]
    if _condition_needs(wc.condition, "fillers"):
        inputs["fillers"] = f"results/{wc.corpus}/fillers.h5"
    return inputs


def augmented_parts(kind):
    """Input function: one file per clean shard of the corpus (kind: shard, params or status)."""
    pattern = {
        "shard": "shard-{shard}.h5",
        "params": "params-{shard}.csv",
        "status": "status-{shard}.json",
    }[kind]

    def parts(wc):
        folder = f"results/{wc.corpus}/augmented/{wc.condition}/{wc.pool}/"
        return [folder + pattern.format(shard=s) for s in shard_ids(wc.corpus)]

    return parts


def denoised_parts(kind):
    """Input function (rules/denoise.smk, features.smk): one per-shard file of a denoised (condition,
    pool) dataset per clean shard (kind: shard, params or status)."""
    pattern = {"shard": "shard-{shard}.h5", "params": "params-{shard}.csv", "status": "status-{shard}.json"}[kind]

    def parts(wc):
        return [f"results/{wc.corpus}/denoised/{wc.condition}/{wc.pool}/{pattern.format(shard=s)}"
                for s in shard_ids(wc.corpus)]

    return parts


def denoised_clean_parts(kind):
    """Input function (rules/denoise.smk): one per-shard file of the denoised clean corpus per clean shard."""
    pattern = {"shard": "shard-{shard}.h5", "params": "params-{shard}.csv"}[kind]
    return lambda wc: [f"results/{wc.corpus}/denoised/clean/{pattern.format(shard=s)}" for s in shard_ids(wc.corpus)]


def gallery_inputs(wc):
    """Input function of augment_gallery: the merged outputs of every built condition in GALLERY_POOL."""
    folder = f"results/{wc.corpus}/augmented/{{condition}}/{GALLERY_POOL}/"
    conditions = augment_conditions()
    return {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "index": f"results/{wc.corpus}/audio/index.csv",
        "params": [folder.format(condition=c) + "params.csv" for c in conditions],
        "indexes": [folder.format(condition=c) + "index.csv" for c in conditions],
        "statuses": [folder.format(condition=c) + "status.json" for c in conditions],
    }


# Perception study. The section is optional: without it the rules still run on request, with the
# schema defaults, but `all` does not build the study.
PERCEPTION_CONFIGURED = "perception" in config
PERCEPTION = (
    config["perception"]
    if PERCEPTION_CONFIGURED
    else validate_config(dict(config, perception={}), Path(workflow.basedir) / "schemas" / "config.schema.yaml")["perception"]
)


def perception_conditions():
    """The study's conditions (those augmentation builds), with family and perception class from config."""
    return [
        {"condition": c, "family": CONDITIONS[c].family, "perception": CONDITIONS[c].perception}
        for c in augment_conditions()
    ]


def perception_augmented(corpus, name):
    """params.csv / status.json / index.csv of each study condition's augmented test dataset."""
    return [f"results/{corpus}/augmented/{c}/test/{name}" for c in augment_conditions()]


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
    return ["results/tables/table2.csv"] if PERCEPTION.get("responses") and corpus == CORPUS else []


def perception_targets(corpus):
    if not (PERCEPTION_CONFIGURED and augment_conditions()):
        return []
    targets = [
        f"results/{corpus}/perception/sample.csv",
        f"results/{corpus}/perception/export/tasks.csv",
        f"results/{corpus}/perception/partition.csv",
    ]
    if PERCEPTION.get("responses"):
        targets += ["results/tables/table2.csv", "results/tables/table2.md"]
    return targets


# Training and prediction (rules/train.smk). Regimes cover the conditions augmentation builds:
# noise_types are restricted to the built conditions (a type with none built gives no mismatched
# regime), and a noisy regime left without any condition is dropped (it would be clean renamed).
from sernoise.regimes import RegimeError, build_regimes, sweep_regimes  # noqa: E402


def _training_regimes():
    built = {cid: CONDITIONS[cid] for cid in augment_conditions()}
    types = {t: [c for c in members if c in built] for t, members in (config.get("noise_types") or {}).items()}
    types = {t: members for t, members in types.items() if members}
    try:
        regimes = build_regimes(dict(config, noise_types=types), built)
    except RegimeError as error:
        raise WorkflowError(f"invalid configuration: {error}") from None
    return {name: r for name, r in regimes.items() if r.kind == "clean" or r.train_conditions}


TRAIN_REGIMES = _training_regimes()


def model_regimes(model):
    """Names of the TRAIN_REGIMES `model` is trained in: all, or the kinds training.model_regimes
    names for it (a budget: the demo trains the end-to-end models in clean and matched only)."""
    kinds = (config["training"].get("model_regimes") or {}).get(model)
    return [name for name, regime in TRAIN_REGIMES.items() if kinds is None or regime.kind in kinds]


def _sweep():
    """(model, regimes) of the augmentation-fraction sweep (training.sweep); (None, {}) when off."""
    sweep = config["training"].get("sweep") or {}
    if not sweep.get("fractions"):
        return None, {}
    model = sweep.get("model", "tdnn")
    if model not in config["training"]["models"]:
        raise WorkflowError(f"config key training.sweep.model: {model!r} is not in training.models "
                            f"{config['training']['models']}")
    if "train" not in config["augment"]["pools"]:
        raise WorkflowError("config key augment.pools: training.sweep needs the train pool")
    try:
        regimes = sweep_regimes(config, {cid: CONDITIONS[cid] for cid in augment_conditions()})
    except RegimeError as error:
        raise WorkflowError(f"invalid configuration: {error}") from None
    return model, regimes


SWEEP_MODEL, SWEEP_REGIMES = _sweep()
ALL_REGIMES = {**TRAIN_REGIMES, **SWEEP_REGIMES}  # what train/predict rules accept
TRAIN_GPU = 1 if config["training"]["device"] == "cuda" else 0
TRAIN_WILDCARDS = {
    "model": "|".join(config["training"]["models"]),
    "regime": "|".join(re.escape(r) for r in sorted(ALL_REGIMES)) or "(?!)",
    "fold": r"\d+",
    "rep": r"\d+",
    "task": "|".join(config["training"]["tasks"]),
}


def training_regime(wc):
    try:
        return ALL_REGIMES[wc.regime]
    except KeyError:
        raise WorkflowError(f"unknown regime {wc.regime!r}; configured: {sorted(ALL_REGIMES)}") from None


# Feature variants: T-DNN-NR (tdnn_nr) trains and tests on features of RNNoise-denoised audio
# (rules/denoise.smk -> results/{corpus}/features/denoised/...); other models on the raw audio's.
DENOISED_MODELS = ("tdnn_nr",)
TDNN_MODELS = [m for m in config["training"]["models"] if m in ("tdnn", "tdnn_nr")]


def model_variant(model):
    return "denoised" if model in DENOISED_MODELS else "raw"


def feature_file(corpus, variant, condition=None, pool=None):
    """Feature archive of the clean corpus (condition None) or of a (condition, pool) dataset."""
    root = f"results/{corpus}/features/" + ("denoised/" if variant == "denoised" else "")
    return root + ("clean.h5" if condition is None else f"{condition}/{pool}.h5")


def train_inputs(wc):
    """Input function of train_tdnn: manifest, folds, clean features and the regime's TRAIN-pool features."""
    regime = training_regime(wc)
    if regime.train_conditions and "train" not in config["augment"]["pools"]:
        raise WorkflowError(f"config key augment.pools: regime {regime.name} needs the train pool")
    return {
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "folds": f"results/{wc.corpus}/folds.csv",
        "clean": feature_file(wc.corpus, model_variant(wc.model)),
        "conditions": [feature_file(wc.corpus, model_variant(wc.model), c, "train") for c in regime.train_conditions],
    }


def test_conditions():
    """Conditions every model is tested on: the built ones, when the test pool is built."""
    return augment_conditions() if "test" in config["augment"]["pools"] else []


def predict_inputs(wc):
    """Input function of predict_tdnn: the trained model, the fold's data, clean and TEST-pool features."""
    folder = f"results/{wc.corpus}/models/{wc.model}/{wc.regime}/fold{wc.fold}/rep{wc.rep}/{wc.task}"
    return {
        "model": f"{folder}/model.pt",
        "hparams": f"{folder}/hparams.yaml",
        "norm": f"{folder}/norm.npz",
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "folds": f"results/{wc.corpus}/folds.csv",
        "clean": feature_file(wc.corpus, model_variant(wc.model)),
        "conditions": [feature_file(wc.corpus, model_variant(wc.model), c, "test") for c in test_conditions()],
    }


def model_prediction_targets(corpus, model):
    """One predictions file per (regime of `model`, fold, repetition, task)."""
    return expand(
        "results/{corpus}/predictions/{model}/{regime}/fold{fold}/rep{rep}/{task}.csv",
        corpus=corpus,
        model=model,
        regime=model_regimes(model),
        fold=range(1, config["folds"]["n_folds"] + 1),
        rep=range(1, config["training"]["repetitions"] + 1),
        task=config["training"]["tasks"],
    )


def prediction_targets(corpus):
    """One predictions file per (model, regime of that model, fold, repetition, task)."""
    return [path for model in config["training"]["models"] for path in model_prediction_targets(corpus, model)]


def metrics_files(name, models):
    """results/{corpus}/metrics/{model}/{name}.csv of `models` (one compute_metrics job per model, so
    that Table 3 does not wait for the noise-robust arms, nor Table 4 for the others)."""
    return [f"results/{CORPUS}/metrics/{model}/{name}.csv" for model in models]


# Evaluation (rules/evaluate.smk): metrics of the prediction files, Table 3, plots.
def evaluation_settings():
    """What the evaluation scripts need of config: the regimes as train.smk builds them (noise types
    restricted to the built conditions), the built conditions with their classes, the tested ones."""
    built = augment_conditions()
    types = {t: [c for c in members if c in built] for t, members in (config.get("noise_types") or {}).items()}
    info = [
        {"id": c, "family": CONDITIONS[c].family, "perception": CONDITIONS[c].perception,
         "category": getattr(CONDITIONS[c], "category", None), "position": getattr(CONDITIONS[c], "position", None),
         "snr_db": getattr(CONDITIONS[c], "snr_db", None)}
        for c in built
    ]
    evaluation_config = {
        "training": config["training"],
        "noise_types": {t: members for t, members in types.items() if members},
        "conditions": {c: config["conditions"][c] for c in built},
    }
    return {"config": evaluation_config, "conditions": info, "tested": test_conditions(), "regimes": list(TRAIN_REGIMES),
            # E-DNN models on a stand-in backbone: table labels and caption notes (rules/pretrained.smk)
            "model_labels": ednn_model_labels(), "model_notes": ednn_caption_notes(),
            # models trained in fewer regimes (training.model_regimes): their other cells are "–"
            "model_regimes": {m: model_regimes(m) for m in config["training"]["models"]
                              if m in (config["training"].get("model_regimes") or {})}}


NR_MODELS = ("tdnn_nr", "ednn_nr")  # the columns of Table 4 (noise-robust arms, paper §7.4)


def evaluation_targets():
    tables = [f"results/tables/table3.{ext}" for ext in ("csv", "md", "tex", "html")]
    if any(m in NR_MODELS for m in config["training"]["models"]):
        tables += [f"results/tables/table4.{ext}" for ext in ("csv", "md", "tex", "html")]
    return tables + ["results/plots/uar_vs_snr.png", "results/plots/uar_per_condition.png"]


# Augmentation-fraction sweep (rules/evaluate.smk, make_sweep).
def sweep_predictions(corpus):
    """Prediction files of the sweep: its model under every fraction regime, and under `clean` (the 0 % point)."""
    if not SWEEP_REGIMES:
        return []
    regimes = list(SWEEP_REGIMES) + (["clean"] if "clean" in model_regimes(SWEEP_MODEL) else [])
    return expand(
        "results/{corpus}/predictions/{model}/{regime}/fold{fold}/rep{rep}/{task}.csv",
        corpus=corpus,
        model=SWEEP_MODEL,
        regime=regimes,
        fold=range(1, config["folds"]["n_folds"] + 1),
        rep=range(1, config["training"]["repetitions"] + 1),
        task=config["training"]["tasks"],
    )


def sweep_targets():
    if not SWEEP_REGIMES:
        return []
    return ["results/tables/sweep.csv", "results/tables/sweep.md", "results/plots/sweep.png"]


# Black-box noise attack (rules/attack.smk; paper §7.5, Table 5). Optional section, like the
# perception study: without `attack:` the rules still run on request (schema defaults), but `all`
# builds no Table 5; `attack: {models: []}` switches it off too. Checked now: sernoise.attack.settings.
from sernoise.attack.settings import AttackConfigError, resolve as resolve_attack  # noqa: E402

ATTACK_CONFIGURED = "attack" in config
try:
    ATTACK = resolve_attack(
        config["attack"] if ATTACK_CONFIGURED else
        validate_config(dict(config, attack={}), Path(workflow.basedir) / "schemas" / "config.schema.yaml")["attack"],
        config, CONDITIONS, TRAIN_REGIMES)
except AttackConfigError as error:
    if ATTACK_CONFIGURED:
        raise WorkflowError(str(error)) from None
    ATTACK = None  # the defaults do not fit this config; the attack rules then refuse to run
ATTACK_WILDCARDS = {
    "model": "|".join(ATTACK["models"]) if ATTACK else "(?!)",
    "task": "|".join(ATTACK["tasks"]) if ATTACK else "(?!)",
    "noise_set": _alternatives(ATTACK["noise_sets"]) if ATTACK else "(?!)",
    "knowledge": "|".join(ATTACK["knowledge"]) if ATTACK else "(?!)",
}


def attack_mem_mb(wc):
    """MB of memory of an attack job: 3000, or for an E-DNN (wav2vec2) what its training and prediction get."""
    return max(3000, int(config["ednn"]["mem_mb"])) if wc.model in BACKBONES else 3000


def attack_inputs(wc):
    """Input function of run_attack / attack_knowledge: the attacked model (attack.regime), the fold's
    data, the clean audio, the noise banks, for an E-DNN model its wav2vec2 backbone (the completion
    marker of the folder its hparams.yaml names: rules/common_ednn.smk `backbone`, as for predict_ednn)
    and, for knowledge 'degradation', the measured order."""
    if ATTACK is None:
        raise WorkflowError("config key attack: the attack needs an `attack:` section that fits this config")
    from sernoise.attack.models import MODEL_FILES

    folder = f"results/{wc.corpus}/models/{wc.model}/{ATTACK['regime']}/fold{wc.fold}/rep{wc.rep}/{wc.task}"
    inputs = {
        "model": [f"{folder}/{name}" for name in MODEL_FILES[wc.model]],
        "manifest": f"results/{wc.corpus}/manifest.csv",
        "folds": f"results/{wc.corpus}/folds.csv",
        "index": f"results/{wc.corpus}/audio/index.csv",
        "shards": [f"results/{wc.corpus}/audio/shard-{s}.h5" for s in shard_ids(wc.corpus)],
        "banks": noise_targets(NOISE_BANKS),
        "bank_audio": [f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS],
    }
    if wc.model in BACKBONES:
        inputs["backbone"] = backbone(wc.model).ready
    if getattr(wc, "knowledge", None) == "degradation":
        inputs["knowledge"] = f"results/{wc.corpus}/attack/{wc.model}/fold{wc.fold}/rep{wc.rep}/{wc.task}/knowledge.csv"
    return inputs


def attack_conditions():
    """Config entries of the conditions the attack categories draw from."""
    return {cid: config["conditions"][cid] for members in (ATTACK or {}).get("categories", {}).values() for cid in members}


def attack_results(corpus):
    """One result file per (model, fold, repetition, task, noise set, knowledge)."""
    if not ATTACK or not ATTACK["models"]:
        return []
    return expand(
        "results/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/{noise_set}-{knowledge}.csv",
        corpus=corpus,
        model=ATTACK["models"],
        fold=range(1, config["folds"]["n_folds"] + 1),
        rep=range(1, config["training"]["repetitions"] + 1),
        task=ATTACK["tasks"],
        noise_set=list(ATTACK["noise_sets"]),
        knowledge=ATTACK["knowledge"],
    )


def attack_targets():
    if not (ATTACK_CONFIGURED and attack_results(CORPUS)):
        return []
    return [f"results/tables/table5.{ext}" for ext in ("csv", "md", "tex")] + ["results/plots/attack_budget.png"]


def all_targets():
    return (
        corpus_targets(CORPUS)
        + noise_targets(NOISE_BANKS)
        + augment_targets(CORPUS)
        + perception_targets(CORPUS)
        + prediction_targets(CORPUS)  # rules/train.smk
        + evaluation_targets()  # rules/evaluate.smk
        + sweep_targets()  # rules/evaluate.smk (make_sweep)
        + attack_targets()  # rules/attack.smk (Table 5)
    )
