"""Alignment-based deletions: DropWord and DropLetters (paper §5.2, SPEC §5).

* :class:`DropWords` removes randomly chosen non-essential words ({a, the, an, so, like, and}
  by default) at their aligned word boundaries and stitches the rest together.
* :class:`DropLetters` removes single phones where US-English speakers commonly delete them
  (Yuan & Liberman; paper §5.2): /h/ before a vowel, the /d/ of vowel+/nd/ before a consonant
  starting the next word, the /t/ of consonant+/t/ before a consonant starting the next word,
  the /r/ of vowel+/r/ before a consonant, and the /ng/ of /ih ng/.

Both cut sample spans out of the signal with :func:`splice_out`: every joint gets a short
raised-cosine crossfade centred on the cut, so that the output is the input with those spans
removed, sample for sample, except within ``crossfade/2`` samples of each joint, and its
length is exactly ``len(x) - removed``.

Utterances without an alignment (``context.words``/``context.phones`` is None) raise
:class:`SkipUtterance`, not :class:`ConditionError`: inside a corpus that has alignments a few
turns may lack one, and the caller records the skip per utterance; corpora with no alignment
at all never reach these conditions (their ``requires`` says ``alignment``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..alignments import Segment, is_speech
from .base import Condition, Context, Result, SkipUtterance

DEFAULT_DROP_WORDS = ("a", "the", "an", "so", "like", "and")

# ARPAbet vowels (CMUdict's 15, plus the TIMIT reduced vowels some aligners emit); stress
# digits are stripped before lookup.  ER is a vowel here: it is the r-coloured vowel itself,
# so dropping it would delete the vowel, not just an /r/ (see DropLetters).
VOWELS = frozenset(
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
     "AX", "AXR", "IX", "UX"}
)

# pattern -> the phone it deletes
PATTERNS = {
    "h_vowel": "HH",
    "vowel_nd_consonant": "D",
    "consonant_t_consonant": "T",
    "vowel_r_consonant": "R",
    "ihng": "NG",
}


# -- shared helpers ---------------------------------------------------------------------------
def base_phone(label: str) -> str:
    """``'AH0'`` -> ``'AH'``: the ARPAbet symbol without its stress digit, upper-case."""
    return label.strip().upper().rstrip("012")


def to_samples(seg: Segment, sr: int, n: int) -> tuple[int, int]:
    """A segment's ``[start, end)`` in samples, clamped to the signal (alignments of real corpora
    can run a frame past the end of the audio)."""
    start = min(max(int(round(seg.start * sr)), 0), n)
    end = min(max(int(round(seg.end * sr)), 0), n)
    return start, end


def merge_spans(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-empty, non-overlapping spans (touching spans are joined, so that adjacent
    deletions make one cut and one crossfade instead of a crossfade over zero samples)."""
    merged: list[list[int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def splice_out(x: np.ndarray, spans: Sequence[tuple[int, int]], crossfade: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Remove sample ``spans`` from ``x`` and crossfade each joint.

    A joint between a kept piece ending at sample ``b`` and the next one starting at ``a``
    mixes ``x[b-h : b+h]`` (fading out) with ``x[a-h : a+h]`` (fading in), ``h = crossfade // 2``
    (smaller where a kept piece is too short to hold it).  Centring the fade on the cut keeps
    the output length exactly ``len(x) - removed`` and leaves every other sample untouched.

    Returns the output and, per joint, ``(position in the output, h)``.
    """
    n = x.size
    spans = merge_spans(spans)
    kept: list[tuple[int, int]] = []
    cursor = 0
    for start, end in spans:
        if start > cursor:
            kept.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < n:
        kept.append((cursor, n))
    if not kept:
        return np.zeros(0, dtype=np.float32), []
    half = max(int(crossfade) // 2, 0)
    # A piece with joints on both sides lends at most half its length to each crossfade.
    lengths = [b - a for a, b in kept]
    budget = [(ln if i in (0, len(kept) - 1) else ln // 2) for i, ln in enumerate(lengths)]
    out = x[kept[0][0] : kept[0][1]].astype(np.float32, copy=True)
    pieces = [out]
    joints: list[tuple[int, int]] = []
    position = lengths[0]
    for i in range(1, len(kept)):
        b, a = kept[i - 1][1], kept[i][0]
        h = min(half, budget[i - 1], budget[i])
        if h > 0:
            # Raised-cosine gains that sum to one: the joint neither dips nor bumps in level.
            t = (np.arange(2 * h, dtype=np.float64) + 0.5) / (2 * h)
            fade_in = 0.5 - 0.5 * np.cos(np.pi * t)
            mixed = x[b - h : b + h] * (1.0 - fade_in) + x[a - h : a + h] * fade_in
            previous = pieces[-1]
            pieces[-1] = previous[: previous.size - h]
            pieces.append(mixed.astype(np.float32))
            pieces.append(x[a + h : kept[i][1]].astype(np.float32))
        else:
            pieces.append(x[a : kept[i][1]].astype(np.float32))
        joints.append((position, h))
        position += lengths[i]
    return np.concatenate(pieces).astype(np.float32, copy=False), joints


def _fmt_s(value: float) -> str:
    """Seconds with enough digits for one sample at 16 kHz (1/16000 s = 0.0000625 s)."""
    return f"{value:.7f}".rstrip("0").rstrip(".") or "0"


def _choose(rng: np.random.Generator, n: int, probability: float) -> np.ndarray:
    """Indices chosen independently with ``probability``; one uniformly chosen when none was
    (so that every applied utterance is actually distorted)."""
    chosen = np.flatnonzero(rng.random(n) < probability)
    if chosen.size == 0:
        chosen = np.array([int(rng.integers(n))])
    return chosen


class _AlignmentDrop(Condition):
    """Shared argument checks of the two deletion conditions."""

    family = "distortion"
    default_perception = "retaining"
    requires = frozenset({"alignment"})

    def _init_common(self, probability, crossfade_ms) -> None:
        try:
            self.probability = float(probability)
            self.crossfade_ms = float(crossfade_ms)
        except (TypeError, ValueError):
            raise self._error("probability/crossfade_ms", f"expected numbers, got {probability!r}, {crossfade_ms!r}") from None
        self._check_range("probability", self.probability, 0.0, 1.0)
        self._check_range("crossfade_ms", self.crossfade_ms, 0.0, 50.0)

    def _words(self, context: Context) -> list[Segment]:
        if context.words is None:
            raise SkipUtterance(f"no word alignment for {context.utt_id}")
        return list(context.words)

    def _finish(self, x: np.ndarray, sr: int, spans, extra: dict[str, Any]) -> Result:
        crossfade = int(round(self.crossfade_ms * sr / 1000.0))
        y, _ = splice_out(x, spans, crossfade)
        if y.size == 0:
            raise SkipUtterance("nothing would be left after the deletion")
        return Result(
            audio=y,
            params={**extra, "duration_in_s": x.size / sr, "duration_out_s": y.size / sr},
        )


class DropWords(_AlignmentDrop):
    """Drop non-essential words at their aligned boundaries (paper §5.2, *DropWord*).

    Arguments:
        words: tokens that may be dropped, compared with :attr:`Segment.token` (lower-case,
            pronunciation variant removed, so ``THE(2)`` matches ``the``).
        probability: each matching word is dropped independently with this probability; when
            the draw drops none, one matching word is dropped (chosen uniformly), so every
            applied utterance loses at least one word.  ``0`` therefore means "exactly one".
        crossfade_ms: total length of the crossfade at each joint.

    Never drops every speech word: if the draw would, one chosen word is kept; a turn whose
    only word is droppable is skipped.  No matching word -> :class:`SkipUtterance`.
    """

    type_name = "drop_words"

    def __init__(
        self,
        condition_id: str,
        *,
        words: Sequence[str] = DEFAULT_DROP_WORDS,
        probability: float = 0.5,
        crossfade_ms: float = 5.0,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        if isinstance(words, str) or not isinstance(words, Sequence) or not words:
            raise self._error("words", f"expected a non-empty list of words, got {words!r}")
        if not all(isinstance(w, str) and w.strip() for w in words):
            raise self._error("words", f"every entry must be a non-empty string, got {list(words)!r}")
        self.words = [w.strip().lower() for w in words]
        self._init_common(probability, crossfade_ms)

    def args(self) -> dict[str, Any]:
        return {"words": list(self.words), "probability": self.probability, "crossfade_ms": self.crossfade_ms}

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        n = x.size
        speech = [(seg, to_samples(seg, sr, n)) for seg in self._words(context) if is_speech(seg)]
        speech = [(seg, span) for seg, span in speech if span[1] > span[0]]
        targets = set(self.words)
        candidates = [i for i, (seg, _) in enumerate(speech) if seg.token in targets]
        if not candidates:
            raise SkipUtterance("no droppable word")
        if len(speech) == 1:
            raise SkipUtterance("the only word is droppable; dropping it would leave no speech")
        chosen = sorted(candidates[i] for i in _choose(rng, len(candidates), self.probability))
        if len(chosen) == len(speech):
            # Keep one word so the result is still speech, not just the silences between words.
            chosen.pop(int(rng.integers(len(chosen))))
        dropped = [speech[i] for i in chosen]
        return self._finish(
            x,
            sr,
            [span for _, span in dropped],
            {
                "dropped_words": ";".join(seg.token for seg, _ in dropped),
                "dropped_spans": ";".join(f"{_fmt_s(a / sr)}-{_fmt_s(b / sr)}" for _, (a, b) in dropped),
                "n_dropped": len(dropped),
                "n_candidates": len(candidates),
            },
        )


class DropLetters(_AlignmentDrop):
    """Delete single phones following phonological-deletion patterns (paper §5.2, *DropLetters*).

    Patterns (phones are ARPAbet without stress digits; "next word" is the following speech
    word, silences between them ignored):

    ``h_vowel``                HH followed by a vowel in the same word -> drop HH
    ``vowel_nd_consonant``     vowel N D ending a word, next word starts with a consonant -> drop D
    ``consonant_t_consonant``  consonant T ending a word, next word starts with a consonant -> drop T
    ``vowel_r_consonant``      vowel R in a word, followed by a consonant (same word or the
                               first phone of the next) -> drop R
    ``ihng``                   IH NG in the same word -> drop NG

    CMU's r-coloured vowel ER is not an /r/ phone and is never dropped (that would delete the
    vowel).  Phones are assigned to words by their midpoint.  ``probability`` and
    ``crossfade_ms`` as in :class:`DropWords` (at least one match is dropped).  No match ->
    :class:`SkipUtterance`.
    """

    type_name = "drop_letters"

    def __init__(
        self,
        condition_id: str,
        *,
        patterns: Sequence[str] = tuple(PATTERNS),
        probability: float = 0.5,
        crossfade_ms: float = 5.0,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        if isinstance(patterns, str) or not isinstance(patterns, Sequence) or not patterns:
            raise self._error("patterns", f"expected a non-empty list out of {sorted(PATTERNS)}, got {patterns!r}")
        unknown = [p for p in patterns if p not in PATTERNS]
        if unknown:
            raise self._error("patterns", f"unknown pattern(s) {unknown}; known: {sorted(PATTERNS)}")
        self.patterns = list(dict.fromkeys(patterns))
        self._init_common(probability, crossfade_ms)

    def args(self) -> dict[str, Any]:
        return {"patterns": list(self.patterns), "probability": self.probability, "crossfade_ms": self.crossfade_ms}

    @staticmethod
    def _phone_words(phones: list[Segment], words: list[Segment]) -> list[tuple[Segment, str, int]]:
        """Speech phones as ``(segment, base phone, index of its speech word)``; phones outside
        every speech word (misaligned or in a silence) get index -1 and match no pattern."""
        spans = [(w.start, w.end) for w in words if is_speech(w)]
        out = []
        for ph in phones:
            if not is_speech(ph):
                continue
            mid = 0.5 * (ph.start + ph.end)
            index = next((k for k, (a, b) in enumerate(spans) if a <= mid < b), -1)
            out.append((ph, base_phone(ph.label), index))
        return out

    def matches(self, phones: list[Segment], words: list[Segment]) -> list[tuple[str, Segment]]:
        """All ``(pattern, phone to drop)`` matches of the configured patterns, in time order."""
        seq = self._phone_words(phones, words)
        found: list[tuple[str, Segment]] = []
        enabled = set(self.patterns)

        def vowel(p: str) -> bool:
            return p in VOWELS

        def consonant(p: str) -> bool:
            return p not in VOWELS

        for i, (seg, p, w) in enumerate(seq):
            if w < 0:
                continue
            prev = seq[i - 1] if i > 0 and seq[i - 1][2] == w else None
            prev2 = seq[i - 2] if i > 1 and seq[i - 2][2] == w else None
            nxt = seq[i + 1] if i + 1 < len(seq) else None
            nxt_same = nxt if nxt is not None and nxt[2] == w else None
            # the first phone of the next word, when this phone ends its word
            nxt_word = nxt if nxt is not None and nxt[2] == w + 1 else None
            if "h_vowel" in enabled and p == "HH" and nxt_same and vowel(nxt_same[1]):
                found.append(("h_vowel", seg))
            if ("vowel_nd_consonant" in enabled and p == "D" and prev and prev[1] == "N" and prev2
                    and vowel(prev2[1]) and nxt_word and consonant(nxt_word[1])):
                found.append(("vowel_nd_consonant", seg))
            if ("consonant_t_consonant" in enabled and p == "T" and prev and consonant(prev[1])
                    and nxt_word and consonant(nxt_word[1])):
                found.append(("consonant_t_consonant", seg))
            follower = nxt_same or nxt_word
            if ("vowel_r_consonant" in enabled and p == "R" and prev and vowel(prev[1])
                    and follower and consonant(follower[1])):
                found.append(("vowel_r_consonant", seg))
            if "ihng" in enabled and p == "NG" and prev and prev[1] == "IH":
                found.append(("ihng", seg))
        return found

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        words = self._words(context)
        if context.phones is None:
            raise SkipUtterance(f"no phone alignment for {context.utt_id}")
        n = x.size
        candidates = [(pat, seg, to_samples(seg, sr, n)) for pat, seg in self.matches(list(context.phones), words)]
        candidates = [c for c in candidates if c[2][1] > c[2][0]]
        if not candidates:
            raise SkipUtterance(f"no phone matching the patterns {self.patterns}")
        dropped = [candidates[i] for i in sorted(_choose(rng, len(candidates), self.probability))]
        return self._finish(
            x,
            sr,
            [span for _, _, span in dropped],
            {
                "dropped_phones": ";".join(
                    f"{pat}:{base_phone(seg.label)}@{_fmt_s(a / sr)}-{_fmt_s(b / sr)}" for pat, seg, (a, b) in dropped
                ),
                "n_dropped": len(dropped),
                "n_candidates": len(candidates),
            },
        )
