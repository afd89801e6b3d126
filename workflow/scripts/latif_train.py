"""Rules latif_train and latif_cross_train (rules/latif.smk): sernoise.latif.job.train_run."""

from sernoise.latif.job import train_run

train_run(snakemake)  # noqa: F821 (Snakemake's script object)
