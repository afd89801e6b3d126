# Noise banks: download (public banks) -> bank.csv (file, source, class, category, split,
# duration) + one audio shard, split into train/test pools by source recording.
# Code: sernoise.noise.bank.


rule download_noise_bank:
    output:
        "resources/downloads/noise_{bank}.complete",
    params:
        download=lambda wc: download_of("noise", wc.bank),
    conda:
        "../envs/audio.yaml"
    log:
        "logs/noise/{bank}/download_noise_bank.log",
    script:
        "../workflow/scripts/download.py"


rule build_noise_bank:
    input:
        noise_bank_ready,
    output:
        bank="results/noise/{bank}/bank.csv",
        audio="results/noise/{bank}/audio.h5",
        rejects="results/noise/{bank}/rejects.csv",
    params:
        bank=lambda wc: config["noise_banks"][wc.bank],
        test_fraction=config["noise"]["test_fraction"],
        seed=config["seed"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/audio.yaml"
    log:
        "logs/noise/{bank}/build_noise_bank.log",
    benchmark:
        "benchmarks/snakemake/noise/build_noise_bank-{bank}.tsv"
    script:
        "../workflow/scripts/build_noise_bank.py"
