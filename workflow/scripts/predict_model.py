"""Rules predict_model and predict_audio_model: one trained model on its fold's test utterances.

The code is the model family's ``predict`` entry point (sernoise.model_registry): T-DNN
sernoise.training.tdnn_job.predict, E-DNN sernoise.training.ednn_job.predict.
"""

from sernoise.model_registry import job_family, load

load(job_family(snakemake).predict)(snakemake)
