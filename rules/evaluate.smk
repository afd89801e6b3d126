# Evaluation and reporting (paper §7.2.3, §8.2-8.4, Tables 3-4; SPEC §8, §10): prediction files ->
# metrics (UAR, per-class recall, weighted F1, confusion counts) -> Table 3 (paired t-test over
# (fold, repetition) pairs, Bonferroni), Table 4 (the noise-robust arms, same statistics), the
# augmentation-fraction sweep and plots, registered for `snakemake --report report.html`.
# Input functions: rules/common.smk (prediction_targets, evaluation_settings, sweep_predictions).
# Code: sernoise.evaluation.


rule compute_metrics:
    input:
        predictions=lambda wc: model_prediction_targets(wc.corpus, wc.model),
    output:
        metrics="results/{corpus}/metrics/{model}/metrics.csv",
        confusion="results/{corpus}/metrics/{model}/confusion.csv",
    wildcard_constraints:
        model=TRAIN_WILDCARDS["model"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    log:
        "logs/{corpus}/evaluate/compute_metrics-{model}.log",
    script:
        "../workflow/scripts/compute_metrics.py"


rule make_table3:
    input:
        confusion=metrics_files("confusion", [m for m in config["training"]["models"] if m not in NR_MODELS]),
        statuses=[f"results/{CORPUS}/augmented/{c}/test/status.json" for c in test_conditions()],
    output:
        csv=report(
            "results/tables/table3.csv",
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": "Table 3", "format": "CSV (one row per cell)"},
        ),
        markdown="results/tables/table3.md",
        latex="results/tables/table3.tex",
        html=report(
            "results/tables/table3.html",
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": "Table 3", "format": "paper layout"},
        ),
    params:
        settings=evaluation_settings(),
        corpus=CORPUS,
    conda:
        "../envs/stats.yaml"
    log:
        "logs/evaluate/make_table3.log",
    script:
        "../workflow/scripts/make_table3.py"


rule plot_uar:
    input:
        metrics=metrics_files("metrics", config["training"]["models"]),
    output:
        snr=report(
            "results/plots/uar_vs_snr.png",
            caption="../report/uar_vs_snr.rst",
            category="Plots",
            labels={"plot": "UAR against SNR"},
        ),
        conditions=report(
            "results/plots/uar_per_condition.png",
            caption="../report/uar_per_condition.rst",
            category="Plots",
            labels={"plot": "UAR per condition"},
        ),
    params:
        settings=evaluation_settings(),
    conda:
        "../envs/stats.yaml"
    log:
        "logs/evaluate/plot_uar.log",
    script:
        "../workflow/scripts/plot_uar.py"


rule make_table4:
    input:
        confusion=metrics_files("confusion", [m for m in config["training"]["models"] if m in NR_MODELS]),
        statuses=[f"results/{CORPUS}/augmented/{c}/test/status.json" for c in test_conditions()],
    output:
        csv=report(
            "results/tables/table4.csv",
            caption="../report/table4.rst",
            category="Tables",
            labels={"table": "Table 4", "format": "CSV (one row per cell)"},
        ),
        markdown="results/tables/table4.md",
        latex="results/tables/table4.tex",
        html=report(
            "results/tables/table4.html",
            caption="../report/table4.rst",
            category="Tables",
            labels={"table": "Table 4", "format": "paper layout"},
        ),
    params:
        settings=evaluation_settings(),
        corpus=CORPUS,
    conda:
        "../envs/stats.yaml"
    log:
        "logs/evaluate/make_table4.log",
    script:
        "../workflow/scripts/make_table4.py"


rule make_sweep:
    input:
        predictions=sweep_predictions(CORPUS),
    output:
        csv=report(
            "results/tables/sweep.csv",
            caption="../report/sweep.rst",
            category="Tables",
            labels={"table": "Augmentation-fraction sweep", "format": "CSV"},
        ),
        markdown="results/tables/sweep.md",
        plot=report(
            "results/plots/sweep.png",
            caption="../report/sweep.rst",
            category="Plots",
            labels={"plot": "Augmentation-fraction sweep"},
        ),
    params:
        settings=evaluation_settings(),
        model=SWEEP_MODEL,
        fractions=[float(p) for p in (config["training"].get("sweep") or {}).get("fractions") or []],
        corpus=CORPUS,
    conda:
        "../envs/stats.yaml"
    log:
        "logs/evaluate/make_sweep.log",
    script:
        "../workflow/scripts/make_sweep.py"
