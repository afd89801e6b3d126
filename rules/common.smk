# Helpers shared by every stage: config validation, wildcard constraints, path builders and
# input functions. Domain logic lives in workflow/scripts/sernoise, never here.

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


def _alternatives(names):
    # Schema restricts names to [A-Za-z][A-Za-z0-9_]*, so they are regex-safe.
    return "|".join(sorted(names)) or "(?!)"


wildcard_constraints:
    corpus=_alternatives(config["corpora"]),
    bank=_alternatives(config["noise_banks"]),
    shard=r"\d{3}",


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


def all_targets():
    return corpus_targets(CORPUS) + noise_targets(NOISE_BANKS)
