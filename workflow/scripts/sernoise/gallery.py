"""The augmentation gallery (SPEC §5): one utterance, clean and under every condition, as log-mel
spectrograms on one colour scale, with the SNR each condition reached."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from sernoise.conditions.base import SAMPLE_RATE


def gallery_utterance(utt_ids: Iterable[str], params: dict[str, pd.DataFrame | None]) -> str:
    """The first of ``utt_ids`` (manifest order) that every non-skipped condition stored.

    ``params`` maps condition id -> its params frame, or None for a skipped condition.  Falls
    back to the first utterance when no utterance is kept by all of them.
    """
    utt_ids = list(utt_ids)
    if not utt_ids:
        raise ValueError("gallery: the corpus has no utterances")
    kept = None
    for frame in params.values():
        if frame is None:
            continue
        ok = set(frame.loc[frame["status"] == "ok", "utt_id"])
        kept = ok if kept is None else kept & ok
    for utt_id in utt_ids:
        if kept is None or utt_id in kept:
            return utt_id
    return utt_ids[0]


def snr_text(value, additive: bool = True) -> str:
    """'SNR 10.0 dB' (additive: speech vs added noise) or 'diff. SNR 28.7 dB' (difference signal)."""
    label = "SNR" if additive else "diff. SNR"
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        return f"{label} n/a (length changed)" if not additive else f"{label} n/a"
    if math.isinf(value):
        return f"{label} ∞" if value > 0 else f"{label} −∞"
    return f"{label} {value + 0.0:.1f} dB".replace("-0.0 dB", "0.0 dB")


def plot_gallery(clean: np.ndarray, panels: list[dict], out_png, *, title: str, ncols: int = 4) -> None:
    """Log-mel spectrograms of one utterance, clean and under each condition, on one colour scale.

    ``panels``: dicts with ``condition``, ``subtitle`` and either ``audio`` (float32 16 kHz) or
    ``reason`` (shown as text on an empty, titled panel).  Levels are dB relative to the clean
    utterance's peak, so louder or quieter outputs look louder or quieter.
    """
    import textwrap

    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_mels, hop, n_fft = 64, 160, 512

    def mel_db(x):
        m = librosa.feature.melspectrogram(y=np.asarray(x, dtype=np.float32), sr=SAMPLE_RATE, n_fft=n_fft,
                                           hop_length=hop, n_mels=n_mels, fmax=SAMPLE_RATE / 2)
        return m

    clean_mel = mel_db(clean)
    ref = float(clean_mel.max()) or 1.0
    all_panels = [{"condition": "clean", "subtitle": "reference", "audio": clean}] + list(panels)
    max_dur = max((p["audio"].size for p in all_panels if p.get("audio") is not None), default=1) / SAMPLE_RATE
    nrows = math.ceil(len(all_panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.5 * nrows + 0.8), squeeze=False)
    mel_hz = librosa.mel_frequencies(n_mels=n_mels, fmax=SAMPLE_RATE / 2)
    ticks_hz = [250, 1000, 2000, 4000, 8000]
    tick_pos = [float(np.interp(f, mel_hz, np.arange(n_mels))) for f in ticks_hz]
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(all_panels):
            ax.axis("off")
            continue
        panel = all_panels[k]
        skipped = panel.get("audio") is None
        ax.set_title(f"{panel['condition']}{' (skipped)' if skipped else ''}\n{panel['subtitle']}", fontsize=9)
        if skipped:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_facecolor("#eeeeee")
            reason = "\n".join(textwrap.wrap(str(panel.get("reason") or "skipped"), 38)[:6])
            ax.text(0.5, 0.5, reason, ha="center", va="center", fontsize=8, transform=ax.transAxes,
                    color="#444444")
            continue
        audio = panel["audio"]
        db = 10.0 * np.log10(np.maximum(mel_db(audio), 1e-12) / ref)
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                          extent=(0, audio.size / SAMPLE_RATE, -0.5, n_mels - 0.5), interpolation="nearest")
        ax.set_xlim(0, max_dur)
        ax.set_facecolor("#dddddd")  # beyond the end of a shortened output
        ax.set_yticks(tick_pos)
        ax.set_yticklabels(["250", "1k", "2k", "4k", "8k"] if k % ncols == 0 else [], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        if k % ncols == 0:
            ax.set_ylabel("Hz (mel)", fontsize=8)
        if k // ncols == nrows - 1 or k + ncols >= len(all_panels):
            ax.set_xlabel("time (s)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.95, 0.97))
    if image is not None:
        cax = fig.add_axes((0.955, 0.1, 0.01, 0.8))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label("dB re clean peak", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp or software version in the PNG, so the same inputs give the same bytes.
    fig.savefig(out_png, dpi=90, metadata={"Software": None})
    plt.close(fig)
