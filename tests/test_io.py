"""sernoise.io: the one column-checked CSV reader and the atomic CSV writer every module uses."""

from __future__ import annotations

import pandas as pd
import pytest

import subprocess
import sys

from sernoise.io import read_csv_checked, read_csv_text_columns, write_csv_atomic


class MyError(ValueError):
    pass


def test_read_csv_checked_returns_the_frame_with_read_csv_options(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("utt_id,status,x\n007,ok,\n")
    frame = read_csv_checked(path, ["utt_id", "status"], dtype=str, keep_default_na=False)
    assert frame.to_dict("records") == [{"utt_id": "007", "status": "ok", "x": ""}]


def test_a_missing_column_names_the_file_and_the_column(tmp_path):
    path = tmp_path / "params.csv"
    path.write_text("utt_id,note\nu1,\n")
    with pytest.raises(MyError, match=r"params\.csv: missing column\(s\) \['status', 'seed'\]"):
        read_csv_checked(path, ["utt_id", "status", "seed"], error=MyError)
    with pytest.raises(ValueError, match=r"params\.csv: missing manifest column\(s\) \['status'\]"):
        read_csv_checked(path, ["status"], what="manifest ")


BROKEN = [None, "", 'a,b\n"1,2\n']  # missing, empty, an unterminated quote
RAGGED = ["a,b\n1,2,3\n", "a,b\n1\n"]  # pandas reads these (an index column, NaN); the csv reader refuses them


@pytest.mark.parametrize("read, content", [(read_csv_checked, c) for c in BROKEN]
                         + [(read_csv_text_columns, c) for c in BROKEN + RAGGED])
def test_an_unreadable_file_names_the_file(tmp_path, read, content):
    path = tmp_path / "broken.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MyError, match=r"broken\.csv: cannot be read as CSV"):
        read(path, ["a"], error=MyError)


def test_the_csv_module_reader_gives_the_text_pandas_gives(tmp_path):
    frame = pd.DataFrame({
        "utt_id": ["007", "a,b", 'say "hi"', "é/ü", "NA", ""],
        "shard": ["s-000.h5", "", "x\ny", "nan", "None", "s-001.h5"],
        "duration": [1.5, 2.0, 0.25, 1e-3, 3.0, 4.0],
    })
    path = write_csv_atomic(frame, tmp_path / "index.csv")
    expected = read_csv_checked(path, ["utt_id", "shard"], dtype=str, keep_default_na=False)
    columns = read_csv_text_columns(path, ["shard", "utt_id"])
    assert list(columns) == ["shard", "utt_id"]
    assert columns["utt_id"] == expected["utt_id"].tolist() == frame["utt_id"].tolist()
    assert columns["shard"] == expected["shard"].tolist() == frame["shard"].tolist()
    with pytest.raises(MyError, match=r"index\.csv: missing manifest column\(s\) \['status'\]"):
        read_csv_text_columns(path, ["utt_id", "status"], error=MyError, what="manifest ")
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffutt_id,shard\nu1,s.h5\n".encode("utf-8"))
    assert read_csv_text_columns(bom, ["utt_id"]) == {"utt_id": ["u1"]}
    assert read_csv_checked(bom, ["utt_id"])["utt_id"].tolist() == ["u1"]
    (tmp_path / "header.csv").write_text("utt_id,shard\n")
    assert read_csv_text_columns(tmp_path / "header.csv", ["utt_id"]) == {"utt_id": []}


def test_importing_the_module_does_not_import_pandas():
    # Light jobs (feature extraction) read their CSVs without pandas: ~0.2 s of start-up each.
    code = "import sys, sernoise.io, sernoise.audio_store; print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_write_csv_atomic_leaves_no_temporary_file(tmp_path):
    path = write_csv_atomic(pd.DataFrame({"a": [0.1234567], "b": ["x"]}), tmp_path / "sub" / "t.csv",
                            float_format="%.3f")
    assert path.read_bytes() == b"a,b\n0.123,x\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]
