# Denoising for the noise-robust T-DNNs (paper §7.4.1, SPEC §7): ALL audio an arm sees (clean
# corpus, every condition in both noise pools) is denoised before features, one job per (dataset,
# clean shard), merged per dataset into index.csv (AudioStore.from_index), params.csv (before/after
# SNR, STOI, PESQ per utterance) and status.json (a skipped source dataset stays skipped, with its
# reason).  The {denoised} folder names the denoiser (sernoise.model_registry.DENOISED_AUDIO):
# results/{corpus}/denoised/ is RNNoise's (tdnn_nr, the paper's), results/{corpus}/denoised_dfn3/
# DeepFilterNet3's (tdnn_dfn3).  The feature stage reads them like any other dataset
# (rules/features.smk).  denoise.conditions narrows the arms to a subset: the arms' dataset lists
# name one empty archive for the other conditions (rules/common.smk, dataset_file), so nothing asks
# for their denoised datasets; one asked for by name is written empty with status skipped.  Code:
# sernoise.denoise.


rule denoise_dataset:
    input:
        shard="results/{corpus}/augmented/{condition}/{pool}/shard-{shard}.h5",
        params="results/{corpus}/augmented/{condition}/{pool}/params-{shard}.csv",
        status="results/{corpus}/augmented/{condition}/{pool}/status-{shard}.json",
        clean="results/{corpus}/audio/shard-{shard}.h5",
    output:
        shard="results/{corpus}/{denoised}/{condition}/{pool}/shard-{shard}.h5",
        params="results/{corpus}/{denoised}/{condition}/{pool}/params-{shard}.csv",
        status="results/{corpus}/{denoised}/{condition}/{pool}/status-{shard}.json",
    log:
        "logs/{corpus}/{denoised}/{condition}/{pool}/denoise_dataset-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/{denoised}/{condition}/{pool}/denoise_dataset-{shard}.tsv"
    group:
        "denoise_shards"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        quality=config["denoise"]["quality"],
        # the clean corpus (denoise_clean: no condition) is always denoised
        in_scope=lambda wc: wc.get("condition") is None or in_denoise_scope(wc.condition),
        prepare=config["prepare"],
        denoiser=denoiser_of,
        # the denoiser's own options (denoise.dfn3): changing them re-denoises its datasets only
        options=denoiser_options,
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/denoise_dataset.py"


rule merge_denoised:
    input:
        shards=dataset_parts("{denoised}", "shard"),
        params=dataset_parts("{denoised}", "params"),
        statuses=dataset_parts("{denoised}", "status"),
    output:
        index="results/{corpus}/{denoised}/{condition}/{pool}/index.csv",
        params="results/{corpus}/{denoised}/{condition}/{pool}/params.csv",
        status="results/{corpus}/{denoised}/{condition}/{pool}/status.json",
    log:
        "logs/{corpus}/{denoised}/{condition}/{pool}/merge_denoised.log",
    group:
        "features"
    conda:
        "../envs/audio.yaml"
    params:
        denoiser=denoiser_of,
        options=denoiser_options,
    script:
        "../workflow/scripts/merge_denoised.py"


use rule denoise_dataset as denoise_clean with:
    input:
        shard="results/{corpus}/audio/shard-{shard}.h5",
    output:
        shard="results/{corpus}/{denoised}/clean/shard-{shard}.h5",
        params="results/{corpus}/{denoised}/clean/params-{shard}.csv",
    log:
        "logs/{corpus}/{denoised}/clean/denoise_clean-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/{denoised}/clean/denoise_clean-{shard}.tsv"


use rule merge_denoised as merge_denoised_clean with:
    input:
        shards=dataset_parts("{denoised}", "shard", "clean"),
        params=dataset_parts("{denoised}", "params", "clean"),
    output:
        index="results/{corpus}/{denoised}/clean/index.csv",
        params="results/{corpus}/{denoised}/clean/params.csv",
        status="results/{corpus}/{denoised}/clean/status.json",
    log:
        "logs/{corpus}/{denoised}/clean/merge_denoised_clean.log",
