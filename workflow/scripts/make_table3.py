"""Rule make_table3: Table 3 (paper layout) with paired tests (config statistics) and Bonferroni, as CSV, Markdown, LaTeX, HTML."""

from sernoise.evaluation.labels import noise_robust_models
from sernoise.evaluation.table3 import build_table3
from sernoise.evaluation.uar_table import run_table_rule
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    # the noise-robust arms are Table 4's (make_table4)
    run_table_rule(snakemake, log, build_table3, exclude=noise_robust_models())
