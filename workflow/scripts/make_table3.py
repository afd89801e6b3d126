"""Rule make_table3: Table 3 (paper layout) with paired t-tests and Bonferroni, as CSV, Markdown, LaTeX, HTML."""

from sernoise.evaluation.metrics import read_confusion
from sernoise.evaluation.table3 import NR_MODELS, ConditionInfo, build_table3, skipped_from_statuses, write_table3
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings = snakemake.params.settings
    table = build_table3(
        read_confusion(snakemake.input.confusion),
        settings["config"],
        [ConditionInfo.of(c) for c in settings["conditions"]],
        tested=settings["tested"],
        skipped=skipped_from_statuses(snakemake.input.statuses),
        corpus=snakemake.params.corpus,
        regimes=settings["regimes"],
        model_labels=settings.get("model_labels"),
        model_notes=settings.get("model_notes"),
        exclude=NR_MODELS,  # the noise-robust arms are Table 4's (make_table4)
    )
    out = snakemake.output
    write_table3(table, csv=out.csv, markdown=out.markdown, latex=out.latex, html_path=out.html)
    log.info("Table 3: %d cells, m = %d comparisons, %d significant", len(table.cells), table.m,
             int(table.cells["significant"].sum()))
    for note in table.notes:
        log.info("note: %s", note)
