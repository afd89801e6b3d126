"""Rule run_attack: Algorithm 1 on the fold's test utterances for one (model, rep, task, noise set, knowledge).

The attacked model is the ``attack.regime`` model of the fold and repetition; noise instances come
from the TEST noise pool.  Rows: sernoise.attack.runner.RESULT_COLUMNS, one per (utterance, run, budget).
"""

import time
from pathlib import Path

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from sernoise.attack.knowledge import degradation_order, read_knowledge
from sernoise.attack.models import load_predictor
from sernoise.attack.runner import AttackJob, run_job, select_utterances, usable_categories, write_results
from sernoise.audio_store import AudioStore
from sernoise.conditions import build_condition
from sernoise.conditions.pool import NoisePool
from sernoise.corpora.manifest import read_manifest
from sernoise.runlog import rule_log
from sernoise.training.data import labels_of, role_utterances
from sernoise.training.loop import resolve_device

with rule_log(snakemake) as log:
    wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
    settings = p.settings
    torch.set_num_threads(int(snakemake.threads))
    threadpool_limits(int(snakemake.threads))  # NumPy's BLAS too (filterbanks): no oversubscription
    start = time.perf_counter()
    manifest = read_manifest(inp.manifest)
    folds = pd.read_csv(inp.folds, dtype={"group": str})
    labels = labels_of(manifest, wc.task)
    test = [u for u in role_utterances(manifest, folds, int(wc.fold), "test") if u in labels]
    utts = select_utterances(test, settings["max_utterances"], p.seed, "test", wc.fold)
    log.info("fold %s: attacking %d of %d labelled test utterances", wc.fold, len(utts), len(test))

    pool = NoisePool(list(zip(p.banks, inp.banks, inp.bank_audio)), "test")
    built = {cid: build_condition(cid, spec) for cid, spec in p.conditions.items()}
    wanted = {c: [built[cid] for cid in settings["categories"][c]] for c in settings["noise_sets"][wc.noise_set]}
    categories, notes = usable_categories(wanted, pool)
    for note in notes:
        log.warning(note)
    if not categories:
        raise ValueError(f"noise set {wc.noise_set}: no category can be drawn from the test noise pool")
    order = None
    if wc.knowledge == "degradation":
        order = degradation_order(read_knowledge(inp.knowledge))
        log.info("degradation order (validation UAR drop): %s", " > ".join(order))
    job = AttackJob(noise_set=wc.noise_set, knowledge=wc.knowledge, categories=categories,
                    budgets=settings["budgets"], runs=settings["runs"], start_snr=settings["start_snr"],
                    seed=p.seed, batched=settings["batch"], knowledge_order=order)
    predictor = load_predictor(wc.model, Path(inp.model[0]).parent, resolve_device(p.device))
    store = AudioStore.from_index(inp.index)
    speakers = dict(zip(manifest["utt_id"].astype(str), manifest["speaker"].astype(str)))
    utterances = ((u, store.read(u), speakers.get(u, ""), labels[u]) for u in utts)
    meta = {"model": wc.model, "regime": settings["regime"], "fold": int(wc.fold), "rep": int(wc.rep), "task": wc.task}
    frame = run_job(job, predictor, utterances, noise=pool, meta=meta, log=log.info)
    write_results(frame, snakemake.output[0])
    direct = frame[~frame["derived"].astype(bool)]
    log.info("%d rows; success rate per budget: %s", len(frame),
             frame.groupby("budget")["success"].mean().round(3).to_dict())
    log.info("%d counted queries in %d model calls (%d samples computed); model %.1f s, features %.1f s, "
             "total %.1f s", int(direct["queries"].sum()), predictor.calls, predictor.samples,
             predictor.seconds["model"], predictor.seconds["features"], time.perf_counter() - start)
