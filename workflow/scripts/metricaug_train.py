"""Rule metricaug_train (rules/metricaug.smk): sernoise.metricaug.job.train_method."""

from sernoise.metricaug.job import train_method

train_method(snakemake)  # noqa: F821 (Snakemake's script object)
