"""Rule make_tiny_wav2vec2: a tiny randomly initialised wav2vec2 saved as a Hugging Face model folder
(resources/pretrained/tiny-random-wav2vec2/).  It stands in for the configured pre-trained weights
when they are absent and `pretrained.missing: tiny_random` (the demo overlays); models trained on
it are labelled "tiny random wav2vec2".  See sernoise.pretrained.make_tiny_wav2vec2.
"""

from pathlib import Path

from sernoise.pretrained import make_tiny_wav2vec2
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    folder = Path(snakemake.output[0]).parent
    marker = make_tiny_wav2vec2(folder, seed=snakemake.params.seed)
    log.info("tiny random wav2vec2 (%d parameters, seed %d) -> %s", marker["parameters"], marker["seed"], folder)
