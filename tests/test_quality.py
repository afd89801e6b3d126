"""DNSMOS and fwSNRseg (sernoise.quality.QualityMeter): values on real speech, fwSNRseg against a
computation from its definition, the params.csv columns of augmented and denoised datasets, and the
UAR-drop-against-quality table and plot (sernoise.evaluation.quality_plot)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sernoise.audio_store import AudioStore, ShardWriter
from sernoise.augment import augment_shard
from sernoise.augmented_io import PARAM_COLUMNS, load_params
from sernoise.conditions import build_condition
from sernoise.corpora.manifest import MANIFEST_COLUMNS
from sernoise.quality import (
    METER_COLUMNS,
    QualityMeter,
    dnsmos_scorer,
    in_dnsmos_sample,
    measure_dnsmos,
    measure_fwsnrseg,
    meter_measures,
)

pytest.importorskip("speechmos", reason="speechmos is not installed (pip install -r requirements.txt)")
if importlib.util.find_spec("pysepm_evo") is None:  # not importorskip: its __init__ cannot import (see quality.py)
    pytest.skip("pysepm-evo is not installed (pip install -r requirements.txt)", allow_module_level=True)

SR = 16000
DNSMOS = METER_COLUMNS["dnsmos"]


def _ravdess(ravdess_root, names):
    out = []
    for name in names:
        x, sr = sf.read(ravdess_root / f"Actor_{name[-6:-4]}" / name, dtype="float32")
        assert sr == SR, "shared data is 16 kHz"
        out.append(x)
    return out


def _at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.resize(noise, x.size).astype(np.float64)
    gain = np.sqrt(np.mean(x.astype(np.float64) ** 2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    y = x + gain * noise
    return (y / max(1.0, np.max(np.abs(y)))).astype(np.float32)


# ------------------------------------------------------------------------------ DNSMOS


def test_dnsmos_clean_speech_scores_higher_than_the_same_speech_in_0db_noise(ravdess_root, noise_root):
    """Real speech (two RAVDESS actors) against itself in real rain at 0 dB SNR: OVRL and BAK drop."""
    rain, sr = sf.read(noise_root / "soundscapes_cc0" / "rain.wav", dtype="float32")
    assert sr == SR
    for x in _ravdess(ravdess_root, ["03-01-01-01-01-01-01.wav", "03-01-05-02-02-01-02.wav"]):
        clean, note = measure_dnsmos(x)
        noisy, _ = measure_dnsmos(_at_snr(x, rain[SR:], 0))
        assert note == "" and all(1.0 <= clean[c] <= 5.0 for c in DNSMOS), clean
        assert clean["dnsmos_ovrl"] > noisy["dnsmos_ovrl"] + 0.5, (clean, noisy)
        assert clean["dnsmos_bak"] > noisy["dnsmos_bak"] + 0.5, (clean, noisy)


def test_one_thread_sessions_score_as_speechmos_does(ravdess_root):
    """Our single-thread ONNX sessions give speechmos.dnsmos.run's numbers (its default sessions)."""
    from speechmos import dnsmos

    (x,) = _ravdess(ravdess_root, ["03-01-03-01-01-01-03.wav"])
    ours, _ = measure_dnsmos(x)
    theirs = dnsmos.run(x, SR)
    for column, key in zip(DNSMOS, ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")):
        assert ours[column] == pytest.approx(float(theirs[key]), abs=1e-4)
    scorer = dnsmos_scorer()
    assert scorer is dnsmos_scorer()  # opened once per process
    assert scorer.onnx_sess.get_session_options().intra_op_num_threads == 1


def test_dnsmos_edge_cases():
    # 1.2 s: one 9.01 s window after repetition; the same audio gives the same scores
    x = (0.1 * np.random.default_rng(3).standard_normal(int(1.2 * SR))).astype(np.float32)
    first, second = measure_dnsmos(x), measure_dnsmos(x.copy())
    assert first == second and first[1] == ""
    loud, note = measure_dnsmos(x / np.max(np.abs(x)) * 1.5)  # stored audio can peak above 1: scaled, noted
    assert "above full scale" in note and all(1.0 <= loud[c] <= 5.0 for c in DNSMOS)
    values, note = measure_dnsmos(np.zeros(SR, dtype=np.float32))
    assert all(math.isnan(values[c]) for c in DNSMOS) and "silent" in note
    values, note = measure_dnsmos(np.zeros(0, dtype=np.float32))
    assert all(math.isnan(values[c]) for c in DNSMOS) and "empty" in note


# ------------------------------------------------------------------------------ fwSNRseg

# Hu & Loizou (2008), as in Loizou's comp_fwseg.m: 25 critical bands (centre, bandwidth in Hz).
BAND_CENTRES = [50, 120, 190, 260, 330, 400, 470, 540, 617.372, 703.378, 798.717, 904.128, 1020.38, 1148.30,
                1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97, 2978.04, 3276.17, 3597.63]
BAND_WIDTHS = [70, 70, 70, 70, 70, 70, 70, 77.3724, 86.0056, 95.3398, 105.411, 116.256, 127.914, 140.423, 153.823,
               168.154, 183.457, 199.776, 217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136]


def reference_fwsnrseg(clean: np.ndarray, processed: np.ndarray, fs: int = SR) -> float:
    """fwSNRseg from its definition, one frame at a time:

        fwSNRseg = 1/M Σ_m clip_[-10,35]( Σ_j W(j,m) · 10 log10( X(j,m)² / (X(j,m) − X̂(j,m))² ) / Σ_j W(j,m) )

    X, X̂: the critical-band magnitudes (Gaussian-shaped band filters on the magnitude spectrum,
    normalised to unit sum per frame) of the clean and processed frame; W = X^0.2; 30 ms Hann frames,
    75 % overlap, floor(L/skip − win/skip) frames (comp_fwseg.m's loop)."""
    clean, processed = clean.astype(np.float64), processed.astype(np.float64)
    win = round(0.03 * fs)
    skip = win // 4
    nfft = int(2 ** np.ceil(np.log2(2 * win)))
    half = nfft // 2
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, win + 1) / (win + 1)))
    bins = np.arange(half)
    filters = []
    for centre, width in zip(BAND_CENTRES, BAND_WIDTHS):
        f0 = math.floor(centre / (fs / 2) * half)
        bw = width / (fs / 2) * half
        h = np.exp(-11 * ((bins - f0) / bw) ** 2) * (BAND_WIDTHS[0] / width)
        filters.append(np.where(h > math.exp(-30 / (2 * 2.303)), h, 0.0))  # cut at the filter's -30 dB point
    filters = np.array(filters)
    values = []
    for m in range(int(np.floor(clean.size / skip - win / skip))):
        spectra = []
        for signal in (clean, processed):
            magnitude = np.abs(np.fft.rfft(signal[m * skip:m * skip + win] * window, nfft))[:half]
            spectra.append(filters @ (magnitude / magnitude.sum()))
        x_band, y_band = spectra
        error = np.maximum((x_band - y_band) ** 2, np.finfo(float).eps)
        weights = x_band**0.2
        values.append(float(np.clip(np.sum(weights * 10 * np.log10(x_band**2 / error)) / weights.sum(), -10, 35)))
    return float(np.mean(values))


