"""Generic CSV adapter (sernoise.corpora.generic)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sernoise.corpora import scan_corpus
from sernoise.corpora.generic import scan
from sernoise.corpora.manifest import MANIFEST_COLUMNS, ManifestError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


CSV = """\
utt_id,path,speaker,group,emotion,gender,activation,valence,dominance,activation_bin,valence_bin,transcript
u3,clips/c.wav,007,g2,sad,F,2.75,3.25,1.5,,,hello there
u1,/abs/a.wav,s1,g1,happy,M,3.26,1.0,,,,
u2,b.wav,s2,g1,angry,,4.0,2.0,,low,high,NA
u4,d.wav,s2,g1,neutral,,,,,,,
"""


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    _write(root / "manifest.csv", CSV)
    return root


def test_scan_default_csv(corpus):
    frame = scan(corpus)
    assert list(frame.columns) == MANIFEST_COLUMNS
    assert frame["utt_id"].tolist() == ["u1", "u2", "u3", "u4"]  # sorted by utt_id
    rows = frame.set_index("utt_id")
    assert rows.loc["u3", "speaker"] == "007"  # strings stay strings
    assert rows.loc["u3", "transcript"] == "hello there"
    assert rows.loc["u2", "transcript"] == "NA"
    assert rows.loc["u3", "gender"] == "F"
    assert rows.loc["u3", "activation"] == 2.75
    assert rows.loc["u3", "dominance"] == 1.5
    assert math.isnan(rows.loc["u1", "dominance"])
    assert math.isnan(rows.loc["u4", "activation"])
    for column in ("duration", "sample_rate"):
        assert frame[column].isna().all()


def test_scan_resolves_relative_paths_against_csv_folder(corpus):
    rows = scan(corpus).set_index("utt_id")
    assert rows.loc["u3", "path"] == str(corpus / "clips" / "c.wav")
    assert rows.loc["u2", "path"] == str(corpus / "b.wav")
    assert rows.loc["u1", "path"] == "/abs/a.wav"


def test_scan_derives_bins_with_paper_edges(corpus):
    rows = scan(corpus).set_index("utt_id")
    assert rows.loc["u3", "activation_bin"] == "low"  # 2.75 is the inclusive top of low
    assert rows.loc["u3", "valence_bin"] == "mid"  # 3.25 is the inclusive top of mid
    assert rows.loc["u1", "activation_bin"] == "high"  # 3.26
    assert rows.loc["u1", "valence_bin"] == "low"
    assert rows.loc["u4", "activation_bin"] == ""  # no rating, no bin
    assert rows.loc["u4", "valence_bin"] == ""


def test_scan_keeps_given_bins(corpus):
    rows = scan(corpus).set_index("utt_id")
    # u2 rates activation 4.0 (high) and valence 2.0 (low) but gives bins explicitly
    assert rows.loc["u2", "activation_bin"] == "low"
    assert rows.loc["u2", "valence_bin"] == "high"
    assert rows.loc["u2", "activation"] == 4.0


def test_scan_custom_bin_edges(corpus):
    rows = scan(corpus, {"bin_edges": [3.0, 3.5]}).set_index("utt_id")
    assert rows.loc["u3", "activation_bin"] == "low"  # 2.75
    assert rows.loc["u3", "valence_bin"] == "mid"  # 3.25
    assert rows.loc["u1", "activation_bin"] == "mid"  # 3.26


def test_scan_csv_option_and_minimal_columns(tmp_path):
    csv = _write(tmp_path / "elsewhere" / "list.csv", "utt_id,path,speaker,group,emotion\nx,sub/x.wav,s,g,calm\n")
    frame = scan_corpus("generic", tmp_path / "unused_root", {"csv": str(csv)})
    assert list(frame.columns) == MANIFEST_COLUMNS
    row = frame.iloc[0]
    assert row["path"] == str(tmp_path / "elsewhere" / "sub" / "x.wav")
    assert row["activation_bin"] == "" and row["valence_bin"] == ""
    assert math.isnan(row["activation"])


def test_scan_drops_given_duration(tmp_path):
    csv = _write(tmp_path / "manifest.csv", "utt_id,path,speaker,group,emotion,duration,sample_rate\nx,x.wav,s,g,calm,2.5,8000\n")
    frame = scan(tmp_path, {"csv": str(csv)})
    assert frame["duration"].isna().all()  # filled by the preparation stage only
    assert frame["sample_rate"].isna().all()


def test_invalid_bin_value(tmp_path):
    csv = _write(tmp_path / "manifest.csv", "utt_id,path,speaker,group,emotion,valence_bin\nx,x.wav,s,g,calm,medium\n")
    with pytest.raises(ManifestError) as info:
        scan(tmp_path)
    message = str(info.value)
    assert str(csv) in message
    assert "'medium'" in message


@pytest.mark.parametrize("column", ["utt_id", "path", "speaker", "group", "emotion"])
def test_missing_required_column(tmp_path, column):
    header = [c for c in ("utt_id", "path", "speaker", "group", "emotion") if c != column]
    csv = _write(tmp_path / "manifest.csv", ",".join(header) + "\n" + ",".join("v" for _ in header) + "\n")
    with pytest.raises(ManifestError) as info:
        scan(tmp_path)
    assert str(csv) in str(info.value)
    assert f"'{column}'" in str(info.value)


def test_unknown_column(tmp_path):
    csv = _write(tmp_path / "manifest.csv", "utt_id,path,speaker,group,emotion,arousal\nx,x.wav,s,g,calm,3\n")
    with pytest.raises(ManifestError) as info:
        scan(tmp_path)
    assert str(csv) in str(info.value)
    assert "'arousal'" in str(info.value)


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_utt_id(tmp_path, value):
    csv = _write(tmp_path / "manifest.csv", f"utt_id,path,speaker,group,emotion\na,a.wav,s,g,calm\n{value},b.wav,s,g,calm\n")
    with pytest.raises(ManifestError) as info:
        scan(tmp_path)
    assert str(csv) in str(info.value)
    assert "utt_id" in str(info.value)
    assert "[3]" in str(info.value)  # the CSV line of the offending row


def test_duplicate_utt_id(tmp_path):
    _write(tmp_path / "manifest.csv", "utt_id,path,speaker,group,emotion\na,a.wav,s,g,calm\na,b.wav,s,g,sad\n")
    with pytest.raises(ManifestError, match="duplicate"):
        scan(tmp_path)


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        scan(tmp_path)
    assert str(tmp_path / "manifest.csv") in str(info.value)
    with pytest.raises(FileNotFoundError, match="other.csv"):
        scan(tmp_path, {"csv": str(tmp_path / "other.csv")})
