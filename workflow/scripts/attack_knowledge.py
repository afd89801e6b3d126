"""Rule attack_knowledge: UAR drop per attack noise category on the fold's VALIDATION role (the
attacker's optional knowledge; no test label is read).  See sernoise.attack.knowledge."""

import time
from pathlib import Path

import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from sernoise.attack.knowledge import measure_degradation, write_knowledge
from sernoise.attack.models import load_predictor
from sernoise.attack.runner import select_utterances, usable_categories
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
    val = [u for u in role_utterances(manifest, folds, int(wc.fold), "val") if u in labels]
    utts = select_utterances(val, settings["knowledge_utterances"], p.seed, "val", wc.fold)
    log.info("fold %s: %d of %d labelled validation utterances", wc.fold, len(utts), len(val))

    pool = NoisePool(list(zip(p.banks, inp.banks, inp.bank_audio)), "train")  # no test noise recording
    built = {cid: build_condition(cid, spec) for cid, spec in p.conditions.items()}
    wanted = {c: [built[cid] for cid in members] for c, members in settings["categories"].items()}
    categories, notes = usable_categories(wanted, pool)
    for note in notes:
        log.warning(note)
    predictor = load_predictor(wc.model, Path(inp.model[0]).parent, resolve_device(p.device))
    store = AudioStore.from_index(inp.index)
    speakers = dict(zip(manifest["utt_id"].astype(str), manifest["speaker"].astype(str)))
    frame = measure_degradation(predictor, ((u, store.read(u), speakers.get(u, "")) for u in utts), labels,
                                categories, noise=pool, seed=p.seed, perception=settings["perception"])
    unusable = sorted(set(settings["categories"]) - set(categories))  # no noise for them: ranked last
    if unusable:
        frame = pd.concat([frame, pd.DataFrame([
            {"category": c, "perception": settings["perception"][c], "conditions": "|".join(settings["categories"][c]),
             "n_utterances": 0, "n_skipped": len(utts), "uar_clean": float("nan"), "uar_noisy": float("nan"),
             "uar_drop": float("nan"), "rank": len(frame) + 1 + i} for i, c in enumerate(unusable)])], ignore_index=True)
    write_knowledge(frame, snakemake.output[0])
    log.info("degradation (UAR drop) per category:\n%s", frame.to_string(index=False))
    log.info("done in %.1f s (%d model calls)", time.perf_counter() - start, predictor.calls)
