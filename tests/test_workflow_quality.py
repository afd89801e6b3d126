"""Rule plot_quality_vs_uar end to end: synthetic prediction files of the clean-trained T-DNN
(tests/fixtures/synthetic_predictions.py: right with probability 0.8 on clean speech, 0.78 on noise,
0.35 on env-nat-cont-snr0) and synthetic test-pool params.csv files -> compute_metrics ->
plot_quality_vs_uar; `--allowed-rules` keeps Snakemake from rebuilding what produced them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fixtures.synthetic_predictions import SPEAKERS, synthetic_config, write_synthetic_predictions
from sernoise.corpora.manifest import to_manifest_frame
from sernoise.augmented_io import PARAM_COLUMNS
from workflow_helpers import run_snakemake

pytestmark = pytest.mark.workflow

TESTED = ["env-nat-cont-snr20", "env-nat-cont-snr0", "fade-in", "pitch-up"]
MEDIAN_STOI = {"env-nat-cont-snr20": 0.95, "env-nat-cont-snr0": 0.62, "fade-in": 0.99, "pitch-up": math.nan}
PLOT = "results/ravdess/plots/quality_vs_uar.png"
CSV = "results/ravdess/plots/quality_vs_uar.csv"


def _params(path, condition):
    n = 9
    stoi = MEDIAN_STOI[condition] + np.linspace(-0.02, 0.02, n)
    frame = pd.DataFrame({c: [""] * n for c in PARAM_COLUMNS}).assign(
        utt_id=[f"u{i}" for i in range(n)], status="ok", condition=condition, pool="test",
        perception="altering" if condition == "pitch-up" else "retaining", stoi=stoi, pesq=math.nan,
        fwsnrseg=np.linspace(5, 15, n))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_plot_quality_vs_uar(tmp_path):
    overlay = {"folds": {"n_folds": 3},
               "training": {"repetitions": 2, "models": ["tdnn"], "regimes": ["clean"], "sweep": {"fractions": []}},
               "augment": {"conditions": TESTED}, "attack": {"models": []}}
    config = synthetic_config()
    write_synthetic_predictions(tmp_path, config, regimes=["clean"], tested=TESTED)
    # rule compute_metrics reads each utterance's speaker from the manifest (speaker_confusion.csv)
    to_manifest_frame([{"utt_id": utt, "path": f"audio/{utt}.wav", "speaker": speaker, "group": speaker}
                       for utt, speaker in SPEAKERS.items()]).to_csv(tmp_path / "results/ravdess/manifest.csv",
                                                                     index=False)
    for condition in TESTED:
        _params(tmp_path / f"results/ravdess/augmented/{condition}/test/params.csv", condition)
    run_snakemake(tmp_path, overlay, PLOT, "--allowed-rules", "compute_metrics", "plot_quality_vs_uar",
                  "perception_partition")
    assert (tmp_path / PLOT).read_bytes()[:4] == b"\x89PNG" and (tmp_path / PLOT).stat().st_size > 20_000
    table = pd.read_csv(tmp_path / CSV).set_index(["task", "condition"])
    assert set(table.index) == {(t, c) for t in config["training"]["tasks"] for c in TESTED}
    metrics = pd.read_csv(tmp_path / "results/ravdess/metrics/tdnn/metrics.csv")
    for (task, condition), row in table.iterrows():
        assert row["median_stoi"] == pytest.approx(MEDIAN_STOI[condition], nan_ok=True)
        assert row["median_fwsnrseg"] == pytest.approx(10.0) and math.isnan(row["median_pesq"])
        assert math.isnan(row["median_dnsmos_ovrl"]) and row["n_runs"] == 6 and row["n_utterances"] == 9
        # the drop, from metrics.csv by hand: mean over (fold, rep) of UAR(clean) - UAR(condition)
        m = metrics[(metrics["task"] == task) & (metrics["regime"] == "clean")].pivot_table(
            index=["fold", "rep"], columns="condition", values="uar")
        assert row["uar_drop"] == pytest.approx((m["clean"] - m[condition]).mean())
    worst = table.xs("env-nat-cont-snr0", level="condition")["uar_drop"]
    assert (worst > 0.25).all()  # 0.8 -> 0.35 correct: a large drop
    assert table.loc[("activation", "pitch-up"), "perception"] == "altering"
    assert "8 (model, task, condition) rows" in (tmp_path / "logs/ravdess/evaluate/plot_quality_vs_uar.log").read_text()
