"""MSP-Podcast adapter: ``Labels/labels_consensus.csv`` + ``Audios/`` -> manifest rows (SPEC §4.1).

MSP-Podcast is licensed (user supplied, never downloaded).  ``labels_consensus.csv`` has one row per
utterance: ``FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set``; the audio is
``Audios/<FileName>``.  Arousal, valence and dominance are the consensus ratings on the corpus's 1-7
scale (manifest ``activation, valence, dominance``; :data:`sernoise.tasks.RATING_SCALES` knows the
scale of the corpus name ``msp_podcast``).  ``group`` is the official partition (``Split_Set``:
Train, Development, Test1, ...), so that the partition travels with every utterance.

Speakers: ``SpkrID`` ``Unknown`` (many podcast segments) becomes a speaker of its own per file
(``unknown:<FileName>``): an unknown speaker cannot be checked for leakage, and pooling them all under
one name would fake a speaker present in every partition.  Bins (the paper's 3-bin tasks): ratings
binned with ``bin_edges`` (default (3.5, 4.5): the IEMOCAP edges' ±0.25 around the midpoint of a 1-5
scale, stretched to 1-7), configurable as ``corpora.<name>.options.bin_edges``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import read_csv_checked
from .manifest import ManifestError, bin_value, to_manifest_frame

LABELS = Path("Labels") / "labels_consensus.csv"
AUDIO = "Audios"
REQUIRED = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
EMOTIONS = {"N": "neutral", "H": "happy", "S": "sad", "A": "angry", "U": "surprise", "F": "fear", "D": "disgust",
            "C": "contempt", "O": "other", "X": "no_agreement"}
DEFAULT_BIN_EDGES = (3.5, 4.5)
SCALE = (1.0, 7.0)


def scan(root, options: dict | None = None) -> pd.DataFrame:
    options = options or {}
    root = Path(root)
    labels_path = root / LABELS
    if not labels_path.is_file():
        raise FileNotFoundError(
            f"MSP-Podcast labels not found at {labels_path}. MSP-Podcast is licensed and is not downloaded by "
            f"the workflow: point corpora.<name>.root at your copy (the folder holding Labels/ and {AUDIO}/)")
    frame = read_csv_checked(labels_path, REQUIRED, error=ManifestError, what="MSP-Podcast ", dtype=str,
                             keep_default_na=False)
    edges = tuple(options.get("bin_edges") or DEFAULT_BIN_EDGES)
    rows = []
    for line, record in enumerate(frame.to_dict("records"), start=2):
        name = record["FileName"].strip()
        if not name:
            raise ManifestError(f"{labels_path}: empty FileName on data row {line}")
        ratings = {}
        for column, dim in (("EmoAct", "activation"), ("EmoVal", "valence"), ("EmoDom", "dominance")):
            text = record[column].strip()
            try:
                value = float(text) if text else float("nan")
            except ValueError:
                raise ManifestError(f"{labels_path}: {column} {text!r} of {name} (row {line}) is not a number") from None
            if value == value and not SCALE[0] <= value <= SCALE[1]:
                raise ManifestError(f"{labels_path}: {column} {value} of {name} (row {line}) is outside {SCALE}")
            ratings[dim] = value
        speaker = record["SpkrID"].strip()
        gender = {"male": "M", "female": "F"}.get(record["Gender"].strip().lower(), "")
        rows.append({
            "utt_id": Path(name).stem,
            "path": str(root / AUDIO / name),
            "speaker": f"unknown:{Path(name).stem}" if speaker.lower() in ("", "unknown") else speaker,
            "gender": gender,
            "group": record["Split_Set"].strip(),
            "emotion": EMOTIONS.get(record["EmoClass"].strip(), record["EmoClass"].strip()),
            **ratings,
            "activation_bin": bin_value(ratings["activation"], edges),
            "valence_bin": bin_value(ratings["valence"], edges),
        })
    return to_manifest_frame(rows)
