"""Signal-processing conditions on real speech: speed (utterance, segment), pitch, reverb.

Measured properties rather than reference outputs: durations, f0 ratios (librosa YIN),
untouched audio outside a sped-up segment, late (reverberant) energy after a speech offset,
batch == per-utterance, determinism, and the error paths (bad arguments, missing tools,
silent input, tool failures).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sernoise.conditions import ConditionError, Context, SkipUtterance, build_condition
from sernoise.conditions import tools
from sernoise.conditions.pitch import PitchShift
from sernoise.conditions.reverb import Reverb
from sernoise.conditions.speed import SpeedSegment, SpeedUtterance

SR = 16000
FILE = ("Actor_01", "03-01-05-02-01-01-01.wav")
OTHER = ("Actor_02", "03-01-01-01-01-01-02.wav")


def _read(root, parts) -> np.ndarray:
    x, sr = sf.read(root.joinpath(*parts), dtype="float32")
    assert sr == SR and x.ndim == 1
    return x


@pytest.fixture(scope="module")
def speech(ravdess_root) -> np.ndarray:
    return _read(ravdess_root, FILE)


@pytest.fixture(scope="module")
def speech2(ravdess_root) -> np.ndarray:
    return _read(ravdess_root, OTHER)


def ctx(utt="utt") -> Context:
    return Context(utt_id=utt, speaker="spk")


def rng(seed=0) -> np.random.Generator:
    return np.random.default_rng(seed)


def f0_track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 per 10 ms frame and a mask of loud (voiced-ish) frames."""
    import librosa

    f0 = librosa.yin(x, fmin=60, fmax=800, sr=SR, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=160)[0]
    return f0, rms > 0.1 * rms.max()


def median_f0(x: np.ndarray) -> float:
    f0, loud = f0_track(x)
    return float(np.median(f0[loud]))


def log_mel(x: np.ndarray) -> np.ndarray:
    import librosa

    m = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=400, hop_length=160, n_mels=40)
    return librosa.power_to_db(m, ref=1.0, top_db=None).ravel()


# --------------------------------------------------------------------------- speed (utterance)
@pytest.mark.parametrize("factor", [1.25, 0.75])
def test_speed_utterance_duration_and_pitch(speech, factor):
    cond = build_condition(f"speed-utt-{factor}", {"type": "speed_utterance", "factor": factor})
    assert isinstance(cond, SpeedUtterance) and cond.perception == "altering"
    res = cond(speech, SR, rng(), ctx())
    y = res.audio
    assert y.dtype == np.float32
    assert abs(y.size - speech.size / factor) <= 0.01 * speech.size / factor
    assert res.params["factor"] == factor
    assert res.params["duration_in_s"] == pytest.approx(speech.size / SR)
    assert res.params["duration_out_s"] == pytest.approx(y.size / SR)
    assert np.isnan(res.snr_target)
    # tempo, not resampling: the median f0 stays within 3 %
    assert median_f0(y) / median_f0(speech) == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("factor", [1.25, 0.75, 1.9, 0.55])
