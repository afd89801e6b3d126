"""Rule metricaug_table (rules/metricaug.smk): sernoise.metricaug.job.make_table."""

from sernoise.metricaug.job import make_table

make_table(snakemake)  # noqa: F821 (Snakemake's script object)
