"""Rule predict_tdnn: one trained T-DNN on its fold's test-role utterances, clean and in every condition.

Output columns: the model's keys (corpus, model, regime, fold, rep, task: the rule's wildcards), then
condition ("clean" or the condition id), utt_id, true, predicted, score_low, score_mid, score_high
(sernoise.predictions.PREDICTION_COLUMNS).  Conditions use their
TEST-pool datasets; only utterances with status ok are in those feature archives.
"""

import pandas as pd
import torch

from sernoise.corpora.manifest import read_manifest
from sernoise.features import FeatureArchive
from sernoise.predictions import CLEAN, prediction_keys
from sernoise.runlog import rule_log
from sernoise.training.loop import resolve_device
from sernoise.training.predict import (
    labelled_test_utterances, load_model, predict_conditions, predict_features, write_predictions,
)

with rule_log(snakemake) as log:
    wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
    torch.set_num_threads(int(snakemake.threads))
    device = resolve_device(p.device)
    model = load_model(inp.model, inp.hparams, device=device)
    test, labels = labelled_test_utterances(read_manifest(inp.manifest), pd.read_csv(inp.folds, dtype={"group": str}),
                                            wc.fold, wc.task)
    log.info("fold %s: %d labelled test utterances; device %s", wc.fold, len(test), device)

    def score(archive: FeatureArchive, utts: list[str]):
        features = archive.read_many(utts)  # the archive predict_conditions opened: no second open
        return predict_features(model, [features[u] for u in utts], inp.norm, device=device)

    frames = predict_conditions([(CLEAN, inp.clean)] + list(zip(p.conditions, inp.conditions)), test, labels,
                                open_source=FeatureArchive, score=score, what="features", log=log)
    keys = prediction_keys(wc.corpus, wc.model, wc.regime, wc.fold, wc.rep, wc.task)
    table = write_predictions(frames, snakemake.output[0], keys)
    log.info("%d predictions -> %s", len(table), snakemake.output[0])
