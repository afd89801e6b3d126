"""Rule metricaug_levels (rules/metricaug.smk): sernoise.metricaug.job.levels_fold."""

from sernoise.metricaug.job import levels_fold

levels_fold(snakemake)  # noqa: F821 (Snakemake's script object)
