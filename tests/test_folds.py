"""Speaker-independent folds (sernoise.folds)."""

from __future__ import annotations

import pandas as pd
import pytest

from sernoise.folds import FOLD_COLUMNS, FoldError, check_folds, make_folds, split_of

SESSIONS = [f"Session{i}" for i in range(1, 6)]
PAIRS = [f"pair{i:02d}" for i in range(1, 13)]


def _manifest(groups, speakers_per_group=2, utts_per_speaker=2) -> pd.DataFrame:
    rows = []
    for group in groups:
        for s in range(speakers_per_group):
            for u in range(utts_per_speaker):
                rows.append({"utt_id": f"{group}_{s}_{u}", "speaker": f"{group}_spk{s}", "group": group})
    return pd.DataFrame(rows)


def _roles(folds, fold):
    table = folds[folds["fold"] == fold]
    return {role: set(table[table["role"] == role]["group"]) for role in ("train", "val", "test")}


def test_paper_protocol_on_iemocap_sessions():
    folds = make_folds(reversed(SESSIONS), 5)
    assert list(folds.columns) == FOLD_COLUMNS
    assert len(folds) == 25
    assert sorted(folds["fold"].unique()) == [1, 2, 3, 4, 5]
    for k in range(1, 6):
        roles = _roles(folds, k)
        test = f"Session{k}"
        val = f"Session{k % 5 + 1}"
        assert roles["test"] == {test}
        assert roles["val"] == {val}
        assert roles["train"] == set(SESSIONS) - {test, val}


def test_paper_protocol_table_order():
    folds = make_folds(SESSIONS, 5)
    assert folds["fold"].tolist() == [k for k in range(1, 6) for _ in range(5)]
    assert folds["group"].tolist() == SESSIONS * 5
    assert folds.loc[folds["fold"] == 5, "role"].tolist() == ["val", "train", "train", "train", "test"]


def test_ravdess_pairs_into_five_folds():
    folds = make_folds(PAIRS, 5)
    assert len(folds) == 12 * 5
    tests = folds[folds["role"] == "test"]["group"]
    assert sorted(tests) == PAIRS  # every group tests exactly once
    for k in range(1, 6):
        table = folds[folds["fold"] == k]
        assert sorted(table["group"]) == PAIRS  # every group has exactly one role
        roles = _roles(folds, k)
        assert all(roles[r] for r in roles)
        assert roles["train"] | roles["val"] | roles["test"] == set(PAIRS)
        assert not (roles["train"] & roles["val"] or roles["train"] & roles["test"] or roles["val"] & roles["test"])
    # round robin: 12 groups -> blocks of 3, 3, 2, 2, 2; fold k validates on fold k+1's test block
    assert _roles(folds, 1)["test"] == {"pair01", "pair06", "pair11"}
    assert _roles(folds, 1)["val"] == {"pair02", "pair07", "pair12"}
    assert _roles(folds, 5)["test"] == {"pair05", "pair10"}
    assert _roles(folds, 5)["val"] == {"pair01", "pair06", "pair11"}
    for k in range(1, 6):
        assert _roles(folds, k)["val"] == _roles(folds, k % 5 + 1)["test"]
    check_folds(_manifest(PAIRS), folds)


def test_natural_ordering():
    groups = [f"Session{i}" for i in range(1, 11)]
    folds = make_folds(sorted(groups), 5)  # lexicographic input: Session1, Session10, Session2, ...
    assert _roles(folds, 1)["test"] == {"Session1", "Session6"}
    assert _roles(folds, 5)["test"] == {"Session5", "Session10"}
    assert folds[folds["fold"] == 1]["group"].tolist() == groups  # Session10 after Session9


def test_groups_deduplicated_and_stringified():
    folds = make_folds([3, 1, 2, 1, 3, 2, 4], 3)
    assert set(folds["group"]) == {"1", "2", "3", "4"}
    assert len(folds) == 12
    assert _roles(folds, 1)["test"] == {"1", "4"}


def test_too_few_groups():
    with pytest.raises(FoldError, match="only 4 group"):
        make_folds(SESSIONS[:4], 5)
    with pytest.raises(FoldError):
        make_folds(["a", "a", "b", "b", "c"], 4)  # duplicates do not count twice


@pytest.mark.parametrize("n_folds", [0, 1, 2])
def test_n_folds_below_three(n_folds):
    with pytest.raises(FoldError, match="at least 3"):
        make_folds(SESSIONS, n_folds)


# --- check_folds -----------------------------------------------------------------------------


def test_check_folds_passes_on_good_folds():
    check_folds(_manifest(SESSIONS), make_folds(SESSIONS, 5))
    check_folds(_manifest([f"g{i}" for i in range(7)]), make_folds([f"g{i}" for i in range(7)], 3))


