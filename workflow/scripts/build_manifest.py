"""Rule build_manifest: merge the shards into manifest.csv, rejects.csv and the audio index."""


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
    manifest.to_csv(snakemake.output.manifest, index=False)
    write_index(list(snakemake.input.indexes), list(snakemake.input.shards), snakemake.output.index)
    log.info("manifest: %d utterances, %d speakers", len(manifest), manifest["speaker"].nunique())
