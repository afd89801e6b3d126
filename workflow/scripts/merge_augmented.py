"""Rule merge_augmented: per-shard outputs of one (condition, pool) -> params.csv, index.csv, status.json."""

from sernoise.augmented_io import merge_augmented
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    status = merge_augmented(
        snakemake.input.shards,
        snakemake.input.params,
        snakemake.input.statuses,
        out_params=snakemake.output.params,
        out_index=snakemake.output.index,
        out_status=snakemake.output.status,
    )
    log.info("status: %s", status)
