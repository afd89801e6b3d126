"""Additive conditions (env, insert) and noise pools, on real RAVDESS speech and real recorded noise.

A small noise bank (a few files per category, linked from ``../shared/data/noise``) is built
once per module with :mod:`sernoise.noise.bank`; tests skip when the shared data is absent.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
import soundfile as sf

from sernoise.audio_store import AudioShard, ShardWriter
from sernoise.conditions import ConditionError, Context, SkipUtterance, build_condition
from sernoise.conditions.env import EnvironmentalNoise, fade_envelope, loop_to_length
from sernoise.conditions.insert import InsertClip
from sernoise.conditions.pool import NoisePool, check_pools_disjoint
from sernoise.conditions.snr import additive_snr, power
from sernoise.noise.bank import NoiseBankError, assign_splits, build_bank, read_bank, scan_folder
from sernoise.seeds import rng_for

SR = 16000
SNR_TOL = 0.1

# A few real files per category; every category gets >= 2 sources so both pools exist.
BANK_FILES = (
    [f"soundscapes_cc0/{n}.wav" for n in ("rain", "fireplace", "wind", "waves")]
    + [f"dcase2016_task2/{n}.wav" for n in ("knock001", "knock002", "doorslam001", "keyboard005", "phone036", "drawer001")]
    + [f"dcase2016_task2/{n}.wav" for n in ("cough004", "cough006", "clearthroat002", "clearthroat014")]
    + [f"nonverbal/laughing/{n}.wav" for n in ("3S0D_12_8_0_16_0_0_0", "4NEJ_12_1_0_16_0_0_0", "6HOK_12_3_0_27_0_0_0", "82GZ_12_7_0_36_0_0_0")]
    + [f"nonverbal/crying/{n}.wav" for n in ("71OW_11_8_0_22_0_0_0", "80EY_11_10_0_48_0_0_0", "8M8F_11_2_1_50_0_0_0", "A8AF_11_5_0_20_0_0_0")]
)
# How classes and sources are read from the shared folder: the project's overlay, not a copy.
ENTRIES = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "tests" / "configs" / "shared_data.yaml").read_text()
)["noise_banks"]["shared"]["entries"]
CLASS_TO_CATEGORY = {
    **{c: "int" for c in ("knock", "doorslam", "keyboard", "phone", "drawer")},
    **{c: "hum" for c in ("cough", "clearthroat")},
    **{c: "nat" for c in ("rain", "fireplace", "wind", "waves")},
    "laughing": "laugh",
    "crying": "cry",
}
UTTS = ["03-01-05-02-01-01-01.wav", "03-01-03-02-02-01-01.wav", "03-01-04-01-01-02-01.wav"]


def _existing(root: Path, names: list[str]) -> list[str]:
    return [n for n in names if (root / n).is_file()]


@pytest.fixture(scope="module")
def bank(tmp_path_factory, noise_root):
    """(bank_csv, bank_h5) of a small bank built from real files; splits 50/50 by source."""
    work = tmp_path_factory.mktemp("noisebank")
    root = work / "noise"
    for rel in BANK_FILES:
        if not (noise_root / rel).is_file():
            pytest.skip(f"shared noise file missing: {rel}")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(noise_root / rel)
    frame = scan_folder(root, ENTRIES, CLASS_TO_CATEGORY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every category has >= 2 sources
        frame = assign_splits(frame, test_fraction=0.5, seed=11)
    out = work / "small"
    build_bank(frame, root, out / "bank.csv", out / "bank.h5", rejects_out=out / "rejects.csv", progress=False)
    return out / "bank.csv", out / "bank.h5"


@pytest.fixture(scope="module")
def test_pool(bank):
    return NoisePool([bank], "test")


@pytest.fixture(scope="module")
def train_pool(bank):
    return NoisePool([bank], "train")


@pytest.fixture(scope="module")
def speech(ravdess_root):
    """Three real utterances of Actor_01 (float32, 16 kHz)."""
    out = []
    for name in UTTS:
        x, sr = sf.read(str(ravdess_root / "Actor_01" / name), dtype="float32")
        assert sr == SR and x.ndim == 1
        out.append(x)
    return out


@pytest.fixture(scope="module")
def long_speech(speech):
    """About 10 s: longer than every laugh/cry clip and every interior noise clip of the bank."""
    return np.concatenate(speech)


def _ctx(pool, utt="Actor_01/utt"):
    return Context(utt_id=utt, speaker="01", noise=pool)


def _roundtrip(tmp_path: Path, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Through the audio store's 16-bit quantisation and back."""
    path = tmp_path / "mix.h5"
    with ShardWriter(path) as writer:
        for key, y in outputs.items():
            writer.add(key, y)
    with AudioShard(path) as shard:
        return {key: shard.read(key) for key in outputs}


