"""Tests for ``sernoise.download`` against a throw-away HTTP server on 127.0.0.1.

The server only answers paths the test put into its ``routes`` dict (anything else is a
404) and counts every request, so tests can prove that cached calls stay offline.  All
archives are built in memory by the tests themselves.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sernoise.download import (
    DownloadError,
    download_file,
    extract_archive,
    fetch_and_extract,
    file_checksum,
    parse_checksum,
)

# --------------------------------------------------------------------------- test server


@dataclass(frozen=True)
class Cut:
    """Announce ``Content-Length: len(data)`` but send only the first half, then hang up."""

    data: bytes


@dataclass(frozen=True)
class NoLength:
    """Send ``data`` without a Content-Length header (body ends when the socket closes)."""

    data: bytes


@dataclass(frozen=True)
class Status:
    """Answer with an error status and a short body."""

    code: int


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - name fixed by http.server
        state: LocalServer = self.server.state  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        with state.lock:
            state.hits[path] += 1
        route = state.routes.get(path)
        if route is None:
            self._send_plain(404, b"not found")
        elif isinstance(route, Status):
            self._send_plain(route.code, b"error")
        elif isinstance(route, Cut):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(route.data)))
            self.end_headers()
            self.wfile.write(route.data[: len(route.data) // 2])
            self.wfile.flush()
            self.close_connection = True  # the server then closes the socket mid-body
        elif isinstance(route, NoLength):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(route.data)
            self.close_connection = True
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(route)))
            self.end_headers()
            self.wfile.write(route)

    def _send_plain(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep pytest output clean
        pass


class LocalServer:
    """State shared with the handler: the fixed routes and a per-path request counter."""

    def __init__(self, base: str):
        self.base = base
        self.routes: dict[str, object] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(self.hits.values())


@pytest.fixture
def server(monkeypatch):
    # A proxy from the environment would swallow loopback requests.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = LocalServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- archive builders

FILES = {"corpus/a.txt": b"alpha\n", "corpus/sub/b.bin": bytes(range(256)) * 4, "README": b"hi\n"}


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    """A tar archive from (name, data) pairs and ready-made TarInfo entries (links, fifos)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for item in members:
            if isinstance(item, tarfile.TarInfo):
                tf.addfile(item)
            else:
                name, data = item
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def all_paths(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --------------------------------------------------------------------------- checksums


def test_parse_checksum_accepts_sha256_and_md5():
    digest = "AB" * 32
    assert parse_checksum(f"sha256:{digest}") == ("sha256", digest.lower())
    assert parse_checksum("MD5:" + "0f" * 16) == ("md5", "0f" * 16)
    assert parse_checksum(None) is None


@pytest.mark.parametrize("spec", ["sha256", "sha1:" + "0" * 40, "sha256:abc", "md5:" + "z" * 32, ""])
def test_parse_checksum_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="invalid checksum spec"):
        parse_checksum(spec)


def test_file_checksum_streams_and_matches_hashlib(tmp_path):
    data = b"x" * (3 << 20)  # several read blocks
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_checksum(path) == hashlib.sha256(data).hexdigest()
    assert file_checksum(path, "md5") == hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- download_file


def test_download_file_with_sha256_and_md5(server, tmp_path):
    data = b"payload" * 1000
    server.routes["/f.bin"] = data
    out = download_file(server.url("/f.bin"), tmp_path / "a" / "f.bin", checksum=sha256(data), progress=False)
    assert out == tmp_path / "a" / "f.bin" and out.read_bytes() == data
    md5 = "md5:" + hashlib.md5(data).hexdigest()
    assert download_file(server.url("/f.bin"), tmp_path / "g.bin", checksum=md5, progress=False).read_bytes() == data
    assert server.hits["/f.bin"] == 2
    assert not list(tmp_path.rglob("*.part"))


