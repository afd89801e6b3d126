"""RNNoise denoising (sernoise.denoise; paper §7.4.1): length, alignment, determinism, noise
reduction, edge cases, and the per-shard dataset functions (params, status, merge)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyrnnoise", reason="pyrnnoise is not installed (pip install pyrnnoise==0.4.3 ...)")

from sernoise import denoise  # noqa: E402
from sernoise.audio_store import AudioShard, AudioStore, ShardWriter  # noqa: E402
from sernoise.conditions.snr import difference_snr, speech_power  # noqa: E402
from sernoise.denoise import (  # noqa: E402
    DELAY_48K,
    PARAM_COLUMNS,
    DenoiseError,
    denoise_shard,
    denoised_status,
    measure_delay,
    merge_denoised,
    rnnoise_denoise,
    skip_shard,
)

SR = 16000
ONE_MS = SR // 1000


def voiced(seconds: float = 2.0, seed: int = 3, start: float = 0.5, stop: float = 1.5) -> np.ndarray:
    """Glottal-like damped pulses (600 Hz resonance) every 7.5-9.4 ms (jittered: no periodic ambiguity)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * SR), dtype=np.float32)
    t = np.arange(160) / SR
    pulse = (np.exp(-t * 300) * np.sin(2 * np.pi * 600 * t)).astype(np.float32)
    s = int(start * SR)
    while s < int(stop * SR):
        x[s:s + 160] += 0.3 * pulse
        s += int(rng.integers(120, 150))
    return x


def pulse() -> np.ndarray:
    t = np.arange(160) / SR
    return (np.exp(-t * 300) * np.sin(2 * np.pi * 600 * t)).astype(np.float32)


def lag_of(x: np.ndarray, y: np.ndarray, max_lag: int = 800) -> int:
    """Lag (samples) maximising the cross-correlation of y against x (positive: y later)."""
    scores = [float(np.dot(x[max(0, -k):x.size - max(0, k)], y[max(0, k):y.size - max(0, -k)]))
              for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


@pytest.mark.parametrize("n", [1, 7, 159, 160, 479, 481, 1000, 16000, 16001, 33333])
def test_length_is_kept(n):
    x = (np.random.default_rng(n).standard_normal(n) * 0.05).astype(np.float32)
    y = rnnoise_denoise(x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()


def test_rnnoise_delay_is_the_documented_one():
    # uncompensated RNNoise output lags its 48 kHz input by DELAY_48K samples (within 1 sample)
    assert abs(measure_delay() - DELAY_48K) <= 1


def test_a_click_stays_in_place():
    # RNNoise itself (48 kHz, no compensation): a lone click comes out exactly DELAY_48K samples late
    x48 = np.zeros(48000, dtype=np.float32)
    x48[24000] = 20000.0
    out48, _ = denoise.rnnoise_48k(x48)
    assert abs(int(np.argmax(np.abs(out48))) - (24000 + DELAY_48K)) <= 1
    # End to end (resampling + delay compensation): RNNoise removes lone clicks (they are noise to
    # it) but passes a train of glottal-like clicks; every click of the train stays at its sample
    # within 1 ms, and the whole train is not shifted (jittered periods: no periodic ambiguity).
    rng = np.random.default_rng(3)
    x = np.zeros(2 * SR, dtype=np.float32)
    clicks = []
    s = 8000
    while s < 24000:
        clicks.append(s)
        x[s:s + 160] += 0.3 * pulse()
        s += int(rng.integers(120, 150))
    y = rnnoise_denoise(x)
    assert np.sum(y**2) > 0.2 * np.sum(x**2)  # the train passes
    assert abs(lag_of(x, y)) <= ONE_MS
    matched = np.correlate(y, pulse(), mode="valid")
    errors = [int(np.argmax(matched[c - 60:c + 61])) - 60 for c in clicks[3:-3]]
    assert max(abs(e) for e in errors) <= ONE_MS, errors


def test_real_speech_stays_aligned(ravdess_root):
    import soundfile as sf

    path = sorted(ravdess_root.glob("Actor_01/*.wav"))[5]
    x, sr = sf.read(path, dtype="float32")
    if sr != SR:
        import soxr

        x = soxr.resample(x, sr, SR).astype(np.float32)
    y = rnnoise_denoise(x)
    assert y.shape == x.shape
    assert abs(lag_of(x, y)) <= ONE_MS


def test_deterministic():
    rng = np.random.default_rng(0)
    x = voiced() + (0.01 * rng.standard_normal(2 * SR)).astype(np.float32)
    first = rnnoise_denoise(x)
    rnnoise_denoise(rng.standard_normal(5000).astype(np.float32) * 0.1)  # state must not carry over
    assert np.array_equal(first, rnnoise_denoise(x))


def test_reduces_stationary_noise_at_0_db():
    speech = voiced(3.0, start=0.2, stop=2.8)
    noise = np.random.default_rng(1).standard_normal(speech.size).astype(np.float32)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2))
    noisy = speech + noise
    before = difference_snr(speech, noisy)
    after = difference_snr(speech, rnnoise_denoise(noisy))
    assert before == pytest.approx(0.0, abs=0.01)
    assert after > before + 3.0