# --------------------------------------------------------------------------- pools


def test_pools_disjoint_and_cover_bank(bank, train_pool, test_pool):
    frame = read_bank(bank[0])
    assert train_pool.sources().isdisjoint(test_pool.sources())
    NoisePool.disjoint(train_pool, test_pool)
    check_pools_disjoint([frame])
    for cat in ("nat", "hum", "int", "laugh", "cry"):
        train, test = train_pool.files(cat), test_pool.files(cat)
        assert train and test and train == sorted(set(train))
        assert all(k.startswith("small:") for k in train + test)
        assert not set(train) & set(test)
        want = frame[frame["category"] == cat]
        assert len(train) + len(test) == len(want)
    key = test_pool.files("nat")[0]
    x = test_pool.read(key)
    assert x.dtype == np.float32 and x.ndim == 1 and x.size > SR
    assert test_pool.read(key) is x  # cached
    with pytest.raises(ValueError):
        x[0] = 1.0  # the cached clip is read-only
    with pytest.raises(ConditionError, match="nope"):
        test_pool.read("small:nope.wav")
    with pytest.raises(ConditionError, match="'weather'"):
        test_pool.files("weather")
    # draw is uniform over the files of the category and reproducible
    keys = [train_pool.draw("int", np.random.default_rng(s))[0] for s in range(60)]
    assert set(keys) == set(train_pool.files("int"))
    assert train_pool.draw("int", np.random.default_rng(5))[0] == train_pool.draw("int", np.random.default_rng(5))[0]


def test_pool_empty_category_and_leaks(bank, tmp_path):
    csv, h5 = bank
    frame = read_bank(csv)
    no_cry = tmp_path / "nocry" / "bank.csv"
    no_cry.parent.mkdir()
    frame[frame["category"] != "cry"].to_csv(no_cry, index=False)
    pool = NoisePool([(no_cry, h5)], "test")
    assert pool.files("cry") == []
    with pytest.raises(ConditionError, match=r"\(test\).*'cry'"):
        pool.draw("cry", np.random.default_rng(0))

    # A bank that puts one recording in both pools is refused outright.
    leaky = frame.copy()
    src = leaky["source"].iloc[0]
    row = leaky.index[leaky["source"] == src][0]
    leaky.loc[row, "split"] = "test" if leaky.loc[row, "split"] == "train" else "train"
    leaky = pd.concat([leaky, leaky.loc[[row]].assign(file="extra.wav", split=frame.loc[row, "split"])])
    leaky_csv = tmp_path / "leaky.csv"
    leaky.to_csv(leaky_csv, index=False)
    with pytest.raises(NoiseBankError, match="both train and test"):
        NoisePool([(leaky_csv, h5)], "train")

    # Two banks, each clean, but one recording is train in one and test in the other.
    flipped = frame.assign(split=frame["split"].map({"train": "test", "test": "train"}))
    flipped_csv = tmp_path / "flipped" / "bank.csv"
    flipped_csv.parent.mkdir()
    flipped.to_csv(flipped_csv, index=False)
    with pytest.raises(NoiseBankError, match="both train and test"):
        check_pools_disjoint([frame, flipped])
    train = NoisePool([bank], "train")
    test = NoisePool([(flipped_csv, h5)], "test")
    with pytest.raises(NoiseBankError, match="both train and test"):
        NoisePool.disjoint(train, test)
    with pytest.raises(ConditionError, match="two banks named"):
        NoisePool([bank, bank], "train")
    with pytest.raises(ConditionError, match="split"):
        NoisePool([bank], "dev")


