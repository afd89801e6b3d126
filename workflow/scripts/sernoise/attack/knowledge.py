"""The attacker's optional knowledge (paper §7.5): how much each noise category degrades the model.

With knowledge on, Algorithm 1 tries the categories in the order of measured degradation
instead of a random order.  The degradation is measured WITHOUT test labels, on the
validation role of the attacked fold, with the attacked model (by default the clean-trained
one, ``attack.regime``):

* every validation utterance labelled for the task (at most ``attack.knowledge_utterances``,
  a seeded subset) is predicted clean, and under one instance of each category, drawn as the
  attack draws them (:func:`sernoise.attack.perturb.draw_instance`) from the category's
  conditions, applied *as configured* (their own SNR, room, rate: the conditions Table 3
  measures), with noise from the TRAIN pool, so that no test noise recording is used;
* the UAR drop of a category is ``UAR(clean) − UAR(noisy)`` over the utterances the category
  could be applied to (both UARs on the same utterances);
* the order is by drop, largest first; ties (and categories without any usable utterance,
  last) are ordered by category name, so the order is deterministic.

Seeds: ``derive_seed(seed, "attack-knowledge", utt_id, category)`` per instance.

Output (``knowledge.csv``): ``category, perception, conditions, n_utterances, n_skipped,
uar_clean, uar_noisy, uar_drop, rank`` (rank 1 = most degrading).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sernoise.conditions.base import Condition
from sernoise.io import read_csv_checked
from sernoise.predictions import CLASS_INDICES, uar
from sernoise.seeds import rng_for

from .perturb import draw_instance
from .runner import utterance_context

KNOWLEDGE_COLUMNS = ["category", "perception", "conditions", "n_utterances", "n_skipped", "uar_clean",
                     "uar_noisy", "uar_drop", "rank"]


def measure_degradation(
    predictor: Callable[[list[np.ndarray]], Sequence[int]],
    utterances: Iterable[tuple[str, np.ndarray, str]],
    labels: Mapping[str, int],
    categories: Mapping[str, list[Condition]],
    *,
    noise=None,
    seed: int,
    perception: Mapping[str, str] | None = None,
    context_for: Callable | None = None,
) -> pd.DataFrame:
    """Per category the validation UAR drop (see module docstring); ``utterances``: (utt_id, audio, speaker);
    ``context_for``: the conditions' context (:func:`sernoise.attack.runner.utterance_context`)."""

    true: list[int] = []
    clean: list[int] = []
    noisy: dict[str, list[tuple[int, int]]] = {c: [] for c in categories}  # (row in true, prediction)
    skipped = {c: 0 for c in categories}
    for utt_id, x, speaker in utterances:
        context = utterance_context(utt_id, speaker, noise, context_for)
        batch, names = [x], []
        for category, conditions in categories.items():
            rng = rng_for(seed, "attack-knowledge", utt_id, category)
            instance, _ = draw_instance(category, conditions, x, context, rng, 0.0, keep_configured=True)
            if instance is None:
                skipped[category] += 1
                continue
            batch.append(instance.configured)
            names.append(category)
        predicted = list(predictor(batch))
        row = len(true)
        true.append(int(labels[utt_id]))
        clean.append(int(predicted[0]))
        for category, label in zip(names, predicted[1:]):
            noisy[category].append((row, int(label)))
    rows = []
    for category, conditions in categories.items():
        index = [r for r, _ in noisy[category]]
        t = [true[r] for r in index]
        u_clean = uar(t, [clean[r] for r in index], CLASS_INDICES)
        u_noisy = uar(t, [p for _, p in noisy[category]], CLASS_INDICES)
        rows.append({
            "category": category,
            "perception": (perception or {}).get(category, ""),
            "conditions": "|".join(c.id for c in conditions),
            "n_utterances": len(index),
            "n_skipped": skipped[category],
            "uar_clean": u_clean,
            "uar_noisy": u_noisy,
            "uar_drop": u_clean - u_noisy,
        })
    frame = pd.DataFrame(rows, columns=KNOWLEDGE_COLUMNS[:-1])
    order = degradation_order(frame)
    frame["rank"] = [order.index(c) + 1 for c in frame["category"]]
    return frame.sort_values("rank", kind="stable").reset_index(drop=True)[KNOWLEDGE_COLUMNS]


def degradation_order(frame: pd.DataFrame, categories: Iterable[str] | None = None) -> list[str]:
    """Categories by UAR drop, largest first; ties and undefined drops (last) by name.

    ``categories`` restricts (and must be covered by) the frame's categories; default: all.
    """
    drops = {str(c): float(d) for c, d in zip(frame["category"], frame["uar_drop"])}
    wanted = list(drops) if categories is None else list(categories)
    missing = [c for c in wanted if c not in drops]
    if missing:
        raise ValueError(f"no measured degradation for categor(y/ies) {missing}")
    return sorted(wanted, key=lambda c: (math.isnan(drops[c]), -drops[c] if not math.isnan(drops[c]) else 0.0, c))


def write_knowledge(frame: pd.DataFrame, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.6f")


def read_knowledge(path) -> pd.DataFrame:
    frame = read_csv_checked(path, KNOWLEDGE_COLUMNS, dtype={"category": str, "perception": str, "conditions": str},
                             keep_default_na=False)
    frame["uar_drop"] = pd.to_numeric(frame["uar_drop"], errors="coerce")
    return frame
