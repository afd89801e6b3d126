# T-DNN features (paper §7.2.1, SPEC §7): 40-d log Mel filterbanks of every clean utterance and of
# every augmented dataset, one chunked HDF5 archive per dataset (one job per (condition, pool),
# never per utterance).  Code: sernoise.features.


rule extract_clean_features:
    input:
        index="results/{corpus}/audio/index.csv",
        shards=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
    output:
        "results/{corpus}/features/clean.h5",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../envs/audio.yaml"
    log:
        "logs/{corpus}/features/extract_clean_features.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/extract_clean_features.tsv"
    script:
        "../workflow/scripts/extract_features.py"


rule extract_features:
    input:
        index="results/{corpus}/augmented/{condition}/{pool}/index.csv",
        params="results/{corpus}/augmented/{condition}/{pool}/params.csv",
        status="results/{corpus}/augmented/{condition}/{pool}/status.json",
        shards=augmented_parts("shard"),
    output:
        "results/{corpus}/features/{condition}/{pool}.h5",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../envs/audio.yaml"
    log:
        "logs/{corpus}/features/{condition}/extract_features-{pool}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/{condition}/extract_features-{pool}.tsv"
    script:
        "../workflow/scripts/extract_features.py"


# Variant "denoised" (T-DNN-NR, paper §7.4.1): the same features of the RNNoise-denoised datasets
# (rules/denoise.smk), under results/{corpus}/features/denoised/.
rule extract_denoised_clean_features:
    input:
        index="results/{corpus}/denoised/clean/index.csv",
        shards=lambda wc: expand("results/{{corpus}}/denoised/clean/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
    output:
        "results/{corpus}/features/denoised/clean.h5",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../envs/audio.yaml"
    log:
        "logs/{corpus}/features/denoised/extract_denoised_clean_features.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/denoised/extract_denoised_clean_features.tsv"
    script:
        "../workflow/scripts/extract_features.py"


rule extract_denoised_features:
    input:
        index="results/{corpus}/denoised/{condition}/{pool}/index.csv",
        params="results/{corpus}/denoised/{condition}/{pool}/params.csv",
        status="results/{corpus}/denoised/{condition}/{pool}/status.json",
        shards=denoised_parts("shard"),
    output:
        "results/{corpus}/features/denoised/{condition}/{pool}.h5",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../envs/audio.yaml"
    log:
        "logs/{corpus}/features/denoised/{condition}/extract_denoised_features-{pool}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/features/denoised/{condition}/extract_denoised_features-{pool}.tsv"
    script:
        "../workflow/scripts/extract_features.py"