def test_fwsnrseg_of_identical_or_rescaled_signals_is_the_ceiling(ravdess_root):
    (x,) = _ravdess(ravdess_root, ["03-01-01-01-01-01-01.wav"])
    assert measure_fwsnrseg(x, x) == (35.0, "")
    assert measure_fwsnrseg(x, 0.5 * x)[0] == pytest.approx(35.0)  # per-frame normalised spectra: gain-free


@pytest.mark.parametrize("snr_db", [0, 10, 20])
def test_fwsnrseg_matches_the_definition_in_white_noise(ravdess_root, snr_db):
    (x,) = _ravdess(ravdess_root, ["03-01-02-01-01-01-02.wav"])
    noise = np.random.default_rng(snr_db).standard_normal(x.size)
    y = (x + np.sqrt(np.mean(x.astype(float) ** 2) / 10 ** (snr_db / 10)) * noise).astype(np.float32)
    value, note = measure_fwsnrseg(x, y)
    assert note == ""
    assert value == pytest.approx(reference_fwsnrseg(x, y), abs=1e-6)
    assert -10 < value < 35


def test_fwsnrseg_falls_with_snr_and_is_undefined_for_other_lengths():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR).astype(np.float32)
    noise = rng.standard_normal(SR).astype(np.float32)
    values = [measure_fwsnrseg(x, x + 10 ** (-snr / 20) * noise)[0] for snr in (20, 10, 0, -10)]
    assert values == sorted(values, reverse=True) and values[0] - values[-1] > 10
    value, note = measure_fwsnrseg(x, x[:-1])
    assert math.isnan(value) and "lengths" in note
    value, note = measure_fwsnrseg(x[:400], x[:400])
    assert math.isnan(value) and "shorter" in note