def test_download_file_wrong_checksum_leaves_nothing(server, tmp_path):
    server.routes["/f.bin"] = b"real bytes"
    wrong = sha256(b"other bytes")
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError) as err:
        download_file(server.url("/f.bin"), dest, checksum=wrong, progress=False)
    message = str(err.value)
    assert server.url("/f.bin") in message
    assert wrong in message and hashlib.sha256(b"real bytes").hexdigest() in message
    assert all_paths(tmp_path) == []


def test_download_file_skips_network_when_dest_matches(server, tmp_path):
    data = b"cached"
    dest = tmp_path / "f.bin"
    dest.write_bytes(data)
    server.routes["/f.bin"] = b"something else"
    assert download_file(server.url("/f.bin"), dest, checksum=sha256(data), progress=False) == dest
    assert download_file(server.url("/f.bin"), dest, progress=False) == dest  # no checksum: trust it
    assert server.requests == 0
    assert dest.read_bytes() == data


def test_download_file_refetches_when_dest_mismatches(server, tmp_path):
    data = b"fresh"
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"stale")
    server.routes["/f.bin"] = data
    download_file(server.url("/f.bin"), dest, checksum=sha256(data), progress=False)
    assert dest.read_bytes() == data and server.requests == 1


def test_download_file_connection_cut(server, tmp_path):
    server.routes["/big.bin"] = Cut(b"\x01" * 200_000)
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match="big.bin") as err:
        download_file(server.url("/big.bin"), dest, progress=False)
    assert server.url("/big.bin") in str(err.value)
    assert all_paths(tmp_path) == []


def test_download_file_without_content_length(server, tmp_path):
    data = b"no length header" * 100
    server.routes["/n.bin"] = NoLength(data)
    assert download_file(server.url("/n.bin"), tmp_path / "n.bin", progress=False).read_bytes() == data


@pytest.mark.parametrize("route, status", [(None, 404), (Status(500), 500)])
def test_download_file_http_errors_name_url_and_status(server, tmp_path, route, status):
    if route is not None:
        server.routes["/x.zip"] = route
    with pytest.raises(DownloadError) as err:
        download_file(server.url("/x.zip"), tmp_path / "x.zip", progress=False)
    assert server.url("/x.zip") in str(err.value) and str(status) in str(err.value)
    assert all_paths(tmp_path) == []


def test_download_file_connection_refused_names_url(tmp_path):
    with socket.socket() as sock:  # grab a free port, then close it so nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.bin"
    with pytest.raises(DownloadError, match=re.escape(url)):
        download_file(url, tmp_path / "x.bin", progress=False, timeout=5)


def test_download_file_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    server.routes["/f.bin"] = b"z" * 5000
    download_file(server.url("/f.bin"), tmp_path / "f.bin", progress=True)
    captured = capsys.readouterr()
    assert "f.bin" in captured.err and captured.out == ""


# --------------------------------------------------------------------------- fetch_and_extract


@pytest.mark.parametrize(
    "name, build",
    [
        ("data.zip", lambda: make_zip(FILES)),
        ("data.tar.gz", lambda: make_tar(list(FILES.items()), "w:gz")),
    ],
)
def test_fetch_and_extract_good_archive_is_idempotent(server, tmp_path, name, build):
    blob = build()
    server.routes["/" + name] = blob
    target = tmp_path / "corpus_root"
    out = fetch_and_extract(server.url("/" + name), target, checksum=sha256(blob), progress=False)
    assert out == target
    for member, data in FILES.items():
        assert (target / member).read_bytes() == data
    marker = json.loads((target / ".sernoise-complete").read_text())
    assert marker == {"url": server.url("/" + name), "checksum": sha256(blob), "n_files": len(FILES)}
    assert not (tmp_path / name).exists()  # archive removed
    assert [p.name for p in tmp_path.iterdir()] == ["corpus_root"]  # no staging/part leftovers
    assert server.requests == 1

    assert fetch_and_extract(server.url("/" + name), target, checksum=sha256(blob), progress=False) == target
    assert server.requests == 1  # the marker short-circuits: no second request


