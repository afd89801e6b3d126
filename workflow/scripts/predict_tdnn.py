"""Rule predict_tdnn: one trained T-DNN on its fold's test-role utterances, clean and in every condition.

Output columns: condition ("clean" or the condition id), utt_id, true, predicted, score_low,
score_mid, score_high (sernoise.training.predict.PREDICTION_COLUMNS).  Conditions use their
TEST-pool datasets; only utterances with status ok are in those feature archives.
"""

import time

import pandas as pd
import torch

from sernoise.corpora.manifest import read_manifest
from sernoise.runlog import rule_log
from sernoise.training.data import CLEAN, archive_utterances, labels_of, read_archive, role_utterances
from sernoise.training.loop import resolve_device
from sernoise.training.predict import load_model, predict_features, predictions_frame, write_predictions

with rule_log(snakemake) as log:
    wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
    torch.set_num_threads(int(snakemake.threads))
    device = resolve_device(p.device)
    model = load_model(inp.model, inp.hparams, device=device)
    manifest = read_manifest(inp.manifest)
    folds = pd.read_csv(inp.folds, dtype={"group": str})
    labels = labels_of(manifest, wc.task)
    test = [u for u in role_utterances(manifest, folds, int(wc.fold), "test") if u in labels]
    log.info("fold %s: %d labelled test utterances; device %s", wc.fold, len(test), device)

    frames = []
    for condition, archive in [(CLEAN, inp.clean)] + list(zip(p.conditions, inp.conditions)):
        tick = time.perf_counter()
        stored = set(archive_utterances(archive))
        utts = [u for u in test if u in stored]
        if condition == CLEAN and len(utts) != len(test):
            raise ValueError(f"{archive}: {len(test) - len(utts)} test utterance(s) have no clean features")
        features = read_archive(archive, utts)
        scores = predict_features(model, [features[u] for u in utts], inp.norm, device=device)
        frames.append(predictions_frame(condition, utts, [labels[u] for u in utts], scores))
        log.info("%s: %d utterances in %.1f s", condition, len(utts), time.perf_counter() - tick)
    table = write_predictions(frames, snakemake.output[0])
    log.info("%d predictions -> %s", len(table), snakemake.output[0])
