# Helpers of the E-DNN stage (rules/pretrained.smk, rules/ednn.smk): which wav2vec2 backbone each
# E-DNN model uses (config `pretrained:`, sernoise.pretrained), table labels of stand-in backbones,
# and the input functions of train_ednn / predict_ednn.  Included right after rules/common.smk.

from sernoise.pretrained import (  # noqa: E402
    MODEL_BACKBONES,
    PRETRAINED_ROOT,
    READY,
    TINY_NAME,
    PretrainedError,
    folder_name,
    resolve_backbone,
)


def _hub_repos():
    """Folder name -> (config key, repo id, revision) of every configured backbone that is not a local folder."""
    pretrained = config["pretrained"]
    repos = {}
    for key in sorted(set(MODEL_BACKBONES.values())):
        repo_id = pretrained.get(key)
        if not repo_id or key in (pretrained.get("local") or {}):
            continue
        try:
            repos[folder_name(repo_id)] = (key, repo_id, (pretrained.get("revisions") or {}).get(key))
        except PretrainedError as error:
            raise WorkflowError(f"invalid configuration: config key pretrained.{key}: {error}") from None
    return repos


def _backbones():
    """Model (ednn, ednn_nr) -> Backbone, for the E-DNN models that training.models asks for."""
    backbones = {}
    for model in config["training"]["models"]:
        if model in MODEL_BACKBONES:
            try:
                backbones[model] = resolve_backbone(config["pretrained"], MODEL_BACKBONES[model])
            except PretrainedError as error:
                raise WorkflowError(f"invalid configuration: {error}") from None
    return backbones


PRETRAINED_HUB = _hub_repos()
BACKBONES = _backbones()


def backbone(model):
    try:
        return BACKBONES[model]
    except KeyError:
        raise WorkflowError(f"model {model!r} is not an E-DNN model of training.models {config['training']['models']}") from None


def ednn_model_labels():
    """Table labels of the E-DNN models that run on a stand-in backbone: {"ednn": "E-DNN (tiny random wav2vec2)"}."""
    from sernoise.evaluation.labels import model_label

    return {m: f"{model_label(m)} ({b.label})" for m, b in BACKBONES.items() if b.label}


def ednn_caption_notes():
    """One caption sentence per stand-in backbone, saying what it replaces and why."""
    from sernoise.evaluation.labels import model_label

    return [
        f"{model_label(m)} ({b.label}): a tiny randomly initialised wav2vec2 ({b.folder}) stands in for "
        f"{b.repo_id}, whose weights were not in {PRETRAINED_ROOT}/ (pretrained.missing: tiny_random); its numbers "
        "test the pipeline and say nothing about wav2vec2."
        for m, b in BACKBONES.items()
        if b.label
    ]


EDNN_MODELS = "|".join(m for m in config["training"]["models"] if m in MODEL_BACKBONES) or "(?!)"


def audio_dataset(corpus, condition, pool):
    """index.csv and shards of an audio dataset: the clean corpus (condition None) or a condition's pool."""
    if condition is None:
        folder = f"results/{corpus}/audio"
        return f"{folder}/index.csv", [f"{folder}/shard-{s}.h5" for s in shard_ids(corpus)]
    folder = f"results/{corpus}/augmented/{condition}/{pool}"
    return f"{folder}/index.csv", [f"{folder}/shard-{s}.h5" for s in shard_ids(corpus)]


def _ednn_audio_inputs(corpus, conditions, pool):
    clean_index, clean_shards = audio_dataset(corpus, None, None)
    datasets = [audio_dataset(corpus, c, pool) for c in conditions]
    return {
        "manifest": f"results/{corpus}/manifest.csv",
        "folds": f"results/{corpus}/folds.csv",
        "clean_index": clean_index,
        "clean_shards": clean_shards,
        "indexes": [index for index, _ in datasets],
        "shards": [shard for _, shards in datasets for shard in shards],
    }


def ednn_train_inputs(wc):
    """Input function of train_ednn: the clean audio, the regime's TRAIN-pool audio datasets, the backbone."""
    regime = training_regime(wc)
    if regime.train_conditions and "train" not in config["augment"]["pools"]:
        raise WorkflowError(f"config key augment.pools: regime {regime.name} needs the train pool")
    inputs = _ednn_audio_inputs(wc.corpus, regime.train_conditions, "train")
    inputs["backbone"] = backbone(wc.model).ready
    return inputs


def ednn_predict_inputs(wc):
    """Input function of predict_ednn: the trained model, the backbone, clean and TEST-pool audio."""
    folder = f"results/{wc.corpus}/models/{wc.model}/{wc.regime}/fold{wc.fold}/rep{wc.rep}/{wc.task}"
    inputs = _ednn_audio_inputs(wc.corpus, test_conditions(), "test")
    inputs.update(model=f"{folder}/model.pt", hparams=f"{folder}/hparams.yaml", backbone=backbone(wc.model).ready)
    return inputs
