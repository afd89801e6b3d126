"""IEMOCAP adapter: ``IEMOCAP_full_release/`` -> manifest rows (SPEC §4.1).

IEMOCAP is licensed, so the workflow never downloads it: the user points the config at
their own copy.  Labels come from ``Session{n}/dialog/EmoEvaluation/<dialog>.txt``, where
each utterance block starts with::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(the bracket holds valence, activation, dominance, in that order) followed by the raters'
``C-…`` (categorical) and ``A-…`` (dimensional) lines, which the consensus label already
summarises and are therefore skipped.

Duration and sample rate are left empty: reading 10,000 wav headers belongs to the prepare
stage, which also rejects (with a reason) rows whose audio is missing; that is why such rows
are kept here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .manifest import DEFAULT_BIN_EDGES, bin_value, to_manifest_frame

EMOTION_CODES = ("neu", "fru", "ang", "sad", "hap", "exc", "sur", "fea", "dis", "oth", "xxx")

SESSIONS = (1, 2, 3, 4, 5)

_NUMBER = r"\d+(?:\.\d*)?"
_LABEL_LINE = re.compile(
    rf"^\[\s*(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})\s*\]\s+(?P<turn>\S+)\s+"
    rf"(?P<emotion>\S+)\s+\[(?P<vad>[^\]]*)\]\s*$"
)
# Rater lines: "C-E2:", "A-E3:", self-evaluations "C-F1:", "A-M1:".
_RATER_LINE = re.compile(r"^[A-Z]-[A-Z]+\d*:")
# Turn names: Ses01F_impro01_F000, Ses01F_script01_1_M012, Ses03M_impro05a_F003 ...
_TURN = re.compile(r"^(?P<prefix>Ses\d\d)[FM]_\S+_(?P<gender>[FM])[0-9A-Z]*$")


def _missing_root_message(root: Path, detail: str) -> str:
    return (
        f"IEMOCAP not found: {detail}. IEMOCAP is licensed and is not downloaded by the "
        f"workflow; request it from https://sail.usc.edu/iemocap/, unpack it and point the "
        f"IEMOCAP root in the config at the 'IEMOCAP_full_release' folder "
        f"(the one holding Session1..Session5), currently {root}"
    )


def _resolve_root(root) -> Path:
    """Accept the ``IEMOCAP_full_release`` folder or its parent."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(_missing_root_message(root, f"{root} does not exist"))
    if not any(root.glob("Session[1-5]")) and (root / "IEMOCAP_full_release").is_dir():
        root = root / "IEMOCAP_full_release"
    if not any(p.is_dir() for p in root.glob("Session[1-5]")):
        raise FileNotFoundError(_missing_root_message(root, f"no Session1..Session5 folders in {root}"))
    return root


def _options(options: dict | None) -> tuple[tuple[float, float], tuple[int, ...]]:
    options = dict(options or {})
    unknown = set(options) - {"bin_edges", "sessions"}
    if unknown:
        raise ValueError(f"unknown IEMOCAP option(s) {sorted(unknown)}; known: bin_edges, sessions")
    edges = options.get("bin_edges", DEFAULT_BIN_EDGES)
    if edges is None:
        edges = DEFAULT_BIN_EDGES
    edges = tuple(float(e) for e in edges)
    if len(edges) != 2 or not edges[0] < edges[1]:
        raise ValueError(f"IEMOCAP bin_edges must be two increasing numbers, got {options.get('bin_edges')!r}")
    sessions = options.get("sessions") or SESSIONS
    sessions = tuple(sorted({int(s) for s in sessions}))
    bad = [s for s in sessions if s not in SESSIONS]
    if bad:
        raise ValueError(f"IEMOCAP sessions must be among 1..5, got {bad}")
    return edges, sessions


