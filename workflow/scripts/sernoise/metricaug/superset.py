"""Noisy copies of utterances for MetricAug: its superset, the Fixed-SNR and CopyPaste training
sets, and the noisy and unseen-noise test sets (Wu & Lee §2.3.1, §3).

One noisy item is one utterance with one noise category added over its whole length at one
SNR: the workflow's environmental-noise condition (:class:`~sernoise.conditions.env.EnvironmentalNoise`,
position ``cont``: a clip of the category drawn from the given pool, cropped or looped, scaled
against the speech level under ``snr.reference``).  Per item it records the drawn parameters,
the SNR asked and measured (on the audio as stored, 16-bit), and STOI, wide-band PESQ and
fwSNRseg against the clean utterance (:mod:`sernoise.quality`'s functions), the metrics that
lead MetricAug's levels.

Seeds: item (utterance u, category c, SNR s) of set ``tag`` draws from
``rng_for(seed, "metricaug", tag, u, c, s)``; an unseen-noise item draws its SNR first from
``rng_for(seed, "metricaug", tag, u, c, "snr")``.  Any item can be rebuilt alone, and the same
config gives the same bytes.

Noise pools: the superset and the training sets are mixed with the TRAINING pool only; the test
sets with the test pool (the caller passes the pool; :func:`sernoise.metricaug.names.config_problems`
keeps the held-out unseen category out of training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sernoise.conditions.base import SAMPLE_RATE, Context, SkipUtterance
from sernoise.conditions.env import EnvironmentalNoise
from sernoise.conditions.snr import additive_snr
from sernoise.features import log_mel_fbank
from sernoise.quality import as_stored, measure_fwsnrseg, measure_pesq, measure_stoi
from sernoise.seeds import derive_seed

METRICS = ("stoi", "pesq", "fwsnrseg")
_MEASURE = {"stoi": measure_stoi, "pesq": measure_pesq, "fwsnrseg": measure_fwsnrseg}


class SupersetError(ValueError):
    """A noisy set is badly specified (the message names the config key)."""


def snr_grid(low: float, high: float, step: float) -> list[float]:
    """``low, low + step, ..., high`` (config ``metricaug.superset.snr_db``: [low, high, step])."""
    if not step > 0 or high < low:
        raise SupersetError(f"config key metricaug.superset.snr_db: need low <= high and step > 0, got "
                            f"[{low}, {high}, {step}]")
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    return [float(round(low + i * step, 6)) for i in range(count)]


def item_id(utt_id: str, category: str, snr: float | None) -> str:
    """The id of a noisy item: ``<utt>~<category>~snr<s>`` (``~rand`` for a drawn SNR)."""
    return f"{utt_id}~{category}~" + ("rand" if snr is None else f"snr{snr:g}")


@dataclass(frozen=True)
class NoisyItem:
    item_id: str
    features: np.ndarray | None  # (frames, 40) log Mel filterbanks of the stored audio; None when skipped
    row: dict


def noisy_items(utt_id: str, x: np.ndarray, *, categories, snrs, noise, seed: int, tag: str,
                reference: str = "active", random_snr: tuple[float, float] | None = None,
                metrics=METRICS, keep_audio: bool = False):
    """Every (category, SNR) copy of utterance ``x``; one :class:`NoisyItem` each (``snrs`` None and
    ``random_snr`` (low, high): one copy per category at an SNR drawn uniformly from the range).

    ``keep_audio``: yield (item, stored audio) pairs instead of items (benchmarks, tests).
    """
    if (snrs is None) == (random_snr is None):
        raise SupersetError(f"set {tag!r}: give either fixed SNRs or a random SNR range")
    unknown = [m for m in metrics if m not in _MEASURE]
    if unknown:
        raise SupersetError(f"set {tag!r}: unknown metrics {unknown}; known {list(METRICS)}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = []
    for category in categories:
        levels = [None] if snrs is None else list(snrs)
        for snr in levels:
            parts = ("metricaug", tag, utt_id, category, "snr" if snr is None else f"{snr:g}")
            target = snr
            if snr is None:
                target = float(np.random.default_rng(derive_seed(seed, *parts)).uniform(*random_snr))
                parts = parts[:-1] + ("rand",)
            item_seed = derive_seed(seed, *parts)
            row = {"item_id": item_id(utt_id, category, snr), "utt_id": utt_id, "category": category,
                   "seed": item_seed, "status": "ok", "snr_target": target, "snr_measured": math.nan,
                   **dict.fromkeys(metrics, math.nan), "note": ""}
            condition = EnvironmentalNoise(f"{tag}-{category}", category=category, position="cont",
                                           snr_db=target).use_snr_reference(reference)
            try:
                result = condition(x, SAMPLE_RATE, np.random.default_rng(item_seed), Context(utt_id, noise=noise))
            except SkipUtterance as skip:
                row["status"] = f"skipped: {skip}"
                out.append((NoisyItem(row["item_id"], None, row), None) if keep_audio else NoisyItem(row["item_id"], None, row))
                continue
            y = as_stored(result.audio)
            row["snr_measured"] = additive_snr(x, y, result.span, reference, p_speech=result.speech_power, utt_id=utt_id)
            notes = []
            for metric in metrics:
                row[metric], note = _MEASURE[metric](x, y)
                notes.append(note)
            row["note"] = "; ".join(n for n in notes if n)
            row.update({f"p_{k}": v for k, v in result.params.items()})
            item = NoisyItem(row["item_id"], log_mel_fbank(y), row)
            out.append((item, y) if keep_audio else item)
    return out
