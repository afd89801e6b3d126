"""Rule plot_quality_vs_uar: each test condition's UAR drop (clean-trained models) against its median
STOI, PESQ, DNSMOS OVRL and fwSNRseg; the plot and a CSV of the numbers."""

from sernoise.evaluation.metrics import read_metrics
from sernoise.evaluation.quality_plot import plot_quality_vs_uar, quality_vs_uar
from sernoise.io import write_csv_atomic
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings = snakemake.params.settings
    metrics = read_metrics(snakemake.input.metrics)
    params = dict(zip(settings["tested"], snakemake.input.params))  # the rule lists them in this order
    training = settings["config"]["training"]
    table = quality_vs_uar(metrics, params, models=training.get("models"), tasks=training.get("tasks"))
    write_csv_atomic(table, snakemake.output.csv)
    plot_quality_vs_uar(table, snakemake.output.plot, labels=settings.get("model_labels"))
    log.info("%d (model, task, condition) rows; plot %s, numbers %s", len(table), snakemake.output.plot,
             snakemake.output.csv)