# --------------------------------------------------------------------------- env: SNR


@pytest.mark.parametrize("category", ["nat", "hum", "int"])
def test_env_cont_snr_exact(category, test_pool, speech, tmp_path):
    x = speech[0]
    outputs = {}
    for snr in (20, 10, 0):
        cond = EnvironmentalNoise(f"env-{category}-cont-snr{snr}", category=category, position="cont", snr_db=snr)
        res = cond(x, SR, rng_for(1, cond.id, "utt"), _ctx(test_pool))
        assert res.span == (0, x.size) and res.snr_target == snr
        assert abs(additive_snr(x, res.audio, res.span) - snr) < SNR_TOL
        # The returned noise is exactly what the output holds beyond the input.
        np.testing.assert_array_equal(res.noise, res.audio.astype(np.float64) - x)
        assert res.params["noise_file"] in test_pool.files(category)
        assert res.params["noise_seconds"] == pytest.approx(x.size / SR)
        assert all(isinstance(v, (str, int, float, bool)) for v in res.params.values())
        outputs[str(snr)] = res.audio
    for snr, y in _roundtrip(tmp_path, outputs).items():
        assert abs(additive_snr(x, y) - float(snr)) < SNR_TOL


def test_env_start_snr_span_and_fade(test_pool, speech, tmp_path):
    outputs = {}
    for i, x in enumerate(speech):
        for category in ("nat", "hum", "int"):
            cond = EnvironmentalNoise(f"env-{category}-start", category=category, position="start")
            res = cond(x, SR, rng_for(2, cond.id, i), _ctx(test_pool))
            start, stop = res.span
            p = res.params
            assert start == 0 and p["span_start_s"] == 0.0 and p["span_end_s"] == stop / SR
            assert 1.0 <= p["noise_seconds"] == stop / SR <= 2.0 and 0 < p["noise_end_s"] <= p["noise_seconds"]
            assert abs(additive_snr(x, res.audio, res.span) - 10.0) < SNR_TOL
            diff = res.audio.astype(np.float64) - x
            assert not np.any(diff[stop:])  # nothing after the window
            # exactly the clip stretch, scaled, under the fade envelope; a short clip just ends
            clip = test_pool.read(p["noise_file"])
            offset = int(round(p["noise_offset_s"] * SR))
            used = int(round(p["noise_end_s"] * SR))
            envelope = fade_envelope(stop, 0.5)
            assert envelope[0] == 1.0 and envelope[-1] == 0.0 and np.all(np.diff(envelope) <= 0)
            expected = np.zeros(stop)
            expected[:used] = p["gain"] * clip[offset : offset + used].astype(np.float64) * envelope[:used]
            np.testing.assert_allclose(diff[:stop], expected, atol=1e-6)
            if used < stop:
                assert offset == 0 and used == clip.size
            # fading: the added noise's energy in its last quarter is below that of its first
            q = stop // 4
            assert np.sum(diff[stop - q : stop] ** 2) < 0.5 * np.sum(diff[:q] ** 2)
            outputs[f"{category}{i}"] = (x, res)
    assert {r.params["noise_end_s"] < r.params["noise_seconds"] for _, r in outputs.values()} == {True, False}
    back = _roundtrip(tmp_path, {k: r.audio for k, (_, r) in outputs.items()})
    for key, (x, res) in outputs.items():
        assert abs(additive_snr(x, back[key], res.span) - 10.0) < SNR_TOL