def test_check_folds_speaker_in_two_groups():
    manifest = _manifest(SESSIONS)
    manifest.loc[manifest["group"] == "Session2", "speaker"] = "Session1_spk0"  # one speaker, two groups
    with pytest.raises(FoldError, match="speaker Session1_spk0 is in both"):
        check_folds(manifest, make_folds(SESSIONS, 5))


def test_check_folds_speaker_in_two_train_groups_is_fine():
    manifest = _manifest(SESSIONS)
    folds = make_folds(SESSIONS, 5)
    # Session3 and Session4 are both train in fold 1 only; everywhere else they differ -> leak elsewhere
    manifest.loc[manifest["group"] == "Session4", "speaker"] = "Session3_spk0"
    with pytest.raises(FoldError) as info:
        check_folds(manifest, folds)
    assert "fold 1:" not in str(info.value)  # same role in fold 1: no leak there
    assert "fold 2: speaker Session3_spk0" in str(info.value)


def test_check_folds_group_tested_twice_and_never():
    folds = make_folds(SESSIONS, 5)
    fold2 = folds["fold"] == 2
    folds.loc[fold2 & (folds["group"] == "Session2"), "role"] = "train"
    folds.loc[fold2 & (folds["group"] == "Session1"), "role"] = "test"
    with pytest.raises(FoldError) as info:
        check_folds(_manifest(SESSIONS), folds)
    assert "group Session1 is tested 2 times" in str(info.value)
    assert "group Session2 is tested 0 times" in str(info.value)


def test_check_folds_group_missing_from_fold():
    folds = make_folds(SESSIONS, 5)
    folds = folds[~((folds["fold"] == 3) & (folds["group"] == "Session5"))]
    with pytest.raises(FoldError, match=r"fold 3: group\(s\) \['Session5'\] have no role"):
        check_folds(_manifest(SESSIONS), folds)


def test_check_folds_group_unknown_to_folds():
    manifest = _manifest(SESSIONS + ["Session6"])
    with pytest.raises(FoldError) as info:
        check_folds(manifest, make_folds(SESSIONS, 5))
    assert "Session6" in str(info.value)
    assert "group Session6 is tested 0 times" in str(info.value)


def test_check_folds_group_with_two_roles():
    folds = make_folds(SESSIONS, 5)
    extra = pd.DataFrame([{"fold": 1, "group": "Session3", "role": "val"}])
    with pytest.raises(FoldError, match="more than one role"):
        check_folds(_manifest(SESSIONS), pd.concat([folds, extra], ignore_index=True))


def test_check_folds_empty_role():
    folds = make_folds(SESSIONS, 5)
    folds.loc[(folds["fold"] == 4) & (folds["role"] == "val"), "role"] = "train"
    with pytest.raises(FoldError) as info:
        check_folds(_manifest(SESSIONS), folds)
    assert "fold 4: no val group" in str(info.value)
    assert "fold 1:" not in str(info.value)


def test_check_folds_unknown_role():
    folds = make_folds(SESSIONS, 5)
    folds.loc[(folds["fold"] == 2) & (folds["group"] == "Session5"), "role"] = "dev"
    with pytest.raises(FoldError, match=r"unknown role\(s\) \['dev'\]"):
        check_folds(_manifest(SESSIONS), folds)


def test_check_folds_reports_all_problems():
    folds = make_folds(SESSIONS, 5)
    folds.loc[(folds["fold"] == 4) & (folds["role"] == "val"), "role"] = "train"
    folds = folds[~((folds["fold"] == 2) & (folds["group"] == "Session1"))]
    with pytest.raises(FoldError) as info:
        check_folds(_manifest(SESSIONS), folds)
    assert "fold 4: no val group" in str(info.value)
    assert "fold 2: group(s) ['Session1'] have no role" in str(info.value)


def test_check_folds_read_back_from_csv(tmp_path):
    """Fold tables come back from CSV with integer-looking groups as numbers; they still match."""
    groups = ["1", "2", "3"]
    path = tmp_path / "folds.csv"
    make_folds(groups, 3).to_csv(path, index=False)
    check_folds(_manifest(groups), pd.read_csv(path))


# --- split_of --------------------------------------------------------------------------------


def test_split_of():
    manifest = _manifest(PAIRS)
    folds = make_folds(PAIRS, 5)
    test = split_of(manifest, folds, 1, "test")
    assert set(test["group"]) == {"pair01", "pair06", "pair11"}
    assert len(test) == 3 * 4
    val = split_of(manifest, folds, "1", "val")  # fold numbers from wildcards are strings
    assert set(val["group"]) == {"pair02", "pair07", "pair12"}
    train = split_of(manifest, folds, 1, "train")
    assert len(train) + len(val) + len(test) == len(manifest)
    assert set(train["utt_id"]).isdisjoint(test["utt_id"])
    assert set(train["speaker"]).isdisjoint(set(test["speaker"]) | set(val["speaker"]))
    assert test.index.isin(manifest.index).all()
    assert split_of(manifest, folds, 6, "test").empty
