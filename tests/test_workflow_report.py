"""Evaluation rules end to end: compute_metrics -> make_table3 + plot_uar -> `snakemake --report`.

The prediction files are synthetic (tests/fixtures/synthetic_predictions.py writes them) and placed in a temporary
working directory with the augmented test sets' status.json files; `--allowed-rules` keeps
Snakemake from rebuilding what produced them (training, augmentation), so only the evaluation
rules run, as they would after a real run.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from fixtures.synthetic_predictions import SPEAKERS, synthetic_config, write_synthetic_predictions
from sernoise.corpora.manifest import to_manifest_frame
from workflow_helpers import run_snakemake

pytestmark = pytest.mark.workflow

TESTED = ["env-nat-start", "env-nat-cont-snr20", "env-nat-cont-snr0", "env-hum-cont-snr10", "fade-in", "drop-letters",
          "pitch-up"]
# noise types restricted to the built conditions, as rules/common.smk does: hum, nat, fade
REGIMES = ["clean", "matched", "mismatched-hum", "mismatched-nat", "mismatched-fade", "all"]
TARGETS = ["results/ravdess/tables/table3.csv", "results/ravdess/tables/table3.md", "results/ravdess/tables/table3.tex",
           "results/ravdess/tables/table3.html", "results/ravdess/plots/uar_vs_snr.png", "results/ravdess/plots/uar_per_condition.png"]
EVALUATION_RULES = ["--allowed-rules", "compute_metrics", "make_table3", "plot_uar", "perception_partition"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("evaluate")
    overlay = {"folds": {"n_folds": 3},
               "training": {"repetitions": 2, "models": ["tdnn"], "sweep": {"fractions": []}},
               "augment": {"conditions": TESTED}}
    config = synthetic_config()
    write_synthetic_predictions(workdir, config, regimes=REGIMES, tested=TESTED)
    # the manifest gives each utterance's speaker (rule compute_metrics: speaker_confusion.csv)
    manifest = to_manifest_frame([{"utt_id": utt, "path": f"audio/{utt}.wav", "speaker": speaker, "group": speaker}
                                  for utt, speaker in SPEAKERS.items()])
    manifest.to_csv(workdir / "results/ravdess/manifest.csv", index=False)
    for condition in TESTED:
        status = workdir / f"results/ravdess/augmented/{condition}/test/status.json"
        status.parent.mkdir(parents=True, exist_ok=True)
        skipped = condition == "drop-letters"
        partial = condition == "fade-in"
        status.write_text(json.dumps({"condition": condition, "skipped": skipped, "n_ok": 0 if skipped else 90,
                                      "n_skipped": 120 if skipped else 30 if partial else 0,
                                      "skip_reasons": {"too short": 30} if partial else {},
                                      "reason": "no alignment for this corpus" if skipped else None}))
    run_snakemake(workdir, overlay, *TARGETS, *EVALUATION_RULES)
    return workdir, overlay


def test_evaluation_outputs(evaluated):
    workdir, _ = evaluated
    metrics = pd.read_csv(workdir / "results/ravdess/metrics/tdnn/metrics.csv")
    assert len(metrics.groupby(["regime", "fold", "rep", "task"])) == len(REGIMES) * 3 * 2 * 2
    assert set(metrics["condition"]) == {"clean"} | set(TESTED) - {"drop-letters"}
    table = pd.read_csv(workdir / "results/ravdess/tables/table3.csv")
    assert list(table.drop_duplicates("row_order")["row"]) == [
        "No noise", "All noises**", "Perception-retaining", "Nature: At start", "Nature: Cont. 20 dB",
        "Nature: Cont. 0 dB", "Human: Cont. 10 dB", "Fade in", "Drop letters"]
    worse = table[(table.row_key == "env-nat-cont-snr0") & (table.column == "clean")]
    assert worse["significant"].all() and (worse["direction"] == "down").all()
    # the default statistics: speaker-level jackknife on the manifest's 12 speakers, intervals in the CSV
    assert set(table.loc[table["comparison"].notna(), "test"]) == {"speaker_jackknife"}
    assert (table.loc[table["n_pairs"] > 0, "n_speakers"] == 12).all() and table["ci_low"].notna().any()
    by_speaker = pd.read_csv(workdir / "results/ravdess/metrics/tdnn/speaker_confusion.csv")
    assert set(by_speaker["speaker"]) == set(SPEAKERS.values()) and by_speaker["utt_digest"].notna().all()
    md = (workdir / "results/ravdess/tables/table3.md").read_text()
    assert "Drop letters (drop-letters): skipped on this corpus (no alignment for this corpus)" in md
    assert "Fade in (fade-in): 30 of 120 utterances skipped (too short); its cells use the others." in md
    for plot in TARGETS[-2:]:
        assert (workdir / plot).stat().st_size > 20_000


def test_report(evaluated):
    workdir, overlay = evaluated
    run_snakemake(workdir, overlay, "--report", "report.html", *TARGETS, *EVALUATION_RULES)
    report = (workdir / "report.html").read_text(encoding="utf-8", errors="replace")
    assert len(report) > 100_000
    for name in ("table3.html", "table3.csv", "uar_vs_snr.png", "uar_per_condition.png"):
        assert name in report
    assert re.search(r"Tables", report) and re.search(r"Plots", report)


def test_rerun_does_nothing(evaluated):
    workdir, overlay = evaluated
    proc = run_snakemake(workdir, overlay, *TARGETS, *EVALUATION_RULES)
    assert "Nothing to be done" in proc.stdout + proc.stderr
