"""Rule compute_metrics: UAR, per-class recall, weighted F1 and confusion counts of every prediction file,
the same counts per speaker (the manifest's; for the tables' speaker-level tests and confidence intervals),
and which of the models were flagged by the degenerate-model check (their hparams.yaml)."""

from sernoise.corpora.manifest import read_manifest
from sernoise.evaluation.metrics import compute_metrics, degenerate_flags, speaker_confusion
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    metrics, confusion = compute_metrics(list(snakemake.params.predictions), log=log)
    metrics.to_csv(snakemake.output.metrics, index=False, lineterminator="\n")
    confusion.to_csv(snakemake.output.confusion, index=False, lineterminator="\n")
    log.info("%d prediction files, %d (file, condition) groups", len(snakemake.params.predictions), len(metrics))
    manifest = read_manifest(snakemake.input.manifest)
    speakers = dict(zip(manifest["utt_id"].astype(str), manifest["speaker"].astype(str)))
    by_speaker = speaker_confusion(list(snakemake.params.predictions), speakers, log=log)
    by_speaker.to_csv(snakemake.output.speaker_confusion, index=False, lineterminator="\n")
    flags = degenerate_flags(list(snakemake.params.hparams))
    flags.to_csv(snakemake.output.flags, index=False, lineterminator="\n")
    for row in flags[flags["flagged"]].itertuples(index=False):
        log.warning("degenerate model %s %s fold %s rep %s %s: %s", row.model, row.regime, row.fold, row.rep, row.task,
                    row.reason)
