"""Rule augment_shard: one noise condition, one noise pool, one clean audio shard."""

from sernoise.audio_store import AudioStore
from sernoise.augment import augment_shard
from sernoise.conditions import build_condition
from sernoise.corpora.manifest import read_manifest
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    wc = snakemake.wildcards
    condition = build_condition(wc.condition, snakemake.params.spec, snr_reference=snakemake.params.snr_reference)
    prep = snakemake.params.prepare
    manifest = read_manifest(snakemake.input.manifest)
    store = AudioStore([snakemake.input.shard])
    rows = manifest[manifest["utt_id"].isin(set(store.utt_ids))].reset_index(drop=True)
    log.info("condition %s (%s), pool %s, shard %s: %d utterances", condition.id, condition.describe(),
             wc.pool, wc.shard, len(rows))

    noise = fillers = None
    if "noise" in condition.requires:
        from sernoise.conditions.pool import NoisePool

        noise = NoisePool(list(zip(snakemake.input.banks, snakemake.input.bank_audio)), wc.pool)
        log.info("noise: %r", noise)
    if "fillers" in condition.requires:
        from sernoise.conditions.filler import FillerBank

        fillers = FillerBank.load(snakemake.input.fillers)
        log.info("fillers: %r", fillers)

    status = augment_shard(
        condition, rows, store,
        pool=wc.pool,
        global_seed=snakemake.params.seed,
        noise=noise,
        fillers=fillers,
        out_shard=snakemake.output.shard,
        out_params=snakemake.output.params,
        out_status=snakemake.output.status,
        quality=snakemake.params.quality,
        manifest=manifest,
        compression=prep["compression"],
        compression_level=prep["compression_level"],
    )
    log.info("status: %s", status)
