# T-DNN features (paper §7.2.1, SPEC §7): 40-d log Mel filterbanks of every clean utterance and of
# every augmented dataset, one chunked HDF5 archive per dataset (one job per (condition, pool),
# never per utterance).  The features of a denoised variant (results/{corpus}/{denoised}/: RNNoise's
# denoised, DeepFilterNet3's denoised_dfn3) go to results/{corpus}/features/{denoised}/.
# Code: sernoise.features.


rule extract_features:
    input:
        index="results/{corpus}/augmented/{condition}/{pool}/index.csv",
        params="results/{corpus}/augmented/{condition}/{pool}/params.csv",
        status="results/{corpus}/augmented/{condition}/{pool}/status.json",
        shards=dataset_parts("augmented", "shard"),
    output:
        "results/{corpus}/features/{condition}/{pool}.h5",
    log:
        "logs/{corpus}/features/{condition}/extract_features-{pool}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/{condition}/extract_features-{pool}.tsv"
    group:
        "features"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        prepare=config["prepare"],
    script:
        "../workflow/scripts/extract_features.py"


use rule extract_features as extract_clean_features with:
    input:
        index="results/{corpus}/audio/index.csv",
        shards=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
    output:
        "results/{corpus}/features/clean.h5",
    log:
        "logs/{corpus}/features/extract_clean_features.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/extract_clean_features.tsv"


use rule extract_features as extract_denoised_features with:
    input:
        index="results/{corpus}/{denoised}/{condition}/{pool}/index.csv",
        params="results/{corpus}/{denoised}/{condition}/{pool}/params.csv",
        status="results/{corpus}/{denoised}/{condition}/{pool}/status.json",
        shards=dataset_parts("{denoised}", "shard"),
    output:
        "results/{corpus}/features/{denoised}/{condition}/{pool}.h5",
    log:
        "logs/{corpus}/features/{denoised}/{condition}/extract_denoised_features-{pool}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/{denoised}/{condition}/extract_denoised_features-{pool}.tsv"


use rule extract_features as extract_denoised_clean_features with:
    input:
        index="results/{corpus}/{denoised}/clean/index.csv",
        shards=dataset_parts("{denoised}", "shard", "clean"),
    output:
        "results/{corpus}/features/{denoised}/clean.h5",
    log:
        "logs/{corpus}/features/{denoised}/extract_denoised_clean_features.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/{denoised}/extract_denoised_clean_features.tsv"


rule outside_denoise_scope_features:
    """The empty feature archive that a denoised arm's dataset lists name for every condition outside
    denoise.conditions (rules/common.smk, dataset_file): one small job per denoised variant instead of
    denoising, merging and extracting an empty dataset per (condition, pool, shard)."""
    output:
        "results/{corpus}/features/{denoised}/outside_denoise_conditions.h5",
    log:
        "logs/{corpus}/features/{denoised}/outside_denoise_scope_features.log",
    localrule: True
    conda:
        "../envs/audio.yaml"
    params:
        conditions=lambda wc: [c for c in PLAN.conditions if not in_denoise_scope(c)],
    script:
        "../workflow/scripts/outside_denoise_scope_features.py"
