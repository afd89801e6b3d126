"""Rule build_noise_bank: scan a noise bank, split it by source recording and store its audio."""

from sernoise.noise.bank import assign_splits, build_bank, scan_esc50, scan_folder
from sernoise.runlog import rule_log

with rule_log(snakemake) as log:
    spec = snakemake.params.bank
    if spec["adapter"] == "esc50":
        frame = scan_esc50(spec["root"], spec["class_to_category"])
    else:
        frame = scan_folder(spec["root"], spec.get("entries") or [], spec["class_to_category"])
    frame = assign_splits(frame, test_fraction=snakemake.params.test_fraction, seed=snakemake.params.seed)
    bank = build_bank(
        frame,
        spec["root"],
        snakemake.output.bank,
        snakemake.output.audio,
        rejects_out=snakemake.output.rejects,
    )
    log.info("%s", bank.groupby(["category", "split"]).size().to_string())
