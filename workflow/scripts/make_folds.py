"""Rule make_folds: speaker-independent folds from the manifest, checked for leakage.

``folds.scheme`` (absent: ``groups``) is read from the config here rather than passed as a rule
parameter: a new parameter would make Snakemake rerun this rule, and everything after it, in every
existing workspace although the table's bytes do not change.  Switching to ``loso`` changes
``n_folds`` (it must equal the number of speakers), and switching to ``official`` sets it to 1 and
adds the rule parameter ``test_partitions``: both rerun the rule.
"""

from sernoise.corpora.manifest import read_manifest
from sernoise.folds import fold_unit, folds_from_config
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    manifest = read_manifest(snakemake.input.manifest)
    settings = {**(snakemake.config.get("folds") or {}), "n_folds": int(snakemake.params.n_folds)}
    folds = folds_from_config(manifest, settings)
    folds.to_csv(snakemake.output[0], index=False)
    unit = fold_unit(folds)
    log.info("%d folds over %d %ss", folds["fold"].nunique(), folds[unit].nunique(), unit)
