"""Alignment-based conditions: DropWords, DropLetters, FillerBank and Filler (paper §5.2, SPEC §5).

Runs on the synthetic IEMOCAP fixture (real espeak-ng speech, exact word boundaries; phones an
even split of each word).  Audio is read straight from the fixture wavs with soundfile, and
the expected outputs are built from ``fixture_truth.json`` and the fixture's lexicon, not from
the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fixtures.iemocap_fixture import LEXICON
from sernoise.alignments import Segment, read_phones, read_words
from sernoise.conditions import ConditionError, Context, SkipUtterance, build_condition
from sernoise.conditions.drop import PATTERNS, VOWELS, DropLetters, DropWords, splice_out
from sernoise.conditions.filler import Filler, FillerBank, source_utt_id
from sernoise.corpora.iemocap import scan
from sernoise.seeds import rng_for

SR = 16000
DROP_SET = {"a", "the", "an", "so", "like", "and"}
FILLERS = {"uh", "um"}
HALF_FADE = 40  # samples: half of the default 5 ms crossfade at 16 kHz


class WavStore:
    """The fixture wavs behind the ``read(utt_id)`` interface of sernoise.audio_store."""

    def __init__(self, manifest):
        self.paths = dict(zip(manifest["utt_id"], manifest["path"]))

    def read(self, utt_id: str) -> np.ndarray:
        x, sr = sf.read(self.paths[utt_id], dtype="float32")
        assert sr == SR
        return x


@pytest.fixture(scope="module")
def corpus(iemocap_root: Path):
    manifest = scan(iemocap_root)
    truth = json.loads((iemocap_root.parent / "fixture_truth.json").read_text())["turns"]
    store = WavStore(manifest)
    bank = FillerBank.from_manifest(manifest, store)
    return manifest, truth, store, bank


def context(row, bank=None, **overrides) -> Context:
    fields = dict(utt_id=row.utt_id, speaker=row.speaker, words=read_words(row.alignment),
                  phones=read_phones(row.alignment), fillers=bank)
    fields.update(overrides)
    return Context(**fields)


def rows(manifest):
    return list(manifest.itertuples(index=False))


def sentence(truth, row) -> list[str]:
    return [w["word"] for w in truth[row.utt_id]["words"]]


def parse_spans(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(";"):
        a, b = item.rsplit("@", 1)[-1].split("-")
        out.append((round(float(a) * SR), round(float(b) * SR)))
    return out


def assert_cut(x, y, spans, half=HALF_FADE):
    """``y`` equals ``x`` with ``spans`` removed, except within ``half`` samples of each joint."""
    keep = np.ones(x.size, dtype=bool)
    for a, b in spans:
        keep[a:b] = False
    expected = x[keep]
    assert y.size == expected.size  # centred crossfades keep the length exact
    # joints: where a kept run of samples is followed by a removed one, mapped to output positions
    starts = [a for a, _ in sorted(spans) if a > 0]
    joint_positions = [int(keep[:a].sum()) for a in starts if keep[a:].any()]
    mask = np.ones(y.size, dtype=bool)
    for p in joint_positions:
        mask[max(p - half, 0) : p + half] = False
    np.testing.assert_array_equal(y[mask], expected[mask])
    # inside the joints: a mix of neighbouring samples, never louder than the input
    assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-6


def check_result(result, n_in):
    assert result.audio.dtype == np.float32
    assert math.isnan(result.snr_target)
    json.dumps(result.params)
    assert all(isinstance(v, (str, int, float, bool)) for v in result.params.values())
    assert result.params["duration_in_s"] == pytest.approx(n_in / SR)
    assert result.params["duration_out_s"] == pytest.approx(result.audio.size / SR)


# -- splice ----------------------------------------------------------------------------------
def test_splice_out_edges_and_overlaps():
    x = np.arange(1, 1001, dtype=np.float32)
    y, joints = splice_out(x, [(0, 100), (300, 400), (350, 450), (450, 500), (990, 1000)], 20)
    keep = np.ones(1000, bool)
    for a, b in [(0, 100), (300, 500), (990, 1000)]:
        keep[a:b] = False
    assert y.size == keep.sum()
    assert [p for p, _ in joints] == [200]  # cuts at the edges need no joint; touching spans merge
    mask = np.ones(y.size, bool)
    mask[190:210] = False
    np.testing.assert_array_equal(y[mask], x[keep][mask])
    # a kept piece shorter than the fade shrinks the fade instead of reading past it
    y, joints = splice_out(x, [(100, 200), (204, 300)], 40)
    assert y.size == 804 and all(h <= 2 for _, h in joints)
    assert splice_out(x, [(0, 1000)], 10)[0].size == 0


# -- DropWords -------------------------------------------------------------------------------
def test_drop_words_cuts_exactly_the_aligned_words(corpus):
    manifest, truth, store, _ = corpus
    cond = DropWords("drop-word")
    applied = 0
    for row in rows(manifest):
        x = store.read(row.utt_id)
        words = truth[row.utt_id]["words"]
        try:
            result = cond(x, SR, rng_for(0, "drop-word", row.utt_id), context(row))
        except SkipUtterance as reason:
            assert not DROP_SET & {w["word"] for w in words}, row.utt_id
            assert "no droppable word" in str(reason)
            continue
        applied += 1
        check_result(result, x.size)
        tokens = result.params["dropped_words"].split(";")
        spans = parse_spans(result.params["dropped_spans"])
        assert len(tokens) == len(spans) == result.params["n_dropped"] >= 1
        truth_spans = {(w["start"], w["end"]): w["word"] for w in words}
        for token, span in zip(tokens, spans):
            assert token in DROP_SET
            assert truth_spans[span] == token  # exactly an aligned word, sample for sample
        assert_cut(x, result.audio, spans)
    assert applied >= 30


def test_drop_words_probability_bounds(corpus):
    manifest, truth, store, _ = corpus
    row = next(r for r in rows(manifest) if sentence(truth, r) == "give me a hand just like you".split())
    x = store.read(row.utt_id)
    everything = DropWords("all", probability=1.0)(x, SR, rng_for(0, "x"), context(row))
    assert everything.params["dropped_words"] == "a;like"
    for seed in range(5):
        one = DropWords("one", probability=0.0)(x, SR, rng_for(seed, "x"), context(row))
        assert one.params["n_dropped"] == 1
    custom = DropWords("custom", words=["HAND"], probability=1.0)(x, SR, rng_for(0, "x"), context(row))
    assert custom.params["dropped_words"] == "hand"


def test_drop_words_skips():
    x = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    words = [Segment(0.0, 0.1, "<s>", "<s>"), Segment(0.1, 0.5, "HELLO", "hello"),
             Segment(0.5, 0.9, "HOUSE", "house"), Segment(0.9, 1.0, "</s>", "</s>")]
    cond = DropWords("dw")
    with pytest.raises(SkipUtterance, match="no droppable word"):
        cond(x, SR, np.random.default_rng(0), Context("u1", "S1", words=words))
    only = [Segment(0.0, 0.2, "<s>", "<s>"), Segment(0.2, 0.6, "THE(2)", "the")]
    with pytest.raises(SkipUtterance, match="no speech"):
        cond(x, SR, np.random.default_rng(0), Context("u1", "S1", words=only))
    # two droppable words and nothing else: one is kept so that speech remains
    both = [Segment(0.0, 0.4, "SO", "so"), Segment(0.5, 0.9, "THE", "the")]
    result = DropWords("dw", probability=1.0)(x, SR, np.random.default_rng(0), Context("u1", words=both))
    assert result.params["n_dropped"] == 1
    # no alignment for this utterance (a corpus or a turn without one): skipped, with the reason
    with pytest.raises(SkipUtterance, match="no word alignment"):
        cond(x, SR, np.random.default_rng(0), Context("u1", "S1"))


# -- DropLetters -----------------------------------------------------------------------------
def _pattern_holds(pattern: str, phones, i: int, following) -> bool:
    """The pattern, checked on the lexicon entry of the word (independent of the alignment)."""
    p = phones[i]
    prev = phones[i - 1] if i > 0 else None
    prev2 = phones[i - 2] if i > 1 else None
    last = i == len(phones) - 1
    after = phones[i + 1] if not last else following
    consonant = lambda q: q is not None and q not in VOWELS  # noqa: E731
    return {
        "h_vowel": p == "HH" and not last and phones[i + 1] in VOWELS,
        "vowel_nd_consonant": p == "D" and last and prev == "N" and prev2 in VOWELS and consonant(following),
        "consonant_t_consonant": p == "T" and last and consonant(prev) and consonant(following),
        "vowel_r_consonant": p == "R" and prev in VOWELS and consonant(after),
        "ihng": p == "NG" and prev == "IH",
    }[pattern]


def test_drop_letters_over_fixture(corpus):
    manifest, truth, store, _ = corpus
    cond = DropLetters("drop-letters", probability=1.0)
    seen = set()
    for row in rows(manifest):
        x = store.read(row.utt_id)
        turn = truth[row.utt_id]
        try:
            result = cond(x, SR, rng_for(0, "drop-letters", row.utt_id), context(row))
        except SkipUtterance:
            continue
        check_result(result, x.size)
        items = result.params["dropped_phones"].split(";")
        spans = parse_spans(result.params["dropped_phones"])
        assert len(items) == result.params["n_dropped"] == result.params["n_candidates"]
        for item, (a, b) in zip(items, spans):
            pattern, phone = item.split("@")[0].split(":")
            assert PATTERNS[pattern] == phone
            assert {"phone": phone, "start": a, "end": b} in turn["phones"]  # an aligned phone
            k = next(k for k, w in enumerate(turn["words"]) if w["start"] <= a < w["end"])
            word = turn["words"][k]["word"]
            next_word = turn["words"][k + 1]["word"] if k + 1 < len(turn["words"]) else None
            lex = LEXICON[word][1]
            # position of the phone inside its word, from the even split the fixture uses
            w0, w1 = turn["words"][k]["start"], turn["words"][k]["end"]
            i = int(((a + b) / 2 - w0) * len(lex) // (w1 - w0))
            assert lex[i] == phone
            following = LEXICON[next_word][1][0] if next_word else None  # first phone of the next word
            assert _pattern_holds(pattern, lex, i, following), (row.utt_id, item)
            seen.add(pattern)
        assert_cut(x, result.audio, spans)
    assert seen == set(PATTERNS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("give me a hand just like you",
         [("h_vowel", "HH", "hand"), ("vowel_nd_consonant", "D", "hand"), ("consonant_t_consonant", "T", "just")]),
        ("hello and good morning",
         [("h_vowel", "HH", "hello"), ("vowel_nd_consonant", "D", "and"), ("vowel_r_consonant", "R", "morning"),
          ("ihng", "NG", "morning")]),
    ],
)
def test_drop_letters_finds_every_match(corpus, text, expected):
    manifest, truth, store, _ = corpus
    row = next(r for r in rows(manifest) if sentence(truth, r) == text.split())
    x = store.read(row.utt_id)
    result = DropLetters("dl", probability=1.0)(x, SR, rng_for(0, "dl"), context(row))
    words = truth[row.utt_id]["words"]
    found = []
    for item, (a, _) in zip(result.params["dropped_phones"].split(";"), parse_spans(result.params["dropped_phones"])):
        pattern, phone = item.split("@")[0].split(":")
        found.append((pattern, phone, next(w["word"] for w in words if w["start"] <= a < w["end"])))
    assert found == expected


def test_drop_letters_skips(corpus):
    manifest, truth, store, _ = corpus
    row = next(r for r in rows(manifest) if sentence(truth, r) == "give me a hand just like you".split())
    x = store.read(row.utt_id)
    with pytest.raises(SkipUtterance, match="no phone matching"):
        DropLetters("dl", patterns=["ihng"])(x, SR, rng_for(0, "dl"), context(row))
    with pytest.raises(SkipUtterance, match="no phone alignment"):
        DropLetters("dl")(x, SR, rng_for(0, "dl"), context(row, phones=None))
    with pytest.raises(SkipUtterance, match="no word alignment"):
        DropLetters("dl")(x, SR, rng_for(0, "dl"), context(row, words=None))
    # ER is the r-coloured vowel, not an /r/: "word" and "heard" give no vowel_r_consonant
    row = next(r for r in rows(manifest) if sentence(truth, r) == "uh i heard you thinking".split())
    with pytest.raises(SkipUtterance):
        DropLetters("dl", patterns=["vowel_r_consonant"])(store.read(row.utt_id), SR, rng_for(0, "dl"), context(row))


# -- FillerBank ------------------------------------------------------------------------------
def test_filler_bank_cuts_every_filler(corpus, tmp_path):
    manifest, truth, store, bank = corpus
    expected = [(t["speaker"], uid, w) for uid, t in truth.items() for w in t["words"] if w["word"] in FILLERS]
    assert len(bank) == len(expected) > 0
    speakers = dict(zip(manifest["utt_id"], manifest["speaker"]))
    for speaker, uid, word in expected:
        clips = [(s, c) for s, c in bank.fillers(speaker) if source_utt_id(s) == uid]
        assert len(clips) == 1 and speakers[uid] == speaker
        source, clip = clips[0]
        a, b = parse_spans(source)[0]
        assert word["start"] - 320 <= a <= word["start"] - 160 and word["end"] + 160 <= b <= word["end"] + 320
        x = store.read(uid)
        assert clip.size == b - a
        # the word itself is copied verbatim (the 5 ms ramps lie in the margins)
        np.testing.assert_array_equal(clip[word["start"] - a : word["end"] - a], x[word["start"] : word["end"]])
    assert bank.fillers("nobody") == []
    path = bank.save(tmp_path / "fillers.h5")
    again = FillerBank.load(path)
    assert again.speakers() == bank.speakers() and again.tokens == bank.tokens
    for speaker in bank.speakers():
        for (s1, c1), (s2, c2) in zip(bank.fillers(speaker), again.fillers(speaker), strict=True):
            assert s1 == s2
            np.testing.assert_array_equal(c1, c2)
    assert bank.save(tmp_path / "again.h5").read_bytes() == path.read_bytes()  # deterministic file
    assert len(FillerBank.load(FillerBank().save(tmp_path / "empty.h5"))) == 0  # corpus without fillers
    only_uh = FillerBank.from_manifest(manifest, store, tokens=["uh"])
    assert len(only_uh) == sum(1 for *_, w in expected if w["word"] == "uh")


# -- Filler ----------------------------------------------------------------------------------
def _two_closest_boundaries(words, n):
    cuts = [(words[i]["end"] + words[i + 1]["start"]) // 2 for i in range(len(words) - 1)]
    return sorted(cuts, key=lambda c: abs(c - n / 2))[:2]


@pytest.mark.parametrize("pause", ["short", "long"])
def test_filler_inserts_a_clip_of_the_same_speaker(corpus, pause):
    manifest, truth, store, bank = corpus
    cond = Filler(f"filler-{pause}", pause=pause)
    applied = 0
    for row in rows(manifest):
        x = store.read(row.utt_id)
        try:
            result = cond(x, SR, rng_for(0, cond.id, row.utt_id), context(row, bank))
        except SkipUtterance as reason:
            assert row.speaker in str(reason)
            others = [s for s, _ in bank.fillers(row.speaker) if source_utt_id(s) != row.utt_id]
            assert not others
            continue
        applied += 1
        check_result(result, x.size)
        p = result.params
        clips = dict(bank.fillers(row.speaker))
        assert p["filler_source"] in clips  # same speaker
        assert source_utt_id(p["filler_source"]) != row.utt_id
        clip = clips[p["filler_source"]]
        k = round(p["insert_at_s"] * SR)
        assert k in _two_closest_boundaries(truth[row.utt_id]["words"], x.size)
        gap = round(p["pause_s"] * SR)
        if pause == "long":
            assert 0.5 * SR <= gap <= 1.0 * SR
        else:
            assert gap == 0
        y = result.audio
        assert y.size == x.size + clip.size + 2 * gap
        np.testing.assert_array_equal(y[:k], x[:k])
        assert not np.any(y[k : k + gap])
        np.testing.assert_array_equal(y[k + gap : k + gap + clip.size], clip)
        assert not np.any(y[k + gap + clip.size : k + 2 * gap + clip.size])
        np.testing.assert_array_equal(y[k + 2 * gap + clip.size :], x[k:])
    assert applied >= 30


def test_filler_skips_and_exclusion(corpus):
    manifest, truth, store, bank = corpus
    row = next(r for r in rows(manifest) if truth[r.utt_id]["words"][0]["word"] == "um")
    x = store.read(row.utt_id)
    own = [(s, c) for s, c in bank.fillers(row.speaker) if source_utt_id(s) == row.utt_id]
    own_bank = FillerBank([(row.speaker, s, c) for s, c in own])
    with pytest.raises(SkipUtterance, match=f"no filler from speaker {row.speaker}"):
        Filler("f")(x, SR, rng_for(0, "f"), context(row, own_bank))
    result = Filler("f", exclude_same_utterance=False)(x, SR, rng_for(0, "f"), context(row, own_bank))
    assert source_utt_id(result.params["filler_source"]) == row.utt_id
    with pytest.raises(SkipUtterance, match="no filler from speaker"):
        Filler("f")(x, SR, rng_for(0, "f"), context(row, FillerBank()))
    with pytest.raises(SkipUtterance, match="no word alignment"):
        Filler("f")(x, SR, rng_for(0, "f"), context(row, bank, words=None, phones=None))
    one_word = [Segment(0.0, 0.2, "<s>", "<s>"), Segment(0.2, 0.6, "HELLO", "hello")]
    with pytest.raises(SkipUtterance, match="fewer than two words"):
        Filler("f")(x, SR, rng_for(0, "f"), context(row, bank, words=one_word))
    with pytest.raises(ConditionError, match="filler source"):
        Filler("f")(x, SR, rng_for(0, "f"), context(row, None))


# -- determinism -----------------------------------------------------------------------------
def test_determinism(corpus):
    manifest, truth, store, bank = corpus
    row = next(r for r in rows(manifest) if sentence(truth, r) == "give me a hand just like you".split())
    x = store.read(row.utt_id)
    ctx = context(row, bank)
    for cond in (DropWords("dw"), DropLetters("dl"), Filler("fl", pause="long")):
        first = cond(x, SR, rng_for(7, cond.id, row.utt_id), ctx)
        second = cond(x, SR, rng_for(7, cond.id, row.utt_id), ctx)
        np.testing.assert_array_equal(first.audio, second.audio)
        assert first.params == second.params
        outcomes = {json.dumps(cond(x, SR, rng_for(seed, cond.id, row.utt_id), ctx).params, sort_keys=True)
                    for seed in range(12)}
        assert len(outcomes) > 1, cond.id  # several candidates: the seed changes the choice


# -- construction ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, argument",
    [
        ({"type": "drop_words", "probability": 1.5}, "probability"),
        ({"type": "drop_words", "words": []}, "words"),
        ({"type": "drop_words", "words": "the"}, "words"),
        ({"type": "drop_words", "crossfade_ms": -1}, "crossfade_ms"),
        ({"type": "drop_letters", "patterns": ["h_vowel", "bogus"]}, "patterns"),
        ({"type": "drop_letters", "probability": -0.1}, "probability"),
        ({"type": "filler", "pause": "medium"}, "pause"),
        ({"type": "filler", "pause_seconds": [1.0, 0.5]}, "pause_seconds"),
        ({"type": "filler", "pause_seconds": [0.5]}, "pause_seconds"),
        ({"type": "filler", "exclude_same_utterance": "yes"}, "exclude_same_utterance"),
        ({"type": "filler", "pause_s": 1}, "pause_s"),
    ],
)
def test_constructor_errors_name_id_and_argument(spec, argument):
    with pytest.raises(ConditionError) as error:
        build_condition("my-cond", spec)
    assert "my-cond" in str(error.value) and argument in str(error.value)


def test_registry_and_describe():
    expected = {"drop_words": ("retaining", {"alignment"}), "drop_letters": ("retaining", {"alignment"}),
                "filler": ("altering", {"alignment", "fillers"})}
    for type_name, (perception, requires) in expected.items():
        cond = build_condition("c", {"type": type_name})
        info = cond.describe()
        assert info["type"] == type_name and info["family"] == "distortion"
        assert info["perception"] == perception and set(info["requires"]) == requires
        assert type(cond)("c", **cond.args()).args() == cond.args()
    assert DropWords("c").args()["words"] == sorted(DROP_SET, key=["a", "the", "an", "so", "like", "and"].index)
    assert DropLetters("c").args()["patterns"] == list(PATTERNS)
    assert Filler("c").args() == {"pause": "short", "pause_seconds": [0.5, 1.0], "exclude_same_utterance": True,
                                  "level_db": 0.0}
