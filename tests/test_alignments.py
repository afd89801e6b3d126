"""Sphinx alignment and transcript readers (sernoise.alignments)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fixtures.iemocap_fixture import LEXICON
from sernoise.alignments import (
    NON_SPEECH,
    Segment,
    alignment_paths,
    is_speech,
    read_phones,
    read_sphinx_seg,
    read_transcript,
    read_words,
    write_sphinx_seg,
)
from sernoise.corpora.iemocap import scan

# Hand-written in the layout of IEMOCAP's ForcedAlignment files (tabs and leading spaces mixed,
# as Sphinx pads its columns).
WDSEG = """\
 SFrm  EFrm    SegAScr Word
    0    32    -537513 <s>
   33    59    -402316 EXCUSE
   60    61     -12000 <sil>
   62    78    -292866 ME(2)
\t79\t90\t-11\t++BREATH++
   91    98    -117063 </s>
 Total score:    -1349758
"""

PHSEG = """\
\tSFrm\tEFrm\tSegAScr\tPhone
\t0\t32\t-165436\tSIL
\t33\t37\t-60589\tIH SIL K b
\t38\t45\t-1200\tK IH S i
\t46\t59\t-3000\tS K M e
\t60\t61\t-10\tSIL
\t62\t70\t-400\tM SIL IY b
\t71\t78\t-500\tIY M SIL e
\t79\t98\t-900\tSIL
 Total score:    -232035
