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


def all_targets():
    return (
        corpus_targets(CORPUS)
        + noise_targets(NOISE_BANKS)
        + augment_targets(CORPUS)
        + perception_targets(CORPUS)
    )