def parse_emo_evaluation(path) -> list[dict]:
    """Parse one EmoEvaluation file into ``{turn, emotion, valence, activation, dominance, start, end}``.

    Blank lines, ``%`` header lines and rater lines are skipped; anything else must be a
    label line, otherwise ``ValueError`` names ``path:line`` (a silently skipped utterance
    would shift every downstream count).
    """
    path = Path(path)
    entries = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("%") or _RATER_LINE.match(line):
                continue
            where = f"{path}:{lineno}"
            match = _LABEL_LINE.match(line)
            if not match:
                raise ValueError(
                    f"{where}: malformed label line {line!r} "
                    f"(expected '[START - END]<TAB>TURN<TAB>EMOTION<TAB>[V, A, D]')"
                )
            turn, emotion = match["turn"], match["emotion"]
            if emotion not in EMOTION_CODES:
                raise ValueError(f"{where}: unknown emotion code {emotion!r} (known: {', '.join(EMOTION_CODES)})")
            turn_match = _TURN.match(turn)
            if not turn_match:
                raise ValueError(f"{where}: turn name {turn!r} does not look like Ses01F_impro01_F000")
            try:
                values = [float(v) for v in match["vad"].split(",")]
            except ValueError:
                values = []
            if len(values) != 3:
                raise ValueError(f"{where}: expected three numbers [V, A, D], got [{match['vad']}]")
            valence, activation, dominance = values
            entries.append(
                {
                    "turn": turn,
                    "emotion": emotion,
                    "valence": valence,
                    "activation": activation,
                    "dominance": dominance,
                    "start": float(match["start"]),
                    "end": float(match["end"]),
                    "gender": turn_match["gender"],
                    "speaker": turn_match["prefix"] + turn_match["gender"],
                }
            )
    return entries


def scan(root, options: dict | None = None) -> pd.DataFrame:
    """Walk ``IEMOCAP_full_release`` and return the manifest frame.

    ``options``: ``bin_edges`` (two floats, default :data:`DEFAULT_BIN_EDGES`) and
    ``sessions`` (subset of 1..5; a requested session that is absent is an error, since a
    partial copy would otherwise yield quietly wrong folds).
    """
    root = _resolve_root(root)
    edges, sessions = _options(options)
    explicit = bool(options and options.get("sessions"))
    rows = []
    for n in sessions:
        session_dir = root / f"Session{n}"
        if not session_dir.is_dir():
            if explicit:
                raise FileNotFoundError(_missing_root_message(root, f"requested {session_dir} is missing"))
            continue
        label_dir = session_dir / "dialog" / "EmoEvaluation"
        # Top-level *.txt only: the Categorical/Attribute/Self-evaluation subfolders hold the
        # per-rater files; '._*' are macOS resource forks found in some copies.
        for label_file in sorted(label_dir.glob("*.txt")):
            if label_file.name.startswith("._"):
                continue
            for entry in parse_emo_evaluation(label_file):
                turn = entry["turn"]
                dialog = turn.rsplit("_", 1)[0]
                wav = session_dir / "sentences" / "wav" / dialog / f"{turn}.wav"
                transcript = session_dir / "dialog" / "transcriptions" / f"{dialog}.txt"
                wdseg = session_dir / "sentences" / "ForcedAlignment" / dialog / f"{turn}.wdseg"
                rows.append(
                    {
                        "utt_id": turn,
                        "path": str(wav),
                        "speaker": entry["speaker"],
                        "gender": entry["gender"],
                        "group": f"Session{n}",
                        "emotion": entry["emotion"],
                        "activation": entry["activation"],
                        "valence": entry["valence"],
                        "dominance": entry["dominance"],
                        "activation_bin": bin_value(entry["activation"], edges),
                        "valence_bin": bin_value(entry["valence"], edges),
                        "transcript": str(transcript) if transcript.is_file() else "",
                        "alignment": str(wdseg) if wdseg.is_file() else "",
                    }
                )
    if not rows:
        raise FileNotFoundError(
            _missing_root_message(root, f"no EmoEvaluation label files under {root}/Session*/dialog/EmoEvaluation")
        )
    return to_manifest_frame(rows)