def test_env_cont_loops_short_noise(test_pool, long_speech):
    x = long_speech
    longest = max(test_pool.read(k).size for k in test_pool.files("int"))
    assert longest < x.size
    cond = EnvironmentalNoise("env-int-cont-snr0", category="int", position="cont", snr_db=0)
    for seed in range(3):
        res = cond(x, SR, np.random.default_rng(seed), _ctx(test_pool))
        assert res.params["looped"] is True
        assert res.span == (0, x.size)
        assert np.all(np.isfinite(res.audio)) and res.audio.size == x.size
        assert abs(additive_snr(x, res.audio, res.span)) < SNR_TOL
        assert 0.0 <= res.params["noise_offset_s"] < longest / SR


def test_loop_to_length_seams():
    rng = np.random.default_rng(0)
    clip = rng.standard_normal(1000)
    c = 50
    out = loop_to_length(clip, 0, 5000, c)
    period = clip.size - c
    assert out.size == 5000
    np.testing.assert_array_equal(out[: period], clip[: period])
    np.testing.assert_allclose(out[period + c : 2 * period], clip[c:period])
    seam = out[period : period + c]
    expected = clip[period:] * np.cos((np.arange(c) + 0.5) / c * np.pi / 2) + clip[:c] * np.sin(
        (np.arange(c) + 0.5) / c * np.pi / 2
    )
    np.testing.assert_allclose(seam, expected)
    np.testing.assert_allclose(loop_to_length(clip, 123, 3000, c), out[123:3123])


def test_env_start_skips_silent_onset_under_whole_reference(test_pool, speech):
    # snr.reference: whole measures the speech over the onset window, digital silence here
    x = np.concatenate([np.zeros(int(2.5 * SR), dtype=np.float32), speech[0]])
    cond = EnvironmentalNoise("env-nat-start", category="nat", position="start").use_snr_reference("whole")
    with pytest.raises(SkipUtterance, match="silent"):
        cond(x, SR, np.random.default_rng(0), _ctx(test_pool))


def test_env_start_over_silent_onset_is_set_against_the_active_level(test_pool, speech):
    # snr.reference: active (default): the onset noise is set against the utterance's P.56 level,
    # so 2.5 s of leading silence neither skips the utterance nor changes the noise level
    from sernoise.conditions.active_level import active_speech_level

    x = np.concatenate([np.zeros(int(2.5 * SR), dtype=np.float32), speech[0]])
    cond = EnvironmentalNoise("env-nat-start", category="nat", position="start")
    res = cond(x, SR, np.random.default_rng(0), _ctx(test_pool))
    start, stop = res.span
    p_noise = power(res.audio[start:stop].astype(np.float64) - x[start:stop])
    level = active_speech_level(x, SR)
    assert res.speech_power == pytest.approx(level.power, rel=1e-12)
    assert abs(10 * math.log10(level.power / p_noise) - 10.0) < SNR_TOL
    assert abs(additive_snr(x, res.audio, res.span) - 10.0) < SNR_TOL


# --------------------------------------------------------------------------- insert


@pytest.mark.parametrize("category", ["laugh", "cry"])
def test_insert_snr_and_presence(category, test_pool, long_speech, tmp_path):
    x = long_speech
    cond = InsertClip(category, category=category)
    outputs = {}
    for seed in range(3):
        res = cond(x, SR, np.random.default_rng(seed), _ctx(test_pool))
        start, stop = res.span
        p = res.params
        clip = test_pool.read(p["clip_file"])
        assert p["cropped"] is False and stop - start == clip.size  # ~10 s utterance: the clip fits
        assert p["clip_start_s"] == start / SR and p["clip_end_s"] == stop / SR
        assert res.snr_target == 5.0
        assert abs(additive_snr(x, res.audio, res.span) - 5.0) < SNR_TOL
        diff = res.audio.astype(np.float64) - x
        assert not np.any(diff[:start]) and not np.any(diff[stop:])
        # present where recorded: the difference is the scaled clip itself
        np.testing.assert_allclose(diff[start:stop], p["gain"] * clip.astype(np.float64), atol=1e-6)
        assert np.sum(diff[start:stop] ** 2) == pytest.approx(p["gain"] ** 2 * np.sum(clip.astype(np.float64) ** 2), rel=1e-5)
        outputs[str(seed)] = (res.audio, res.span)
    starts = {span[0] for _, span in outputs.values()}
    assert len(starts) > 1
    back = _roundtrip(tmp_path, {k: y for k, (y, _) in outputs.items()})
    for key, (_, span) in outputs.items():
        assert abs(additive_snr(x, back[key], span) - 5.0) < SNR_TOL


