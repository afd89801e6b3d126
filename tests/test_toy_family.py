"""A new system is a module plus config: a toy model family and a toy task, registered by a plugin
module written by this test, flow through the plan, training, prediction, metrics and Table 3
without any other module knowing them.

The toy family is a nearest-centroid classifier on mean filterbank frames; the toy task is a
two-class categorical task ("calm" / "aroused") mapped from the manifest's emotions.  The
plugin's train and predict entry points take the rule's ``snakemake`` object, as the workflow's
generic rules call them (rules/models.smk); here that object is built from the plan's paths, the
way rules/common.smk builds the rule inputs.  Metrics and Table 3 run through the same functions
as their rule scripts (compute_metrics.py, make_table3.py).
"""

from __future__ import annotations

import logging
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from sernoise.config import validate_config
from sernoise.corpora.manifest import to_manifest_frame
from sernoise.evaluation.metrics import compute_metrics, read_confusion, speaker_confusion
from sernoise.evaluation.table3 import build_table3
from sernoise.evaluation.uar_table import run_table_rule
from sernoise.features import N_MELS, write_feature_archive
from sernoise.folds import make_folds
from sernoise.model_registry import get_model, load, registered_models, unregister_model
from sernoise.plan import build_plan
from sernoise.predictions import read_predictions

PLUGIN = "toy_sernoise_plugin"
PLUGIN_SOURCE = '''
"""A toy system: a nearest-centroid family on mean filterbank frames and a two-class task."""
import numpy as np
import pandas as pd
import torch
import yaml

from sernoise.corpora.manifest import read_manifest
from sernoise.features import FeatureArchive
from sernoise.model_registry import ModelFamily, register_model
from sernoise.predictions import CLEAN, prediction_keys
from sernoise.tasks import Task, get_task, register_task
from sernoise.training.artifacts import TrainingRun
from sernoise.training.data import archive_utterances, load_and_normalise, load_norm, normalise, save_norm
from sernoise.training.predict import labelled_test_utterances, predict_conditions, write_predictions

register_task(Task("toy_mood", "categorical", ("calm", "aroused"),
                   mapping={"ravdess": {"neutral": "calm", "calm": "calm", "sad": "calm",
                                        "angry": "aroused", "happy": "aroused", "fearful": "aroused"}}),
              replace=True)
register_model(ModelFamily(
    "toy", "Toy centroid", input="features", feature="fbank40", tasks=("bins", "categorical"),
    train="toy_sernoise_plugin:train", predict="toy_sernoise_plugin:predict",
    model_files=("model.pt", "hparams.yaml", "norm.npz")), replace=True)


def _pooled(sequences):
    return np.stack([s.mean(axis=0) for s in sequences]).astype(np.float32)


def train(smk):
    run = TrainingRun.from_rule(smk.wildcards, smk.params, smk.config)
    archives = {CLEAN: smk.input.clean, **dict(zip(smk.params.conditions, smk.input.conditions))}
    sets = run.assemble(read_manifest(smk.input.manifest),
                        pd.read_csv(smk.input.folds, dtype={"group": str}), augmented_per_clean=1.0,
                        available={c: archive_utterances(p) for c, p in archives.items() if c != CLEAN})
    train_x, _, mean, std = load_and_normalise(sets, archives)
    labels = np.array([e.label for e in sets.train])
    task = run.task_spec
    centroids = np.stack([_pooled([x for x, y in zip(train_x, labels) if y == k]) .mean(axis=0)
                          for k in range(task.output_size)])
    torch.save({"centroids": torch.from_numpy(centroids)}, smk.output.model)
    save_norm(smk.output.norm, mean, std)
    with open(smk.output.hparams, "w") as handle:
        yaml.safe_dump({"model": "toy", **run.record()}, handle)
    for name in ("curve", "selection"):
        pd.DataFrame({"epoch": [1]}).to_csv(getattr(smk.output, name), index=False)
    open(smk.output.curve_png, "wb").close()
    open(smk.output.versions, "w").write("toy: 1\\n")


def predict(smk):
    wc = smk.wildcards
    task = get_task(wc.task, smk.config)
    centroids = torch.load(smk.input.model, weights_only=True)["centroids"].numpy()
    mean, std = load_norm(smk.input.norm)
    test, labels = labelled_test_utterances(read_manifest(smk.input.manifest),
                                            pd.read_csv(smk.input.folds, dtype={"group": str}), wc.fold, task,
                                            corpus=wc.corpus, config=smk.config)

    def score(archive, utts):
        features = archive.read_many(utts)
        pooled = _pooled(normalise([features[u].astype(np.float32) for u in utts], mean, std))
        distance = ((pooled[:, None, :] - centroids[None]) ** 2).sum(axis=2)
        scores = np.exp(-(distance - distance.min(axis=1, keepdims=True)))
        return scores / scores.sum(axis=1, keepdims=True)

    sources = [(CLEAN, smk.input.clean)] + list(zip(smk.params.conditions, smk.input.conditions))
    frames = predict_conditions(sources, test, labels, open_source=FeatureArchive, score=score, what="features",
                                classes=task.labels)
    write_predictions(frames, smk.output[0], prediction_keys(wc.corpus, wc.model, wc.regime, wc.fold, wc.rep,
                                                             wc.task), task.labels)
'''
EMOTIONS = ("neutral", "calm", "sad", "angry", "happy", "fearful")  # calm, calm, calm, aroused x3
N_GROUPS, PER_GROUP = 6, 12


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / f"{PLUGIN}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    monkeypatch.syspath_prepend(str(folder))
    yield PLUGIN
    unregister_model("toy")
    from sernoise.tasks import _REGISTERED

    _REGISTERED.pop("toy_mood", None)
    sys.modules.pop(PLUGIN, None)


