"""Rule run_attack: every attack of one (model, fold, repetition, task), the knowledge step first.

Steps:

1. knowledge (when a knowledge setting is ``degradation``): the UAR drop per attack noise category on
   the fold's VALIDATION role, with TRAIN-pool noise (the attacker's optional knowledge; no test label
   is read; see sernoise.attack.knowledge) -> ``knowledge.csv``, written when done;
2. Algorithm 1 on the fold's test utterances for each (noise set, knowledge) of ``params.runs``, with
   TEST-pool noise -> ``{noise_set}-{knowledge}.csv``; rows: sernoise.attack.runner.RESULT_COLUMNS, one
   per (utterance, run, budget).  The attacks go through the utterances together, utterance by
   utterance, and draw each noise instance once for all of them
   (sernoise.attack.runner.run_jobs: the same rows as one attack at a time, the Rubber Band and SoX
   perturbations computed once per job instead of once per attack); each file is written at the end.

The attacked model is the ``attack.regime`` model of the fold and repetition.  The predictor, the
manifest, the clean audio, the noise pools and the filler bank are loaded once for all steps
(sernoise.attack.inputs.AttackInputs); every seed comes from ``params.seed`` and the step's own
names (utterance, run, category, noise set), so each output is the one a job of its own would write.
"""

import time
from pathlib import Path

import pandas as pd

from sernoise.attack.inputs import AttackInputs
from sernoise.attack.knowledge import degradation_order, measure_degradation, read_knowledge, write_knowledge
from sernoise.attack.runner import AttackJob, run_jobs, write_results
from sernoise.perception.partition import attack_settings_under_partition, optional_partition
from sernoise.runlog import rule_log


def usage(predictor, start: float) -> str:
    """The predictor's counts since the step began (AttackInputs.step sets them to zero)."""
    return (f"{predictor.calls} model calls ({predictor.samples} samples computed); model "
            f"{predictor.seconds['model']:.1f} s, features {predictor.seconds['features']:.1f} s, "
            f"step {time.perf_counter() - start:.1f} s")


def measure_knowledge(inputs: AttackInputs, settings: dict, seed: int, log) -> pd.DataFrame:
    """knowledge.csv's rows: the validation UAR drop per category, categories without noise ranked last."""
    # train-pool noise only: no test noise recording
    data = inputs.step(role="val", limit=settings["knowledge_utterances"], noise_pool="train",
                       categories=settings["categories"])
    log.info("fold %s: %d of %d labelled validation utterances", inputs.fold, len(data.utts), len(data.candidates))
    frame = measure_degradation(data.predictor, data.samples(), data.labels, data.categories, noise=data.pool,
                                context_for=data.context, seed=seed, perception=settings["perception"])
    unusable = sorted(set(settings["categories"]) - set(data.categories))  # no noise for them: ranked last
    if unusable:
        frame = pd.concat([frame, pd.DataFrame([
            {"category": c, "perception": settings["perception"][c], "conditions": "|".join(settings["categories"][c]),
             "n_utterances": 0, "n_skipped": len(data.utts), "uar_clean": float("nan"), "uar_noisy": float("nan"),
             "uar_drop": float("nan"), "rank": len(frame) + 1 + i} for i, c in enumerate(unusable)])], ignore_index=True)
    return frame


