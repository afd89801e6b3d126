"""Rule build_manifest: merge the shards into manifest.csv, rejects.csv and the audio index; the
alignment column gets the forced alignments of rule merge_alignments when there are any."""


from sernoise.aligner import attach_alignments
from sernoise.corpora.manifest import read_manifest
from sernoise.prepare import assemble_manifest, write_index
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    scan = read_manifest(snakemake.input.scan)
    manifest = assemble_manifest(
        scan,
        list(snakemake.input.indexes),
        list(snakemake.input.rejects),
        max_reject_fraction=snakemake.params.max_reject_fraction,
        rejects_out=snakemake.output.rejects,
    )
    alignments = snakemake.input.get("alignments")
    if alignments:
        manifest = attach_alignments(manifest, alignments)
        log.info("alignments from %s: %d of %d utterances aligned", alignments,
                 int((manifest["alignment"] != "").sum()), len(manifest))
    manifest.to_csv(snakemake.output.manifest, index=False)
    write_index(list(snakemake.input.indexes), list(snakemake.input.shards), snakemake.output.index)
    log.info("manifest: %d utterances, %d speakers", len(manifest), manifest["speaker"].nunique())
