# Emotion corpus: download (public corpora only) -> scan labels -> prepare audio shards ->
# (forced alignment, rules/align.smk) -> manifest (+ rejects) -> speaker-independent folds.  Code: sernoise.corpora, sernoise.prepare,
# sernoise.folds.


rule download_corpus:
    output:
        "resources/downloads/corpus_{corpus}.complete",
    log:
        "logs/{corpus}/download_corpus.log",
    conda:
        "../envs/audio.yaml"
    params:
        download=lambda wc: download_of("corpus", wc.corpus),
    script:
        "../workflow/scripts/download_corpus.py"


rule scan_corpus:
    input:
        corpus_ready,
    output:
        "results/{corpus}/scan.csv",
    log:
        "logs/{corpus}/scan_corpus.log",
    conda:
        "../envs/audio.yaml"
    params:
        adapter=lambda wc: corpus_config(wc.corpus)["adapter"],
        root=lambda wc: corpus_config(wc.corpus)["root"],
        options=lambda wc: corpus_config(wc.corpus)["options"],
    script:
        "../workflow/scripts/scan_corpus.py"


rule prepare_audio_shard:
    input:
        scan="results/{corpus}/scan.csv",
    output:
        shard="results/{corpus}/audio/shard-{shard}.h5",
        index="results/{corpus}/audio/shard-{shard}.index.csv",
        rejects="results/{corpus}/audio/shard-{shard}.rejects.csv",
    log:
        "logs/{corpus}/prepare_audio_shard-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/prepare_audio_shard-{shard}.tsv"
    group:
        "corpus_shards"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        n_shards=lambda wc: corpus_config(wc.corpus)["shards"],
        prepare=config["prepare"],
    script:
        "../workflow/scripts/prepare_audio_shard.py"


rule build_manifest:
    input:
        scan="results/{corpus}/scan.csv",
        indexes=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.index.csv", shard=shard_ids(wc.corpus)),
        rejects=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.rejects.csv", shard=shard_ids(wc.corpus)),
        shards=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
        alignments=manifest_alignments,
    output:
        manifest="results/{corpus}/manifest.csv",
        rejects="results/{corpus}/rejects.csv",
        index="results/{corpus}/audio/index.csv",
    log:
        "logs/{corpus}/build_manifest.log",
    group:
        "manifest"
    conda:
        "../envs/audio.yaml"
    params:
        max_reject_fraction=config["prepare"]["max_reject_fraction"],
    script:
        "../workflow/scripts/build_manifest.py"


rule make_folds:
    input:
        manifest="results/{corpus}/manifest.csv",
    output:
        "results/{corpus}/folds.csv",
    log:
        "logs/{corpus}/make_folds.log",
    group:
        "manifest"
    conda:
        "../envs/audio.yaml"
    params:
        **official_fold_params(),
        n_folds=config["folds"]["n_folds"],
    script:
        "../workflow/scripts/make_folds.py"
