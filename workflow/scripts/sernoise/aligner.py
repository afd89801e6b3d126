"""Word and phone forced alignment with PocketSphinx (US-English model shipped in its wheel).

Corpora with transcripts but no alignments (RAVDESS) get the ``.wdseg``/``.phseg`` files that
IEMOCAP ships (Sphinx-3 segmentation, :mod:`sernoise.alignments`), so that the conditions that
need alignments (drop-word, drop-letters, fillers) run on them too.  PocketSphinx 5 aligns in two
passes over the same audio: a word-level pass constrained to the transcript (optional silences
between words), then a sub-word pass that splits each word into its dictionary phones.  The
acoustic model, the CMU pronouncing dictionary and the decoder are all inside the ``pocketsphinx``
wheel: nothing is downloaded.

Frames are 10 ms, as in IEMOCAP's files.  The first and last silences are written ``<s>`` and
``</s>``, inner ones ``<sil>``; words are upper case with the dictionary's variant suffix
(``THE(2)``), phones are the base ARPAbet phone followed by the ``left right position`` context
that Sphinx writes, so the files read exactly like IEMOCAP's.

An utterance that cannot be aligned raises :class:`AlignmentFailure` with the reason (a word the
dictionary lacks, silent or non-finite audio, audio too short for its phones, a decoder that
finds no path); the workflow lists it (``results/{corpus}/alignments/failures.csv``) and fails
the run past ``align.max_failure_fraction``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sernoise.alignments import Segment, normalise_token, write_sphinx_seg

SAMPLE_RATE = 16_000
FRAME_S = 0.01
# Below this peak an utterance holds no speech to align (prepare.silence_peak's default).
SILENCE_PEAK = 1.0e-4
SILENCES = frozenset({"<sil>", "sil", "<s>", "</s>"})
# Pruning beams tried in turn until one finds an alignment: PocketSphinx's defaults
# (beam = pbeam = 1e-48, wbeam = 7e-29), then wider ones (wbeam = beam * 1e20).
BEAMS = (None, 1e-80, 1e-120)

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


class AlignmentFailure(ValueError):
    """One utterance could not be aligned; the message is the reason listed in failures.csv."""


@dataclass(frozen=True)
class UtteranceAlignment:
    """Word and phone segments of one utterance (seconds, end exclusive) and the phones' contexts."""

    words: list[Segment]
    phones: list[Segment]
    phone_contexts: list[str]

    def speech_words(self) -> list[Segment]:
        return [w for w in self.words if w.token not in SILENCES]

    def write(self, base) -> Path:
        """Write ``base.wdseg`` and ``base.phseg``; returns the ``.wdseg`` path (the manifest cell)."""
        base = Path(base)
        wdseg = base.with_name(base.name + ".wdseg")
        write_sphinx_seg(wdseg, self.words, kind="Word")
        write_sphinx_seg(base.with_name(base.name + ".phseg"), self.phones, kind="Phone",
                         contexts=self.phone_contexts)
        return wdseg


def transcript_words(text: str) -> list[str]:
    """``"Kids are talking by the door."`` -> ``['kids', 'are', 'talking', 'by', 'the', 'door']``.

    Lower case, punctuation dropped, apostrophes inside words kept (``don't``), as the CMU
    dictionary spells them.  Bracketed annotations (``[LAUGHTER]``) are not words and are removed.
    """
    text = re.sub(r"\[[^\]]*\]", " ", str(text)).lower().replace("’", "'")
    return _WORD.findall(text)


def _segment(start_frame: int, n_frames: int, label: str) -> Segment:
    start = round(start_frame * FRAME_S, 9)
    end = round((start_frame + n_frames) * FRAME_S, 9)
    return Segment(start=start, end=end, label=label, token=normalise_token(label))


