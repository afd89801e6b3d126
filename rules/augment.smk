# Augmentation (SPEC §5): every configured noise condition applied to every utterance of the
# corpus, once per noise pool (train: augmentation, test: test conditions), one job per clean
# audio shard -> augmented shard + params + status; merged per (condition, pool) into
# params.csv, index.csv (AudioStore.from_index) and status.json; plus the filler bank the filler
# conditions draw from and a spectrogram gallery.  Code: sernoise.augment, sernoise.conditions.


rule build_fillers:
    input:
        manifest="results/{corpus}/manifest.csv",
        index="results/{corpus}/audio/index.csv",
        shards=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
    output:
        "results/{corpus}/fillers.h5",
    log:
        "logs/{corpus}/build_fillers.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/build_fillers.tsv"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        fallback_phones=config["align"]["filler_phones"],
        min_fallback_ms=config["align"]["filler_min_ms"],
    script:
        "../workflow/scripts/build_fillers.py"


rule augment_shard:
    input:
        unpack(augment_shard_inputs),
    output:
        shard="results/{corpus}/augmented/{condition}/{pool}/shard-{shard}.h5",
        params="results/{corpus}/augmented/{condition}/{pool}/params-{shard}.csv",
        status="results/{corpus}/augmented/{condition}/{pool}/status-{shard}.json",
    log:
        "logs/{corpus}/augment/{condition}/{pool}/augment_shard-{shard}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/augment/{condition}/{pool}/augment_shard-{shard}.tsv"
    group:
        "augment_shards"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        spec=lambda wc: config["conditions"][wc.condition],
        seed=config["seed"],
        quality=config["augment"]["quality"],
        prepare=config["prepare"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/augment_shard.py"


rule merge_augmented:
    input:
        shards=dataset_parts("augmented", "shard"),
        params=dataset_parts("augmented", "params"),
        statuses=dataset_parts("augmented", "status"),
    output:
        params="results/{corpus}/augmented/{condition}/{pool}/params.csv",
        index="results/{corpus}/augmented/{condition}/{pool}/index.csv",
        status="results/{corpus}/augmented/{condition}/{pool}/status.json",
    log:
        "logs/{corpus}/augment/{condition}/{pool}/merge_augmented.log",
    group:
        "features"
    conda:
        "../envs/audio.yaml"
    script:
        "../workflow/scripts/merge_augmented.py"


rule augment_gallery:
    input:
        unpack(gallery_inputs),
    output:
        "results/{corpus}/augmented/gallery.png",
    log:
        "logs/{corpus}/augment/augment_gallery.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/augment/augment_gallery.tsv"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        conditions=augment_conditions(),
        pool=GALLERY_POOL,
    script:
        "../workflow/scripts/augment_gallery.py"
