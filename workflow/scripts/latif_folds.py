"""Rule latif_folds (rules/latif.smk): sernoise.latif.job.make_folds."""

from sernoise.latif.job import make_folds

make_folds(snakemake)  # noqa: F821 (Snakemake's script object)
