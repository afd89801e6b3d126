"""RAVDESS speech adapter (Livingstone & Russo 2018; Zenodo record 1188976).

File names encode the labels: ``03-01-EE-II-SS-RR-AA.wav`` with modality 03 (audio only),
vocal channel 01 (speech), emotion EE, intensity II, statement SS, repetition RR and actor AA
(odd actors male, even female).  RAVDESS has no dimensional ratings, so the activation and
valence bins come from a documented, configurable placement of each (emotion, intensity) on
the circumplex (``circumplex`` option; default :data:`DEFAULT_CIRCUMPLEX`), and the float
columns stay empty.  Groups are actor pairs (1, 2), (3, 4), ... mirroring IEMOCAP's
one-male-one-female sessions, so folds are speaker independent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .manifest import BINS, ManifestError, to_manifest_frame

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
INTENSITIES = {"01": "normal", "02": "strong"}
# The two statements (file name field SS; Livingstone & Russo 2018): the transcript column, from
# which rule align_shard (sernoise.aligner) makes the word and phone alignments.
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}

# Placement on Russell's circumplex, as (activation_bin, valence_bin) per intensity.
# Strong renditions of high-arousal emotions move up one activation bin; neutral only
# exists at normal intensity in RAVDESS.  Users override any entry in config.
DEFAULT_CIRCUMPLEX: dict[str, dict[str, list[str]]] = {
    "neutral": {"normal": ["mid", "mid"], "strong": ["mid", "mid"]},
    "calm": {"normal": ["low", "mid"], "strong": ["low", "high"]},
    "happy": {"normal": ["mid", "high"], "strong": ["high", "high"]},
    "sad": {"normal": ["low", "low"], "strong": ["mid", "low"]},
    "angry": {"normal": ["mid", "low"], "strong": ["high", "low"]},
    "fearful": {"normal": ["mid", "low"], "strong": ["high", "low"]},
    "disgust": {"normal": ["mid", "low"], "strong": ["mid", "low"]},
    "surprised": {"normal": ["high", "mid"], "strong": ["high", "high"]},
}

FILENAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.wav$", re.IGNORECASE)


def actor_group(actor: int) -> str:
    """Actor pair holding ``actor``: actors 1 and 2 are ``pair01``, 3 and 4 ``pair02``..."""
    return f"pair{(actor + 1) // 2:02d}"


def _check_circumplex(circumplex: dict) -> None:
    for emotion, per_intensity in circumplex.items():
        if emotion not in EMOTIONS.values():
            raise ManifestError(f"corpora.*.circumplex: unknown RAVDESS emotion {emotion!r}")
        for intensity, bins in per_intensity.items():
            if intensity not in INTENSITIES.values():
                raise ManifestError(f"corpora.*.circumplex.{emotion}: unknown intensity {intensity!r}")
            if len(bins) != 2 or any(b not in BINS for b in bins):
                raise ManifestError(
                    f"corpora.*.circumplex.{emotion}.{intensity}: expected [activation_bin, valence_bin] "
                    f"from {BINS}, got {bins!r}"
                )


def parse_name(name: str) -> dict:
    """Labels encoded in one RAVDESS file name; ValueError naming the file when it does not parse."""
    match = FILENAME.match(name)
    if not match:
        raise ValueError(f"{name}: not a RAVDESS file name (expected 03-01-EE-II-SS-RR-AA.wav)")
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    if emotion not in EMOTIONS or intensity not in INTENSITIES:
        raise ValueError(f"{name}: unknown emotion {emotion} or intensity {intensity} code")
    if statement not in STATEMENTS:
        raise ValueError(f"{name}: unknown statement code {statement} (RAVDESS has 01 and 02)")
    return {
        "modality": modality,
        "channel": channel,
        "emotion": EMOTIONS[emotion],
        "intensity": INTENSITIES[intensity],
        "statement": statement,
        "repetition": repetition,
        "actor": int(actor),
    }


def scan(root, options: dict | None = None) -> pd.DataFrame:
    """Manifest rows for every speech file under ``root`` (the folder holding ``Actor_XX``).

    Options: ``circumplex`` (partial override of :data:`DEFAULT_CIRCUMPLEX`), ``actors``
    (restrict to these actor numbers).  Song files (vocal channel 02) are skipped: the
    workflow is about speech.  Files whose names do not follow the scheme are an error, so a
    misplaced folder is noticed rather than silently ignored.
    """
    options = options or {}
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"RAVDESS root {root} does not exist (set corpora.ravdess.root or let the workflow download it)")
    circumplex = {k: dict(v) for k, v in DEFAULT_CIRCUMPLEX.items()}
    for emotion, per_intensity in (options.get("circumplex") or {}).items():
        circumplex.setdefault(emotion, {}).update(per_intensity)
    _check_circumplex(circumplex)
    actors = set(options.get("actors") or [])

    rows = []
    for wav in sorted(root.glob("Actor_*/*.wav")):
        labels = parse_name(wav.name)
        if labels["channel"] != "01":
            continue
        if actors and labels["actor"] not in actors:
            continue
        activation_bin, valence_bin = circumplex[labels["emotion"]][labels["intensity"]]
        actor = labels["actor"]
        rows.append(
            {
                "utt_id": wav.stem,
                "path": str(wav),
                "speaker": f"Actor_{actor:02d}",
                "gender": "M" if actor % 2 else "F",
                "group": actor_group(actor),
                "emotion": labels["emotion"],
                "activation_bin": activation_bin,
                "valence_bin": valence_bin,
                "transcript": STATEMENTS[labels["statement"]],
                "alignment": "",
            }
        )
    if not rows:
        raise FileNotFoundError(f"no RAVDESS speech files (Actor_*/03-01-*.wav) under {root}")
    return to_manifest_frame(rows)
