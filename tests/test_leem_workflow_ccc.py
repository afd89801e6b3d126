"""Leem et al. (issue 14): the CCC path of CTSL end to end, at tiny scale on a corpus with ratings.

The synthetic MSP-Podcast fixture (tests/fixtures/msp_podcast_fixture.py: tones whose sound follows
the 1-7 ratings) in its official split (``folds.scheme: official``: Train / Development / Test1, one
fold); the teacher is a tiny T-DNN of the clean regime on the dimensional task ``avd`` (arousal,
valence, dominance; 1 - CCC loss); every strategy adapts it to natural noise at 0 dB with the summed
CCC loss for 7 epochs (the fewest that always leave three non-consecutive best ones), and those three
epochs (by development CCC) score 5 test groups clean and at 0 and 10 dB.  The table holds CCC per
attribute, says so, and has its Welch tests.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import workflow_helpers as wf
from fixtures.msp_podcast_fixture import make_msp_podcast_fixture

pytestmark = pytest.mark.workflow

STRATEGIES = ["original", "rh", "rm", "rm_tl", "rm_cl", "rm_tl_cl"]
ATTRIBUTES = ["activation", "valence", "dominance"]
TABLE = "results/msp_podcast/tables/ctsl.csv"
GROUPS = 5
RUN = "results/msp_podcast/ctsl/tdnn/{strategy}/fold1/rep1/avd"


@pytest.fixture(scope="module")
def ccc_run(tmp_path_factory, noise_root):
    """(workdir, overlay) once the CTSL tables of the fixture are built."""
    corpus = make_msp_podcast_fixture(tmp_path_factory.mktemp("msp_podcast"))
    overlay = wf.shared_overlay(noise_root, noise_root)  # RAVDESS is not read: its root is only a valid path
    overlay["corpus"] = "msp_podcast"
    overlay["corpora"]["msp_podcast"] = {"adapter": "msp_podcast", "root": str(corpus), "shards": 1}
    overlay["folds"] = {"scheme": "official", "n_folds": 1}
    overlay["align"] = {"enabled": False}
    overlay["augment"] = {
        "conditions": wf.TINY_CONDITIONS,
        "quality": {"stoi": False, "pesq": False, "dnsmos": False, "fwsnrseg": False},
    }
    overlay["noise_types"] = {"nat": ["env-nat-cont-snr10"], "fade": ["fade-in"]}
    # the dimensional task is selected by CCC (config.yaml's UAR does not apply to ratings)
    overlay["training"] = {
        "models": ["tdnn"],
        "regimes": ["clean"],
        "tasks": ["avd"],
        "repetitions": 1,
        "device": "cpu",
        "sweep": {"fractions": []},
        "on_degenerate": "warn",
        "min_epochs": 1,
        "strategy": {"name": "standard", "options": {"selection_metric": "ccc"}},
    }
    overlay["tdnn"] = wf.TINY_TDNN
    overlay["attack"] = {"models": []}
    overlay["ctsl"] = {
        "models": ["tdnn"],
        "tasks": ["avd"],
        "strategies": STRATEGIES,
        "target": {"category": "nat", "max_minutes": 1, "snr_db": 0},
        "test_snrs": [0, 10],
        "epochs": 7,
        "batch_size": 16,
        "test_groups": GROUPS,
    }
    workdir = tmp_path_factory.mktemp("ctsl_ccc")
    wf.run_snakemake(workdir, overlay, "--cores", "1", TABLE, timeout=900)
    return workdir, overlay


def test_folds_are_the_official_split(ccc_run):
    workdir, _ = ccc_run
    folds = pd.read_csv(workdir / "results/msp_podcast/folds.csv")
    assert folds.to_dict("records") == [
        {"fold": 1, "group": "Train", "role": "train"},
        {"fold": 1, "group": "Development", "role": "val"},
        {"fold": 1, "group": "Test1", "role": "test"},
    ]
    record = yaml.safe_load((workdir / RUN.format(strategy="rm_tl_cl") / "record.yaml").read_text())
    assert record["utterances"] == {"train": 48, "val": 20, "test": 20}  # Test2's 6 are not used
    assert record["task_loss"] == "CCC (1 - CCC per attribute, summed)"


def test_table_reports_ccc_per_attribute_with_welch_tests(ccc_run):
    workdir, _ = ccc_run
    cells = pd.read_csv(workdir / TABLE)
    assert set(cells["strategy"]) == set(STRATEGIES)
    assert set(cells["condition"]) == {"clean", "snr0", "snr10"}
    assert set(cells["metric"]) == {"ccc"} and set(cells["attribute"]) == set(ATTRIBUTES)
    assert len(cells) == len(STRATEGIES) * 3 * len(ATTRIBUTES)
    assert cells["mean"].between(-1, 1).all()
    original = cells[cells["strategy"] == "original"]
    assert (original["n"] == GROUPS).all()  # the teacher: one model x the test groups
    for strategy in STRATEGIES[1:]:
        record = yaml.safe_load((workdir / RUN.format(strategy=strategy) / "record.yaml").read_text())
        chosen = record["chosen_epochs"]
        assert len(chosen) == 3 and all(abs(a - b) > 1 for a in chosen for b in chosen if a != b)
        # the paper's 90 values per cell (3 epochs x 30 groups) are 3 x 5 here
        assert (cells.loc[cells["strategy"] == strategy, "n"] == 3 * GROUPS).all()
        curve = pd.read_csv(workdir / RUN.format(strategy=strategy) / "curve.csv")
        assert list(curve["epoch"]) == list(range(1, 8)) and "val_ccc" in curve.columns
        # the chosen epochs are the best non-consecutive development CCCs
        assert curve.set_index("epoch")["val_ccc"].idxmax() == chosen[0]
    adapted = cells[cells["strategy"] != "original"]
    assert original["p_vs_original"].isna().all() and adapted["p_vs_original"].between(0, 1).all()
    md = (workdir / "results/msp_podcast/tables/ctsl.md").read_text()
    assert "snr0 activation CCC | snr0 valence CCC | snr0 dominance CCC" in md and "UAR" not in md
    assert "Values: CCC (concordance correlation coefficient) of each attribute" in md
    assert md.index("snr0 activation") < md.index("snr10 activation") < md.index("clean activation")
    assert "Welch" in md and "T-DNN RM+TL+CL" in md
    tex = (workdir / "results/msp_podcast/tables/ctsl.tex").read_text()
    assert "snr0 valence CCC" in tex
    embeddings = pd.read_csv(workdir / "results/msp_podcast/tables/ctsl_embeddings.csv")
    assert set(embeddings["strategy"]) == set(STRATEGIES) and set(embeddings["condition"]) == {"snr0", "snr10"}
