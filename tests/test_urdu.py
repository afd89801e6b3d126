"""URDU adapter (sernoise.corpora.urdu) on the shared copy and on tiny synthesised layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sernoise.corpora import ADAPTERS, scan_corpus
from sernoise.corpora.manifest import MANIFEST_COLUMNS, ManifestError
from sernoise.corpora.urdu import FOLDERS, GROUP, parse_name, scan


@pytest.fixture(scope="module")
def urdu_root(shared_data) -> Path:
    root = shared_data / "urdu"
    if not root.is_dir():
        pytest.skip(f"URDU not found at {root} (expected ../shared/data/urdu beside the repository)")
    return root


def _layout(root: Path, names: dict[str, list[str]]) -> Path:
    """Empty placeholder files: the adapter reads names only (audio is read by the prepare stage)."""
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for folder, files in names.items():
        for name in files:
            (root / folder / name).write_bytes(b"")
    return root


TINY = {"Angry": ["SM1_F01_A001.wav", "SM1_F02_A002.wav"], "Happy": ["SF2_F1_H01.wav", "SM3_F01_H002.wav"],
        "Neutral": ["SM3_F02_N001.wav"], "Sad": ["SF10_F1_S01.wav"]}


def test_shared_copy_has_400_files_of_4_emotions(urdu_root):
    manifest = scan_corpus("urdu", urdu_root)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert len(manifest) == 400
    assert manifest["emotion"].value_counts().to_dict() == {"angry": 100, "happy": 100, "neutral": 100, "sad": 100}
    assert set(manifest["group"]) == {GROUP}
    assert set(manifest["gender"]) == {"M", "F"}
    assert manifest["utt_id"].is_unique
    # Angry has 4 speakers (data README), and the corpus-wide ids recur across folders (SM3 in three of them)
    assert manifest.loc[manifest["emotion"] == "angry", "speaker"].nunique() == 4
    assert set(manifest.loc[manifest["speaker"] == "SM3", "emotion"]) == {"angry", "happy", "neutral"}
    assert all(Path(p).is_file() for p in manifest["path"])
    by_emotion = scan(urdu_root, {"speaker_scope": "emotion"})
    assert by_emotion["speaker"].nunique() > manifest["speaker"].nunique()
    assert set(by_emotion.loc[by_emotion["utt_id"] == "SM1_F10_A010", "speaker"]) == {"Angry/SM1"}


def test_tiny_layout_rows(tmp_path):
    manifest = scan(_layout(tmp_path, TINY))
    assert "urdu" in ADAPTERS
    row = manifest.set_index("utt_id").loc["SF2_F1_H01"]
    assert (row["speaker"], row["gender"], row["emotion"], row["group"]) == ("SF2", "F", "happy", "urdu")
    assert row["path"] == str(tmp_path / "Happy" / "SF2_F1_H01.wav")
    assert manifest["utt_id"].tolist() == sorted(manifest["utt_id"])  # byte-stable order
    assert manifest.groupby("emotion").size().to_dict() == {"angry": 2, "happy": 2, "neutral": 1, "sad": 1}
    # leading zeros do not make two speakers of one: SM01 and SM1 are the same id
    assert parse_name("SM01_F3_A004.wav")["speaker"] == "SM1"


@pytest.mark.parametrize("name", ["SX1_F01_A001.wav", "SM1_A001.wav", "M1_F01_A001.wav",
                                  "SM1-F01-A001.wav"])
def test_unparsable_name_is_named(tmp_path, name):
    _layout(tmp_path, {"Angry": [name]})
    with pytest.raises(ManifestError, match=name.replace(".", r"\.")):
        scan(tmp_path)


def test_folder_emotion_mismatch_is_named(tmp_path):
    _layout(tmp_path, {"Sad": ["SM1_F01_S001.wav", "SM2_F01_A002.wav"]})
    with pytest.raises(ManifestError, match=r"Sad/SM2_F01_A002\.wav: emotion letter 'A' .* folder Sad"):
        scan(tmp_path)


def test_missing_root_folder_and_option_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="URDU root .* does not exist"):
        scan(tmp_path / "nope")
    (tmp_path / "Angry").mkdir()
    with pytest.raises(FileNotFoundError, match=r"emotion folder\(s\) \['Happy', 'Neutral', 'Sad'\] missing"):
        scan(tmp_path)
    _layout(tmp_path, {})
    with pytest.raises(FileNotFoundError, match="no URDU files"):
        scan(tmp_path)
    _layout(tmp_path, TINY)
    with pytest.raises(ValueError, match="speaker_scope must be one of"):
        scan(tmp_path, {"speaker_scope": "file"})
    with pytest.raises(ValueError, match=r"unknown URDU option\(s\) \['actors'\]"):
        scan(tmp_path, {"actors": [1]})