def test_insert_crops_long_clip(test_pool, speech):
    x = speech[0]
    cond = InsertClip("laugh", category="laugh", snr_db=0)
    res = cond(x, SR, np.random.default_rng(1), _ctx(test_pool))
    clip = test_pool.read(res.params["clip_file"])
    assert clip.size > x.size and res.params["cropped"] is True  # nonverbal clips are >= 4 s
    assert res.span == (0, x.size)
    assert abs(additive_snr(x, res.audio, res.span)) < SNR_TOL
    np.testing.assert_allclose(res.noise, res.params["gain"] * clip[: x.size].astype(np.float64), atol=1e-6)


# --------------------------------------------------------------------------- determinism


def test_determinism(test_pool, speech, long_speech):
    conds = [
        (EnvironmentalNoise("env-hum-cont-snr10", category="hum", position="cont", snr_db=10), speech[1]),
        (EnvironmentalNoise("env-int-start", category="int", position="start"), speech[1]),
        (InsertClip("cry", category="cry"), long_speech),
    ]
    for cond, x in conds:
        a = cond(x, SR, rng_for(7, cond.id, "u1"), _ctx(test_pool))
        b = cond(x, SR, rng_for(7, cond.id, "u1"), _ctx(test_pool))
        assert a.audio.tobytes() == b.audio.tobytes() and a.params == b.params
        others = [cond(x, SR, rng_for(7, cond.id, f"u{k}"), _ctx(test_pool)) for k in range(2, 5)]
        assert any(o.audio.tobytes() != a.audio.tobytes() for o in others)
        assert any(o.params != a.params for o in others)


def test_train_pool_used_when_given(train_pool, speech):
    cond = EnvironmentalNoise("env-nat-cont-snr20", category="nat", position="cont", snr_db=20)
    res = cond(speech[0], SR, np.random.default_rng(3), _ctx(train_pool))
    assert res.params["noise_file"] in train_pool.files("nat")


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "spec, argument",
    [
        ({"category": "traffic", "position": "cont", "snr_db": 10}, "category"),
        ({"category": "nat", "position": "middle", "snr_db": 10}, "position"),
        ({"category": "nat", "position": "cont", "snr_db": 45}, "snr_db"),
        ({"category": "nat", "position": "cont", "snr_db": -11}, "snr_db"),
        ({"category": "nat", "position": "cont", "snr_db": "10"}, "snr_db"),
        ({"category": "nat", "position": "cont"}, "snr_db"),
        ({"category": "nat", "position": "start", "fade_seconds": [2.0, 1.0]}, "fade_seconds"),
        ({"category": "nat", "position": "start", "fade_seconds": [0.0, 1.0]}, "fade_seconds"),
        ({"category": "nat", "position": "start", "fade_seconds": 1.5}, "fade_seconds"),
        ({"category": "nat", "position": "start", "fade_out_fraction": 0.0}, "fade_out_fraction"),
        ({"category": "nat", "position": "cont", "snr_db": 10, "fade_seconds": [1, 2]}, "fade_seconds"),
    ],
)
def test_env_constructor_errors(spec, argument):
    with pytest.raises(ConditionError, match=rf"condition bad-env: {argument}"):
        EnvironmentalNoise("bad-env", **spec)


