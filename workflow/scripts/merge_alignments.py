"""Rule merge_alignments: alignments.csv and failures.csv of a corpus; fails past align.max_failure_fraction."""

import pandas as pd

from sernoise.aligner import merge_alignments
from sernoise.corpora.manifest import read_manifest
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    scan = read_manifest(snakemake.input.scan)
    try:
        counts = merge_alignments(
            list(snakemake.input.tables),
            scan,
            snakemake.output.alignments,
            snakemake.output.failures,
            max_failure_fraction=float(snakemake.params.max_failure_fraction),
        )
    except Exception:
        # Snakemake deletes the outputs of a failed job: keep the failure list in the log.
        failures = snakemake.output.failures
        try:
            log.error("failures:\n%s", pd.read_csv(failures, dtype=str).to_string(index=False))
        except (OSError, ValueError):
            pass
        raise
    log.info("alignments: %s", counts)
