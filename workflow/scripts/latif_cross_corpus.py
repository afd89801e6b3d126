"""Rule latif_cross_corpus (rules/latif.smk): sernoise.latif.job.make_cross_corpus."""

from sernoise.latif.job import make_cross_corpus

make_cross_corpus(snakemake)  # noqa: F821 (Snakemake's script object)
