"""RAVDESS adapter (sernoise.corpora.ravdess) on the shared data and on small placeholder trees."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sernoise.corpora import scan_corpus
from sernoise.corpora.manifest import MANIFEST_COLUMNS, ManifestError
from sernoise.corpora.ravdess import DEFAULT_CIRCUMPLEX, actor_group, parse_name, scan

RAVDESS_EMOTIONS = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}


# --- file names ------------------------------------------------------------------------------


def test_parse_name_valid():
    assert parse_name("03-01-05-02-01-02-17.wav") == {
        "modality": "03",
        "channel": "01",
        "emotion": "angry",
        "intensity": "strong",
        "statement": "01",
        "repetition": "02",
        "actor": 17,
    }


@pytest.mark.parametrize(
    "code, emotion",
    [("01", "neutral"), ("02", "calm"), ("03", "happy"), ("04", "sad"),
     ("05", "angry"), ("06", "fearful"), ("07", "disgust"), ("08", "surprised")],
)
def test_parse_name_emotion_codes(code, emotion):
    labels = parse_name(f"03-01-{code}-01-02-01-24.wav")
    assert labels["emotion"] == emotion
    assert labels["intensity"] == "normal"
    assert labels["statement"] == "02"
    assert labels["actor"] == 24


def test_parse_name_song_channel():
    assert parse_name("03-02-03-01-01-01-01.wav")["channel"] == "02"


@pytest.mark.parametrize(
    "name",
    [
        "03-01-09-01-01-01-01.wav",  # unknown emotion
        "03-01-01-03-01-01-01.wav",  # unknown intensity
        "03-01-01-01-01-01.wav",  # a field short
        "03-01-01-01-01-01-1.wav",  # one digit actor
        "03-01-01-01-01-01-01.mp3",
        "03_01_01_01_01_01_01.wav",
        "notes.wav",
        "03-01-01-01-01-01-01.wav.bak",
    ],
)
def test_parse_name_errors_name_the_file(name):
    with pytest.raises(ValueError) as info:
        parse_name(name)
    assert name in str(info.value)


@pytest.mark.parametrize(
    "actor, group",
    [(1, "pair01"), (2, "pair01"), (3, "pair02"), (9, "pair05"), (10, "pair05"), (23, "pair12"), (24, "pair12")],
)
def test_actor_group(actor, group):
    assert actor_group(actor) == group


def test_actor_groups_are_one_male_one_female_pairs():
    groups = {}
    for actor in range(1, 25):
        groups.setdefault(actor_group(actor), []).append(actor)
    assert len(groups) == 12
    assert all(len(a) == 2 and a[0] % 2 == 1 and a[1] == a[0] + 1 for a in groups.values())


# --- the shared data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_scan(ravdess_root):
    return scan(ravdess_root)


@pytest.mark.shared_data
def test_scan_shared_shape(shared_scan, ravdess_root):
    frame = shared_scan
    assert len(frame) == 600
    assert list(frame.columns) == MANIFEST_COLUMNS
    assert frame["utt_id"].is_unique
    assert frame["utt_id"].tolist() == sorted(frame["utt_id"])
    assert set(frame["speaker"]) == {f"Actor_{a:02d}" for a in range(1, 11)}
    assert frame["speaker"].value_counts().eq(60).all()
    assert set(frame["group"]) == {f"pair{p:02d}" for p in range(1, 6)}
    assert frame["group"].value_counts().eq(120).all()
    assert set(frame["emotion"]) == RAVDESS_EMOTIONS


@pytest.mark.shared_data
def test_scan_shared_rows_match_files(shared_scan, ravdess_root):
    for row in shared_scan.itertuples():
        path = Path(row.path)
        assert path.is_file()
        assert path.parent.name == row.speaker
        assert path.stem == row.utt_id
        assert path.parent.parent == Path(ravdess_root)
        labels = parse_name(path.name)
        assert labels["emotion"] == row.emotion
        assert f"Actor_{labels['actor']:02d}" == row.speaker
        assert actor_group(labels["actor"]) == row.group


@pytest.mark.shared_data
def test_scan_shared_gender(shared_scan):
    for speaker, gender in zip(shared_scan["speaker"], shared_scan["gender"]):
        number = int(speaker.split("_")[1])
        assert gender == ("M" if number % 2 else "F")
    assert set(shared_scan["gender"]) == {"M", "F"}


@pytest.mark.shared_data
def test_scan_shared_bins_follow_default_circumplex(shared_scan):
    seen = set()
    for row in shared_scan.itertuples():
        intensity = parse_name(row.utt_id + ".wav")["intensity"]
        seen.add((row.emotion, intensity))
        assert [row.activation_bin, row.valence_bin] == DEFAULT_CIRCUMPLEX[row.emotion][intensity]
    assert len(seen) == 15  # neutral has only the normal intensity in RAVDESS


@pytest.mark.shared_data
def test_scan_shared_empty_columns_and_transcripts(shared_scan):
    for column in ("activation", "valence", "dominance", "duration", "sample_rate"):
        assert shared_scan[column].isna().all(), column
    # The transcript is the statement's text (the aligner's input); alignments come later (rule align_shard).
    statements = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
    for row in shared_scan.itertuples():
        assert row.transcript == statements[parse_name(row.utt_id + ".wav")["statement"]]
    assert (shared_scan["alignment"] == "").all()


@pytest.mark.shared_data
def test_scan_circumplex_override_changes_only_that_entry(shared_scan, ravdess_root):
    before = copy.deepcopy(DEFAULT_CIRCUMPLEX)
    override = scan(ravdess_root, {"circumplex": {"happy": {"strong": ["low", "mid"]}}})
    assert DEFAULT_CIRCUMPLEX == before  # the module default is not mutated
    strong_happy = override["utt_id"].str.match(r"^03-01-03-02-")
    assert strong_happy.sum() == 40  # 10 actors x 2 statements x 2 repetitions
    assert (override.loc[strong_happy, "activation_bin"] == "low").all()
    assert (override.loc[strong_happy, "valence_bin"] == "mid").all()
    rest = ~strong_happy
    assert override.loc[rest].reset_index(drop=True).equals(shared_scan.loc[rest].reset_index(drop=True))
    # happy at normal intensity keeps its default placement
    normal_happy = override["utt_id"].str.match(r"^03-01-03-01-")
    assert (override.loc[normal_happy, "activation_bin"] == "mid").all()
    assert (override.loc[normal_happy, "valence_bin"] == "high").all()


@pytest.mark.shared_data
def test_scan_actors_option(ravdess_root):
    frame = scan(ravdess_root, {"actors": [4, 1]})
    assert len(frame) == 120
    assert set(frame["speaker"]) == {"Actor_01", "Actor_04"}
    assert set(frame["group"]) == {"pair01", "pair02"}


@pytest.mark.shared_data
def test_scan_actors_option_without_matches(ravdess_root):
    with pytest.raises(FileNotFoundError):
        scan(ravdess_root, {"actors": [20]})


@pytest.mark.shared_data
def test_scan_corpus_dispatch(ravdess_root):
    frame = scan_corpus("ravdess", ravdess_root, {"actors": [2]})
    assert set(frame["speaker"]) == {"Actor_02"}
    assert set(frame["gender"]) == {"F"}


# --- placeholder trees (scan does not read audio) --------------------------------------------


def _tree(root: Path, names: dict[str, list[str]]) -> Path:
    for folder, files in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            (root / folder / name).write_bytes(b"")
    return root


def test_scan_skips_song_files(tmp_path):
    root = _tree(
        tmp_path / "ravdess",
        {
            "Actor_03": ["03-01-04-02-01-01-03.wav", "03-02-04-02-01-01-03.wav"],
            "Actor_12": ["03-01-08-01-02-02-12.wav", "03-02-01-01-01-01-12.wav"],
        },
    )
    frame = scan(root)
    assert frame["utt_id"].tolist() == ["03-01-04-02-01-01-03", "03-01-08-01-02-02-12"]
    assert frame["group"].tolist() == ["pair02", "pair06"]
    assert frame["gender"].tolist() == ["M", "F"]
    assert frame["activation_bin"].tolist() == ["mid", "high"]  # sad strong, surprised normal
    assert frame["valence_bin"].tolist() == ["low", "mid"]


def test_scan_only_song_files_raises(tmp_path):
    root = _tree(tmp_path / "ravdess", {"Actor_01": ["03-02-01-01-01-01-01.wav"]})
    with pytest.raises(FileNotFoundError, match=str(root)):
        scan(root)


def test_scan_non_ravdess_name_raises(tmp_path):
    root = _tree(tmp_path / "ravdess", {"Actor_01": ["03-01-01-01-01-01-01.wav", "take2.wav"]})
    with pytest.raises(ValueError, match="take2.wav"):
        scan(root)


def test_scan_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        scan(missing)
    assert str(missing) in str(info.value)


def test_scan_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        scan(tmp_path / "empty")


@pytest.mark.parametrize(
    "circumplex, fragment",
    [
        ({"bored": {"normal": ["low", "low"]}}, "bored"),
        ({"happy": {"extreme": ["low", "low"]}}, "extreme"),
        ({"happy": {"normal": ["low", "hi"]}}, "'hi'"),
        ({"happy": {"normal": ["low"]}}, "happy.normal"),
        ({"sad": {"strong": ["low", "low", "low"]}}, "sad.strong"),
    ],
)
def test_scan_invalid_circumplex(tmp_path, circumplex, fragment):
    root = _tree(tmp_path / "ravdess", {"Actor_01": ["03-01-01-01-01-01-01.wav"]})
    with pytest.raises(ManifestError) as info:
        scan(root, {"circumplex": circumplex})
    assert fragment in str(info.value)
