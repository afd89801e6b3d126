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
        fallback = list(snakemake.params.get("fallback_phones") or [])
        bank = FillerBank.from_manifest(manifest, store, fallback_phones=fallback,
                                        min_fallback_ms=float(snakemake.params.get("min_fallback_ms") or 60.0))
        n_fallback = sum(1 for s in bank.speakers() for source, _ in bank.fillers(s) if "#" in source)
        note = (f"{len(bank)} filler clips from {len(bank.speakers())} speakers "
                f"({n_fallback} of them {'/'.join(fallback) or '-'} phones of speakers without filler words)")
    else:
        bank = FillerBank()
        note = ("empty filler bank: the corpus has no word alignments (manifest column 'alignment' is empty); "
                "filler conditions are skipped for it")
    bank.save(snakemake.output[0])
    log.info("%s: %s", snakemake.output[0], note)
