"""Rule perception_table2: validate responses, quality control, Table 2, Cohen's kappa, per-pair labels."""

import pandas as pd

from sernoise.perception.export import read_key
from sernoise.perception.responses import quality_control, read_responses, write_qc
from sernoise.perception.table2 import build_table2, judgements, kappa_table, pair_labels, write_markdown
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings = snakemake.params.settings
    conditions = pd.DataFrame(snakemake.params.conditions, columns=["condition", "family", "perception"])
    key = read_key(snakemake.input.key)
    responses = read_responses(snakemake.input.responses, key)
    valid, per_worker, qc = quality_control(responses, key, min_seconds_factor=settings["min_seconds_factor"],
                                            workers_per_pair=settings["workers_per_pair"])
    write_qc(per_worker, qc, snakemake.output.qc_workers, snakemake.output.qc)
    log.info("quality control: %s", qc)
    judged = judgements(valid, tolerance=settings["tolerance"])
    pairs = pair_labels(judged)
    table = build_table2(judged, pairs, conditions)
    kappas = kappa_table(judged, min_shared=settings["kappa_min_shared"])
    pairs.to_csv(snakemake.output.pairs, index=False)
    table.to_csv(snakemake.output.table, index=False)
    kappas.to_csv(snakemake.output.kappa, index=False)
    write_markdown(snakemake.output.markdown, table, kappas, qc, corpus=snakemake.params.corpus)
    log.info("Table 2:\n%s\n%s", table.to_string(index=False), kappas.to_string(index=False))
