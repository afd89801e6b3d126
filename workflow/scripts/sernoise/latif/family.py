"""Latif et al.'s five models as model families of the main pipeline (plugin: list
``sernoise.latif.family`` under ``plugins:`` and, e.g., ``latif_proposed`` under ``training.models``).

The Latif stage (rules/latif.smk) trains the models in the paper's own protocol (leave-one-speaker-out
folds, Tables 1-3, FGSM/BIM).  Registered here, the same networks (:mod:`sernoise.latif.models`) also
train and test in the workflow's regimes through the generic rules (rules/models.smk): clean, matched
and mismatched training, Tables 3 and 4, the black-box attack (Table 5).  A plugin, as the MetricAug
head (:mod:`sernoise.metricaug.family`), rather than built in: the paper's arms stay the default
families, and a config that does not list the plugin plans and imports nothing of it.

======================  ==========================================  ===============
family                  network (``latif.models`` name)             table label
======================  ==========================================  ===============
latif_proposed          DenseNet-LSTM-Highway (``proposed``)        DenseNet-LSTM-Highway (Latif)
latif_densenet          DenseNet (``densenet``)                     DenseNet (Latif)
latif_densenet_lstm     DenseNet-LSTM (``densenet_lstm``)           DenseNet-LSTM (Latif)
latif_cnn_lstm          CNN-LSTM (``cnn_lstm``)                     CNN-LSTM (Latif)
latif_cnn               CNN (``cnn``)                               CNN (Latif)
======================  ==========================================  ===============

Input ``waveform`` (the audio datasets the E-DNN reads: the clean corpus and each condition's pool),
not feature archives: the workflow's feature rules build one feature type, 40-d log Mel filterbanks
(``fbank40``), and the Latif stage's segment archives hold its own sets (clean, speed copies, noise at
its SNRs), not the workflow's conditions.  A second archive type per audio variant, condition and pool
would be a new feature stage for a step that costs little: the 128-bin log spectrogram
(:func:`sernoise.latif.spectrogram.log_spectrogram`, an FFT per 10 ms frame) is computed in the job,
far cheaper than the networks' forward passes over the same frames.  The attack hands predictors
waveforms anyway.

The jobs (:mod:`sernoise.latif.family_job`): each utterance's log spectrogram is cut into segments
of ``latif.context`` frames (hop ``latif.hop``) that carry its label; the network trains on the
segments with :func:`sernoise.latif.training.train_segments` (Adam at ``latif.training``'s rate,
halved after ``halve_patience`` epochs without a validation gain, stopped after ``stop_patience``,
at most ``max_epochs``; the best epoch kept), and an utterance's scores are the mean of its
segments' softmax posteriors.  Segments are z-normalised per bin with the training set's
statistics, kept as buffers of the saved module (:class:`sernoise.latif.models.Normalised`).

Model folder: ``model.pt`` (that module's state dict: weights and statistics) and ``hparams.yaml``
(seed, resolved hyper-parameters and settings), like the E-DNN's: the waveform families share one
training rule, which writes the same files for each (rules/common.smk, ``model_output_names``), so
the statistics live in ``model.pt`` rather than a ``norm.npz``.

Tasks: ``bins`` and ``categorical`` (the networks are classifiers; a dimensional task would need a
regression head they lack).  Hyper-parameter section: ``latif`` (``training``, ``context``, ``hop``).
"""

from __future__ import annotations

from sernoise.model_registry import ModelFamily, register_model

# network (sernoise.latif.models.MODELS) -> its label there (MODEL_LABELS); repeated here so that the
# plan's process imports no torch (tests/test_latif_family.py checks that they agree).
NETWORKS = {
    "proposed": "DenseNet-LSTM-Highway",
    "densenet": "DenseNet",
    "densenet_lstm": "DenseNet-LSTM",
    "cnn_lstm": "CNN-LSTM",
    "cnn": "CNN",
}
PREFIX = "latif_"
# A training job holds every training and validation segment in float32 (128 KiB per default
# segment; a paper-scale fold with one augmented copy per utterance is some gigabytes) and trains
# for up to latif.training.max_epochs epochs: memory and time nearer the E-DNN's than the T-DNN's.
RESOURCES = {"train": {"mem_mb": 12000, "runtime": 720}, "predict": {"mem_mb": 6000, "runtime": 60}}


def family_name(network: str) -> str:
    """The family of a Latif network (``proposed`` -> ``latif_proposed``)."""
    return PREFIX + network


def network_of(family: str) -> str:
    """The Latif network of a family name (``latif_proposed`` -> ``proposed``)."""
    network = family.removeprefix(PREFIX)
    if not family.startswith(PREFIX) or network not in NETWORKS:
        raise ValueError(f"{family!r} is not a Latif model family; known: {[family_name(n) for n in NETWORKS]}")
    return network


FAMILIES = {
    family_name(network): register_model(
        ModelFamily(
            family_name(network),
            f"{label} (Latif)",
            input="waveform",
            settings="latif",
            tasks=("bins", "categorical"),
            train="sernoise.latif.family_job:train",
            predict="sernoise.latif.family_job:predict",
            attack="sernoise.latif.family_job:LatifAttackPredictor.from_folder",
            model_files=("model.pt", "hparams.yaml"),
            resources=RESOURCES,
            description=f"Latif et al.'s {label} on 128-bin log-spectrogram segments, utterance = mean posterior",
        )
    )
    for network, label in NETWORKS.items()
}
