"""Rule make_folds: speaker-independent folds from the manifest's groups, checked for leakage."""

from sernoise.corpora.manifest import read_manifest
from sernoise.folds import check_folds, make_folds
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    manifest = read_manifest(snakemake.input.manifest)
    folds = make_folds(manifest["group"], int(snakemake.params.n_folds))
    check_folds(manifest, folds)
    folds.to_csv(snakemake.output[0], index=False)
    log.info("%d folds over %d groups", folds["fold"].nunique(), folds["group"].nunique())