def test_reduces_noise_on_real_speech(ravdess_root):
    import soundfile as sf

    x, sr = sf.read(sorted(ravdess_root.glob("Actor_02/*.wav"))[10], dtype="float32")
    if sr != SR:
        import soxr

        x = soxr.resample(x, sr, SR).astype(np.float32)
    noise = np.random.default_rng(2).standard_normal(x.size).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2))
    assert difference_snr(x, rnnoise_denoise(x + noise)) > difference_snr(x, x + noise) + 2.0


def test_silence_and_short_input():
    for n in (0, 1, 50, 480, SR):
        y = rnnoise_denoise(np.zeros(n, dtype=np.float32))
        assert y.shape == (n,) and (np.abs(y) < 1e-4).all()
    y, vad = rnnoise_denoise(np.zeros(SR, dtype=np.float32), return_vad=True)
    assert vad.size >= SR * 3 // 480 and (vad >= 0).all() and (vad <= 1).all()


def test_bad_input_is_rejected():
    with pytest.raises(DenoiseError, match="mono"):
        rnnoise_denoise(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(DenoiseError, match="16000 Hz"):
        rnnoise_denoise(np.zeros(100, dtype=np.float32), sr=48000)
    with pytest.raises(DenoiseError, match="non-finite"):
        rnnoise_denoise(np.array([0.0, np.nan], dtype=np.float32))


def test_missing_pyrnnoise_names_the_package(monkeypatch):
    denoise._rnnoise.cache_clear()
    monkeypatch.setitem(sys.modules, "pyrnnoise", None)  # import pyrnnoise -> ImportError
    try:
        with pytest.raises(DenoiseError, match=r"pip install pyrnnoise==0\.4\.3"):
            rnnoise_denoise(np.zeros(100, dtype=np.float32))
    finally:
        monkeypatch.undo()
        denoise._rnnoise.cache_clear()
    assert rnnoise_denoise(np.zeros(100, dtype=np.float32)).shape == (100,)


# ------------------------------------------------------------------------------ datasets


def _shard(path, items):
    with ShardWriter(path) as writer:
        for utt_id, x in items:
            writer.add(utt_id, x)
    return AudioShard(path)


@pytest.fixture()
def dataset(tmp_path):
    rng = np.random.default_rng(5)
    clean = {f"u{i}": voiced(1.5, seed=i, start=0.1, stop=1.4) for i in range(3)}
    noisy = {}
    for i, (u, x) in enumerate(clean.items()):
        noise = rng.standard_normal(x.size).astype(np.float32)
        noise *= np.sqrt(speech_power(x) / np.mean(noise**2))  # 0 dB against the (default) active level
        if i < 2:
            noisy[u] = x + noise  # u2: skipped in the "augmented" dataset
    clean_shard = _shard(tmp_path / "clean.h5", clean.items())
    noisy_shard = _shard(tmp_path / "noisy.h5", noisy.items())
    params = pd.DataFrame({"utt_id": ["u0", "u1", "u2"], "status": ["ok", "ok", "skipped: too short"],
                           "stoi": ["", "", ""], "pesq": ["", "", ""]})
    status = {"condition": "env-x", "pool": "test", "additive": True, "skipped": False, "reason": None,
              "n_ok": 2, "n_skipped": 1, "skip_reasons": {"too short": 1}}
    return {"root": tmp_path, "clean": clean_shard, "noisy": noisy_shard, "params": params, "status": status}


def test_denoise_shard_params_and_merge(dataset):
    root = dataset["root"]
    counts = denoise_shard(dataset["noisy"], out_shard=root / "d/shard-000.h5", out_params=root / "d/params-000.csv",
                           condition="env-x", pool="test", clean=dataset["clean"], source_params=dataset["params"],
                           additive=True, quality={"stoi": True, "pesq": True, "pools": ["test"]})
    assert (counts["n_ok"], counts["n_skipped"]) == (2, 1)
    params = pd.read_csv(root / "d/params-000.csv")
    assert list(params.columns) == PARAM_COLUMNS
    assert list(params["status"]) == ["ok", "ok", "skipped: too short"]
    ok = params[params["status"] == "ok"]
    assert (ok["snr_before"].abs() < 0.1).all() and (ok["snr_after"] > ok["snr_before"] + 3).all()
    assert ok[["stoi_before", "stoi_after", "pesq_before", "pesq_after"]].notna().all().all()
    status = denoised_status(dataset["status"], counts, condition="env-x", pool="test")
    (root / "d/status-000.json").write_text(json.dumps(status))
    merged = merge_denoised([root / "d/shard-000.h5"], [root / "d/params-000.csv"], [root / "d/status-000.json"],
                            out_index=root / "d/index.csv", out_params=root / "d/params.csv",
                            out_status=root / "d/status.json")
    assert merged["n_ok"] == 2 and not merged["skipped"] and "RNNoise" in merged["denoiser"]
    assert merged["summary"]["snr_after"] > merged["summary"]["snr_before"]
    store = AudioStore.from_index(root / "d/index.csv")
    assert sorted(store.utt_ids) == ["u0", "u1"]
    for u in store.utt_ids:
        assert store.read(u).shape == dataset["noisy"].read(u).shape


def test_clean_corpus_and_quality_pools(dataset):
    root = dataset["root"]
    denoise_shard(dataset["clean"], out_shard=root / "c/shard-000.h5", out_params=root / "c/params-000.csv",
                  quality={"stoi": True, "pesq": False, "pools": ["test"], "clean": True})
    params = pd.read_csv(root / "c/params-000.csv")
    assert len(params) == 3 and (params["status"] == "ok").all() and (params["condition"] == "clean").all()
    assert params["snr_before"].isna().all() and params["stoi_before"].isna().all()
    assert params["snr_after"].notna().all() and params["stoi_after"].notna().all() and params["pesq_after"].isna().all()
    merged = merge_denoised([root / "c/shard-000.h5"], [root / "c/params-000.csv"], None,
                            out_index=root / "c/index.csv", out_params=root / "c/params.csv",
                            out_status=root / "c/status.json")
    assert merged["n_ok"] == 3 and merged["condition"] == "clean"
    # the train pool is not in quality.pools: no STOI/PESQ, SNR still recorded
    denoise_shard(dataset["noisy"], out_shard=root / "t/shard-000.h5", out_params=root / "t/params-000.csv",
                  condition="env-x", pool="train", clean=dataset["clean"], source_params=dataset["params"],
                  additive=True, quality={"stoi": True, "pesq": True, "pools": ["test"]})
    train = pd.read_csv(root / "t/params-000.csv")
    assert train["stoi_after"].isna().all() and train.loc[train["status"] == "ok", "snr_after"].notna().all()


def test_skipped_source_stays_skipped(dataset):
    root = dataset["root"]
    status = {"condition": "drop-word", "pool": "train", "skipped": True, "reason": "no alignments", "n_ok": 0,
              "n_skipped": 3, "skip_reasons": {}}
    params = pd.DataFrame({"utt_id": [], "status": []})
    skip_shard(status, params, out_shard=root / "s/shard-000.h5", out_params=root / "s/params-000.csv",
               out_status=root / "s/status-000.json", condition="drop-word", pool="train")
    merged = merge_denoised([root / "s/shard-000.h5"], [root / "s/params-000.csv"], [root / "s/status-000.json"],
                            out_index=root / "s/index.csv", out_params=root / "s/params.csv",
                            out_status=root / "s/status.json")
    assert merged["skipped"] and merged["reason"] == "no alignments"
    assert json.loads((root / "s/status.json").read_text())["reason"] == "no alignments"
    assert pd.read_csv(root / "s/index.csv").empty
