"""Rule metricaug_noisy_shard (rules/metricaug.smk): sernoise.metricaug.job.noisy_shard."""

from sernoise.metricaug.job import noisy_shard

noisy_shard(snakemake)  # noqa: F821 (Snakemake's script object)
