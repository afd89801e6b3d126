"""Rules align_shard / merge_alignments end to end: a generic corpus of real RAVDESS clips with
transcripts (one with a word the dictionary lacks) -> manifest alignment column, failures.csv, and
the run stopped past align.max_failure_fraction with the failures in the log."""

from __future__ import annotations

import pandas as pd
import pytest

from sernoise.alignments import is_speech, read_words
from sernoise.corpora.manifest import read_manifest
from workflow_helpers import run_snakemake

pytestmark = pytest.mark.workflow

CLIPS = {  # utt_id -> (RAVDESS file of actor 03/04, transcript)
    "a": ("Actor_03/03-01-01-01-01-01-03.wav", "Kids are talking by the door."),
    "b": ("Actor_04/03-01-01-01-02-01-04.wav", "Dogs are sitting by the door."),
    "c": ("Actor_03/03-01-03-01-02-02-03.wav", "Dogs are sitting by the door."),
    "oov": ("Actor_04/03-01-03-01-01-02-04.wav", "Kids are zzxqvw by the door."),
}


def _corpus(root, ravdess_root):
    rows = [{"utt_id": u, "path": str(ravdess_root / f), "speaker": f[:8], "group": f"g{i % 3 + 1}",
             "emotion": "neutral", "activation": 3.0, "valence": 3.0, "transcript": text}
            for i, (u, (f, text)) in enumerate(CLIPS.items())]
    root.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def _overlay(root, max_failure_fraction):
    return {"corpus": "mine", "corpora": {"mine": {"adapter": "generic", "root": str(root), "shards": 2}},
            "folds": {"n_folds": 3}, "align": {"max_failure_fraction": max_failure_fraction}}


@pytest.mark.shared_data
def test_alignment_rules_fill_the_manifest_and_list_failures(tmp_path, ravdess_root):
    _corpus(tmp_path / "corpus", ravdess_root)
    run = tmp_path / "run"
    run_snakemake(run, _overlay(tmp_path / "corpus", 0.5), "results/mine/manifest.csv")
    manifest = read_manifest(run / "results/mine/manifest.csv").set_index("utt_id")
    assert manifest.at["oov", "alignment"] == ""
    for utt_id in ("a", "b", "c"):
        words = [w.token for w in read_words(run / manifest.at[utt_id, "alignment"]) if is_speech(w)]
        assert " ".join(words) == CLIPS[utt_id][1].lower().rstrip(".")
    failures = pd.read_csv(run / "results/mine/alignments/failures.csv")
    assert list(failures["utt_id"]) == ["oov"] and "zzxqvw" in failures["reason"].iloc[0]
    assert failures["path"].iloc[0].endswith(CLIPS["oov"][0])

    # 1 of 4 failed (25 %) is above 10 %: the run stops, the log says why and lists the failure.
    again = tmp_path / "again"
    proc = run_snakemake(again, _overlay(tmp_path / "corpus", 0.1), "results/mine/manifest.csv", check=False)
    assert proc.returncode != 0
    log = (again / "logs/mine/merge_alignments.log").read_text()
    assert "1 of 4 utterances failed to align" in log and "align.max_failure_fraction" in log
    assert "zzxqvw" in log
    assert not (again / "results/mine/manifest.csv").exists()
