# Forced alignment (SPEC §4.1, §5): corpora with transcripts but no word/phone alignments
# (RAVDESS) get IEMOCAP-style .wdseg/.phseg files from PocketSphinx, one job per prepared audio
# shard, merged per corpus into alignments.csv (read by build_manifest, so the manifest's
# `alignment` column, and every stage after it, waits for them) and failures.csv.
# Code: sernoise.aligner.


rule align_shard:
    input:
        scan="results/{corpus}/scan.csv",
        shard="results/{corpus}/audio/shard-{shard}.h5",
    output:
        table="results/{corpus}/alignments/shard-{shard}.csv",
        folder=directory("results/{corpus}/alignments/shard-{shard}"),
    log:
        "logs/{corpus}/align_shard-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/align_shard-{shard}.tsv"
    group:
        "corpus_shards"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        pronunciations=config["align"]["pronunciations"],
    script:
        "../workflow/scripts/align_shard.py"


rule merge_alignments:
    input:
        scan="results/{corpus}/scan.csv",
        tables=lambda wc: expand("results/{{corpus}}/alignments/shard-{shard}.csv", shard=shard_ids(wc.corpus)),
    output:
        alignments="results/{corpus}/alignments/alignments.csv",
        failures="results/{corpus}/alignments/failures.csv",
    log:
        "logs/{corpus}/merge_alignments.log",
    conda:
        "../envs/audio.yaml"
    params:
        max_failure_fraction=config["align"]["max_failure_fraction"],
    script:
        "../workflow/scripts/merge_alignments.py"
