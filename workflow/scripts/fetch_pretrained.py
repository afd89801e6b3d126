"""Rule fetch_pretrained: download a Hugging Face model (config, feature extractor, weights) into
resources/pretrained/<owner>--<name>/, check every file against the Hub's sizes and checksums, and
write ready.json last.  A local rule: it needs internet.  See sernoise.pretrained.fetch_hub_model.
"""

from pathlib import Path

from sernoise.pretrained import fetch_hub_model
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    folder = Path(snakemake.output[0]).parent
    marker = fetch_hub_model(snakemake.params.repo_id, folder, revision=snakemake.params.revision,
                             log=log.info)
    log.info("%s@%s ready in %s", marker["repo_id"], marker["commit"], folder)
