"""The 4-class task of Latif et al. (config tasks.emotion4) on the label names of every corpus adapter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sernoise.config import load_config
from sernoise.corpora import iemocap, msp_improv, ravdess, scan_corpus, urdu
from sernoise.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("angry", "happy", "neutral", "sad")


@pytest.fixture(scope="module")
def emotion4():
    config = load_config([ROOT / "config.yaml"], ROOT / "schemas" / "config.schema.yaml")
    return get_task("emotion4", config)


def _classes(task, corpus, emotions) -> dict[str, str | None]:
    """emotion label -> class name given by the task (None: left out)."""
    manifest = pd.DataFrame({"utt_id": [f"u{i}" for i in range(len(emotions))], "emotion": list(emotions)})
    targets = task.targets(manifest, corpus)
    return {e: (task.labels[targets[u]] if u in targets else None) for u, e in zip(manifest["utt_id"], emotions)}


def test_classes_and_order(emotion4):
    assert emotion4.labels == CLASSES and emotion4.output_size == 4 and emotion4.chance == 0.25


def test_ravdess_vocabulary(emotion4):
    got = _classes(emotion4, "ravdess", ravdess.EMOTIONS.values())
    assert got == {"neutral": "neutral", "calm": None, "happy": "happy", "sad": "sad", "angry": "angry",
                   "fearful": None, "disgust": None, "surprised": None}  # calm is not neutral


def test_iemocap_vocabulary_merges_excited_into_happy(emotion4):
    got = _classes(emotion4, "iemocap", iemocap.EMOTION_CODES)
    assert {e: c for e, c in got.items() if c} == {"neu": "neutral", "ang": "angry", "sad": "sad", "hap": "happy",
                                                   "exc": "happy"}
    assert {e for e, c in got.items() if c is None} == {"fru", "sur", "fea", "dis", "oth", "xxx"}


def test_urdu_vocabulary(emotion4):
    got = _classes(emotion4, "urdu", [emotion for _, emotion in urdu.FOLDERS.values()])
    assert got == {c: c for c in CLASSES}


def test_msp_improv_vocabulary_excludes_other_and_no_agreement(emotion4):
    got = _classes(emotion4, "msp_improv", msp_improv.EMOTIONS.values())
    assert got == {"angry": "angry", "happy": "happy", "sad": "sad", "neutral": "neutral", "other": None,
                   "no_agreement": None}


def test_adapters_output_is_labelled(emotion4, tmp_path, shared_data):
    """End to end: the manifests the adapters write carry labels the task maps (not only the vocabularies)."""
    from test_msp_improv import UTTERANCES, make_msp_improv

    improv = scan_corpus("msp_improv", make_msp_improv(tmp_path))
    targets = emotion4.targets(improv, "msp_improv")
    assert len(targets) == sum(code in "AHSN" for code, *_ in UTTERANCES.values())
    urdu_root = shared_data / "urdu"
    if not urdu_root.is_dir():
        pytest.skip(f"URDU not found at {urdu_root}")
    manifest = scan_corpus("urdu", urdu_root)
    counts = pd.Series(emotion4.targets(manifest, "urdu")).map(dict(enumerate(CLASSES))).value_counts().to_dict()
    assert counts == {c: 100 for c in CLASSES}
