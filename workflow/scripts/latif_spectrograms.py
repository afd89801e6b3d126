"""Rule latif_spectrograms (rules/latif.smk): sernoise.latif.job.spectrogram_shard."""

from sernoise.latif.job import spectrogram_shard

spectrogram_shard(snakemake)  # noqa: F821 (Snakemake's script object)
