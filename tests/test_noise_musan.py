"""MUSAN noise bank adapter (sernoise.noise.musan) on a tiny synthesised copy of the release layout."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.config import ConfigError, load_config, validate_config
from sernoise.noise.bank import BANK_COLUMNS, NoiseBankError, build_bank, check_split, scan_bank, split_bank
from sernoise.noise.musan import SUBSETS, read_annotations, scan_musan

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
MAPPING = {"noise": "nat", "music": "hum"}
# Two files in the first subset of each kind, one in the others.
FILES = {(kind, subset): (2 if i == 0 else 1) for kind in SUBSETS for i, subset in enumerate(SUBSETS[kind])}


def _tone(freq: float, seconds: float = 0.2) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _annotation(kind: str, rec_id: str, k: int) -> str:
    if kind == "music":
        return f"{rec_id} {'classical' if k else 'pop,electronica'} {'N' if k else 'Y'} Artist_{k}"
    if kind == "speech":
        return f"{rec_id} m english"
    return f"{rec_id} a free-sound noise"


def make_musan(root: Path) -> Path:
    """musan/{noise,music}/<subset>/ with wavs and ANNOTATIONS, plus a speech/librivox subset."""
    subsets = dict(FILES)
    subsets[("speech", "librivox")] = 1
    for n, ((kind, subset), count) in enumerate(sorted(subsets.items())):
        folder = root / kind / subset
        folder.mkdir(parents=True)
        lines = []
        for k in range(count):
            rec_id = f"{kind}-{subset}-{k:04d}"
            sf.write(folder / f"{rec_id}.wav", _tone(200.0 + 50 * n + 7 * k), 16000, subtype="PCM_16")
            lines.append(_annotation(kind, rec_id, k))
        (folder / "ANNOTATIONS").write_text("\n".join(lines) + "\n")
        (folder / "LICENSE").write_text("CC BY\n")
    return root


@pytest.fixture(scope="module")
def musan(tmp_path_factory) -> Path:
    return make_musan(tmp_path_factory.mktemp("release") / "musan")


@pytest.fixture
def copy(musan, tmp_path) -> Path:
    """A copy to damage."""
    return Path(shutil.copytree(musan, tmp_path / "musan"))


def test_scan_noise_and_music(musan):
    frame = scan_musan(musan, MAPPING)
    assert list(frame.columns) == BANK_COLUMNS
    assert len(frame) == sum(FILES.values()) == 9
    assert frame["file"].tolist() == sorted(frame["file"])
    assert frame.loc[0].to_dict() | {"duration": None} == {
        "file": "music/fma-western-art/music-fma-western-art-0000.wav", "source": "musan:music-fma-western-art-0000",
        "class": "music", "category": "hum", "split": "", "duration": None}
    assert set(frame["class"]) == {"noise", "music"}
    assert (frame["category"] == frame["class"].map(MAPPING)).all()
    assert frame["source"].is_unique  # one recording per file
    assert not frame["file"].str.startswith("speech/").any()
    assert set(frame.loc[frame["class"] == "noise", "file"]) == {
        "noise/free-sound/noise-free-sound-0000.wav", "noise/free-sound/noise-free-sound-0001.wav",
        "noise/sound-bible/noise-sound-bible-0000.wav"}


def test_unmapped_kind_is_left_out_and_needs_no_folder(copy):
    shutil.rmtree(copy / "music")
    frame = scan_musan(copy, {"noise": "int"})
    assert set(frame["class"]) == {"noise"} and set(frame["category"]) == {"int"} and len(frame) == 3


def test_subsets_option(musan):
    frame = scan_musan(musan, MAPPING, subsets=["fma", "free-sound"])
    assert frame["file"].str.split("/").str[1].tolist() == ["fma", "fma", "free-sound", "free-sound"]
    assert scan_musan(musan, {"music": "hum"}, subsets=["rfm"])["file"].tolist() == ["music/rfm/music-rfm-0000.wav"]
    with pytest.raises(NoiseBankError, match="'librivox', a MUSAN speech subset; speech is never used as noise"):
        scan_musan(musan, MAPPING, subsets=["fma", "librivox"])
    with pytest.raises(NoiseBankError, match="'fma-western', not a MUSAN noise or music subset"):
        scan_musan(musan, MAPPING, subsets=["fma-western"])
    with pytest.raises(NoiseBankError, match=r"subsets \['fma'\] hold \['music'\], which class_to_category does not"):
        scan_musan(musan, {"noise": "nat"}, subsets=["fma", "free-sound"])
    with pytest.raises(NoiseBankError, match="non-empty list"):
        scan_musan(musan, MAPPING, subsets=[])
    with pytest.raises(NoiseBankError, match="non-empty list"):
        scan_musan(musan, MAPPING, subsets="fma")


def test_class_to_category_checks(musan):
    with pytest.raises(NoiseBankError, match=r"names \['speech'\].*speech is never used as noise"):
        scan_musan(musan, {"noise": "nat", "speech": "hum"})
    with pytest.raises(NoiseBankError, match=r"names \['Noise'\]; MUSAN classes are \['noise', 'music'\]"):
        scan_musan(musan, {"Noise": "nat"})
    with pytest.raises(NoiseBankError, match="'weather' is not a known category"):
        scan_musan(musan, {"noise": "weather"})
    with pytest.raises(NoiseBankError, match="maps neither noise nor music"):
        scan_musan(musan, {})


def test_missing_folders_name_the_path(copy, tmp_path):
    shutil.rmtree(copy / "noise")
    with pytest.raises(NoiseBankError, match=f"folder not found: {copy / 'noise'} "):
        scan_musan(copy, MAPPING)
    assert len(scan_musan(copy, {"music": "hum"})) == 6
    shutil.rmtree(copy / "music" / "jamendo")
    with pytest.raises(NoiseBankError, match=f"subset folder not found: {copy / 'music' / 'jamendo'}"):
        scan_musan(copy, {"music": "hum"})
    assert len(scan_musan(copy, {"music": "hum"}, subsets=["fma", "rfm"])) == 3
    (copy / "music" / "rfm" / "ANNOTATIONS").unlink()
    with pytest.raises(NoiseBankError, match=f"MUSAN annotations not found: {copy / 'music' / 'rfm' / 'ANNOTATIONS'}"):
        scan_musan(copy, {"music": "hum"}, subsets=["rfm"])
    with pytest.raises(NoiseBankError, match="folder not found"):
        scan_musan(tmp_path / "nowhere", MAPPING)


def test_unreadable_annotation_lines(tmp_path):
    path = tmp_path / "ANNOTATIONS"
    path.write_text("music-fma-0000 blues Y Cullah\n\nmusic-fma-0001 pop,electronica N Quiet_Music extra words\n")
    assert read_annotations(path, "music") == ["music-fma-0000", "music-fma-0001"]
    bad = {"music-fma-0002 blues Y\n": "expected '<id> <genres> <vocals Y|N> <artist>'",
           "music-fma-0002 blues yes Someone\n": "expected '<id> <genres> <vocals Y|N> <artist>'",
           "music-fma-0000 jazz N Again\n": "recording music-fma-0000 is already listed on line 1",
           "../music-fma-0002 blues Y Someone\n": "cannot read a recording id"}
    for line, message in bad.items():
        path.write_text("music-fma-0000 blues Y Cullah\n" + line)
        with pytest.raises(NoiseBankError, match=re.escape(f"{path} line 2: {message}")):
            read_annotations(path, "music")
    path.write_bytes(b"noise-free-sound-0000 caf\xe9 noise\nnoise-free-sound-0001.wav\n")
    assert read_annotations(path, "noise") == ["noise-free-sound-0000", "noise-free-sound-0001"]  # noise: id only


def test_bad_line_in_a_scanned_subset(copy):
    annotations = copy / "music" / "hd-classical" / "ANNOTATIONS"
    annotations.write_text("music-hd-classical-0000 classical\n")
    with pytest.raises(NoiseBankError, match=f"{annotations} line 1"):
        scan_musan(copy, MAPPING)


def test_wav_listed_nowhere_is_an_error(copy):
    folder = copy / "noise" / "sound-bible"
    shutil.copy(folder / "noise-sound-bible-0000.wav", folder / "noise-sound-bible-0099.wav")
    with pytest.raises(NoiseBankError, match=f"{folder / 'noise-sound-bible-0099.wav'} is not listed in "
                                             f"{folder / 'ANNOTATIONS'}"):
        scan_musan(copy, MAPPING)


def test_listed_wav_missing_is_left_out_with_a_warning(copy):
    folder = copy / "music" / "fma"
    (folder / "music-fma-0001.wav").unlink()
    with pytest.warns(UserWarning, match=r"1 recording\(s\) listed in .*fma/ANNOTATIONS have no wav.*music-fma-0001"):
        frame = scan_musan(copy, MAPPING)
    assert "music/fma/music-fma-0001.wav" not in set(frame["file"]) and len(frame) == 8
    (folder / "music-fma-0000.wav").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NoiseBankError, match=f"subset {folder} has no wav listed"):
            scan_musan(copy, MAPPING)


def test_extra_folder_warns(copy):
    (copy / "noise" / "my-noise").mkdir()
    with pytest.warns(UserWarning, match=r"folder\(s\) \['my-noise'\] that are not MUSAN noise subsets"):
        assert len(scan_musan(copy, MAPPING)) == 9


def test_scan_bank_dispatches_split_and_build(musan, tmp_path):
    spec = {"adapter": "musan", "root": str(musan), "class_to_category": MAPPING, "subsets": ["free-sound", "fma"]}
    frame = scan_bank(spec)
    pd.testing.assert_frame_equal(frame, scan_musan(musan, MAPPING, subsets=["free-sound", "fma"]))
    pd.testing.assert_frame_equal(scan_bank({k: v for k, v in spec.items() if k != "subsets"}), scan_musan(musan, MAPPING))
    split = split_bank(frame, spec, test_fraction=0.5, seed=3)
    check_split(split)
    assert split.groupby("category")["split"].nunique().tolist() == [2, 2]  # both kinds in both pools
    out = tmp_path / "out"
    bank = build_bank(split, musan, out / "bank.csv", out / "audio.h5", rejects_out=out / "rejects.csv", progress=False)
    assert bank["duration"].tolist() == [0.2] * 4


def test_config_accepts_a_musan_bank():
    config = load_config([ROOT / "config.yaml"], SCHEMA)
    config["noise_banks"]["musan"] = {
        "adapter": "musan", "root": "resources/noise/musan-release/musan", "subsets": ["free-sound", "fma"],
        "download": {"url": "https://www.openslr.org/resources/17/musan.tar.gz",
                     "extract_to": "resources/noise/musan-release"},
        "class_to_category": {"noise": "nat", "music": "hum"}}
    validate_config(config, SCHEMA)
    config["noise_banks"]["musan"]["subsets"] = ["librivox"]
    with pytest.raises(ConfigError, match="subsets"):
        validate_config(config, SCHEMA)


def test_music_category_from_bank_to_condition(musan, tmp_path):
    from sernoise.conditions.base import Context
    from sernoise.conditions.env import EnvironmentalNoise
    from sernoise.conditions.pool import NoisePool

    spec = {"adapter": "musan", "root": str(musan), "class_to_category": {"noise": "nat", "music": "music"}}
    frame = split_bank(scan_bank(spec), spec, test_fraction=0.5, seed=3)
    assert frame.groupby("category")["split"].nunique().to_dict() == {"music": 2, "nat": 2}
    out = tmp_path / "out"
    build_bank(frame, musan, out / "bank.csv", out / "audio.h5", rejects_out=out / "rejects.csv", progress=False)
    pool = NoisePool([(out / "bank.csv", out / "audio.h5")], "train")
    assert pool.files("music") and all(key.startswith("out:music/") for key in pool.files("music"))
    speech = _tone(150.0, seconds=0.5)
    condition = EnvironmentalNoise("music-cont", category="music", position="cont", snr_db=10.0)
    result = condition(speech, 16000, np.random.default_rng(0), Context("u", noise=pool))
    assert result.params["noise_file"].startswith("out:music/")


def test_config_accepts_music_category():
    config = load_config([ROOT / "config.yaml"], SCHEMA)
    config["noise_banks"]["musan"] = {"adapter": "musan", "root": "resources/noise/musan-release/musan",
                                      "class_to_category": {"noise": "nat", "music": "music"}}
    with pytest.raises(ConfigError, match="noise_banks.musan.class_to_category.music: unknown category 'music'"):
        validate_config(config, SCHEMA)  # the run's categories must name it
    config["noise"]["categories"].append("music")
    validate_config(config, SCHEMA)

    from sernoise.metricaug.names import config_problems

    section = {**config["metricaug"], "categories": ["nat", "music"], "unseen_category": "int"}
    assert config_problems(section, config["noise"]["categories"]) == []
