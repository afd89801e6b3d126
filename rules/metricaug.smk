# MetricAug (Wu & Lee, Interspeech 2023; issue 13): augment-while-train led by a distortion metric,
# with its baselines (None, Fixed SNR, CopyPaste), its test sets (clean, noise at the test SNRs from
# the test pool, an unseen noise category) and results/{corpus}/tables/metricaug.{csv,md,tex}.
# Noisy sets (superset, fixed, test, unseen): one job per clean audio shard, features + params (drawn
# parameters, SNR asked and measured, STOI/PESQ/fwSNRseg for the superset). CopyPaste items and the
# superset's levels: one job per fold. Training: one job per (method, fold, repetition).
# Off in `all` unless metricaug.enabled; the target `metricaug` builds the table either way.
# Code: sernoise.metricaug; input functions in rules/common.smk.

from sernoise.metricaug.names import SETS as METRICAUG_SETS  # noqa: E402
from sernoise.metricaug.names import config_problems as metricaug_problems  # noqa: E402
from sernoise.metricaug.names import methods as metricaug_methods  # noqa: E402

METRICAUG = config["metricaug"]
METRICAUG_METHODS = metricaug_methods(METRICAUG)
_metricaug_problems = metricaug_problems(METRICAUG, config["noise"]["categories"])
if _metricaug_problems:
    raise WorkflowError("invalid configuration: " + "; ".join(_metricaug_problems))
METRICAUG_RUNS = [
    (method, fold, rep)
    for method in METRICAUG_METHODS
    for fold in range(1, config["folds"]["n_folds"] + 1)
    for rep in range(1, METRICAUG["repetitions"] + 1)
]
METRICAUG_MODEL = "results/{corpus}/metricaug/models/{method}/fold{fold}/rep{rep}/"
# What every training job writes; none adds level_drops.csv, a MetricAug method its weights.
METRICAUG_OUTPUTS = {
    name: f"{METRICAUG_MODEL}{file}"
    for name, file in (
        ("model", "model.pt"),
        ("norm", "norm.npz"),
        ("hparams", "hparams.yaml"),
        ("curve", "curve.csv"),
        ("curve_png", "curve.png"),
        ("selection", "selection.csv"),
        ("versions", "versions.yaml"),
        ("predictions", "predictions.csv"),
    )
}


METRICAUG_TARGETS = metricaug_targets() if METRICAUG["enabled"] else []


rule metricaug:
    input:
        metricaug_targets(),


rule metricaug_noisy_shard:
    input:
        manifest="results/{corpus}/manifest.csv",
        shard="results/{corpus}/audio/shard-{shard}.h5",
        banks=PLAN.noise_targets(),
        bank_audio=[f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS],
    output:
        features="results/{corpus}/metricaug/{set}/features-{shard}.h5",
        params="results/{corpus}/metricaug/{set}/params-{shard}.csv",
    log:
        "logs/{corpus}/metricaug/{set}/noisy_shard-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/metricaug/{set}/noisy_shard-{shard}.tsv"
    wildcard_constraints:
        set="|".join(METRICAUG_SETS),
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=240,
    params:
        section=METRICAUG,
        seed=config["seed"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/metricaug_noisy_shard.py"


rule metricaug_copypaste:
    input:
        manifest="results/{corpus}/manifest.csv",
        folds="results/{corpus}/folds.csv",
        index="results/{corpus}/audio/index.csv",
        shards=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
        banks=PLAN.noise_targets(),
        bank_audio=[f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS],
    output:
        features="results/{corpus}/metricaug/copypaste/fold{fold}.h5",
        params="results/{corpus}/metricaug/copypaste/fold{fold}.csv",
    log:
        "logs/{corpus}/metricaug/copypaste/fold{fold}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/metricaug/copypaste/fold{fold}.tsv"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        section=METRICAUG,
        seed=config["seed"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/metricaug_copypaste.py"


rule metricaug_levels:
    input:
        manifest="results/{corpus}/manifest.csv",
        folds="results/{corpus}/folds.csv",
        params=lambda wc: metricaug_set_files(wc.corpus, "superset", "params"),
    output:
        csv="results/{corpus}/metricaug/levels/fold{fold}.csv",
        json="results/{corpus}/metricaug/levels/fold{fold}.json",
        png="results/{corpus}/metricaug/levels/fold{fold}.png",
    log:
        "logs/{corpus}/metricaug/levels/fold{fold}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        section=METRICAUG,
        seed=config["seed"],
    script:
        "../workflow/scripts/metricaug_levels.py"


rule metricaug_train:
    input:
        unpack(metricaug_train_inputs),
    output:
        **METRICAUG_OUTPUTS,
    log:
        "logs/{corpus}/metricaug/train/{method}/fold{fold}/rep{rep}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/metricaug/train/{method}/fold{fold}/rep{rep}.tsv"
    wildcard_constraints:
        method="fixed|copypaste",
    conda:
        "../envs/torch.yaml"
    threads: METRICAUG["threads"]
    resources:
        mem_mb=6000,
        runtime=480,
        gpu=TRAIN_GPU,
    params:
        section=METRICAUG,
        seed=config["seed"],
        device=config["training"]["device"],
    script:
        "../workflow/scripts/metricaug_train.py"


use rule metricaug_train as metricaug_train_clean with:
    output:
        **METRICAUG_OUTPUTS,
        level_drops=f"{METRICAUG_MODEL}level_drops.csv",
    wildcard_constraints:
        method="none",


use rule metricaug_train as metricaug_train_metricaug with:
    output:
        **METRICAUG_OUTPUTS,
        weights=f"{METRICAUG_MODEL}weights.csv",
        weights_png=f"{METRICAUG_MODEL}weights.png",
    wildcard_constraints:
        method="metricaug-[a-z]+-[a-z]+",


rule metricaug_table:
    input:
        predictions=[
            f"{METRICAUG_MODEL}predictions.csv".format(corpus=CORPUS, method=m, fold=f, rep=r)
            for m, f, r in METRICAUG_RUNS
        ],
        level_drops=[
            f"{METRICAUG_MODEL}level_drops.csv".format(corpus=CORPUS, method="none", fold=f, rep=r)
            for m, f, r in METRICAUG_RUNS
            if m == "none"
        ],
    output:
        csv=f"results/{CORPUS}/tables/metricaug.csv",
        md=f"results/{CORPUS}/tables/metricaug.md",
        tex=f"results/{CORPUS}/tables/metricaug.tex",
        levels_csv=f"results/{CORPUS}/tables/metricaug_levels.csv",
        levels_md=f"results/{CORPUS}/tables/metricaug_levels.md",
    log:
        f"logs/{CORPUS}/metricaug/table.log",
    conda:
        "../envs/stats.yaml"
    params:
        section=METRICAUG,
    script:
        "../workflow/scripts/metricaug_table.py"
