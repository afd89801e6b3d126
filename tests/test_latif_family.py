"""The Latif networks as model families of the main pipeline (sernoise.latif.family, plugin).

Registration and planning; a train + predict round trip through the entry points, called the way the
generic rules call them (rules/models.smk: a job object whose per-run views come from
sernoise.job_views), on synthesised tones at a tiny size (16-frame segments, 2 epochs); the
predictions read by the metrics code; the same config giving the same bytes; the attack predictor on
waveforms; a dry run of the workflow with ``training.models: [latif_proposed]``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from sernoise.config import load_config
from sernoise.corpora.manifest import to_manifest_frame
from sernoise.folds import make_folds
from sernoise.job_views import Files, prediction_views, run_each, training_views, write_dataset_list
from sernoise.model_registry import get_model, load, register_model, registered_models, unregister_model
from sernoise.plan import build_plan
from workflow_helpers import REPO

PLUGIN = "sernoise.latif.family"
CORPUS, CONDITION = "ravdess", "fade-in"
N_GROUPS, PER_GROUP, N_FOLDS = 6, 9, 3
BIN_HZ = {"low": 300.0, "mid": 900.0, "high": 2000.0}  # each activation bin is a tone: learnable in 2 epochs
TINY = {"context": 16, "training": {"max_epochs": 2, "batch_size": 16, "stop_patience": 2}}


@pytest.fixture
def families():
    """sernoise.latif.family imported, its registrations undone after the test (the registry is global)."""
    from sernoise.latif import family

    for entry in family.FAMILIES.values():
        register_model(entry, replace=True)  # a second import registers nothing
    try:
        yield family
    finally:
        for name in family.FAMILIES:
            unregister_model(name)
        sys.modules.pop(PLUGIN, None)


def _config(tmp_path, **training):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "plugins": [PLUGIN],
                "corpus": CORPUS,
                "folds": {"n_folds": N_FOLDS},
                "augment": {"conditions": [CONDITION]},
                "noise_types": {"fade": [CONDITION]},
                "latif": TINY,
                "training": {
                    "models": ["latif_proposed"],
                    "tasks": ["activation"],
                    "regimes": ["clean", "matched"],
                    "repetitions": 1,
                    "device": "cpu",
                    "min_epochs": 1,
                    "on_degenerate": "warn",
                    "sweep": {"fractions": []},
                    **training,
                },
                "attack": {"models": []},
            }
        )
    )
    return load_config([REPO / "config.yaml", overlay], REPO / "schemas" / "config.schema.yaml")


def _store(folder: Path, items) -> str:
    """An audio dataset (index.csv + one shard) of (utt_id, waveform) items."""
    from sernoise.audio_store import ShardWriter

    with ShardWriter(folder / "shard-000.h5") as writer:
        for utt, wave in items:
            writer.add(utt, wave)
    pd.DataFrame({"utt_id": [u for u, _ in items], "shard": "shard-000.h5"}).to_csv(folder / "index.csv", index=False)
    return str(folder / "index.csv")


def _corpus(root: Path) -> dict:
    """Manifest, folds and audio datasets (clean; the condition's train and test pools) of tone utterances."""
    rng = np.random.default_rng(7)
    rows, clean, noisy = [], [], []
    for g in range(1, N_GROUPS + 1):
        for i in range(PER_GROUP):
            utt, level = f"g{g}-u{i:02d}", list(BIN_HZ)[i % 3]
            n = int(rng.integers(2400, 6400))  # 0.15-0.4 s: 1 to 3 segments of 16 frames
            t = np.arange(n) / 16000
            wave = (
                0.3 * np.sin(2 * np.pi * BIN_HZ[level] * (1 + 0.05 * rng.standard_normal()) * t)
                + 0.02 * rng.standard_normal(n)
            ).astype(np.float32)
            rows.append(
                {
                    "utt_id": utt,
                    "path": f"{utt}.wav",
                    "speaker": f"s{g}",
                    "gender": "F" if g % 2 else "M",
                    "group": f"pair{g:02d}",
                    "duration": n / 16000,
                    "sample_rate": 16000,
                    "emotion": "neutral",
                    "activation_bin": level,
                    "valence_bin": "mid",
                }
            )
            clean.append((utt, wave))
            fade = np.linspace(0.2, 1.0, n, dtype=np.float32)
            noisy.append((utt, wave * fade + 0.05 * rng.standard_normal(n).astype(np.float32)))
    to_manifest_frame(rows).to_csv(root / "manifest.csv", index=False)
    make_folds([f"pair{g:02d}" for g in range(1, N_GROUPS + 1)], N_FOLDS).to_csv(root / "folds.csv", index=False)
    data = {
        "manifest": str(root / "manifest.csv"),
        "folds": str(root / "folds.csv"),
        "clean_index": _store(root / "audio", clean),
    }
    for pool in ("train", "test"):
        data[pool] = _store(root / "augmented" / CONDITION / pool, noisy)
    return data


def _job(config, plan, root: Path, data: dict, model: str, regime: str, fold: int, stage: str):
    """A train_audio_model / predict_audio_model job object as Snakemake builds it from rules/models.smk."""
    family = get_model(model)
    conditions = list(plan.regime(regime).train_conditions) if stage == "train" else list(plan.tested)
    pool = "train" if stage == "train" else "test"
    listing = root / "datasets" / f"{stage}-{regime}.json"
    listing.parent.mkdir(parents=True, exist_ok=True)
    write_dataset_list(listing, "indexes", conditions, [data[pool] for _ in conditions])
    folders = {t: str(root / plan.model_folder(CORPUS, model, regime, fold, 1, t)) for t in plan.tasks}
    for folder in folders.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    inputs = {k: data[k] for k in ("manifest", "folds", "clean_index")}
    wildcards = dict(
        corpus=CORPUS, model=model, regime=regime, fold=str(fold), **({"rep": "1"} if stage == "train" else {})
    )
    common = dict(rule=f"{stage}_audio_model", config=config, threads=1, log=Files(), wildcards=Files(**wildcards))
    if stage == "train":
        return SimpleNamespace(
            **common,
            input=Files(**inputs, datasets=str(listing)),
            output=Files([f"{folders[t]}/{name}" for t in plan.tasks for name in family.outputs]),
            params=SimpleNamespace(
                runs=[{"task": t, "folder": folders[t]} for t in plan.tasks],
                regime=plan.regime(regime).as_dict(),
                conditions=conditions,
                seed=config["seed"],
                augmented_per_clean=1.0,
                device="cpu",
                settings=config["latif"],
            ),
        )
    predictions = [str(root / plan.prediction_file(CORPUS, model, regime, fold, 1, t)) for t in plan.tasks]
    trained = f"{folders[plan.tasks[0]]}/{family.model_files[0]}"
    for path in predictions:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(
        **common,
        input=Files(
            **inputs,
            datasets=str(listing),
            # as rules/common.smk's predict_inputs: one file of the (one) training job stands for its models
            models=[trained],
        ),
        output=Files(predictions),
        params=SimpleNamespace(
            runs=[{"rep": "1", "task": t, "folder": folders[t], "trained": trained} for t in plan.tasks],
            conditions=conditions,
            device="cpu",
            settings=config["latif"],
        ),
    )


def _train_and_predict(config, plan, root, data, model, regime="matched", fold=1):
    """Run the family's entry points through the job views, as train_model.py / predict_model.py do."""
    family = get_model(model)
    log = logging.getLogger("test_latif_family")
    train_job = _job(config, plan, root, data, model, regime, fold, "train")
    run_each(train_job, training_views(train_job, family.outputs), load(family.train), log)
    predict_job = _job(config, plan, root, data, model, regime, fold, "predict")
    run_each(predict_job, prediction_views(predict_job, family.model_files), load(family.predict), log)
    return root / plan.model_folder(CORPUS, model, regime, fold, 1, "activation"), Path(predict_job.output[0])


def test_the_five_networks_are_registered_waveform_classifier_families(families):
    from sernoise.latif.models import MODEL_LABELS, MODELS

    assert list(families.NETWORKS) == list(MODELS) and families.NETWORKS == MODEL_LABELS
    assert sorted(families.FAMILIES) == sorted(f"latif_{m}" for m in MODELS)
    for name, entry in families.FAMILIES.items():
        assert registered_models()[name] is entry and get_model(name).label == f"{MODEL_LABELS[name[6:]]} (Latif)"
        assert entry.input == "waveform" and entry.tasks == ("bins", "categorical") and entry.settings == "latif"
        assert entry.model_files == get_model("ednn").model_files  # the waveform rules' files
        for target in (entry.train, entry.predict, entry.attack):
            assert callable(load(target))
    assert families.network_of("latif_cnn_lstm") == "cnn_lstm"
    with pytest.raises(ValueError, match="not a Latif model family"):
        families.network_of("tdnn")


def test_the_plugin_imports_no_torch():
    """The plan's process (the Snakefile's) imports the plugin: it must stay light (tests/test_plan.py)."""
    import subprocess

    code = (
        "import sys, sernoise.plan, sernoise.latif.family; "
        "print(sorted(m for m in ('torch', 'h5py', 'librosa') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts")},
    )
    assert proc.stdout.strip() == "[]"