def test_fetch_and_extract_keep_archive_and_archive_dir(server, tmp_path):
    blob = make_tar(list(FILES.items()), "w:bz2")
    server.routes["/dl/c.tbz2"] = blob
    fetch_and_extract(
        server.url("/dl/c.tbz2") + "?download=1",
        tmp_path / "t",
        archive_dir=tmp_path / "archives",
        keep_archive=True,
        progress=False,
    )
    assert (tmp_path / "archives" / "c.tbz2").read_bytes() == blob
    assert (tmp_path / "t" / "README").read_bytes() == b"hi\n"


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_fetch_and_extract_wrong_checksum(server, tmp_path, algo):
    server.routes["/d.zip"] = make_zip(FILES)
    wrong = f"{algo}:" + "0" * (64 if algo == "sha256" else 32)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_and_extract(server.url("/d.zip"), tmp_path / "t", checksum=wrong, progress=False)
    assert all_paths(tmp_path) == []  # no target, marker, archive or .part


def test_fetch_and_extract_connection_cut(server, tmp_path):
    server.routes["/d.zip"] = Cut(make_zip({"big.bin": bytes(300_000)}) + bytes(100_000))
    with pytest.raises(DownloadError, match="/d.zip"):
        fetch_and_extract(server.url("/d.zip"), tmp_path / "t", progress=False)
    assert all_paths(tmp_path) == []


