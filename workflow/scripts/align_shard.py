"""Rule align_shard: word and phone alignments of one prepared audio shard (sernoise.aligner)."""

from sernoise.aligner import align_shard
from sernoise.corpora.manifest import read_manifest
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    scan = read_manifest(snakemake.input.scan)
    counts = align_shard(
        scan,
        snakemake.input.shard,
        snakemake.output.folder,
        snakemake.output.table,
        pronunciations=dict(snakemake.params.pronunciations or {}),
        log=log.warning,
    )
    log.info("shard %s: %s", snakemake.wildcards.shard, counts)
