# Evaluation and reporting (paper §7.2.3, §8.2-8.4, Tables 3-4; SPEC §8, §10): prediction files ->
# metrics (UAR, per-class recall, weighted F1, confusion counts, also per speaker) -> Table 3 (paired
# tests, Bonferroni), Table 4 (the noise-robust arms, same statistics), the
# augmentation-fraction sweep and plots, registered for `snakemake --report report.html`.
# Significance: config `statistics` (default a speaker-level jackknife test; `fold_ttest` is the
# paper's t-test over (fold, repetition) pairs), confidence intervals per cell; see README. The
# perception partition (rules/perception.smk) is an input: its classes decide the
# "Perception-retaining" rows and the caption says whether they come from a study or the config.
# Tables and plots go under results/{corpus}/tables/ and results/{corpus}/plots/. Which models
# and conditions: the plan (rules/common.smk, sernoise.plan).
# Code: sernoise.evaluation.

# what the table rules need of config `statistics` and `tables`, and the seed of their resampling
STATISTICS = {
    **config["statistics"],
    "seed": config["seed"],
    "show_ci": config["tables"]["show_ci"],
}


rule compute_metrics:
    input:
        # one file per prediction job stands for its outputs (params.predictions: all of them)
        predictions=prediction_job_files,
        # utt_id -> speaker: the tables' speaker-level tests and confidence intervals
        manifest="results/{corpus}/manifest.csv",
    output:
        metrics="results/{corpus}/metrics/{model}/metrics.csv",
        confusion="results/{corpus}/metrics/{model}/confusion.csv",
        speaker_confusion="results/{corpus}/metrics/{model}/speaker_confusion.csv",
        flags="results/{corpus}/metrics/{model}/flags.csv",
    log:
        "logs/{corpus}/evaluate/compute_metrics-{model}.log",
    wildcard_constraints:
        model=MODEL_WILDCARDS["model"],
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        predictions=lambda wc: PLAN.predictions(wc.corpus, wc.model),
        # the models' degenerate-model checks; not inputs: a prediction job waits on each model's training
        # job, so its predictions are newer than the model's hparams.yaml and rebuilt with it; this keeps
        # the job at one input per prediction job (issue 16: the paper-scale DAG's edges)
        hparams=lambda wc: PLAN.model_file(wc.corpus, wc.model, "hparams.yaml"),
    script:
        "../workflow/scripts/compute_metrics.py"


rule make_table3:
    input:
        confusion=PLAN.metrics("confusion", PLAN.standard_models()),
        speaker_confusion=PLAN.metrics("speaker_confusion", PLAN.standard_models()),
        flags=PLAN.metrics("flags", PLAN.standard_models()),
        statuses=[f"results/{CORPUS}/augmented/{c}/test/status.json" for c in PLAN.tested],
        partition=partition_file(CORPUS),
    output:
        **table_outputs("table3", "../report/table3.rst", "Table 3"),
    log:
        f"logs/{CORPUS}/evaluate/make_table3.log",
    conda:
        "../envs/stats.yaml"
    params:
        settings=EVALUATION_SETTINGS,
        corpus=CORPUS,
        statistics=STATISTICS,
    script:
        "../workflow/scripts/make_table3.py"


rule plot_uar:
    input:
        metrics=PLAN.metrics("metrics", PLAN.models),
        flags=PLAN.metrics("flags", PLAN.models),
        partition=partition_file(CORPUS),
    output:
        snr=report(
            PLAN.plot("uar_vs_snr"),
            caption="../report/uar_vs_snr.rst",
            category="Plots",
            labels={"plot": "UAR against SNR"},
        ),
        conditions=report(
            PLAN.plot("uar_per_condition"),
            caption="../report/uar_per_condition.rst",
            category="Plots",
            labels={"plot": "UAR per condition"},
        ),
    log:
        f"logs/{CORPUS}/evaluate/plot_uar.log",
    conda:
        "../envs/stats.yaml"
    params:
        settings=EVALUATION_SETTINGS,
    script:
        "../workflow/scripts/plot_uar.py"


rule make_table4:
    input:
        confusion=PLAN.metrics("confusion", PLAN.noise_robust_models()),
        speaker_confusion=PLAN.metrics("speaker_confusion", PLAN.noise_robust_models()),
        flags=PLAN.metrics("flags", PLAN.noise_robust_models()),
        statuses=[f"results/{CORPUS}/augmented/{c}/test/status.json" for c in PLAN.tested],
        partition=partition_file(CORPUS),
    output:
        **table_outputs("table4", "../report/table4.rst", "Table 4"),
    log:
        f"logs/{CORPUS}/evaluate/make_table4.log",
    conda:
        "../envs/stats.yaml"
    params:
        settings=EVALUATION_SETTINGS,
        corpus=CORPUS,
        statistics=STATISTICS,
    script:
        "../workflow/scripts/make_table4.py"


rule make_sweep:
    input:
        predictions=PLAN.sweep_predictions(),
        partition=partition_file(CORPUS),
    output:
        csv=report(
            PLAN.table("sweep", "csv"),
            caption="../report/sweep.rst",
            category="Tables",
            labels={"table": "Augmentation-fraction sweep", "format": "CSV"},
        ),
        markdown=PLAN.table("sweep", "md"),
        plot=report(
            PLAN.plot("sweep"),
            caption="../report/sweep.rst",
            category="Plots",
            labels={"plot": "Augmentation-fraction sweep"},
        ),
    log:
        f"logs/{CORPUS}/evaluate/make_sweep.log",
    conda:
        "../envs/stats.yaml"
    params:
        settings=EVALUATION_SETTINGS,
        model=PLAN.sweep_model,
        fractions=[float(p) for p in (config["training"].get("sweep") or {}).get("fractions") or []],
        corpus=CORPUS,
    script:
        "../workflow/scripts/make_sweep.py"


rule plot_quality_vs_uar:
    input:
        metrics=PLAN.metrics("metrics", PLAN.standard_models()),
        params=[f"results/{CORPUS}/augmented/{c}/test/params.csv" for c in PLAN.tested],
    output:
        plot=report(
            PLAN.plot("quality_vs_uar"),
            caption="../report/quality_vs_uar.rst",
            category="Plots",
            labels={"plot": "UAR drop against signal quality"},
        ),
        csv=PLAN.plot("quality_vs_uar").removesuffix(".png") + ".csv",
    log:
        f"logs/{CORPUS}/evaluate/plot_quality_vs_uar.log",
    conda:
        "../envs/stats.yaml"
    params:
        settings=EVALUATION_SETTINGS,
    script:
        "../workflow/scripts/plot_quality_vs_uar.py"
