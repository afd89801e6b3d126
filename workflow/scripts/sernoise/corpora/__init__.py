"""Corpus adapters: each turns one corpus layout into rows of the one manifest schema.

Every adapter module exposes ``scan(root, options) -> DataFrame`` with the columns of
:data:`sernoise.corpora.manifest.MANIFEST_COLUMNS`; ``duration`` and ``sample_rate`` stay
empty there and are filled by the preparation stage, which is the only place audio is read.
"""

from __future__ import annotations

import importlib

ADAPTERS = {
    "ravdess": "sernoise.corpora.ravdess",
    "iemocap": "sernoise.corpora.iemocap",
    "generic": "sernoise.corpora.generic",
    "msp_podcast": "sernoise.corpora.msp_podcast",
    "urdu": "sernoise.corpora.urdu",
    "msp_improv": "sernoise.corpora.msp_improv",
}


def get_adapter(name: str):
    """The adapter module for ``name``; KeyError listing the known adapters otherwise."""
    if name not in ADAPTERS:
        raise KeyError(f"unknown corpus adapter {name!r}; known: {sorted(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[name])


def scan_corpus(adapter: str, root, options: dict | None = None):
    return get_adapter(adapter).scan(root, options or {})
