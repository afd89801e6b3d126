"""Rule build_noise_bank: scan a noise bank, split it by source recording and store its audio."""

from sernoise.noise.bank import build_bank, scan_bank, split_bank
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    spec = snakemake.params.bank
    frame = scan_bank(spec)
    frame = split_bank(frame, spec, test_fraction=snakemake.params.test_fraction, seed=snakemake.params.seed)
    bank = build_bank(
        frame,
        spec["root"],
        snakemake.output.bank,
        snakemake.output.audio,
        rejects_out=snakemake.output.rejects,
        compression=snakemake.params.prepare["compression"],
        compression_level=snakemake.params.prepare["compression_level"],
    )
    log.info("%s", bank.groupby(["category", "split"]).size().to_string())
