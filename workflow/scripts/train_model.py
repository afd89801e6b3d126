"""Rules train_model and train_audio_model: one model of one (model, regime, fold, repetition, task).

The code is the model family's ``train`` entry point (sernoise.model_registry): T-DNN
sernoise.training.tdnn_job.train, E-DNN sernoise.training.ednn_job.train.
"""

from sernoise.model_registry import job_family, load

load(job_family(snakemake).train)(snakemake)
