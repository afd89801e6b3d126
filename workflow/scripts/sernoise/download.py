"""Downloading and unpacking corpora and noise collections.

Three layers, each usable on its own:

* :func:`download_file` streams one URL to a file.  Bytes go to ``<dest>.part`` first and
  are renamed onto ``dest`` only once the byte count and (optionally) the checksum are
  verified, so a ``dest`` that exists is always complete.
* :func:`extract_archive` unpacks a zip or tar archive after checking *every* member for
  path tricks (absolute paths, ``..``, links leaving the target, device files).  It unpacks
  into a hidden folder beside the target and moves the result into place afterwards.
* :func:`fetch_and_extract` combines the two and writes a small JSON marker into the
  target *last*; the marker, not the presence of files, is what says "done".  A second
  call with the marker present returns at once without touching the network, which keeps
  Snakemake reruns cheap and offline-friendly.

Every failure is raised as :class:`DownloadError` whose message names the URL or the
archive concerned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from tqdm import tqdm

__all__ = [
    "DownloadError",
    "file_checksum",
    "parse_checksum",
    "download_file",
    "extract_archive",
    "fetch_and_extract",
]

#: Digest algorithms accepted in checksum specs, with the length of their hex digest.
SUPPORTED_ALGORITHMS: dict[str, int] = {"sha256": 64, "md5": 32}

_HEX = re.compile(r"^[0-9a-f]+$")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Limit on symlink hops while checking an archive; real archives need a handful at most,
# and a bound turns link loops into a refusal instead of endless work.
_MAX_LINK_HOPS = 40


class DownloadError(RuntimeError):
    """A download or extraction failed; the message names the URL or archive concerned."""


# --------------------------------------------------------------------------- checksums


def _new_hash(algorithm: str):
    """A fresh hashlib object; md5 is flagged as non-security use so FIPS systems allow it."""
    algorithm = algorithm.lower()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError(
            f"unsupported checksum algorithm {algorithm!r}; use one of {sorted(SUPPORTED_ALGORITHMS)}"
        )
    return hashlib.new(algorithm, usedforsecurity=False)


def file_checksum(path, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path``, read in 1 MiB blocks so memory stays flat."""
    digest = _new_hash(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_checksum(spec: str | None) -> tuple[str, str] | None:
    """Split ``"sha256:<hex>"`` or ``"md5:<hex>"`` into ``(algorithm, hex)``.

    ``None`` passes through as ``None`` (no verification).  The algorithm name and hex
    digits are lower-cased; the digest length must fit the algorithm.  Anything else
    raises :class:`ValueError` naming the spec.
    """
    if spec is None:
        return None
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"invalid checksum spec {spec!r}: expected 'sha256:<hex>' or 'md5:<hex>'")
    algorithm, _, hexdigest = spec.strip().partition(":")
    algorithm = algorithm.strip().lower()
    hexdigest = hexdigest.strip().lower()
    expected_len = SUPPORTED_ALGORITHMS.get(algorithm)
    if expected_len is None:
        raise ValueError(
            f"invalid checksum spec {spec!r}: algorithm must be one of {sorted(SUPPORTED_ALGORITHMS)}"
        )
    if len(hexdigest) != expected_len or not _HEX.match(hexdigest):
        raise ValueError(
            f"invalid checksum spec {spec!r}: {algorithm} needs {expected_len} hexadecimal digits"
        )
    return algorithm, hexdigest


