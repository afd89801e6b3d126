"""Pre-trained wav2vec2 weights for the E-DNN (paper §7.3, §7.4.2; SPEC §7): where they live, how they
are fetched and checked, and the tiny random stand-in of the demo.

Config (``pretrained:``)::

    wav2vec2_base:   facebook/wav2vec2-base           # E-DNN    (pre-trained, not ASR-fine-tuned)
    wav2vec2_robust: facebook/wav2vec2-large-robust   # E-DNN-NR (paper §7.4.2)
    revisions: {}          # key -> branch, tag or commit (default: main; the commit used is recorded)
    local: {}              # key -> a folder holding config.json + weights, used as is (never downloaded)
    missing: download      # download | tiny_random: what a run does when the weights are not here yet

Where a backbone comes from (:func:`resolve_backbone`):

* ``local`` entry: that folder, as is.
* otherwise ``resources/pretrained/<owner>--<name>/`` (the repo id with ``/`` -> ``--``), filled by
  the rule ``fetch_pretrained`` (:func:`fetch_hub_model`): the repo's file list at the resolved
  commit is read from the Hub, only ``config.json``, ``preprocessor_config.json`` and the weights
  (``model.safetensors``, else ``pytorch_model.bin``) are downloaded with
  ``huggingface_hub.snapshot_download`` (progress bars on the job's log), and every file is
  checked against the Hub's size and checksum (sha256 for LFS files, the git blob hash for the
  others).  Only then is the completion marker ``ready.json`` written; a cut download leaves no
  marker and is resumed by the next run.
* with ``missing: tiny_random`` (the demo overlays) and no marker yet: the tiny randomly
  initialised wav2vec2 made by the rule ``make_tiny_wav2vec2``
  (``resources/pretrained/tiny-random-wav2vec2/``, :func:`make_tiny_wav2vec2`).  Its models are
  labelled "tiny random wav2vec2" in hparams.yaml, versions.yaml and the tables; their numbers say
  nothing about wav2vec2.

Everything after the download loads from the folder only (``local_files_only``, ``HF_HUB_OFFLINE=1``
in the rule scripts).  :func:`backbone_fingerprint` (sha256 over config and weights) is recorded
with every trained model and checked when it predicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from fnmatch import fnmatch
from pathlib import Path

PRETRAINED_ROOT = "resources/pretrained"
READY = "ready.json"
TINY_NAME = "tiny-random-wav2vec2"
TINY_LABEL = "tiny random wav2vec2"
MISSING_MODES = ("download", "tiny_random")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Files a wav2vec2 backbone needs; the weights are the first pattern group present in the repo.
CONFIG_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_PATTERNS = (("model.safetensors",), ("model-*-of-*.safetensors", "model.safetensors.index.json"),
                   ("pytorch_model.bin",), ("pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json"))
#: The tiny stand-in: a wav2vec2 with the real model's layout (CNN with a total stride of 320
#: samples -> 50 frames/s, transformer) and the size of a unit test; three non-overlapping CNN
#: layers (the real ones overlap; this is ~4x cheaper on a CPU).  LayerNorm in the CNN (as in
#: wav2vec2-large-robust), so padding never changes an utterance's output.
TINY_CONFIG = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(16, 32, 32), conv_kernel=(10, 8, 4), conv_stride=(10, 8, 4),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    feat_extract_norm="layer", do_stable_layer_norm=True, vocab_size=32,
)


class PretrainedError(RuntimeError):
    """Pre-trained weights cannot be resolved, fetched or verified; the message names the key or repo."""


@dataclass(frozen=True)
class Backbone:
    """Where one configured backbone is read from."""

    key: str                 # config key under pretrained: (wav2vec2_base, wav2vec2_robust)
    kind: str                # hub | local | tiny_random
    folder: str              # the folder given to the wav2vec2 wrapper as source
    ready: str               # the file a job takes as input (ready.json, or config.json of a local folder)
    repo_id: str | None      # the configured Hub repo (also for tiny_random: what it stands in for)
    revision: str | None
    label: str               # "" for the configured weights, TINY_LABEL for the stand-in

    def as_dict(self) -> dict:
        return asdict(self)


def folder_name(repo_id: str) -> str:
    """``facebook/wav2vec2-base`` -> ``facebook--wav2vec2-base`` (the folder under resources/pretrained)."""
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or "--" in repo_id:
        raise PretrainedError(f"{repo_id!r} is not a Hugging Face repo id of the form owner/name")
    return repo_id.replace("/", "--")


def resolve_backbone(pretrained: dict, key: str, *, root: str = PRETRAINED_ROOT, base_dir: str | Path = ".") -> Backbone:
    """The backbone of config key ``key`` (see the module doc).  ``base_dir``: where relative paths are checked."""
    base_dir = Path(base_dir)
    local = (pretrained.get("local") or {}).get(key)
    repo_id = pretrained.get(key)
    revision = (pretrained.get("revisions") or {}).get(key)
    if local:
        folder = Path(local)
        if not (folder if folder.is_absolute() else base_dir / folder).joinpath("config.json").is_file():
            raise PretrainedError(f"config key pretrained.local.{key}: {local} has no config.json (a Hugging Face "
                                  "model folder with config.json, preprocessor_config.json and weights is expected)")
        return Backbone(key, "local", str(folder), str(folder / "config.json"), repo_id, revision, "")
    if not repo_id:
        raise PretrainedError(f"config key pretrained.{key}: no Hugging Face repo id and no pretrained.local.{key}")
    try:
        folder = f"{root}/{folder_name(repo_id)}"
    except PretrainedError as error:
        raise PretrainedError(f"config key pretrained.{key}: {error}") from None
    mode = pretrained.get("missing", "download")
    if mode not in MISSING_MODES:
        raise PretrainedError(f"config key pretrained.missing: {mode!r}; expected one of {MISSING_MODES}")
    if mode == "tiny_random" and not (base_dir / folder / READY).is_file():
        tiny = f"{root}/{TINY_NAME}"
        return Backbone(key, "tiny_random", tiny, f"{tiny}/{READY}", repo_id, revision, TINY_LABEL)
    return Backbone(key, "hub", folder, f"{folder}/{READY}", repo_id, revision, "")


def read_ready(folder) -> dict | None:
    """The completion marker of a folder (None when absent or unreadable)."""
    path = Path(folder) / READY
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ checksums


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path) -> str:
    """The git object id of a file's content (what the Hub lists for files not stored in LFS)."""
    size = os.path.getsize(path)
    digest = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_files(folder) -> list[Path]:
    folder = Path(folder)
    found = []
    for group in WEIGHT_PATTERNS:
        found = sorted(p for p in folder.iterdir() if p.is_file() and any(fnmatch(p.name, g) for g in group))
        if found:
            return found
    raise PretrainedError(f"{folder}: no weights (model.safetensors or pytorch_model.bin)")


