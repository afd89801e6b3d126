"""DEMAND noise bank adapter (sernoise.noise.demand) on a tiny synthesised copy of the release layout."""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.config import ConfigError, load_config, validate_config
from sernoise.noise.bank import BANK_COLUMNS, NoiseBankError, build_bank, check_split, scan_bank, split_bank
from sernoise.noise.demand import ENVIRONMENTS, PAPER_ENVIRONMENTS, archive_name, scan_demand

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
MAPPING = {"DKITCHEN": "int", "NPARK": "nat", "PCAFETER": "int"}


def _tone(freq: float, seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _wav_bytes(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, x, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _freq(env: str, channel: int) -> float:
    return 200.0 + 40 * sorted(ENVIRONMENTS).index(env) + 5 * channel


def make_demand(root: Path, environments=("DKITCHEN", "NPARK", "PCAFETER", "STRAFFIC"), channels=3) -> Path:
    """<ENV>_16k.zip archives holding <ENV>/ch01.wav ... (a distinct tone per environment and channel)."""
    root.mkdir(parents=True, exist_ok=True)
    for env in environments:
        with zipfile.ZipFile(root / archive_name(env), "w", zipfile.ZIP_DEFLATED) as zf:
            for ch in range(1, channels + 1):
                zf.writestr(f"{env}/ch{ch:02d}.wav", _wav_bytes(_tone(_freq(env, ch))))
    return root


def _digest(path: Path, algorithm: str) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, path.read_bytes()).hexdigest()}"


def test_environment_names():
    assert len(ENVIRONMENTS) == 18
    assert set(PAPER_ENVIRONMENTS) <= set(ENVIRONMENTS)  # kitchen, park, station, traffic, cafeteria


def test_scan_verifies_and_extracts_channel_one(tmp_path):
    root = make_demand(tmp_path / "demand")
    checksums = {archive_name("DKITCHEN"): _digest(root / archive_name("DKITCHEN"), "sha256"),
                 archive_name("NPARK"): _digest(root / archive_name("NPARK"), "md5")}
    frame = scan_demand(root, MAPPING, checksums=checksums)
    assert list(frame.columns) == BANK_COLUMNS
    assert frame[["file", "source", "class", "category"]].to_dict("records") == [
        {"file": "DKITCHEN/ch01.wav", "source": "demand:DKITCHEN", "class": "DKITCHEN", "category": "int"},
        {"file": "NPARK/ch01.wav", "source": "demand:NPARK", "class": "NPARK", "category": "nat"},
        {"file": "PCAFETER/ch01.wav", "source": "demand:PCAFETER", "class": "PCAFETER", "category": "int"},
    ]
    for env in MAPPING:  # channel 1 and only channel 1, bit-exact
        x, sr = sf.read(str(root / env / "ch01.wav"), dtype="float32")
        assert sr == 16000
        np.testing.assert_allclose(x, _tone(_freq(env, 1)), atol=2.0**-15)
        assert sorted(p.name for p in (root / env).iterdir()) == ["ch01.wav"]
    assert not (root / "STRAFFIC").exists()  # unmapped: not extracted, not listed
    # a rescan leaves a good copy alone and replaces a damaged one
    kitchen = root / "DKITCHEN" / "ch01.wav"
    stamp = kitchen.stat().st_mtime_ns
    park = root / "NPARK" / "ch01.wav"
    park.write_bytes(park.read_bytes()[:-10] + b"\0" * 10)
    assert scan_demand(root, MAPPING, checksums=checksums).equals(frame)
    assert kitchen.stat().st_mtime_ns == stamp
    np.testing.assert_allclose(sf.read(str(park), dtype="float32")[0], _tone(_freq("NPARK", 1)), atol=2.0**-15)


def test_checksum_mismatch_names_the_archive(tmp_path):
    root = make_demand(tmp_path)
    wrong = {archive_name("NPARK"): "sha256:" + "0" * 64}
    with pytest.raises(NoiseBankError, match=r"DEMAND archive .*NPARK_16k\.zip: checksum mismatch, expected sha256:0{64}"):
        scan_demand(root, MAPPING, checksums=wrong)
    assert not (root / "NPARK").exists()  # nothing extracted from an unverified archive
    with pytest.raises(NoiseBankError, match=r"checksums key 'NPARK\.zip' is not a DEMAND 16 kHz archive"):
        scan_demand(root, MAPPING, checksums={"NPARK.zip": "md5:" + "0" * 32})
    with pytest.raises(NoiseBankError, match=r"checksums\.NPARK_16k\.zip: invalid checksum spec"):
        scan_demand(root, MAPPING, checksums={archive_name("NPARK"): "crc:1234"})


