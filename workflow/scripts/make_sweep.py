"""Rule make_sweep: the augmentation-fraction sweep (paper §8.4): UAR per fraction on clean and on
perception-retaining test speech -> results/{corpus}/tables/sweep.{csv,md}, results/{corpus}/plots/sweep.png."""

from sernoise.evaluation.metrics import compute_metrics
from sernoise.evaluation.sweep import build_sweep, plot_sweep, write_sweep
from sernoise.evaluation.uar_table import ConditionInfo
from sernoise.perception.partition import optional_partition, settings_under_partition
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    p, out = snakemake.params, snakemake.output
    settings = settings_under_partition(p.settings, optional_partition(getattr(snakemake.input, "partition", None)))
    _, confusion = compute_metrics(list(snakemake.input.predictions), log=log)
    table = build_sweep(
        confusion,
        [ConditionInfo.of(c) for c in settings["conditions"]],
        model=p.model,
        fractions=p.fractions,
        tasks=settings["config"]["training"]["tasks"],
        tested=settings["tested"],
        regimes_trained=settings["regimes"],
    )
    labels = settings.get("model_labels")  # a model on a stand-in backbone says so, as in the tables
    write_sweep(table, csv=out.csv, markdown=out.markdown, corpus=p.corpus, model_labels=labels,
                model_notes=settings.get("model_notes"), context_notes=[settings["partition_note"]])
    plot_sweep(table, out.plot, corpus=p.corpus, model_labels=labels)
    log.info("sweep of %s: %d points x %d tasks from %d prediction files", p.model, table["fraction"].nunique(),
             table["task"].nunique(), len(snakemake.input.predictions))
