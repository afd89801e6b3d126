"""Rule make_table5: Table 5 (paper layout; paired t-tests with Bonferroni) and the budget plot."""

import pandas as pd

from sernoise.attack.runner import read_results
from sernoise.attack.table5 import build_table5, plot_attack_budget, write_table5
from sernoise.evaluation.metrics import degenerate_flags, flagged_models
from sernoise.perception.partition import attack_settings_under_partition, optional_partition
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    results = pd.concat([read_results(path) for path in snakemake.params.results], ignore_index=True)
    p = snakemake.params
    # the retaining noise set's categories and the caption under the perception partition input
    settings = attack_settings_under_partition(p.settings, optional_partition(getattr(snakemake.input, "partition", None)))
    flagged = flagged_models(degenerate_flags(list(snakemake.params.hparams)))  # the attacked models' checks
    table = build_table5(results, settings, corpus=p.corpus, model_labels=p.model_labels, model_notes=p.model_notes,
                         flagged=flagged)
    table.context_notes.append(settings["partition_note"])
    out = snakemake.output
    write_table5(table, csv=out.csv, markdown=out.markdown, latex=out.latex)
    plot_attack_budget(table, out.plot)
    log.info("Table 5: %d cells from %d result rows; m = %d comparisons, %d significant", len(table.cells),
             len(results), table.m, int(table.cells["significant"].sum()))
    for note in table.notes:
        log.info("note: %s", note)
