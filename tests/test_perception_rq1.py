"""RQ1 checks beside Table 2 (sernoise.perception.rq1, paper §8.1) on hand-made responses with known dependence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sernoise.perception.rq1 import RQ1_COLUMNS, rq1_tests, utterance_groups, write_rq1_markdown
from sernoise.perception.select import PerceptionError
from sernoise.perception.table2 import judgements, pair_labels

EMOTIONS = ("angry", "happy", "neutral", "sad")
CONDITIONS = [f"c{i}" for i in range(8)]
BASE_RATE = np.linspace(0.05, 0.4, len(CONDITIONS))  # how often each condition changes a dimension


def _manifest(n: int = 96) -> pd.DataFrame:
    """Utterances whose gender, emotion and length vary independently of one another."""
    i = np.arange(n)
    return pd.DataFrame({"utt_id": [f"u{k:03d}" for k in i], "gender": np.where(i % 2 == 0, "F", "m"),
                         "emotion": [EMOTIONS[(k // 2) % 4] for k in i], "duration": 1.0 + (i // 8 % 12) * 0.4})


def _responses(manifest: pd.DataFrame, rate, seed: int = 0) -> pd.DataFrame:
    """Three valid judgements per (utterance, condition) pair, all three agreeing on the pair's truth.

    ``rate(utterance row, condition index, dimension)`` is the probability that the pair's
    dimension is changed (a changed dimension is rated 2 points off the original).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in manifest.itertuples(index=False):
        for c, condition in enumerate(CONDITIONS):
            changed = {d: rng.random() < rate(u, c, d) for d in ("valence", "activation")}
            for w in range(3):
                rows.append({"kind": "test", "pair_id": f"{u.utt_id}-{condition}", "worker": f"w{w}",
                             "condition": condition, "utt_id": u.utt_id, "same": not any(changed.values()),
                             "valence": 5.0 if changed["valence"] else 3.0,
                             "activation": 5.0 if changed["activation"] else 3.0,
                             "original_valence": 3.0, "original_activation": 3.0})
    frame = pd.DataFrame(rows)
    frame.loc[frame["same"], ["valence", "activation"]] = np.nan
    return frame


def _rq1(rate, seed: int = 0, altering=None) -> pd.DataFrame:
    manifest = _manifest()
    pairs = pair_labels(judgements(_responses(manifest, rate, seed)))
    return rq1_tests(pairs, utterance_groups(manifest), altering=altering)


def _row(table, factor, dimension, group_a=None, scope="all"):
    part = table[(table["scope"] == scope) & (table["factor"] == factor) & (table["dimension"] == dimension)]
    if group_a is not None:
        part = part[part["group_a"] == group_a]
    assert len(part) == 1
    return part.iloc[0]


def test_groups_split_length_at_the_corpus_quartiles():
    manifest = _manifest()
    groups = utterance_groups(manifest).set_index("utt_id")
    q1, q3 = np.quantile(manifest["duration"], [0.25, 0.75])
    short = manifest.loc[manifest["duration"] < q1, "utt_id"]
    long = manifest.loc[manifest["duration"] > q3, "utt_id"]
    assert (groups.loc[short, "length"] == "short").all() and (groups.loc[long, "length"] == "long").all()
    assert set(groups["length"]) == {"short", "middle", "long"} and set(groups["gender"]) == {"F", "M"}


def test_no_dependence_is_not_detected():
    table = _rq1(lambda u, c, d: BASE_RATE[c])
    assert list(table.columns) == RQ1_COLUMNS
    assert len(table) == 2 * (2 + len(EMOTIONS))  # two dimensions x (length, gender, one per emotion)
    assert not table["significant"].any()
    assert (table["n_conditions"] == len(CONDITIONS)).all() and table["p"].notna().all()
    assert set(table.loc[table["factor"] == "emotion", "n_tests"]) == {len(EMOTIONS)}
    assert set(table.loc[table["factor"] != "emotion", "n_tests"]) == {1}


def test_a_strong_gender_effect_on_valence_is_detected_and_nothing_else():
    table = _rq1(lambda u, c, d: BASE_RATE[c] + (0.4 if d == "valence" and u.gender == "F" else 0.0))
    gender = _row(table, "gender", "valence")
    assert gender["significant"] and gender["p_bonferroni"] < 0.001 and gender["mean_difference"] > 0.25
    assert (gender["group_a"], gender["group_b"]) == ("F", "M")
    assert not _row(table, "gender", "activation")["significant"]
    assert table["significant"].sum() == 1


def test_length_and_emotion_effects_are_detected():
    short_first = _rq1(lambda u, c, d: BASE_RATE[c] + (0.45 if u.duration < 2.0 and d == "activation" else 0.0))
    length = _row(short_first, "length", "activation")
    assert length["significant"] and length["mean_difference"] > 0.25
    assert not _row(short_first, "length", "valence")["significant"]

    angry = _rq1(lambda u, c, d: BASE_RATE[c] + (0.5 if u.emotion == "angry" and d == "valence" else 0.0))
    emotion = angry[(angry["factor"] == "emotion") & (angry["dimension"] == "valence")].set_index("group_a")
    assert emotion.loc["angry", "significant"] and emotion.loc["angry", "group_b"] == "other"
    assert emotion["mean_difference"].idxmax() == "angry"
    assert not angry.loc[angry["dimension"] == "activation", "significant"].any()


def test_altering_scope_keeps_only_the_given_conditions_and_degenerate_cases_are_noted():
    # Only c6 and c7 change anything, and only for women: over all 8 conditions the six zero
    # differences dilute the effect; restricted to the altering two, the difference is the same
    # in both (no variance) and is reported as such.
    table = _rq1(lambda u, c, d: (1.0 if u.gender == "F" else 0.0) if c >= 6 else 0.0, altering=["c6", "c7"])
    scoped = _row(table, "gender", "valence", scope="altering")
    assert scoped["n_conditions"] == 2 and scoped["mean_difference"] == 1.0
    assert scoped["p"] == 0.0 and scoped["t"] == np.inf and "same difference" in scoped["note"]
    nothing = _row(table, "length", "valence", scope="altering")
    assert (nothing["p"], nothing["t"], nothing["significant"]) == (1.0, 0.0, False)
    one = _rq1(lambda u, c, d: BASE_RATE[c], altering=["c3"])
    single = _row(one, "gender", "valence", scope="altering")
    assert single["n_conditions"] == 1 and np.isnan(single["p"]) and not single["significant"]
    assert "no paired test" in single["note"]


def test_markdown_and_errors(tmp_path):
    table = _rq1(lambda u, c, d: BASE_RATE[c] + (0.4 if d == "valence" and u.gender == "F" else 0.0))
    write_rq1_markdown(tmp_path / "rq1.md", table, corpus="toy")
    text = (tmp_path / "rq1.md").read_text()
    assert "Dependence found: gender (F vs M, valence)." in text and "| gender | valence | F | M |" in text
    manifest = _manifest()
    pairs = pair_labels(judgements(_responses(manifest, lambda u, c, d: 0.1)))
    with pytest.raises(PerceptionError, match="not in the manifest"):
        rq1_tests(pairs, utterance_groups(manifest.iloc[1:]))
    with pytest.raises(PerceptionError, match=r"manifest: RQ1 needs the column\(s\) \['emotion'\]"):
        utterance_groups(manifest.drop(columns="emotion"))
