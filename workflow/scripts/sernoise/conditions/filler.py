"""Filler insertion (paper §5.2, *Filler*; SPEC §5 ``filler-{short,long}``).

:class:`FillerBank` cuts every aligned filler word ('uh', 'um', ...) out of a corpus, per
speaker, once (a workflow rule builds it per corpus and saves it with :meth:`FillerBank.save`);
:class:`Filler` inserts one filler of the utterance's own speaker in the middle of the sentence,
either on its own (``pause="short"``) or preceded and followed by a long pause
(``pause="long"``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from ..alignments import is_speech, read_phones, read_words
from .base import SAMPLE_RATE, Condition, ConditionError, Context, Result, SkipUtterance
from .drop import to_samples

DEFAULT_FILLER_TOKENS = ("uh", "um", "umm", "uhm", "hmm", "mm", "er", "ah")
FORMAT_VERSION = 1
# Fixed HDF5 format bounds and no timestamps, as in sernoise.audio_store: the same corpus gives
# the same bank file byte for byte.
_LIBVER = ("v110", "v110")


def source_utt_id(source: str) -> str:
    """``'Ses01F_impro01_F000@1.23-1.51'`` (or ``...@1.23-1.51#AH``) -> ``'Ses01F_impro01_F000'``."""
    return source.rsplit("@", 1)[0]


def _fmt_s(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".") or "0"


def _ramped_clip(x: np.ndarray, a: int, b: int, ramp: int) -> np.ndarray | None:
    """``x[a:b]`` with raised-cosine ramps of ``ramp`` samples (at most a quarter of it) at both ends,
    or None when it is digital silence (nothing to insert)."""
    clip = x[a:b].copy()
    if not np.any(np.abs(clip) > 1e-6):
        return None
    r = min(ramp, clip.size // 4)
    if r:
        t = (np.arange(r, dtype=np.float64) + 0.5) / r
        gain = (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
        clip[:r] *= gain
        clip[-r:] *= gain[::-1]
    return clip


class FillerBank:
    """Filler clips per speaker, implementing :class:`~sernoise.conditions.base.FillerSource`.

    Each clip is the aligned filler word plus a margin of ``margin_ms`` on each side (15 ms by
    default, i.e. inside the 10–20 ms the alignment's frame jitter calls for), cut short where a
    neighbouring speech word or the signal edge is closer, and given ``ramp_ms`` raised-cosine
    ramps at both ends so that inserting it verbatim does not click.  Clips are listed per
    speaker sorted by source, ``"utt_id@start-end"`` (seconds of the cut in that utterance),
    so that a seeded draw picks the same clip on every run.
    """

    def __init__(
        self,
        clips: Iterable[tuple[str, str, np.ndarray]] = (),
        *,
        tokens: Sequence[str] = DEFAULT_FILLER_TOKENS,
        margin_ms: float = 15.0,
        ramp_ms: float = 5.0,
        sample_rate: int = SAMPLE_RATE,
    ):
        """``clips``: ``(speaker, source, audio)`` triples; usually built by :meth:`from_manifest`."""
        self.tokens = tuple(t.lower() for t in tokens)
        self.margin_ms = float(margin_ms)
        self.ramp_ms = float(ramp_ms)
        self.sample_rate = int(sample_rate)
        by_speaker: dict[str, list[tuple[str, np.ndarray]]] = {}
        for speaker, source, audio in clips:
            by_speaker.setdefault(str(speaker), []).append((str(source), np.asarray(audio, dtype=np.float32)))
        self._clips = {spk: sorted(items, key=lambda item: item[0]) for spk, items in sorted(by_speaker.items())}

    # -- FillerSource ------------------------------------------------------------------------
    def fillers(self, speaker: str) -> list[tuple[str, np.ndarray]]:
        """``(source, audio)`` of every filler of ``speaker`` (empty list for an unknown one)."""
        return list(self._clips.get(speaker, []))

    def speakers(self) -> list[str]:
        return list(self._clips)

    def __len__(self) -> int:
        return sum(len(v) for v in self._clips.values())

    def __repr__(self) -> str:
        return f"FillerBank({len(self)} clips, {len(self._clips)} speakers, tokens={list(self.tokens)})"

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_manifest(
        cls,
        manifest,
        store,
        *,
        tokens: Sequence[str] = DEFAULT_FILLER_TOKENS,
        margin_ms: float = 15.0,
        ramp_ms: float = 5.0,
        sample_rate: int = SAMPLE_RATE,
        fallback_phones: Sequence[str] = (),
        min_fallback_ms: float = 60.0,
    ) -> "FillerBank":
        """Cut the fillers of every aligned utterance of ``manifest``.

        ``fallback_phones`` (e.g. ``["AH"]``, the vowel of 'uh'): for a speaker who never says a
        filler word (RAVDESS actors read two fixed statements), every aligned phone of these
        names lasting at least ``min_fallback_ms`` (inside a speech word, cut at the phone's own
        boundaries, ramps as above) serves as that speaker's filler; its source reads
        ``"utt_id@start-end#PHONE"``.  Speakers with real fillers never get fallback clips.

        ``manifest``: a frame with ``utt_id``, ``speaker`` and ``alignment`` (the ``.wdseg``
        path; empty cells mean no alignment and the row is skipped).  ``store``: anything with
        ``read(utt_id) -> float32 audio`` at ``sample_rate`` (an :class:`~sernoise.audio_store.AudioStore`).
        A filler token wrapped in ``+`` signs (``++UH++``) counts too.
        """
        wanted = {t.lower() for t in tokens}
        if not wanted:
            raise ValueError("FillerBank: tokens must not be empty")
        if not 0.0 <= margin_ms <= 100.0 or not 0.0 <= ramp_ms <= 50.0:
            raise ValueError(f"FillerBank: margin_ms {margin_ms} or ramp_ms {ramp_ms} out of range")
        margin = int(round(margin_ms * sample_rate / 1000.0))
        ramp = int(round(ramp_ms * sample_rate / 1000.0))
        clips = []
        for row in manifest[["utt_id", "speaker", "alignment"]].itertuples(index=False):
            alignment = "" if row.alignment is None else str(row.alignment).strip()
            if alignment in ("", "nan"):
                continue
            words = read_words(alignment)
            hits = [k for k, w in enumerate(words) if w.token.strip("+") in wanted]
            if not hits:
                continue
            x = np.asarray(store.read(row.utt_id), dtype=np.float32)
            n = x.size
            spans = [to_samples(w, sample_rate, n) for w in words]
            for k in hits:
                start, end = spans[k]
                if end <= start:
                    continue
                # The margin may take silence but never a neighbouring word's speech.
                left = max((spans[j][1] for j in range(k) if is_speech(words[j])), default=0)
                right = min((spans[j][0] for j in range(k + 1, len(words)) if is_speech(words[j])), default=n)
                a = max(start - margin, min(left, start), 0)
                b = min(end + margin, max(right, end), n)
                clip = _ramped_clip(x, a, b, ramp)
                if clip is None:
                    continue  # an alignment over digital silence: nothing to insert
                source = f"{row.utt_id}@{_fmt_s(a / sample_rate)}-{_fmt_s(b / sample_rate)}"
                clips.append((row.speaker, source, clip))
        if fallback_phones:
            clips += cls._fallback_clips(manifest, store, {str(row[0]) for row in clips}, fallback_phones,
                                         min_fallback_ms, ramp, sample_rate)
        return cls(clips, tokens=tuple(tokens), margin_ms=margin_ms,
                   ramp_ms=ramp_ms, sample_rate=sample_rate)

    @staticmethod
    def _fallback_clips(manifest, store, covered: set, phones: Sequence[str], min_ms: float, ramp: int,
                        sample_rate: int) -> list:
        """Clips of ``phones`` (speech words only) for speakers not in ``covered``."""
        wanted = {p.lower() for p in phones}
        min_len = int(round(min_ms * sample_rate / 1000.0))
        clips = []
        for row in manifest[["utt_id", "speaker", "alignment"]].itertuples(index=False):
            alignment = "" if row.alignment is None else str(row.alignment).strip()
            if alignment in ("", "nan") or str(row.speaker) in covered:
                continue
            words = [w for w in read_words(alignment) if is_speech(w)]
            hits = [p for p in read_phones(alignment) if p.token in wanted
                    and any(w.start <= p.start and p.end <= w.end for w in words)]
            if not hits:
                continue
            x = np.asarray(store.read(row.utt_id), dtype=np.float32)
            for phone in hits:
                a, b = to_samples(phone, sample_rate, x.size)
                if b - a < min_len:
                    continue
                clip = _ramped_clip(x, a, b, ramp)
                if clip is None:
                    continue
                source = f"{row.utt_id}@{_fmt_s(a / sample_rate)}-{_fmt_s(b / sample_rate)}#{phone.label}"
                clips.append((row.speaker, source, clip))
        return clips

    # -- persistence -------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write one HDF5 file: ``/samples`` float32 (clips back to back), ``/offsets`` int64,
        ``/speakers`` and ``/sources`` (utf-8); attrs ``sample_rate``, ``tokens``,
        ``margin_ms``, ``ramp_ms``, ``format_version``.  Written to a temporary name and
        renamed, so an interrupted rule leaves no half file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        speakers, sources, audio = [], [], []
        for speaker, items in self._clips.items():
            for source, clip in items:
                speakers.append(speaker)
                sources.append(source)
                audio.append(clip)
        offsets = np.zeros(len(audio) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([a.size for a in audio]) if audio else []
        samples = np.concatenate(audio).astype(np.float32) if audio else np.zeros(0, dtype=np.float32)
        tmp = path.with_name(path.name + ".tmp")
        text = h5py.string_dtype("utf-8")
        with h5py.File(tmp, "w", libver=_LIBVER, track_times=False) as h5:
            h5.create_dataset("samples", data=samples, track_times=False)
            h5.create_dataset("offsets", data=offsets, track_times=False)
            h5.create_dataset("speakers", data=np.array(speakers, dtype=object), dtype=text, track_times=False)
            h5.create_dataset("sources", data=np.array(sources, dtype=object), dtype=text, track_times=False)
            h5.attrs["sample_rate"] = self.sample_rate
            h5.attrs["tokens"] = ";".join(self.tokens)
            h5.attrs["margin_ms"] = self.margin_ms
            h5.attrs["ramp_ms"] = self.ramp_ms
            h5.attrs["format_version"] = FORMAT_VERSION
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> "FillerBank":
        """Read a bank written by :meth:`save` (ValueError naming the file when it is not one)."""
        path = Path(path)
        try:
            with h5py.File(path, "r") as h5:
                version = int(h5.attrs.get("format_version", -1))
                if version != FORMAT_VERSION:
                    raise ValueError(f"{path}: filler bank format_version {version}, expected {FORMAT_VERSION}")
                samples = h5["samples"][()]
                offsets = h5["offsets"][()]
                speakers = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["speakers"][()]]
                sources = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["sources"][()]]
                attrs = dict(h5.attrs)
        except (OSError, KeyError) as error:
            raise ValueError(f"{path}: not a filler bank ({error})") from None
        clips = [(speakers[i], sources[i], samples[offsets[i] : offsets[i + 1]]) for i in range(len(sources))]
        tokens = [t for t in str(attrs.get("tokens", "")).split(";") if t]
        return cls(clips, tokens=tokens or DEFAULT_FILLER_TOKENS, margin_ms=float(attrs["margin_ms"]),
                   ramp_ms=float(attrs["ramp_ms"]), sample_rate=int(attrs["sample_rate"]))


PAUSES = ("short", "long")


class Filler(Condition):
    """Insert one filler of the same speaker mid-sentence (paper §5.2, *Filler*).

    The insertion point is a word boundary: between two consecutive speech words of
    ``context.words``, in the middle of the gap between them (so a natural pause stays on both
    sides).  Of all boundaries, the two closest to the middle of the audio are candidates and
    ``rng`` picks one; the filler is drawn uniformly from the speaker's clips.

    Arguments:
        pause: ``"short"`` inserts just the filler; ``"long"`` puts a pause of ``pause_s``
            seconds of digital silence before *and* after it (one draw, used on both sides).
        pause_seconds: ``[min, max]`` of the uniform draw of ``pause_s`` (long only).
        exclude_same_utterance: never insert a filler cut from this very utterance.
        level_db: gain of the inserted clip in dB (0: the speaker's own level); the attack's
            strength knob together with the pause (:meth:`at_strength`).

    Skips (:class:`SkipUtterance`): no word alignment, fewer than two speech words, no usable
    filler of the speaker.  A missing filler source (``context.fillers`` None while the words
    are there) is a wiring error of the caller: :class:`ConditionError`.
    """

    type_name = "filler"
    family = "distortion"
    default_perception = "altering"
    requires = frozenset({"alignment", "fillers"})

    def __init__(
        self,
        condition_id: str,
        *,
        pause: str = "short",
        pause_seconds: Sequence[float] = (0.5, 1.0),
        exclude_same_utterance: bool = True,
        level_db: float = 0.0,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        if pause not in PAUSES:
            raise self._error("pause", f"must be one of {PAUSES}, got {pause!r}")
        self.pause = pause
        try:
            low, high = (float(v) for v in pause_seconds)
        except (TypeError, ValueError):
            raise self._error("pause_seconds", f"expected [min, max] seconds, got {pause_seconds!r}") from None
        self._check_range("pause_seconds", low, 0.0, 10.0)
        self._check_range("pause_seconds", high, 0.0, 10.0)
        if low > high:
            raise self._error("pause_seconds", f"min {low} > max {high}")
        self.pause_seconds = [low, high]
        if not isinstance(exclude_same_utterance, (bool, np.bool_)):
            raise self._error("exclude_same_utterance", f"expected true/false, got {exclude_same_utterance!r}")
        self.exclude_same_utterance = bool(exclude_same_utterance)
        if isinstance(level_db, bool) or not isinstance(level_db, (int, float)):
            raise self._error("level_db", f"must be a number, got {level_db!r}")
        self.level_db = float(self._check_range("level_db", float(level_db), -80.0, 20.0))

    def args(self) -> dict[str, Any]:
        return {
            "pause": self.pause,
            "pause_seconds": list(self.pause_seconds),
            "exclude_same_utterance": self.exclude_same_utterance,
            "level_db": self.level_db,
        }

    strength_knob = "level_db"

    def at_strength(self, strength: float) -> "Filler":
        """The filler ``20·log10(strength)`` dB quieter and its pauses ``strength`` times as long;
        the same boundary, clip and (scaled) pause are drawn as at full strength."""
        strength = float(strength)
        level = self.level_db + 20.0 * math.log10(strength) if strength > 0 else self.level_db
        return self._scaled_copy(strength, level_db=max(level, -80.0),
                                 pause_seconds=[v * strength for v in self.pause_seconds])

    def boundaries(self, words, sr: int, n: int) -> list[int]:
        """Candidate insertion samples: the middle of the gap between each two consecutive
        speech words (their shared edge when they touch)."""
        spans = [to_samples(w, sr, n) for w in words if is_speech(w)]
        spans = [s for s in spans if s[1] > s[0]]
        return [(spans[i][1] + spans[i + 1][0]) // 2 for i in range(len(spans) - 1)]

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        if context.words is None:
            raise SkipUtterance(f"no word alignment for {context.utt_id}")
        if context.fillers is None:
            raise ConditionError(f"condition {self.id}: {context.utt_id}: no filler source given (context.fillers)")
        n = x.size
        cuts = self.boundaries(context.words, sr, n)
        if not cuts:
            raise SkipUtterance("fewer than two words: no word boundary to insert a filler at")
        clips = context.fillers.fillers(context.speaker)
        if self.exclude_same_utterance:
            clips = [c for c in clips if source_utt_id(c[0]) != context.utt_id]
        clips = [c for c in clips if np.asarray(c[1]).size > 0]
        if not clips:
            raise SkipUtterance(f"no filler from speaker {context.speaker}")
        middle = n / 2.0
        # Stable sort: equal distances keep time order, so ties resolve the same way every run.
        closest = sorted(range(len(cuts)), key=lambda i: abs(cuts[i] - middle))[:2]
        at = cuts[closest[int(rng.integers(len(closest)))]]
        source, clip = clips[int(rng.integers(len(clips)))]
        clip = np.asarray(clip, dtype=np.float32)
        if self.level_db != 0.0:
            clip = (clip * np.float32(10.0 ** (self.level_db / 20.0))).astype(np.float32)
        pause_s = float(rng.uniform(*self.pause_seconds)) if self.pause == "long" else 0.0
        gap = np.zeros(int(round(pause_s * sr)), dtype=np.float32)
        y = np.concatenate([x[:at], gap, clip, gap, x[at:]])
        return Result(
            audio=y,
            params={
                "filler_source": source,
                "filler_duration_s": clip.size / sr,
                "insert_at_s": at / sr,
                "pause_s": gap.size / sr,
                "duration_in_s": n / sr,
                "duration_out_s": y.size / sr,
            },
        )
