"""Rule make_table4: Table 4 (the noise-robust arms NR-T-DNN and NR-E-DNN, paper layout) with paired
tests (config statistics) and Bonferroni, as CSV, Markdown, LaTeX, HTML."""

from sernoise.evaluation.table4 import build_table4
from sernoise.evaluation.uar_table import run_table_rule
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    run_table_rule(snakemake, log, build_table4)
