"""Rule latif_tables (rules/latif.smk): sernoise.latif.job.make_tables."""

from sernoise.latif.job import make_tables

make_tables(snakemake)  # noqa: F821 (Snakemake's script object)
