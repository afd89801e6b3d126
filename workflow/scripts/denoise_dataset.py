"""Rules denoise_clean / denoise_dataset: the {denoised} folder's denoiser (RNNoise or DeepFilterNet3)
over one clean shard, or over one shard of a (condition, pool) dataset (paper §7.4.1); denoised
shard + params (before/after measures) [+ status]."""

import json

import pandas as pd

from sernoise.audio_store import AudioShard
from sernoise.augmented_io import write_status
from sernoise.denoise import (
    CLEAN, PARAM_COLUMNS, denoise_shard, denoised_status, get_denoiser, read_source_params, skip_shard,
)
from sernoise.runlog import rule_log

OUT_OF_SCOPE = "outside denoise.conditions: the noise-robust T-DNN arms do not cover this condition"

with rule_log(snakemake) as log:
    wc, inp, out, p = snakemake.wildcards, snakemake.input, snakemake.output, snakemake.params
    compression = p.prepare["compression"]  # sernoise.hdf5_codecs.COMPRESSIONS
    level = p.prepare["compression_level"]
    condition = getattr(wc, "condition", CLEAN)
    pool = getattr(wc, "pool", None)
    denoiser = get_denoiser(p.denoiser)
    options = denoiser.options(p.options)
    chosen = {"denoiser": denoiser.name, "options": options}
    log.info("denoising %s%s, shard %s with %s, %s (options %s)", condition, f" ({pool} pool)" if pool else "",
             wc.shard, denoiser.label, denoiser.version_of(options), options)
    if condition == CLEAN:
        source = AudioShard(inp.shard)
        counts = denoise_shard(source, out_shard=out.shard, out_params=out.params, quality=p.quality,
                               compression=compression, compression_level=level, progress=log.info,
                               snr_reference=p.snr_reference, **chosen)
    else:
        source_status = json.loads(open(inp.status, encoding="utf-8").read())
        source_params = read_source_params(inp.params)
        if not p.in_scope and not source_status.get("skipped"):
            # denoise.conditions leaves this condition out of the NR arm: written as a skipped dataset,
            # so features are empty and tdnn_nr neither trains nor is tested on it.
            source_status = dict(source_status, skipped=True, reason=OUT_OF_SCOPE)
            source_params = source_params.assign(status="skipped")
        if source_status.get("skipped"):
            log.info("source dataset skipped (%s): empty denoised shard, status copied", source_status.get("reason"))
            skip_shard(source_status, source_params, out_shard=out.shard, out_params=out.params,
                       out_status=out.status, condition=condition, pool=pool, compression=compression,
                       compression_level=level)
            counts = None
        else:
            counts = denoise_shard(AudioShard(inp.shard), out_shard=out.shard, out_params=out.params,
                                   condition=condition, pool=pool, clean=AudioShard(inp.clean),
                                   source_params=source_params, additive=bool(source_status.get("additive")),
                                   quality=p.quality, compression=compression, compression_level=level,
                                   progress=log.info, snr_reference=p.snr_reference, **chosen)
            status = denoised_status(source_status, counts, condition=condition, pool=pool, **chosen)
            write_status(status, out.status)
    if counts is not None:
        log.info("%d utterances denoised (%d not ok in the source), %.1f s of audio in %.1f s (%.1f x real time)",
                 counts["n_ok"], counts["n_skipped"], counts["audio_seconds"], counts["seconds"],
                 counts["audio_seconds"] / max(counts["seconds"], 1e-9))
        params = pd.read_csv(out.params)
        for column in PARAM_COLUMNS[7:]:
            values = pd.to_numeric(params[column], errors="coerce").dropna()
            if len(values):
                log.info("%s: mean %.3f over %d utterances", column, values.mean(), len(values))
