"""Rule export_perception_pairs: audio/, tasks.csv, key.csv and README.txt for the crowdsourcing platform."""

from pathlib import Path

import pandas as pd

from sernoise.audio_store import AudioStore
from sernoise.corpora.manifest import read_manifest
from sernoise.perception.export import export_pairs, plan_pairs, write_readme
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    settings, seed = snakemake.params.settings, snakemake.params.seed
    out_dir = Path(snakemake.output.tasks).parent
    sample = pd.read_csv(snakemake.input.sample, dtype={"utt_id": str}, keep_default_na=False)
    modulations = pd.read_csv(snakemake.input.modulations, dtype=str, keep_default_na=False)
    manifest = read_manifest(snakemake.input.manifest)
    conditions = [c["condition"] for c in snakemake.params.conditions]
    used = set(modulations["condition"])
    stores = {c: AudioStore.from_index(i) for c, i in zip(conditions, snakemake.input.indexes) if c in used}
    plan = plan_pairs(sample, modulations, manifest, seed=seed, batch_size=settings["batch_size"],
                      gold_identical=settings["gold_identical"], gold_noisy=settings["gold_noisy"])
    tasks, key = export_pairs(plan, manifest, AudioStore.from_index(snakemake.input.index), stores, out_dir,
                              seed=seed, gold_noisy_snr_db=settings["gold_noisy_snr_db"],
                              snr_reference=snakemake.params.snr_reference)
    write_readme(snakemake.output.readme, corpus=snakemake.wildcards.corpus,
                 n_test=int((tasks["kind"] == "test").sum()), n_utts=len(sample),
                 n_batches=int(tasks["batch"].nunique()), **{k: settings[k] for k in (
                     "batch_size", "gold_identical", "gold_noisy", "workers_per_pair", "gold_noisy_snr_db",
                     "min_seconds_factor")})