def attacks(inputs: AttackInputs, settings: dict, runs: list[tuple[str, str]], order, meta: dict, seed: int,
            log) -> list[pd.DataFrame]:
    """The rows of each (noise set, knowledge) attack of ``runs`` on the fold's test utterances."""
    jobs, contexts, data = [], [], None
    for noise_set, knowledge in runs:
        data = inputs.step(role="test", limit=settings["max_utterances"], noise_pool="test",
                           categories=settings["noise_sets"][noise_set])
        if not data.categories:
            raise ValueError(f"noise set {noise_set}: no category can be drawn from the test noise pool")
        contexts.append(data.context)  # with the filler bank when this noise set inserts fillers
        jobs.append(AttackJob(noise_set=noise_set, knowledge=knowledge, categories=data.categories,
                              budgets=settings["budgets"], runs=settings["runs"], start_snr=settings["start_snr"],
                              seed=seed, batched=settings["batch"],
                              knowledge_order=order if knowledge == "degradation" else None))
    # every step selects the same utterances (seeded by role and fold) and reads the same noise pool
    log.info("fold %s: %d attacks on %d of %d labelled test utterances", inputs.fold, len(jobs), len(data.utts),
             len(data.candidates))
    utterances = ((u, x, speaker, data.labels[u]) for u, x, speaker in data.samples())
    start, calls = time.perf_counter(), data.predictor.calls
    frames, usage = run_jobs(jobs, data.predictor, utterances, noise=data.pool, metas=[meta] * len(jobs),
                             log=log.info, contexts=contexts)
    log.info("%d attacks done in %.1f s: %d model calls, %d of them for the clean references",
             len(jobs), time.perf_counter() - start, data.predictor.calls - calls,
             data.predictor.calls - calls - sum(u.calls for u in usage))
    for (noise_set, knowledge), frame, used in zip(runs, frames, usage):
        direct = frame[~frame["derived"].astype(bool)]
        log.info("%s-%s: %d rows; success rate per budget: %s; %d counted queries in %d model calls (%d samples "
                 "computed), %.1f s (instances another attack drew first are not counted here)",
                 noise_set, knowledge, len(frame), frame.groupby("budget")["success"].mean().round(3).to_dict(),
                 int(direct["queries"].sum()), used.calls, used.samples, used.seconds)
    return frames


with rule_log(snakemake) as log:
    wc, p, out = snakemake.wildcards, snakemake.params, snakemake.output
    # the perception partition decides which categories a `retaining` noise set holds, and each
    # category's perception class (a column of knowledge.csv)
    settings = attack_settings_under_partition(p.settings, optional_partition(getattr(snakemake.input, "partition", None)))
    runs = [tuple(run) for run in p.runs]
    results = list(out.results)
    names = [Path(path).name for path in results]
    if names != [f"{noise_set}-{knowledge}.csv" for noise_set, knowledge in runs]:
        raise ValueError(f"run_attack: outputs {names} do not match the runs {runs}")
    knowledge_csv = getattr(out, "knowledge", None)
    if any(knowledge == "degradation" for _, knowledge in runs) and not knowledge_csv:
        raise ValueError("run_attack: knowledge 'degradation' needs the knowledge.csv output")
    job_start = time.perf_counter()
    inputs = AttackInputs.load(snakemake, log)
    predictor = inputs.predictor
    log.info("%s fold %s rep %s %s: model, manifest and audio loaded in %.1f s; %d attacks%s", wc.model, wc.fold,
             wc.rep, wc.task, time.perf_counter() - job_start, len(runs), " after the knowledge" if knowledge_csv else "")
    total_calls = 0

    order = None
    if knowledge_csv:
        log.info("== knowledge: degradation per category on the validation role (train noise pool) ==")
        start = time.perf_counter()
        frame = measure_knowledge(inputs, settings, p.seed, log)
        write_knowledge(frame, knowledge_csv)
        log.info("degradation (UAR drop) per category:\n%s", frame.to_string(index=False))
        log.info("knowledge done: %s", usage(predictor, start))
        total_calls += predictor.calls
        inputs.release_pool("train")  # the attacks draw from the test pool only
        # the order as the written file gives it (the attacks of a separate job read it so)
        order = degradation_order(read_knowledge(knowledge_csv))
        log.info("degradation order (validation UAR drop): %s", " > ".join(order))

    meta = {"model": wc.model, "regime": settings["regime"], "fold": int(wc.fold), "rep": int(wc.rep), "task": wc.task}
    log.info("== attacks: %s ==", ", ".join(f"{noise_set}-{knowledge}" for noise_set, knowledge in runs))
    for frame, path in zip(attacks(inputs, settings, runs, order, meta, p.seed, log), results):
        write_results(frame, path)
    total_calls += predictor.calls
    log.info("job done in %.1f s: %d model calls in all", time.perf_counter() - job_start, total_calls)
