"""Rule build_fillers: cut the corpus's aligned fillers ('uh', 'um') per speaker into one bank."""

from sernoise.audio_store import AudioStore
from sernoise.augment import corpus_has_alignments
from sernoise.conditions.filler import FillerBank
from sernoise.corpora.manifest import read_manifest
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    manifest = read_manifest(snakemake.input.manifest)
    if corpus_has_alignments(manifest):
        store = AudioStore.from_index(snakemake.input.index)
        bank = FillerBank.from_manifest(manifest, store)
        note = f"{len(bank)} filler clips from {len(bank.speakers())} speakers"
    else:
        bank = FillerBank()
        note = ("empty filler bank: the corpus has no word alignments (manifest column 'alignment' is empty); "
                "filler conditions are skipped for it")
    bank.save(snakemake.output[0])
    log.info("%s: %s", snakemake.output[0], note)
