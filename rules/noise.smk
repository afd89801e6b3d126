# Noise banks: download (public banks) -> bank.csv (file, source, class, category, split,
# duration) + one audio shard, split into train/test pools by source recording.
# Code: sernoise.noise.bank.


use rule download_corpus as download_noise_bank with:
    output:
        "resources/downloads/noise_{bank}.complete",
    log:
        "logs/noise/{bank}/download_noise_bank.log",
    params:
        download=lambda wc: download_of("noise", wc.bank),


rule build_noise_bank:
    input:
        noise_bank_ready,
    output:
        bank="results/noise/{bank}/bank.csv",
        audio="results/noise/{bank}/audio.h5",
        rejects="results/noise/{bank}/rejects.csv",
    log:
        "logs/noise/{bank}/build_noise_bank.log",
    benchmark:
        "benchmarks/snakemake/noise/build_noise_bank-{bank}.tsv"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        bank=lambda wc: config["noise_banks"][wc.bank],
        test_fraction=config["noise"]["test_fraction"],
        seed=config["seed"],
        prepare=config["prepare"],
    script:
        "../workflow/scripts/build_noise_bank.py"
