"""Rule ctsl_table: the CTSL table and the embedding analysis of a corpus (sernoise.ctsl.job)."""

from sernoise.ctsl.job import table_job

table_job(snakemake)
