"""Rule outside_denoise_scope_features: the empty feature archive that stands for every condition outside
denoise.conditions in a denoised arm's dataset lists (rules/common.smk, dataset_file)."""

from sernoise.features import write_feature_archive
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    write_feature_archive(snakemake.output[0], [])
    conditions = snakemake.params.conditions
    log.info("empty archive -> %s: it stands for the %d condition(s) outside denoise.conditions (%s), which "
             "the %s arm neither trains nor is tested on", snakemake.output[0], len(conditions),
             ", ".join(conditions) or "none", snakemake.wildcards.denoised)