def backbone_fingerprint(folder) -> str:
    """sha256 over config.json and the weight files (name, size, sha256 of each): recorded with a model."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in [folder / "config.json", *weight_files(folder)]:
        if not path.is_file():
            raise PretrainedError(f"{folder}: missing {path.name}")
        digest.update(f"{path.name}\0{path.stat().st_size}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------ download


def select_files(paths) -> list[str]:
    """The files of a repo listing that a wav2vec2 backbone needs (config, feature extractor, one weights format)."""
    paths = sorted(set(paths))
    if "config.json" not in paths:
        raise PretrainedError("the repository has no config.json")
    chosen = [p for p in CONFIG_FILES if p in paths]
    for group in WEIGHT_PATTERNS:
        weights = [p for p in paths if "/" not in p and any(fnmatch(p, g) for g in group)]
        if weights:
            return chosen + weights
    raise PretrainedError("the repository has no model.safetensors or pytorch_model.bin")


def _discard(folder: Path, name: str) -> None:
    """Remove a bad file and huggingface_hub's download record of it, so that the next run downloads it again."""
    (folder / name).unlink(missing_ok=True)
    (folder / ".cache" / "huggingface" / "download" / f"{name}.metadata").unlink(missing_ok=True)


# listing key -> (its name in messages, how to compute it), in order of preference
_CHECKSUMS = {"sha256": ("sha256", sha256_file), "git_sha1": ("git blob id", git_blob_sha1)}


