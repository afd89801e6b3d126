"""URDU adapter (Latif et al. 2018, "Cross lingual speech emotion recognition: Urdu vs. Western languages").

Layout: ``<root>/{Angry,Happy,Neutral,Sad}/S<G><id>_F<n>_<E><k>.wav`` -- 400 utterances from Urdu
talk shows, 100 per emotion.  ``G`` is the gender (M/F), ``<id>`` the speaker number, ``F<n>`` the
speaker's n-th file and ``<E><k>`` the k-th file of emotion ``E`` (A/H/N/S).  Emotions are written in
the project's categorical vocabulary (``angry``, ``happy``, ``neutral``, ``sad``, as the RAVDESS adapter
and the ``emotion4`` task), so one task mapping serves every corpus.

Speakers.  The corpus README says the speaker number "remains the same for a particular speaker in all
the emotions", and the numbering looks global (males 1..27, females 1..11; a few numbers such as SM3,
SM5, SM6 recur in several emotion folders).  Whether a recurring number really is one person cannot be
checked from the audio names, so the adapter offers two readings (option ``speaker_scope``):

* ``corpus`` (default): the corpus's own id (``SM3``) everywhere.  This is the README's reading and
  the conservative one for statistics that cluster by speaker (one person is never counted twice).
* ``emotion``: the id qualified by the emotion folder (``Angry/SM3``), the reading of the shared data
  README ("speaker IDs are only unique within an emotion folder's naming").

Either way emotion is strongly tied to speaker (Angry has 4 speakers, Happy 15), so speaker-
independent folds *within* URDU would test speaker identity as much as emotion.  URDU is therefore a
cross-corpus **test** set (train on RAVDESS/IEMOCAP, select parameters and test on URDU with
:func:`sernoise.folds.cross_corpus_split`), and ``group`` is the single value :data:`GROUP`, so that
group-based folds refuse it instead of producing a meaningless split.

URDU has no dimensional ratings and no transcripts: those columns stay empty.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .manifest import ManifestError, to_manifest_frame

# Folder name -> (emotion letter in file names, manifest emotion).
FOLDERS = {"Angry": ("A", "angry"), "Happy": ("H", "happy"), "Neutral": ("N", "neutral"), "Sad": ("S", "sad")}
GROUP = "urdu"
SPEAKER_SCOPES = ("corpus", "emotion")

FILENAME = re.compile(r"^S(?P<gender>[MF])(?P<speaker>\d+)_F(?P<file>\d+)_(?P<emotion>[A-Z])(?P<index>\d+)\.wav$",
                      re.IGNORECASE)


def parse_name(name: str) -> dict:
    """Fields of one URDU file name; ManifestError naming the file when it does not parse."""
    match = FILENAME.match(name)
    if not match:
        raise ManifestError(f"{name}: not an URDU file name (expected S<G><id>_F<n>_<E><k>.wav, e.g. SM1_F01_A012.wav)")
    gender = match["gender"].upper()
    return {
        "gender": gender,
        "speaker": f"S{gender}{int(match['speaker'])}",
        "file": int(match["file"]),
        "emotion_code": match["emotion"].upper(),
        "index": int(match["index"]),
    }


def _options(options: dict | None) -> str:
    options = dict(options or {})
    unknown = set(options) - {"speaker_scope"}
    if unknown:
        raise ValueError(f"unknown URDU option(s) {sorted(unknown)}; known: speaker_scope")
    scope = options.get("speaker_scope") or "corpus"
    if scope not in SPEAKER_SCOPES:
        raise ValueError(f"URDU option speaker_scope must be one of {list(SPEAKER_SCOPES)}, got {scope!r}")
    return scope


def scan(root, options: dict | None = None) -> pd.DataFrame:
    """Manifest rows for every ``*.wav`` in the four emotion folders under ``root``.

    A file whose name does not parse, or whose emotion letter contradicts its folder, is an error
    naming the file (a misfiled utterance would otherwise carry a wrong label).  A missing emotion
    folder is an error too: a partial copy would silently become a 3-class test set.
    """
    scope = _options(options)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"URDU root {root} does not exist (set corpora.<name>.root to the folder holding "
                                f"{', '.join(FOLDERS)})")
    missing = [folder for folder in FOLDERS if not (root / folder).is_dir()]
    if missing:
        raise FileNotFoundError(f"URDU root {root}: emotion folder(s) {missing} missing (expected {list(FOLDERS)})")
    rows = []
    for folder, (letter, emotion) in FOLDERS.items():
        for wav in sorted((root / folder).glob("*.wav")):
            if wav.name.startswith("._"):  # macOS resource forks in copies made on a Mac
                continue
            fields = parse_name(wav.name)
            if fields["emotion_code"] != letter:
                raise ManifestError(f"{wav}: emotion letter {fields['emotion_code']!r} in the name contradicts the "
                                    f"folder {folder} (expected {letter!r})")
            speaker = fields["speaker"] if scope == "corpus" else f"{folder}/{fields['speaker']}"
            rows.append({
                "utt_id": wav.stem,
                "path": str(wav),
                "speaker": speaker,
                "gender": fields["gender"],
                "group": GROUP,
                "emotion": emotion,
                "activation_bin": "",
                "valence_bin": "",
                "transcript": "",
                "alignment": "",
            })
    if not rows:
        raise FileNotFoundError(f"no URDU files (<emotion>/S<G><id>_F<n>_<E><k>.wav) under {root}")
    return to_manifest_frame(rows)