def test_insert_constructor_errors():
    with pytest.raises(ConditionError, match="condition bad-ins: category"):
        InsertClip("bad-ins", category="nat")
    with pytest.raises(ConditionError, match="condition bad-ins: snr_db"):
        InsertClip("bad-ins", category="laugh", snr_db=math.nan)


def test_registry_and_describe():
    cond = build_condition("env-nat-cont-snr10", {"type": "env", "category": "nat", "position": "cont", "snr_db": 10})
    assert isinstance(cond, EnvironmentalNoise)
    d = cond.describe()
    assert d == {
        "id": "env-nat-cont-snr10", "type": "env", "family": "environmental", "perception": "retaining",
        "requires": ["noise"], "category": "nat", "position": "cont", "snr_db": 10.0,
    }
    start = build_condition("env-hum-start", {"type": "env", "category": "hum", "position": "start"})
    assert start.args() == {
        "category": "hum", "position": "start", "snr_db": 10.0, "fade_seconds": [1.0, 2.0], "fade_out_fraction": 0.5,
    }
    assert build_condition("env-hum-start", {"type": "env", **start.args()}).args() == start.args()
    ins = build_condition("laugh", {"type": "insert", "category": "laugh"})
    assert isinstance(ins, InsertClip) and ins.additive and ins.perception == "altering" and ins.family == "distortion"
    assert ins.args() == {"category": "laugh", "snr_db": 5.0}
    with pytest.raises(ConditionError, match="env-x"):
        build_condition("env-x", {"type": "env", "category": "nat", "position": "cont", "snr_db": 10, "level": 3})


def test_silent_or_poolless_input_rejected(test_pool):
    cond = EnvironmentalNoise("env-nat-cont-snr10", category="nat", position="cont", snr_db=10)
    with pytest.raises(ConditionError, match="env-nat-cont-snr10.*silent"):
        cond(np.zeros(SR, dtype=np.float32), SR, np.random.default_rng(0), _ctx(test_pool))
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    with pytest.raises(ConditionError, match="noise source"):
        cond(x, SR, np.random.default_rng(0), Context(utt_id="u"))
    with pytest.raises(ConditionError, match="laugh.*silent"):
        InsertClip("laugh", category="laugh")(np.zeros(SR, dtype=np.float32), SR, np.random.default_rng(0), _ctx(test_pool))


# --------------------------------------------------------------------------- fast paths


def test_energy_profile_matches_direct_power(test_pool):
    """The pool's cached per-file energy profile gives every stretch's power as power() does."""
    from sernoise.conditions.snr import EnergyProfile, sum_squares

    rng = np.random.default_rng(0)
    for cat in ("nat", "hum", "int", "laugh"):
        key = test_pool.files(cat)[0]
        clip = test_pool.read(key)
        profile = test_pool.energy_profile(key)
        assert test_pool.energy_profile(key) is profile  # cached
        assert profile.power == power(clip)  # the whole clip: bit for bit
        for _ in range(50):
            a = int(rng.integers(clip.size))
            b = int(rng.integers(a, clip.size + 1))
            direct = power(clip[a:b])
            assert profile.segment_power(clip, a, b) == pytest.approx(direct, rel=1e-12, abs=1e-300)
            assert profile.energy(clip, a, b) == pytest.approx(sum_squares(clip[a:b]), rel=1e-12, abs=1e-300)
    # edge stretches, silence, and a clip that is not the profiled one
    z = np.zeros(1000, dtype=np.float32)
    z[600:] = 0.5
    prof = EnergyProfile(z)
    assert prof.energy(z, 0, 600) == 0.0 and prof.energy(z, 5, 5) == 0.0
    assert prof.energy(z, 0, 1000) == pytest.approx(400 * 0.25)
    with pytest.raises(ValueError):
        prof.energy(z[:999], 0, 10)


