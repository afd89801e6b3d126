"""Rule scan_corpus: labels and paths of every utterance (no audio is read here)."""

from sernoise.corpora import scan_corpus
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    frame = scan_corpus(snakemake.params.adapter, snakemake.params.root, dict(snakemake.params.options))
    frame.to_csv(snakemake.output[0], index=False)
    log.info("%d utterances, %d speakers, %d groups", len(frame), frame["speaker"].nunique(), frame["group"].nunique())
