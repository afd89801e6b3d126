"""Rule list_datasets: the condition datasets a model job reads, as one small input of that job
(sernoise.job_views.write_dataset_list)."""

from sernoise.job_views import write_dataset_list

write_dataset_list(snakemake.output[0], snakemake.params.key, snakemake.params.conditions, snakemake.input.datasets,
                   log=snakemake.log[0])
