"""Rule metricaug_copypaste (rules/metricaug.smk): sernoise.metricaug.job.copypaste_fold."""

from sernoise.metricaug.job import copypaste_fold

copypaste_fold(snakemake)  # noqa: F821 (Snakemake's script object)
