"""CopyPaste (Pappagari et al., ICASSP 2021), the baseline of Wu & Lee §3: new training utterances
made by concatenating two existing ones.

Two schemes, half of the new items each (the first scheme takes the odd one):

``neutral``  a neutral utterance and an emotional (non-neutral) one, in a random order; the new
             item carries the EMOTIONAL one's label (the neutral part adds context, not emotion);
``emotional`` two different utterances of the same class; the new item carries that class.
             Every class with at least two utterances takes part, neutral included (Pappagari
             et al.'s same-emotion scheme), in proportion to its size.

Each part is at most ``max_part_seconds`` (4 s, Wu & Lee: "do not exceed 4 seconds to prevent
overfitting"): a longer part is replaced by a window of that length at a random offset.  The
number of new items is ``round(fraction * n)`` (fraction 0.8: "80 percent more samples").
Every draw comes from the caller's generator, so a seeded generator gives the same items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_FRACTION = 0.8
DEFAULT_MAX_PART_SECONDS = 4.0
SCHEMES = ("neutral", "emotional")


class CopyPasteError(ValueError):
    """The utterances cannot give the CopyPaste items asked for."""


@dataclass(frozen=True)
class PastedItem:
    """One new utterance: its parts (utterance ids, sample windows) and label."""

    item_id: str
    scheme: str
    parts: tuple[str, str]
    windows: tuple[tuple[int, int], tuple[int, int]]  # (start, stop) samples used of each part
    label: str


def part_window(n_samples: int, max_samples: int, rng: np.random.Generator) -> tuple[int, int]:
    """The samples of a part used: all of it, or a ``max_samples`` window at a random offset."""
    if n_samples <= max_samples:
        return 0, int(n_samples)
    start = int(rng.integers(0, n_samples - max_samples + 1))
    return start, start + int(max_samples)


def plan_copypaste(utt_ids, labels, n_samples, rng: np.random.Generator, *, neutral: str = "neutral",
                   fraction: float = DEFAULT_FRACTION, max_part_seconds: float = DEFAULT_MAX_PART_SECONDS,
                   sample_rate: int = 16000, prefix: str = "cp") -> list[PastedItem]:
    """The CopyPaste items for utterances ``utt_ids`` with class ``labels`` and lengths ``n_samples``."""
    utt_ids, labels = list(map(str, utt_ids)), list(map(str, labels))
    n_samples = [int(n) for n in n_samples]
    if not (len(utt_ids) == len(labels) == len(n_samples)):
        raise CopyPasteError("utterance ids, labels and lengths differ in number")
    if not fraction >= 0:
        raise CopyPasteError(f"copypaste fraction must be >= 0, got {fraction}")
    if not max_part_seconds > 0:
        raise CopyPasteError(f"copypaste max_part_seconds must be > 0, got {max_part_seconds}")
    max_samples = int(round(max_part_seconds * sample_rate))
    total = int(round(fraction * len(utt_ids)))
    n_neutral_scheme = (total + 1) // 2
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    neutrals = by_class.get(neutral, [])
    emotional = [i for i, label in enumerate(labels) if label != neutral]
    if n_neutral_scheme and (not neutrals or not emotional):
        raise CopyPasteError(f"copypaste: the neutral scheme needs {neutral!r} and emotional utterances; "
                             f"classes present: {sorted(by_class)}")
    pairable = [c for c in sorted(by_class) if len(by_class[c]) >= 2]
    if total - n_neutral_scheme and not pairable:
        raise CopyPasteError("copypaste: the emotional scheme needs a class with two utterances")
    sizes = np.array([len(by_class[c]) for c in pairable], dtype=np.float64)

    items = []
    for j in range(total):
        if j < n_neutral_scheme:
            scheme = "neutral"
            a, b = neutrals[int(rng.integers(len(neutrals)))], emotional[int(rng.integers(len(emotional)))]
            label = labels[b]
            if rng.random() < 0.5:
                a, b = b, a
        else:
            scheme = "emotional"
            label = pairable[int(rng.choice(len(pairable), p=sizes / sizes.sum()))]
            a, b = (by_class[label][i] for i in rng.choice(len(by_class[label]), size=2, replace=False))
        windows = (part_window(n_samples[a], max_samples, rng), part_window(n_samples[b], max_samples, rng))
        items.append(PastedItem(f"{prefix}{j:06d}", scheme, (utt_ids[a], utt_ids[b]), windows, label))
    return items


def paste(item: PastedItem, audio: dict) -> np.ndarray:
    """The new utterance's samples: its two windows, end to end (``audio``: utt_id -> samples)."""
    (a, b), ((s0, e0), (s1, e1)) = item.parts, item.windows
    return np.concatenate([np.asarray(audio[a])[s0:e0], np.asarray(audio[b])[s1:e1]]).astype(np.float32)
