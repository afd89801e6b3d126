"""Rules predict_model and predict_audio_model: the trained models of one (model, regime, fold), one per
(repetition, task), on the fold's test utterances; one predictions file each.

The code is the model family's ``predict`` entry point (sernoise.model_registry): T-DNN
sernoise.training.tdnn_job.predict, E-DNN sernoise.training.ednn_job.predict, called once per
(repetition, task) with that run's view of this job (sernoise.job_views.prediction_views).
"""

from sernoise.job_views import prediction_views, run_each
from sernoise.model_registry import job_family, load
from sernoise.runlog import rule_log

family = job_family(snakemake)
with rule_log(snakemake) as log:
    run_each(snakemake, prediction_views(snakemake, family.model_files), load(family.predict), log)
