"""Shared pytest fixtures.

Real audio comes from ``../shared/data`` (see its README); tests that need it skip with a
clear message when that folder is absent.  Everything else is synthesised by the tests.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "tests"))
# the shared assertions of the workflow tests: detailed failure messages, as in a test module
pytest.register_assert_rewrite("workflow_helpers")
# fixtures shared by several test modules (the tiny random wav2vec2: E-DNN and attack tests)
pytest_plugins = ["fixtures.tiny_wav2vec2"]

SHARED_DATA = Path(os.environ.get("SERNOISE_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
RAVDESS_ROOT = SHARED_DATA / "ravdess" / "Audio_Speech_Actors_01-24"
NOISE_ROOT = SHARED_DATA / "noise"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (expected ../shared/data beside the repository)")
    return path


def pytest_configure(config):
    """numba's on-disk cache is not safe when two processes compile the same cached function at
    once (numba/numba#10128: the index and the code files get mixed up, and every later call
    segfaults; seen here after two parallel jobs had imported librosa, whose gufuncs compile and
    cache at import). Each xdist worker therefore gets a numba cache folder of its own, set here,
    before the test modules (and numba) are imported; a NUMBA_CACHE_DIR of the user's is kept as
    the parent."""
    if "numba" in sys.modules:  # too late to move its cache: say so rather than race silently
        warnings.warn("numba was imported before tests/conftest.py could give each worker its own "
                      "NUMBA_CACHE_DIR; parallel workers share its cache", stacklevel=1)
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    parent = os.environ.get("SERNOISE_NUMBA_CACHE_PARENT") or os.environ.get("NUMBA_CACHE_DIR") \
        or str(REPO / ".pytest_cache" / "numba")
    os.environ["SERNOISE_NUMBA_CACHE_PARENT"] = parent  # a nested pytest keeps the same parent
    os.environ["NUMBA_CACHE_DIR"] = str(Path(parent) / worker)


@pytest.fixture(scope="session", autouse=True)
def _sernoise_cache(tmp_path_factory):
    """The fast DNSMOS caches its split model (sernoise.dnsmos_fast.cache_dir); tests keep it in a
    temporary folder instead of ~/.cache/sernoise, unless SERNOISE_CACHE_DIR is set."""
    if "SERNOISE_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["SERNOISE_CACHE_DIR"] = str(tmp_path_factory.mktemp("sernoise_cache"))
    yield
    os.environ.pop("SERNOISE_CACHE_DIR", None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def ravdess_root() -> Path:
    return _require(RAVDESS_ROOT)


@pytest.fixture(scope="session")
def noise_root() -> Path:
    return _require(NOISE_ROOT)


@pytest.fixture(scope="session")
def iemocap_root(tmp_path_factory) -> Path:
    """A synthetic IEMOCAP_full_release tree with espeak-ng speech, built once per test session.

    ``iemocap_root.parent / "fixture_truth.json"`` holds the exact word boundaries and labels.
    """
    from fixtures.iemocap_fixture import make_iemocap_fixture

    return make_iemocap_fixture(tmp_path_factory.mktemp("iemocap"))
