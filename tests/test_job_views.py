"""sernoise.job_views: a job that trains or scores several runs hands each run to the family's entry point
as the one-run ``snakemake`` object the model registry's contract describes."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from sernoise.job_views import Files, prediction_views, run_each, training_views, write_dataset_list

FOLDER = "results/x/models/tdnn/clean/fold2/rep{rep}/{task}"


def _job(tmp_path, *, input, output, runs, conditions=("c1", "c2"), **wildcards):
    return SimpleNamespace(rule="r", config={"seed": 1}, threads=2, log=Files([str(tmp_path / "job.log")]),
                           wildcards=Files(corpus="x", model="tdnn", regime="clean", fold="2", **wildcards),
                           params=SimpleNamespace(runs=runs, conditions=list(conditions)),
                           input=input, output=output)


def _listing(tmp_path, conditions=("c1", "c2"), key="conditions"):
    path = tmp_path / "list.json"
    write_dataset_list(path, key, list(conditions), [f"f/{c}.h5" for c in conditions], log=tmp_path / "list.log")
    return str(path)


def _trained(rep):
    """The file of repetition ``rep``'s training job that a prediction job waits on."""
    return f"{FOLDER.format(rep=rep, task='a')}/model.pt"


def test_prediction_views_give_each_run_its_model_files_output_and_the_listed_datasets(tmp_path):
    runs = [{"rep": r, "task": t, "folder": FOLDER.format(rep=r, task=t), "trained": _trained(r)}
            for r in (1, 2) for t in ("a", "v")]
    models = [_trained(1), _trained(2)]  # one file per training job, not every model file
    outputs = [f"pred/rep{run['rep']}/{run['task']}.csv" for run in runs]
    job = _job(tmp_path, input=Files(manifest="m.csv", clean="clean.h5", datasets=_listing(tmp_path), models=models),
               output=Files(outputs), runs=runs)
    views = prediction_views(job, ("model.pt", "hparams.yaml"))
    assert [v.output[0] for _, v in views] == outputs
    run, view = views[3]
    assert (view.wildcards.rep, view.wildcards.task, view.wildcards.fold, view.wildcards.model) == ("2", "v", "2", "tdnn")
    assert view.input.model == f"{FOLDER.format(rep=2, task='v')}/model.pt"
    assert view.input.hparams == f"{FOLDER.format(rep=2, task='v')}/hparams.yaml"
    assert view.input.conditions == ["f/c1.h5", "f/c2.h5"] and view.input.clean == "clean.h5"
    assert not hasattr(view.input, "datasets") and not hasattr(view.input, "models") and len(view.log) == 0
    assert not hasattr(view.wildcards, "trained") and not hasattr(view.wildcards, "folder")


def test_a_run_whose_training_job_is_not_an_input_is_an_error_naming_it(tmp_path):
    runs = [{"rep": 1, "task": "a", "folder": "m/r1/a", "trained": "m/r1/a/model.pt"},
            {"rep": 2, "task": "a", "folder": "m/r2/a", "trained": "m/r2/a/model.pt"}]
    job = _job(tmp_path, input=Files(manifest="m.csv", models=["m/r1/a/model.pt"]), output=Files(["p.csv"] * 2),
               runs=runs)
    with pytest.raises(ValueError, match=r"m/r2/a/model.pt"):
        prediction_views(job, ("model.pt", "norm.npz"))
    with pytest.raises(ValueError, match="2 runs in params.runs but 1 output"):
        prediction_views(_job(tmp_path, input=Files(models=[]), output=Files(["p.csv"]), runs=runs), ("model.pt",))


def test_training_views_write_each_task_into_its_own_folder(tmp_path):
    names = ("model.pt", "hparams.yaml", "curve.csv", "curve.png")
    runs = [{"task": t, "folder": f"m/{t}"} for t in ("activation", "valence")]
    job = _job(tmp_path, input=Files(manifest="m.csv", datasets=_listing(tmp_path, key="indexes")),
               output=Files([f"m/{t}/{n}" for t in ("activation", "valence") for n in names]), runs=runs, rep="3")
    views = training_views(job, names)
    view = views[1][1]
    assert view.wildcards.task == "valence" and view.wildcards.rep == "3"
    assert (view.output.model, view.output.curve, view.output.curve_png) == ("m/valence/model.pt", "m/valence/curve.csv",
                                                                             "m/valence/curve.png")
    assert view.input.indexes == ["f/c1.h5", "f/c2.h5"] and view.params.conditions == ["c1", "c2"]
    with pytest.raises(ValueError, match="m/activation/norm.npz"):
        training_views(job, ("model.pt", "norm.npz"))


def test_a_dataset_list_of_other_conditions_is_an_error_naming_it(tmp_path):
    listing = _listing(tmp_path, conditions=("c2", "c1"))
    assert json.loads(open(listing).read())["datasets"][0] == {"condition": "c2", "file": "f/c2.h5"}
    job = _job(tmp_path, input=Files(datasets=listing), output=Files(["m/a/model.pt"]),
               runs=[{"task": "a", "folder": "m/a"}], rep="1")
    with pytest.raises(ValueError, match="list.json lists conditions"):
        training_views(job, ("model.pt",))
    with pytest.raises(ValueError, match="2 conditions but 1 dataset files"):
        write_dataset_list(tmp_path / "bad.json", "conditions", ["a", "b"], ["f"])


def test_run_each_calls_the_entry_point_per_run_in_order(tmp_path, caplog):
    runs = [{"task": t, "folder": f"m/{t}"} for t in ("a", "v")]
    job = _job(tmp_path, input=Files(manifest="m.csv"), output=Files(["m/a/model.pt", "m/v/model.pt"]), runs=runs, rep="1")
    seen = []
    with caplog.at_level(logging.INFO):
        run_each(job, training_views(job, ("model.pt",)), lambda view: seen.append(view.output.model),
                 logging.getLogger("test"))
    assert seen == ["m/a/model.pt", "m/v/model.pt"]
    assert "[2/2] tdnn clean fold 2 rep 1 task v" in caplog.text
