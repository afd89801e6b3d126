"""Pre-trained backbones: resolution from config, the tiny random wav2vec2, and the download path
(sernoise.pretrained.fetch_hub_model and rule fetch_pretrained) against a fake Hugging Face Hub
served on 127.0.0.1: the few endpoints huggingface_hub calls (model info, tree listing, file
resolve with HEAD and GET).  Nothing reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sernoise.pretrained import (
    READY,
    TINY_LABEL,
    PretrainedError,
    backbone_fingerprint,
    fetch_hub_model,
    folder_name,
    make_tiny_wav2vec2,
    resolve_backbone,
    select_files,
)

REPO_ID = "sernoise-test/tiny-wav2vec2"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "tiny-random-wav2vec2"
    make_tiny_wav2vec2(folder, seed=3)
    return folder


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """One model repo served the way the Hub serves it; ``mode``: ok | corrupt | cut."""

    LFS = {"model.safetensors", "pytorch_model.bin"}

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.mode = "ok"
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._serve(self, body=False)

            def do_GET(self):
                hub._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _entry(self, name: str) -> dict:
        data = self.files[name]
        entry = {"type": "file", "path": name, "size": len(data), "oid": _git_sha1(data)}
        if name in self.LFS:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _json(self, handler, payload, body):
        data = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _serve(self, handler, body: bool):
        path = handler.path.split("?")[0]
        self.requests.append(f"{handler.command} {path}")
        owner, name = REPO_ID.split("/")
        if re.fullmatch(rf"/api/models/{owner}/{name}(/revision/[^/]+)?", path):
            return self._json(handler, {"id": REPO_ID, "sha": COMMIT, "private": False,
                                        "siblings": [{"rfilename": f} for f in sorted(self.files)]}, body)
        if path == f"/api/models/{owner}/{name}/tree/{COMMIT}":
            return self._json(handler, [self._entry(f) for f in sorted(self.files)], body)
        match = re.fullmatch(rf"/{owner}/{name}/resolve/(?:{COMMIT}|main)/(.+)", path)
        if match and match.group(1) in self.files:
            filename = match.group(1)
            data = self.files[filename]
            entry = self._entry(filename)
            etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
            if self.mode == "corrupt" and filename == "model.safetensors":
                data = data[:-16] + bytes(16)
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("ETag", f'"{etag}"')
            handler.send_header("X-Repo-Commit", COMMIT)
            handler.end_headers()
            if body:
                if self.mode == "cut" and filename == "model.safetensors":
                    handler.wfile.write(data[: len(data) // 2])
                    handler.wfile.flush()
                    handler.close_connection = True
                    return
                handler.wfile.write(data)
            return
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.send_header("X-Error-Code", "EntryNotFound")
        handler.end_headers()


@pytest.fixture()
def fake_hub(tiny_folder):
    files = {name: (tiny_folder / name).read_bytes()
             for name in ("config.json", "preprocessor_config.json", "model.safetensors")}
    files["pytorch_model.bin"] = b"\0" * 1000  # a second weights format: must not be downloaded
    files["README.md"] = b"# tiny\n"
    hub = FakeHub(files)
    yield hub
    hub.close()


@pytest.fixture()
def hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return tmp_path / "hf_home"


# ------------------------------------------------------------------------------ resolution


def test_folder_name():
    assert folder_name("facebook/wav2vec2-base") == "facebook--wav2vec2-base"
    for bad in ("wav2vec2-base", "a/b/c", "../x", "a--b/c", ""):
        with pytest.raises(PretrainedError):
            folder_name(bad)


def test_resolve_hub_local_and_tiny(tmp_path, tiny_folder):
    pretrained = {"wav2vec2_base": "facebook/wav2vec2-base", "wav2vec2_robust": "facebook/wav2vec2-large-robust",
                  "local": {}, "revisions": {"wav2vec2_base": "main"}, "missing": "download"}
    hub = resolve_backbone(pretrained, "wav2vec2_base", base_dir=tmp_path)
    assert (hub.kind, hub.folder, hub.label) == ("hub", "resources/pretrained/facebook--wav2vec2-base", "")
    assert hub.ready == "resources/pretrained/facebook--wav2vec2-base/ready.json" and hub.revision == "main"

    tiny = resolve_backbone({**pretrained, "missing": "tiny_random"}, "wav2vec2_base", base_dir=tmp_path)
    assert (tiny.kind, tiny.folder, tiny.label) == ("tiny_random", "resources/pretrained/tiny-random-wav2vec2", TINY_LABEL)
    assert tiny.repo_id == "facebook/wav2vec2-base"
    # once the real weights are there, tiny_random no longer stands in
    ready = tmp_path / "resources/pretrained/facebook--wav2vec2-base" / READY
    ready.parent.mkdir(parents=True)
    ready.write_text("{}")
    assert resolve_backbone({**pretrained, "missing": "tiny_random"}, "wav2vec2_base", base_dir=tmp_path).kind == "hub"

    local = resolve_backbone({**pretrained, "local": {"wav2vec2_robust": str(tiny_folder)}}, "wav2vec2_robust")
    assert (local.kind, local.folder, local.ready) == ("local", str(tiny_folder), str(tiny_folder / "config.json"))
    with pytest.raises(PretrainedError, match="pretrained.local.wav2vec2_base"):
        resolve_backbone({**pretrained, "local": {"wav2vec2_base": str(tmp_path / "nowhere")}}, "wav2vec2_base")
    with pytest.raises(PretrainedError, match="pretrained.wav2vec2_base"):
        resolve_backbone({**pretrained, "wav2vec2_base": "not-a-repo"}, "wav2vec2_base")


def test_select_files_prefers_safetensors():
    listing = ["README.md", "config.json", "preprocessor_config.json", "pytorch_model.bin", "model.safetensors",
               "tf_model.h5", "sub/model.safetensors"]
    assert select_files(listing) == ["config.json", "preprocessor_config.json", "model.safetensors"]
    assert select_files(["config.json", "pytorch_model.bin"]) == ["config.json", "pytorch_model.bin"]
    with pytest.raises(PretrainedError, match="no model.safetensors"):
        select_files(["config.json", "tf_model.h5"])
    with pytest.raises(PretrainedError, match="config.json"):
        select_files(["model.safetensors"])


def test_tiny_wav2vec2_is_deterministic(tmp_path, tiny_folder):
    again = tmp_path / "again"
    marker = make_tiny_wav2vec2(again, seed=3)
    assert backbone_fingerprint(again) == backbone_fingerprint(tiny_folder)
    assert marker["kind"] == "tiny_random" and marker["label"] == TINY_LABEL and marker["parameters"] > 0
    assert json.loads((again / READY).read_text())["seed"] == 3
    make_tiny_wav2vec2(tmp_path / "other", seed=4)
    assert backbone_fingerprint(tmp_path / "other") != backbone_fingerprint(tiny_folder)


# ------------------------------------------------------------------------------ download


def test_fetch_downloads_verifies_and_marks(tmp_path, fake_hub, hf_home, tiny_folder):
    folder = tmp_path / "resources/pretrained" / folder_name(REPO_ID)
    marker = fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False)
    assert marker["commit"] == COMMIT and marker["repo_id"] == REPO_ID
    assert sorted(marker["files"]) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert marker["files"]["model.safetensors"]["sha256"] == hashlib.sha256(
        (tiny_folder / "model.safetensors").read_bytes()).hexdigest()
    assert not (folder / "pytorch_model.bin").exists() and not (folder / "README.md").exists()
    assert json.loads((folder / READY).read_text()) == marker
    assert backbone_fingerprint(folder) == backbone_fingerprint(tiny_folder)
    assert not any(r.endswith("pytorch_model.bin") for r in fake_hub.requests)
    # complete: a second call sends no request
    before = len(fake_hub.requests)
    assert fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False) == marker
    assert len(fake_hub.requests) == before


def test_fetched_folder_loads_offline(tmp_path, fake_hub, hf_home):
    import torch

    from sernoise.models.ednn import EDNN, EDNNConfig

    folder = tmp_path / folder_name(REPO_ID)
    fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False)
    fake_hub.close()  # nothing is served any more
    model = EDNN(EDNNConfig(dense_units=8), folder, save_path=tmp_path / "cache").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 8000), torch.ones(1)).shape == (1, 3)


def test_checksum_mismatch_leaves_no_marker(tmp_path, fake_hub, hf_home):
    fake_hub.mode = "corrupt"
    folder = tmp_path / folder_name(REPO_ID)
    with pytest.raises(PretrainedError, match="sha256|model.safetensors"):
        fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False)
    assert not (folder / READY).exists()
    fake_hub.mode = "ok"  # the next run repairs the folder
    fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False)
    assert (folder / READY).is_file()


def test_cut_download_leaves_no_marker(tmp_path, fake_hub, hf_home):
    fake_hub.mode = "cut"
    folder = tmp_path / folder_name(REPO_ID)
    with pytest.raises(PretrainedError):
        fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False)
    assert not (folder / READY).exists()
    fake_hub.mode = "ok"
    fetch_hub_model(REPO_ID, folder, endpoint=fake_hub.url, progress=False)
    assert (folder / READY).is_file()


def test_unknown_repo_is_a_clear_error(tmp_path, fake_hub, hf_home):
    with pytest.raises(PretrainedError, match="sernoise-test/missing"):
        fetch_hub_model("sernoise-test/missing", tmp_path / "x", endpoint=fake_hub.url, progress=False)


@pytest.mark.workflow
def test_fetch_rule_against_local_hub(tmp_path, fake_hub, hf_home, monkeypatch):
    """Rule fetch_pretrained (target `pretrained`) with HF_ENDPOINT pointing at the fake Hub."""
    from workflow_helpers import run_snakemake

    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    overlay = {"pretrained": {"wav2vec2_base": REPO_ID, "local": {"wav2vec2_robust": "nowhere-needed"}},
               "training": {"models": ["tdnn", "ednn"], "sweep": {"fractions": []}}}
    # a local folder (here for the robust key) is used as is, never downloaded
    (tmp_path / "nowhere-needed").mkdir()
    (tmp_path / "nowhere-needed/config.json").write_text("{}")
    run_snakemake(tmp_path, overlay, "pretrained")
    folder = tmp_path / "resources/pretrained" / folder_name(REPO_ID)
    marker = json.loads((folder / READY).read_text())
    assert marker["commit"] == COMMIT and marker["endpoint"] == fake_hub.url
    log = (tmp_path / f"logs/pretrained/fetch_pretrained-{folder_name(REPO_ID)}.log").read_text()
    assert "verified 3 file(s)" in log
    assert [r for r in fake_hub.requests if "/resolve/" in r and r.startswith("GET")] and \
        not any(r.endswith("pytorch_model.bin") for r in fake_hub.requests)
    # complete: nothing to do on the next run
    proc = run_snakemake(tmp_path, overlay, "-n", "pretrained")
    assert "Nothing to be done" in proc.stdout + proc.stderr
