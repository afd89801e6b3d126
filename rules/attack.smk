# Black-box noise attack (paper §7.5 Algorithm 1, §8.5, Table 5; SPEC §9): one job per (model, fold,
# repetition, task) measures the knowledge 'degradation' (the categories' order by UAR drop on the
# fold's validation role) when it is configured, then attacks the fold's test utterances
# (attack.regime model) once per (noise set, knowledge), writing each result when it is done; Table 5
# and the success-vs-budget plot.  One job, not one per attack: the model, the audio and the noise
# are loaded once, and the paper-scale DAG has ten times fewer attack jobs.  Attacked families: those
# with a predictor in sernoise.attack.models.PREDICTORS (tdnn, tdnn_nr, ednn, ednn_nr); an E-DNN job
# also takes its wav2vec2 backbone (rules/pretrained.smk) and the E-DNN's memory (ednn.mem_mb).
# Settings, input and output functions and memory: rules/common.smk (ATTACK).  Code: sernoise.attack.


rule run_attack:
    input:
        unpack(attack_inputs),
    output:
        **attack_outputs(),
    log:
        "logs/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/attack/{model}/fold{fold}/rep{rep}/{task}.tsv"
    wildcard_constraints:
        model=ATTACK_WILDCARDS["model"],
        fold=r"\d+",
        rep=r"\d+",
        task=ATTACK_WILDCARDS["task"],
    conda:
        "../envs/attack.yaml"
    threads: (ATTACK or {}).get("threads", 1)
    resources:
        mem_mb=attack_mem_mb,
        # minutes: 60 for loading and the knowledge, 60 per attack. Not the sum of the former
        # per-job limits (120 + 480 per attack: 82 h for config.yaml's 10 attacks, over the 48 h
        # of profiles/slurm/partitions.yaml, and hard to schedule); the demo's attack jobs take
        # seconds. Paper-scale attack times are not measured (README "Running at scale"): where
        # a site's take longer, raise it with set-resources (profiles/slurm/config.yaml)
        runtime=60 + 60 * len(attack_runs()),
        gpu=TRAIN_GPU,
    params:
        settings=ATTACK,
        runs=attack_runs(),  # the order of output.results
        conditions=attack_conditions(),
        banks=NOISE_BANKS,
        seed=config["seed"],
        device=config["training"]["device"],
        snr_reference=config["snr"]["reference"],
    script:
        "../workflow/scripts/run_attack.py"


rule make_table5:
    input:
        # one result per run_attack job stands for its outputs (params.results: all of them)
        results=attack_job_files(),
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
        # the attacked models' hparams.yaml: their degenerate-model checks mark Table 5's cells; not
        # inputs, since each attack result stands for its model (run_attack waits on its training job)
        hparams=PLAN.attacked_model_files("hparams.yaml"),
        results=PLAN.attack_results(),
        settings=ATTACK,
        corpus=CORPUS,
        model_labels=EVALUATION_SETTINGS["model_labels"],  # models on a stand-in backbone (sernoise.plan)
        model_notes=EVALUATION_SETTINGS["model_notes"],
    script:
        "../workflow/scripts/make_table5.py"