def test_the_plan_takes_them_beside_the_paper_arms(families, tmp_path):
    config = _config(tmp_path, models=["tdnn", "ednn", "latif_proposed", "latif_cnn"], tasks=["activation", "emotion4"])
    plan = build_plan(config, attack_defaults=None, perception_defaults={})
    assert plan.models_by_input("waveform") == ["ednn", "latif_proposed", "latif_cnn"]
    assert plan.label("latif_proposed") == "DenseNet-LSTM-Highway (Latif)" and plan.standard_models()[-1] == "latif_cnn"
    assert plan.backbones.keys() == {"ednn"}  # trained from scratch: no pretrained weights


def test_a_dimensional_task_is_refused_by_the_plan(families, tmp_path):
    from sernoise.plan import PlanError

    config = _config(tmp_path, tasks=["activation"])
    config["tasks"] = {"avd": {"kind": "dimensional", "attributes": ["activation"]}}
    config["training"]["tasks"] = ["avd"]
    with pytest.raises(PlanError, match="latif_proposed cannot learn task 'avd'"):
        build_plan(config, attack_defaults=None, perception_defaults={})


@pytest.fixture
def trained(families, tmp_path_factory):
    """latif_proposed trained (matched regime, fold 1) and its predictions, through the entry points."""
    import torch

    torch.set_num_threads(1)  # two threads on a busy two-core machine cost more than one
    root = tmp_path_factory.mktemp("latif_family")
    config = _config(root)
    plan = build_plan(config, attack_defaults=None, perception_defaults={})
    data = _corpus(root)
    folder, predictions = _train_and_predict(config, plan, root, data, "latif_proposed")
    return SimpleNamespace(config=config, plan=plan, root=root, data=data, folder=folder, predictions=predictions)


