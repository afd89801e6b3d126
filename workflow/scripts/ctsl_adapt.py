"""Rule ctsl_adapt: one CTSL adaptation of (model, strategy, fold, repetition, task) (sernoise.ctsl.job)."""

from sernoise.ctsl.job import adapt_job

adapt_job(snakemake)
