"""Rule perception_partition: retaining/altering per condition, from Table 2 when the study has results, else config."""

import pandas as pd

from sernoise.perception.table2 import partition, partition_from_config
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    conditions = pd.DataFrame(snakemake.params.conditions, columns=["condition", "family", "perception"])
    threshold = snakemake.params.threshold
    tables = list(snakemake.input)
    if tables:
        out = partition(pd.read_csv(tables[0]), conditions, threshold)
    else:
        out = partition_from_config(conditions, threshold)
    out.to_csv(snakemake.output[0], index=False)
    log.info("partition:\n%s", out.to_string(index=False))