def test_speed_utterance_batch_is_bit_identical(speech, speech2, factor):
    """One SoX process, one tempo chain per utterance: every output equals its separate call."""
    cond = SpeedUtterance(f"speed-utt-{factor}", factor=factor)
    assert cond.batch_exact
    noise = (0.1 * np.random.default_rng(0).standard_normal(12345)).astype(np.float32)
    xs = [speech, speech2, speech[: SR // 3], noise, speech2[101:4000], speech[:640]]
    singles = [cond(x, SR, rng(i), ctx(f"u{i}")) for i, x in enumerate(xs)]
    batch = cond.apply_batch(xs, SR, [rng(i) for i in range(len(xs))], [ctx(f"u{i}") for i in range(len(xs))])
    assert len(batch) == len(xs)
    for x, s, b in zip(xs, singles, batch):
        assert b.params == s.params
        assert b.audio.dtype == np.float32 and b.audio.size == round(x.size / factor)
        assert s.audio.tobytes() == b.audio.tobytes()
    assert cond.apply_batch([], SR) == []
    with pytest.raises(ConditionError, match="u1.*silent"):
        cond.apply_batch([speech, np.zeros(SR, dtype=np.float32)], SR, None, [ctx("u0"), ctx("u1")])


def test_sox_batch_checks_output_lengths(speech):
    with pytest.raises(ConditionError, match="expected total"):
        tools.run_sox_batch([speech, speech], SR, [["tempo", "-s", "1.25"]] * 2, out_lengths=[10, 10])
    with pytest.raises(ConditionError, match="input's total"):
        tools.run_sox_batch([speech], SR, [["tempo", "-s", "1.25"]])


# --------------------------------------------------------------------------- speed (segment)
def test_speed_segment_bounds_splice_and_duration(speech):
    cond = build_condition("speed-seg", {"type": "speed_segment"})
    assert isinstance(cond, SpeedSegment) and cond.perception == "retaining"
    n = speech.size
    c = int(0.010 * SR)
    max_step = float(np.max(np.abs(np.diff(speech))))
    for seed in range(6):
        res = cond(speech, SR, rng(seed), ctx())
        p, y = res.params, res.audio
        a, b = round(p["segment_start_s"] * SR), round(p["segment_end_s"] * SR)
        length = b - a
        assert 0.1 * n - 1 <= length <= 0.25 * n + 1
        assert 0 <= a < b <= n
        # duration change equals segment_len * (1 - 1/factor) within 1 % (it is exact up to rounding)
        change = n - y.size
        expected = length * (1 - 1 / 1.25)
        assert abs(change - expected) <= max(1.0, 0.01 * expected)
        assert p["duration_out_s"] == pytest.approx(y.size / SR)
        m = length - change  # samples of the sped-up segment in the output
        # untouched before and after the segment (the crossfades lie inside the segment's output)
        np.testing.assert_array_equal(y[:a], speech[:a])
        np.testing.assert_array_equal(y[a + m :], speech[b:])
        # WSOLA starts in phase: even the start crossfade region is (almost) the input
        np.testing.assert_allclose(y[a : a + c], speech[a : a + c], atol=1e-5)
        # no click at the end splice: no sample step larger than the input's largest
        around = y[max(a + m - c - 8, 1) : a + m + 8]
        assert float(np.max(np.abs(np.diff(around)))) <= max_step


def test_speed_segment_determinism_and_short_utterances(speech):
    cond = SpeedSegment("speed-seg")
    one, two = cond(speech, SR, rng(7), ctx()), cond(speech, SR, rng(7), ctx())
    assert one.audio.tobytes() == two.audio.tobytes() and one.params == two.params
    other = cond(speech, SR, rng(8), ctx())
    assert other.params["segment_start_s"] != one.params["segment_start_s"]
    with pytest.raises(SkipUtterance, match="shorter than"):
        cond(speech[: int(0.15 * SR)], SR, rng(), ctx())


def test_speed_segment_slow_down(speech):
    cond = SpeedSegment("seg-slow", factor=0.8, min_fraction=0.2, max_fraction=0.2)
    res = cond(speech, SR, rng(3), ctx())
    length = round((res.params["segment_end_s"] - res.params["segment_start_s"]) * SR)
    assert res.audio.size - speech.size == pytest.approx(length * (1 / 0.8 - 1), abs=1)


# --------------------------------------------------------------------------- pitch
@pytest.mark.parametrize("factor", [1.25, 0.75])
def test_pitch_shift_ratio_and_duration(speech, factor):
    cond = build_condition(f"pitch-{factor}", {"type": "pitch", "factor": factor})
    assert isinstance(cond, PitchShift) and cond.perception == "altering"
    res = cond(speech, SR, rng(), ctx())
    assert res.audio.size == speech.size and res.audio.dtype == np.float32
    assert res.params == {"factor": factor, "semitones": pytest.approx(12 * np.log2(factor))}
    # same timeline, so compare f0 frame by frame on frames loud in both
    fx, lx = f0_track(speech)
    fy, ly = f0_track(res.audio)
    both = lx & ly
    assert both.sum() > 50
    assert float(np.median(fy[both] / fx[both])) == pytest.approx(factor, rel=0.03)


def test_pitch_batch_matches_single_calls(speech, speech2):
    cond = PitchShift("pitch-up", factor=1.25)
    xs = [speech, speech2[: int(2.5 * SR)]]
    singles = [cond(x, SR, rng(), ctx()) for x in xs]
    batch = cond.apply_batch(xs, SR)
    assert len(batch) == 2
    for x, s, b in zip(xs, singles, batch):
        assert b.audio.size == x.size and b.params == s.params
        # Rubber Band's output phase depends on where an utterance sits in the stream, so the
        # waveforms differ; the spectro-temporal content is the same (and clearly shifted)
        same = np.corrcoef(log_mel(b.audio), log_mel(s.audio))[0, 1]
        assert same > 0.99
        assert same > np.corrcoef(log_mel(x), log_mel(s.audio))[0, 1]
    # deterministic per call
    assert cond(speech, SR, rng(1), ctx()).audio.tobytes() == singles[0].audio.tobytes()


def test_pitch_fast_engine_options():
    cond = PitchShift("p", factor=0.75, engine="fast", crisp=3, formant=False)
    assert cond.options() == ["--fast", "--frequency", "0.75", "--crisp", "3"]
    assert PitchShift("p").options() == ["--fine", "--frequency", "1.25", "--formant"]


# --------------------------------------------------------------------------- reverb
def _late_energy_db(x: np.ndarray, ref: np.ndarray) -> float:
    """Energy 30-250 ms after the last loud frame of ``ref`` relative to ``ref``'s speech energy."""
    hop = 160
    frames = ref[: ref.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-30 / 20))
    offset = (loud[-1] + 1) * hop
    late = x[offset + int(0.03 * SR) : offset + int(0.25 * SR)].astype(np.float64)
    speech_power = np.mean(frames[loud].astype(np.float64) ** 2)
    return 10 * np.log10(np.mean(late**2) / speech_power + 1e-20)


def test_reverb_adds_late_energy_growing_with_reverberance(speech):
    cond = build_condition("reverb", {"type": "reverb"})
    assert isinstance(cond, Reverb) and cond.perception == "retaining"
    res = cond(speech, SR, rng(), ctx())
    assert res.audio.size == speech.size and res.audio.dtype == np.float32
    dry = _late_energy_db(speech, speech)
    wet = _late_energy_db(res.audio, speech)
    assert wet > dry + 10  # the decay after the speech offset is much longer
    fixed = dict(room_scale=100, hf_damping=50, pre_delay_ms=0)
    low = Reverb("rev-low", reverberance=30, **fixed)(speech, SR, rng(), ctx())
    high = Reverb("rev-high", reverberance=90, **fixed)(speech, SR, rng(), ctx())
    assert _late_energy_db(high.audio, speech) > _late_energy_db(low.audio, speech) + 3
    # the dry path keeps its level (fixed headroom, no normalisation): the output correlates with x
    assert np.corrcoef(high.audio, speech)[0, 1] > 0.5


def test_reverb_params_determinism_and_batch(speech, speech2):
    cond = Reverb("reverb", reverberance=[30, 90], room_scale=[30, 100], wet_gain_db=[-3, 3])
    one, two = cond(speech, SR, rng(5), ctx()), cond(speech, SR, rng(5), ctx())
    assert one.audio.tobytes() == two.audio.tobytes() and one.params == two.params
    other = cond(speech, SR, rng(6), ctx())
    assert other.params != one.params
    for name, (low, high) in cond.ranges.items():
        assert low <= one.params[name] <= high and round(one.params[name], 2) == one.params[name]
    assert one.params["wet_only"] is False
    xs = [speech, speech2, speech[: SR // 2]]
    singles = [cond(x, SR, rng(i), ctx()) for i, x in enumerate(xs)]
    batch = cond.apply_batch(xs, SR, [rng(i) for i in range(len(xs))])
    for s, b in zip(singles, batch):
        assert s.params == b.params
        assert s.audio.tobytes() == b.audio.tobytes()  # one effects chain per utterance: bit-identical


def test_reverb_loud_input_does_not_clip(speech):
    loud = speech / np.max(np.abs(speech)) * 0.99
    res = Reverb("rev", reverberance=100, room_scale=100, wet_gain_db=6)(loud, SR, rng(), ctx())
    assert np.all(np.isfinite(res.audio)) and res.audio.size == loud.size


def test_reverb_wet_only(speech):
    res = Reverb("rev", wet_only=True)(speech, SR, rng(), ctx())
    assert res.params["wet_only"] is True
    assert "-w" in Reverb.effect(res.params)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "spec, argument",
    [
        ({"type": "speed_utterance", "factor": 3.0}, "factor"),
        ({"type": "speed_utterance", "factor": "fast"}, "factor"),
        ({"type": "speed_utterance", "factor": 1.0}, "factor"),
        ({"type": "speed_segment", "max_fraction": 1.5}, "max_fraction"),
        ({"type": "speed_segment", "min_fraction": 0.3, "max_fraction": 0.2}, "min_fraction"),
        ({"type": "speed_segment", "crossfade_ms": -1}, "crossfade_ms"),
        ({"type": "pitch", "factor": 0.4}, "factor"),
        ({"type": "pitch", "engine": "r4"}, "engine"),
        ({"type": "pitch", "crisp": 3}, "crisp"),
        ({"type": "pitch", "engine": "fast", "crisp": 9}, "crisp"),
        ({"type": "pitch", "formant": "yes"}, "formant"),
        ({"type": "reverb", "reverberance": [30, 120]}, "reverberance"),
        ({"type": "reverb", "room_scale": [90, 30]}, "room_scale"),
        ({"type": "reverb", "pre_delay_ms": [0, 1, 2]}, "pre_delay_ms"),
        ({"type": "reverb", "wet_gain_db": 11}, "wet_gain_db"),
        ({"type": "reverb", "hf_damping": "x"}, "hf_damping"),
        ({"type": "reverb", "wet_only": 1}, "wet_only"),
    ],
)
def test_constructor_errors_name_id_and_argument(spec, argument):
    with pytest.raises(ConditionError) as error:
        build_condition("my-cond", spec)
    assert "my-cond" in str(error.value) and argument in str(error.value)


def test_unknown_argument_names_condition():
    with pytest.raises(ConditionError, match="my-cond"):
        build_condition("my-cond", {"type": "reverb", "size": 3})


@pytest.mark.parametrize(
    "condition, package",
    [
        (SpeedUtterance("s"), "sox"),
        (SpeedSegment("s"), "sox"),
        (Reverb("r"), "sox"),
        (PitchShift("p"), "rubberband-cli"),
    ],
)
def test_missing_executable(monkeypatch, tmp_path, speech, condition, package):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConditionError, match=f"package `{package}`"):
        condition(speech, SR, rng(), ctx())


def test_silent_input_rejected():
    for cond in (SpeedUtterance("s"), SpeedSegment("s"), PitchShift("p"), Reverb("r")):
        with pytest.raises(ConditionError, match="silent"):
            cond(np.zeros(SR, np.float32), SR, rng(), ctx("u1"))
    with pytest.raises(ConditionError, match="silent"):
        Reverb("r").apply_batch([np.ones(10, np.float32), np.zeros(10, np.float32)], SR, [rng(), rng()])


def test_tool_failure_carries_stderr(speech):
    with pytest.raises(ConditionError, match="reverberance"):
        tools.run_sox(speech, SR, ["reverb", "101"])
    with pytest.raises(ConditionError, match="exit status 2: .*unrecognized option"):
        tools.run_rubberband(speech[:SR], SR, ["--bogus", "--frequency", "1.25"])


def test_describe_round_trip():
    for spec in (
        {"type": "speed_utterance", "factor": 0.75},
        {"type": "speed_segment", "factor": 1.25, "max_fraction": 0.2},
        {"type": "pitch", "factor": 0.75},
        {"type": "reverb", "reverberance": [40, 60], "wet_only": False},
    ):
        cond = build_condition("c", spec)
        described = cond.describe()
        rebuilt = build_condition("c", {"type": described["type"], **cond.args()})
        assert rebuilt.args() == cond.args()
