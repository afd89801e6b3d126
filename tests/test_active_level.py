"""SNR against active speech: ITU-T P.56 method B (sernoise.conditions.active_level) and the
``snr.reference`` switch (active | whole) through conditions, params.csv, attack and perception.

Real speech comes from ``../shared/data`` (RAVDESS, skipped when absent); tones, bursts and
near-silence are synthesised here.
"""

from __future__ import annotations

import filecmp
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.optimize import brentq

from sernoise.audio_store import AudioStore, ShardWriter
from sernoise.augment import AugmentError, augment_shard
from sernoise.augmented_io import PARAM_COLUMNS, load_params
from sernoise.conditions import ConditionError, Context, build_condition
from sernoise.conditions import active_level as p56
from sernoise.conditions.active_level import NoActiveSpeech, active_speech_level
from sernoise.conditions.snr import SNR_COLUMNS, additive_snr, power, snr_measures, speech_power
from sernoise.corpora.manifest import MANIFEST_COLUMNS

SR = 16000
# RAVDESS utterances (Actor_01, Actor_02): about a second of leading silence each
UTTS = ["Actor_01/03-01-05-02-01-01-01.wav", "Actor_02/03-01-03-02-02-01-02.wav", "Actor_01/03-01-01-01-01-01-01.wav"]


@pytest.fixture(scope="module")
def ravdess(ravdess_root):
    out = []
    for name in UTTS:
        path = ravdess_root / name
        if not path.is_file():
            pytest.skip(f"shared RAVDESS file missing: {path}")
        x, sr = sf.read(str(path), dtype="float32")
        assert sr == SR
        out.append(x)
    return out


