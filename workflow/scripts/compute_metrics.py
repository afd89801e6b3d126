"""Rule compute_metrics: UAR, per-class recall, weighted F1 and confusion counts of every prediction file."""

from sernoise.evaluation.metrics import compute_metrics
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    metrics, confusion = compute_metrics(list(snakemake.input.predictions), log=log)
    metrics.to_csv(snakemake.output.metrics, index=False, lineterminator="\n")
    confusion.to_csv(snakemake.output.confusion, index=False, lineterminator="\n")
    log.info("%d prediction files, %d (file, condition) groups", len(snakemake.input.predictions), len(metrics))