def test_layout_errors_name_the_culprit(tmp_path):
    root = make_demand(tmp_path / "a", environments=("DKITCHEN",))
    with pytest.raises(NoiseBankError, match=r"environment NPARK has neither .*NPARK_16k\.zip nor .*NPARK/ch01\.wav"):
        scan_demand(root, {"DKITCHEN": "int", "NPARK": "nat"})
    with pytest.raises(NoiseBankError, match=r"names \['KITCHEN'\], not DEMAND environments"):
        scan_demand(root, {"KITCHEN": "int"})
    with pytest.raises(NoiseBankError, match="is not a known category"):
        scan_demand(root, {"DKITCHEN": "kitchen"})
    with pytest.raises(NoiseBankError, match="folder not found"):
        scan_demand(tmp_path / "nope", {"DKITCHEN": "int"})
    with zipfile.ZipFile(root / archive_name("TCAR"), "w") as zf:  # channels at the top level
        zf.writestr("ch01.wav", _wav_bytes(_tone(300.0)))
    with pytest.raises(NoiseBankError, match=r"TCAR_16k\.zip has no TCAR/ch01\.wav \(members: \['ch01\.wav'\]\)"):
        scan_demand(root, {"TCAR": "int"})
    (root / archive_name("TBUS")).write_bytes(b"not a zip")
    with pytest.raises(NoiseBankError, match=r"TBUS_16k\.zip is not a readable zip file"):
        scan_demand(root, {"TBUS": "int"})


def test_unpacked_copy_without_archives(tmp_path):
    root = tmp_path / "demand"
    for env in ("DKITCHEN", "NPARK"):
        (root / env).mkdir(parents=True)
        sf.write(str(root / env / "ch01.wav"), _tone(_freq(env, 1)), 16000, subtype="PCM_16")
    mapping = {"DKITCHEN": "int", "NPARK": "nat"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(scan_demand(root, mapping)) == 2
    with pytest.warns(UserWarning, match=r"NPARK_16k\.zip is absent, so its checksum cannot be checked"):
        scan_demand(root, mapping, checksums={archive_name("NPARK"): "md5:" + "0" * 32})


def test_bank_built_from_demand_test_pool_only(tmp_path):
    from sernoise.audio_store import AudioShard

    root = make_demand(tmp_path / "demand")
    spec = {"adapter": "demand", "root": str(root), "class_to_category": {**MAPPING, "STRAFFIC": "nat"},
            "split": "test"}
    frame = split_bank(scan_bank(spec), spec, test_fraction=0.3, seed=1)
    assert set(frame["split"]) == {"test"}  # all five paper-like environments serve the tests
    check_split(frame)
    # without a fixed pool the source split keeps single recordings out of the test pool
    sourced = split_bank(scan_bank(spec), {k: v for k, v in spec.items() if k != "split"}, test_fraction=0.3, seed=1)
    assert set(sourced["split"]) == {"train", "test"}
    bank = build_bank(frame, root, tmp_path / "out" / "bank.csv", tmp_path / "out" / "audio.h5",
                      rejects_out=tmp_path / "out" / "rejects.csv", progress=False)
    assert bank["file"].tolist() == ["DKITCHEN/ch01.wav", "NPARK/ch01.wav", "PCAFETER/ch01.wav", "STRAFFIC/ch01.wav"]
    assert bank["duration"].tolist() == [0.25] * 4
    with AudioShard(tmp_path / "out" / "audio.h5") as shard:
        np.testing.assert_allclose(shard.read("STRAFFIC/ch01.wav"), _tone(_freq("STRAFFIC", 1)), atol=2.0**-15)
    with pytest.raises(NoiseBankError, match="split must be one of"):
        split_bank(frame, {"split": "dev"}, test_fraction=0.3, seed=1)
    with pytest.raises(NoiseBankError, match="unknown adapter 'wham'; known: esc50, folder, demand, musan"):
        scan_bank({"adapter": "wham", "root": str(root)})


def test_config_accepts_a_demand_bank():
    config = load_config([ROOT / "config.yaml"], SCHEMA)
    config["noise_banks"]["demand"] = {
        "adapter": "demand", "root": "resources/noise/demand", "split": "test",
        "class_to_category": {"DKITCHEN": "int", "NPARK": "nat"},
        "checksums": {"DKITCHEN_16k.zip": "md5:" + "a" * 32}}
    validate_config(config, SCHEMA)
    config["noise_banks"]["demand"]["checksums"] = {"DKITCHEN.zip": "md5:" + "a" * 32}
    with pytest.raises(ConfigError, match="checksums"):
        validate_config(config, SCHEMA)
    assert "split" not in load_config([ROOT / "config.yaml"], SCHEMA)["noise_banks"]["esc50"]  # no default filled


def test_scan_bank_dispatches_the_existing_adapters(noise_root):
    import yaml

    shared = yaml.safe_load((ROOT / "tests" / "configs" / "shared_data.yaml").read_text())["noise_banks"]["shared"]
    from sernoise.noise.bank import scan_folder

    spec = {**shared, "root": str(noise_root)}
    pd.testing.assert_frame_equal(scan_bank(spec), scan_folder(noise_root, shared["entries"], shared["class_to_category"]))
