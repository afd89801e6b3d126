"""Rule make_table5: Table 5 (paper layout; paired t-tests with Bonferroni) and the budget plot."""

import pandas as pd

from sernoise.attack.runner import read_results
from sernoise.attack.table5 import build_table5, plot_attack_budget, write_table5
from sernoise.evaluation.metrics import degenerate_flags
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    results = pd.concat([read_results(path) for path in snakemake.input.results], ignore_index=True)
    p = snakemake.params
    flags = degenerate_flags(list(snakemake.input.hparams))  # the attacked models' degenerate-model checks
    flagged = {(r.model, r.regime, int(r.fold), int(r.rep), r.task): r.reason
               for r in flags[flags["flagged"]].itertuples(index=False)}
    table = build_table5(results, p.settings, corpus=p.corpus, model_labels=p.model_labels, model_notes=p.model_notes,
                         flagged=flagged)
    out = snakemake.output
    write_table5(table, csv=out.csv, markdown=out.markdown, latex=out.latex)
    plot_attack_budget(table, out.plot)
    log.info("Table 5: %d cells from %d result rows; m = %d comparisons, %d significant", len(table.cells),
             len(results), table.m, int(table.cells["significant"].sum()))
    for note in table.notes:
        log.info("note: %s", note)