def _tone(seconds: float, amplitude: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    return amplitude * np.sin(2 * np.pi * freq * t)


def _loop_counts(x: np.ndarray, sr: int) -> np.ndarray:
    """P.56's activity counters, sample by sample, as the standard describes them."""
    g = math.exp(-1.0 / (p56.TIME_CONSTANT_S * sr))
    hang = math.ceil(p56.HANGOVER_S * sr)
    thresholds = 10.0 ** (p56.THRESHOLDS_DB / 20.0)
    counts = np.zeros(thresholds.size, dtype=int)
    hold = np.full(thresholds.size, hang)
    p = q = 0.0
    for v in x:
        p = g * p + (1 - g) * abs(v)
        q = g * q + (1 - g) * p
        above = q >= thresholds
        counts += above | (hold < hang)
        hold = np.where(above, 0, np.where(hold < hang, hold + 1, hold))
    return counts


# ----------------------------------------------------------------------------- P.56 itself


def test_vectorised_activity_counts_equal_the_standards_counters():
    rng = np.random.default_rng(3)
    x = np.concatenate([np.zeros(2000), rng.normal(0, 0.2, 3000), np.zeros(4500), 0.003 * rng.normal(size=1500),
                        np.zeros(3500), _tone(0.1, 0.5), np.zeros(500)])
    expected = _loop_counts(x, SR)
    got = p56.activity_counts(p56.envelope(x, SR), SR)
    np.testing.assert_array_equal(got, expected)
    assert expected[0] > expected[-40] > 0  # the signal spans many thresholds


def test_continuous_tone_is_all_active():
    for amplitude in (1.0, 0.05):
        level = active_speech_level(_tone(3.0, amplitude), SR)
        assert level.level_db == pytest.approx(10 * math.log10(amplitude**2 / 2), abs=0.05)
        assert level.activity > 0.99  # only the envelope's rise (~20 ms) is not counted
        assert level.long_term_db == pytest.approx(10 * math.log10(amplitude**2 / 2), abs=1e-3)


def test_tone_bursts_match_the_hand_worked_activity():
    """Three 1 s bursts of a 1 kHz tone (amplitude a) between 3 s of digital silence.

    The envelope of a burst settles at e0 = 2a/π (mean of |sin|).  Two cascaded smoothers of
    time constant T: after the onset q = e0·(1 − (1 + t/T)·e^(−t/T)), after the end
    q = e0·(1 + t/T)·e^(−t/T).  At threshold c = e0·r a burst is active from the rise crossing
    t_r, (1 + u)e^(−u) = 1 − r, to the end plus the decay crossing t_d, (1 + u)e^(−u) = r, plus
    the 0.2 s hangover.  The level is the burst power a²/2 scaled by 1 s over that active time,
    and c = level − 15.9 dB: a fixed point, solved by iteration.
    """
    a, burst, gap, k = 0.5, 1.0, 3.0, 3
    x = np.concatenate([np.zeros(int(gap * SR))] + [np.concatenate([_tone(burst, a), np.zeros(int(gap * SR))])
                                                     for _ in range(k)])
    e0, tau = 2 * a / math.pi, p56.TIME_CONSTANT_S

    def crossing(value):  # u >= 0 with (1 + u) e^(-u) = value
        return brentq(lambda u: (1 + u) * math.exp(-u) - value, 0.0, 50.0)

    level = 10 * math.log10(a**2 / 2)
    for _ in range(50):
        r = 10 ** ((level - p56.MARGIN_DB) / 20) / e0
        active = burst - tau * crossing(1 - r) + tau * crossing(r) + p56.HANGOVER_S
        level = 10 * math.log10(a**2 / 2 * burst / active)
    measured = active_speech_level(x, SR)
    assert measured.level_db == pytest.approx(level, abs=0.1)
    assert measured.activity == pytest.approx(k * active / (x.size / SR), rel=0.02)
    # the whole-signal power says 10·log10(3 s of tone in 12 s) lower: a quarter duty cycle
    assert measured.long_term_db == pytest.approx(10 * math.log10(a**2 / 2 * k * burst / (x.size / SR)), abs=0.01)


def test_level_follows_gain_exactly_on_the_grid(ravdess):
    x = ravdess[0].astype(np.float64)
    base = active_speech_level(x, SR)
    for gain_db in (-20.0, -6.0, 4.0):
        scaled = active_speech_level(x * 10 ** (gain_db / 20), SR)
        assert scaled.level_db == pytest.approx(base.level_db + gain_db, abs=1e-6)
        assert scaled.activity == pytest.approx(base.activity, abs=1e-9)


def test_padding_with_silence_leaves_the_active_level_but_not_the_whole_one(ravdess):
    for x in ravdess:
        for ratio in (2, 4):
            extra = (ratio - 1) * x.size
            padded = np.concatenate([np.zeros(extra // 2, np.float32), x, np.zeros(extra - extra // 2, np.float32)])
            active, active_padded = speech_power(x, reference="active"), speech_power(padded, reference="active")
            assert abs(10 * math.log10(active_padded / active)) < 0.5
            whole, whole_padded = speech_power(x, reference="whole"), speech_power(padded, reference="whole")
            assert 10 * math.log10(whole / whole_padded) == pytest.approx(10 * math.log10(ratio), abs=1e-6)
        # RAVDESS files are about half silence: the active level lies well above the whole-file one
        level = active_speech_level(x, SR)
        assert 0.2 < level.activity < 0.9 and level.level_db - level.long_term_db > 1.0


def test_padding_with_the_recordings_own_silence(ravdess):
    # not digital zeros: the room noise of the file's first 0.3 s, repeated
    x = ravdess[1]
    room = np.tile(x[: int(0.3 * SR)], 10)
    padded = np.concatenate([room, x, room])
    active = active_speech_level(x, SR).level_db
    assert abs(active_speech_level(padded, SR).level_db - active) < 0.5


def test_silent_and_nearly_silent_input_name_the_utterance():
    with pytest.raises(NoActiveSpeech, match="u-silent.*no active speech"):
        active_speech_level(np.zeros(SR), SR, utt_id="u-silent")
    lsb = np.random.default_rng(0).choice([-1.0, 0.0, 1.0], size=2 * SR) / 32768  # 16-bit rounding noise
    with pytest.raises(NoActiveSpeech, match="u-lsb.*no active speech"):
        active_speech_level(lsb, SR, utt_id="u-lsb")
    with pytest.raises(NoActiveSpeech, match="u-empty"):
        active_speech_level(np.zeros(0), SR, utt_id="u-empty")
    # a whisper at -60 dBFS is still speech to P.56
    assert active_speech_level(_tone(1.0, 1e-3), SR).level_db == pytest.approx(-63.0, abs=0.1)


# ----------------------------------------------------------------------------- the switch


class WhiteNoise:
    """A NoiseSource with one white-noise file per category."""

    def files(self, category):
        return [f"white:{category}.wav"]

    def read(self, key):
        return (0.1 * np.random.default_rng(len(key)).standard_normal(4 * SR)).astype(np.float32)

    def draw(self, category, rng):
        key = self.files(category)[0]
        return key, self.read(key)


ENV_CONT = {"type": "env", "category": "nat", "position": "cont", "snr_db": 10}
ENV_START = {"type": "env", "category": "nat", "position": "start", "snr_db": 10}


def test_reference_switch_changes_the_scaling(ravdess):
    x = ravdess[0]
    ctx = Context(utt_id="Actor_01/u0", noise=WhiteNoise())
    outs = {}
    for reference in ("active", "whole"):
        cond = build_condition("env-nat-cont-snr10", ENV_CONT, snr_reference=reference)
        assert cond.snr_reference == reference
        outs[reference] = cond(x, SR, np.random.default_rng(5), ctx)
    a, w = outs["active"], outs["whole"]
    assert a.params["noise_file"] == w.params["noise_file"] and a.params["noise_offset_s"] == w.params["noise_offset_s"]
    p_active, p_whole = active_speech_level(x, SR).power, power(x)
    # same noise segment, gains in the ratio of the two speech levels
    assert a.params["gain"] / w.params["gain"] == pytest.approx(math.sqrt(p_active / p_whole), rel=1e-9)
    assert 10 * math.log10(p_active / p_whole) > 1.0
    assert abs(additive_snr(x, a.audio, a.span, "active") - 10) < 0.01
    assert abs(additive_snr(x, w.audio, w.span, "whole") - 10) < 0.01
    # under the other definition each is off by the level difference
    shift = 10 * math.log10(p_active / p_whole)
    assert additive_snr(x, a.audio, a.span, "whole") == pytest.approx(10 - shift, abs=0.01)


def test_start_reference_is_the_active_level_not_the_first_seconds(ravdess):
    x = ravdess[0]
    ctx = Context(utt_id="Actor_01/u0", noise=WhiteNoise())
    res = build_condition("env-nat-start", ENV_START)(x, SR, np.random.default_rng(2), ctx)
    start, stop = res.span
    assert start == 0 and stop >= SR
    p_noise = power(res.audio[start:stop].astype(np.float64) - x[start:stop])
    assert 10 * math.log10(active_speech_level(x, SR).power / p_noise) == pytest.approx(10, abs=0.01)
    # the first 1-2 s of a RAVDESS file are mostly silence: their power lies several dB under the speech
    assert 10 * math.log10(power(x[start:stop]) / p_noise) < 7


def test_bad_reference_is_an_error_naming_the_key():
    with pytest.raises(ConditionError, match="snr.reference"):
        build_condition("env-nat-cont-snr10", ENV_CONT, snr_reference="peak")


def test_schema_knows_the_reference(repo_root):
    import copy

    import yaml

    from sernoise.config import ConfigError, validate_config

    schema = repo_root / "schemas" / "config.schema.yaml"
    base = yaml.safe_load((repo_root / "config.yaml").read_text())
    assert validate_config(copy.deepcopy(base), schema)["snr"]["reference"] == "active"
    bad = copy.deepcopy(base)
    bad["snr"]["reference"] = "peak"
    with pytest.raises(ConfigError, match="snr.reference"):
        validate_config(bad, schema)
    del base["snr"]
    assert validate_config(base, schema)["snr"] == {"reference": "active"}  # the default


# ----------------------------------------------------------------------------- params.csv


@pytest.fixture
def corpus(tmp_path, ravdess):
    rows = []
    with ShardWriter(tmp_path / "clean.h5") as writer:
        for i, x in enumerate(ravdess):
            writer.add(f"u{i}", x)
            rows.append({c: "" for c in MANIFEST_COLUMNS} | {"utt_id": f"u{i}", "speaker": f"s{i}"})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS), AudioStore([tmp_path / "clean.h5"])


def _augment(spec, corpus, out, reference, condition_id="env-nat-cont-snr10"):
    rows, store = corpus
    out.mkdir(parents=True, exist_ok=True)
    cond = build_condition(condition_id, spec, snr_reference=reference)
    augment_shard(cond, rows, store, pool="test", global_seed=7, noise=WhiteNoise(), out_shard=out / "shard-000.h5",
                  out_params=out / "params-000.csv", out_status=out / "status-000.json", quality={"pools": []},
                  progress=False)
    return load_params(out / "params-000.csv")


@pytest.mark.parametrize("spec,condition_id", [(ENV_CONT, "env-nat-cont-snr10"), (ENV_START, "env-nat-start")])
def test_params_record_both_levels_and_both_snrs(corpus, tmp_path, spec, condition_id):
    rows, store = corpus
    frames = {r: _augment(spec, corpus, tmp_path / r, r, condition_id) for r in ("active", "whole")}
    for reference, params in frames.items():
        assert set(SNR_COLUMNS) <= set(params.columns) and set(SNR_COLUMNS) <= set(PARAM_COLUMNS)
        assert (params["status"] == "ok").all() and (params["snr_reference"] == reference).all()
        # the 0.1 dB bar (SPEC §11) holds under the chosen definition
        assert (params["snr_measured"] - 10).abs().max() < 0.1
        assert np.array_equal(params["snr_measured"], params[f"snr_measured_{reference}"])
        shift = params["speech_level_active_db"] - params["speech_level_whole_db"]
        assert (shift > 1.0).all()  # onset windows and whole files both hold silence
        np.testing.assert_allclose(params["snr_measured_active"] - params["snr_measured_whole"], shift, atol=1e-9)
        for i in range(len(rows)):
            x = store.read(f"u{i}")
            assert params.loc[i, "speech_level_active_db"] == pytest.approx(active_speech_level(x, SR).level_db,
                                                                            abs=1e-9)
    # the active level is the utterance's, whichever reference scaled the noise
    np.testing.assert_allclose(frames["active"]["speech_level_active_db"], frames["whole"]["speech_level_active_db"])


def test_same_config_same_bytes_under_each_reference(corpus, tmp_path):
    for reference in ("active", "whole"):
        for run in ("a", "b"):
            _augment(ENV_CONT, corpus, tmp_path / reference / run, reference)
        for name in ("shard-000.h5", "params-000.csv", "status-000.json"):
            assert filecmp.cmp(tmp_path / reference / "a" / name, tmp_path / reference / "b" / name, shallow=False)
    assert not filecmp.cmp(tmp_path / "active" / "a" / "shard-000.h5", tmp_path / "whole" / "a" / "shard-000.h5",
                           shallow=False)


def test_nearly_silent_utterance_fails_naming_it(tmp_path):
    rows = []
    rng = np.random.default_rng(1)
    with ShardWriter(tmp_path / "clean.h5") as writer:
        writer.add("u-quiet", (rng.choice([-1.0, 1.0], size=SR) / 32768).astype(np.float32))
        rows.append({c: "" for c in MANIFEST_COLUMNS} | {"utt_id": "u-quiet", "speaker": "s0"})
    corpus = (pd.DataFrame(rows, columns=MANIFEST_COLUMNS), AudioStore([tmp_path / "clean.h5"]))
    with pytest.raises(AugmentError, match="utterance u-quiet.*no active speech"):
        _augment(ENV_CONT, corpus, tmp_path / "out", "active")


def test_snr_measures_under_whole_without_speech_keeps_the_whole_columns():
    x = (np.random.default_rng(0).choice([-1.0, 1.0], size=SR) / 32768).astype(np.float32)
    y = x + np.float32(1e-5)
    out = snr_measures(x, y, None, "whole")
    assert math.isnan(out["speech_level_active_db"]) and math.isnan(out["snr_measured_active"])
    assert out["snr_measured"] == out["snr_measured_whole"] == pytest.approx(additive_snr(x, y, None, "whole"))


# ----------------------------------------------------------------------------- other stages


def test_perception_gold_noisy_uses_the_reference(ravdess):
    from sernoise.perception.export import mix_at_snr

    x = ravdess[0]
    for reference, p_speech in (("active", active_speech_level(x, SR).power), ("whole", power(x))):
        y = mix_at_snr(x, -30.0, np.random.default_rng(0), reference=reference)
        p_noise = power(y.astype(np.float64) - x)
        assert 10 * math.log10(p_speech / p_noise) == pytest.approx(-30.0, abs=0.01)


def test_attack_additive_instance_uses_the_reference(ravdess):
    from sernoise.attack.perturb import draw_instance

    x = ravdess[0]
    for reference in ("active", "whole"):
        cond = build_condition("env-nat-cont-snr20", {**ENV_CONT, "snr_db": 20}, snr_reference=reference)
        instance, _ = draw_instance("nat", [cond], x, Context(utt_id="u0", noise=WhiteNoise()),
                                    np.random.default_rng(4), 30.0)
        y = instance.perturb(5)
        assert abs(additive_snr(x, y, instance.span, reference) - 25.0) < 0.01
        assert instance.level(5)["snr_measured"] == pytest.approx(additive_snr(x, y, instance.span, reference),
                                                                  abs=1e-9)


def test_denoise_measures_use_the_reference(ravdess):
    from sernoise.denoise import measure

    x = ravdess[0]
    noisy = build_condition("env-nat-cont-snr10", ENV_CONT)(x, SR, np.random.default_rng(0),
                                                            Context(utt_id="u0", noise=WhiteNoise())).audio
    for reference in ("active", "whole"):
        row, _ = measure(x, noisy, noisy, additive=True, stoi=False, pesq=False, snr_reference=reference)
        assert row["snr_before"] == pytest.approx(additive_snr(x, noisy, None, reference), abs=1e-9)
    active_row, _ = measure(x, noisy, noisy, additive=True, stoi=False, pesq=False)
    assert active_row["snr_before"] == pytest.approx(10.0, abs=0.01)  # the default is active


def test_remembered_levels_follow_the_samples(ravdess):
    from sernoise.conditions.active_level import active_speech_power

    x = ravdess[2].copy()
    first = speech_power(x)
    assert speech_power(x.copy()) == first == active_speech_power(x, SR)
    x[x.size // 2 :] *= 2  # same array object, other samples: not the remembered level
    assert speech_power(x) == active_speech_power(x, SR) != first