def test_power_is_mean_of_squares_bit_for_bit():
    rng = np.random.default_rng(1)
    for n in (1, 7, 1000, 123457):
        x = (rng.standard_normal(n) * 0.3).astype(np.float32)
        x64 = x.astype(np.float64)
        assert power(x) == float(np.mean(x64 * x64))
        assert power(x64[::3]) == float(np.mean(x64[::3] * x64[::3]))
    assert power(np.zeros(0, dtype=np.float32)) == 0.0


def test_loop_float32_and_looped_power():
    """A float32 clip loops to exactly the float64 loop rounded to float32; looped_power's power
    (from the clip's profile) is that of the looped signal up to float rounding."""
    from sernoise.conditions.env import looped_power
    from sernoise.conditions.snr import EnergyProfile

    rng = np.random.default_rng(3)
    for _ in range(200):
        size = int(rng.integers(1, 4000))
        clip = (rng.standard_normal(size) * rng.uniform(1e-3, 1.0)).astype(np.float32)
        offset, length, c = int(rng.integers(size)), int(rng.integers(1, 20000)), int(rng.integers(0, 900))
        ref = loop_to_length(clip.astype(np.float64), offset, length, c)
        y32 = loop_to_length(clip, offset, length, c)
        assert y32.dtype == np.float32 and ref.dtype == np.float64
        np.testing.assert_array_equal(y32, ref.astype(np.float32))
        y, p = looped_power(clip, offset, length, c, EnergyProfile(clip))
        np.testing.assert_array_equal(y, y32)
        assert p == pytest.approx(power(y), rel=1e-12)


class _NoProfiles:
    """The test pool seen through the bare NoiseSource protocol (no energy_profile method)."""

    def __init__(self, pool):
        self.pool = pool

    def files(self, category):
        return self.pool.files(category)

    def read(self, key):
        return self.pool.read(key)

    def draw(self, category, rng):
        return self.pool.draw(category, rng)


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "env", "category": "nat", "position": "cont", "snr_db": 5},
        {"type": "env", "category": "hum", "position": "cont", "snr_db": 5},
        {"type": "env", "category": "int", "position": "start"},
        {"type": "insert", "category": "laugh"},
    ],
)
def test_cached_profiles_change_nothing(spec, test_pool, speech, long_speech):
    """A noise source without cached profiles (profiles computed per draw) gives the same bytes."""
    cond = build_condition("c", spec)
    for x in (speech[1], long_speech):
        a = cond(x, SR, rng_for(9, "c", x.size), _ctx(test_pool))
        b = cond(x, SR, rng_for(9, "c", x.size), _ctx(_NoProfiles(test_pool)))
        assert a.audio.tobytes() == b.audio.tobytes() and a.params == b.params
        np.testing.assert_array_equal(a.noise, b.noise)
        assert abs(additive_snr(x, a.audio, a.span) - a.snr_target) < 1e-4


def test_float32_mix_matches_float64_mix(test_pool, speech):
    """The float32 mix is within float32 rounding (2 ulp of the largest term) of the float64 sum
    rounded once, and the measured SNR does not move."""
    x = speech[2]
    for spec in ({"type": "env", "category": "nat", "position": "cont", "snr_db": 0},
                 {"type": "env", "category": "int", "position": "cont", "snr_db": 20}):
        cond = build_condition("m", spec)
        res = cond(x, SR, rng_for(4, "m", "u"), _ctx(test_pool))
        clip = test_pool.read(res.params["noise_file"])
        offset = int(round(res.params["noise_offset_s"] * SR))
        if res.params["looped"]:
            seg = loop_to_length(clip.astype(np.float64), offset, x.size, int(round(0.05 * SR)))
        else:
            seg = clip[offset : offset + x.size].astype(np.float64)
        exact = (x.astype(np.float64) + res.params["gain"] * seg).astype(np.float32)
        scaled = res.params["gain"] * seg
        ulp = np.spacing(np.maximum.reduce([np.abs(exact), np.abs(x), np.abs(scaled).astype(np.float32)]))
        # three float32 roundings at most (looped segment's seams, the product, the sum)
        assert np.all(np.abs(res.audio.astype(np.float64) - exact) <= 2 * ulp)
        assert abs(additive_snr(x, res.audio) - additive_snr(x, exact)) < 1e-5


