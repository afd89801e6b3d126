"""Leave-one-speaker-out folds, the folds.scheme switch and the cross-corpus split (sernoise.folds, issue 15)."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from sernoise.config import ConfigError, load_config, validate_config
from sernoise.folds import (
    LOSO_COLUMNS, FoldError, check_folds, check_loso_folds, cross_corpus_split, folds_from_config, make_folds,
    make_loso_folds, speaker_groups, split_of,
)
from sernoise.training.data import role_utterances

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"


def _iemocap_like(sessions=5, utts=3) -> pd.DataFrame:
    rows = [{"utt_id": f"Ses{s:02d}{g}_{u}", "speaker": f"Ses{s:02d}{g}", "group": f"Session{s}",
             "emotion": ["ang", "hap", "neu", "sad"][u % 4]}
            for s in range(1, sessions + 1) for g in "FM" for u in range(utts)]
    return pd.DataFrame(rows)


def _roles(folds, fold):
    table = folds[folds["fold"] == fold]
    return {role: set(table.loc[table["role"] == role, "speaker"]) for role in ("train", "val", "test")}


def test_one_fold_per_speaker_validated_on_the_session_partner():
    manifest = _iemocap_like()
    folds = make_loso_folds(manifest.sample(frac=1.0, random_state=3))  # row order does not matter
    assert list(folds.columns) == LOSO_COLUMNS
    assert folds["fold"].nunique() == 10 and len(folds) == 100
    speakers = sorted(manifest["speaker"].unique())
    for k, speaker in enumerate(speakers, start=1):
        roles = _roles(folds, k)
        partner = speaker[:-1] + ("M" if speaker.endswith("F") else "F")
        assert roles == {"test": {speaker}, "val": {partner}, "train": set(speakers) - {speaker, partner}}
    check_folds(manifest, folds)  # dispatches on the speaker column
    # coverage, counted independently of the checker: every utterance tested exactly once
    tested = pd.concat([split_of(manifest, folds, k, "test") for k in range(1, 11)])
    assert sorted(tested["utt_id"]) == sorted(manifest["utt_id"])
    for k in range(1, 11):  # no utterance in two roles of one fold
        parts = [set(split_of(manifest, folds, k, r)["utt_id"]) for r in ("train", "val", "test")]
        assert sum(map(len, parts)) == len(manifest) and set.union(*parts) == set(manifest["utt_id"])
    assert role_utterances(manifest, folds, 3, "test") == sorted(manifest.loc[manifest["speaker"] == "Ses02F", "utt_id"])


def test_ravdess_actor_pairs(ravdess_root):
    from sernoise.corpora import scan_corpus

    manifest = scan_corpus("ravdess", ravdess_root)
    folds = make_loso_folds(manifest)
    n = manifest["speaker"].nunique()
    assert folds["fold"].nunique() == n
    assert _roles(folds, 1)["test"] == {"Actor_01"} and _roles(folds, 1)["val"] == {"Actor_02"}
    assert _roles(folds, 4)["test"] == {"Actor_04"} and _roles(folds, 4)["val"] == {"Actor_03"}
    check_loso_folds(manifest, folds)


def test_single_speaker_group_and_single_group_are_errors():
    manifest = _iemocap_like()
    lonely = manifest[manifest["speaker"] != "Ses03M"]
    with pytest.raises(FoldError, match=r"group\(s\) with one speaker: Session3 \(Ses03F\)"):
        make_loso_folds(lonely)
    # a configured pairing repairs it: Ses03F validates on (and with) Session4
    folds = make_loso_folds(lonely, {"Ses03F": "Session4"})
    assert _roles(folds, folds.loc[(folds["speaker"] == "Ses03F") & (folds["role"] == "test"), "fold"].item())["val"] \
        == {"Ses04F", "Ses04M"}
    check_loso_folds(lonely, folds)
    with pytest.raises(FoldError, match="need two or more groups"):
        make_loso_folds(_iemocap_like(sessions=1))
    with pytest.raises(FoldError, match=r"speaker_groups: speaker\(s\) \['Ses09F'\] are not in the manifest"):
        make_loso_folds(manifest, {"Ses09F": "Session1"})
    mixed = manifest.copy()
    mixed.loc[mixed["utt_id"] == "Ses01F_0", "group"] = "Session2"
    with pytest.raises(FoldError, match=r"ambiguous: \['Ses01F \(Session1, Session2\)'\]"):
        speaker_groups(mixed)


def test_check_loso_folds_finds_leaks_and_coverage_problems():
    manifest = _iemocap_like()
    folds = make_loso_folds(manifest)
    leak = pd.concat([folds, pd.DataFrame([{"fold": 2, "speaker": "Ses01F", "role": "test"}])], ignore_index=True)
    with pytest.raises(FoldError) as info:
        check_loso_folds(manifest, leak)
    text = str(info.value)
    assert "fold 2: speaker Ses01F is in both test and val" in text
    assert "fold 2: 2 test speakers ['Ses01F', 'Ses01M']" in text
    assert "3 utterance(s) tested [2] times instead of once" in text
    dropped = folds[~((folds["fold"] == 5) & (folds["speaker"] == "Ses03F"))]
    with pytest.raises(FoldError) as info:
        check_loso_folds(manifest, dropped)
    assert "fold 5: speaker(s) ['Ses03F'] have no role" in str(info.value)
    assert "fold 5: 0 test speakers" in str(info.value)
    assert "3 utterance(s) tested [0] times" in str(info.value)
    novalidation = folds.copy()
    novalidation.loc[(novalidation["fold"] == 1) & (novalidation["role"] == "val"), "role"] = "train"
    with pytest.raises(FoldError, match="fold 1: no val speaker"):
        check_loso_folds(manifest, novalidation)


def test_csv_round_trip(tmp_path):
    manifest = _iemocap_like()
    path = tmp_path / "folds.csv"
    make_loso_folds(manifest).to_csv(path, index=False)
    folds = pd.read_csv(path, dtype={"group": str})
    check_folds(manifest, folds)
    assert len(split_of(manifest, folds, 10, "test")) == 3


def test_folds_from_config_keeps_group_folds_and_checks_loso_count():
    manifest = _iemocap_like()
    groups = folds_from_config(manifest, {"n_folds": 5})
    assert groups.to_csv(index=False) == make_folds(manifest["group"], 5).to_csv(index=False)
    assert folds_from_config(manifest, {"n_folds": 5, "scheme": "groups"}).equals(groups)
    loso = folds_from_config(manifest, {"n_folds": 10, "scheme": "loso"})
    assert loso.equals(make_loso_folds(manifest))
    with pytest.raises(FoldError, match="has 10 speakers but folds.n_folds is 5; set folds.n_folds: 10"):
        folds_from_config(manifest, {"n_folds": 5, "scheme": "loso"})
    with pytest.raises(FoldError, match="folds.scheme must be one of"):
        folds_from_config(manifest, {"n_folds": 5, "scheme": "random"})


def test_config_schema_accepts_the_scheme_without_changing_defaults():
    base = load_config([ROOT / "config.yaml"], SCHEMA)
    assert base["folds"] == {"n_folds": 5}  # nothing filled in: today's configs stay as they were
    config = copy.deepcopy(base)
    config["folds"] = {"n_folds": 10, "scheme": "loso", "speaker_groups": {"Ses03F": "Session4"}}
    validate_config(config, SCHEMA)
    config["folds"]["scheme"] = "speakers"
    with pytest.raises(ConfigError, match="folds.scheme"):
        validate_config(config, SCHEMA)


# --------------------------------------------------------------------------- cross-corpus split


def _target_corpus(counts=None) -> pd.DataFrame:
    counts = counts or {"angry": 100, "happy": 60, "neutral": 40, "sad": 20, "other": 7}
    rows = [{"utt_id": f"{emotion}_{i:03d}", "speaker": f"s{i % 6}", "emotion": emotion}
            for emotion, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows)


def test_cross_corpus_split_is_stratified_and_seeded():
    corpus = _target_corpus()
    split = cross_corpus_split(corpus, seed=7)
    assert list(split.columns) == ["utt_id", "speaker", "emotion", "label", "role"]
    assert set(split["role"]) == {"val", "test"}
    assert split.groupby("label")["role"].apply(lambda r: int((r == "val").sum())).to_dict() == {
        "angry": 30, "happy": 18, "neutral": 12, "other": 2, "sad": 6}
    assert split["utt_id"].is_monotonic_increasing
    again = cross_corpus_split(corpus.sample(frac=1.0, random_state=1), seed=7)
    assert again.equals(split)  # same seed, any row order: the same split
    other = cross_corpus_split(corpus, seed=8)
    assert not other["role"].equals(split["role"])
    # removing utterances does not move the others (each is hashed on its own)
    smaller = cross_corpus_split(corpus[corpus["emotion"] != "other"], seed=7)
    assert smaller.set_index("utt_id")["role"].to_dict() == \
        split[split["label"] != "other"].set_index("utt_id")["role"].to_dict()


def test_cross_corpus_split_fraction_labels_and_errors():
    corpus = _target_corpus({"angry": 10, "happy": 3, "sad": 1})
    split = cross_corpus_split(corpus, seed=1, val_fraction=0.5)
    assert split.groupby("label")["role"].apply(lambda r: int((r == "val").sum())).to_dict() == {
        "angry": 5, "happy": 2, "sad": 0}
    tiny = cross_corpus_split(_target_corpus({"angry": 2, "happy": 10}), seed=1, val_fraction=0.1)
    assert sorted(tiny.loc[tiny["label"] == "angry", "role"]) == ["test", "val"]  # both parts see every class
    targets = {u: (0 if u.startswith("angry") else 1) for u in corpus["utt_id"] if not u.startswith("sad")}
    by_targets = cross_corpus_split(corpus, seed=1, labels=targets)
    assert len(by_targets) == 13 and set(by_targets["label"]) == {0, 1}
    with pytest.raises(FoldError, match="strictly between 0 and 1"):
        cross_corpus_split(corpus, seed=1, val_fraction=1.0)
    with pytest.raises(FoldError, match="no column 'label4'"):
        cross_corpus_split(corpus, seed=1, label_column="label4")
    with pytest.raises(FoldError, match="no labelled utterance"):
        cross_corpus_split(corpus, seed=1, labels={})


def test_make_folds_rule_script(tmp_path):
    """The rule's script: today's group table byte for byte without a scheme; LOSO when the config asks."""
    import runpy
    from types import SimpleNamespace

    from sernoise.corpora.manifest import MANIFEST_COLUMNS

    manifest = _iemocap_like().reindex(columns=MANIFEST_COLUMNS)
    manifest.to_csv(tmp_path / "manifest.csv", index=False)

    def run(folds_config, n_folds, out):
        smk = SimpleNamespace(input=SimpleNamespace(manifest=str(tmp_path / "manifest.csv")), output=[str(out)],
                              params=SimpleNamespace(n_folds=n_folds), config={"folds": folds_config},
                              log=[str(tmp_path / "make_folds.log")], rule="make_folds")
        runpy.run_path(str(ROOT / "workflow" / "scripts" / "make_folds.py"), init_globals={"snakemake": smk})
        return out.read_text()

    expected = make_folds(manifest["group"], 5).to_csv(index=False)
    assert run({"n_folds": 5}, 5, tmp_path / "a.csv") == expected
    assert "5 folds over 5 groups" in (tmp_path / "make_folds.log").read_text()
    loso = run({"n_folds": 10, "scheme": "loso"}, 10, tmp_path / "b.csv")
    assert loso.splitlines()[:3] == ["fold,speaker,role", "1,Ses01F,test", "1,Ses01M,val"]
    with pytest.raises(FoldError, match="set folds.n_folds: 10"):
        run({"n_folds": 5, "scheme": "loso"}, 5, tmp_path / "c.csv")
