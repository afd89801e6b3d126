"""Black-box noise attack end to end (train clean T-DNNs -> one job per fold: knowledge, then every
attack -> Table 5 + plot), at tiny scale on RAVDESS actors 01-06 of ../shared/data (the tiny training
setup of workflow_helpers.tiny_training_overlay, as in test_workflow_train)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from sernoise.attack.runner import RESULT_COLUMNS, read_results
from sernoise.corpora.manifest import read_manifest
from workflow_helpers import TINY_FOLDS, module_run, run_snakemake, tiny_training_overlay

pytestmark = pytest.mark.workflow

N_FOLDS = TINY_FOLDS
SETS = ["all", "perception_retaining", "environmental", "signal_manipulation", "reverb"]  # config.yaml's (paper §8.5)
ALTERING = {"speed_utt", "pitch", "filler", "laugh", "cry"}
KNOWLEDGE = ["none", "degradation"]
BUDGETS = ["5", "15", "25", "inf"]
UTTERANCES, RUNS = 3, 2
TARGETS = ["results/ravdess/tables/table5.csv", "results/ravdess/tables/table5.md", "results/ravdess/tables/table5.tex",
           "results/ravdess/plots/attack_budget.png"]


def _attack_overlay(ravdess_root, noise_root) -> dict:
    overlay = tiny_training_overlay(ravdess_root, noise_root, models=["tdnn"], regimes=["clean"])
    overlay["attack"] = {"models": ["tdnn"], "max_utterances": UTTERANCES, "runs": RUNS, "knowledge_utterances": 8}
    return overlay


def _result(fold, noise_set, knowledge) -> str:
    return f"results/ravdess/attack/tdnn/fold{fold}/rep1/activation/{noise_set}-{knowledge}.csv"


# a generous limit: 30 attacks (5 noise sets x 2 knowledge x 3 folds) on a loaded 2-core machine
attack_run = module_run("attack_run", _attack_overlay, *TARGETS, timeout=1800)


def test_dry_run_job_counts(attack_run):
    workdir, overlay = attack_run
    proc = run_snakemake(workdir, overlay, "-n", *TARGETS, "--forcerun", "run_attack")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    # one job per fold: its degradation order and its 5 x 2 attacks
    assert counts["run_attack"] == str(N_FOLDS) and counts["make_table5"] == "1"
    assert "attack_knowledge" not in counts


def test_one_job_logs_its_knowledge_then_each_attack(attack_run):
    workdir, _ = attack_run
    log = (workdir / "logs/ravdess/attack/tdnn/fold1/rep1/activation.log").read_text()
    headers = re.findall(r"== (knowledge.*?|attacks: (.*?)) ==", log)
    assert headers[0][0].startswith("knowledge")
    assert headers[1][1].split(", ") == [f"{s}-{k}" for s in SETS for k in KNOWLEDGE]
    # the knowledge step's model calls, then each attack's own (the attacks run together, utterance by
    # utterance), and the clean references they share: together the job's total
    knowledge = int(re.search(r"knowledge done: (\d+) model calls", log).group(1))
    attacks = re.findall(r" (\w+)-(\w+): \d+ rows; .*?; \d+ counted queries in (\d+) model calls", log)
    assert [(s, k) for s, k, _ in attacks] == [(s, k) for s in SETS for k in KNOWLEDGE]
    assert knowledge > 0 and all(int(n) > 0 for _, _, n in attacks)
    together, references = map(int, re.search(r"attacks done in [\d.]+ s: (\d+) model calls, (\d+) of them for "
                                              r"the clean references", log).groups())
    assert references > 0 and together == references + sum(int(n) for _, _, n in attacks)
    assert f"{knowledge + together} model calls in all" in log


def test_attack_results_one_row_per_utterance_run_and_budget(attack_run):
    workdir, _ = attack_run
    manifest = read_manifest(workdir / "results/ravdess/manifest.csv").set_index("utt_id")
    folds = pd.read_csv(workdir / "results/ravdess/folds.csv", dtype={"group": str})
    for fold in range(1, N_FOLDS + 1):
        test_groups = set(folds[(folds["fold"] == fold) & (folds["role"] == "test")]["group"])
        chosen = None
        for noise_set in SETS:
            for knowledge in KNOWLEDGE:
                table = read_results(workdir / _result(fold, noise_set, knowledge))
                assert list(table.columns) == RESULT_COLUMNS
                assert len(table) == UTTERANCES * RUNS * len(BUDGETS)
                assert set(manifest.loc[table["utt_id"], "group"]) <= test_groups  # test role only
                chosen = chosen or set(table["utt_id"])
                assert set(table["utt_id"]) == chosen  # the same utterances in every setting
                assert (table["true"] == manifest.loc[table["utt_id"], "activation_bin"].to_numpy()).all()
                for budget in BUDGETS[:-1]:
                    assert (table.loc[table["budget"] == budget, "queries"] <= int(budget)).all()
                for _, rows in table.groupby(["utt_id", "run"]):
                    success = rows.set_index("budget").loc[BUDGETS, "success"]
                    assert success.is_monotonic_increasing
                wins = table[table["success"]]
                assert (wins["label"] != wins["reference"]).all() and wins["decrease_db"].between(1, 10).all()
                at_snr = wins[wins["snr_target"].notna()]  # noise, reverb, fade: at an SNR decrease
                assert (abs(at_snr["snr_measured"] - at_snr["snr_target"]) < 0.1).all()
                assert set(wins.loc[wins["snr_target"].isna(), "knob_name"]) <= {"strength", "fixed"}
                orders = {c for order in table["order"] for c in order.split("|")}
                if noise_set == "reverb":
                    assert orders == {"reverb"}
                if noise_set == "perception_retaining":
                    assert orders and not orders & ALTERING
                if noise_set == "environmental":
                    assert orders and orders <= {"nat", "hum", "int"}
                if noise_set == "signal_manipulation":
                    assert orders and not orders & {"nat", "hum", "int"}
                if noise_set == "all":  # every family with a strength knob is queried on RAVDESS
                    assert {"speed_seg", "speed_utt", "pitch", "fade", "reverb"} <= orders


def test_knowledge_orders_the_attack(attack_run):
    workdir, _ = attack_run
    for fold in range(1, N_FOLDS + 1):
        knowledge = pd.read_csv(workdir / f"results/ravdess/attack/tdnn/fold{fold}/rep1/activation/knowledge.csv")
        assert list(knowledge["rank"]) == list(range(1, len(knowledge) + 1))
        assert set(knowledge["category"]) == {"nat", "hum", "int", "fade", "reverb", "speed_seg", "drop_word",
                                              "drop_letters", "speed_utt", "pitch", "filler", "laugh", "cry"}
        assert (knowledge["n_utterances"] <= 8).all()
        ranked = list(knowledge["category"])
        table = read_results(workdir / _result(fold, "all", "degradation"))
        for order in table["order"]:
            names = order.split("|")
            assert names == [c for c in ranked if c in names]


def test_table5_layout_and_plot(attack_run):
    workdir, _ = attack_run
    table = pd.read_csv(workdir / "results/ravdess/tables/table5.csv")
    assert len(table) == len(KNOWLEDGE) * len(SETS) * len(BUDGETS)
    assert (table["n_pairs"] == N_FOLDS).all() and table["mean"].between(0, 1).all()
    assert set(table.loc[table["noise_set"] == "all", "comparison"].str.startswith("vs perception_retaining")) == {True}
    md = (workdir / "results/ravdess/tables/table5.md").read_text()
    assert "All noises**" in md and "Perception-retaining" in md and "Reverb only" in md and "T-DNN" in md
    assert "Environmental" in md and "Signal manipulation" in md and "Perception classes: from the config" in md
    assert (workdir / "results/ravdess/plots/attack_budget.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_does_nothing_and_attack_is_deterministic(attack_run, tmp_path):
    workdir, overlay = attack_run
    proc = run_snakemake(workdir, overlay, *TARGETS)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    files = [_result(1, "all", "none"), _result(1, "all", "degradation"),
             "results/ravdess/attack/tdnn/fold1/rep1/activation/knowledge.csv"]
    before = [(workdir / f).read_bytes() for f in files]
    run_snakemake(workdir, overlay, *files, "--forcerun", "run_attack")
    assert [(workdir / f).read_bytes() for f in files] == before
    # batched and unbatched queries give the same outcomes and counts
    unbatched = dict(overlay, attack=dict(overlay["attack"], batch=False))
    run_snakemake(tmp_path, unbatched, _result(1, "all", "none"))  # trains fold 1 again: same bytes
    a = read_results(workdir / _result(1, "all", "none"))
    b = read_results(tmp_path / _result(1, "all", "none"))
    same = [c for c in RESULT_COLUMNS if c not in ("model_calls", "computed")]
    pd.testing.assert_frame_equal(a[same], b[same])
    direct_a, direct_b = a[~a["derived"]], b[~b["derived"]]
    assert (direct_b["model_calls"] == direct_b["computed"]).all()
    assert (direct_a["model_calls"] <= direct_b["model_calls"]).all()


@pytest.mark.parametrize(
    "attack, key",
    [
        ({"categories": {"mixed": ["reverb", "env-nat-cont-snr20"]}}, "attack.categories.mixed: conditions of one category must share a family"),
        ({"categories": {"nat": ["nosuchcondition"]}}, "attack.categories.nat[0]"),
        ({"noise_sets": {"mine": ["nosuchcategory"]}}, "attack.noise_sets.mine[0]"),
        ({"models": ["no_such_model"]}, "attack.models[0]"),
        ({"regime": "nosuchregime"}, "attack.regime"),
        ({"budgets": [0]}, "attack.budgets[0]"),
        ({"knowledge": ["oracle"]}, "attack.knowledge[0]"),
    ],
)
def test_bad_attack_config_fails_before_any_job_naming_the_key(tmp_path, attack, key):
    proc = run_snakemake(tmp_path, {"attack": attack}, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid configuration" in out and key in out, out[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("attack, built", [({}, True), ({"models": []}, False)])
def test_table5_is_in_all_only_when_the_attack_is_on(tmp_path, attack, built):
    proc = run_snakemake(tmp_path, {"attack": attack}, "-n")
    assert ("make_table5" in proc.stdout) == built
