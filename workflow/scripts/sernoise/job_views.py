"""One rule job, several runs: the per-run ``snakemake`` objects a family's entry point expects.

The model registry's entry points (``train`` and ``predict`` of a
:class:`sernoise.model_registry.ModelFamily`) take the ``snakemake`` object of a job that handles ONE
(model, regime, fold, repetition, task).  The rules group runs instead (issue 16: a job per run made
the paper-scale DAG too large for a shared cluster and its dry run slow): ``train_model`` trains every
task of a (model, regime, fold, repetition), ``predict_model`` scores every (repetition, task) of a
(model, regime, fold).  Each run reaches the entry point as a view that looks like the one-run object:
the run's wildcards, its model folder's files as named inputs or outputs beside the job's shared
inputs, and no log of its own (the job's log, opened once by :func:`sernoise.runlog.rule_log`,
receives every run's lines).  The runs come from the rule's ``params.runs`` (rules/common.smk): one
``{"folder", <wildcard>: value, ...}`` each, in the order of the job's outputs; a prediction run also
names (``"trained"``) the file of its training job that the prediction job waits on.  A prediction job
declares one such file per training job, not every model file: one training job writes all of its
files, so waiting on one waits on all, and the paper-scale DAG keeps ~4,000 fewer edges (issue 16).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace


class Files(list):
    """A list of paths whose named entries are also attributes, like Snakemake's ``input``/``output``."""

    def __init__(self, items=(), **named):
        super().__init__([*items, *named.values()])
        self._names = list(named)
        for key, value in named.items():
            setattr(self, key, value)

    def keys(self):
        return list(self._names)


def file_key(name: str) -> str:
    """The attribute a model-folder file goes by (model.pt -> model; curve.png -> curve_png, beside curve.csv)."""
    return "curve_png" if name == "curve.png" else Path(name).stem


def _named(files) -> dict:
    """The named entries of a Snakemake Namedlist (or of :class:`Files`)."""
    return {key: getattr(files, key) for key in files.keys()}


def write_dataset_list(path, key: str, conditions, files, *, log=None) -> None:
    """Rule list_datasets: the (condition, file) datasets a model job reads, and the name of the input
    (``conditions``: feature archives, ``indexes``: audio indexes) its views give them to the family."""
    if len(conditions) != len(files):
        raise ValueError(f"{path}: {len(conditions)} conditions but {len(files)} dataset files")
    listing = {"input": key, "datasets": [{"condition": c, "file": str(f)} for c, f in zip(conditions, files)]}
    Path(path).write_text(json.dumps(listing, indent=1) + "\n", encoding="utf-8")
    if log:
        Path(log).write_text(f"{len(files)} datasets -> {path}\n", encoding="utf-8")


def _dataset_inputs(smk) -> dict:
    """The job's named inputs with its dataset list (input ``datasets``) replaced by what it lists: the
    input a one-run job had (``conditions`` or ``indexes``), in the order of ``params.conditions``."""
    shared = _named(smk.input)
    path = shared.pop("datasets", None)
    if path is None:
        return shared
    listing = json.loads(Path(path).read_text(encoding="utf-8"))
    listed = [d["condition"] for d in listing["datasets"]]
    if listed != list(smk.params.conditions):
        raise ValueError(f"{path} lists conditions {listed}, rule {smk.rule} expects {list(smk.params.conditions)}: "
                         "delete the list and rerun Snakemake")
    shared[listing["input"]] = [d["file"] for d in listing["datasets"]]
    return shared


def _folder_files(run: dict, names) -> dict:
    """The run's model folder files ``names`` by attribute."""
    return {file_key(name): f"{run['folder']}/{name}" for name in names}


def _output_files(run: dict, names, declared, rule: str) -> dict:
    """The run's model folder files ``names``, each of which must be one of the job's outputs ``declared``."""
    files = _folder_files(run, names)
    missing = sorted(path for path in files.values() if path not in declared)
    if missing:
        raise ValueError(f"rule {rule}: model outputs {missing} are not outputs of this job")
    return files


# keys of a run that are not wildcards of its view
_RUN_FILES = ("folder", "trained")


def _view(smk, run: dict, input: Files, output: Files) -> SimpleNamespace:
    extra = {key: str(value) for key, value in run.items() if key not in _RUN_FILES}
    wildcards = SimpleNamespace(**{**_named(smk.wildcards), **extra})
    return SimpleNamespace(rule=smk.rule, config=smk.config, params=smk.params, threads=smk.threads,
                           wildcards=wildcards, input=input, output=output, log=Files())


def training_views(smk, model_outputs) -> list[tuple[dict, SimpleNamespace]]:
    """(run, view) for each run of a ``train_*_model`` job: the view's outputs are the run's model folder
    files ``model_outputs`` (the family's file names), which must be outputs of the job."""
    declared = set(smk.output)
    shared = Files(**_dataset_inputs(smk))
    return [(run, _view(smk, run, shared, Files(**_output_files(run, model_outputs, declared, smk.rule))))
            for run in smk.params.runs]


def prediction_views(smk, model_files) -> list[tuple[dict, SimpleNamespace]]:
    """(run, view) for each run of a ``predict_*_model`` job, in the order of its outputs: the view's
    inputs are the job's data inputs plus the run's model folder files ``model_files``, its output the
    job's output file of the same position.  The run's ``trained`` file (a file its training job writes)
    must be among the job's ``models`` input, so that a view never reads a model Snakemake did not wait
    for."""
    runs = list(smk.params.runs)
    if len(runs) != len(smk.output):
        raise ValueError(f"rule {smk.rule}: {len(runs)} runs in params.runs but {len(smk.output)} output files")
    shared = {key: value for key, value in _dataset_inputs(smk).items() if key != "models"}
    declared = set(getattr(smk.input, "models", []))
    unwaited = sorted({run.get("trained", run["folder"]) for run in runs} - declared)
    if unwaited:
        raise ValueError(f"rule {smk.rule}: the models of {unwaited} are read but no file of their training job "
                         "is an input (params.runs' 'trained' must be among input 'models')")
    return [(run, _view(smk, run, Files(**shared, **_folder_files(run, model_files)),
                        Files([output])))
            for run, output in zip(runs, smk.output)]


def run_each(smk, views, entry, log) -> None:
    """Call the entry point ``entry`` on each (run, view), logging which run and how long it took."""
    wc = smk.wildcards
    for i, (_, view) in enumerate(views, 1):
        tick = time.perf_counter()
        log.info("[%d/%d] %s %s fold %s rep %s task %s", i, len(views), wc.model, wc.regime, wc.fold,
                 view.wildcards.rep, view.wildcards.task)
        entry(view)
        log.info("[%d/%d] done in %.1f s", i, len(views), time.perf_counter() - tick)
