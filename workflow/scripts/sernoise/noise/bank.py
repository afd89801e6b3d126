"""The noise bank: which noise recordings exist, what category they serve, and which pool.

A bank is described by ``bank.csv`` (columns :data:`BANK_COLUMNS`, one row per file) plus one
audio shard holding every accepted file at 16 kHz mono, keyed by the ``file`` column.

Categories follow the paper: ``nat`` (natural soundscapes), ``hum`` (human non-speech),
``int`` (interior/domestic) and, for the insertion distortions, ``laugh`` and ``cry``; ``music``
serves MetricAug, which mixes MUSAN noise and music (the shared bank has none).

Files are split into a ``train`` pool (augmentation) and a ``test`` pool (test conditions) by
*source recording* (ESC-50 ``src_file``, a speaker, a DCASE file...), never by file: several clips
cut from one recording sound alike, so splitting clips would leak test noise into training.
:func:`check_split` enforces this and :func:`build_bank` refuses to write a bank that breaks it.
"""

from __future__ import annotations

import glob as _glob
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd

from sernoise.io import read_csv_checked
from sernoise.seeds import derive_seed

BANK_COLUMNS = ["file", "source", "class", "category", "split", "duration"]
CATEGORIES = ("nat", "hum", "int", "laugh", "cry", "music")
SPLITS = ("train", "test")
SAMPLE_RATE = 16000

_CLASS_FROM = ("stem_alpha", "parent", "stem")
_SOURCE_FROM = ("file", "stem_prefix", "parent")
_TEXT_COLUMNS = ["file", "source", "class", "category", "split"]


class NoiseBankError(ValueError):
    """The noise bank (its config, its files or its split) is inconsistent; the message names the culprit."""


# --------------------------------------------------------------------------- helpers


def _check_mapping(class_to_category: dict[str, str], where: str) -> None:
    """Reject a mapping to a category the pipeline does not know (a typo would silently empty a pool)."""
    if not isinstance(class_to_category, dict):
        raise NoiseBankError(f"{where}: class_to_category must be a mapping class -> category")
    for cls, cat in class_to_category.items():
        if cat not in CATEGORIES:
            raise NoiseBankError(
                f"{where}: class_to_category[{cls!r}] = {cat!r} is not a known category {list(CATEGORIES)}"
            )


