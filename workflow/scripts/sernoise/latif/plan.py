"""What the Latif stage builds (rules/latif.smk), resolved from the validated config.

Pure Python (no torch): the Snakefile's process imports it.  Every problem is a
:class:`sernoise.plan.PlanError` naming the config key.

Runs:

* within-corpus, one per (model, augmentation, fold, repetition): leave-one-speaker-out folds of
  the main corpus (``results/{corpus}/latif/folds.csv``); each run trains on clean (and, per
  augmentation, speed-perturbed) segments and scores its test speaker clean, in noise at each SNR
  and under FGSM and BIM (Tables 1-3);
* cross-corpus, one per (model, augmentation, repetition) when ``latif.cross_corpus.target`` is set:
  trained on every labelled utterance of the main corpus, selected on a seeded 30 % of the target
  corpus and tested on the other 70 % (Figure 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from sernoise.plan import PlanError, results

# Model names of sernoise.latif.models (kept here too so that parsing the Snakefile imports no torch;
# tests/test_latif_plan.py checks that both lists agree).
MODELS = ("proposed", "densenet", "densenet_lstm", "cnn_lstm", "cnn")
# The paper's four training settings: (speed perturbation, mixup).
AUGMENTATIONS = {"none": (False, False), "speed": (True, False), "mixup": (False, True),
                 "speed_mixup": (True, True)}
AUGMENTATION_LABELS = {"none": "no augmentation", "speed": "speed perturbation", "mixup": "mixup",
                       "speed_mixup": "speed perturbation+mixup"}
ATTACKS = ("fgsm", "bim")
# Segment sets per audio shard: the clean log spectrograms, the speed-perturbed copies, the noisy test copies.
SEGMENT_SETS = ("clean", "speed", "noisy")
RUN_FILES = ("model.pt", "norm.npz", "hparams.yaml", "history.csv", "predictions.csv")


@dataclass(frozen=True)
class LatifPlan:
    enabled: bool
    models: list
    augmentations: list
    folds: list  # fold numbers run (leave-one-speaker-out folds: one per speaker, n_folds in all)
    n_folds: int
    reps: list
    target: str | None  # cross-corpus target corpus (None: no cross-corpus runs)

    def run_folder(self, corpus: str, model: str, augmentation: str, fold: int, rep: int) -> str:
        return results(corpus, "latif", "runs", model, augmentation, f"fold{fold}", f"rep{rep}")

    def cross_folder(self, corpus: str, model: str, augmentation: str, rep: int) -> str:
        return results(corpus, "latif", "cross", self.target, model, augmentation, f"rep{rep}")

    def run_files(self, corpus: str, name: str) -> list[str]:
        """``name`` (predictions.csv, history.csv...) of every within-corpus run, in table order."""
        return [f"{self.run_folder(corpus, m, a, f, r)}/{name}"
                for m in self.models for a in self.augmentations for f in self.folds for r in self.reps]

    def cross_files(self, corpus: str, name: str) -> list[str]:
        if self.target is None:
            return []
        return [f"{self.cross_folder(corpus, m, a, r)}/{name}"
                for m in self.models for a in self.augmentations for r in self.reps]

    def outputs(self, corpus: str) -> list[str]:
        """The stage's tables and figure (the target `latif`)."""
        tables = [results(corpus, "tables", f"latif_{name}.{ext}")
                  for name in ("table1", "table2", "table3") for ext in ("csv", "md", "tex")]
        if self.target is not None:
            tables += [results(corpus, "tables", f"latif_cross_corpus.{ext}") for ext in ("csv", "md", "tex")]
            tables.append(results(corpus, "latif", "cross_corpus.png"))
        return tables

    def targets(self, corpus: str) -> list[str]:
        """What `all` builds: the outputs when ``latif.enabled``."""
        return self.outputs(corpus) if self.enabled else []


def build_latif_plan(config: dict) -> LatifPlan:
    section = config["latif"]
    unknown = [m for m in section["models"] if m not in MODELS]
    if unknown:
        raise PlanError(f"config key latif.models: unknown {unknown}; known: {list(MODELS)}")
    unknown = [a for a in section["augmentations"] if a not in AUGMENTATIONS]
    if unknown:
        raise PlanError(f"config key latif.augmentations: unknown {unknown}; known: {list(AUGMENTATIONS)}")
    n_folds = int(section["n_folds"])
    folds = list(range(1, n_folds + 1)) if section["run_folds"] is None else [int(f) for f in section["run_folds"]]
    outside = [f for f in folds if not 1 <= f <= n_folds]
    if outside:
        raise PlanError(f"config key latif.run_folds: {outside} outside 1..{n_folds} (latif.n_folds: one fold per "
                        "speaker)")
    task = section["task"]
    tasks = config.get("tasks") or {}
    if task in tasks and tasks[task].get("kind") != "categorical":
        raise PlanError(f"config key latif.task: {task!r} is {tasks[task].get('kind')!r}; the stage needs a "
                        "categorical task (UAR)")
    target = (section.get("cross_corpus") or {}).get("target")
    if target is not None:
        if target not in config["corpora"]:
            raise PlanError(f"config key latif.cross_corpus.target: {target!r} is not in corpora "
                            f"{sorted(config['corpora'])}")
        if target == config["corpus"]:
            raise PlanError(f"config key latif.cross_corpus.target: {target!r} is the training corpus (corpus); "
                            "cross-corpus needs another one")
    if section["speed_factors"] and any(f <= 0 or f == 1 for f in section["speed_factors"]):
        raise PlanError(f"config key latif.speed_factors: factors must be > 0 and != 1, got "
                        f"{section['speed_factors']}")
    return LatifPlan(enabled=bool(section["enabled"]), models=list(section["models"]),
                     augmentations=list(section["augmentations"]), folds=folds, n_folds=n_folds,
                     reps=list(range(1, int(section["repetitions"]) + 1)), target=target)
