"""Helpers shared by the benchmark scripts.

The scripts run as ``python benchmarks/X.py``, so this folder is first on ``sys.path`` and they
import this module as ``_common``.  It imports nothing heavy (numpy, torch): scripts that pin
BLAS/OpenMP threads do so before numpy loads, and may import this module before or after.
Importing it puts ``workflow/scripts`` on ``sys.path`` so that ``sernoise`` imports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "workflow" / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))

RAVDESS = Path("ravdess") / "Audio_Speech_Actors_01-24"  # below --data


def best_of(repeat: int, fn, *, warmup: bool = False) -> float:
    """The shortest wall time of ``repeat`` calls of ``fn`` (after one untimed call when ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        tick = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tick)
    return min(times)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--data`` (the shared data folder, default ``../shared/data``)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    return result


def corpus_parser(description: str, *, repeat: int) -> argparse.ArgumentParser:
    """``--data``, ``--limit`` (the first N RAVDESS files) and ``--repeat`` (timed passes)."""
    result = parser(description)
    result.add_argument("--limit", type=int, default=None, help="use only the first N files")
    result.add_argument("--repeat", type=int, default=repeat)
    return result


def ravdess_files(data: Path, limit: int | None = None) -> list[Path]:
    """The RAVDESS wav files under ``data`` (sorted; the first ``limit``); exits when there are none."""
    paths = sorted((data / RAVDESS).glob("Actor_*/*.wav"))[:limit]
    if not paths:
        raise SystemExit(f"no RAVDESS files under {data}")
    return paths


def training_parser(description: str, *, epochs: int) -> argparse.ArgumentParser:
    """``--data``, ``--fold``, ``--epochs`` and ``--threads`` (torch threads, one case each)."""
    result = parser(description)
    result.add_argument("--fold", type=int, default=1)
    result.add_argument("--epochs", type=int, default=epochs)
    result.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    return result


def fold_rows(data: Path, config: dict, fold: int):
    """The manifest rows of RAVDESS under ``data`` in the train and val roles of ``fold`` (config's folds)."""
    from sernoise.corpora.ravdess import scan
    from sernoise.folds import make_folds, split_of

    manifest = scan(data / RAVDESS)
    folds = make_folds(manifest["group"], config["folds"]["n_folds"])
    return split_of(manifest, folds, fold, "train"), split_of(manifest, folds, fold, "val")
