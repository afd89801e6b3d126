"""Rule make_table4: Table 4 (the noise-robust arms NR-T-DNN and NR-E-DNN, paper layout) with paired
t-tests and Bonferroni, as CSV, Markdown, LaTeX, HTML."""

from sernoise.evaluation.metrics import read_confusion
from sernoise.evaluation.table3 import ConditionInfo, skipped_from_statuses
from sernoise.evaluation.table4 import build_table4, write_table4
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings = snakemake.params.settings
    table = build_table4(
        read_confusion(snakemake.input.confusion),
        settings["config"],
        [ConditionInfo.of(c) for c in settings["conditions"]],
        tested=settings["tested"],
        skipped=skipped_from_statuses(snakemake.input.statuses),
        corpus=snakemake.params.corpus,
        regimes=settings["regimes"],
        model_labels=settings.get("model_labels"),
        model_notes=settings.get("model_notes"),
    )
    out = snakemake.output
    write_table4(table, csv=out.csv, markdown=out.markdown, latex=out.latex, html_path=out.html)
    log.info("Table 4: %d cells, m = %d comparisons, %d significant", len(table.cells), table.m,
             int(table.cells["significant"].sum()))
    for note in table.notes:
        log.info("note: %s", note)
