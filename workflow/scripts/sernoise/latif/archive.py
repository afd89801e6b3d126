"""Segment archives of the Latif stage: the 128-bin log spectrograms of one set (clean, speed, noisy) of
one audio shard, one item per utterance or copy, in the project's feature-archive format
(:func:`sernoise.features.write_feature_archive`: float16 frames of every item in one chunked, compressed
HDF5 dataset, with offsets).  Segments of ``latif.context`` frames are cut when a training reads them
(:func:`sernoise.latif.spectrogram.segment`), so a new context or hop needs no new archive.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

N_BINS = 128
# The STFT that made the spectrograms (sernoise.latif.spectrogram), recorded in the archive.
ATTRS = {"n_bins": N_BINS, "win_length": 400, "hop_length": 160, "sample_rate": 16_000}


def write_spectrograms(path, items: Iterable[tuple[str, np.ndarray]]) -> int:
    """Write (item_id, (frames, 128) log spectrogram) pairs atomically; returns the count."""
    from sernoise.features import write_feature_archive

    return write_feature_archive(path, items, dims=N_BINS, attrs=ATTRS)


def read_spectrograms(paths, item_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """item_id -> float32 (frames, 128) spectrogram, for ``item_ids`` (default: all) from the archives
    ``paths`` (each item is read from the archive that holds it; an item in none is an error naming it)."""
    from sernoise.features import FeatureArchive, FeatureError

    archives = [FeatureArchive(p) for p in paths]
    wanted = None if item_ids is None else list(dict.fromkeys(item_ids))
    out: dict[str, np.ndarray] = {}
    for archive in archives:
        here = archive.utt_ids if wanted is None else [i for i in wanted if i in archive]
        out.update({k: v.astype(np.float32) for k, v in archive.read_many(here).items()})
    if wanted is not None:
        missing = [i for i in wanted if i not in out]
        if missing:
            raise FeatureError(f"no spectrogram for {len(missing)} item(s) in {[str(p) for p in paths][:2]}...: "
                               f"e.g. {missing[:3]}")
        return {i: out[i] for i in wanted}
    return out
