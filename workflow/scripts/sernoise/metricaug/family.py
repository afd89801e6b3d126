"""The MetricAug head as a model family (plugin: list ``sernoise.metricaug.family`` under ``plugins:``
and ``metricaug_head`` under ``training.models``): the head of Wu & Lee §2.2 on 40-d filterbanks,
trained and tested in the workflow's regimes through the generic rules (rules/models.smk), with the
T-DNN's jobs (:mod:`sernoise.training.tdnn_job`) given the head's grid search (H from
``metricaug.hidden``) and loader.  Hyper-parameters and training settings: the ``metricaug``
config section (max_epochs, patience, batch_size, learning_rate, class_weighting, max_frames).
"""

from __future__ import annotations

from pathlib import Path

from sernoise.model_registry import ModelFamily, register_model

FAMILY = register_model(ModelFamily(
    "metricaug_head", "MetricAug head", input="features", feature="fbank40", settings="metricaug",
    tasks=("bins", "categorical"), train="sernoise.metricaug.family:train",
    predict="sernoise.metricaug.family:predict", model_files=("model.pt", "hparams.yaml", "norm.npz"),
    resources={"train": {"mem_mb": 4000, "runtime": 240}, "predict": {"mem_mb": 3000, "runtime": 60}},
    description="Wu & Lee's head (linear -> GRU -> 2-head transformer -> mean pooling) on 40-d filterbanks"))


def search(section, train, val, settings, seed, *, progress=None, task=None, strategy=None):
    """The head's grid search over H (``metricaug.hidden``) for the T-DNN's training job."""
    from sernoise.metricaug.train import search_hidden
    from sernoise.tasks import BUILTIN_TASKS
    from sernoise.training.strategies import STANDARD

    best, rows, _ = search_hidden(section["hidden"], train, val, settings, seed,
                                  task=task or BUILTIN_TASKS["activation"], strategy=strategy or STANDARD,
                                  progress=progress)
    return best, rows


def load(model_pt, hparams_yaml, device="cpu"):
    """The head of ``hparams.yaml`` with the weights of ``model.pt`` (weights_only), in eval mode."""
    import yaml

    from sernoise.models.metricaug_head import HeadConfig, MetricAugHead
    from sernoise.training.predict import ModelFileError, load_weights

    hparams = yaml.safe_load(Path(hparams_yaml).read_text(encoding="utf-8"))
    if not isinstance(hparams, dict) or "hparams" not in hparams:
        raise ModelFileError(f"{hparams_yaml}: no 'hparams' entry")
    model = MetricAugHead(HeadConfig(**hparams["hparams"]))
    return load_weights(model, model_pt, device=device, mismatch=f"weights do not fit the hyper-parameters of {hparams_yaml}: ")


def train(smk) -> None:
    from sernoise.training import tdnn_job

    tdnn_job.train(smk, label="MetricAug head", search=search, optimizer="Adam")


def predict(smk) -> None:
    from sernoise.training import tdnn_job

    tdnn_job.predict(smk, load=load)
