# Black-box noise attack (paper §7.5 Algorithm 1, §8.5, Table 5; SPEC §9): one job per (model, fold,
# repetition, task, noise set, knowledge) attacks the fold's test utterances (attack.regime model);
# knowledge 'degradation' reads the order measured on the fold's validation role; Table 5 and the
# success-vs-budget plot.  Attacked families: those with a predictor in
# sernoise.attack.models.PREDICTORS (tdnn, tdnn_nr, ednn, ednn_nr); an E-DNN job also takes its
# wav2vec2 backbone (rules/pretrained.smk) and the E-DNN's memory (ednn.mem_mb).
# Settings, input functions and memory: rules/common.smk (ATTACK).  Code: sernoise.attack.


rule attack_knowledge:
    input:
        unpack(attack_inputs),
    output:
        "results/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/knowledge.csv",
    log:
        "logs/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/knowledge.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/knowledge.tsv"
    wildcard_constraints:
        model=ATTACK_WILDCARDS["model"],
        fold=r"\d+",
        rep=r"\d+",
        task=ATTACK_WILDCARDS["task"],
    group:
        "attack_knowledge"
    conda:
        "../envs/attack.yaml"
    threads: (ATTACK or {}).get("threads", 1)
    resources:
        mem_mb=attack_mem_mb,
        runtime=120,
        gpu=TRAIN_GPU,
    params:
        settings=ATTACK,
        conditions=attack_conditions(),
        banks=NOISE_BANKS,
        seed=config["seed"],
        device=config["training"]["device"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/attack_knowledge.py"


rule run_attack:
    input:
        unpack(attack_inputs),
    output:
        "results/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/{noise_set}-{knowledge}.csv",
    log:
        "logs/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/{noise_set}-{knowledge}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}/{noise_set}-{knowledge}.tsv"
    wildcard_constraints:
        model=ATTACK_WILDCARDS["model"],
        fold=r"\d+",
        rep=r"\d+",
        task=ATTACK_WILDCARDS["task"],
        noise_set=ATTACK_WILDCARDS["noise_set"],
        knowledge=ATTACK_WILDCARDS["knowledge"],
    conda:
        "../envs/attack.yaml"
    threads: (ATTACK or {}).get("threads", 1)
    resources:
        mem_mb=attack_mem_mb,
        runtime=480,
        gpu=TRAIN_GPU,
    params:
        settings=ATTACK,
        conditions=attack_conditions(),
        banks=NOISE_BANKS,
        seed=config["seed"],
        device=config["training"]["device"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/run_attack.py"


rule make_table5:
    input:
        results=PLAN.attack_results(),
        # the attacked models' hparams.yaml: their degenerate-model checks mark Table 5's cells
        hparams=PLAN.attacked_model_files("hparams.yaml"),
        partition=partition_file(CORPUS),
    output:
        csv=report(
            PLAN.table("table5", "csv"),
            caption="../report/table5.rst",
            category="Tables",
            labels={"table": "Table 5", "format": "CSV (one row per cell)"},
        ),
        markdown=PLAN.table("table5", "md"),
        latex=PLAN.table("table5", "tex"),
        plot=report(
            PLAN.plot("attack_budget"),
            caption="../report/attack_budget.rst",
            category="Plots",
            labels={"plot": "Attack success against budget"},
        ),
    log:
        f"logs/{CORPUS}/attack/make_table5.log",
    conda:
        "../envs/stats.yaml"
    params:
        settings=ATTACK,
        corpus=CORPUS,
        model_labels=EVALUATION_SETTINGS["model_labels"],  # models on a stand-in backbone (sernoise.plan)
        model_notes=EVALUATION_SETTINGS["model_notes"],
    script:
        "../workflow/scripts/make_table5.py"
