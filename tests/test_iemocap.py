"""IEMOCAP adapter (sernoise.corpora.iemocap)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sernoise.corpora.iemocap import parse_emo_evaluation, scan
from sernoise.corpora.manifest import MANIFEST_COLUMNS, bin_value, read_manifest

# Hand-written in the real EmoEvaluation layout: '%' header, blocks of label line + rater lines.
EMO = """\
% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 3.2501, 1.0000]
C-E2:\tNeutral state;\t()
C-E3:\tNeutral state;\t()
C-F1:\tNeutral state;\t(curious)
A-E3:\tval 3; act 2; dom  2;\t()
A-F1:\tval 3; act 2; dom  1;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru\t[2.7500, 3.2500, 5.0000]
C-E2:\tFrustration;\t()
A-E3:\tval 2; act 3; dom  5;\t()

[14.8872 - 18.0175]\tSes01F_impro01_F001\txxx\t[5.0000, 1.0000, 3.0000]
C-E2:\tAnger;\t()
C-E3:\tSadness;\t()
"""


def _write_snippet(root: Path, text: str = EMO, session: int = 1) -> Path:
    path = root / f"Session{session}" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_snippet_labels_order_and_bins(tmp_path: Path):
    _write_snippet(tmp_path)
    m = scan(tmp_path).set_index("utt_id")
    assert list(m.reset_index().columns) == MANIFEST_COLUMNS
    assert list(m.index) == ["Ses01F_impro01_F000", "Ses01F_impro01_F001", "Ses01F_impro01_M000"]
    f0 = m.loc["Ses01F_impro01_F000"]
    # Order in the file is [valence, activation, dominance].
    assert (f0.valence, f0.activation, f0.dominance) == (2.5, 3.2501, 1.0)
    assert (f0.valence_bin, f0.activation_bin) == ("low", "high")  # 3.2501 is above the mid edge
    m0 = m.loc["Ses01F_impro01_M000"]
    assert (m0.valence_bin, m0.activation_bin) == ("low", "mid")  # both edges are inclusive
    f1 = m.loc["Ses01F_impro01_F001"]
    assert (f1.valence_bin, f1.activation_bin) == ("high", "low")  # extremes 5 and 1
    assert f1.emotion == "xxx" and m0.emotion == "fru"
    assert (m0.gender, m0.speaker, m0.group) == ("M", "Ses01M", "Session1")
    assert (f0.gender, f0.speaker) == ("F", "Ses01F")
    # No audio/transcript/alignment on disk: rows are kept, paths point where IEMOCAP keeps them.
    assert f0.path == str(tmp_path / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    assert f0.transcript == "" and f0.alignment == ""
    assert math.isnan(f0.duration) and math.isnan(f0.sample_rate)


def test_bin_value_edges():
    for value, expected in [(1, "low"), (2.75, "low"), (2.7501, "mid"), (3.25, "mid"),
                            (3.2501, "high"), (5, "high")]:
        assert bin_value(value) == expected, value


def test_custom_bin_edges_and_parent_root(tmp_path: Path):
    _write_snippet(tmp_path / "IEMOCAP_full_release")
    m = scan(tmp_path, {"bin_edges": [2.0, 3.0]}).set_index("utt_id")  # parent folder accepted
    assert m.loc["Ses01F_impro01_F000", "valence_bin"] == "mid"
    assert m.loc["Ses01F_impro01_F000", "activation_bin"] == "high"
    with pytest.raises(ValueError, match="bin_edges"):
        scan(tmp_path, {"bin_edges": [3.0, 2.0]})
    with pytest.raises(ValueError, match="unknown IEMOCAP option"):
        scan(tmp_path, {"bin_edge": [2.0, 3.0]})


@pytest.mark.parametrize(
    "line, message",
    [
        ("[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru\t[2.7500, 3.2500]", "three numbers"),
        ("[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru", "malformed label line"),
        ("[10.0100 - 11.3925]\tSes01F_impro01_M000\tfoo\t[2.7500, 3.2500, 5.0000]", "unknown emotion"),
        ("[10.0100 - 11.3925]\tbogus\tfru\t[2.7500, 3.2500, 5.0000]", "turn name"),
        ("[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru\t[2.7500, x, 5.0000]", "three numbers"),
    ],
)
def test_malformed_label_line_names_file_and_line(tmp_path: Path, line: str, message: str):
    lines = EMO.splitlines()
    assert lines[9].startswith("[10.0100")
    lines[9] = line  # line 10 of the file
    path = _write_snippet(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message) as err:
        scan(tmp_path)
    assert f"{path}:10" in str(err.value)


def test_parse_emo_evaluation_fields(tmp_path: Path):
    entries = parse_emo_evaluation(_write_snippet(tmp_path))
    assert entries[0]["start"] == 6.2901 and entries[0]["end"] == 8.2357
    assert [e["turn"] for e in entries] == ["Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_F001"]


def test_missing_root(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="licensed") as err:
        scan(tmp_path / "nowhere")
    assert "IEMOCAP_full_release" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Session1..Session5"):
        scan(tmp_path / "empty")
    (tmp_path / "nolabels" / "Session1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no EmoEvaluation"):
        scan(tmp_path / "nolabels")


def test_requested_session_missing(tmp_path: Path):
    _write_snippet(tmp_path)
    assert len(scan(tmp_path, {"sessions": [1]})) == 3
    with pytest.raises(FileNotFoundError, match="Session2"):
        scan(tmp_path, {"sessions": [1, 2]})
    with pytest.raises(ValueError, match="1..5"):
        scan(tmp_path, {"sessions": [6]})


# --- against the synthesised fixture ----------------------------------------------------------


@pytest.fixture(scope="module")
def truth(iemocap_root: Path) -> dict:
    return json.loads((iemocap_root.parent / "fixture_truth.json").read_text())["turns"]


def test_fixture_rows_and_labels(iemocap_root: Path, truth: dict):
    m = scan(iemocap_root)
    assert len(m) == 40 == len(truth)
    assert list(m["utt_id"]) == sorted(truth)
    for row in m.itertuples():
        t = truth[row.utt_id]
        assert (row.emotion, row.valence, row.activation, row.dominance) == (
            t["emotion"], t["valence"], t["activation"], t["dominance"]), row.utt_id
        assert row.gender == row.utt_id.rsplit("_", 1)[1][0] == t["gender"]
        assert row.speaker == row.utt_id[:5] + row.gender
        assert row.group == f"Session{t['session']}"
        assert Path(row.path) == iemocap_root / t["wav"] and Path(row.path).is_file()
        assert Path(row.transcript).is_file() and Path(row.transcript).stem == t["dialog"]
        assert row.alignment.endswith(".wdseg") and Path(row.alignment).is_file()
        assert Path(row.alignment).with_suffix(".phseg").is_file()
    assert set(m["group"]) == {f"Session{n}" for n in range(1, 6)}
    for _, group in m.groupby("group"):
        assert set(group["gender"]) == {"F", "M"}
    assert any("_impro" in u for u in m["utt_id"]) and any("_script" in u for u in m["utt_id"])
    assert set(m["emotion"]) == {"neu", "fru", "ang", "sad", "hap", "exc", "sur", "fea", "dis", "oth", "xxx"}


def test_fixture_bins_cover_edges(iemocap_root: Path):
    m = scan(iemocap_root)
    expected = {1.0: "low", 2.75: "low", 3.0: "mid", 3.25: "mid", 3.5: "high", 5.0: "high"}
    for dim in ("valence", "activation"):
        pairs = dict(zip(m[dim], m[f"{dim}_bin"]))
        for value, bin_name in expected.items():
            assert pairs[value] == bin_name, (dim, value)
        assert set(m[f"{dim}_bin"]) == {"low", "mid", "high"}


def test_fixture_manifest_csv_round_trip(iemocap_root: Path, tmp_path: Path):
    m = scan(iemocap_root, {"sessions": [2, 3]})
    assert set(m["group"]) == {"Session2", "Session3"} and len(m) == 16
    m.to_csv(tmp_path / "m.csv", index=False)
    back = read_manifest(str(tmp_path / "m.csv"))
    assert list(back["utt_id"]) == list(m["utt_id"])
    assert (back["duration"].isna()).all() and (back["transcript"] != "").all()
