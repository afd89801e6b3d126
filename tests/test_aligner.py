"""Forced alignment (sernoise.aligner, PocketSphinx) on real RAVDESS audio, the per-shard runner,
failure listing and fraction check, the manifest column, and alignment-based conditions on an
aligned RAVDESS utterance.  Boundary accuracy against known boundaries: benchmarks/align.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

pytest.importorskip("pocketsphinx")

from sernoise.aligner import (  # noqa: E402
    AlignmentFailure,
    AlignmentFractionError,
    Aligner,
    align_file,
    align_shard,
    attach_alignments,
    merge_alignments,
    transcript_text,
    transcript_words,
)
from sernoise.alignments import is_speech, read_phones, read_words  # noqa: E402
from sernoise.audio_store import ShardWriter  # noqa: E402
from sernoise.conditions import Context  # noqa: E402
from sernoise.conditions.drop import DropLetters, DropWords  # noqa: E402
from sernoise.conditions.filler import Filler, FillerBank  # noqa: E402
from sernoise.corpora.manifest import to_manifest_frame  # noqa: E402
from sernoise.corpora.ravdess import STATEMENTS, scan  # noqa: E402
from sernoise.seeds import rng_for  # noqa: E402

SR = 16000
# Both statements, both genders, calm to shouted (angry strong): a few utterances keep it fast.
UTTERANCES = ("03-01-01-01-01-01-01", "03-01-05-02-02-01-02", "03-01-04-01-02-02-07", "03-01-02-01-01-02-10")


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner()


@pytest.fixture(scope="module")
def ravdess_scan(ravdess_root) -> pd.DataFrame:
    frame = scan(ravdess_root)
    return frame[frame["utt_id"].isin(UTTERANCES)].reset_index(drop=True)


def wav(ravdess_root: Path, utt_id: str) -> Path:
    return ravdess_root / f"Actor_{utt_id[-2:]}" / f"{utt_id}.wav"


def test_transcript_words_normalise():
    assert transcript_words("Kids are talking by the door.") == ["kids", "are", "talking", "by", "the", "door"]
    assert transcript_words("[LAUGHTER] Don't, Uh... OK!") == ["don't", "uh", "ok"]


@pytest.mark.shared_data
@pytest.mark.parametrize("utt_id", UTTERANCES)
def test_aligns_real_ravdess_words_in_order_inside_the_file(aligner, ravdess_root, tmp_path, utt_id):
    path = wav(ravdess_root, utt_id)
    text = STATEMENTS[utt_id.split("-")[4]]
    duration = sf.info(path).frames / SR
    result = align_file(aligner, path, text)

    speech = result.speech_words()
    assert [w.token for w in speech] == transcript_words(text)
    # Segments tile the file from 0 in order, without overlap, and end inside it.
    assert result.words[0].start == 0.0
    for before, after in zip(result.words, result.words[1:]):
        assert before.end == pytest.approx(after.start)
    assert result.words[-1].end <= duration + 1e-9
    assert result.words[0].label == "<s>" and result.words[-1].label == "</s>"
    # Sensible durations: every word 30 ms - 1.2 s, the sentence 0.8 - 3.5 s of a 3-5 s clip.
    for word in speech:
        assert 0.03 <= word.end - word.start <= 1.2, (word, utt_id)
    span = speech[-1].end - speech[0].start
    assert 0.8 <= span <= 3.5, span
    # Every phone lies in one word, and a word's phones are its dictionary pronunciation.
    for word in speech:
        inside = [p.label for p in result.phones if word.start <= p.start and p.end <= word.end]
        assert " ".join(inside) == aligner._decoder(None).lookup_word(word.label.lower()), word
    # The written files read back (the manifest's format, as IEMOCAP ships it) unchanged.
    wdseg = result.write(tmp_path / utt_id)
    assert wdseg.name == f"{utt_id}.wdseg" and wdseg.with_suffix(".phseg").is_file()
    assert read_words(wdseg) == result.words
    assert read_phones(wdseg) == result.phones


def test_bad_audio_errors_name_the_file(aligner, tmp_path):
    text_file = tmp_path / "not_audio.wav"
    text_file.write_text("this is not a wav file")
    with pytest.raises(ValueError, match="not_audio.wav: unreadable audio"):
        align_file(aligner, text_file, "kids")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR * 2), SR, subtype="PCM_16")
    with pytest.raises(AlignmentFailure, match="silent.wav: silent audio"):
        align_file(aligner, silent, "kids are talking")
    rate = tmp_path / "rate.wav"
    sf.write(rate, np.random.default_rng(0).normal(0, 0.1, 8000), 8000, subtype="PCM_16")
    with pytest.raises(ValueError, match="rate.wav: sample rate 8000 Hz"):
        align_file(aligner, rate, "kids")
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    with pytest.raises(AlignmentFailure, match=r"word\(s\) \['zzxqvw'\] not in the pronouncing dictionary"):
        aligner.align(noise, "kids zzxqvw")
    with pytest.raises(AlignmentFailure, match="too short"):
        aligner.align(noise[:1600], "kids are talking by the door")


def test_pronunciations_extend_the_dictionary():
    assert Aligner(pronunciations={"zzxqvw": "Z IH K S"}).pronunciation("ZZXQVW") == "Z IH K S"
    with pytest.raises(ValueError, match="align.pronunciations.bad"):
        Aligner(pronunciations={"bad": "NOT A PHONE"})


def _corpus_shard(ravdess_root, ravdess_scan, tmp_path):
    """A shard with the real utterances plus one that cannot align (a word the dictionary lacks),
    one without a transcript and one whose corpus ships an alignment."""
    scan_frame = ravdess_scan.copy()
    extra = [
        {"utt_id": "zz-oov", "path": "synthetic/oov.wav", "speaker": "Actor_01", "group": "pair01",
         "emotion": "neutral", "transcript": "kids zzxqvw by the door"},
        {"utt_id": "zz-none", "path": "synthetic/none.wav", "speaker": "Actor_01", "group": "pair01",
         "emotion": "neutral", "transcript": ""},
        {"utt_id": "zz-shipped", "path": "synthetic/shipped.wav", "speaker": "Actor_01", "group": "pair01",
         "emotion": "neutral", "transcript": "kids", "alignment": "corpus/zz-shipped.wdseg"},
    ]
    scan_frame = to_manifest_frame(scan_frame.to_dict("records") + extra)
    first = sf.read(wav(ravdess_root, UTTERANCES[0]), dtype="float32")[0]
    shard = tmp_path / "shard-000.h5"
    with ShardWriter(shard) as writer:
        for utt_id in UTTERANCES:
            writer.add(utt_id, sf.read(wav(ravdess_root, utt_id), dtype="float32")[0])
        for utt_id in ("zz-oov", "zz-none", "zz-shipped"):
            writer.add(utt_id, first)
    return scan_frame, shard


@pytest.mark.shared_data
def test_align_shard_lists_failures_and_fails_past_the_fraction(aligner, ravdess_root, ravdess_scan, tmp_path):
    scan_frame, shard = _corpus_shard(ravdess_root, ravdess_scan, tmp_path)
    table_csv = tmp_path / "shard-000.csv"
    counts = align_shard(scan_frame, shard, tmp_path / "shard-000", table_csv)
    assert {k: counts[k] for k in ("aligned", "corpus", "no_transcript", "failed")} == {
        "aligned": len(UTTERANCES), "corpus": 1, "no_transcript": 1, "failed": 1}
    table = pd.read_csv(table_csv, dtype=str, keep_default_na=False).set_index("utt_id")
    assert table.at["zz-oov", "status"] == "failed" and "zzxqvw" in table.at["zz-oov", "reason"]
    assert table.at["zz-shipped", "alignment"] == "corpus/zz-shipped.wdseg"
    for utt_id in UTTERANCES:
        assert Path(table.at[utt_id, "alignment"]).is_file()
    # Same input, same bytes: a second run (a fresh decoder) writes identical files.
    align_shard(scan_frame, shard, tmp_path / "again", tmp_path / "again.csv")
    for utt_id in UTTERANCES:
        for suffix in (".wdseg", ".phseg"):
            first = (tmp_path / "shard-000" / utt_id).with_suffix(suffix)
            assert first.read_bytes() == (tmp_path / "again" / utt_id).with_suffix(suffix).read_bytes()

    alignments, failures = tmp_path / "alignments.csv", tmp_path / "failures.csv"
    merged = merge_alignments([table_csv], scan_frame, alignments, failures, max_failure_fraction=0.25)
    assert merged["failed"] == 1
    listed = pd.read_csv(failures, dtype=str)
    assert listed.to_dict("records") == [{"utt_id": "zz-oov", "path": "synthetic/oov.wav",
                                          "reason": "word(s) ['zzxqvw'] not in the pronouncing dictionary"}]
    # 1 failure in 5 utterances to align (20 %): above 10 %, the run stops naming the list.
    with pytest.raises(AlignmentFractionError, match=r"1 of 5 utterances failed to align \(20.0%\).*failures.csv"):
        merge_alignments([table_csv], scan_frame, alignments, failures, max_failure_fraction=0.1)
    assert failures.is_file()  # written before the check, so it can be read

    # The manifest column: filled for aligned utterances, kept where the corpus had one, empty otherwise.
    manifest = attach_alignments(scan_frame, alignments).set_index("utt_id")
    assert manifest.at["zz-shipped", "alignment"] == "corpus/zz-shipped.wdseg"
    assert manifest.at["zz-oov", "alignment"] == "" and manifest.at["zz-none", "alignment"] == ""
    assert all(manifest.at[u, "alignment"].endswith(f"shard-000/{u}.wdseg") for u in UTTERANCES)


def test_transcript_text_from_cell_or_file(tmp_path):
    assert transcript_text("Kids are talking", "u") == "Kids are talking"
    assert transcript_text("", "u") == "" and transcript_text(None, "u") == ""
    dialog = tmp_path / "Ses01F_impro01.txt"
    dialog.write_text("Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n")
    assert transcript_text(str(dialog), "Ses01F_impro01_F000") == "Excuse me."
    assert transcript_text(str(dialog), "Ses01F_impro01_M000") == ""  # another turn's file: none
    single = tmp_path / "u.txt"
    single.write_text("Dogs are sitting\n")
    assert transcript_text(str(single), "u") == "Dogs are sitting"


@pytest.mark.shared_data
def test_alignment_conditions_run_on_an_aligned_ravdess_utterance(aligner, ravdess_root, tmp_path):
    utt_id = UTTERANCES[0]  # "Kids are talking by the door": "the" to drop, /ih ng/ in "talking"
    x = sf.read(wav(ravdess_root, utt_id), dtype="float32")[0]
    base = aligner.align(x, STATEMENTS["01"]).write(tmp_path / utt_id)
    context = Context(utt_id=utt_id, speaker="Actor_01", words=read_words(base), phones=read_phones(base))
    the = next(w for w in context.words if w.token == "the")

    dropped = DropWords("drop-word", words=["the"], probability=1.0)(x, SR, rng_for(0, "t"), context)
    assert dropped.params["dropped_words"] == "the"
    removed = x.size - dropped.audio.size
    assert abs(removed / SR - (the.end - the.start)) < 0.02

    letters = DropLetters("drop-letters", patterns=["ihng"], probability=1.0)(x, SR, rng_for(0, "l"), context)
    assert letters.params["dropped_phones"] and letters.audio.size < x.size

    # Fillers: RAVDESS actors say no 'uh', so the bank falls back to their own /AH/ vowels.
    other = "03-01-01-01-02-01-01"
    y = sf.read(wav(ravdess_root, other), dtype="float32")[0]
    other_base = aligner.align(y, STATEMENTS["02"]).write(tmp_path / other)
    manifest = pd.DataFrame({"utt_id": [utt_id, other], "speaker": ["Actor_01"] * 2,
                             "alignment": [str(base), str(other_base)]})
    store = {utt_id: x, other: y}

    class Store:
        def read(self, u):
            return store[u]

    assert len(FillerBank.from_manifest(manifest, Store())) == 0  # no filler words at all
    bank = FillerBank.from_manifest(manifest, Store(), fallback_phones=["AH"], min_fallback_ms=40)
    assert len(bank) >= 1 and all(source.endswith("#AH") for source, _ in bank.fillers("Actor_01"))
    filled = Filler("filler-short")(x, SR, rng_for(0, "f"), Context(
        utt_id=utt_id, speaker="Actor_01", words=context.words, phones=context.phones, fillers=bank))
    assert filled.params["filler_source"].startswith(other)  # never from the utterance itself
    assert filled.audio.size == x.size + round(filled.params["filler_duration_s"] * SR)
    assert any(is_speech(w) for w in context.words)
