"""Rule predict_ednn: one trained E-DNN on its fold's test-role utterances, clean and in every condition.

Same output format as predict_tdnn (sernoise.training.predict.PREDICTION_COLUMNS): condition, utt_id,
true, predicted, score_low, score_mid, score_high.  Conditions use their TEST-pool audio datasets
(only utterances with status ok are stored there).  The backbone folder must be the one the model
was trained on (its fingerprint is checked).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import time  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from sernoise.corpora.manifest import read_manifest  # noqa: E402
from sernoise.runlog import rule_log  # noqa: E402
from sernoise.training.data import CLEAN, labels_of, role_utterances  # noqa: E402
from sernoise.training.ednn import (  # noqa: E402
    check_backbone, load_ednn, open_store, predict_proba, read_utterances,
)
from sernoise.training.loop import resolve_device  # noqa: E402
from sernoise.training.predict import predictions_frame, write_predictions  # noqa: E402

with rule_log(snakemake) as log:
    wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
    torch.set_num_threads(int(snakemake.threads))
    device = resolve_device(p.device)
    hparams = yaml.safe_load(open(inp.hparams, encoding="utf-8"))
    model = load_ednn(inp.model, hparams, check_backbone(hparams), save_path=p.save_path, device=device)
    manifest = read_manifest(inp.manifest)
    folds = pd.read_csv(inp.folds, dtype={"group": str})
    labels = labels_of(manifest, wc.task)
    test = [u for u in role_utterances(manifest, folds, int(wc.fold), "test") if u in labels]
    log.info("fold %s: %d labelled test utterances; device %s", wc.fold, len(test), device)

    batch = int(p.ednn.get("eval_batch_size", p.ednn["batch_size"]))
    amp = bool(p.ednn.get("amp", True))
    frames = []
    for condition, index in [(CLEAN, inp.clean_index)] + list(zip(p.conditions, inp.indexes)):
        tick = time.perf_counter()
        store = open_store(index)
        utts = [u for u in test if u in store]
        if condition == CLEAN and len(utts) != len(test):
            raise ValueError(f"{index}: {len(test) - len(utts)} test utterance(s) have no clean audio")
        audio = read_utterances(store, utts)
        scores = predict_proba(model, [audio[u] for u in utts], batch_size=batch, device=device, amp=amp)
        frames.append(predictions_frame(condition, utts, [labels[u] for u in utts], scores))
        log.info("%s: %d utterances in %.1f s", condition, len(utts), time.perf_counter() - tick)
    table = write_predictions(frames, snakemake.output[0])
    log.info("%d predictions -> %s", len(table), snakemake.output[0])
