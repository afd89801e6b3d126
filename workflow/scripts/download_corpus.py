"""Rule download_corpus / download_noise_bank: fetch and extract a public archive once."""

from pathlib import Path

from sernoise.download import fetch_and_extract
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    spec = snakemake.params.download
    log.info("fetching %s into %s", spec["url"], spec["target"])
    fetch_and_extract(spec["url"], spec["target"], checksum=spec["checksum"])
    Path(snakemake.output[0]).write_text(f"{spec['url']}\n")
