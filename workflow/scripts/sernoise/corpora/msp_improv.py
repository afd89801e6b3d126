"""MSP-IMPROV adapter (Busso et al. 2017): ``Evaluation.txt`` + ``session<k>/`` audio -> manifest rows.

MSP-IMPROV is licensed (user supplied, never downloaded).  Assumed layout, as the corpus is
distributed (the MSP lab's release; stated here because no copy was available to check against)::

    <root>/Evaluation.txt                  (some copies: Evalution.txt)
    <root>/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav
    ...                                    (an extra top folder such as Audio/ is fine: audio is found recursively)

File names ``MSP-IMPROV-S<ss><T>-<G><kk>-<type>-<dyad><nn>.wav``: sentence ``ss`` of the scenario
built to elicit emotion ``T`` (A/H/S/N), the speaker's gender ``G`` and session ``kk`` (each of the
six sessions has one female and one male actor), the recording ``type`` (``T`` target sentence
improvised, ``R`` target sentence read, ``S`` other improvised turns, ``P`` natural interaction), and
the dyad/turn code (e.g. ``FM01``).  The paper (Latif et al.) uses every type; option ``types``
restricts them.

``Evaluation.txt`` holds one block per utterance: a consensus line naming the *video* of the
utterance (``UTD-IMPROV-`` instead of ``MSP-IMPROV-``, ``.avi``)::

    UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:2.600000; V:1.800000; D:3.000000 ; N:4.200000;

(consensus category, then the mean arousal, valence, dominance and naturalness ratings on 1-5
scales, ``NaN`` when absent), followed by one line per rater (``<rater>; Angry; ...``), which the
consensus already summarises and which are skipped.  Consensus codes: A, H, S, N and, for
utterances without a majority among the four, O (other) and X (no agreement).  They become the
project's vocabulary ``angry, happy, sad, neutral, other, no_agreement`` (as the MSP-Podcast
adapter); the 4-class task maps only the first four, so O and X are left out of it, not relabelled.

Speaker = gender + session (``F01``: the female actor of session 1, the corpus's own code); group =
``Session<k>``, so that group folds and the leave-one-speaker-out folds pair the two actors of a
session, as the paper's protocol does.  Ratings fill ``activation, valence, dominance`` (scale 1-5,
:data:`sernoise.tasks.RATING_SCALES`) and their bins (``bin_edges`` option, IEMOCAP's by default).

A consensus line whose audio is missing keeps its row with the conventional path (the prepare stage
rejects it with a reason, as for IEMOCAP); audio files without a consensus line have no label and are
not listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .manifest import DEFAULT_BIN_EDGES, ManifestError, bin_value, to_manifest_frame

LABEL_FILES = ("Evaluation.txt", "Evalution.txt")
EMOTIONS = {"A": "angry", "H": "happy", "S": "sad", "N": "neutral", "O": "other", "X": "no_agreement"}
TYPES = ("P", "R", "S", "T")
SESSIONS = (1, 2, 3, 4, 5, 6)

# The utterance key without the MSP-/UTD- prefix and extension: S01A-F01-P-FM01.
_KEY = r"S(?P<sentence>\d{2})(?P<target>[AHSN])-(?P<gender>[FM])(?P<session>\d{2})-(?P<type>[A-Z])-(?P<turn>[A-Z]{1,2}\d{2,3})"
AUDIO_NAME = re.compile(rf"^MSP-IMPROV-{_KEY}\.wav$")
_NUMBER = r"(?:\d+(?:\.\d*)?|NaN)"
_CONSENSUS = re.compile(
    rf"^(?:UTD|MSP)-IMPROV-(?P<key>{_KEY})\.(?:avi|wav)\s*;\s*(?P<emotion>[A-Z])\s*;"
    rf"\s*A:(?P<A>{_NUMBER})\s*;\s*V:(?P<V>{_NUMBER})\s*;\s*D:(?P<D>{_NUMBER})\s*;(?:\s*N:(?P<N>{_NUMBER})\s*;)?\s*$"
)
_SESSION_DIR = re.compile(r"^session(\d+)$", re.IGNORECASE)


def parse_audio_name(name: str) -> dict:
    """Fields of one MSP-IMPROV audio file name; ManifestError naming the file when it does not parse."""
    match = AUDIO_NAME.match(name)
    if not match:
        raise ManifestError(f"{name}: not an MSP-IMPROV audio name (expected MSP-IMPROV-S<ss><T>-<G><kk>-<type>-<turn>.wav, "
                            f"e.g. MSP-IMPROV-S01A-F01-P-FM01.wav)")
    return _fields(match)


def _fields(match: re.Match) -> dict:
    if match["type"] not in TYPES:
        raise ManifestError(f"{match.string}: recording type {match['type']!r} is not one of {list(TYPES)}")
    return {"sentence": match["sentence"], "target": match["target"], "gender": match["gender"],
            "session": int(match["session"]), "type": match["type"], "turn": match["turn"]}


def _rating(text: str | None) -> float:
    return float("nan") if text in (None, "NaN") else float(text)


def parse_evaluation(path) -> list[dict]:
    """Consensus entries ``{key, emotion, activation, valence, dominance, ...fields}`` of an Evaluation file.

    Blank lines and rater lines (those not starting with ``UTD-IMPROV-``/``MSP-IMPROV-``) are skipped; a line
    that starts like a consensus line but does not parse is an error naming ``path:line``, as is an unknown
    consensus code or a key listed twice.
    """
    path = Path(path)
    entries, seen = [], {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line.startswith(("UTD-IMPROV-", "MSP-IMPROV-")):
                continue
            where = f"{path}:{lineno}"
            match = _CONSENSUS.match(line)
            if not match:
                raise ManifestError(f"{where}: malformed consensus line {line!r} (expected "
                                    f"'UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.0; V:3.0; D:3.0 ; N:3.0;')")
            if match["emotion"] not in EMOTIONS:
                raise ManifestError(f"{where}: unknown consensus code {match['emotion']!r} (known: {', '.join(EMOTIONS)})")
            key = match["key"]
            if key in seen:
                raise ManifestError(f"{where}: {key} already has a consensus line (line {seen[key]})")
            seen[key] = lineno
            try:
                fields = _fields(match)
            except ManifestError as error:
                raise ManifestError(f"{where}: {error}") from None
            entries.append({
                "key": key,
                "emotion": EMOTIONS[match["emotion"]],
                "activation": _rating(match["A"]),
                "valence": _rating(match["V"]),
                "dominance": _rating(match["D"]),
                **fields,
            })
    return entries


def _options(options: dict | None) -> tuple[tuple[float, float], tuple[int, ...] | None, tuple[str, ...]]:
    options = dict(options or {})
    unknown = set(options) - {"bin_edges", "sessions", "types"}
    if unknown:
        raise ValueError(f"unknown MSP-IMPROV option(s) {sorted(unknown)}; known: bin_edges, sessions, types")
    edges = tuple(float(e) for e in (options.get("bin_edges") or DEFAULT_BIN_EDGES))
    if len(edges) != 2 or not edges[0] < edges[1]:
        raise ValueError(f"MSP-IMPROV bin_edges must be two increasing numbers, got {options.get('bin_edges')!r}")
    sessions = options.get("sessions")
    if sessions:
        sessions = tuple(sorted({int(s) for s in sessions}))
        bad = [s for s in sessions if s not in SESSIONS]
        if bad:
            raise ValueError(f"MSP-IMPROV sessions must be among 1..6, got {bad}")
    types = tuple(options.get("types") or TYPES)
    bad = [t for t in types if t not in TYPES]
    if bad:
        raise ValueError(f"MSP-IMPROV types must be among {list(TYPES)}, got {bad}")
    return edges, sessions or None, types


def _label_file(root: Path) -> Path:
    for name in LABEL_FILES:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"MSP-IMPROV labels not found: neither of {list(LABEL_FILES)} in {root}. MSP-IMPROV is licensed and is not "
        f"downloaded by the workflow: point corpora.<name>.root at your copy (the folder holding Evaluation.txt "
        f"and session1..session6)")


def _audio_index(root: Path) -> dict[str, Path]:
    """Utterance key -> wav path, for every MSP-IMPROV wav below ``root``; a key found twice is an error."""
    index: dict[str, Path] = {}
    for wav in sorted(root.rglob("MSP-IMPROV-*.wav")):
        if wav.name.startswith("._"):
            continue
        fields = parse_audio_name(wav.name)
        folder = next((int(m[1]) for part in wav.relative_to(root).parts[:-1] if (m := _SESSION_DIR.match(part))), None)
        if folder is not None and folder != fields["session"]:
            raise ManifestError(f"{wav}: speaker code names session {fields['session']} but the file lies in "
                                f"session{folder}")
        key = wav.stem[len("MSP-IMPROV-"):]
        if key in index:
            raise ManifestError(f"MSP-IMPROV audio {key} found twice: {index[key]} and {wav}")
        index[key] = wav
    return index


def scan(root, options: dict | None = None) -> pd.DataFrame:
    """The manifest frame of the MSP-IMPROV copy at ``root``.

    ``options``: ``bin_edges`` (default :data:`~sernoise.corpora.manifest.DEFAULT_BIN_EDGES`), ``sessions``
    (subset of 1..6), ``types`` (subset of P, R, S, T; default all, as the paper).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MSP-IMPROV root {root} does not exist (MSP-IMPROV is licensed and user supplied: "
                                f"set corpora.<name>.root)")
    edges, sessions, types = _options(options)
    labels = _label_file(root)
    audio = _audio_index(root)
    rows = []
    for entry in parse_evaluation(labels):
        if entry["type"] not in types or (sessions and entry["session"] not in sessions):
            continue
        key, session = entry["key"], entry["session"]
        default = root / f"session{session}" / f"S{entry['sentence']}{entry['target']}" / entry["type"] / f"MSP-IMPROV-{key}.wav"
        rows.append({
            "utt_id": f"MSP-IMPROV-{key}",
            "path": str(audio.get(key, default)),
            "speaker": f"{entry['gender']}{session:02d}",
            "gender": entry["gender"],
            "group": f"Session{session}",
            "emotion": entry["emotion"],
            "activation": entry["activation"],
            "valence": entry["valence"],
            "dominance": entry["dominance"],
            "activation_bin": bin_value(entry["activation"], edges),
            "valence_bin": bin_value(entry["valence"], edges),
            "transcript": "",
            "alignment": "",
        })
    if not rows:
        raise ManifestError(f"{labels}: no consensus line for the selected sessions {sessions or 'all'} and types "
                            f"{list(types)}")
    return to_manifest_frame(rows)