def verify_files(folder, entries: dict) -> dict:
    """Check each downloaded file against the Hub listing; {path: {size, sha256|git_sha1}} of the verified files.

    A file that fails is removed (with huggingface_hub's record of it) before the error is raised.
    """
    folder = Path(folder)
    checked, problems = {}, []
    for name, entry in sorted(entries.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing after download")
            continue
        size = path.stat().st_size
        key = next((k for k in _CHECKSUMS if entry.get(k)), None)  # sha256 (LFS files), else the git blob id
        if size != entry["size"]:
            problems.append(f"{path}: {size} bytes, the Hub lists {entry['size']} (incomplete download?)")
        elif key is None:
            problems.append(f"{name}: the Hub listing gives no checksum")
        else:
            what, digest_of = _CHECKSUMS[key]
            actual = digest_of(path)
            if actual == entry[key]:
                checked[name] = {"size": size, key: actual}
            else:
                problems.append(f"{path}: {what} {actual} does not match the Hub's {entry[key]}")
        if name not in checked:
            _discard(folder, name)
    if problems:
        raise PretrainedError("downloaded files failed verification (removed; the next run downloads them "
                              "again): " + "; ".join(problems))
    return checked


def fetch_hub_model(repo_id: str, folder, *, revision: str | None = None, endpoint: str | None = None,
                    progress: bool = True, log=None) -> dict:
    """Download what a wav2vec2 backbone needs from ``repo_id`` into ``folder``, verify it, write ready.json.

    A folder whose marker already names the same repo (and revision, when one is configured) is
    left alone without any request.  ``endpoint``: the Hub's address (default: ``HF_ENDPOINT`` or
    huggingface.co).  Returns the marker's content.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.hf_api import RepoFile

    say = log or (lambda *args: None)
    folder = Path(folder)
    ready = read_ready(folder)
    if ready and ready.get("repo_id") == repo_id and revision in (None, ready.get("revision"), ready.get("commit")):
        say("%s already complete (commit %s)", folder, ready.get("commit"))
        return ready
    folder_name(repo_id)  # checks the id
    (folder / READY).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    api = HfApi(endpoint=endpoint)
    try:
        commit = api.model_info(repo_id, revision=revision).sha
        listing = {f.path: f for f in api.list_repo_tree(repo_id, revision=commit, recursive=True)
                   if isinstance(f, RepoFile)}
    except Exception as error:  # network, 404, auth: one clear line naming the repo
        raise PretrainedError(f"cannot list {repo_id}@{revision or 'main'} on the Hub: "
                              f"{type(error).__name__}: {error}") from error
    try:
        files = select_files(listing)
    except PretrainedError as error:
        raise PretrainedError(f"{repo_id}@{commit}: {error}") from None
    entries = {
        name: {"size": int(listing[name].size),
               "sha256": listing[name].lfs.sha256 if listing[name].lfs is not None else None,
               "git_sha1": listing[name].blob_id}
        for name in files
    }
    total = sum(e["size"] for e in entries.values())
    say("downloading %s@%s: %s (%.1f MB) into %s", repo_id, commit, ", ".join(files), total / 1e6, folder)
    try:
        snapshot_download(repo_id, revision=commit, local_dir=folder, allow_patterns=files, endpoint=endpoint,
                          max_workers=4, **({} if progress else {"tqdm_class": _SilentTqdm}))
    except Exception as error:
        raise PretrainedError(f"download of {repo_id}@{commit} failed: {type(error).__name__}: {error}") from error
    checked = verify_files(folder, entries)
    marker = {"kind": "hub", "repo_id": repo_id, "revision": revision, "commit": commit,
              "endpoint": endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co", "files": checked}
    _write_json_atomic(folder / READY, marker)
    say("verified %d file(s); wrote %s", len(checked), folder / READY)
    return marker


class _SilentTqdm:
    """A tqdm stand-in that shows nothing (progress=False)."""

    def __init__(self, *args, **kwargs):
        self.n = 0
        self.total = kwargs.get("total")

    def update(self, n=1):
        self.n += n

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        return iter(())


# ------------------------------------------------------------------------------ tiny stand-in


def make_tiny_wav2vec2(folder, *, seed: int = 0, **overrides) -> dict:
    """Save a randomly initialised tiny wav2vec2 (``TINY_CONFIG`` updated by ``overrides``) as a Hugging Face
    model folder (config.json, preprocessor_config.json, model.safetensors) and its ready.json."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    settings = {**TINY_CONFIG, **overrides}
    config = Wav2Vec2Config(**settings)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(seed))
        model = Wav2Vec2Model(config).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(tmp, safe_serialization=True)
    layer_norm = config.feat_extract_norm == "layer"
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=layer_norm).save_pretrained(tmp)
    marker = {"kind": "tiny_random", "label": TINY_LABEL, "seed": int(seed),
              "config": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
              "parameters": int(sum(p.numel() for p in model.parameters()))}
    _write_json_atomic(tmp / READY, marker)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return marker
