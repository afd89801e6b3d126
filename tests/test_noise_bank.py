"""Noise bank: scanning, category mapping, source-disjoint splits, building and reading."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
import soundfile as sf

from sernoise.noise.bank import (
    BANK_COLUMNS,
    CATEGORIES,
    NoiseBankError,
    assign_splits,
    build_bank,
    check_split,
    pool,
    read_bank,
    scan_esc50,
    scan_folder,
)

# The mappings the project uses: ESC-50's from config.yaml, the shared folder's from the overlay.
_REPO = Path(__file__).resolve().parents[1]
ESC50_CLASS_TO_CATEGORY = yaml.safe_load((_REPO / "config.yaml").read_text())["noise_banks"]["esc50"]["class_to_category"]
_SHARED = yaml.safe_load((_REPO / "tests" / "configs" / "shared_data.yaml").read_text())["noise_banks"]["shared"]
FOLDER_ENTRIES = _SHARED["entries"]
FOLDER_CLASS_TO_CATEGORY = _SHARED["class_to_category"]


def _write_wav(path: Path, x: np.ndarray, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="PCM_16")


def _tone(seconds: float, sr: int = 16000, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _split_map(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["file"], frame["split"]))


# --------------------------------------------------------------------------- ESC-50


def test_scan_esc50_shared_copy(noise_root):
    frame = scan_esc50(noise_root / "esc50", ESC50_CLASS_TO_CATEGORY)
    assert list(frame.columns) == BANK_COLUMNS
    # Only the three thunderstorm clips are present and mapped; dog and car_horn are left out.
    assert len(frame) == 3
    assert set(frame["category"]) == {"nat"}
    assert set(frame["class"]) == {"thunderstorm"}
    assert all(f.startswith("audio/") and (noise_root / "esc50" / f).is_file() for f in frame["file"])
    assert sorted(frame["source"]) == ["esc50:103051", "esc50:156993", "esc50:156999"]
    assert list(frame["file"]) == sorted(frame["file"])


def test_scan_esc50_missing_meta(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(NoiseBankError, match="esc50.csv"):
        scan_esc50(tmp_path, ESC50_CLASS_TO_CATEGORY)


def test_scan_esc50_no_mapped_file_present(tmp_path):
    (tmp_path / "meta").mkdir()
    pd.DataFrame(
        {
            "filename": ["1-1-A-0.wav", "1-2-A-19.wav"],
            "fold": [1, 1], "target": [0, 19], "category": ["dog", "thunderstorm"],
            "esc10": [True, False], "src_file": ["1", "2"], "take": ["A", "A"],
        }
    ).to_csv(tmp_path / "meta" / "esc50.csv", index=False)
    _write_wav(tmp_path / "audio" / "1-1-A-0.wav", _tone(0.5))  # present but unmapped (dog)
    with pytest.raises(NoiseBankError, match="none of the mapped classes"):
        scan_esc50(tmp_path, ESC50_CLASS_TO_CATEGORY)
    _write_wav(tmp_path / "audio" / "1-2-A-19.wav", _tone(0.5))
    frame = scan_esc50(tmp_path, ESC50_CLASS_TO_CATEGORY)
    assert list(frame["file"]) == ["audio/1-2-A-19.wav"]


def test_scan_esc50_unknown_category(noise_root):
    with pytest.raises(NoiseBankError, match="'thunderstorm'"):
        scan_esc50(noise_root / "esc50", {"thunderstorm": "weather"})


# --------------------------------------------------------------------------- folder bank on shared data


@pytest.fixture(scope="module")
def folder_bank(noise_root) -> pd.DataFrame:
    return scan_folder(noise_root, FOLDER_ENTRIES, FOLDER_CLASS_TO_CATEGORY)


def test_folder_bank_counts_and_classes(folder_bank):
    assert list(folder_bank.columns) == BANK_COLUMNS
    counts = folder_bank["category"].value_counts().to_dict()
    # hum: DCASE cough/clearthroat/laughter 3x20 + nonverbal coughing 50, sneezing 52, throat-clearing 54.
    assert counts == {"int": 140, "hum": 216, "laugh": 25, "cry": 24, "nat": 6}
    assert set(folder_bank["class"]) == set(FOLDER_CLASS_TO_CATEGORY)
    assert "city" not in set(folder_bank["class"])  # unmapped -> left out
    classes = folder_bank.groupby("category")["class"].apply(set).to_dict()
    assert classes["laugh"] == {"laughing"} and classes["cry"] == {"crying"}
    assert classes["nat"] == {"rain", "wind", "waves", "thunder", "forest", "fireplace"}
    assert folder_bank["file"].is_unique


def test_folder_bank_sources(folder_bank):
    src = dict(zip(folder_bank["file"], folder_bank["source"]))
    assert src["dcase2016_task2/knock017.wav"] == "dcase2016_task2:knock017.wav"
    assert src["nonverbal/laughing/3S0D_12_8_0_16_0_0_0.wav"] == "nonverbal:3S0D"
    assert src["soundscapes_cc0/rain.wav"] == "soundscapes_cc0:rain.wav"
    # Speakers are sources: nonverbal has fewer sources than files.
    nonverbal = folder_bank[folder_bank["file"].str.startswith("nonverbal/")]
    assert nonverbal["source"].nunique() < len(nonverbal)


def test_splits_disjoint_complete_and_deterministic(folder_bank):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no category is degenerate on the shared data
        a = assign_splits(folder_bank, test_fraction=0.3, seed=7)
    check_split(a)
    assert set(a["split"]) == {"train", "test"}
    per_source = a.groupby("source")["split"].nunique()
    assert (per_source == 1).all()
    for cat, group in a.groupby("category"):
        if group["source"].nunique() >= 2:
            assert set(group["split"]) == {"train", "test"}, cat
    # Categories whose sources are not shared with others get exactly round(n * fraction) test sources.
    n_test = a[a["split"] == "test"].groupby("category")["source"].nunique().to_dict()
    assert n_test["int"] == 42 and n_test["nat"] == 2

    shuffled = folder_bank.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = assign_splits(shuffled, test_fraction=0.3, seed=7)
    assert _split_map(a) == _split_map(b)
    c = assign_splits(folder_bank, test_fraction=0.3, seed=8)
    assert _split_map(a) != _split_map(c)
    check_split(c)


def test_check_split_catches_leak(folder_bank):
    a = assign_splits(folder_bank, test_fraction=0.3, seed=7)
    sizes = a.groupby("source")["file"].size()
    leaky = sizes[sizes > 1].index[0]
    row = a.index[a["source"] == leaky][0]
    a.loc[row, "split"] = "test" if a.loc[row, "split"] == "train" else "train"
    with pytest.raises(NoiseBankError, match=leaky):
        check_split(a)


def test_pool(folder_bank):
    a = assign_splits(folder_bank, test_fraction=0.3, seed=7)
    laugh_test = pool(a, "laugh", "test")
    assert len(laugh_test) > 0
    assert set(laugh_test["category"]) == {"laugh"} and set(laugh_test["split"]) == {"test"}
    with pytest.raises(NoiseBankError, match=r"'int'.*'nope'"):
        pool(a, "int", "nope")


def test_unknown_category_and_empty_glob(noise_root):
    with pytest.raises(NoiseBankError, match="'knock'"):
        scan_folder(noise_root, FOLDER_ENTRIES, {**FOLDER_CLASS_TO_CATEGORY, "knock": "indoor"})
    with pytest.raises(NoiseBankError, match=r"nothing_here/\*\.wav"):
        scan_folder(noise_root, [{"glob": "nothing_here/*.wav", "class_from": "stem", "source_from": "file"}], {})


# --------------------------------------------------------------------------- synthetic folder banks


def test_scan_folder_synthetic(tmp_path):
    _write_wav(tmp_path / "a" / "knock1.wav", _tone(0.2))
    _write_wav(tmp_path / "a" / "knock2.wav", _tone(0.2))
    _write_wav(tmp_path / "a" / "bird1.wav", _tone(0.2))  # unmapped class
    _write_wav(tmp_path / "b" / "x.wav", _tone(0.2))
    _write_wav(tmp_path / "b" / "y.wav", _tone(0.2))
    pd.DataFrame({"file": ["b/x.wav", "b/y.wav"], "class": ["rain", "rain"], "source": ["", "rec9"]}).to_csv(
        tmp_path / "list.csv", index=False
    )
    entries = [
        {"glob": "a/*.wav", "class_from": "stem_alpha", "source_from": "parent"},
        {"csv": "list.csv"},
    ]
    frame = scan_folder(tmp_path, entries, {"knock": "int", "rain": "nat"})
    assert list(frame["file"]) == ["a/knock1.wav", "a/knock2.wav", "b/x.wav", "b/y.wav"]
    assert list(frame["source"]) == ["a:a", "a:a", "b/x.wav", "rec9"]  # csv source defaults to the file
    assert list(frame["category"]) == ["int", "int", "nat", "nat"]

    with pytest.raises(NoiseBankError, match="class_from"):
        scan_folder(tmp_path, [{"glob": "a/*.wav", "class_from": "bogus"}], {"knock": "int"})
    with pytest.raises(NoiseBankError, match="more than once"):
        scan_folder(tmp_path, [entries[0], entries[0]], {"knock": "int"})
    with pytest.raises(NoiseBankError, match="missing.csv"):
        scan_folder(tmp_path, [{"csv": "missing.csv"}], {"rain": "nat"})


def _synthetic_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"file": f, "source": s, "class": c, "category": c, "split": "", "duration": np.nan} for f, s, c in rows],
        columns=BANK_COLUMNS,
    )


def test_assign_splits_single_source_and_shared_sources():
    frame = _synthetic_frame(
        [("n1.wav", "s1", "nat"), ("n2.wav", "s1", "nat")]
        + [(f"h{i}.wav", f"spk{i}", "hum") for i in range(10)]
        + [(f"l{i}.wav", f"spk{i}", "laugh") for i in range(4)]
    )
    with pytest.warns(UserWarning, match="'nat'"):
        out = assign_splits(frame, test_fraction=0.25, seed=1)
    assert set(out.loc[out["category"] == "nat", "split"]) == {"train"}
    check_split(out)  # speakers feeding both hum and laugh sit in one split
    for cat in ("hum", "laugh"):
        assert set(out.loc[out["category"] == cat, "split"]) == {"train", "test"}
    assert (out.loc[out["category"] == "laugh", "split"] == "test").sum() == 1
    with pytest.raises(NoiseBankError, match="test_fraction"):
        assign_splits(frame, test_fraction=1.0, seed=1)
    with pytest.raises(NoiseBankError, match="'weather'"):
        assign_splits(_synthetic_frame([("a.wav", "s", "weather")]), test_fraction=0.5, seed=1)


def test_check_split_requires_split():
    with pytest.raises(NoiseBankError, match="assign_splits"):
        check_split(_synthetic_frame([("a.wav", "s", "nat")]))


# --------------------------------------------------------------------------- build_bank end to end


@pytest.fixture()
def small_root(tmp_path, noise_root) -> Path:
    """A handful of real files (linked, not copied) plus synthetic ones, under one root."""
    root = tmp_path / "noise"
    for rel in (
        "dcase2016_task2/knock017.wav",
        "dcase2016_task2/knock003.wav",
        "dcase2016_task2/cough006.wav",
        "nonverbal/laughing/3S0D_12_8_0_16_0_0_0.wav",
        "nonverbal/laughing/4NEJ_12_1_0_16_0_0_0.wav",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(noise_root / rel)
    _write_wav(root / "synth" / "tone44k.wav", _tone(1.25, sr=44100, channels=2), sr=44100)
    _write_wav(root / "synth" / "silent.wav", np.zeros(16000))
    return root


def _small_frame(root: Path) -> pd.DataFrame:
    frame = scan_folder(
        root,
        [
            {"glob": "dcase2016_task2/*.wav", "class_from": "stem_alpha", "source_from": "file"},
            {"glob": "nonverbal/*/*.wav", "class_from": "parent", "source_from": "stem_prefix"},
            {"glob": "synth/*.wav", "class": "rain", "source_from": "file"},
        ],
        {"knock": "int", "cough": "hum", "laughing": "laugh", "rain": "nat"},
    )
    with pytest.warns(UserWarning, match="'hum'"):  # one cough file: a single-source category
        return assign_splits(frame, test_fraction=0.5, seed=3)


def test_build_bank_end_to_end(small_root, tmp_path):
    from sernoise.audio import load_checked
    from sernoise.audio_store import AudioShard

    frame = _small_frame(small_root)
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        bank = build_bank(
            frame.sample(frac=1.0, random_state=5 if run == "a" else 6),  # row order must not matter
            small_root,
            out / "bank.csv",
            out / "bank.h5",
            rejects_out=out / "rejects.csv",
            progress=False,
        )
        outs.append((out, bank))
    (out, bank), (out_b, _) = outs
    for name in ("bank.csv", "bank.h5", "rejects.csv"):
        assert (out / name).read_bytes() == (out_b / name).read_bytes(), name

    rejects = pd.read_csv(out / "rejects.csv")
    assert list(rejects.columns) == ["file", "reason"]
    assert list(rejects["file"]) == ["synth/silent.wav"]
    assert "silent" in rejects["reason"][0]

    assert len(bank) == 6 and "synth/silent.wav" not in set(bank["file"])
    back = read_bank(out / "bank.csv")
    assert list(back.columns) == BANK_COLUMNS
    assert list(back["file"]) == sorted(back["file"])
    pd.testing.assert_frame_equal(back, bank)

    durations = dict(zip(back["file"], back["duration"]))
    assert durations["synth/tone44k.wav"] == pytest.approx(1.25, abs=1e-4)
    real = "dcase2016_task2/knock017.wav"
    info = sf.info(str(small_root / real))
    assert durations[real] == pytest.approx(info.frames / info.samplerate, abs=1e-4)

    with AudioShard(out / "bank.h5") as shard:
        assert shard.sample_rate == 16000
        assert shard.utt_ids == list(back["file"])
        for rel in back["file"]:
            x = shard.read(rel)
            assert x.ndim == 1
            assert len(x) == pytest.approx(durations[rel] * 16000, abs=1)
        # A 16 kHz 16-bit mono original comes back bit-exactly.
        original, _ = sf.read(str(small_root / real), dtype="float32")
        np.testing.assert_array_equal(shard.read(real), original)
        expected, orig_sr, _ = load_checked(small_root / "synth" / "tone44k.wav")
        assert orig_sr == 44100
        got = shard.read("synth/tone44k.wav")
    assert len(got) == len(expected) == 20000
    assert np.max(np.abs(got - expected)) <= 2.0**-15  # the store rounds to 16 bit


def test_build_bank_refuses_leak_before_reading(small_root, tmp_path):
    frame = _small_frame(small_root)
    first = frame.iloc[0]
    other = "train" if first["split"] == "test" else "test"
    # A second file from the same source recording, placed in the other pool.
    leak = first.to_frame().T.assign(file="dcase2016_task2/extra.wav", split=other)
    frame = pd.concat([frame, leak], ignore_index=True)
    with pytest.raises(NoiseBankError, match="both train and test"):
        build_bank(frame, small_root, tmp_path / "x.csv", tmp_path / "x.h5", rejects_out=tmp_path / "r.csv", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_read_bank_errors(tmp_path):
    with pytest.raises(NoiseBankError, match="bank.csv"):
        read_bank(tmp_path / "bank.csv")
    pd.DataFrame({"file": ["a"], "category": ["nat"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(NoiseBankError, match="bad.csv"):
        read_bank(tmp_path / "bad.csv")


def test_categories_constant():
    assert CATEGORIES == ("nat", "hum", "int", "laugh", "cry", "music")
