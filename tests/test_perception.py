"""Perception study toolkit (paper §5.3, §6, Table 2): select, export, ingest + QC, Table 2, kappa, partition.

A synthetic corpus (tiny sine "utterances" with bins, durations and genders) and tiny augmented
test datasets in the layout of rules/augment.smk (shard + index.csv + params.csv + status.json)
are built once in a tmp dir; simulated crowds with known true effects check that Table 2 and the
partition recover the truth.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.audio_store import AudioStore, ShardWriter
from sernoise.corpora.manifest import MANIFEST_COLUMNS
from sernoise.perception.export import export_pairs, plan_pairs, read_key, write_readme
from sernoise.perception.responses import ResponsesError, quality_control, read_responses
from sernoise.perception.select import (
    BIN_PAIRS,
    assign_modulations,
    condition_table,
    length_quartiles,
    read_availability,
    select_sample,
)
from sernoise.perception.simulate import simulate_responses
from sernoise.perception.table2 import (
    build_table2,
    judgements,
    kappa_table,
    pair_labels,
    partition,
    partition_from_config,
    write_markdown,
)

SEED = 7
CONDITIONS = {
    "env-nat-cont-snr10": {"type": "env", "category": "nat", "position": "cont", "snr_db": 10},
    "env-hum-start": {"type": "env", "category": "hum", "position": "start", "snr_db": 10},
    "laugh": {"type": "insert", "category": "laugh"},
    "pitch-up": {"type": "pitch", "factor": 1.25},
    "drop-word": {"type": "drop_words"},
}
SMALL_BIN = ("high", "low")  # only 12 utterances: selection must scale down with a warning
TRUTH = {"laugh": (0.3, 0.3, 0.25, -0.25), "env-nat-cont-snr10": (0.01, 0.01, 0.0, 0.0)}


def _tone(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.2 * np.sin(2 * np.pi * (120 + 80 * rng.random()) * t)).astype(np.float32)


def _store(folder: Path, audio: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with ShardWriter(folder / "shard-000.h5", compression=None) as writer:
        for utt, x in audio.items():
            writer.add(utt, x)
    pd.DataFrame({"utt_id": list(audio), "shard": "shard-000.h5"}).to_csv(folder / "index.csv", index=False)
    return folder / "index.csv"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("perception")
    rows, audio = [], {}
    i = 0
    for a, v in BIN_PAIRS:
        for k in range(12 if (a, v) == SMALL_BIN else 60):
            utt = f"u{i:04d}"
            n = int(16000 * (0.1 + 0.4 * ((k * 37) % 60) / 60))  # same spread of lengths in every bin
            audio[utt] = _tone(n, i)
            rows.append({"utt_id": utt, "path": f"{utt}.wav", "speaker": f"s{i % 6}", "gender": "FM"[k % 2],
                         "group": f"g{i % 3}", "duration": n / 16000, "sample_rate": 16000, "emotion": "x",
                         "activation": np.nan, "valence": np.nan, "dominance": np.nan, "activation_bin": a,
                         "valence_bin": v, "transcript": "", "alignment": ""})
            i += 1
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    corpus_index = _store(root / "corpus", audio)
    aug = {}
    for cid in CONDITIONS:
        folder = root / "augmented" / cid / "test"
        folder.mkdir(parents=True)
        aug[cid] = folder
        if cid == "drop-word":  # no alignments: skipped for the corpus
            (folder / "status.json").write_text(json.dumps({"skipped": True, "reason": "no word alignments"}))
            pd.DataFrame(columns=["utt_id", "status"]).to_csv(folder / "params.csv", index=False)
            _store(folder, {})
            continue
        # pitch-up fails on every third utterance (status != ok): those never get it
        ok = {u: (cid != "pitch-up" or j % 3 != 0) for j, u in enumerate(audio)}
        factor = {"laugh": 1.2, "pitch-up": 1.0}.get(cid, 1.0)
        _store(folder, {u: 0.5 * _tone(int(x.size * factor), j + 99) for j, (u, x) in enumerate(audio.items()) if ok[u]})
        pd.DataFrame({"utt_id": list(audio), "status": ["ok" if ok[u] else "skipped: too short" for u in audio],
                      "snr_measured": 10.0}).to_csv(folder / "params.csv", index=False)
        (folder / "status.json").write_text(json.dumps({"skipped": False, "reason": None}))
    return {"root": root, "manifest": manifest, "corpus_index": corpus_index, "aug": aug}


@pytest.fixture(scope="module")
def selection(setup):
    conditions = condition_table(CONDITIONS)
    available, skipped = read_availability(setup["aug"])
    sample = select_sample(setup["manifest"], n_per_bin=30, n_extreme=10, seed=SEED)
    mods = assign_modulations(sample, conditions, available, n_environmental=1, n_distortion=1, seed=SEED)
    return conditions, available, skipped, sample, mods


@pytest.fixture(scope="module")
def exported(setup, selection, tmp_path_factory):
    _, _, _, sample, mods = selection
    out = tmp_path_factory.mktemp("export")
    # Table 2 checks need many pairs of the two conditions with a known truth: give every utterance both.
    mods = pd.concat([sample[["utt_id"]].assign(condition=c, family=f) for c, f in
                      (("env-nat-cont-snr10", "environmental"), ("laugh", "distortion"))], ignore_index=True)
    plan = plan_pairs(sample, mods, setup["manifest"], seed=SEED, batch_size=20, gold_identical=1, gold_noisy=1)
    stores = {c: AudioStore.from_index(setup["aug"][c] / "index.csv") for c in ("env-nat-cont-snr10", "laugh")}
    tasks, key = export_pairs(plan, setup["manifest"], AudioStore.from_index(setup["corpus_index"]), stores, out,
                              seed=SEED, gold_noisy_snr_db=-30)
    return out, tasks, key


@pytest.fixture(scope="module")
def study(exported):
    out, tasks, key = exported
    key = read_key(out / "key.csv")
    responses, workers = simulate_responses(tasks, key, true_change=TRUTH, n_workers=40, bad_worker_fraction=0.2,
                                            seed=SEED, workers_per_pair=3, error_rate=0.03)
    path = out / "responses.csv"
    responses.to_csv(path, index=False)
    valid, per_worker, qc = quality_control(read_responses(path, key), key, min_seconds_factor=1.0, workers_per_pair=3)
    judged = judgements(valid)
    pairs = pair_labels(judged)
    return key, responses, workers, valid, per_worker, qc, judged, pairs


# -- selection ------------------------------------------------------------------------------
def test_condition_table_family_and_perception():
    table = condition_table(CONDITIONS).set_index("condition")
    assert table.loc["env-nat-cont-snr10", "family"] == "environmental"
    assert table.loc["laugh", "family"] == "distortion" and table.loc["laugh", "perception"] == "altering"
    assert table.loc["env-hum-start", "perception"] == "retaining"
    override = condition_table({"laugh": {"type": "insert", "perception": "retaining"}})
    assert override["perception"].tolist() == ["retaining"]


def test_sample_counts_per_bin_length_and_gender(setup, selection):
    _, _, _, sample, _ = selection
    q1, q3 = length_quartiles(setup["manifest"])
    extreme = (sample["duration"] < q1) | (sample["duration"] > q3)
    assert (extreme == (sample["length"] == "extreme")).all()
    assert sample["utt_id"].is_unique
    for (a, v), rows in sample.groupby(["activation_bin", "valence_bin"]):
        if (a, v) == SMALL_BIN:
            assert len(rows) == 12  # everything there is
            continue
        assert len(rows) == 30
        assert (rows["length"] == "extreme").sum() == 10
        counts = rows["gender"].value_counts()
        assert abs(counts.get("F", 0) - counts.get("M", 0)) <= 2  # 50/50 in each part (odd parts: one off)
    assert set(sample["original_source"]) == {"bin_midpoint"}
    mid = {"low": 2.0, "mid": 3.0, "high": 4.0}
    assert (sample["original_activation"] == sample["activation_bin"].map(mid)).all()


def test_small_bin_scales_down_with_warning(setup, caplog):
    with caplog.at_level(logging.WARNING, logger="sernoise.perception"):
        sample = select_sample(setup["manifest"], n_per_bin=30, n_extreme=10, seed=SEED)
    assert len(sample) == 8 * 30 + 12
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "activation=high/valence=low" in text and "12 utterance(s) for 30 wanted" in text


def test_gender_shortfall_filled_from_other_gender(setup, caplog):
    manifest = setup["manifest"].copy()
    manifest.loc[manifest["gender"] == "F", "gender"] = np.where(
        np.arange((manifest["gender"] == "F").sum()) % 5 == 0, "F", "M")
    with caplog.at_level(logging.WARNING, logger="sernoise.perception"):
        sample = select_sample(manifest, n_per_bin=30, n_extreme=10, seed=SEED)
    assert (sample.groupby("bin").size().drop("high/low") == 30).all()
    assert any("F utterance(s)" in r.getMessage() for r in caplog.records)


def test_selection_is_deterministic(setup, selection):
    _, _, _, sample, _ = selection
    again = select_sample(setup["manifest"].sample(frac=1, random_state=3), n_per_bin=30, n_extreme=10, seed=SEED)
    assert again["utt_id"].tolist() == sample["utt_id"].tolist()
    other = select_sample(setup["manifest"], n_per_bin=30, n_extreme=10, seed=SEED + 1)
    assert other["utt_id"].tolist() != sample["utt_id"].tolist()


def test_modulations_distinct_available_and_by_family(selection, caplog):
    conditions, available, skipped, sample, mods = selection
    assert skipped == {"drop-word": "no word alignments"}
    assert "drop-word" not in set(mods["condition"])
    assert not mods.duplicated(["utt_id", "condition"]).any()
    for _, row in mods.iterrows():
        assert row["utt_id"] in available[row["condition"]]
    per = mods.groupby(["utt_id", "family"]).size().unstack(fill_value=0)
    assert (per["environmental"] == 1).all() and (per["distortion"] == 1).all()
    with caplog.at_level(logging.WARNING, logger="sernoise.perception"):
        many = assign_modulations(sample, conditions, available, n_environmental=4, n_distortion=6, seed=SEED)
    per = many.groupby(["utt_id", "family"]).size().unstack(fill_value=0)
    assert (per["environmental"] == 2).all()  # only two environmental conditions exist
    assert per["distortion"].isin([1, 2]).all()  # laugh, and pitch-up where it is ok
    assert any("fewer than 4 environmental" in r.getMessage() for r in caplog.records)


# -- export ---------------------------------------------------------------------------------
def test_export_files_and_gold_pairs(exported):
    out, tasks, key = exported
    assert list(tasks.columns) == ["pair_id", "batch", "position", "original_audio", "modulated_audio", "kind"]
    assert set(tasks["kind"]) == {"test", "gold_identical", "gold_noisy"}
    n_batches = tasks["batch"].nunique()
    assert (tasks["kind"] == "gold_identical").sum() == n_batches == (tasks["kind"] == "gold_noisy").sum()
    files = set(tasks["original_audio"]) | set(tasks["modulated_audio"])
    assert files == {p.name for p in (out / "audio").iterdir()}
    for name in files:  # names reveal nothing: hashes only
        assert name.endswith(".wav") and len(name) == 20 and all(ch in "0123456789abcdef" for ch in name[:-4])
    for cid in ("laugh", "env", "nat", "gold", "u0"):
        assert not any(cid in f for f in files | set(tasks["pair_id"]))
    assert "condition" not in tasks.columns and "utt_id" not in tasks.columns
    info, _ = sf.info(out / "audio" / next(iter(files))), None
    assert info.subtype == "PCM_16" and info.samplerate == 16000
    k = key.set_index("pair_id")
    gi = tasks[tasks["kind"] == "gold_identical"].iloc[0]
    a, _ = sf.read(out / "audio" / gi["original_audio"])
    b, _ = sf.read(out / "audio" / gi["modulated_audio"])
    assert gi["original_audio"] != gi["modulated_audio"] and np.array_equal(a, b)
    gn = tasks[tasks["kind"] == "gold_noisy"].iloc[0]
    clean, _ = sf.read(out / "audio" / gn["original_audio"])
    noisy, _ = sf.read(out / "audio" / gn["modulated_audio"])
    gain = k.at[gn["pair_id"], "gain_modulated"]
    residual = noisy / gain - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(residual**2))
    assert snr < -29  # buried (up to 16-bit rounding)
    test = tasks[tasks["kind"] == "test"].iloc[0]
    assert k.at[test["pair_id"], "condition"] in ("laugh", "env-nat-cont-snr10")
    laugh = key[key["condition"] == "laugh"]
    assert np.allclose(laugh["duration_modulated"], laugh["duration_original"] * 1.2, atol=1e-3)


def test_readme_describes_columns_and_checks(exported):
    out, tasks, _ = exported
    write_readme(out / "README.txt", corpus="synthetic", n_test=int((tasks["kind"] == "test").sum()), n_utts=10,
                 n_batches=3, batch_size=20, gold_identical=1, gold_noisy=1, workers_per_pair=3,
                 gold_noisy_snr_db=-30, min_seconds_factor=1.0)
    text = (out / "README.txt").read_text()
    for word in ("tasks.csv", "key.csv", "gold_identical", "gold_noisy", "seconds", "bin midpoint"):
        assert word in text


# -- responses and quality control ------------------------------------------------------------
def test_qc_excludes_careless_and_fast_workers(study):
    key, responses, workers, valid, per_worker, qc, _, _ = study
    active = set(responses["worker"])
    bad = set(workers.loc[workers["kind"] != "good", "worker"]) & active
    assert bad and set(per_worker.loc[per_worker["excluded"], "worker"]) == bad
    kinds = workers.set_index("worker")["kind"]
    reasons = per_worker.set_index("worker")["reasons"]
    for w in bad:
        assert ("too_fast" in reasons[w]) == (kinds[w] == "fast")
        assert ("gold" in reasons[w]) == (kinds[w] == "careless")
    assert not set(valid["worker"]) & bad
    assert qc["n_workers"] == len(active) and qc["n_excluded_workers"] == len(bad)
    assert qc["worker_failure_rate"] == pytest.approx(len(bad) / len(active))
    assert qc["n_excluded_responses"] == int(responses["worker"].isin(bad).sum())
    assert 0 < qc["response_failure_rate"] < 1


def test_too_fast_uses_combined_duration(exported):
    _, tasks, key = exported
    pid = tasks.loc[tasks["kind"] == "test", "pair_id"].iloc[0]
    length = float(key.set_index("pair_id").loc[pid, ["duration_original", "duration_modulated"]].sum())
    frame = pd.DataFrame({"worker": ["a", "b"], "pair_id": [pid, pid], "same": [True, True],
                          "activation": np.nan, "valence": np.nan, "seconds": [length * 0.99, length * 1.01]})
    _, per, _ = quality_control(frame, key, min_seconds_factor=1.0)
    assert per.set_index("worker")["excluded"].to_dict() == {"a": True, "b": False}
    _, per, _ = quality_control(frame, key, min_seconds_factor=0.5)
    assert not per["excluded"].any()


def test_bad_responses_name_the_line(exported, tmp_path):
    _, tasks, key = exported
    pid = tasks["pair_id"].iloc[0]
    path = tmp_path / "responses.csv"
    path.write_text("worker,pair_id,same,activation,valence,seconds\n"
                    f"w1,{pid},same,,,12\n"
                    "w1,PNOSUCHPAIR,same,,,12\n"
                    f"w2,{pid},different,7,3,12\n"
                    f"w3,{pid},maybe,,,abc\n")
    with pytest.raises(ResponsesError) as error:
        read_responses(path, key)
    text = str(error.value)
    assert "line 3" in text and "PNOSUCHPAIR" in text and "unknown pair_id" in text
    assert "line 4" in text and "activation must be an integer 1-5, got '7'" in text
    assert "line 5" in text and "maybe" in text and "seconds" in text
    assert "line 2" not in text
    path.write_text("worker,pair_id,same\nw1,x,same\n")
    with pytest.raises(ResponsesError, match="missing column"):
        read_responses(path, key)


# -- Table 2, kappa, partition -----------------------------------------------------------------
def test_table2_recovers_true_effects(study):
    *_, judged, pairs = study
    conditions = condition_table(CONDITIONS)
    table = build_table2(judged, pairs, conditions).set_index("condition")
    laugh, env = table.loc["laugh"], table.loc["env-nat-cont-snr10"]
    assert 200 < laugh["n_pairs"] <= 252 and 200 < env["n_pairs"] <= 252  # pairs with a valid judgement
    assert laugh["frac_valence"] == pytest.approx(0.3, abs=0.08)
    assert laugh["frac_activation"] == pytest.approx(0.3, abs=0.08)
    assert laugh["delta_valence"] == pytest.approx(0.25, abs=0.07)
    assert laugh["delta_activation"] == pytest.approx(-0.25, abs=0.07)
    assert env["frac_valence"] < 0.04 and env["frac_activation"] < 0.04
    assert table.loc["pitch-up", "n_pairs"] == 0 and np.isnan(table.loc["pitch-up", "frac_valence"])
    assert laugh["n_judgements"] >= 2 * laugh["n_pairs"]


def test_kappa_in_range_and_higher_when_workers_agree(exported):
    out, tasks, _ = exported
    key = read_key(out / "key.csv")
    result = {}
    for error_rate in (0.02, 0.3):
        responses, _ = simulate_responses(tasks, key, true_change=TRUTH, n_workers=8, bad_worker_fraction=0,
                                          seed=SEED, error_rate=error_rate)
        frame = responses.assign(same=responses["same"] == "same",
                                 activation=pd.to_numeric(responses["activation"]),
                                 valence=pd.to_numeric(responses["valence"]))
        valid, _, _ = quality_control(frame, key)
        kappas = kappa_table(judgements(valid), min_shared=10).set_index("dimension")
        assert kappas["kappa"].between(-1, 1).all()
        assert (kappas["n_annotator_pairs"] > 0).all()
        result[error_rate] = kappas["kappa"]
    assert (result[0.02] > result[0.3] + 0.2).all()
    assert (result[0.02] > 0.7).all()


def test_kappa_counts_only_pairs_with_enough_shared_items():
    rows = []
    for item in range(12):
        for worker in ("a", "b"):
            rows.append({"pair_id": f"p{item}", "worker": worker, "changed_valence": item % 3 == 0,
                         "changed_activation": item % 2 == 0})
    rows += [{"pair_id": f"p{i}", "worker": "c", "changed_valence": True, "changed_activation": False} for i in range(5)]
    table = kappa_table(pd.DataFrame(rows), min_shared=10).set_index("dimension")
    assert table.loc["valence", "kappa"] == pytest.approx(1.0)
    assert table.loc["valence", "n_annotator_pairs"] == 1 and table.loc["valence", "n_shared_items"] == 12


def test_partition_from_study_and_config(study, tmp_path):
    *_, judged, pairs = study
    conditions = condition_table(CONDITIONS)
    table = build_table2(judged, pairs, conditions)
    part = partition(table, conditions, 0.05).set_index("condition")
    assert part.loc["laugh", "perception"] == "altering" and part.loc["laugh", "source"] == "study"
    assert part.loc["env-nat-cont-snr10", "perception"] == "retaining"
    assert part.loc["env-nat-cont-snr10", "source"] == "study"
    assert part.loc["pitch-up", "source"] == "config" and part.loc["pitch-up", "perception"] == "altering"
    assert (part["threshold"] == 0.05).all()
    assert partition(table, conditions, 0.5).set_index("condition").loc["laugh", "perception"] == "retaining"
    from_config = partition_from_config(conditions, 0.05)
    assert (from_config["source"] == "config").all()
    assert list(from_config.columns) == ["condition", "perception", "source", "frac_valence", "frac_activation",
                                         "threshold"]
    write_markdown(tmp_path / "t.md", table, kappa_table(judged), {"n_excluded_workers": 1, "n_workers": 10,
                   "worker_failure_rate": 0.1, "n_excluded_responses": 5, "n_responses": 50})
    text = (tmp_path / "t.md").read_text()
    assert "| laugh |" in text and "kappa" in text and "10.0%" in text


def test_judgement_rule_uses_tolerance():
    valid = pd.DataFrame({
        "kind": "test", "pair_id": ["p1", "p2", "p3", "p4"], "worker": "w", "condition": "c", "utt_id": "u",
        "same": [False, False, False, True], "activation": [3.0, 4.0, 3.0, np.nan], "valence": [2.0, 3.0, 3.0, np.nan],
        "original_activation": [2.5, 2.5, 3.0, 3.0], "original_valence": [2.0, 2.0, 3.0, 3.0]})
    judged = judgements(valid, tolerance=0.5).set_index("pair_id")
    assert judged["changed_activation"].tolist() == [False, True, False, False]
    assert judged["changed_valence"].tolist() == [False, True, False, False]
    assert judged.loc["p2", "delta_activation"] == pytest.approx(0.375)


# -- workflow ---------------------------------------------------------------------------------
@pytest.mark.workflow
def test_perception_through_the_workflow(tmp_path, ravdess_root, noise_root):
    """Shared RAVDESS: select + export + partition from config; then simulated responses -> Table 2 -> partition."""
    from workflow_helpers import run_snakemake, shared_overlay

    overlay = shared_overlay(ravdess_root, noise_root)
    overlay["augment"] = {"pools": ["test"], "conditions": ["env-nat-cont-snr10", "fade-in", "laugh", "drop-word"],
                          "quality": {"stoi": False, "pesq": False, "dnsmos": False, "fwsnrseg": False}}
    overlay["perception"] = {"n_per_bin": 10, "n_extreme": 3, "n_environmental": 1, "n_distortion": 2}
    targets = ["results/ravdess/perception/partition.csv", "results/ravdess/perception/export/tasks.csv"]
    run_snakemake(tmp_path, overlay, *targets)
    base = tmp_path / "results/ravdess/perception"
    sample = pd.read_csv(base / "sample.csv")
    assert len(sample) == 90 and (sample.groupby("bin").size() == 10).all()
    assert (sample.groupby("bin")["length"].apply(lambda s: (s == "extreme").sum()) == 3).all()
    mods = pd.read_csv(base / "modulations.csv")
    assert set(mods["condition"]) == {"env-nat-cont-snr10", "fade-in", "laugh", "drop-word"}  # RAVDESS aligned
    tasks = pd.read_csv(base / "export/tasks.csv")
    key = read_key(base / "export/key.csv")
    assert len(tasks) == len(key) and (tasks["kind"] == "test").sum() == len(mods) == 270
    assert set(tasks["original_audio"]) | set(tasks["modulated_audio"]) == {p.name for p in (base / "export/audio").glob("*.wav")}
    assert "gold_noisy" in (base / "export/README.txt").read_text()
    part = pd.read_csv(base / "partition.csv")
    assert (part["source"] == "config").all() and len(part) == 4
    assert not (tmp_path / "results/ravdess/tables/table2.csv").exists()

    overlay["perception"]["responses"] = "results/ravdess/perception/simulated_responses.csv"
    run_snakemake(tmp_path, overlay, "results/ravdess/tables/table2.md", *targets)
    table = pd.read_csv(tmp_path / "results/ravdess/tables/table2.csv").set_index("condition")
    assert table.loc["laugh", "n_pairs"] == (mods["condition"] == "laugh").sum() > 0
    assert table.loc["laugh", "frac_valence"] > 0.05
    part = pd.read_csv(base / "partition.csv").set_index("condition")
    assert part.loc["laugh", "perception"] == "altering" and part.loc["laugh", "source"] == "study"
    assert part.loc["env-nat-cont-snr10", "perception"] == "retaining"
    assert part.loc["drop-word", "source"] == "study"  # built and studied: RAVDESS is aligned
    qc = json.loads((base / "qc.json").read_text())
    assert qc["n_excluded_workers"] >= 1 and 0 < qc["worker_failure_rate"] < 1
    assert "kappa" in (tmp_path / "results/ravdess/tables/table2.md").read_text()
    # RQ1 (paper §8.1) beside Table 2: the simulated crowd's changes depend on the condition only.
    rq1 = pd.read_csv(base / "rq1.csv")
    assert set(rq1["scope"]) == {"all", "altering"} and set(rq1["factor"]) == {"length", "gender", "emotion"}
    emotions = rq1.loc[(rq1["scope"] == "all") & (rq1["factor"] == "emotion") & (rq1["dimension"] == "valence"),
                       "group_a"]
    assert len(emotions) >= 2 and set(emotions) <= set(pd.read_csv(tmp_path / "results/ravdess/manifest.csv")["emotion"])
    gender = rq1[(rq1["scope"] == "all") & (rq1["factor"] == "gender")]
    assert (gender["n_conditions"] == 4).all() and gender["p"].notna().all()  # the four built conditions, drop-word included
    assert not gender["significant"].any()
    assert "Dependence found" in (base / "rq1.md").read_text()