# ------------------------------------------------------------------------------ switches and columns


def test_meter_measures_follow_the_switches_and_pools():
    quality = {"stoi": True, "pesq": True, "dnsmos": True, "fwsnrseg": False, "pools": ["test"]}
    assert meter_measures(quality, "test") == ("dnsmos",)
    assert meter_measures(quality, "train") == ()
    assert meter_measures({**quality, "fwsnrseg": True, "clean": False}, None) == ()
    assert meter_measures({**quality, "fwsnrseg": True}, None) == ("dnsmos", "fwsnrseg")
    assert meter_measures(None, "test") == ()  # off unless switched on
    assert QualityMeter(["fwsnrseg", "dnsmos"]).columns("_after") == ["fwsnrseg_after", *(f"{c}_after" for c in DNSMOS)]
    with pytest.raises(ValueError, match="unknown quality measure"):
        QualityMeter(["mosnet"])


@pytest.fixture
def short_corpus(tmp_path, ravdess_root):
    """Two real utterances cut to 1.15 s (DNSMOS repeats a clip to 9.01 s: one window each)."""
    rows = []
    with ShardWriter(tmp_path / "clean.h5") as writer:
        for i, x in enumerate(_ravdess(ravdess_root, ["03-01-01-01-01-01-01.wav", "03-01-05-02-02-01-02.wav"])):
            writer.add(f"u{i}", x[SR // 2:SR // 2 + int(1.15 * SR)])
            rows.append({c: "" for c in MANIFEST_COLUMNS} | {"utt_id": f"u{i}", "speaker": f"s{i}"})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS), AudioStore([tmp_path / "clean.h5"])


def _augment(condition, corpus, out, quality):
    rows, store = corpus
    out.mkdir(parents=True)
    augment_shard(condition, rows, store, pool="test", global_seed=7, out_shard=out / "shard-000.h5",
                  out_params=out / "params-000.csv", quality=quality, progress=False)
    return load_params(out / "params-000.csv")


def test_augmented_params_have_the_columns_only_when_switched_on(short_corpus, tmp_path):
    fade = build_condition("fade-out", {"type": "fade", "direction": "out", "rate_per_second": 0.5})
    base = {"stoi": True, "pesq": False, "pools": ["test"]}
    off = _augment(fade, short_corpus, tmp_path / "off", base)
    assert not set(off.columns) & {*DNSMOS, "fwsnrseg"}
    on = _augment(fade, short_corpus, tmp_path / "on", {**base, "dnsmos": True, "fwsnrseg": True})
    assert list(on.columns[: len(PARAM_COLUMNS)]) == PARAM_COLUMNS
    assert on[[*DNSMOS, "fwsnrseg"]].notna().all().all()
    assert on[list(DNSMOS)].apply(lambda c: c.between(1, 5)).all().all()
    assert on["fwsnrseg"].between(-10, 35).all() and (on["fwsnrseg"] < 35).all()  # a fade changes the spectrum shape little
    # the measures do not change the audio or the other columns
    common = [c for c in off.columns]
    pd.testing.assert_frame_equal(on[common], off[common])
    # the train pool is not in pools: no columns there either
    train = _augment(fade, short_corpus, tmp_path / "train", {**base, "dnsmos": True, "fwsnrseg": True, "pools": []})
    assert not set(train.columns) & {*DNSMOS, "fwsnrseg"}


def test_dnsmos_sample_depends_on_the_utterance_id_only():
    ids = [f"03-01-{e:02d}-01-0{s}-01-{a:02d}" for e in range(1, 9) for s in (1, 2) for a in range(1, 25)]
    picked = [u for u in ids if in_dnsmos_sample(u, 0.1)]
    assert 0.05 * len(ids) < len(picked) < 0.15 * len(ids)  # 384 ids: about 38
    assert picked == [u for u in ids if in_dnsmos_sample(u, 0.1)]  # the same every time (no RNG)
    assert set(picked) <= {u for u in ids if in_dnsmos_sample(u, 0.3)}  # nested: a larger sample keeps these
    assert all(in_dnsmos_sample(u, 1.0) for u in ids)
    with pytest.raises(ValueError, match="dnsmos_fraction"):
        QualityMeter(["dnsmos"], dnsmos_fraction=0)


def test_dnsmos_fraction_scores_only_the_sampled_utterances(short_corpus, tmp_path):
    fade = build_condition("fade-out", {"type": "fade", "direction": "out", "rate_per_second": 0.5})
    sampled = [u for u in ("u0", "u1") if in_dnsmos_sample(u, 0.7)]
    assert sampled == ["u0"]  # the fixture's two ids: one in this sample, one out
    params = _augment(fade, short_corpus, tmp_path / "half", {"stoi": True, "pesq": False, "dnsmos": True,
                                                              "dnsmos_fraction": 0.7, "fwsnrseg": True,
                                                              "pools": ["test"]})
    scored = params.set_index("utt_id")
    assert scored.loc["u0", list(DNSMOS)].notna().all() and scored.loc["u1", list(DNSMOS)].isna().all()
    assert scored["fwsnrseg"].notna().all()  # the fraction is DNSMOS's only


def test_length_changing_condition_gets_dnsmos_but_no_fwsnrseg(short_corpus, tmp_path):
    speed = build_condition("speed-utt-1.25", {"type": "speed_utterance", "factor": 1.25})
    params = _augment(speed, short_corpus, tmp_path / "speed", {"stoi": True, "pesq": False, "dnsmos": True,
                                                                 "fwsnrseg": True, "pools": ["test"]})
    assert params[list(DNSMOS)].notna().all().all()
    assert params["fwsnrseg"].isna().all() and params["stoi"].isna().all()


def test_denoised_params_have_before_and_after_columns(short_corpus, tmp_path):
    pytest.importorskip("pyrnnoise", reason="pyrnnoise is not installed")
    from sernoise.audio_store import AudioShard
    from sernoise.denoise import PARAM_COLUMNS as DENOISE_COLUMNS
    from sernoise.denoise import denoise_shard, summary

    rows, store = short_corpus
    rng = np.random.default_rng(1)
    with ShardWriter(tmp_path / "noisy.h5") as writer:
        for u in store.utt_ids:
            writer.add(u, _at_snr(store.read(u), rng.standard_normal(2 * SR), 5))
    quality = {"stoi": False, "pesq": False, "dnsmos": True, "fwsnrseg": True, "pools": ["test"]}
    known = pd.DataFrame({"utt_id": ["u0", "u1"], "status": ["ok", "ok"], "dnsmos_ovrl": ["1.5", ""]})
    denoise_shard(AudioShard(tmp_path / "noisy.h5"), out_shard=tmp_path / "d.h5", out_params=tmp_path / "d.csv",
                  condition="env-x", pool="test", clean=AudioShard(tmp_path / "clean.h5"), source_params=known, additive=True, quality=quality)
    params = pd.read_csv(tmp_path / "d.csv")
    extra = [f"{c}{s}" for s in ("_before", "_after") for c in (*DNSMOS, "fwsnrseg")]
    assert list(params.columns[: len(DENOISE_COLUMNS)]) == DENOISE_COLUMNS
    assert sorted(params.columns[len(DENOISE_COLUMNS):]) == sorted(extra)
    assert params[extra].notna().all().all()
    assert params.loc[0, "dnsmos_ovrl_before"] == 1.5  # taken from the augmented dataset's params
    assert params.loc[1, "dnsmos_ovrl_before"] != 1.5  # not there: measured
    assert (params["dnsmos_bak_after"] > params["dnsmos_bak_before"]).all()  # RNNoise removes background noise
    assert "dnsmos_ovrl_after" in summary(params.assign(status="ok"))
    # the clean corpus: only *_after; off: no columns
    denoise_shard(AudioShard(tmp_path / "clean.h5"), out_shard=tmp_path / "c.h5", out_params=tmp_path / "c.csv",
                  quality={**quality, "clean": True})
    clean = pd.read_csv(tmp_path / "c.csv")
    assert clean[[c for c in extra if c.endswith("_before")]].isna().all().all()
    assert clean[[c for c in extra if c.endswith("_after")]].notna().all().all()
    denoise_shard(AudioShard(tmp_path / "clean.h5"), out_shard=tmp_path / "o.h5", out_params=tmp_path / "o.csv",
                  quality={**quality, "dnsmos": False, "fwsnrseg": False})
    assert list(pd.read_csv(tmp_path / "o.csv").columns) == DENOISE_COLUMNS


# ------------------------------------------------------------------------------ UAR drop against quality


def _metrics(rows):
    from sernoise.evaluation.metrics import METRIC_COLUMNS

    return pd.DataFrame([{c: math.nan for c in METRIC_COLUMNS} | {"fold": f, "rep": 1, "task": t, "model": "tdnn",
                                                                  "regime": r, "condition": c, "uar": u, "n": 10}
                         for r, f, t, c, u in rows], columns=METRIC_COLUMNS)


def _params(path, perception, stoi, dnsmos=None, status=None):
    frame = pd.DataFrame({c: [""] * len(stoi) for c in PARAM_COLUMNS})
    frame = frame.assign(utt_id=[f"u{i}" for i in range(len(stoi))], status=status or ["ok"] * len(stoi),
                         perception=perception, stoi=stoi, pesq=math.nan)
    if dnsmos is not None:
        frame["dnsmos_ovrl"] = dnsmos
    frame.to_csv(path, index=False)
    return path


def test_quality_vs_uar_table_and_plot(tmp_path):
    from sernoise.evaluation.quality_plot import CSV_COLUMNS, plot_quality_vs_uar, quality_vs_uar

    metrics = _metrics([
        # clean-trained model, two folds: clean 0.6 / 0.7, env 0.5 / 0.4 -> drops 0.1 / 0.3 (mean 0.2)
        ("clean", 1, "activation", "clean", 0.6), ("clean", 2, "activation", "clean", 0.7),
        ("clean", 1, "activation", "env", 0.5), ("clean", 2, "activation", "env", 0.4),
        ("clean", 1, "activation", "pitch", 0.65), ("clean", 2, "activation", "pitch", 0.7),
        # another regime: ignored
        ("matched", 1, "activation", "clean", 0.1), ("matched", 1, "activation", "env", 0.9),
    ])
    params = {
        "env": _params(tmp_path / "env.csv", "retaining", [0.5, 0.7, 0.9, 0.1], dnsmos=[2.0, 2.5, 3.0, 9.0],
                       status=["ok", "ok", "ok", "skipped: x"]),
        "pitch": _params(tmp_path / "pitch.csv", "altering", [math.nan] * 2, dnsmos=[3.5, 3.7]),
        "dropped": _params(tmp_path / "dropped.csv", "retaining", [0.8]),  # no predictions (e.g. skipped)
    }
    table = quality_vs_uar(metrics, params, models=["tdnn"], tasks=["activation", "valence"])
    assert list(table.columns) == CSV_COLUMNS
    assert list(table["condition"]) == ["env", "pitch", "dropped"]  # valence has no metrics: no rows
    env, pitch, dropped = (table.iloc[i] for i in range(3))
    assert env["median_stoi"] == pytest.approx(0.7) and env["median_dnsmos_ovrl"] == pytest.approx(2.5)  # ok rows only
    assert env["uar_drop"] == pytest.approx(0.2) and env["uar_drop_sd"] == pytest.approx(math.sqrt(0.02))
    assert env["uar_clean"] == pytest.approx(0.65) and env["n_runs"] == 2 and env["n_utterances"] == 3
    assert pitch["uar_drop"] == pytest.approx(-0.025) and math.isnan(pitch["median_stoi"])
    assert pitch["perception"] == "altering"
    assert math.isnan(dropped["uar_drop"]) and dropped["n_runs"] == 0 and math.isnan(dropped["median_dnsmos_ovrl"])
    assert table["median_pesq"].isna().all() and table["median_fwsnrseg"].isna().all()
    # PESQ and fwSNRseg missing: their panels say so instead of failing
    plot_quality_vs_uar(table, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000
    plot_quality_vs_uar(table.iloc[0:0], tmp_path / "empty.png")  # nothing at all: still a figure
    assert (tmp_path / "empty.png").exists()
