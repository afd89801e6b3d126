"""One attack job: Algorithm 1 on every selected test utterance, ``runs`` times, for every budget.

Per (utterance, run):

1. one noise instance per category of the noise set (:func:`~sernoise.attack.perturb.draw_instance`,
   generator ``derive_seed(seed, "attack-instance", utt_id, run, category)``: the same instance
   of a category in every noise set, knowledge setting and budget, so that those settings are
   compared on the same noises); a category none of whose conditions applies to the utterance
   is left out of that run (``n_noises`` says how many were used);
2. the order: knowledge ``none``: a permutation drawn from
   ``derive_seed(seed, "attack-order", utt_id, run, noise_set)``; ``degradation``: by measured
   UAR drop (:func:`~sernoise.attack.knowledge.degradation_order`), the same for every run;
3. Algorithm 1 once with the largest budget (∞ when configured), batched as configured, and
   every smaller budget derived from its answers (:func:`~sernoise.attack.algorithm.derive`,
   identical to running that budget: tests/test_attack.py).

The reference (clean) labels come from one uncounted model call per chunk of utterances.

Several attacks of one job (:func:`run_jobs`: the noise sets and knowledge settings of a
``run_attack`` job) go through the utterances together, utterance by utterance, and share each
utterance's drawn instances: an instance depends on the utterance, the run and the category only
(step 1), and what it computes at a decrease (the rescaled noise, the searched knob, the Rubber
Band or SoX output at a strength) does not depend on which attack asked first, so every attack's
rows are those it gets alone (tests/test_attack.py), while the perturbations, most of them
external processes, are computed once per job instead of once per attack.  The cache lives for
one utterance, so a job's memory does not grow with the number of utterances.

Rows (``RESULT_COLUMNS``), one per (utterance, run, budget); ``derived`` marks the budgets
replayed from the largest one, whose row also carries ``model_calls`` and ``computed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sernoise.conditions.base import Condition, Context
from sernoise.io import read_csv_checked, write_csv_atomic
from sernoise.predictions import LABELS
from sernoise.seeds import derive_seed, rng_for

from .algorithm import AttackResult, algorithm1, check_budget, derive
from .perturb import NoiseInstance, draw_instance

KNOWLEDGE = ("none", "degradation")
RESULT_COLUMNS = [
    "model", "regime", "fold", "rep", "task", "noise_set", "knowledge", "utt_id", "run", "budget", "success",
    "queries", "queries_to_flip", "category", "condition", "noise_file", "decrease_db", "snr_target",
    "snr_measured", "knob_name", "knob", "reference", "label", "true", "n_noises", "order", "derived",
    "model_calls", "computed", "trace",
]

NUMERIC_COLUMNS = ["queries_to_flip", "decrease_db", "snr_target", "snr_measured", "knob", "model_calls", "computed"]


def budget_name(budget) -> str:
    budget = check_budget(budget)
    return "inf" if budget is None else str(budget)


def budget_sort_key(name) -> float:
    return float("inf") if str(name) == "inf" else float(name)


@dataclass
class AttackJob:
    """What one job attacks with (the rule's wildcards and params)."""

    noise_set: str
    knowledge: str
    categories: Mapping[str, list[Condition]]  # the noise set's categories, config order
    budgets: Sequence  # int or "inf"/None
    runs: int
    start_snr: float
    seed: int
    batched: bool = True
    knowledge_order: Sequence[str] | None = None  # degradation order (knowledge "degradation")

    def __post_init__(self):
        if self.knowledge not in KNOWLEDGE:
            raise ValueError(f"knowledge must be one of {KNOWLEDGE}, got {self.knowledge!r}")
        if self.knowledge == "degradation" and self.knowledge_order is None:
            raise ValueError("knowledge 'degradation' needs the measured degradation order")
        self.budgets = sorted({check_budget(b) for b in self.budgets}, key=lambda b: float("inf") if b is None else b)
        if not self.budgets:
            raise ValueError("no query budget given")

    @property
    def run_budget(self):
        """The largest budget: the one actually run (the others are derived from it)."""
        return self.budgets[-1]


def usable_categories(categories: Mapping[str, list[Condition]], noise=None, *, manifest: pd.DataFrame | None = None,
                      fillers=None) -> tuple[dict, list[str]]:
    """The categories with the conditions that ``noise`` (a pool) can feed, and notes on what was dropped.

    A condition needing recorded noise of a category the pool has no file of is left out, as is one
    needing word alignments or fillers that the corpus (``manifest``'s ``alignment`` column, the filler
    bank ``fillers``) does not have (:func:`sernoise.augment.unmet_requirement`); a category left
    without conditions is left out of the noise set (said in the notes).
    """
    from sernoise.augment import unmet_requirement

    usable, notes = {}, []
    for category, conditions in categories.items():
        kept = []
        for condition in conditions:
            if "noise" in condition.requires:
                wanted = getattr(condition, "category", None)
                if noise is None or not noise.files(wanted):
                    notes.append(f"category {category}: condition {condition.id} left out: no {wanted} noise in the pool")
                    continue
            if condition.requires & {"alignment", "fillers"}:
                reason = ("no manifest with alignments was given" if manifest is None
                          else unmet_requirement(condition, manifest, noise=noise, fillers=fillers))
                if reason:
                    notes.append(f"category {category}: condition {condition.id} left out: {reason}")
                    continue
            kept.append(condition)
        if kept:
            usable[category] = kept
        else:
            notes.append(f"category {category} left out: none of its conditions can be applied")
    return usable, notes


def utterance_context(utt_id: str, speaker: str, noise=None, context_for: Callable | None = None) -> Context:
    """What the conditions may know of the utterance: ``context_for(utt_id, speaker)`` when given (alignments,
    fillers: :meth:`sernoise.attack.inputs.RuleInputs.context`), else the speaker and the noise pool only."""
    return context_for(utt_id, speaker) if context_for is not None else Context(utt_id=utt_id, speaker=speaker,
                                                                                noise=noise)


def noise_instances(job: AttackJob, utt_id: str, x: np.ndarray, speaker: str, run: int, noise=None,
                    context_for: Callable | None = None,
                    shared: dict | None = None) -> tuple[list[NoiseInstance], list[str]]:
    """The run's instances in attack order, and the reasons of categories left out.

    ``shared``: instances already drawn for this utterance ``x`` by other attacks of the job (see the
    module docstring), keyed by everything a draw depends on; new draws are added to it.
    """
    context = None
    drawn, notes = {}, []
    for category, conditions in job.categories.items():
        key = (utt_id, run, category, tuple(c.id for c in conditions), job.seed, job.start_snr)
        if shared is not None and key in shared:
            instance, reasons = shared[key]
        else:
            if context is None:
                context = utterance_context(utt_id, speaker, noise, context_for)
            rng = rng_for(job.seed, "attack-instance", utt_id, run, category)
            instance, reasons = draw_instance(category, conditions, x, context, rng, job.start_snr)
            if shared is not None:
                shared[key] = (instance, reasons)
        if instance is None:
            notes.append(f"{utt_id} run {run}: no {category} instance ({'; '.join(reasons)})")
        else:
            drawn[category] = instance
    names = list(drawn)
    if job.knowledge == "none":
        order = np.random.default_rng(derive_seed(job.seed, "attack-order", utt_id, run, job.noise_set))
        names = [names[i] for i in order.permutation(len(names))]
    else:
        ranked = [c for c in job.knowledge_order if c in drawn]
        names = ranked + sorted(set(names) - set(ranked))
    return [drawn[n] for n in names], notes


def _row(result: AttackResult, instances: list[NoiseInstance], true: int, derived: bool, direct: AttackResult) -> dict:
    row = {
        "budget": "inf" if result.budget is None else str(result.budget),
        "success": bool(result.success),
        "queries": result.queries,
        "queries_to_flip": result.queries_to_flip if result.success else None,
        "reference": LABELS[int(result.reference)],
        "label": LABELS[int(result.label)] if result.success else "",
        "true": LABELS[int(true)],
        "n_noises": len(instances),
        "order": "|".join(i.category for i in instances),
        "derived": derived,
        "model_calls": None if derived else len(direct.calls),
        "computed": None if derived else direct.computed,
        "trace": " ".join(f"{instances[s.query.noise].category}@{s.query.decrease}:{LABELS[int(s.label)]}"
                          for s in result.steps),
    }
    if result.success:
        instance = instances[result.noise]
        level = instance.level(result.decrease)
        row.update(category=instance.category, condition=instance.condition, noise_file=instance.file,
                   decrease_db=result.decrease, snr_target=level["snr_target"], snr_measured=level["snr_measured"],
                   knob_name=level["knob_name"], knob=level["knob"])
    return row


def attack_utterance(job: AttackJob, predictor: Callable, utt_id: str, x: np.ndarray, speaker: str, true: int,
                     reference: int, noise=None, log: Callable[[str], None] | None = None,
                     context_for: Callable | None = None, shared: dict | None = None) -> list[dict]:
    """Rows of one utterance: every run × every budget (``shared``: see :func:`noise_instances`)."""
    rows = []
    for run in range(1, job.runs + 1):
        instances, notes = noise_instances(job, utt_id, x, speaker, run, noise, context_for, shared)
        for note in notes:
            if log:
                log(note)

        def ask(queries, instances=instances):
            return [int(v) for v in predictor([instances[q.noise].perturb(q.decrease) for q in queries])]

        direct = algorithm1(len(instances), int(reference), ask, job.run_budget, batched=job.batched,
                            fixed=[i.fixed for i in instances])
        for budget in job.budgets:
            result = direct if budget == job.run_budget else derive(direct, budget)
            row = {"utt_id": utt_id, "run": run}
            row.update(_row(result, instances, true, result is not direct, direct))
            rows.append(row)
    return rows


@dataclass
class AttackUsage:
    """What one attack of :func:`run_jobs` spent: wall seconds in its utterances (the instances it drew
    first included), and the predictor's calls and samples meanwhile (when the predictor counts them)."""

    seconds: float = 0.0
    calls: int = 0
    samples: int = 0


def run_job(job: AttackJob, predictor: Callable, utterances: Iterable[tuple[str, np.ndarray, str, int]], *,
            noise=None, meta: Mapping | None = None, chunk: int = 32, log: Callable[[str], None] | None = None,
            context_for: Callable | None = None) -> pd.DataFrame:
    """Attack every (utt_id, audio, speaker, true label) of ``utterances``; ``meta`` fills the job columns;
    ``context_for(utt_id, speaker)``: the conditions' context (alignments, fillers; default: noise pool only)."""
    frames, _ = run_jobs([job], predictor, utterances, noise=noise, metas=[meta], chunk=chunk, log=log,
                         contexts=[context_for])
    return frames[0]


def run_jobs(jobs: Sequence[AttackJob], predictor: Callable, utterances: Iterable[tuple[str, np.ndarray, str, int]],
             *, noise=None, metas: Sequence[Mapping | None] | None = None, chunk: int = 32,
             log: Callable[[str], None] | None = None,
             contexts: Sequence[Callable | None] | None = None) -> tuple[list[pd.DataFrame], list[AttackUsage]]:
    """Several attacks on the same utterances, utterance by utterance, sharing each utterance's drawn
    instances (module docstring): (one frame per job, as :func:`run_job` gives it alone; what each spent).
    One reference (clean) model call per chunk of utterances serves every job.  ``metas`` and
    ``contexts`` (each job's ``context_for`` of :func:`run_job`: a job whose categories insert fillers
    has the filler bank in its context, another may not) are given per job."""
    metas = list(metas) if metas is not None else [None] * len(jobs)
    contexts = list(contexts) if contexts is not None else [None] * len(jobs)
    for name, values in (("metas", metas), ("contexts", contexts)):
        if len(values) != len(jobs):
            raise ValueError(f"{len(jobs)} attacks but {len(values)} {name}")
    rows: list[list[dict]] = [[] for _ in jobs]
    usage = [AttackUsage() for _ in jobs]
    items = list(utterances)
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        references = [int(v) for v in predictor([x for _, x, _, _ in part])]  # the reference: not counted
        for (utt_id, x, speaker, true), reference in zip(part, references):
            shared: dict = {}  # this utterance's instances, for every job
            for job, job_rows, used, context_for in zip(jobs, rows, usage, contexts):
                calls, samples = getattr(predictor, "calls", 0), getattr(predictor, "samples", 0)
                tick = time.perf_counter()
                job_rows += attack_utterance(job, predictor, utt_id, x, speaker, true, reference, noise, log,
                                             context_for, shared)
                used.seconds += time.perf_counter() - tick
                used.calls += getattr(predictor, "calls", 0) - calls
                used.samples += getattr(predictor, "samples", 0) - samples
        if log:
            log(f"{min(start + chunk, len(items))}/{len(items)} utterances attacked")
    frames = []
    for job, job_rows, meta in zip(jobs, rows, metas):
        frame = pd.DataFrame(job_rows)
        for key, value in {"noise_set": job.noise_set, "knowledge": job.knowledge, **dict(meta or {})}.items():
            frame[key] = value
        frames.append(frame.reindex(columns=RESULT_COLUMNS))
    return frames, usage


def write_results(frame: pd.DataFrame, path) -> None:
    write_csv_atomic(frame, path, float_format="%.6g")


def read_results(path) -> pd.DataFrame:
    frame = read_csv_checked(path, RESULT_COLUMNS,
                             dtype={"utt_id": str, "budget": str, "category": str, "condition": str,
                                    "noise_file": str, "order": str, "trace": str, "noise_set": str,
                                    "knowledge": str, "model": str, "task": str, "regime": str},
                             keep_default_na=False, na_values={c: [""] for c in NUMERIC_COLUMNS})
    for column in ("success", "derived"):
        frame[column] = frame[column].astype(str).str.lower().eq("true")
    return frame


def select_utterances(utt_ids: Sequence[str], limit: int | None, seed: int, *parts) -> list[str]:
    """``utt_ids`` sorted, or a seeded subset of ``limit`` of them (sorted)."""
    ids = sorted(utt_ids)
    if limit is None or limit >= len(ids):
        return ids
    rng = rng_for(seed, "attack-utterances", *parts)
    return sorted(ids[i] for i in rng.permutation(len(ids))[:limit])
