"""Rule perception_table2: validate responses, quality control, Table 2, Cohen's kappa, per-pair labels, RQ1 checks."""

import pandas as pd

from sernoise.corpora.manifest import read_manifest
from sernoise.perception.export import read_key
from sernoise.perception.rq1 import rq1_tests, utterance_groups, write_rq1_markdown
from sernoise.perception.responses import quality_control, read_responses, write_qc
from sernoise.perception.table2 import build_table2, judgements, kappa_table, pair_labels, partition, write_markdown
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

    # RQ1 (paper §8.1): paired t-tests of whether the change depends on length, gender, emotion;
    # the "altering" scope takes the conditions this study finds perception-altering.
    studied = partition(table, conditions, settings["threshold"])
    altering = list(studied.loc[(studied["source"] == "study") & (studied["perception"] == "altering"), "condition"])
    rq1 = rq1_tests(pairs, utterance_groups(read_manifest(snakemake.input.manifest)), altering=altering)
    rq1.to_csv(snakemake.output.rq1, index=False)
    write_rq1_markdown(snakemake.output.rq1_markdown, rq1, corpus=snakemake.params.corpus)
    log.info("RQ1 (altering conditions: %s):\n%s", altering, rq1.to_string(index=False))
