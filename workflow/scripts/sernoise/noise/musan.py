"""MUSAN noise bank adapter (Snyder, Chen & Povey 2015; OpenSLR resource 17).

MUSAN ("music, speech and noise") is the noise Wu & Lee mix into speech for MetricAug: its noise
and its music part, never its speech.  The release is one archive, ``musan.tar.gz``, whose
top-level folder ``musan/`` is the bank's ``root``::

    musan/noise/free-sound/noise-free-sound-0000.wav ...   ANNOTATIONS, LICENSE
    musan/noise/sound-bible/noise-sound-bible-0000.wav ...
    musan/music/{fma,fma-western-art,hd-classical,jamendo,rfm}/music-<subset>-0000.wav ...
    musan/speech/{librivox,us-gov}/...                      (never scanned)

Every subset folder holds an ``ANNOTATIONS`` file, one line per recording, whose first field is
the recording id (the wav's stem).  Music lines have four fields,
``<id> <genres,comma-separated> <vocals Y|N> <artist>`` (the format Kaldi's and Lhotse's MUSAN
recipes read); noise lines are only read for their id.  A line that does not have this form (a
music line with fewer than four fields or a vocals flag other than Y/N, an id listed twice, an id
with a path in it) is an error naming the file and line, since a misread list would silently drop
or mislabel recordings.  Genres, vocals and artist are checked for form but not used.

Bank rows: ``file`` ``<kind>/<subset>/<id>.wav`` (relative to ``root``), ``class`` the kind
(``noise`` or ``music``), ``source`` ``musan:<id>`` (each MUSAN file is one recording, so the
train/test split is by file), ``category`` from ``class_to_category``.  A kind missing from the
mapping is left out (its folder need not exist); a mapping key other than ``noise``/``music`` is an
error (``speech`` included: speech is never noise here).  ``subsets`` restricts the scan to some
subsets (e.g. ``[free-sound, fma]``); by default every subset of the mapped kinds is scanned.

Checks: a mapped kind's folder (``noise/``, ``music/``), a scanned subset's folder and its
``ANNOTATIONS`` must exist; a wav in a subset folder that its ``ANNOTATIONS`` does not list is an
error (the copy is not the release, or files were added by hand); an id listed without its wav is
left out with a warning (a partial copy), but a subset left with no file at all is an error.
Only wavs directly in a subset folder are read; other folders under ``noise/``/``music/`` are
left out with a warning.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from .bank import NoiseBankError, _check_mapping, _frame

# The subsets of the release, by kind.  Speech subsets are named only to refuse them clearly.
SUBSETS = {
    "noise": ("free-sound", "sound-bible"),
    "music": ("fma", "fma-western-art", "hd-classical", "jamendo", "rfm"),
}
SPEECH_SUBSETS = ("librivox", "us-gov")
KINDS = tuple(SUBSETS)
ANNOTATIONS = "ANNOTATIONS"
_VOCALS = ("Y", "N")
_ID = re.compile(r"^[^/\\\s]+$")


def _kind_of(subset: str, where: str) -> str:
    for kind, names in SUBSETS.items():
        if subset in names:
            return kind
    if subset in SPEECH_SUBSETS:
        raise NoiseBankError(f"{where}: subsets names {subset!r}, a MUSAN speech subset; speech is never used as noise")
    known = [name for names in SUBSETS.values() for name in names]
    raise NoiseBankError(f"{where}: subsets names {subset!r}, not a MUSAN noise or music subset (known: {known})")


def _selected(subsets: Iterable[str] | None, kinds: list[str], where: str) -> list[tuple[str, str]]:
    """(kind, subset) pairs to scan, in release order."""
    if subsets is None:
        return [(kind, subset) for kind in kinds for subset in SUBSETS[kind]]
    if isinstance(subsets, str) or not list(subsets):
        raise NoiseBankError(f"{where}: subsets must be a non-empty list of subset names, got {subsets!r}")
    wanted = list(subsets)
    pairs = {subset: _kind_of(subset, where) for subset in wanted}
    unmapped = sorted(subset for subset, kind in pairs.items() if kind not in kinds)
    if unmapped:
        raise NoiseBankError(f"{where}: subsets {unmapped} hold {sorted({pairs[s] for s in unmapped})}, which "
                             f"class_to_category does not map (it maps {kinds}); they would add nothing")
    return [(kind, subset) for kind in kinds for subset in SUBSETS[kind] if subset in pairs]


def read_annotations(path: Path, kind: str) -> list[str]:
    """The recording ids listed in one subset's ``ANNOTATIONS`` file, in file order (form checked)."""
    if not path.is_file():
        raise NoiseBankError(f"MUSAN annotations not found: {path} (every subset folder of the release has one)")
    # Artist names are free text; a stray non-UTF-8 byte there must not make the list unreadable.
    text = path.read_bytes().decode("utf-8", errors="replace")
    ids: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path} line {number}"
        rec_id = fields[0][:-4] if fields[0].endswith(".wav") else fields[0]
        if not _ID.match(rec_id) or rec_id in (".", ".."):
            raise NoiseBankError(f"{where}: cannot read a recording id from {line.strip()!r}")
        if kind == "music" and (len(fields) < 4 or fields[2] not in _VOCALS):
            raise NoiseBankError(f"{where}: expected '<id> <genres> <vocals Y|N> <artist>', got {line.strip()!r}")
        if rec_id in seen:
            raise NoiseBankError(f"{where}: recording {rec_id} is already listed on line {seen[rec_id]}")
        seen[rec_id] = number
        ids.append(rec_id)
    return ids