# --------------------------------------------------------------------------- download


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def download_file(
    url: str,
    dest,
    *,
    checksum: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest`` as a :class:`~pathlib.Path`.

    If ``dest`` already exists and either no ``checksum`` is given or it matches, nothing
    is requested.  An existing ``dest`` whose checksum does not match is removed and
    fetched again.

    The body is streamed into ``<dest>.part`` in the same folder (so the final rename is
    atomic), with a tqdm progress bar on stderr unless ``progress`` is false.  When the
    server sent ``Content-Length`` the received byte count must equal it; when
    ``checksum`` (``"sha256:<hex>"`` / ``"md5:<hex>"``) is given the digest must match.
    Only then is the ``.part`` file renamed onto ``dest``; on any failure it is removed,
    so ``dest`` never holds a partial file.

    Two ``download_file`` calls writing the same ``dest`` at the same time are not
    supported (they share the ``.part`` file).

    Raises:
        DownloadError: HTTP error status, network failure, truncated body or checksum
            mismatch; the message names the URL.
        ValueError: malformed ``checksum`` spec.
    """
    dest = Path(dest)
    expected = parse_checksum(checksum)
    if dest.is_dir():
        raise DownloadError(f"cannot download {url}: destination {dest} is a directory")

    if dest.exists():
        if expected is None:
            return dest
        if file_checksum(dest, expected[0]) == expected[1]:
            return dest
        # A wrong file must not survive a failed re-download looking like a good one.
        dest.unlink()

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _unlink_quietly(part)  # stale leftover of an interrupted run; never resumed blindly
    try:
        _stream_to(url, part, expected, progress=progress, timeout=timeout, chunk_size=chunk_size)
        os.replace(part, dest)
    except BaseException:
        _unlink_quietly(part)
        raise
    return dest


def _stream_to(
    url: str,
    part: Path,
    expected: tuple[str, str] | None,
    *,
    progress: bool,
    timeout: float,
    chunk_size: int,
) -> None:
    """Stream ``url`` into ``part`` and verify length and checksum (helper of download_file)."""
    digest = _new_hash(expected[0]) if expected else None
    # "identity" keeps servers from gzip-encoding the transfer, and the body is read raw
    # (decode_content=False) below: a .tar.gz served with "Content-Encoding: gzip" must
    # be saved as served, or its checksum and Content-Length could never match.
    headers = {"Accept-Encoding": "identity"}
    try:
        response = requests.get(url, stream=True, timeout=timeout, headers=headers)
    except requests.RequestException as exc:
        raise DownloadError(f"could not connect to {url}: {exc}") from exc

    with response:
        if response.status_code >= 400:
            raise DownloadError(
                f"download of {url} failed: HTTP {response.status_code} {response.reason or ''}".rstrip()
            )
        total = _content_length(response)
        received = 0
        try:
            with open(part, "wb") as out, tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name[: -len(".part")],
                disable=not progress,
                file=sys.stderr,
                leave=False,
            ) as bar:
                for chunk in response.raw.stream(chunk_size, decode_content=False):
                    if not chunk:
                        continue
                    out.write(chunk)
                    received += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    bar.update(len(chunk))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise DownloadError(
                f"download of {url} was interrupted after {received} bytes"
                + (f" of {total}" if total is not None else "")
                + f": {exc}"
            ) from exc

    # urllib3 normally raises on a short body already; checking again costs nothing and
    # does not depend on its enforce_content_length setting.
    if total is not None and received != total:
        raise DownloadError(
            f"download of {url} is incomplete: received {received} bytes, "
            f"server announced {total} (connection cut?)"
        )
    if expected is not None:
        actual = digest.hexdigest()
        if actual != expected[1]:
            raise DownloadError(
                f"checksum mismatch for {url}: expected {expected[0]}:{expected[1]}, "
                f"got {expected[0]}:{actual}"
            )


def _content_length(response: requests.Response) -> int | None:
    """The announced body length, or None when absent or unparsable."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


# --------------------------------------------------------------------------- archive safety


def _member_parts(archive: Path, name: str, *, allow_root: bool = False) -> tuple[str, ...]:
    """Validate an archive member name and return its path components.

    Refuses NUL bytes, backslashes (Windows separators that POSIX would keep inside one
    file name, and that other tools would treat as folders), drive letters, absolute
    paths and any ``..`` component.  ``.`` and empty components are dropped, so
    ``./a//b`` becomes ``("a", "b")``; an empty result is only allowed for directory
    entries such as ``./`` (``allow_root``).
    """

    def refuse(why: str):
        return DownloadError(f"refusing to extract {archive}: member {name!r} {why}")

    if "\x00" in name:
        raise refuse("contains a NUL byte")
    if "\\" in name:
        raise refuse("contains a backslash")
    if _DRIVE.match(name):
        raise refuse("starts with a drive letter")
    if name.startswith("/"):
        raise refuse("is an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise refuse("contains a '..' component")
    if not parts and not allow_root:
        raise refuse("has an empty path")
    return parts


def _resolve_inside(
    parts: Iterable[str], links: dict[tuple[str, ...], str], *, follow_last: bool = True
) -> tuple[str, ...] | None:
    """Resolve a path relative to the extraction root, following the archive's symlinks.

    ``links`` maps symlink member paths to their (relative) targets.  Returns the resolved
    components, or None when the path leaves the root, meets an absolute or odd link
    target, or needs more than ``_MAX_LINK_HOPS`` hops (a loop).  Following links matters:
    with ``b -> .`` the target ``b/..`` is lexically ``.`` but really the root's parent.
    """
    resolved: list[str] = []
    todo = list(parts)
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        key = tuple(resolved)
        if key in links and (todo or follow_last):
            hops += 1
            target = links[key]
            if hops > _MAX_LINK_HOPS or target.startswith("/") or "\\" in target or _DRIVE.match(target):
                return None
            resolved.pop()  # a link target is relative to the folder holding the link
            todo = target.split("/") + todo
    return tuple(resolved)


def _check_tar_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """Refuse the whole tar archive if any member is unsafe; see :func:`extract_archive`."""
    parts_of: dict[int, tuple[str, ...]] = {}
    kinds: dict[tuple[str, ...], set[str]] = {}
    for index, member in enumerate(members):
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise DownloadError(
                f"refusing to extract {archive}: member {member.name!r} is a device, fifo "
                "or other special file"
            )
        parts = _member_parts(archive, member.name, allow_root=member.isdir())
        parts_of[index] = parts
        kind = "link" if (member.issym() or member.islnk()) else "other"
        kinds.setdefault(parts, set()).add(kind)

    symlinks = {parts_of[i]: m.linkname for i, m in enumerate(members) if m.issym()}
    link_names = {parts_of[i] for i, m in enumerate(members) if m.issym() or m.islnk()}

    for index, member in enumerate(members):
        parts = parts_of[index]
        if kinds[parts] == {"link", "other"}:
            # A link and a file/folder of one name: which wins depends on order and on
            # tarfile internals (writing a file opens *through* an existing symlink).
            raise DownloadError(
                f"refusing to extract {archive}: member {member.name!r} is both a link "
                "and a file or folder"
            )
        for depth in range(1, len(parts)):
            if parts[:depth] in link_names:
                raise DownloadError(
                    f"refusing to extract {archive}: member {member.name!r} lies beneath "
                    f"the link {'/'.join(parts[:depth])!r}"
                )
        if member.issym():
            link = member.linkname
            if not link:
                raise DownloadError(f"refusing to extract {archive}: symlink {member.name!r} has an empty target")
            odd = link.startswith("/") or "\\" in link or "\x00" in link or _DRIVE.match(link)
            if odd or _resolve_inside(parts[:-1] + tuple(link.split("/")), symlinks) is None:
                raise DownloadError(
                    f"refusing to extract {archive}: symlink {member.name!r} -> "
                    f"{member.linkname!r} points outside the target"
                )
        elif member.islnk():
            # Hard link targets are archive paths (relative to the root), not to the link.
            try:
                target_parts = _member_parts(archive, member.linkname)
            except DownloadError as exc:
                raise DownloadError(
                    f"refusing to extract {archive}: hard link {member.name!r} -> "
                    f"{member.linkname!r} points outside the target"
                ) from exc
            if _resolve_inside(target_parts, symlinks) is None:
                raise DownloadError(
                    f"refusing to extract {archive}: hard link {member.name!r} -> "
                    f"{member.linkname!r} points outside the target"
                )


def _check_reserved(archive: Path, top_levels: Iterable[str], reserved: Iterable[str]) -> None:
    clash = set(top_levels) & set(reserved)
    if clash:
        raise DownloadError(
            f"refusing to extract {archive}: member {sorted(clash)[0]!r} would collide with "
            "the completion marker"
        )


# --------------------------------------------------------------------------- extraction


def extract_archive(archive, target) -> list[Path]:
    """Safely unpack a zip or tar (plain, gz/tgz, bz2, xz) archive into ``target``.

    The format is detected from the content, not the file name.  Every member is checked
    *before* anything is written; the whole archive is refused (:class:`DownloadError`
    naming the archive and the member) if any member

    * has an absolute path, a drive letter, a backslash or a ``..`` component;
    * is a symlink or hard link (tar) whose target resolves outside ``target``, or another
      member lies beneath such a link;
    * is a character/block device, a fifo or another special file.

    Members are unpacked into a hidden folder beside ``target`` and then moved into place
    (the whole folder is renamed when ``target`` does not exist yet), so an interrupted
    run never leaves a half-filled ``target`` that looks complete.  Existing content of
    ``target`` is kept except where the archive replaces it.

    Returns the extracted files (regular files and links, not folders) as sorted paths
    under ``target``.
    """
    return _extract(Path(archive), Path(target), reserved=())


def _detect_format(archive: Path) -> str:
    """'zip' or 'tar', from the content; raises DownloadError naming the archive otherwise."""
    if not archive.is_file():
        raise DownloadError(f"archive {archive} does not exist or is not a file")
    with open(archive, "rb") as fh:
        head = fh.read(4)
    # Zip magic first: zipfile.is_zipfile also accepts any file that merely *ends* with a
    # zip directory record, e.g. an uncompressed tar whose last member is a small zip.
    if head in (b"PK\x03\x04", b"PK\x05\x06") and zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    if zipfile.is_zipfile(archive):  # zips with a prefix, e.g. self-extracting ones
        return "zip"
    raise DownloadError(f"{archive} is neither a zip nor a tar archive (plain, gz, bz2 or xz)")


def _extract(archive: Path, target: Path, *, reserved: Iterable[str]) -> list[Path]:
    kind = _detect_format(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.extracting-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # os.mkdir (not tempfile.mkdtemp) so the folder gets the usual umask-derived mode; it
    # may become ``target`` itself by rename.
    os.mkdir(staging)
    try:
        try:
            if kind == "zip":
                _extract_zip(archive, staging, reserved)
            else:
                _extract_tar(archive, staging, reserved)
        except DownloadError:
            raise
        except Exception as exc:  # corrupt data, CRC errors, disk full... all name the archive
            raise DownloadError(f"could not extract {archive}: {exc}") from exc
        relative = sorted(_list_files(staging))
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise DownloadError(f"cannot extract {archive}: target {target} exists and is not a folder")
        if target.exists():
            _merge_tree(staging, target)
        else:
            os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target / rel for rel in relative]


def _extract_zip(archive: Path, staging: Path, reserved: Iterable[str]) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan = [(info, _member_parts(archive, info.filename, allow_root=info.is_dir())) for info in infos]
        _check_reserved(archive, (parts[0] for _, parts in plan if parts), reserved)
        # Written by hand rather than with ZipFile.extract, which silently rewrites unsafe
        # names; here each member lands exactly on the path that was checked above.
        for info, parts in plan:
            dest = staging.joinpath(*parts)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if (info.external_attr >> 16) & 0o100:  # keep executables executable (tool bundles)
                mode = dest.stat().st_mode
                dest.chmod(mode | ((mode & 0o444) >> 2))  # exec wherever read is allowed


def _extract_tar(archive: Path, staging: Path, reserved: Iterable[str]) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        _check_tar_members(archive, members)
        top_levels = (parts[0] for parts in (_member_parts(archive, m.name, allow_root=True) for m in members) if parts)
        _check_reserved(archive, top_levels, reserved)
        if hasattr(tarfile, "data_filter"):
            # Belt and braces: Python's own "data" filter re-checks at write time and drops
            # setuid bits and ownership, on top of the checks above.
            tf.extractall(staging, members=members, filter="data")
        else:  # pragma: no cover - Python builds without PEP 706 filters
            tf.extractall(staging, members=members)


def _list_files(root: Path) -> list[Path]:
    """Non-folder entries under ``root`` (files and links), relative, without following links."""
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    found.append(Path(entry.path).relative_to(root))
    return found


def _merge_tree(src: Path, dst: Path) -> None:
    """Move everything under ``src`` into the existing folder ``dst``.

    Folders are merged, other entries replace what is there.  Pre-existing symlinks in
    ``dst`` are replaced, never followed, so they cannot redirect the archive's files.
    """
    with os.scandir(src) as entries:
        for entry in entries:
            s = Path(entry.path)
            d = dst / entry.name
            if entry.is_dir(follow_symlinks=False):
                if d.is_symlink() or (d.exists() and not d.is_dir()):
                    d.unlink()
                if d.exists():
                    _merge_tree(s, d)
                else:
                    os.replace(s, d)
            else:
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d)
                os.replace(s, d)


# --------------------------------------------------------------------------- fetch + extract


def _archive_name(url: str) -> str:
    """File name for the downloaded archive: the last URL path segment, query ignored."""
    name = unquote(urlsplit(url).path).rstrip("/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\\" in name or "\x00" in name:
        return "download.archive"
    return name


def fetch_and_extract(
    url: str,
    target,
    *,
    checksum: str | None = None,
    archive_dir=None,
    marker_name: str = ".sernoise-complete",
    progress: bool = True,
    keep_archive: bool = False,
) -> Path:
    """Download the archive at ``url`` and unpack it into ``target``, once.

    If ``target/marker_name`` exists the call returns ``target`` at once, without any
    network request.  Otherwise the archive is downloaded into ``archive_dir`` (default:
    the parent of ``target``) under the last segment of the URL path, verified against
    ``checksum`` if given, unpacked with :func:`extract_archive`, and finally the marker
    is written: JSON with ``url``, ``checksum`` and ``n_files`` only (no timestamp, so
    reruns produce identical bytes).  The archive is deleted afterwards, and also after
    a failed extraction, unless ``keep_archive``.

    Returns ``target`` as a :class:`~pathlib.Path`.
    """
    target = Path(target)
    if not marker_name or "/" in marker_name or "\\" in marker_name or marker_name in (".", ".."):
        raise ValueError(f"marker_name must be a plain file name, got {marker_name!r}")
    marker = target / marker_name
    if marker.is_file():
        return target
    parse_checksum(checksum)  # fail on a malformed spec before any network traffic

    archive_dir = Path(archive_dir) if archive_dir is not None else target.parent
    archive = archive_dir / _archive_name(url)
    try:
        download_file(url, archive, checksum=checksum, progress=progress)
        # An archive shipping its own marker could make an interrupted run look complete.
        files = _extract(archive, target, reserved=(marker_name,))
    except BaseException:
        if not keep_archive:
            _unlink_quietly(archive)
        raise

    record = {"url": url, "checksum": checksum, "n_files": len(files)}
    tmp_marker = marker.with_name(marker.name + ".tmp")
    tmp_marker.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_marker, marker)  # the marker appears whole or not at all

    if not keep_archive:
        _unlink_quietly(archive)
    return target
