"""Rule perception_simulate_responses: a simulated crowd (demo), true effects from the configured perception classes."""

import pandas as pd

from sernoise.perception.export import read_key
from sernoise.perception.simulate import simulate_responses
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    sim = snakemake.params.settings["simulate"]
    true_change = {}
    for c in snakemake.params.conditions:
        p = sim["p_altering"] if c["perception"] == "altering" else sim["p_retaining"]
        true_change[c["condition"]] = (p, p, sim["shift"], sim["shift"])
    tasks = pd.read_csv(snakemake.input.tasks, dtype={"pair_id": str, "kind": str}, keep_default_na=False)
    responses, workers = simulate_responses(
        tasks, read_key(snakemake.input.key), true_change=true_change, n_workers=sim["n_workers"],
        bad_worker_fraction=sim["bad_worker_fraction"], error_rate=sim["error_rate"],
        workers_per_pair=snakemake.params.settings["workers_per_pair"], seed=snakemake.params.seed)
    responses.to_csv(snakemake.output[0], index=False)
    log.info("SIMULATED responses (not a study): %d rows from %d workers; bad workers: %s", len(responses),
             responses["worker"].nunique(), workers.loc[workers["kind"] != "good"].to_dict("records"))
