"""The MSP-Podcast adapter (issue 14) on a tiny fixture with the corpus layout (Labels/labels_consensus.csv, Audios/)."""

from __future__ import annotations

import math

import pytest

from sernoise.corpora import scan_corpus
from sernoise.corpora.manifest import ManifestError
from sernoise.ctsl.losses import label_margin
from sernoise.tasks import RATING_SCALES, task_from_entry

HEADER = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
ROWS = [
    "MSP-PODCAST_0001_0008.wav,N,4.2,4.0,4.4,127,Female,Train\n",
    "MSP-PODCAST_0001_0019.wav,A,6.6,1.8,6.0,127,Female,Development\n",
    "MSP-PODCAST_0002_0033.wav,H,3.0,5.8,3.4,Unknown,Male,Test1\n",
    "MSP-PODCAST_0003_0001.wav,X,1.0,7.0,,Unknown,Unknown,Test2\n",
]


def _corpus(tmp_path, rows=ROWS):
    (tmp_path / "Labels").mkdir()
    (tmp_path / "Audios").mkdir()
    (tmp_path / "Labels" / "labels_consensus.csv").write_text(HEADER + "".join(rows))
    return tmp_path


def test_scan_reads_ratings_partitions_and_speakers(tmp_path):
    root = _corpus(tmp_path)
    manifest = scan_corpus("msp_podcast", root).set_index("utt_id")
    assert list(manifest.index) == sorted(r.split(".wav")[0] for r in ROWS)
    row = manifest.loc["MSP-PODCAST_0001_0019"]
    assert (row["activation"], row["valence"], row["dominance"]) == (6.6, 1.8, 6.0)
    assert row["emotion"] == "angry" and row["group"] == "Development" and row["gender"] == "F"
    assert row["path"] == str(root / "Audios" / "MSP-PODCAST_0001_0019.wav")
    assert (row["activation_bin"], row["valence_bin"]) == ("high", "low")  # edges 3.5 / 4.5 on 1-7
    assert manifest.loc["MSP-PODCAST_0001_0008", "activation_bin"] == "mid"
    unknown = manifest.loc[["MSP-PODCAST_0002_0033", "MSP-PODCAST_0003_0001"], "speaker"]
    assert list(unknown) == ["unknown:MSP-PODCAST_0002_0033", "unknown:MSP-PODCAST_0003_0001"]
    assert math.isnan(manifest.loc["MSP-PODCAST_0003_0001", "dominance"])
    assert set(manifest["group"]) == {"Train", "Development", "Test1", "Test2"}


def test_dimensional_task_rescales_the_1_to_7_scale(tmp_path):
    manifest = scan_corpus("msp_podcast", _corpus(tmp_path))
    task = task_from_entry("avd", {"kind": "dimensional"})
    targets = task.targets(manifest, "msp_podcast")
    assert RATING_SCALES["msp_podcast"] == (1.0, 7.0)
    assert targets["MSP-PODCAST_0001_0019"] == pytest.approx((-1 + 5.6 / 3, -1 + 0.8 / 3, -1 + 5.0 / 3))
    assert "MSP-PODCAST_0003_0001" not in targets  # no dominance rating
    assert label_margin(RATING_SCALES["msp_podcast"]) == pytest.approx(1 / 6)  # 0.5 rating points


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels_consensus.csv"):
        scan_corpus("msp_podcast", tmp_path)
    root = _corpus(tmp_path, ROWS[:1] + ["MSP-PODCAST_0009_0001.wav,N,9.5,4,4,1,Male,Train\n"])
    with pytest.raises(ManifestError, match="EmoAct 9.5 of MSP-PODCAST_0009_0001.wav"):
        scan_corpus("msp_podcast", root)
