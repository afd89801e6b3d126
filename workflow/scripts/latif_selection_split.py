"""Rule latif_selection_split (rules/latif.smk): sernoise.latif.job.make_selection_split."""

from sernoise.latif.job import make_selection_split

make_selection_split(snakemake)  # noqa: F821 (Snakemake's script object)
