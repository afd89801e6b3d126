"""Rule plot_uar: UAR against SNR per noise category and regime column; UAR per test condition."""

from sernoise.evaluation.metrics import read_flags, read_metrics
from sernoise.evaluation.plots import plot_uar_per_condition, plot_uar_vs_snr
from sernoise.evaluation.uar_table import ConditionInfo
from sernoise.perception.partition import optional_partition, settings_under_partition
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings = settings_under_partition(snakemake.params.settings, optional_partition(getattr(snakemake.input, "partition", None)))
    metrics = read_metrics(snakemake.input.metrics)
    conditions = [ConditionInfo.of(c) for c in settings["conditions"]]
    flagged = read_flags(snakemake.input.flags)  # models the degenerate-model check flagged: named in the panels
    plot_uar_vs_snr(metrics, settings["config"], conditions, snakemake.output.snr, tested=settings["tested"],
                    regimes=settings["regimes"], flagged=flagged, model_labels=settings.get("model_labels"))
    plot_uar_per_condition(metrics, settings["config"], conditions, snakemake.output.conditions,
                           tested=settings["tested"], flagged=flagged, model_labels=settings.get("model_labels"))
    log.info("plots written: %s, %s", snakemake.output.snr, snakemake.output.conditions)
