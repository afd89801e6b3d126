# Perception study (paper §5.3, §6, Table 2; SPEC §6): select the sample and its modulations ->
# export crowdsourcing pairs (audio from the augmented test datasets, never recomputed) ->
# [responses from the platform] -> quality control + Table 2 + Cohen's kappa -> perception
# partition (from config until responses exist).  Code: sernoise.perception.


rule select_perception_sample:
    input:
        manifest="results/{corpus}/manifest.csv",
        params=lambda wc: perception_augmented(wc.corpus, "params.csv"),
        statuses=lambda wc: perception_augmented(wc.corpus, "status.json"),
    output:
        sample="results/{corpus}/perception/sample.csv",
        modulations="results/{corpus}/perception/modulations.csv",
    log:
        "logs/{corpus}/perception/select_perception_sample.log",
    conda:
        "../envs/stats.yaml"
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        seed=config["seed"],
    script:
        "../workflow/scripts/select_perception_sample.py"


rule export_perception_pairs:
    input:
        sample="results/{corpus}/perception/sample.csv",
        modulations="results/{corpus}/perception/modulations.csv",
        manifest="results/{corpus}/manifest.csv",
        index="results/{corpus}/audio/index.csv",
        shards=lambda wc: expand("results/{{corpus}}/audio/shard-{shard}.h5", shard=shard_ids(wc.corpus)),
        indexes=lambda wc: perception_augmented(wc.corpus, "index.csv"),
    output:
        audio=directory("results/{corpus}/perception/export/audio"),
        tasks="results/{corpus}/perception/export/tasks.csv",
        key="results/{corpus}/perception/export/key.csv",
        readme="results/{corpus}/perception/export/README.txt",
    log:
        "logs/{corpus}/perception/export_perception_pairs.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/perception/export_perception_pairs.tsv"
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        seed=config["seed"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/export_perception_pairs.py"


rule perception_simulate_responses:
    # Demo only: a simulated crowd whose true effects follow the configured perception classes
    # (perception.simulate). Point perception.responses at its output to try Table 2.
    input:
        tasks="results/{corpus}/perception/export/tasks.csv",
        key="results/{corpus}/perception/export/key.csv",
    output:
        "results/{corpus}/perception/simulated_responses.csv",
    log:
        "logs/{corpus}/perception/perception_simulate_responses.log",
    conda:
        "../envs/stats.yaml"
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        seed=config["seed"],
    script:
        "../workflow/scripts/perception_simulate_responses.py"


rule perception_table2:
    # Also the RQ1 checks of paper §8.1 (rq1.csv/md: does perception change depend on length,
    # gender or emotion?), which need the manifest's durations, genders and emotions.
    input:
        responses=perception_responses,
        key=f"results/{CORPUS}/perception/export/key.csv",
        manifest=f"results/{CORPUS}/manifest.csv",
    output:
        table=PLAN.table("table2", "csv"),
        markdown=PLAN.table("table2", "md"),
        kappa=PLAN.table("table2_kappa", "csv"),
        pairs=f"results/{CORPUS}/perception/pairs.csv",
        qc_workers=f"results/{CORPUS}/perception/qc_workers.csv",
        qc=f"results/{CORPUS}/perception/qc.json",
        rq1=f"results/{CORPUS}/perception/rq1.csv",
        rq1_markdown=f"results/{CORPUS}/perception/rq1.md",
    log:
        f"logs/{CORPUS}/perception/perception_table2.log",
    conda:
        "../envs/stats.yaml"
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        corpus=CORPUS,
    script:
        "../workflow/scripts/perception_table2.py"


rule perception_partition:
    input:
        table=lambda wc: perception_table2_input(wc.corpus),
    output:
        "results/{corpus}/perception/partition.csv",
    log:
        "logs/{corpus}/perception/perception_partition.log",
    conda:
        "../envs/stats.yaml"
    params:
        conditions=lambda wc: perception_conditions(),
        threshold=lambda wc: PERCEPTION["threshold"],
    script:
        "../workflow/scripts/perception_partition.py"
