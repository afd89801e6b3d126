"""Rule predict_ednn: one trained E-DNN on its fold's test-role utterances, clean and in every condition.

Same output format as predict_tdnn (sernoise.predictions.PREDICTION_COLUMNS): corpus, model, regime,
fold, rep, task (the rule's wildcards), condition, utt_id, true, predicted, score_low, score_mid,
score_high.  Conditions use their TEST-pool audio datasets (only utterances with status ok are
stored there).  The backbone folder must be the one the model
was trained on (its fingerprint is checked).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from sernoise.corpora.manifest import read_manifest  # noqa: E402
from sernoise.predictions import CLEAN, prediction_keys  # noqa: E402
from sernoise.runlog import rule_log  # noqa: E402
from sernoise.training.ednn import (  # noqa: E402
    check_backbone, load_ednn, open_store, predict_proba, read_utterances,
)
from sernoise.training.loop import resolve_device  # noqa: E402
from sernoise.training.predict import labelled_test_utterances, predict_conditions, write_predictions  # noqa: E402

with rule_log(snakemake) as log:
    wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
    torch.set_num_threads(int(snakemake.threads))
    device = resolve_device(p.device)
    hparams = yaml.safe_load(open(inp.hparams, encoding="utf-8"))
    model = load_ednn(inp.model, hparams, check_backbone(hparams), save_path=p.save_path, device=device)
    test, labels = labelled_test_utterances(read_manifest(inp.manifest), pd.read_csv(inp.folds, dtype={"group": str}),
                                            wc.fold, wc.task)
    log.info("fold %s: %d labelled test utterances; device %s", wc.fold, len(test), device)

    batch = int(p.ednn.get("eval_batch_size", p.ednn["batch_size"]))
    amp = bool(p.ednn.get("amp", True))

    def score(store, utts: list[str]):
        audio = read_utterances(store, utts)
        return predict_proba(model, [audio[u] for u in utts], batch_size=batch, device=device, amp=amp)

    frames = predict_conditions([(CLEAN, inp.clean_index)] + list(zip(p.conditions, inp.indexes)), test, labels,
                                open_source=open_store, score=score, what="audio", log=log)
    keys = prediction_keys(wc.corpus, wc.model, wc.regime, wc.fold, wc.rep, wc.task)
    table = write_predictions(frames, snakemake.output[0], keys)
    log.info("%d predictions -> %s", len(table), snakemake.output[0])
