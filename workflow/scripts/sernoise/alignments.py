"""Word and phone alignments in the Sphinx segmentation format IEMOCAP ships (SPEC §4.1).

IEMOCAP's ``sentences/ForcedAlignment/<dialog>/<turn>.wdseg`` (words) and ``.phseg`` (phones)
are Sphinx-3 outputs::

     SFrm  EFrm    SegAScr Word
        0    32    -537513 <s>
       33    59    -402316 EXCUSE
       60    78    -292866 ME(2)
       79    98    -117063 </s>
     Total score:    -1349758

Frames are 10 ms and both frame numbers are inclusive, so a segment covers
``[SFrm * 0.01, (EFrm + 1) * 0.01)`` seconds.  In ``.phseg`` files the phone can be followed
by context tokens (``HH SIL AH b``: base phone, left and right neighbour, position in the
word); only the base phone is kept.  The distortion conditions that need alignments
(drop-word, drop-letters) read them through :func:`read_words` / :func:`read_phones`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

FRAME_S = 0.01

# Sphinx marks sentence boundaries and silence with these; fillers (breath, laughter, noise)
# are wrapped in '+' signs and are recognised by pattern in :func:`is_speech`.
NON_SPEECH = frozenset({"<s>", "</s>", "<sil>", "sil", "sp"})

_VARIANT = re.compile(r"\(\d+\)$")
_FILLER = re.compile(r"^\++[^+]*\++$")
_KINDS = ("Word", "Phone")


@dataclass(frozen=True)
class Segment:
    """One aligned segment.

    ``start``/``end`` are seconds (end exclusive, i.e. ``(EFrm + 1) * frame``); ``label`` is the
    text as written in the file (base phone only for phones); ``token`` is the label
    lower-cased with a pronunciation-variant suffix such as ``(2)`` removed, so that
    ``THE(2)`` and ``THE`` compare equal when matching word lists.
    """

    start: float
    end: float
    label: str
    token: str


def normalise_token(label: str) -> str:
    """``WORD(2)`` -> ``word``: the form used to compare aligned words with word lists."""
    return _VARIANT.sub("", label.strip()).lower()


def is_speech(seg: Segment) -> bool:
    """False for sentence markers, silences and ``++FILLER++`` noises; True for words/phones."""
    token = seg.token
    return not (token in NON_SPEECH or _FILLER.match(token))


def read_sphinx_seg(path, frame_s: float = FRAME_S) -> list[Segment]:
    """Parse a ``.wdseg`` or ``.phseg`` file.

    The header line and the closing ``Total score:`` line are skipped wherever they appear;
    every other non-blank line must be ``SFrm EFrm SegAScr LABEL [context...]``.  A line
    that is not raises ``ValueError`` naming ``path:line`` so a corrupt file in a large
    corpus can be found.  A file with no segments is an error too: an empty alignment
    would otherwise make word dropping silently do nothing.
    """
    path = Path(path)
    segments: list[Segment] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            fields = line.split()
            if fields[0] == "SFrm" or line.lower().startswith("total score"):
                continue
            if len(fields) < 4:
                raise ValueError(f"{path}:{lineno}: expected 'SFrm EFrm SegAScr LABEL', got {line!r}")
            try:
                sfrm, efrm = int(fields[0]), int(fields[1])
                int(fields[2])  # the acoustic score; only validated, nothing downstream uses it
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: frame numbers and score must be integers, got {line!r}"
                ) from None
            if sfrm < 0 or efrm < sfrm:
                raise ValueError(f"{path}:{lineno}: bad frame range {sfrm}..{efrm}")
            label = fields[3]
            # round() removes binary noise (33 * 0.01 = 0.33000000000000002) so that times
            # compare equal to the decimal values people write in tests and configs.
            segments.append(
                Segment(
                    start=round(sfrm * frame_s, 9),
                    end=round((efrm + 1) * frame_s, 9),
                    label=label,
                    token=normalise_token(label),
                )
            )
    if not segments:
        raise ValueError(f"{path}: no segments found (empty or truncated alignment file)")
    return segments


def write_sphinx_seg(
    path,
    segments: Iterable[Segment],
    kind: str = "Word",
    frame_s: float = FRAME_S,
    contexts: Sequence[str] | None = None,
    scores: Sequence[int] | None = None,
) -> Path:
    """Write segments in the Sphinx layout read by :func:`read_sphinx_seg` (round-trips).

    Times are converted to frames by rounding to the nearest frame, so segments that are
    already on the frame grid come back unchanged.  ``contexts`` (phone files) adds text after
    each label, e.g. ``"SIL AH b"``, as Sphinx does; ``scores`` defaults to 0 per segment
    because no reader in this project uses the acoustic score.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    segments = list(segments)
    if contexts is not None and len(contexts) != len(segments):
        raise ValueError(f"{len(contexts)} contexts for {len(segments)} segments")
    if scores is not None and len(scores) != len(segments):
        raise ValueError(f"{len(scores)} scores for {len(segments)} segments")
    lines = [f"{'SFrm':>5} {'EFrm':>5} {'SegAScr':>10} {kind}"]
    total = 0
    for i, seg in enumerate(segments):
        sfrm = int(round(seg.start / frame_s))
        efrm = int(round(seg.end / frame_s)) - 1
        if efrm < sfrm:
            raise ValueError(f"segment {seg.label!r} ({seg.start}-{seg.end} s) is shorter than one frame")
        if not seg.label or any(c.isspace() for c in seg.label):
            raise ValueError(f"segment label {seg.label!r} must be one non-empty token")
        score = int(scores[i]) if scores is not None else 0
        total += score
        text = seg.label if contexts is None or not contexts[i] else f"{seg.label} {contexts[i]}"
        lines.append(f"{sfrm:5d} {efrm:5d} {score:10d} {text}")
    lines.append(f" Total score: {total:11d}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def alignment_paths(alignment) -> tuple[Path, Path]:
    """The manifest's ``alignment`` cell (the ``.wdseg`` path) -> ``(.wdseg, .phseg)`` paths.

    A ``.phseg`` path or a path without suffix is accepted too; an empty cell means the
    corpus has no alignment for this utterance, which callers must handle (ValueError).
    """
    if alignment is None or str(alignment).strip() in ("", "nan"):
        raise ValueError("utterance has no alignment (empty 'alignment' column)")
    base = Path(str(alignment))
    if base.suffix in (".wdseg", ".phseg"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".wdseg"), base.with_name(base.name + ".phseg")


def read_words(alignment, frame_s: float = FRAME_S) -> list[Segment]:
    """Word segments (including silences/fillers; filter with :func:`is_speech`)."""
    return read_sphinx_seg(alignment_paths(alignment)[0], frame_s)


def read_phones(alignment, frame_s: float = FRAME_S) -> list[Segment]:
    """Phone segments (base phones, including SIL; filter with :func:`is_speech`)."""
    return read_sphinx_seg(alignment_paths(alignment)[1], frame_s)


_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s*\[[^\]]*\]:\s?(.*)$")


def read_transcript(transcript_path, utt_id: str) -> str:
    """The text of ``utt_id`` in an IEMOCAP dialog transcription.

    Lines look like ``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.``; lines of other
    shapes (IEMOCAP has a few, e.g. unlabelled overlaps) are ignored.  KeyError naming the
    file and the utterance when the turn is absent.
    """
    path = Path(transcript_path)
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            match = _TRANSCRIPT_LINE.match(raw.strip())
            if match and match.group(1) == utt_id:
                return match.group(2).strip()
    raise KeyError(f"{path}: no transcript line for utterance {utt_id!r}")
