"""Rules merge_denoised_clean / merge_denoised: per-shard outputs of one denoised dataset ->
index.csv (AudioStore.from_index), params.csv, status.json."""

from sernoise.denoise import merge_denoised
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    inp, out = snakemake.input, snakemake.output
    status = merge_denoised(
        inp.shards,
        inp.params,
        inp.statuses if "statuses" in inp.keys() else None,
        out_index=out.index,
        out_params=out.params,
        out_status=out.status,
        denoiser=snakemake.params.denoiser,
        options=snakemake.params.options,
    )
    log.info("status: %s", status)