def test_input_checks_single_pass():
    from sernoise.conditions.base import finite_peak

    assert finite_peak(np.array([-0.5, 0.25], dtype=np.float32)) == (True, 0.5)
    assert finite_peak(np.array([-0.5, -0.75], dtype=np.float32)) == (True, 0.75)
    for bad in (np.nan, np.inf, -np.inf):
        assert finite_peak(np.array([0.1, bad, 0.2], dtype=np.float32))[0] is False
    cond = EnvironmentalNoise("env-nat-cont-snr10", category="nat", position="cont", snr_db=10)
    x = np.full(100, 0.1, dtype=np.float32)
    x[50] = np.nan
    with pytest.raises(ConditionError, match="NaN/Inf"):
        cond(x, SR, np.random.default_rng(0), Context(utt_id="u"))
    with pytest.raises(ConditionError, match="silent"):
        cond(np.full(100, -1e-7, dtype=np.float32), SR, np.random.default_rng(0), Context(utt_id="u"))


# --------------------------------------------------------------------------- stored speech levels, deferred noise


@pytest.mark.parametrize("spec", [
    {"type": "env", "category": "nat", "position": "cont", "snr_db": 10},
    {"type": "env", "category": "int", "position": "cont", "snr_db": 0},
    {"type": "env", "category": "hum", "position": "start", "snr_db": 5},
    {"type": "insert", "category": "laugh", "snr_db": 5},
])
def test_stored_speech_level_gives_the_same_result_without_p56(spec, test_pool, speech, long_speech, monkeypatch):
    """A Context carrying the utterance's stored P.56 level (what prepared shards hold) gives the
    bytes the condition computes without it, and no P.56 (nor its cache) runs; Result.noise, now
    built on first read, is still exactly y - x in float64."""
    import sernoise.conditions.snr as snr_mod
    from sernoise.conditions.active_level import active_speech_power

    cond = build_condition("c", spec)
    x = long_speech if spec["type"] == "insert" else speech[1]
    plain = cond(x, SR, rng_for(5, "c", "u"), _ctx(test_pool))
    level = active_speech_power(x, SR)

    def no_p56(*args, **kwargs):
        raise AssertionError("P.56 computed although the level was given")

    monkeypatch.setattr(snr_mod, "_active_power", no_p56)
    stored = cond(x, SR, rng_for(5, "c", "u"), Context(utt_id="Actor_01/utt", speaker="01", noise=test_pool,
                                                       active_power=level))
    assert stored.audio.tobytes() == plain.audio.tobytes()
    assert stored.params == plain.params and stored.speech_power == plain.speech_power == level
    expected_noise = stored.audio.astype(np.float64) - x.astype(np.float64)
    assert np.array_equal(stored.noise, expected_noise) and stored.noise.dtype == np.float64
    assert np.array_equal(plain.noise, expected_noise)
    assert "noise=array(" in repr(stored)  # the dataclass repr reads it through the property too


def test_mix_at_snr_deferred_noise_equals_eager():
    from sernoise.conditions.base import DeferredNoise, Result
    from sernoise.conditions.env import mix_at_snr

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    for start, segment in ((0, rng.standard_normal(4000).astype(np.float32)), (700, rng.standard_normal(1500))):
        y, eager, gain = mix_at_snr(x, segment, start, 7.0, speech_power=0.01)
        y2, deferred, gain2 = mix_at_snr(x, segment, start, 7.0, speech_power=0.01, deferred_noise=True)
        assert isinstance(deferred, DeferredNoise) and gain2 == gain and np.array_equal(y2, y)
        result = Result(y2, noise=deferred)
        assert np.array_equal(result.noise, eager) and result.noise is result.noise  # computed once
        assert np.all(result.noise[:start] == 0) and np.all(result.noise[start + segment.size:] == 0)
    assert Result(x).noise is None
