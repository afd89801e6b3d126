"""Rule attack_knowledge: UAR drop per attack noise category on the fold's VALIDATION role (the
attacker's optional knowledge; no test label is read).  See sernoise.attack.knowledge."""

import time

import pandas as pd

from sernoise.attack.inputs import load_inputs
from sernoise.attack.knowledge import measure_degradation, write_knowledge
from sernoise.perception.partition import attack_settings_under_partition, optional_partition
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    wc = snakemake.wildcards
    # each category's perception class (a column of knowledge.csv) under the perception partition
    settings = attack_settings_under_partition(snakemake.params.settings,
                                               optional_partition(getattr(snakemake.input, "partition", None)))
    start = time.perf_counter()
    # train-pool noise only: no test noise recording
    data = load_inputs(snakemake, log, role="val", limit=settings["knowledge_utterances"], noise_pool="train",
                       categories=settings["categories"])
    utts = data.utts
    log.info("fold %s: %d of %d labelled validation utterances", wc.fold, len(utts), len(data.candidates))
    frame = measure_degradation(data.predictor, data.samples(), data.labels, data.categories, noise=data.pool,
                                context_for=data.context,
                                seed=snakemake.params.seed, perception=settings["perception"])
    unusable = sorted(set(settings["categories"]) - set(data.categories))  # no noise for them: ranked last
    if unusable:
        frame = pd.concat([frame, pd.DataFrame([
            {"category": c, "perception": settings["perception"][c], "conditions": "|".join(settings["categories"][c]),
             "n_utterances": 0, "n_skipped": len(utts), "uar_clean": float("nan"), "uar_noisy": float("nan"),
             "uar_drop": float("nan"), "rank": len(frame) + 1 + i} for i, c in enumerate(unusable)])], ignore_index=True)
    write_knowledge(frame, snakemake.output[0])
    log.info("degradation (UAR drop) per category:\n%s", frame.to_string(index=False))
    log.info("done in %.1f s (%d model calls)", time.perf_counter() - start, data.predictor.calls)
