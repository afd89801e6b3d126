"""Rule select_perception_sample: the study sample (sample.csv) and its modulations (modulations.csv)."""

from pathlib import Path

import pandas as pd

from sernoise.corpora.manifest import read_manifest
from sernoise.perception.select import assign_modulations, read_availability, sample_summary, select_sample
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings, seed = snakemake.params.settings, snakemake.params.seed
    conditions = pd.DataFrame(snakemake.params.conditions, columns=["condition", "family", "perception"])
    folders = {c: Path(p).parent for c, p in zip(conditions["condition"], snakemake.input.params)}
    available, skipped = read_availability(folders)
    for cid, reason in skipped.items():
        log.info("condition %s skipped for this corpus: %s", cid, reason)
    manifest = read_manifest(snakemake.input.manifest)
    sample = select_sample(manifest, n_per_bin=settings["n_per_bin"], n_extreme=settings["n_extreme"], seed=seed,
                           corpus=snakemake.wildcards.corpus)
    modulations = assign_modulations(sample, conditions, available, n_environmental=settings["n_environmental"],
                                     n_distortion=settings["n_distortion"], seed=seed)
    sample.to_csv(snakemake.output.sample, index=False)
    modulations.to_csv(snakemake.output.modulations, index=False)
    log.info("sample: %d utterances, %d modulations\n%s", len(sample), len(modulations),
             sample_summary(sample).to_string(index=False))
