"""Rule run_attack: Algorithm 1 on the fold's test utterances for one (model, rep, task, noise set, knowledge).

The attacked model is the ``attack.regime`` model of the fold and repetition; noise instances come
from the TEST noise pool.  Rows: sernoise.attack.runner.RESULT_COLUMNS, one per (utterance, run, budget).
"""

import time

from sernoise.attack.inputs import load_inputs
from sernoise.attack.knowledge import degradation_order, read_knowledge
from sernoise.attack.runner import AttackJob, run_job, write_results
from sernoise.perception.partition import attack_settings_under_partition, optional_partition
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    wc, p = snakemake.wildcards, snakemake.params
    # the perception partition decides which categories a `retaining` noise set holds
    settings = attack_settings_under_partition(p.settings, optional_partition(getattr(snakemake.input, "partition", None)))
    start = time.perf_counter()
    data = load_inputs(snakemake, log, role="test", limit=settings["max_utterances"], noise_pool="test",
                       categories=settings["noise_sets"][wc.noise_set])
    log.info("fold %s: attacking %d of %d labelled test utterances", wc.fold, len(data.utts), len(data.candidates))
    if not data.categories:
        raise ValueError(f"noise set {wc.noise_set}: no category can be drawn from the test noise pool")
    order = None
    if wc.knowledge == "degradation":
        order = degradation_order(read_knowledge(snakemake.input.knowledge))
        log.info("degradation order (validation UAR drop): %s", " > ".join(order))
    job = AttackJob(noise_set=wc.noise_set, knowledge=wc.knowledge, categories=data.categories,
                    budgets=settings["budgets"], runs=settings["runs"], start_snr=settings["start_snr"],
                    seed=p.seed, batched=settings["batch"], knowledge_order=order)
    predictor = data.predictor
    utterances = ((u, x, speaker, data.labels[u]) for u, x, speaker in data.samples())
    meta = {"model": wc.model, "regime": settings["regime"], "fold": int(wc.fold), "rep": int(wc.rep), "task": wc.task}
    frame = run_job(job, predictor, utterances, noise=data.pool, meta=meta, log=log.info, context_for=data.context)
    write_results(frame, snakemake.output[0])
    direct = frame[~frame["derived"].astype(bool)]
    log.info("%d rows; success rate per budget: %s", len(frame),
             frame.groupby("budget")["success"].mean().round(3).to_dict())
    log.info("%d counted queries in %d model calls (%d samples computed); model %.1f s, features %.1f s, "
             "total %.1f s", int(direct["queries"].sum()), predictor.calls, predictor.samples,
             predictor.seconds["model"], predictor.seconds["features"], time.perf_counter() - start)
