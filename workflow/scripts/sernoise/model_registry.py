"""The model registry: one entry per model family, read by the rules, tables, plots and the attack.

A family says what it is (name, table label), what it reads (filterbank features of the raw, the
RNNoise-denoised or the DeepFilterNet3-denoised audio, or the waveform), which task kinds it can learn, where its code is
(train, predict and attack entry points as ``"module:function"``, imported only by the jobs),
which files its model folder holds, whether it exposes an utterance embedding, what a job of it
needs (memory, runtime, a GPU), and whether it runs on pretrained weights (and which key of
``pretrained:`` names them, so that a stand-in backbone can be labelled in the tables).

Adding a system is one module that calls :func:`register_model` (listed under ``plugins:`` in
the config, which the plan imports before it resolves anything) plus config; the rules, the
evaluation and the attack find it here.  The built-in entries are the paper's four arms:
T-DNN, its RNNoise arm T-DNN-NR, E-DNN (wav2vec2-base) and E-DNN-NR (wav2vec2-large-robust),
plus the T-DNN on DeepFilterNet3-denoised audio (tdnn_dfn3), a second denoiser beside the paper's.

Only the standard library is imported: the Snakefile's process reads this module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

INPUT_KINDS = ("features", "waveform")
# Denoised audio variants -> the denoiser (sernoise.denoise.DENOISERS) that writes them; each is a
# folder of results/{corpus}/ (and of results/{corpus}/features/): RNNoise keeps the paper arm's
# "denoised", DeepFilterNet3 has its own.
DENOISED_AUDIO = {"denoised": "rnnoise", "denoised_dfn3": "dfn3"}
AUDIO_VARIANTS = ("raw", *DENOISED_AUDIO)
TASK_KINDS = ("bins", "categorical", "dimensional")
# Files every trained model folder holds besides the family's own (training.artifacts writes them).
COMMON_MODEL_FILES = ("curve.csv", "curve.png", "selection.csv", "versions.yaml")


class RegistryError(ValueError):
    """An unknown or badly registered model family (the message names it)."""


@dataclass(frozen=True)
class ModelFamily:
    name: str  # the config name (training.models) and the {model} wildcard
    label: str  # table and plot label
    input: str  # features | waveform
    train: str  # "module:function(snakemake)" of the training job
    predict: str  # "module:function(snakemake)" of the prediction job
    model_files: tuple = ("model.pt", "hparams.yaml")  # what predict and the attack read from the model folder
    tasks: tuple = ("bins",)  # task kinds it supports
    audio: str = "raw"  # raw | denoised | denoised_dfn3: the audio its features (or waveforms) come from
    feature: str | None = None  # the feature type of input "features" (fbank40)
    settings: str | None = None  # config section of its hyper-parameters (tdnn, ednn)
    attack: str | None = None  # "module:callable(folder, device)" of its attack predictor; None: not attackable
    embedding: bool = False  # exposes an utterance embedding (contrastive, cross-corpus analyses)
    pretrained: str | None = None  # key under pretrained: of its backbone weights; None: trained from scratch
    noise_robust: bool = False  # a noise-robust arm (paper §7.4): a Table 4 column
    resources: dict = field(default_factory=dict)  # train/predict -> {mem_mb, runtime}; gpu from training.device
    description: str = ""
    # "module:function(snakemake, views, log)": every run of a prediction job at once (views: one per
    # (repetition, task), sernoise.job_views), reading the test data once; None: ``predict`` per run
    predict_runs: str | None = None

    def __post_init__(self):
        problems = []
        if not self.name or not self.name.replace("_", "a").isalnum() or not self.name[0].isalpha():
            problems.append(f"name {self.name!r} must start with a letter and hold only letters, digits and '_'")
        if self.input not in INPUT_KINDS:
            problems.append(f"input {self.input!r} not in {INPUT_KINDS}")
        if self.audio not in AUDIO_VARIANTS:
            problems.append(f"audio {self.audio!r} not in {AUDIO_VARIANTS}")
        if self.input == "features" and not self.feature:
            problems.append("input 'features' needs a feature type")
        unknown = [k for k in self.tasks if k not in TASK_KINDS]
        if unknown or not self.tasks:
            problems.append(f"tasks {list(self.tasks)}: each must be one of {TASK_KINDS}")
        for key, target in (("train", self.train), ("predict", self.predict), ("attack", self.attack),
                            ("predict_runs", self.predict_runs)):
            if target is not None and (not isinstance(target, str) or target.count(":") != 1):
                problems.append(f"{key} entry point {target!r} must be 'module:function'")
        if not self.model_files:
            problems.append("model_files must name at least one file")
        if problems:
            raise RegistryError(f"model family {self.name!r}: " + "; ".join(problems))

    @property
    def outputs(self) -> tuple:
        """Every file its training job writes into the model folder."""
        return tuple(self.model_files) + COMMON_MODEL_FILES

    def resource(self, stage: str, key: str, config: dict | None = None, default=None):
        """Job resource ``key`` (mem_mb, runtime) of ``stage`` (train, predict): the family's settings
        section in config (e.g. ``ednn.mem_mb``, ``ednn.runtime`` for training) wins over its default."""
        section = (config or {}).get(self.settings) or {} if self.settings else {}
        if stage == "train" and key in section:
            return section[key]
        if stage == "predict" and key == "mem_mb" and key in section:
            return section[key]
        return (self.resources.get(stage) or {}).get(key, default)


def load(target: str):
    """The object a ``"module:attr.attr"`` entry point names (imported now: call it in jobs only)."""
    module_name, attr = target.split(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


_MODELS: dict[str, ModelFamily] = {}


def register_model(family: ModelFamily, *, replace: bool = False) -> ModelFamily:
    """Add a family (``replace`` to redefine one, e.g. in a test); a second one of the same name is an error."""
    if family.name in _MODELS and not replace and _MODELS[family.name] != family:
        raise RegistryError(f"model family {family.name!r} is already registered")
    _MODELS[family.name] = family
    return family


def unregister_model(name: str) -> None:
    _MODELS.pop(name, None)


def get_model(name: str) -> ModelFamily:
    try:
        return _MODELS[name]
    except KeyError:
        raise RegistryError(f"unknown model family {name!r}; registered: {sorted(_MODELS)}") from None


def registered_models() -> dict[str, ModelFamily]:
    return dict(_MODELS)


# The T-DNN learns dimensional tasks too (1 - CCC, selected by CCC): the teachers of CTSL on a rated corpus
# (Leem et al.).  Their models are trained only; predictions and tables cover classification tasks
# (sernoise.plan.Plan.scored_tasks).
_TDNN = dict(
    input="features", feature="fbank40", settings="tdnn", tasks=("bins", "categorical", "dimensional"),
    train="sernoise.training.tdnn_job:train", predict="sernoise.training.tdnn_job:predict",
    predict_runs="sernoise.training.tdnn_job:predict_runs",
    model_files=("model.pt", "hparams.yaml", "norm.npz"), embedding=True,
    resources={"train": {"mem_mb": 6000, "runtime": 480}, "predict": {"mem_mb": 3000, "runtime": 60}},
)
_EDNN = dict(
    input="waveform", settings="ednn", tasks=("bins", "categorical"),
    train="sernoise.training.ednn_job:train", predict="sernoise.training.ednn_job:predict",
    predict_runs="sernoise.training.ednn_job:predict_runs",
    attack="sernoise.attack.models:EdnnAttackPredictor.from_folder",
    model_files=("model.pt", "hparams.yaml"), embedding=True,
    resources={"train": {"mem_mb": 16000, "runtime": 720}, "predict": {"mem_mb": 16000, "runtime": 60}},
)

register_model(ModelFamily(
    "tdnn", "T-DNN", **_TDNN, attack="sernoise.attack.models:TdnnPredictor.from_folder",
    description="CNN + GRU on 40-d log Mel filterbanks (paper §7.2)"))
register_model(ModelFamily(
    "tdnn_nr", "NR-T-DNN", **_TDNN, audio="denoised", noise_robust=True,
    attack="sernoise.attack.models:TdnnNrPredictor.from_folder",
    description="the T-DNN trained, validated and tested on RNNoise-denoised audio (paper §7.4.1)"))
# Registered right after tdnn_nr: Table 4 shows the arms in registration order, DFN3 beside RNNoise.
register_model(ModelFamily(
    "tdnn_dfn3", "DFN3-T-DNN", **_TDNN, audio="denoised_dfn3", noise_robust=True,
    attack="sernoise.attack.models:TdnnDfn3Predictor.from_folder",
    description="the T-DNN trained, validated and tested on DeepFilterNet3-denoised audio (§7.4.1 with DFN3)"))
register_model(ModelFamily(
    "ednn", "E-DNN", **_EDNN, pretrained="wav2vec2_base",
    description="wav2vec2-base + mean pooling + dense layers (paper §7.3)"))
register_model(ModelFamily(
    "ednn_nr", "NR-E-DNN", **_EDNN, pretrained="wav2vec2_robust", noise_robust=True,
    description="wav2vec2-large-robust in place of base (paper §7.4.2)"))


def job_family(smk) -> ModelFamily:
    """The family of a rule job's ``{model}`` wildcard, after importing the config's ``plugins:`` (a
    job runs in its own process, where only the built-in families are registered on import)."""
    for name in (getattr(smk, "config", None) or {}).get("plugins") or []:
        importlib.import_module(name)
    return get_model(smk.wildcards.model)