def _corpus(root):
    """Manifest, folds and filterbank archives (clean; fade-in test and train pools) of a synthetic corpus
    whose aroused utterances have higher energy in the upper Mel bands."""
    rng = np.random.default_rng(3)
    rows, clean, noisy = [], [], []
    for g in range(1, N_GROUPS + 1):
        for i in range(PER_GROUP):
            emotion = EMOTIONS[i % len(EMOTIONS)]
            utt = f"g{g}-u{i:02d}"
            rows.append({"utt_id": utt, "path": f"{utt}.wav", "speaker": f"s{g}", "gender": "F" if g % 2 else "M",
                         "group": f"pair{g:02d}", "duration": 1.0, "sample_rate": 16000, "emotion": emotion,
                         "activation_bin": "mid", "valence_bin": "mid"})
            feats = rng.normal(0.0, 1.0, size=(40 + i, N_MELS)).astype(np.float32)
            if emotion in ("angry", "happy", "fearful"):
                feats[:, N_MELS // 2:] += 1.5
            clean.append((utt, feats))
            noisy.append((utt, feats + rng.normal(0.0, 0.8, size=feats.shape).astype(np.float32)))
    manifest = to_manifest_frame(rows)
    manifest.to_csv(root / "manifest.csv", index=False)
    folds = make_folds([f"pair{g:02d}" for g in range(1, N_GROUPS + 1)], 3)
    folds.to_csv(root / "folds.csv", index=False)
    write_feature_archive(root / "features" / "clean.h5", clean)
    for pool in ("train", "test"):
        write_feature_archive(root / "features" / "fade-in" / f"{pool}.h5", noisy)
    return manifest


def test_toy_family_and_task_flow_through_training_prediction_metrics_and_table3(tmp_path, repo_root, plugin):
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config.update(plugins=[plugin], corpus="ravdess", folds={"n_folds": 3})
    config["training"].update(models=["toy"], tasks=["toy_mood"], regimes=["clean", "matched"], repetitions=1)
    config["training"]["sweep"] = {"fractions": []}
    config["augment"]["conditions"] = ["fade-in"]
    config["noise_types"] = {"fade": ["fade-in"]}
    config.pop("attack")
    config = validate_config(config, repo_root / "schemas" / "config.schema.yaml")
    plan = build_plan(config, perception_defaults={})
    assert "toy" in registered_models() and plan.task_kinds == {"toy_mood": "categorical"}
    assert list(plan.regimes) == ["clean", "matched"] and plan.tested == ["fade-in"]

    root = tmp_path / "work"
    (root / "features").mkdir(parents=True)
    manifest = _corpus(root)
    family = get_model("toy")
    predictions = []
    for regime in plan.model_regimes["toy"]:
        for fold in plan.folds:
            wildcards = SimpleNamespace(corpus="ravdess", model="toy", regime=regime, fold=str(fold), rep="1",
                                        task="toy_mood")
            folder = root / plan.model_folder("ravdess", "toy", regime, fold, 1, "toy_mood")
            folder.mkdir(parents=True)
            conditions = list(plan.regime(regime).train_conditions)
            data = dict(manifest=str(root / "manifest.csv"), folds=str(root / "folds.csv"),
                        clean=str(root / "features" / "clean.h5"))
            train_outputs = {("curve_png" if n == "curve.png" else n.split(".")[0]): str(folder / n)
                             for n in family.outputs}
            load(family.train)(SimpleNamespace(
                wildcards=wildcards, config=config, output=SimpleNamespace(**train_outputs),
                input=SimpleNamespace(**data, conditions=[str(root / "features" / c / "train.h5") for c in conditions]),
                params=SimpleNamespace(regime=plan.regime(regime).as_dict(), conditions=conditions, seed=config["seed"])))
            assert all((folder / name).is_file() for name in family.outputs)

            out = root / plan.prediction_file("ravdess", "toy", regime, fold, 1, "toy_mood")
            out.parent.mkdir(parents=True, exist_ok=True)
            load(family.predict)(SimpleNamespace(
                wildcards=wildcards, config=config, output=[str(out)],
                input=SimpleNamespace(**data, conditions=[str(root / "features" / c / "test.h5") for c in plan.tested],
                                      **{n.split(".")[0]: str(folder / n) for n in family.model_files}),
                params=SimpleNamespace(conditions=plan.tested)))
            predictions.append(out)

    frame = read_predictions(predictions[0])
    assert list(frame.columns[-2:]) == ["score_calm", "score_aroused"]
    assert set(frame["true"]) == {"calm", "aroused"} and set(frame["condition"]) == {"clean", "fade-in"}
    assert (frame[["model", "task", "regime"]].drop_duplicates().values.tolist() == [["toy", "toy_mood", "clean"]])

    metrics, confusion = compute_metrics(predictions)
    assert {"recall_calm", "recall_aroused"} <= set(metrics.columns)
    assert list(confusion.columns[-4:]) == ["cm_calm_calm", "cm_calm_aroused", "cm_aroused_calm", "cm_aroused_aroused"]
    clean_uar = metrics.loc[(metrics["regime"] == "clean") & (metrics["condition"] == "clean"), "uar"]
    assert len(clean_uar) == 3 and clean_uar.min() > 0.8  # the classes are separable: the toy learned them
    metrics_dir = root / "results" / "ravdess" / "metrics" / "toy"
    metrics_dir.mkdir(parents=True)
    confusion.to_csv(metrics_dir / "confusion.csv", index=False)
    by_speaker = speaker_confusion(predictions, dict(zip(manifest["utt_id"], manifest["speaker"])))
    by_speaker.to_csv(metrics_dir / "speaker_confusion.csv", index=False)

    tables = root / "results" / "ravdess" / "tables"
    outputs = SimpleNamespace(**{k: str(tables / f"table3.{ext}") for k, ext in
                                 (("csv", "csv"), ("markdown", "md"), ("latex", "tex"), ("html", "html"))})
    tables.mkdir(parents=True)
    smk = SimpleNamespace(input=SimpleNamespace(confusion=[str(metrics_dir / "confusion.csv")], statuses=[],
                                                speaker_confusion=[str(metrics_dir / "speaker_confusion.csv")]),
                          params=SimpleNamespace(settings=plan.evaluation_settings(), corpus="ravdess",
                                                 statistics={**config["statistics"], "seed": config["seed"],
                                                             "show_ci": True}),
                          output=outputs)
    table = run_table_rule(smk, logging.getLogger("toy"), build_table3)
    cells = pd.read_csv(tables / "table3.csv")
    assert set(cells["model"]) == {"toy"} and set(cells["task"]) == {"toy_mood"}
    no_noise = cells[(cells["row"] == "No noise") & (cells["column"] == "clean")]
    assert len(no_noise) == 1 and no_noise["mean"].iloc[0] > 0.8
    fade = cells[(cells["label"] == "Fade in") & (cells["column"] == "match")]
    assert len(fade) == 1 and fade["mean"].notna().all()
    assert "Toy centroid" in (tables / "table3.md").read_text() and table.models == ["toy"]
    assert no_noise[["ci_low", "ci_high"]].notna().all(axis=None) and table.statistics["test"] == "speaker_jackknife"


def test_confusion_of_tasks_with_different_classes_is_read_over_their_union(tmp_path):
    from sernoise.evaluation.metrics import uar_from_confusion

    bins = pd.DataFrame([{"model": "tdnn", "regime": "clean", "fold": 1, "rep": 1, "task": "activation",
                          "condition": "clean", **{f"cm_{t}_{p}": int(t == p) * 2 for t in ("low", "mid", "high")
                                                   for p in ("low", "mid", "high")}}])
    mood = pd.DataFrame([{"model": "toy", "regime": "clean", "fold": 1, "rep": 1, "task": "toy_mood",
                          "condition": "clean", "cm_calm_calm": 3, "cm_calm_aroused": 1, "cm_aroused_calm": 0,
                          "cm_aroused_aroused": 4}])
    bins.to_csv(tmp_path / "a.csv", index=False)
    mood.to_csv(tmp_path / "b.csv", index=False)
    frame = read_confusion([tmp_path / "a.csv", tmp_path / "b.csv"])
    cm = [c for c in frame.columns if c.startswith("cm_")]
    assert len(cm) == 25 and cm[0] == "cm_low_low" and cm[-1] == "cm_aroused_aroused"
    assert uar_from_confusion(frame.loc[0, cm].to_numpy(dtype=float)) == 1.0
    assert uar_from_confusion(frame.loc[1, cm].to_numpy(dtype=float)) == pytest.approx((3 / 4 + 1) / 2)
