"""Rule prepare_audio_shard: read, check and convert one shard of the corpus to 16 kHz mono."""


from sernoise.corpora.manifest import read_manifest
from sernoise.prepare import prepare_shard, select_shard
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    prep = snakemake.params.prepare
    scan = read_manifest(snakemake.input.scan)
    rows = select_shard(scan, int(snakemake.params.n_shards), int(snakemake.wildcards.shard))
    stats = prepare_shard(
        rows,
        snakemake.output.shard,
        snakemake.output.index,
        snakemake.output.rejects,
        target_sr=prep["sample_rate"],
        silence_peak=prep["silence_peak"],
        compression=prep["compression"],
        compression_level=prep["compression_level"],
    )
    log.info("shard %s: %s", snakemake.wildcards.shard, stats)