class Aligner:
    """A PocketSphinx decoder in alignment mode; one per job (building it costs about 0.25 s).

    ``pronunciations`` adds or overrides dictionary entries (``{"word": "W ER D"}``), for corpora
    whose transcripts hold names the CMU dictionary lacks.
    """

    def __init__(self, *, sample_rate: int = SAMPLE_RATE, pronunciations: dict | None = None):
        if int(sample_rate) != SAMPLE_RATE:
            raise ValueError(f"the aligner's acoustic model is for {SAMPLE_RATE} Hz audio, got sample_rate {sample_rate}")
        self.sample_rate = int(sample_rate)
        self._pronunciations = {str(w).lower(): str(p).upper() for w, p in (pronunciations or {}).items()}
        self._decoders: dict = {}
        self._decoder(BEAMS[0])  # the first decoder checks the model and the pronunciations now

    def _decoder(self, beam):
        """The decoder of one pruning beam (built on first use: about 0.2 s each)."""
        if beam not in self._decoders:
            import pocketsphinx

            widths = {} if beam is None else {"beam": beam, "pbeam": beam, "wbeam": beam * 1e20}
            config = pocketsphinx.Config(
                hmm=pocketsphinx.get_model_path("en-us/en-us"),
                dict=pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"),
                lm=None,
                samprate=float(self.sample_rate),
                loglevel="FATAL",
                # No lattice best-path rescoring of the word pass: with it the phone pass failed on
                # 6 of 8 eSpeak fixture turns ("Failed to stop utterance processing") and word ends
                # ran into the pauses; without it all aligned (benchmarks/align.py).
                bestpath=False,
                **widths,
            )
            decoder = pocketsphinx.Decoder(config)
            for word, phones in self._pronunciations.items():
                try:
                    decoder.add_word(word, phones, update=True)
                except RuntimeError as error:
                    raise ValueError(f"config key align.pronunciations.{word}: {phones!r} rejected ({error})") from None
            self._decoders[beam] = decoder
        return self._decoders[beam]

    def pronunciation(self, word: str) -> str | None:
        return self._decoder(BEAMS[0]).lookup_word(word.lower())

    def align(self, audio: np.ndarray, text: str, *, sample_rate: int = SAMPLE_RATE) -> UtteranceAlignment:
        """Align float audio in [-1, 1] (or int16) to ``text``; AlignmentFailure with the reason."""
        if int(sample_rate) != self.sample_rate:
            raise AlignmentFailure(f"audio at {sample_rate} Hz, the aligner needs {self.sample_rate} Hz")
        words = transcript_words(text)
        if not words:
            raise AlignmentFailure(f"empty transcript {text!r}")
        missing = [w for w in words if self.pronunciation(w) is None]
        if missing:
            raise AlignmentFailure(f"word(s) {sorted(set(missing))} not in the pronouncing dictionary")
        pcm = _to_pcm16(audio)
        n_phones = sum(len(self.pronunciation(w).split()) for w in words)
        n_frames = len(pcm) * 100 // self.sample_rate
        if n_frames < 3 * n_phones:  # three HMM states of at least one frame per phone
            raise AlignmentFailure(f"audio of {n_frames * 10} ms is too short for {n_phones} phones")
        data = pcm.tobytes()
        # Wider pruning beams only when the default finds no path (shouted or whispered speech:
        # 6 of 600 RAVDESS utterances of actors 1-10 at the default beam; see README).
        for beam in BEAMS:
            try:
                alignment = self._run(self._decoder(beam), data, words)
                break
            except AlignmentFailure as failure:
                last = failure
        else:
            raise last
        return _segments(alignment, words)

    @staticmethod
    def _run(decoder, data: bytes, words: list[str]):
        try:
            decoder.set_align_text(" ".join(words))
            decoder.start_utt()
            decoder.process_raw(data, full_utt=True)
            decoder.end_utt()
            if decoder.hyp() is None:
                raise AlignmentFailure("the decoder found no word alignment for the transcript")
            decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(data, full_utt=True)
            decoder.end_utt()
            alignment = decoder.get_alignment()
        except RuntimeError as error:
            raise AlignmentFailure(f"the decoder failed ({error})") from None
        if alignment is None:
            raise AlignmentFailure("the decoder found no phone alignment for the transcript")
        return alignment


def _to_pcm16(audio) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1:
        raise AlignmentFailure(f"expected mono audio (1-d), got shape {x.shape}")
    if x.size == 0:
        raise AlignmentFailure("empty audio")
    if x.dtype == np.int16:
        peak = np.abs(x.astype(np.float64)).max() / 32768.0
        pcm = x
    else:
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise AlignmentFailure("audio holds non-finite samples")
        peak = float(np.abs(x).max())
        pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    if peak < SILENCE_PEAK:
        raise AlignmentFailure(f"silent audio (peak {peak:.2g})")
    return pcm


