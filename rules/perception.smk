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
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        seed=config["seed"],
    conda:
        "../envs/stats.yaml"
    log:
        "logs/{corpus}/perception/select_perception_sample.log",
    script:
        "../workflow/scripts/perception_select.py"


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
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        seed=config["seed"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/audio.yaml"
    log:
        "logs/{corpus}/perception/export_perception_pairs.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/perception/export_perception_pairs.tsv"
    script:
        "../workflow/scripts/perception_export.py"


rule perception_simulate_responses:
    # Demo only: a simulated crowd whose true effects follow the configured perception classes
    # (perception.simulate). Point perception.responses at its output to try Table 2.
    input:
        tasks="results/{corpus}/perception/export/tasks.csv",
        key="results/{corpus}/perception/export/key.csv",
    output:
        "results/{corpus}/perception/simulated_responses.csv",
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        seed=config["seed"],
    conda:
        "../envs/stats.yaml"
    log:
        "logs/{corpus}/perception/perception_simulate_responses.log",
    script:
        "../workflow/scripts/perception_simulate.py"


rule perception_table2:
    input:
        responses=perception_responses,
        key=f"results/{CORPUS}/perception/export/key.csv",
    output:
        table="results/tables/table2.csv",
        markdown="results/tables/table2.md",
        kappa="results/tables/table2_kappa.csv",
        pairs=f"results/{CORPUS}/perception/pairs.csv",
        qc_workers=f"results/{CORPUS}/perception/qc_workers.csv",
        qc=f"results/{CORPUS}/perception/qc.json",
    params:
        conditions=lambda wc: perception_conditions(),
        settings=lambda wc: PERCEPTION,
        corpus=CORPUS,
    conda:
        "../envs/stats.yaml"
    log:
        f"logs/{CORPUS}/perception/perception_table2.log",
    script:
        "../workflow/scripts/perception_table2.py"


rule perception_partition:
    input:
        table=lambda wc: perception_table2_input(wc.corpus),
    output:
        "results/{corpus}/perception/partition.csv",
    params:
        conditions=lambda wc: perception_conditions(),
        threshold=lambda wc: PERCEPTION["threshold"],
    conda:
        "../envs/stats.yaml"
    log:
        "logs/{corpus}/perception/perception_partition.log",
    script:
        "../workflow/scripts/perception_partition.py"
