"""MSP-IMPROV adapter (sernoise.corpora.msp_improv) on a tiny synthesised copy of the corpus layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sernoise.corpora import ADAPTERS, scan_corpus
from sernoise.corpora.manifest import MANIFEST_COLUMNS, ManifestError
from sernoise.corpora.msp_improv import parse_audio_name, parse_evaluation, scan

# key -> consensus line fields (category, A, V, D, N)
UTTERANCES = {
    "S01A-F01-T-FM01": ("A", "2.600000", "1.800000", "3.800000", "4.200000"),
    "S01A-M01-R-MF02": ("H", "3.400000", "4.200000", "3.000000", "3.000000"),
    "S02S-F01-S-FM03": ("S", "1.600000", "1.400000", "2.000000", "NaN"),
    "S02N-M01-P-MF04": ("N", "3.000000", "3.000000", "NaN", "3.500000"),
    "S03H-F02-T-FM01": ("O", "3.200000", "3.600000", "3.100000", "4.000000"),
    "S03H-M02-T-MF01": ("X", "3.000000", "2.800000", "3.000000", "4.000000"),
    "S04A-F02-R-FM02": ("A", "4.000000", "1.600000", "4.000000", "2.000000"),
}


def _write_wav(path: Path, seconds: float = 0.2, freq: float = 220.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(str(path), 0.1 * np.sin(2 * math.pi * freq * t), 16000, subtype="PCM_16")


def _evaluation_text(utterances: dict) -> str:
    blocks = []
    for key, (emo, a, v, d, n) in utterances.items():
        blocks.append(f"UTD-IMPROV-{key}.avi; {emo}; A:{a}; V:{v}; D:{d} ; N:{n};\n"
                      f"Speaker-1; Angry; Frustrated; A:3.0; V:2.0; D:3.0; N:4.0;\n"
                      f"Speaker-2; Neutral; ; A:3.0; V:3.0; D:3.0; N:4.0;\n")
    return "\n".join(blocks)


def make_msp_improv(root: Path, utterances: dict = UTTERANCES, *, skip_audio=(), label_name="Evaluation.txt") -> Path:
    for i, key in enumerate(utterances):
        if key in skip_audio:
            continue
        fields = parse_audio_name(f"MSP-IMPROV-{key}.wav")
        folder = root / f"session{fields['session']}" / f"S{fields['sentence']}{fields['target']}" / fields["type"]
        _write_wav(folder / f"MSP-IMPROV-{key}.wav", freq=200.0 + 20 * i)
    (root / label_name).write_text(_evaluation_text(utterances), encoding="utf-8")
    return root


def test_scan_tiny_copy(tmp_path):
    root = make_msp_improv(tmp_path)
    manifest = scan_corpus("msp_improv", root)
    assert "msp_improv" in ADAPTERS
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert len(manifest) == len(UTTERANCES)
    rows = manifest.set_index("utt_id")
    first = rows.loc["MSP-IMPROV-S01A-F01-T-FM01"]
    assert (first["speaker"], first["gender"], first["group"], first["emotion"]) == ("F01", "F", "Session1", "angry")
    assert (first["activation"], first["valence"], first["dominance"]) == (2.6, 1.8, 3.8)
    assert (first["activation_bin"], first["valence_bin"]) == ("low", "low")
    assert first["path"] == str(root / "session1" / "S01A" / "T" / "MSP-IMPROV-S01A-F01-T-FM01.wav")
    assert Path(first["path"]).is_file()
    # consensus codes -> project vocabulary; O and X are kept as other / no_agreement (left out by emotion4)
    assert rows["emotion"].to_dict() == {
        "MSP-IMPROV-S01A-F01-T-FM01": "angry", "MSP-IMPROV-S01A-M01-R-MF02": "happy",
        "MSP-IMPROV-S02N-M01-P-MF04": "neutral", "MSP-IMPROV-S02S-F01-S-FM03": "sad",
        "MSP-IMPROV-S03H-F02-T-FM01": "other", "MSP-IMPROV-S03H-M02-T-MF01": "no_agreement",
        "MSP-IMPROV-S04A-F02-R-FM02": "angry"}
    assert math.isnan(rows.loc["MSP-IMPROV-S02N-M01-P-MF04", "dominance"])
    # speaker = gender + session: two speakers per session, pairs per group
    assert manifest.groupby("group")["speaker"].agg(lambda s: sorted(set(s))).to_dict() == {
        "Session1": ["F01", "M01"], "Session2": ["F02", "M02"]}


def test_options_restrict_types_and_sessions(tmp_path):
    root = make_msp_improv(tmp_path, label_name="Evalution.txt")  # the misspelt name of some copies
    assert set(scan(root, {"types": ["T"]})["utt_id"]) == {
        "MSP-IMPROV-S01A-F01-T-FM01", "MSP-IMPROV-S03H-F02-T-FM01", "MSP-IMPROV-S03H-M02-T-MF01"}
    assert set(scan(root, {"sessions": [2]})["group"]) == {"Session2"}
    assert scan(root, {"bin_edges": [1.5, 2.0]}).set_index("utt_id").loc["MSP-IMPROV-S01A-F01-T-FM01",
                                                                        "activation_bin"] == "high"
    with pytest.raises(ValueError, match="sessions must be among 1..6"):
        scan(root, {"sessions": [7]})
    with pytest.raises(ValueError, match="types must be among"):
        scan(root, {"types": ["Q"]})
    with pytest.raises(ValueError, match=r"unknown MSP-IMPROV option\(s\) \['actors'\]"):
        scan(root, {"actors": [1]})


def test_missing_audio_keeps_the_conventional_path(tmp_path):
    root = make_msp_improv(tmp_path, skip_audio={"S02S-F01-S-FM03"})
    row = scan(root).set_index("utt_id").loc["MSP-IMPROV-S02S-F01-S-FM03"]
    assert row["path"] == str(root / "session1" / "S02S" / "S" / "MSP-IMPROV-S02S-F01-S-FM03.wav")
    assert not Path(row["path"]).exists()  # the prepare stage rejects it with a reason


def test_audio_found_below_an_extra_folder(tmp_path):
    make_msp_improv(tmp_path / "Audio")
    (tmp_path / "Audio" / "Evaluation.txt").rename(tmp_path / "Evaluation.txt")
    manifest = scan(tmp_path)
    assert all(Path(p).is_file() and "/Audio/session" in p for p in manifest["path"])


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="MSP-IMPROV root .* does not exist"):
        scan(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="licensed and is not downloaded"):
        scan(tmp_path)
    root = make_msp_improv(tmp_path / "a")
    bad = root / "Evaluation.txt"
    bad.write_text(bad.read_text() + "\nUTD-IMPROV-S05A-F03-T-FM01.avi; Q; A:3.0; V:3.0; D:3.0 ; N:3.0;\n")
    with pytest.raises(ManifestError, match=r"Evaluation\.txt:\d+: unknown consensus code 'Q'"):
        scan(root)
    bad.write_text("UTD-IMPROV-S05A-F03-T-FM01.avi; A; A:three; V:3.0; D:3.0 ; N:3.0;\n")
    with pytest.raises(ManifestError, match=r"Evaluation\.txt:1: malformed consensus line"):
        parse_evaluation(bad)
    bad.write_text(_evaluation_text({"S01A-F01-T-FM01": UTTERANCES["S01A-F01-T-FM01"]}) * 2)
    with pytest.raises(ManifestError, match=r"S01A-F01-T-FM01 already has a consensus line \(line 1\)"):
        parse_evaluation(bad)
    # a file whose speaker code contradicts its session folder
    stray = root / "session2" / "S01A" / "T" / "MSP-IMPROV-S01A-F01-T-FM09.wav"
    _write_wav(stray)
    bad.write_text(_evaluation_text(UTTERANCES))
    with pytest.raises(ManifestError, match=r"MSP-IMPROV-S01A-F01-T-FM09\.wav: speaker code names session 1 .* session2"):
        scan(root)
    stray.unlink()
    (root / "session1" / "junk").mkdir()
    (root / "session1" / "junk" / "MSP-IMPROV-S01A.wav").write_bytes(b"")
    with pytest.raises(ManifestError, match=r"MSP-IMPROV-S01A\.wav: not an MSP-IMPROV audio name"):
        scan(root)
