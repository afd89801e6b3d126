"""Rules predict_model and predict_audio_model: the trained models of one (model, regime, fold), one per
(repetition, task), on the fold's test utterances; one predictions file each.

The code is the model family's ``predict_runs`` entry point (sernoise.model_registry), called once
with every run's view of this job (sernoise.job_views.prediction_views): T-DNN
sernoise.training.tdnn_job.predict_runs and E-DNN sernoise.training.ednn_job.predict_runs read each
condition's test features or audio once for all the runs, not once per run; or, for a family without
one (a plugin's), its ``predict`` entry point, called once per (repetition, task) with that run's view.
"""

from sernoise.job_views import prediction_views, run_each
from sernoise.model_registry import job_family, load
from sernoise.runlog import rule_log

family = job_family(snakemake)
with rule_log(snakemake) as log:
    views = prediction_views(snakemake, family.model_files)
    if family.predict_runs:
        load(family.predict_runs)(snakemake, [view for _, view in views], log)
    else:
        run_each(snakemake, views, load(family.predict), log)