def _scan_subset(root: Path, kind: str, subset: str, category: str) -> list[dict]:
    folder = root / kind / subset
    if not folder.is_dir():
        raise NoiseBankError(f"MUSAN bank {root}: subset folder not found: {folder} (a partial copy? restrict the bank "
                             "with subsets)")
    annotations = folder / ANNOTATIONS
    listed = read_annotations(annotations, kind)
    wavs = {path.stem: path for path in folder.glob("*.wav") if path.is_file()}
    unlisted = sorted(set(wavs) - set(listed))
    if unlisted:
        more = f" (and {len(unlisted) - 5} more)" if len(unlisted) > 5 else ""
        raise NoiseBankError(f"MUSAN bank {root}: {wavs[unlisted[0]]} is not listed in {annotations}; unlisted: "
                             f"{unlisted[:5]}{more}")
    missing = [rec_id for rec_id in listed if rec_id not in wavs]
    if missing:
        warnings.warn(f"MUSAN bank {root}: {len(missing)} recording(s) listed in {annotations} have no wav and are "
                      f"left out: {missing[:5]}", stacklevel=3)
    rows = [{"file": f"{kind}/{subset}/{rec_id}.wav", "source": f"musan:{rec_id}", "class": kind, "category": category}
            for rec_id in listed if rec_id in wavs]
    if not rows:
        raise NoiseBankError(f"MUSAN bank {root}: subset {folder} has no wav listed in {annotations}")
    return rows


def scan_musan(root, class_to_category: Mapping[str, str], *, subsets: Iterable[str] | None = None) -> pd.DataFrame:
    """Bank rows for the mapped kinds (``noise``, ``music``) of a MUSAN copy at ``root`` (the ``musan/`` folder)."""
    root = Path(root)
    where = f"MUSAN bank {root}"
    _check_mapping(dict(class_to_category), where)
    unknown = sorted(set(class_to_category) - set(KINDS))
    if unknown:
        why = " (speech is never used as noise)" if "speech" in unknown else ""
        raise NoiseBankError(f"{where}: class_to_category names {unknown}; MUSAN classes are {list(KINDS)}{why}")
    kinds = [kind for kind in KINDS if kind in class_to_category]
    if not kinds:
        raise NoiseBankError(f"{where}: class_to_category maps neither noise nor music")
    pairs = _selected(subsets, kinds, where)
    for kind in kinds:
        if not (root / kind).is_dir():
            raise NoiseBankError(f"{where}: folder not found: {root / kind} (root must be the release's musan/ folder, "
                                 f"holding {'/, '.join(KINDS)}/)")
        extra = sorted(p.name for p in (root / kind).iterdir() if p.is_dir() and p.name not in SUBSETS[kind])
        if extra:
            warnings.warn(f"{where}: {root / kind} holds folder(s) {extra} that are not MUSAN {kind} subsets; left out",
                          stacklevel=2)
    rows: list[dict] = []
    for kind, subset in pairs:
        rows.extend(_scan_subset(root, kind, subset, class_to_category[kind]))
    return _frame(rows)