def test_train_and_predict_write_the_model_folder_and_predictions_the_metrics_read(trained):
    from sernoise.evaluation.metrics import compute_metrics, degenerate_flags
    from sernoise.predictions import read_predictions

    family = get_model("latif_proposed")
    assert all((trained.folder / name).is_file() for name in family.outputs)
    hparams = yaml.safe_load((trained.folder / "hparams.yaml").read_text())
    assert hparams["model"] == "latif_proposed" and hparams["network"] == "DenseNet-LSTM-Highway"
    assert hparams["hparams"] == {"network": "proposed", "n_classes": 3, "n_bins": 128, "context": 16, "hop": None}
    assert hparams["training"]["max_epochs"] == 2 and hparams["training"]["learning_rate"] == 0.001
    assert hparams["training"]["mixup"] is False and hparams["training"]["selection_metric"] == "uar"
    from sernoise.training.artifacts import TrainingRun

    run = TrainingRun.from_rule(
        SimpleNamespace(model="latif_proposed", fold="1", rep="1", task="activation"),
        SimpleNamespace(regime=trained.plan.regime("matched").as_dict(), seed=trained.config["seed"]),
        trained.config,
    )
    assert hparams["seed"] == run.seed  # common random numbers: the seed every family of the run shares
    assert hparams["regime"] == "matched" and hparams["n_train_augmented"] > 0 and hparams["epochs_run"] == 2
    assert hparams["degenerate"]["checked"] is True
    curve = pd.read_csv(trained.folder / "curve.csv")
    assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "val_uar"] and len(curve) == 2

    frame = read_predictions(trained.predictions)
    assert set(frame["condition"]) == {"clean", CONDITION} and set(frame["true"]) <= {"low", "mid", "high"}
    assert frame[["model", "regime", "task"]].drop_duplicates().values.tolist() == [
        ["latif_proposed", "matched", "activation"]
    ]
    scores = frame[["score_low", "score_mid", "score_high"]].to_numpy()
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    metrics, _ = compute_metrics([trained.predictions])
    assert set(metrics["condition"]) == {"clean", CONDITION} and metrics["uar"].between(0, 1).all()
    flags = degenerate_flags([trained.folder / "hparams.yaml"])
    assert flags[["model", "regime", "task"]].values.tolist() == [["latif_proposed", "matched", "activation"]]