"""


@pytest.fixture()
def snippet(tmp_path: Path) -> Path:
    base = tmp_path / "Ses01F_impro01_F000"
    base.with_suffix(".wdseg").write_text(WDSEG)
    base.with_suffix(".phseg").write_text(PHSEG)
    return base.with_suffix(".wdseg")


def test_read_wdseg_snippet(snippet: Path):
    segs = read_sphinx_seg(snippet)
    assert [s.label for s in segs] == ["<s>", "EXCUSE", "<sil>", "ME(2)", "++BREATH++", "</s>"]
    assert [s.token for s in segs] == ["<s>", "excuse", "<sil>", "me", "++breath++", "</s>"]
    # Inclusive end frame: 33..59 covers [0.33, 0.60).
    assert segs[1] == Segment(0.33, 0.60, "EXCUSE", "excuse")
    assert segs[0].start == 0.0 and segs[-1].end == 0.99
    assert [is_speech(s) for s in segs] == [False, True, False, True, False, False]


def test_read_phseg_keeps_base_phone(snippet: Path):
    phones = read_phones(snippet)
    assert [p.label for p in phones] == ["SIL", "IH", "K", "S", "SIL", "M", "IY", "SIL"]
    assert [p.token for p in phones if is_speech(p)] == ["ih", "k", "s", "m", "iy"]
    assert phones[1].start == 0.33 and phones[1].end == 0.38
    assert read_words(snippet)[3].token == "me"


def test_non_speech_tokens():
    def seg(label):
        return Segment(0.0, 0.1, label, label.lower())

    assert {"<s>", "</s>", "<sil>", "sil"} <= NON_SPEECH
    for label in ("<s>", "</s>", "<sil>", "SIL", "++BREATH++", "++LAUGHTER++", "+NOISE+"):
        assert not is_speech(seg(label)), label
    for label in ("HELLO", "UH", "UM", "A", "THE"):
        assert is_speech(seg(label)), label


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("   33    59    EXCUSE", "expected"),
        ("   33    x5    -402316 EXCUSE", "integers"),
        ("   59    33    -402316 EXCUSE", "frame range"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, bad_line: str, message: str):
    lines = WDSEG.splitlines()
    lines[2] = bad_line  # third line of the file
    path = tmp_path / "bad.wdseg"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message) as err:
        read_sphinx_seg(path)
    assert f"{path}:3" in str(err.value)


def test_empty_alignment_is_an_error(tmp_path: Path):
    path = tmp_path / "empty.wdseg"
    path.write_text(" SFrm  EFrm    SegAScr Word\n Total score: 0\n")
    with pytest.raises(ValueError, match=str(path)):
        read_sphinx_seg(path)


def test_alignment_paths(tmp_path: Path):
    wd, ph = alignment_paths(str(tmp_path / "d" / "Ses01F_impro01_F000.wdseg"))
    assert wd == tmp_path / "d" / "Ses01F_impro01_F000.wdseg"
    assert ph == tmp_path / "d" / "Ses01F_impro01_F000.phseg"
    assert alignment_paths(ph) == (wd, ph)
    for empty in ("", None, float("nan")):
        with pytest.raises(ValueError, match="no alignment"):
            alignment_paths(empty)


def test_write_read_round_trip(tmp_path: Path):
    words = [
        Segment(0.0, 0.2, "<s>", "<s>"),
        Segment(0.2, 0.57, "HELLO", "hello"),
        Segment(0.57, 0.62, "<sil>", "<sil>"),
        Segment(0.62, 0.9, "THE(2)", "the"),
        Segment(0.9, 1.13, "</s>", "</s>"),
    ]
    path = write_sphinx_seg(tmp_path / "x.wdseg", words, kind="Word")
    assert read_sphinx_seg(path) == words
    text = path.read_text().splitlines()
    assert text[0].split() == ["SFrm", "EFrm", "SegAScr", "Word"]
    assert text[-1].split()[:2] == ["Total", "score:"]
    assert text[2].split() == ["20", "56", "0", "HELLO"]

    phones = [Segment(0.2, 0.3, "HH", "hh"), Segment(0.3, 0.57, "AH", "ah")]
    path = write_sphinx_seg(tmp_path / "x.phseg", phones, kind="Phone",
                            contexts=["SIL AH b", "HH SIL e"], scores=[-5, -7])
    assert read_sphinx_seg(path) == phones
    assert "HH SIL AH b" in path.read_text()
    assert path.read_text().splitlines()[-1].split()[-1] == "-12"


def test_writer_rejects_bad_input(tmp_path: Path):
    with pytest.raises(ValueError, match="kind"):
        write_sphinx_seg(tmp_path / "a", [], kind="Syllable")
    with pytest.raises(ValueError, match="one frame"):
        write_sphinx_seg(tmp_path / "a", [Segment(0.1, 0.1, "A", "a")])
    with pytest.raises(ValueError, match="one non-empty token"):
        write_sphinx_seg(tmp_path / "a", [Segment(0.1, 0.2, "TWO WORDS", "two words")])


TRANSCRIPT = """\
Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.
Ses01F_impro01_M000 [007.5712-010.4750]: Do you have your forms?
Ses01F_impro01_MXX0 [010.0000-010.5000]: [LAUGHTER]
Ses01F_impro01_F001 [010.9337-011.8982]: Yeah.
"""


def test_read_transcript(tmp_path: Path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(TRANSCRIPT)
    assert read_transcript(path, "Ses01F_impro01_F000") == "Excuse me."
    assert read_transcript(path, "Ses01F_impro01_M000") == "Do you have your forms?"
    assert read_transcript(str(path), "Ses01F_impro01_F001") == "Yeah."
    with pytest.raises(KeyError) as err:
        read_transcript(path, "Ses01F_impro01_F009")
    assert str(path) in str(err.value) and "Ses01F_impro01_F009" in str(err.value)


# --- against the synthesised fixture ----------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_data(iemocap_root: Path):
    truth = json.loads((iemocap_root.parent / "fixture_truth.json").read_text())
    manifest = scan(iemocap_root).set_index("utt_id")
    return truth, manifest, iemocap_root


def test_fixture_word_boundaries_exact(fixture_data):
    truth, manifest, _ = fixture_data
    sr = truth["sample_rate"]
    for utt, info in truth["turns"].items():
        words = [w for w in read_words(manifest.loc[utt, "alignment"]) if is_speech(w)]
        assert [w.token for w in words] == [t["word"] for t in info["words"]], utt
        assert [w.label for w in words] == [t["label"] for t in info["words"]], utt
        for seg, t in zip(words, info["words"]):
            # Exact: the segment in samples equals the truth, and the truth lies on the frame grid.
            assert round(seg.start * sr) == t["start"] and round(seg.end * sr) == t["end"], (utt, seg)
            assert t["start"] % (sr // 100) == 0 and t["end"] % (sr // 100) == 0
        everything = read_words(manifest.loc[utt, "alignment"])
        assert everything[0].label == "<s>" and everything[-1].label == "</s>"
        assert round(everything[-1].end * sr) == info["num_samples"]


def test_fixture_phones_tile_words(fixture_data):
    truth, manifest, _ = fixture_data
    for utt, info in list(truth["turns"].items())[:10]:
        phones = read_phones(manifest.loc[utt, "alignment"])
        speech = [p for p in phones if is_speech(p)]
        expected = [ph for w in info["words"] for ph in LEXICON[w["word"]][1]]
        assert [p.label for p in speech] == list(expected)
        # Contiguous, covering the whole utterance.
        assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:]))
        assert phones[0].start == 0.0


def test_fixture_audio_is_speech_where_aligned(fixture_data):
    truth, _, root = fixture_data
    for utt, info in list(truth["turns"].items())[:8]:
        audio, sr = sf.read(root / info["wav"])
        assert sr == 16000 and len(audio) == info["num_samples"]
        for w in info["words"]:
            content = audio[w["content_start"]:w["content_end"]]
            gap_after = audio[w["end"]:w["end"] + 400]
            assert np.sqrt(np.mean(content ** 2)) > 0.02, (utt, w)
            # The first/last 10 ms of the trimmed word still carry signal (trim is tight).
            assert np.abs(content[:160]).max() > 0.003 and np.abs(content[-160:]).max() > 0.003
            if len(gap_after):
                assert np.sqrt(np.mean(gap_after ** 2)) < 0.001, (utt, w)


def test_fixture_transcripts(fixture_data):
    truth, manifest, _ = fixture_data
    for utt, info in truth["turns"].items():
        assert read_transcript(manifest.loc[utt, "transcript"], utt) == info["text"]