def _segments(alignment, words: list[str]) -> UtteranceAlignment:
    # Copy every entry into plain tuples at once: the binding's entries point into iterator state
    # that the next iteration reuses (keeping an entry to iterate its phones later crashes).
    entries = [(e.name, int(e.start), int(e.duration)) for e in alignment.words()]
    phone_entries = [(p.name, int(p.start), int(p.duration)) for p in alignment.phones()]
    aligned = [normalise_token(name) for name, _, _ in entries if name not in SILENCES]
    if aligned != words:
        raise AlignmentFailure(f"aligned words {aligned} differ from the transcript {words}")
    word_segments: list[Segment] = []
    owner = []  # per word entry: (start frame, end frame excl., word index or -1 for silence)
    for k, (name, start, duration) in enumerate(entries):
        if duration <= 0:
            raise AlignmentFailure(f"word {name!r} aligned to zero frames")
        silence = name in SILENCES
        if silence:
            label = "<s>" if k == 0 else "</s>" if k == len(entries) - 1 else "<sil>"
        else:
            label = name.upper()
        word_segments.append(_segment(start, duration, label))
        owner.append((start, start + duration, -1 if silence else k))
    phone_rows: list[tuple[int, int, str, int]] = []  # start frame, frames, phone, word index (-1: silence)
    for name, start, duration in phone_entries:
        if duration <= 0:
            continue
        word = next((w for a, b, w in owner if a <= start < b), None)
        if word is None:
            raise AlignmentFailure(f"phone {name} at frame {start} lies outside every aligned word")
        phone_rows.append((start, duration, name.upper(), word))
    phones, contexts = [], []
    for i, (start, n, name, word) in enumerate(phone_rows):
        phones.append(_segment(start, n, name))
        if word < 0:
            contexts.append("")
            continue
        left = phone_rows[i - 1][2] if i > 0 else "SIL"
        right = phone_rows[i + 1][2] if i + 1 < len(phone_rows) else "SIL"
        first = i == 0 or phone_rows[i - 1][3] != word
        last = i + 1 == len(phone_rows) or phone_rows[i + 1][3] != word
        contexts.append(f"{left} {right} {'s' if first and last else 'b' if first else 'e' if last else 'i'}")
    return UtteranceAlignment(word_segments, phones, contexts)


def read_audio_file(path) -> tuple[np.ndarray, int]:
    """Mono float audio of a sound file; ValueError naming the file when it cannot be read."""
    import soundfile as sf

    path = Path(path)
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or OSError
        raise ValueError(f"{path}: unreadable audio ({error})") from None
    return x.mean(axis=1), int(sr)


def align_file(aligner: Aligner, path, text: str) -> UtteranceAlignment:
    """Align one sound file (16 kHz); AlignmentFailure/ValueError naming the file on bad audio."""
    x, sr = read_audio_file(path)
    if sr != aligner.sample_rate:
        raise ValueError(f"{path}: sample rate {sr} Hz, the aligner needs {aligner.sample_rate} Hz")
    try:
        return aligner.align(x, text, sample_rate=sr)
    except AlignmentFailure as failure:
        raise AlignmentFailure(f"{path}: {failure}") from None


def transcript_text(cell, utt_id: str) -> str:
    """The text of an utterance from the manifest's ``transcript`` cell: the text itself, or the
    path of a transcript file (IEMOCAP's dialog transcription, ``TURN [a-b]: text`` lines, or a
    file holding only this utterance's text).  Empty string when there is none."""
    from sernoise.alignments import _TRANSCRIPT_LINE, read_transcript

    value = "" if cell is None else str(cell).strip()
    if value in ("", "nan"):
        return ""
    path = Path(value)
    if len(value) < 4096 and path.suffix and path.is_file():
        try:
            return read_transcript(path, utt_id)
        except KeyError:
            content = path.read_text(encoding="utf-8", errors="replace")
            # A dialog transcription without this turn: no transcript (not the other turns' text).
            if any(_TRANSCRIPT_LINE.match(line.strip()) for line in content.splitlines()):
                return ""
            return content.strip()
    return value


# -- the workflow: one job per clean audio shard, then one merge per corpus ------------------

SHARD_COLUMNS = ["utt_id", "status", "alignment", "reason"]
FAILURE_COLUMNS = ["utt_id", "path", "reason"]
# aligned: written by the aligner; corpus: the corpus ships one (IEMOCAP); no_transcript: nothing
# to align (the conditions that need alignments skip it, as before); failed: listed in failures.csv.
STATUSES = ("aligned", "corpus", "no_transcript", "failed")


class AlignmentFractionError(ValueError):
    """More utterances failed to align than ``align.max_failure_fraction`` allows."""


def _cell(value) -> str:
    """A manifest cell as text, '' for empty / NaN / None."""
    text = "" if value is None else str(value).strip()
    return "" if text in ("nan", "None") else text


