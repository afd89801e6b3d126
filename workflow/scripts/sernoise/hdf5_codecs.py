"""How the workflow's HDF5 archives are compressed (audio shards, feature archives).

Config ``prepare.compression`` picks the codec of every audio shard (prepared corpus, augmented,
denoised) and every T-DNN feature archive; ``prepare.compression_level`` is gzip's level.

* ``bitshuffle-lz4`` (the default): the Bitshuffle filter (HDF5 filter 32008) transposes each
  block of samples bit-plane by bit-plane, so the nearly constant high bits of speech samples and
  of log-Mel values become long runs, and LZ4 then compresses them.  Both steps are exact and
  byte-for-byte deterministic, so the stored values are those gzip stored.  Measured on 600 RAVDESS
  utterances on one core (``benchmarks/storage.py``): int16 audio 30.4 MB (gzip 4 + shuffle:
  32.9 MB), written 13x and read 6x faster than with gzip; float16 features 16 % larger than
  gzip's, written 10x and read 4x faster.  A feature job spent about half its time in zlib before.
* ``gzip`` (with HDF5's byte shuffle): readable by any HDF5 build without plugins.
* ``lzf``, ``none``: kept for comparison and for users whose tools need them.

The Bitshuffle filter comes from ``hdf5plugin`` (a wheel with the compiled HDF5 filters, the
package HDF5-based Python projects use for this).  Importing this module registers its filters
with the HDF5 library that h5py loaded, which is what lets any process read a bitshuffle-LZ4
dataset: :mod:`sernoise.audio_store` and :mod:`sernoise.features` import it, so every job that
reads a shard or an archive can.  Outside the workflow, ``import hdf5plugin`` before reading
does the same (README, "Storage").
"""

from __future__ import annotations

import numpy as np

try:
    import hdf5plugin
except ImportError as error:  # pragma: no cover - the venv and the conda envs install it
    raise ImportError(
        "hdf5plugin is needed to read and write sernoise's audio shards and feature archives "
        "(bitshuffle-LZ4 compression): install it with `pip install hdf5plugin==7.1.0` or use the "
        "workflow's envs/*.yaml"
    ) from error

COMPRESSIONS = ("bitshuffle-lz4", "gzip", "lzf", "none")
DEFAULT_COMPRESSION = "bitshuffle-lz4"
DEFAULT_LEVEL = 4


def dataset_filters(compression: str | None, level: int = DEFAULT_LEVEL, *, where: str = "") -> dict:
    """``h5py.Group.create_dataset`` keyword arguments for one of :data:`COMPRESSIONS`.

    ``None`` is ``"none"`` (the functions that take ``compression`` have always accepted it);
    ``level`` is gzip's 1..9 and is checked only for gzip; ``where`` (a path or a config key)
    starts every error message.
    """
    prefix = f"{where}: " if where else ""
    if compression is None or compression == "none":
        return {}
    if compression == "bitshuffle-lz4":
        # nelems=0: Bitshuffle's own block size (8 KB of data), tuned for its SIMD transpose.
        return dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
    if compression == "gzip":
        if not isinstance(level, (int, np.integer)) or isinstance(level, bool) or not 1 <= int(level) <= 9:
            raise ValueError(f"{prefix}gzip compression_level must be an int in 1..9, got {level!r}")
        # Byte shuffle groups the high bytes of the samples: gzip then compresses speech
        # noticeably better at no measurable cost.
        return {"compression": "gzip", "compression_opts": int(level), "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise ValueError(f"{prefix}unknown compression {compression!r} (use one of {', '.join(COMPRESSIONS)})")


def describe(dataset) -> str:
    """The codec of an open h5py dataset, in :data:`COMPRESSIONS`' words (for logs and tests)."""
    filters = dataset.id.get_create_plist()
    ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
    if hdf5plugin.BSHUF_ID in ids:
        return "bitshuffle-lz4"
    return dataset.compression or "none"