def test_the_attack_predictor_labels_waveforms_as_the_predictions_file(trained):
    from sernoise.attack.models import load_predictor
    from sernoise.audio_store import AudioStore
    from sernoise.predictions import read_predictions

    predictor = load_predictor("latif_proposed", trained.folder)
    clean = read_predictions(trained.predictions).query("condition == 'clean'")
    store = AudioStore.from_index(trained.data["clean_index"])
    labels = predictor([store.read(u) for u in clean["utt_id"]])
    assert predictor.calls == 1 and predictor.samples == len(clean) and predictor.seconds["features"] > 0
    assert [("low", "mid", "high")[k] for k in labels] == clean["predicted"].tolist()
    assert predictor([]).shape == (0,)


def test_the_attack_job_imports_the_plugin_before_it_loads_the_predictor(trained):
    """A job process registers only the built-in families on import: the attack job's inputs import
    the config's plugins (as the model jobs do) before they ask the registry for the predictor."""
    from sernoise.attack.inputs import AttackInputs
    from sernoise.latif.family_job import LatifAttackPredictor

    for name in list(registered_models()):
        if name.startswith("latif_"):
            unregister_model(name)
    sys.modules.pop(PLUGIN, None)  # as in a fresh process
    files = [str(trained.folder / name) for name in get_model("ednn").model_files]  # the waveform families' files
    smk = SimpleNamespace(
        config=trained.config,
        threads=1,
        rule="run_attack",
        wildcards=SimpleNamespace(corpus=CORPUS, model="latif_proposed", fold="1", rep="1", task="activation"),
        input=SimpleNamespace(
            manifest=trained.data["manifest"],
            folds=trained.data["folds"],
            model=files,
            index=trained.data["clean_index"],
            banks=[],
            bank_audio=[],
        ),
        params=SimpleNamespace(
            seed=1, device="cpu", snr_reference="active", conditions={}, settings={"categories": {}}, banks=[]
        ),
    )
    inputs = AttackInputs.load(smk, logging.getLogger("test_latif_family"))
    assert isinstance(inputs.predictor, LatifAttackPredictor) and "latif_proposed" in registered_models()