def align_shard(scan, shard_path, out_dir, out_csv, *, pronunciations=None, log=None) -> dict:
    """Align every utterance of one prepared audio shard that has a transcript and no alignment.

    ``scan``: the corpus's scan frame (utt_id, path, transcript, alignment).  Alignments go to
    ``out_dir/<utt_id>.wdseg|.phseg``; ``out_csv`` gets one row per utterance of the shard
    (:data:`SHARD_COLUMNS`, sorted by utt_id).  The decoder is built only when something needs
    aligning, so corpora that ship alignments (IEMOCAP) never load it.
    """
    import time

    import pandas as pd

    from sernoise.audio_store import AudioShard

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = scan.set_index("utt_id")
    records, aligner, seconds = [], None, 0.0
    with AudioShard(shard_path) as shard:
        rate = shard.sample_rate
        for utt_id in sorted(shard.utt_ids):
            if utt_id not in rows.index:
                raise ValueError(f"{shard_path}: utterance {utt_id!r} is not in the scan (stale shard?)")
            row = rows.loc[utt_id]
            existing = _cell(row.get("alignment"))
            if existing:
                records.append((utt_id, "corpus", existing, ""))
                continue
            text = transcript_text(row.get("transcript"), utt_id)
            if not text:
                records.append((utt_id, "no_transcript", "", ""))
                continue
            if aligner is None:
                aligner = Aligner(sample_rate=rate, pronunciations=pronunciations)
            started = time.perf_counter()
            try:
                result = aligner.align(shard.read(utt_id), text, sample_rate=rate)
            except AlignmentFailure as failure:
                records.append((utt_id, "failed", "", str(failure)))
                if log:
                    log(f"{utt_id} ({row.get('path')}): alignment failed: {failure}")
            else:
                wdseg = result.write(out_dir / utt_id)
                records.append((utt_id, "aligned", wdseg.as_posix(), ""))
            seconds += time.perf_counter() - started
    frame = pd.DataFrame(records, columns=SHARD_COLUMNS)
    frame.to_csv(out_csv, index=False)
    counts = {status: int((frame["status"] == status).sum()) for status in STATUSES}
    n_tried = counts["aligned"] + counts["failed"]
    counts["seconds_per_utterance"] = round(seconds / n_tried, 4) if n_tried else 0.0
    return counts


def merge_alignments(shard_csvs, scan, alignments_out, failures_out, *, max_failure_fraction: float) -> dict:
    """Merge the shards' tables into ``alignments.csv`` (utt_id, status, alignment) and
    ``failures.csv`` (utt_id, path, reason; header only when none failed).

    failures.csv is written before the check, so it is there to read; AlignmentFractionError when
    failed / (aligned + failed) exceeds ``max_failure_fraction``.  A failed utterance stays in the
    corpus without an alignment (the conditions that need one skip it with a reason per utterance).
    """
    import pandas as pd

    parts = []
    for path in shard_csvs:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        lacking = [c for c in SHARD_COLUMNS if c not in frame.columns]
        if lacking:
            raise ValueError(f"{path}: alignment table lacks column(s) {lacking}")
        parts.append(frame[SHARD_COLUMNS])
    table = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SHARD_COLUMNS))
    table = table.sort_values("utt_id", kind="stable").reset_index(drop=True)
    if table["utt_id"].duplicated().any():
        raise ValueError(f"utterance(s) in two alignment tables: {table['utt_id'][table['utt_id'].duplicated()].tolist()[:5]}")
    paths = dict(zip(scan["utt_id"].astype(str), scan["path"].astype(str)))
    failed = table[table["status"] == "failed"]
    failures = pd.DataFrame({"utt_id": failed["utt_id"], "path": [paths.get(u, "") for u in failed["utt_id"]],
                             "reason": failed["reason"]}, columns=FAILURE_COLUMNS)
    Path(failures_out).parent.mkdir(parents=True, exist_ok=True)
    failures.to_csv(failures_out, index=False)
    table[["utt_id", "status", "alignment"]].to_csv(alignments_out, index=False)
    counts = {status: int((table["status"] == status).sum()) for status in STATUSES}
    tried = counts["aligned"] + counts["failed"]
    fraction = counts["failed"] / tried if tried else 0.0
    if fraction > max_failure_fraction:
        first = "; ".join(f"{u}: {r}" for u, r in zip(failures["utt_id"].head(3), failures["reason"].head(3)))
        raise AlignmentFractionError(
            f"{counts['failed']} of {tried} utterances failed to align ({fraction:.1%}), above "
            f"align.max_failure_fraction {max_failure_fraction:g}; see {failures_out}; first: {first}")
    return counts


def attach_alignments(manifest, alignments_csv):
    """The manifest with the ``alignment`` column filled from ``alignments.csv`` where it was empty."""
    import pandas as pd

    table = pd.read_csv(alignments_csv, dtype=str, keep_default_na=False)
    lacking = [c for c in ("utt_id", "alignment") if c not in table.columns]
    if lacking:
        raise ValueError(f"{alignments_csv}: lacks column(s) {lacking}")
    found = dict(zip(table["utt_id"], table["alignment"]))
    manifest = manifest.copy()
    manifest["alignment"] = [
        _cell(current) or found.get(str(utt), "") for utt, current in zip(manifest["utt_id"], manifest["alignment"])
    ]
    return manifest
