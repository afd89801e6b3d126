"""The manifest schema (sernoise.corpora.manifest): binning, frame building, CSV round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sernoise.corpora.manifest import (
    DEFAULT_BIN_EDGES,
    MANIFEST_COLUMNS,
    ManifestError,
    bin_value,
    read_manifest,
    to_manifest_frame,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, "low"),
        (1.0, "low"),
        (2.75, "low"),
        (2.7501, "mid"),
        (3.0, "mid"),
        (3.25, "mid"),
        (3.2501, "high"),
        (5, "high"),
        (float("nan"), ""),
        (np.nan, ""),
        (None, ""),
    ],
)
def test_bin_value_paper_edges(value, expected):
    assert bin_value(value) == expected


def test_bin_value_numpy_float():
    assert bin_value(np.float64(3.25)) == "mid"
    assert bin_value(np.float64("nan")) == ""


def test_bin_value_custom_edges():
    assert DEFAULT_BIN_EDGES == (2.75, 3.25)
    assert bin_value(2.0, (2.0, 4.0)) == "low"
    assert bin_value(2.01, (2.0, 4.0)) == "mid"
    assert bin_value(4.0, (2.0, 4.0)) == "mid"
    assert bin_value(4.01, (2.0, 4.0)) == "high"


def test_to_manifest_frame_columns_and_sorting():
    rows = [
        {"utt_id": "c", "speaker": "s2", "emotion": "sad"},
        {"utt_id": "a", "speaker": "s1", "activation": 2.0},
        {"utt_id": "b", "speaker": "s1"},
    ]
    frame = to_manifest_frame(rows)
    assert list(frame.columns) == MANIFEST_COLUMNS
    assert frame["utt_id"].tolist() == ["a", "b", "c"]
    assert list(frame.index) == [0, 1, 2]
    assert frame.loc[0, "activation"] == 2.0
    assert frame.loc[2, "emotion"] == "sad"
    assert frame.loc[2, "speaker"] == "s2"
    assert pd.isna(frame.loc[0, "emotion"])  # absent columns filled empty


def test_to_manifest_frame_sorting_is_independent_of_input_order():
    rows = [{"utt_id": u, "speaker": u.upper()} for u in ["x2", "x10", "x1", "a"]]
    one = to_manifest_frame(rows)
    two = to_manifest_frame(list(reversed(rows)))
    pd.testing.assert_frame_equal(one, two)
    assert one["utt_id"].tolist() == ["a", "x1", "x10", "x2"]


def test_to_manifest_frame_duplicate_ids():
    rows = [{"utt_id": "a"}, {"utt_id": "b"}, {"utt_id": "a"}]
    with pytest.raises(ManifestError, match="duplicate utt_id.*'a'"):
        to_manifest_frame(rows)


def test_to_manifest_frame_unknown_column():
    rows = [{"utt_id": "a"}, {"utt_id": "b", "speakr": "x"}]
    with pytest.raises(ManifestError, match=r"unknown manifest column.*speakr.*'b'"):
        to_manifest_frame(rows)


@pytest.mark.parametrize("bad", [{"speaker": "s"}, {"utt_id": ""}, {"utt_id": None}])
def test_to_manifest_frame_missing_utt_id(bad):
    with pytest.raises(ManifestError, match="without utt_id"):
        to_manifest_frame([{"utt_id": "a"}, bad])


def test_read_manifest_round_trip(tmp_path):
    rows = [
        {
            "utt_id": "03-01-01-01-01-01-01",
            "path": "/data/Actor_01/03-01-01-01-01-01-01.wav",
            "speaker": "007",
            "gender": "F",
            "group": "01",
            "duration": 3.5,
            "sample_rate": 16000,
            "emotion": "neutral",
            "activation": float("nan"),
            "valence": 2.5,
            "dominance": float("nan"),
            "activation_bin": "",
            "valence_bin": "low",
            "transcript": "NA",
            "alignment": "",
        },
        {"utt_id": "1e5", "speaker": "0", "group": "1.0", "emotion": "null", "transcript": "None"},
    ]
    frame = to_manifest_frame(rows)
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)

    back = read_manifest(str(path))
    assert list(back.columns) == MANIFEST_COLUMNS
    assert len(back) == 2
    by_id = back.set_index("utt_id")
    assert list(by_id.index) == ["03-01-01-01-01-01-01", "1e5"]  # ids stay strings, not numbers
    first = by_id.loc["03-01-01-01-01-01-01"]
    assert first["speaker"] == "007"
    assert first["group"] == "01"
    assert first["transcript"] == "NA"  # no default NA markers for text columns
    assert first["activation_bin"] == ""
    assert first["alignment"] == ""
    assert first["valence_bin"] == "low"
    assert first["valence"] == 2.5
    assert first["duration"] == 3.5
    assert first["sample_rate"] == 16000
    assert math.isnan(first["activation"])
    assert math.isnan(first["dominance"])
    second = by_id.loc["1e5"]
    assert second["speaker"] == "0"
    assert second["group"] == "1.0"
    assert second["emotion"] == "null"
    assert second["transcript"] == "None"
    assert second["gender"] == ""  # empty text cells come back as '' (not NaN)
    assert math.isnan(second["duration"])
    for column in ("utt_id", "speaker", "group", "emotion", "transcript"):
        assert all(isinstance(v, str) for v in back[column]), column


def test_read_manifest_missing_column(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame([{c: "x" for c in MANIFEST_COLUMNS if c != "group"}]).to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"bad\.csv.*'group'"):
        read_manifest(str(path))


def test_read_manifest_orders_columns(tmp_path):
    path = tmp_path / "shuffled.csv"
    frame = to_manifest_frame([{"utt_id": "a", "speaker": "s"}])
    frame[list(reversed(MANIFEST_COLUMNS))].to_csv(path, index=False)
    assert list(read_manifest(str(path)).columns) == MANIFEST_COLUMNS


def test_bin_value_numpy_nan_is_empty():
    import numpy as np

    assert bin_value(np.float32("nan")) == ""
    assert bin_value(np.float64("nan")) == ""