def _frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows -> a frame with exactly BANK_COLUMNS, split empty and duration unknown, sorted by file."""
    frame = pd.DataFrame(list(rows), columns=BANK_COLUMNS)
    frame["split"] = ""
    frame["duration"] = float("nan")
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype(str)
    frame["duration"] = frame["duration"].astype(float)
    return frame.sort_values("file", kind="stable").reset_index(drop=True)


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise NoiseBankError(f"{where}: missing column(s) {missing}")


def _require_unique_files(frame: pd.DataFrame, where: str) -> None:
    # The file path is the shard key; two rows for one file would overwrite each other.
    dupes = frame["file"][frame["file"].duplicated()].unique().tolist()
    if dupes:
        raise NoiseBankError(f"{where}: file(s) listed more than once: {dupes[:5]}")


# --------------------------------------------------------------------------- scanners


def scan_esc50(root, class_to_category: dict[str, str]) -> pd.DataFrame:
    """Bank rows for an ESC-50 copy laid out as the official archive (``audio/``, ``meta/esc50.csv``).

    ``file`` is ``audio/<filename>`` relative to ``root``; ``source`` is ``esc50:<src_file>``
    (the Freesound recording the 5 s clips were cut from, shared by takes A, B, C...); ``class``
    is the ESC-50 ``category``.  Classes absent from ``class_to_category`` are left out, as are
    rows whose audio file is missing (partial copies are normal), but a copy with no mapped file
    at all is an error: the bank would silently lack the categories it was configured for.
    """
    root = Path(root)
    _check_mapping(class_to_category, f"esc50 bank {root}")
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise NoiseBankError(f"ESC-50 metadata not found: {meta}")
    table = read_csv_checked(meta, ["filename", "category", "src_file"], error=NoiseBankError, dtype=str,
                             keep_default_na=False)
    rows = []
    for rec in table.itertuples(index=False):
        category = class_to_category.get(rec.category)
        if category is None:
            continue
        rel = f"audio/{rec.filename}"
        if not (root / rel).is_file():
            continue
        rows.append({"file": rel, "source": f"esc50:{rec.src_file}", "class": rec.category, "category": category})
    if not rows:
        raise NoiseBankError(
            f"ESC-50 bank {root}: none of the mapped classes {sorted(class_to_category)} has an audio file under {root / 'audio'}"
        )
    return _frame(rows)


def _glob_folder(pattern: str) -> str:
    """The leading path components of a glob that contain no wildcard ('.' when there are none)."""
    parts = []
    for part in Path(pattern).parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return "/".join(parts) or "."


def _class_of(path: Path, entry: dict, where: str) -> str:
    fixed = entry.get("class")
    if fixed is not None:
        return str(fixed)
    how = entry.get("class_from")
    if how == "stem_alpha":
        return re.sub(r"\d+", "", path.stem)  # DCASE: knock017 -> knock
    if how == "parent":
        return path.parent.name
    if how == "stem":
        return path.stem
    raise NoiseBankError(f"{where}: class_from must be one of {list(_CLASS_FROM)} (or give a fixed 'class'), got {how!r}")


def _source_of(rel: str, path: Path, folder: str, entry: dict, where: str) -> str:
    how = entry.get("source_from", "file")
    if how == "file":
        token = rel if folder == "." else rel[len(folder) + 1 :]
    elif how == "stem_prefix":
        token = path.stem.split("_", 1)[0]  # nonverbal: 3S0D_12_8_... -> speaker 3S0D
    elif how == "parent":
        token = path.parent.name
    else:
        raise NoiseBankError(f"{where}: source_from must be one of {list(_SOURCE_FROM)}, got {how!r}")
    # Prefixing with the folder keeps e.g. speaker ids of two corpora apart.
    return f"{folder}:{token}"


def _scan_glob(root: Path, entry: dict, class_to_category: dict[str, str]) -> list[dict]:
    pattern = str(entry["glob"])
    where = f"noise bank entry glob {pattern!r}"
    unknown = set(entry) - {"glob", "class", "class_from", "source_from"}
    if unknown:
        raise NoiseBankError(f"{where}: unknown key(s) {sorted(unknown)}")
    folder = _glob_folder(pattern)
    matches = sorted(Path(p) for p in _glob.glob(str(root / pattern)) if Path(p).is_file())
    if not matches:
        raise NoiseBankError(f"{where} matches no files under {root}")
    rows = []
    for path in matches:
        rel = path.relative_to(root).as_posix()
        cls = _class_of(path, entry, where)
        source = _source_of(rel, path, folder, entry, where)
        category = class_to_category.get(cls)
        if category is not None:
            rows.append({"file": rel, "source": source, "class": cls, "category": category})
    return rows


def _scan_csv(root: Path, entry: dict, class_to_category: dict[str, str]) -> list[dict]:
    csv_path = root / str(entry["csv"])
    where = f"noise bank entry csv {entry['csv']!r}"
    unknown = set(entry) - {"csv"}
    if unknown:
        raise NoiseBankError(f"{where}: unknown key(s) {sorted(unknown)}")
    if not csv_path.is_file():
        raise NoiseBankError(f"{where}: file not found: {csv_path}")
    table = read_csv_checked(csv_path, ["file", "class"], error=NoiseBankError, dtype=str, keep_default_na=False)
    if table.empty:
        raise NoiseBankError(f"{where}: {csv_path} lists no files")
    rows = []
    for rec in table.to_dict("records"):
        rel = Path(rec["file"]).as_posix()
        if not (root / rel).is_file():
            # Unlike a partial ESC-50 copy, a hand-written list naming a missing file is a mistake.
            raise NoiseBankError(f"{csv_path}: listed file not found: {root / rel}")
        category = class_to_category.get(rec["class"])
        if category is not None:
            source = rec.get("source") or rel
            rows.append({"file": rel, "source": source, "class": rec["class"], "category": category})
    return rows


def scan_folder(root, entries: list[dict], class_to_category: dict[str, str]) -> pd.DataFrame:
    """Bank rows for a local folder of noise files described by glob or CSV entries.

    A glob entry ``{"glob", "class" | "class_from", "source_from"}`` matches files relative to
    ``root``; the class is fixed, the file stem without digits (``stem_alpha``), the parent folder
    (``parent``) or the stem (``stem``); the source is the file itself (``file``), the stem up to
    the first ``_`` (``stem_prefix``, e.g. a speaker id) or the parent folder (``parent``), always
    prefixed by the glob's fixed folder.  A CSV entry ``{"csv"}`` names a file (relative to
    ``root``) with columns ``file,class[,source]``; the source defaults to the file path.
    Unmapped classes are left out; an entry that matches nothing is an error.
    """
    root = Path(root)
    _check_mapping(class_to_category, f"folder bank {root}")
    if not entries:
        raise NoiseBankError(f"folder bank {root}: no entries configured")
    rows: list[dict] = []
    for entry in entries:
        if "glob" in entry:
            rows.extend(_scan_glob(root, entry, class_to_category))
        elif "csv" in entry:
            rows.extend(_scan_csv(root, entry, class_to_category))
        else:
            raise NoiseBankError(f"folder bank {root}: entry {entry!r} has neither 'glob' nor 'csv'")
    frame = _frame(rows)
    _require_unique_files(frame, f"folder bank {root}")
    return frame


def scan_bank(spec: dict) -> pd.DataFrame:
    """Bank rows of one ``noise_banks`` entry, by its adapter: ``esc50``, ``folder``, ``demand`` or ``musan``."""
    adapter = spec.get("adapter")
    if adapter == "esc50":
        return scan_esc50(spec["root"], spec["class_to_category"])
    if adapter == "folder":
        return scan_folder(spec["root"], spec.get("entries") or [], spec["class_to_category"])
    if adapter == "demand":
        from sernoise.noise.demand import scan_demand  # demand builds on this module's helpers

        return scan_demand(spec["root"], spec["class_to_category"], checksums=spec.get("checksums"))
    if adapter == "musan":
        from sernoise.noise.musan import scan_musan  # likewise

        return scan_musan(spec["root"], spec["class_to_category"], subsets=spec.get("subsets"))
    raise NoiseBankError(
        f"noise bank {spec.get('root')}: unknown adapter {adapter!r}; known: esc50, folder, demand, musan"
    )


# --------------------------------------------------------------------------- splits


def split_bank(frame: pd.DataFrame, spec: dict, *, test_fraction: float, seed: int) -> pd.DataFrame:
    """Train/test pools of one bank: ``spec["split"]`` puts every file in that pool, else :func:`assign_splits`.

    A fixed pool serves banks meant for one use only, e.g. DEMAND noise that Latif et al. add to test
    data and never train on: a source split of its five single recordings would drop some from the tests.
    """
    fixed = spec.get("split")
    if fixed is None:
        return assign_splits(frame, test_fraction=test_fraction, seed=seed)
    if fixed not in SPLITS:
        raise NoiseBankError(f"noise bank {spec.get('root')}: split must be one of {list(SPLITS)}, got {fixed!r}")
    return frame.assign(split=fixed)


def _n_test(n: int, test_fraction: float) -> int:
    """round(n * fraction), halves up, kept within [1, n-1] so both pools exist when n >= 2."""
    k = int(math.floor(n * test_fraction + 0.5))
    return min(max(k, 1), n - 1)


def assign_splits(frame: pd.DataFrame, *, test_fraction: float, seed: int) -> pd.DataFrame:
    """Fill ``split`` with train/test, by source recording, per category.

    Within a category the distinct sources are ordered by
    ``derive_seed(seed, "noise-split", category, source)`` and the first
    ``round(n * test_fraction)`` become test (at least one test and one train source when the
    category has two or more).  Hashing each source on its own makes the result independent of
    row order and of which other sources exist.  A category with a single source goes to train
    with a warning.

    A source can feed several categories (one speaker coughs, laughs and cries), yet it must sit
    in one split overall.  Categories are therefore visited from fewest to most sources (ties in
    :data:`CATEGORIES` order): a source already placed by an earlier category keeps its split and
    counts towards the later category's target, and only the still-free sources are drawn.  The
    small insertion pools thus get their exact share and the large pools absorb the sharing.
    Without shared sources this is exactly the per-category rule above.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise NoiseBankError(f"noise split test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    _require_columns(frame, ["source", "category"], "assign_splits")
    unknown = sorted(set(frame["category"].astype(str)) - set(CATEGORIES))
    if unknown:
        raise NoiseBankError(f"assign_splits: unknown categor(y/ies) {unknown}; expected {list(CATEGORIES)}")

    by_category = {
        cat: sorted(set(frame.loc[frame["category"] == cat, "source"].astype(str)))
        for cat in set(frame["category"].astype(str))
    }
    order = sorted(by_category, key=lambda c: (len(by_category[c]), CATEGORIES.index(c)))
    decided: dict[str, str] = {}
    for cat in order:
        sources = by_category[cat]
        n = len(sources)
        free = [s for s in sources if s not in decided]
        if n == 1:
            decided.setdefault(sources[0], "train")
            warnings.warn(
                f"noise category {cat!r} has a single source recording ({sources[0]}); "
                f"it goes to the {decided[sources[0]]} pool only",
                stacklevel=2,
            )
            continue
        fixed_test = sum(decided.get(s) == "test" for s in sources)
        need = min(max(_n_test(n, test_fraction) - fixed_test, 0), len(free))
        free.sort(key=lambda s: (derive_seed(seed, "noise-split", cat, s), s))
        for i, source in enumerate(free):
            decided[source] = "test" if i < need else "train"
        splits = {decided[s] for s in sources}
        if splits != set(SPLITS):
            # Only possible when every source was already placed by other categories.
            warnings.warn(
                f"noise category {cat!r}: all its sources are shared with other categories and already "
                f"placed in {sorted(splits)}; it has no {sorted(set(SPLITS) - splits)} pool",
                stacklevel=2,
            )
    out = frame.copy()
    out["split"] = out["source"].astype(str).map(decided)
    return out


def check_split(frame: pd.DataFrame) -> None:
    """Raise if any source recording is in both pools (or a row has no valid split)."""
    _require_columns(frame, ["file", "source", "split"], "check_split")
    bad = frame.loc[~frame["split"].isin(SPLITS), "file"].tolist()
    if bad:
        raise NoiseBankError(f"noise bank: file(s) without a train/test split (run assign_splits): {bad[:5]}")
    per_source = frame.groupby("source")["split"].nunique()
    leaks = sorted(per_source[per_source > 1].index)
    if leaks:
        more = f" (and {len(leaks) - 10} more)" if len(leaks) > 10 else ""
        raise NoiseBankError(f"noise bank: source recording(s) in both train and test pools: {leaks[:10]}{more}")


# --------------------------------------------------------------------------- build / read


def build_bank(frame: pd.DataFrame, root, out_csv, out_audio, *, rejects_out, progress: bool = True,
               compression: str | None = "bitshuffle-lz4", compression_level: int = 4) -> pd.DataFrame:
    """Load every file (16 kHz mono), store it in one shard, and write ``bank.csv`` and the rejects list.

    Unreadable or silent files are written to ``rejects_out`` (``file,reason``) and dropped.
    Files are processed in ``file`` order and durations rounded to 4 decimals, so the same
    inputs give byte-identical outputs.  ``compression``: the shard's codec (config
    ``prepare.compression``; the default is :data:`sernoise.hdf5_codecs.DEFAULT_COMPRESSION`, written
    out because this module does not import h5py).  Returns the final bank frame.
    """
    # Imported here so that scanning and splitting work without the audio stack.
    from sernoise.audio import load_checked
    from sernoise.audio_store import ShardWriter

    root = Path(root)
    _require_columns(frame, BANK_COLUMNS, "build_bank")
    _require_unique_files(frame, "build_bank")
    # Fail before the slow part: a leak is a config problem and no audio needs reading to see it.
    check_split(frame)
    frame = frame[BANK_COLUMNS].sort_values("file", kind="stable").reset_index(drop=True).copy()

    for out in (out_csv, out_audio, rejects_out):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    keep, durations, rejects = [], [], []
    total = len(frame)
    with ShardWriter(out_audio, sample_rate=SAMPLE_RATE, compression=compression,
                     compression_level=compression_level) as writer:
        for i, rel in enumerate(frame["file"]):
            x, _orig_sr, reason = load_checked(root / rel, target_sr=SAMPLE_RATE)
            if x is None:
                rejects.append({"file": rel, "reason": reason})
                keep.append(False)
                durations.append(float("nan"))
            else:
                writer.add(rel, x)
                keep.append(True)
                durations.append(round(len(x) / SAMPLE_RATE, 4))
            if progress and ((i + 1) % 100 == 0 or i + 1 == total):
                print(f"noise bank: {i + 1}/{total} files read, {len(rejects)} rejected", file=sys.stderr)

    frame["duration"] = durations
    bank = frame[keep].reset_index(drop=True)
    check_split(bank)
    pd.DataFrame(rejects, columns=["file", "reason"]).to_csv(rejects_out, index=False, lineterminator="\n")
    bank.to_csv(out_csv, index=False, float_format="%.4f", lineterminator="\n")
    return bank


def read_bank(path) -> pd.DataFrame:
    """Read ``bank.csv`` with text columns as strings and ``duration`` as float."""
    path = Path(path)
    if not path.is_file():
        raise NoiseBankError(f"noise bank not found: {path}")
    frame = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False)
    if list(frame.columns) != BANK_COLUMNS:
        raise NoiseBankError(f"{path}: columns {list(frame.columns)} differ from {BANK_COLUMNS}")
    frame["duration"] = pd.to_numeric(frame["duration"], errors="raise").astype(float)
    return frame


def pool(frame: pd.DataFrame, category: str, split: str) -> pd.DataFrame:
    """The files of one category in one split (sorted by file); an empty pool is an error."""
    selected = frame[(frame["category"] == category) & (frame["split"] == split)]
    if selected.empty:
        raise NoiseBankError(f"noise bank has no files for category {category!r} in split {split!r}")
    return selected.sort_values("file", kind="stable").reset_index(drop=True)
