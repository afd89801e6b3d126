"""What the CTSL stage builds (rules/ctsl.smk), resolved from the validated config and the workflow plan.

Pure Python (no torch): the Snakefile's process imports it.  Every problem is a
:class:`sernoise.plan.PlanError` naming the config key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sernoise.ctsl.strategies import VARIANTS
from sernoise.plan import Plan, PlanError, results

CLEAN_REGIME = "clean"
# The inputs the adaptation job builds from the mixed waveform (sernoise.ctsl.adapt): T-DNN filterbanks
# normalised with the teacher's statistics, or the waveform itself (E-DNN).  Families on denoised audio
# would need the noisy copies denoised every epoch: not supported.
SUPPORTED_FEATURES = ("fbank40",)


@dataclass(frozen=True)
class CtslPlan:
    models: list
    tasks: list
    strategies: list
    folds: list
    reps: list
    enabled: bool
    # Why the section cannot be built, when it is off: other configurations (a NR-only overlay whose
    # training.models lacks the teacher) must still run; asking for the CTSL tables raises it.
    problem: str | None = None

    def run_folder(self, corpus, model, strategy, fold, rep, task) -> str:
        return results(corpus, "ctsl", model, strategy, f"fold{fold}", f"rep{rep}", task)

    def run_files(self, corpus: str, name: str) -> list[str]:
        """``name`` (scores.csv, embeddings.csv...) of every adaptation of ``corpus``, in table order."""
        if self.problem:
            raise PlanError(self.problem)
        return [f"{self.run_folder(corpus, m, s, f, r, t)}/{name}"
                for m in self.models for t in self.tasks for s in self.strategies for f in self.folds
                for r in self.reps]

    def table(self, corpus: str, ext: str, name: str = "ctsl") -> str:
        return results(corpus, "tables", f"{name}.{ext}")

    def targets(self, corpus: str) -> list[str]:
        """What `all` builds: the tables when ``ctsl.enabled``."""
        if not self.enabled:
            return []
        return [self.table(corpus, e) for e in ("csv", "md", "tex")] + \
            [self.table(corpus, e, "ctsl_embeddings") for e in ("csv", "md")]


def build_ctsl_plan(config: dict, plan: Plan) -> CtslPlan:
    """The stage's plan; a config problem raises when ``ctsl.enabled``, else waits until the tables are asked for."""
    section = config["ctsl"]
    try:
        _check_section(section, plan)
    except PlanError as error:
        if section["enabled"]:
            raise
        return CtslPlan(models=[], tasks=[], strategies=list(section["strategies"]), folds=list(plan.folds),
                        reps=list(plan.reps), enabled=False, problem=str(error))
    return CtslPlan(models=list(section["models"]), tasks=list(section["tasks"]),
                    strategies=list(section["strategies"]), folds=list(plan.folds), reps=list(plan.reps),
                    enabled=bool(section["enabled"]))


def _check_section(section: dict, plan: Plan) -> None:
    for model in section["models"]:
        if model not in plan.models:
            raise PlanError(f"config key ctsl.models: {model!r} is not in training.models {list(plan.models)} "
                            "(the teacher is its clean-regime training)")
        family = plan.models[model]
        if not family.embedding:
            raise PlanError(f"config key ctsl.models: {model!r} exposes no utterance embedding (model registry)")
        if family.audio != "raw" or (family.input == "features" and family.feature not in SUPPORTED_FEATURES):
            raise PlanError(f"config key ctsl.models: {model!r} is not supported; the CTSL stage adapts models on "
                            "the raw waveform or its 40-d filterbanks (T-DNN, E-DNN families), not on denoised audio")
        if CLEAN_REGIME not in plan.model_regimes.get(model, []):
            raise PlanError(f"config key ctsl.models: {model!r} is not trained in the clean regime "
                            f"(training.regimes / training.model_regimes): it has no teacher")
    for task in section["tasks"]:
        if task not in plan.tasks:
            raise PlanError(f"config key ctsl.tasks: {task!r} is not in training.tasks {list(plan.tasks)}")
    unknown = [s for s in section["strategies"] if s not in VARIANTS]
    if unknown:
        raise PlanError(f"config key ctsl.strategies: unknown {unknown}; known: {list(VARIANTS)}")
