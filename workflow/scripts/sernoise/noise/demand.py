"""DEMAND noise bank adapter (Thiemann, Ito & Vincent 2013; Zenodo record 1227121).

DEMAND records 18 acoustic environments with a 16-channel array, 5 minutes each.  The official
release has one archive per environment and sampling rate; Latif et al. use the 16 kHz ones::

    <root>/DKITCHEN_16k.zip    holding  DKITCHEN/ch01.wav ... DKITCHEN/ch16.wav
    <root>/NPARK_16k.zip       ...

Only channel 1 is used: the 16 channels are one scene heard by microphones centimetres apart, so
they are not independent noise recordings, and mixing single-channel speech needs one channel.
Each mapped environment's archive is verified against the checksum configured for it
(``checksums``: archive name -> ``sha256:<hex>`` / ``md5:<hex>``; a mismatch is an error naming the
archive) and its channel 1 is extracted to ``<root>/<ENV>/ch01.wav``, the path it has in the
unpacked archive.  Extraction is skipped when that file is already there with the member's size and
CRC-32, so rescans are cheap and a damaged copy is replaced.  A copy already unpacked by hand
(``<ENV>/ch01.wav`` without the archive) is accepted as it is, with a warning when a checksum was
configured for the missing archive (it cannot be checked).

Bank rows: ``file`` ``<ENV>/ch01.wav``, ``class`` the environment name, ``source`` ``demand:<ENV>``
(one recording per environment: all of it sits in one pool), ``category`` from
``class_to_category``.  Environments not in the mapping are left out; a mapping key that is not a
DEMAND environment is an error (a typo would silently drop the noise).

Latif et al. test on kitchen, park, station, traffic and cafeteria noise
(:data:`PAPER_ENVIRONMENTS`) and never train on noise: a bank of those five is meant for the test pool
only (``noise_banks.<name>.split: test``), since a source split of five single recordings would leave
some of them out of the tests.  Categories: the project's ``int`` (interior/domestic) fits the kitchen,
cafeteria and station hall, ``nat`` the park; the street (``STRAFFIC``) has no paper category (the
shared bank leaves ``city`` out for that reason), so its mapping is the configuration's choice.
"""

from __future__ import annotations

import os
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from sernoise.download import file_checksum, parse_checksum

from .bank import NoiseBankError, _check_mapping, _frame

# The 18 environments of the release, by their directory names (first letter: Domestic, Nature,
# Office, Public, Street, Transportation).
ENVIRONMENTS = {
    "DKITCHEN": "kitchen",
    "DLIVING": "living room",
    "DWASHING": "washing room",
    "NFIELD": "sports field",
    "NPARK": "city park",
    "NRIVER": "creek",
    "OHALLWAY": "office hallway",
    "OMEETING": "meeting room",
    "OOFFICE": "small office",
    "PCAFETER": "cafeteria",
    "PRESTO": "restaurant",
    "PSTATION": "train station hall",
    "SCAFE": "street cafe terrace",
    "SPSQUARE": "public square",
    "STRAFFIC": "busy traffic intersection",
    "TBUS": "bus",
    "TCAR": "car",
    "TMETRO": "subway",
}
# Latif et al. §4: "kitchen, park, station, traffic, and cafeteria".
PAPER_ENVIRONMENTS = ("DKITCHEN", "NPARK", "PSTATION", "STRAFFIC", "PCAFETER")
CHANNEL = "ch01.wav"


def archive_name(environment: str) -> str:
    """File name of an environment's 16 kHz archive in the release."""
    return f"{environment}_16k.zip"


def _checksums(checksums: Mapping[str, str] | None, where: str) -> dict[str, tuple[str, str]]:
    known = {archive_name(env) for env in ENVIRONMENTS}
    out = {}
    for name, spec in (checksums or {}).items():
        if name not in known:
            raise NoiseBankError(f"{where}: checksums key {name!r} is not a DEMAND 16 kHz archive "
                                 f"(<ENV>_16k.zip with ENV one of {sorted(ENVIRONMENTS)})")
        try:
            out[name] = parse_checksum(spec)
        except ValueError as error:
            raise NoiseBankError(f"{where}: checksums.{name}: {error}") from None
    return out


def _verify(archive: Path, expected: tuple[str, str] | None) -> None:
    if expected is None:
        return
    algorithm, digest = expected
    actual = file_checksum(archive, algorithm)
    if actual != digest:
        raise NoiseBankError(f"DEMAND archive {archive}: checksum mismatch, expected {algorithm}:{digest}, got "
                             f"{algorithm}:{actual} (damaged or different file; download it again)")


def _same_as_member(path: Path, info: zipfile.ZipInfo) -> bool:
    if not path.is_file() or path.stat().st_size != info.file_size:
        return False
    crc = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return crc == info.CRC


def _extract_channel(archive: Path, environment: str, target: Path) -> None:
    """Write the archive's ``<ENV>/ch01.wav`` to ``target`` (atomically) unless an identical copy is there."""
    member = f"{environment}/{CHANNEL}"
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                names = zf.namelist()
                raise NoiseBankError(f"DEMAND archive {archive} has no {member} (members: {names[:5]}"
                                     f"{' ...' if len(names) > 5 else ''})") from None
            if _same_as_member(target, info):
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                with zf.open(info) as source, open(partial, "wb") as out:  # zipfile checks the CRC on read
                    for block in iter(lambda: source.read(1 << 20), b""):
                        out.write(block)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    except zipfile.BadZipFile as error:
        raise NoiseBankError(f"DEMAND archive {archive} is not a readable zip file: {error}") from None
    except OSError as error:
        raise NoiseBankError(f"DEMAND archive {archive}: could not extract {member} to {target}: {error}") from None


def scan_demand(root, class_to_category: Mapping[str, str], *, checksums: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Bank rows for the mapped DEMAND environments under ``root`` (archives verified, channel 1 extracted)."""
    root = Path(root)
    where = f"DEMAND bank {root}"
    _check_mapping(dict(class_to_category), where)
    unknown = sorted(set(class_to_category) - set(ENVIRONMENTS))
    if unknown:
        raise NoiseBankError(f"{where}: class_to_category names {unknown}, not DEMAND environments "
                             f"(known: {sorted(ENVIRONMENTS)})")
    expected = _checksums(checksums, where)
    if not root.is_dir():
        raise NoiseBankError(f"{where}: folder not found (put the DEMAND <ENV>_16k.zip archives there)")
    rows = []
    for environment in sorted(class_to_category):
        archive = root / archive_name(environment)
        channel = root / environment / CHANNEL
        if archive.is_file():
            _verify(archive, expected.get(archive.name))
            _extract_channel(archive, environment, channel)
        elif channel.is_file():
            if archive.name in expected:
                warnings.warn(f"{where}: {archive.name} is absent, so its checksum cannot be checked; using the "
                              f"unpacked {channel} as it is", stacklevel=2)
        else:
            raise NoiseBankError(f"{where}: environment {environment} has neither {archive} nor {channel}")
        rows.append({"file": f"{environment}/{CHANNEL}", "source": f"demand:{environment}", "class": environment,
                     "category": class_to_category[environment]})
    if not rows:
        raise NoiseBankError(f"{where}: class_to_category maps no environment")
    return _frame(rows)