def test_fetch_and_extract_404_names_url(server, tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch_and_extract(server.url("/missing.zip"), tmp_path / "t", progress=False)
    assert server.url("/missing.zip") in str(err.value) and "404" in str(err.value)
    assert all_paths(tmp_path) == []


# --------------------------------------------------------------------------- unsafe archives


def _unsafe_archives(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    """Case name -> (archive bytes, name of the member the refusal must mention)."""
    outside = str(tmp_path / "abs_evil.txt")  # where an absolute member would land
    return {
        "zip-dotdot": (make_zip({"ok.txt": b"ok", "../evil.txt": b"evil"}), "../evil.txt"),
        "tar-dotdot": (make_tar([("ok.txt", b"ok"), ("sub/../../evil.txt", b"evil")]), "sub/../../evil.txt"),
        "zip-absolute": (make_zip({"ok.txt": b"ok", outside: b"evil"}), outside),
        "tar-absolute": (make_tar([("ok.txt", b"ok"), (outside, b"evil")]), outside),
        "tar-symlink-out": (make_tar([("ok.txt", b"ok"), tar_link("link", "../../")]), "link"),
        "tar-symlink-abs": (make_tar([("ok.txt", b"ok"), tar_link("link", str(tmp_path))]), "link"),
        # b -> "." is harmless, but "b/.." then means the target's parent: caught only by
        # following links while resolving, not by looking at the text alone.
        "tar-symlink-chain": (make_tar([tar_link("b", "."), tar_link("a", "b/..")]), "'a'"),
        "tar-write-through-link": (make_tar([tar_link("d", "sub"), ("d/x.txt", b"x")]), "d/x.txt"),
        "tar-hardlink-out": (
            make_tar([("ok.txt", b"ok"), tar_link("h", "../evil.txt", tarfile.LNKTYPE)]),
            "'h'",
        ),
        "tar-fifo": (make_tar([("ok.txt", b"ok"), tar_link("fifo", "", tarfile.FIFOTYPE)]), "fifo"),
        "tar-chardev": (make_tar([tar_link("dev", "", tarfile.CHRTYPE)]), "dev"),
        "zip-backslash": (make_zip({"..\\evil.txt": b"evil"}), "evil.txt"),
        "zip-drive": (make_zip({"C:/evil.txt": b"evil"}), "C:/evil.txt"),
    }


UNSAFE = [
    "zip-dotdot",
    "tar-dotdot",
    "zip-absolute",
    "tar-absolute",
    "tar-symlink-out",
    "tar-symlink-abs",
    "tar-symlink-chain",
    "tar-write-through-link",
    "tar-hardlink-out",
    "tar-fifo",
    "tar-chardev",
    "zip-backslash",
    "zip-drive",
]


@pytest.mark.parametrize("case", UNSAFE)
def test_extract_archive_refuses_unsafe_members(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    archive = tmp_path / "bad.archive"
    blob, offender = _unsafe_archives(tmp_path)[case]
    archive.write_bytes(blob)
    target = work / "t"
    with pytest.raises(DownloadError) as err:
        extract_archive(archive, target)
    message = str(err.value)
    assert str(archive) in message and offender in message and "refusing" in message
    assert all_paths(work) == []  # not even the target folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.archive", "work"]


@pytest.mark.parametrize("case", ["zip-dotdot", "zip-absolute", "tar-symlink-out"])
def test_fetch_and_extract_refuses_unsafe_archive(server, tmp_path, case):
    blob, _ = _unsafe_archives(tmp_path)[case]
    server.routes["/bad.tgz"] = blob
    with pytest.raises(DownloadError, match="bad.tgz"):
        fetch_and_extract(server.url("/bad.tgz"), tmp_path / "t", progress=False)
    assert all_paths(tmp_path) == []  # nothing inside or outside the target, archive gone


def test_archive_carrying_the_marker_is_refused(server, tmp_path):
    server.routes["/m.zip"] = make_zip({".sernoise-complete": b"{}", "a.txt": b"a"})
    with pytest.raises(DownloadError, match="marker"):
        fetch_and_extract(server.url("/m.zip"), tmp_path / "t", progress=False)
    assert all_paths(tmp_path) == []


# --------------------------------------------------------------------------- extract_archive


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_extract_archive_tar_flavours_with_safe_links(tmp_path, mode):
    blob = make_tar(
        [
            ("pkg/data/a.txt", b"a"),
            tar_link("pkg/alias.txt", "data/a.txt"),
            tar_link("pkg/same.txt", "pkg/data/a.txt", tarfile.LNKTYPE),
            tar_link("pkg/dir", "data"),
        ],
        mode,
    )
    archive = tmp_path / "archive.bin"  # name says nothing: detection is by content
    archive.write_bytes(blob)
    files = extract_archive(archive, tmp_path / "t")
    rels = [str(p.relative_to(tmp_path / "t")) for p in files]
    assert rels == ["pkg/alias.txt", "pkg/data/a.txt", "pkg/dir", "pkg/same.txt"]
    assert (tmp_path / "t" / "pkg" / "alias.txt").is_symlink()
    assert (tmp_path / "t" / "pkg" / "same.txt").read_bytes() == b"a"


def test_extract_archive_merges_into_existing_target(tmp_path):
    target = tmp_path / "t"
    (target / "corpus").mkdir(parents=True)
    (target / "keep.txt").write_bytes(b"keep")
    (target / "corpus" / "a.txt").write_bytes(b"old")
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip(FILES))
    files = extract_archive(archive, target)
    assert len(files) == len(FILES)
    assert (target / "keep.txt").read_bytes() == b"keep"
    assert (target / "corpus" / "a.txt").read_bytes() == FILES["corpus/a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "t"]


def test_extract_archive_rejects_non_archives(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not an archive at all" * 30)
    with pytest.raises(DownloadError, match="junk.zip"):
        extract_archive(junk, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_extract_archive_corrupt_zip_names_archive(tmp_path):
    blob = bytearray(make_zip({"a.bin": b"q" * 5000}))
    blob[60:70] = b"\xff" * 10  # damage the compressed stream, keep the directory intact
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(blob))
    with pytest.raises(DownloadError, match="bad.zip"):
        extract_archive(bad, tmp_path / "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]
