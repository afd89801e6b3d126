"""Rules train_model and train_audio_model: the models of one (model, regime, fold, repetition), one per
task, each into its own model folder.

The code is the model family's ``train`` entry point (sernoise.model_registry): T-DNN
sernoise.training.tdnn_job.train, E-DNN sernoise.training.ednn_job.train, called once per task with
that run's view of this job (sernoise.job_views.training_views).
"""

from sernoise.job_views import run_each, training_views
from sernoise.model_registry import job_family, load
from sernoise.runlog import rule_log

family = job_family(snakemake)
with rule_log(snakemake) as log:
    run_each(snakemake, training_views(snakemake, family.outputs), load(family.train), log)
