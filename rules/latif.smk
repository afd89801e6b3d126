# Latif et al. (README "Latif et al."; config `latif`): log-spectrogram segments of every audio
# shard (clean, speed-perturbed, noisy test copies), leave-one-speaker-out folds, one training per
# (model, augmentation, fold, repetition) scored clean, in noise and under FGSM/BIM, cross-corpus
# trainings (selected on 30 % of the target corpus, tested on the rest), and Tables 1-3 + Figure 2.
# Off in `all` unless latif.enabled; the target `latif` builds it either way.
# Code: sernoise.latif (job.py for the jobs); input functions in rules/common.smk.

from sernoise.latif.plan import SEGMENT_SETS as LATIF_SETS  # noqa: E402
from sernoise.latif.plan import build_latif_plan  # noqa: E402

try:
    LATIF = build_latif_plan(config)
except PlanError as error:
    raise WorkflowError(str(error)) from None

LATIF_TARGETS = LATIF.targets(CORPUS)
LATIF_RUN = "results/{corpus}/latif/runs/{model}/{augmentation}/fold{fold}/rep{rep}"
LATIF_CROSS = "results/{corpus}/latif/cross/{target}/{model}/{augmentation}/rep{rep}"


rule latif:
    input:
        LATIF.outputs(CORPUS),


rule latif_folds:
    input:
        manifest="results/{corpus}/manifest.csv",
    output:
        "results/{corpus}/latif/folds.csv",
    log:
        "logs/{corpus}/latif/folds.log",
    group:
        "latif_small"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        section=config["latif"],
    script:
        "../workflow/scripts/latif_folds.py"


rule latif_selection_split:
    input:
        manifest="results/{corpus}/manifest.csv",
    output:
        "results/{corpus}/latif/selection_split.csv",
    log:
        "logs/{corpus}/latif/selection_split.log",
    group:
        "latif_small"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        section=config["latif"],
        seed=config["seed"],
    script:
        "../workflow/scripts/latif_selection_split.py"


rule latif_spectrograms:
    input:
        unpack(latif_spectrogram_inputs),
    output:
        segments="results/{corpus}/latif/segments/{set}-{shard}.h5",
        params="results/{corpus}/latif/segments/{set}-{shard}.csv",
    log:
        "logs/{corpus}/latif/segments/{set}-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/latif/segments/{set}-{shard}.tsv"
    wildcard_constraints:
        set=_alternatives(LATIF_SETS),
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        section=config["latif"],
        seed=config["seed"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/latif_spectrograms.py"


rule latif_train:
    input:
        unpack(latif_train_inputs),
    output:
        model=f"{LATIF_RUN}/model.pt",
        norm=f"{LATIF_RUN}/norm.npz",
        hparams=f"{LATIF_RUN}/hparams.yaml",
        history=f"{LATIF_RUN}/history.csv",
        predictions=f"{LATIF_RUN}/predictions.csv",
    log:
        "logs/{corpus}/latif/runs/{model}/{augmentation}/fold{fold}/rep{rep}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/latif/runs/{model}/{augmentation}/fold{fold}/rep{rep}.tsv"
    wildcard_constraints:
        model=_alternatives(LATIF.models),
        augmentation=_alternatives(LATIF.augmentations),
    conda:
        "../envs/torch.yaml"
    threads: config["latif"]["threads"]
    resources:
        mem_mb=4000,
        runtime=480,
        gpu=TRAIN_GPU,
    params:
        section=config["latif"],
        seed=config["seed"],
        device=config["training"]["device"],
    script:
        "../workflow/scripts/latif_train.py"


use rule latif_train as latif_cross_train with:
    input:
        unpack(latif_cross_inputs),
    output:
        model=f"{LATIF_CROSS}/model.pt",
        norm=f"{LATIF_CROSS}/norm.npz",
        hparams=f"{LATIF_CROSS}/hparams.yaml",
        history=f"{LATIF_CROSS}/history.csv",
        predictions=f"{LATIF_CROSS}/predictions.csv",
    log:
        "logs/{corpus}/latif/cross/{target}/{model}/{augmentation}/rep{rep}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/latif/cross/{target}/{model}/{augmentation}/rep{rep}.tsv"
    wildcard_constraints:
        model=_alternatives(LATIF.models),
        augmentation=_alternatives(LATIF.augmentations),
        target=_alternatives([LATIF.target] if LATIF.target else []),


rule latif_tables:
    input:
        runs=lambda wc: LATIF.run_files(wc.corpus, "predictions.csv"),
        cross=lambda wc: LATIF.cross_files(wc.corpus, "predictions.csv"),
    output:
        **{
            f"{name}_{ext}": f"results/{{corpus}}/tables/latif_{name}.{ext}"
            for name in ("table1", "table2", "table3")
            for ext in ("csv", "md", "tex")
        },
    log:
        "logs/{corpus}/latif/tables.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        section=config["latif"],
        folds=LATIF.folds,
        reps=LATIF.reps,
    script:
        "../workflow/scripts/latif_tables.py"


rule latif_cross_corpus:
    input:
        cross=lambda wc: LATIF.cross_files(wc.corpus, "predictions.csv"),
    output:
        csv="results/{corpus}/tables/latif_cross_corpus.csv",
        md="results/{corpus}/tables/latif_cross_corpus.md",
        tex="results/{corpus}/tables/latif_cross_corpus.tex",
        png=report(
            "results/{corpus}/latif/cross_corpus.png",
            caption="../report/latif_cross_corpus.rst",
            category="Latif et al.",
        ),
    log:
        "logs/{corpus}/latif/cross_corpus.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        section=config["latif"],
        reps=LATIF.reps,
    script:
        "../workflow/scripts/latif_cross_corpus.py"