def test_the_same_config_gives_the_same_bytes(families, tmp_path):
    import torch

    torch.set_num_threads(1)
    outputs = []
    for copy in ("a", "b"):
        root = tmp_path / copy
        root.mkdir()
        config = _config(root, models=["latif_cnn"])
        plan = build_plan(config, attack_defaults=None, perception_defaults={})
        folder, predictions = _train_and_predict(config, plan, root, _corpus(root), "latif_cnn", regime="clean")
        outputs.append(
            {name: (folder / name).read_bytes() for name in ("hparams.yaml", "curve.csv", "selection.csv")}
            | {"model": torch.load(folder / "model.pt", weights_only=True), "predictions": predictions.read_bytes()}
        )
    a, b = outputs
    assert a["predictions"] == b["predictions"] and a["curve.csv"] == b["curve.csv"]
    assert a["hparams.yaml"] == b["hparams.yaml"] and a["selection.csv"] == b["selection.csv"]
    assert a["model"].keys() == b["model"].keys() and {"mean", "std"} <= a["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_strategies_other_than_standard_and_mixup_are_refused(families, tmp_path):
    from sernoise.latif.family_job import settings_for
    from sernoise.training.artifacts import TrainingRun
    from sernoise.training.loop import TrainingError

    def run(strategy):
        config = _config(tmp_path, strategy=strategy)
        return TrainingRun.from_rule(
            SimpleNamespace(model="latif_cnn", fold="1", rep="1", task="activation"),
            SimpleNamespace(regime={"name": "clean", "kind": "clean"}, seed=1),
            config,
        )

    mixed = settings_for(run({"name": "mixup", "options": {"alpha": 0.4, "selection_metric": "loss"}}), TINY, "cpu")
    assert mixed.mixup and mixed.mixup_alpha == 0.4 and mixed.selection_metric == "loss" and mixed.max_epochs == 2
    with pytest.raises(TrainingError, match="select on"):
        settings_for(run({"name": "standard", "options": {"selection_metric": "f1_weighted"}}), TINY, "cpu")


def test_a_dry_run_plans_the_latif_jobs_in_the_workflow_regimes_and_the_attack(tmp_path):
    """``snakemake -n`` with the plugin listed and latif_proposed the trained model: a training and a
    prediction job per (regime, fold), an attack job per fold, Tables 3 and 5.  Nothing is read from the
    corpus or noise folders in a dry run, so empty ones do (the noise bank's must exist)."""
    import re

    from workflow_helpers import run_snakemake, tiny_training_overlay

    (tmp_path / "noise").mkdir()
    overlay = tiny_training_overlay(
        tmp_path / "ravdess", tmp_path / "noise", models=["latif_proposed"], regimes=["clean", "matched"]
    )
    overlay.update(plugins=[PLUGIN], latif=TINY, attack={"models": ["latif_proposed"], "max_utterances": 3, "runs": 2})
    proc = run_snakemake(
        tmp_path / "work",
        overlay,
        "-n",
        "results/ravdess/tables/table3.csv",
        "results/ravdess/tables/table5.csv",
        timeout=300,
    )
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^([a-z_0-9]+)\s+(\d+)$", proc.stdout, re.M)}
    assert counts["train_audio_model"] == 2 * N_FOLDS and counts["predict_audio_model"] == 2 * N_FOLDS
    assert counts["run_attack"] == N_FOLDS and counts["make_table3"] == counts["make_table5"] == 1
    assert "train_model" not in counts and "extract_clean_features" not in counts  # the waveform is what it reads
    assert "results/ravdess/models/latif_proposed/matched/fold1/rep1/activation/model.pt" in proc.stdout


def test_the_normalised_network_carries_its_statistics():
    import torch

    from sernoise.latif.models import Normalised, build_model

    net = build_model("cnn", 3, context=16, seed=0).eval()
    mean, std = torch.full((128,), 2.0), torch.full((128,), 4.0)
    model = Normalised(net, mean, std).eval()
    x = torch.randn(2, 16, 128)
    assert torch.allclose(model(x), net((x - 2.0) / 4.0)) and model.n_classes == 3 and model.context == 16
    assert {"mean", "std"} <= model.state_dict().keys()
    with pytest.raises(ValueError, match="128 means and positive stds"):
        Normalised(net, mean[:64], std[:64])
    with pytest.raises(ValueError, match="positive stds"):
        Normalised(net, mean, torch.zeros(128))
