"""Rule compute_metrics: UAR, per-class recall, weighted F1 and confusion counts of every prediction file,
and which of the models were flagged by the degenerate-model check (their hparams.yaml)."""

from sernoise.evaluation.metrics import compute_metrics, degenerate_flags
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    metrics, confusion = compute_metrics(list(snakemake.input.predictions), log=log)
    metrics.to_csv(snakemake.output.metrics, index=False, lineterminator="\n")
    confusion.to_csv(snakemake.output.confusion, index=False, lineterminator="\n")
    log.info("%d prediction files, %d (file, condition) groups", len(snakemake.input.predictions), len(metrics))
    flags = degenerate_flags(list(snakemake.input.hparams))
    flags.to_csv(snakemake.output.flags, index=False, lineterminator="\n")
    for row in flags[flags["flagged"]].itertuples(index=False):
        log.warning("degenerate model %s %s fold %s rep %s %s: %s", row.model, row.regime, row.fold, row.rep, row.task,
                    row.reason)
