"""The fast DNSMOS (sernoise.dnsmos_fast: speechmos's P.835 model split in three, its full-resolution
convolutions run once over a clip's overlapping windows) gives speechmos's scores exactly, on real
speech of several lengths."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("speechmos", reason="speechmos is not installed (pip install -r requirements.txt)")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements.txt)")
pytest.importorskip("onnx", reason="onnx is not installed (pip install -r requirements.txt)")

from sernoise import dnsmos_fast  # noqa: E402
from sernoise.quality import METER_COLUMNS, dnsmos_fast_scorer, dnsmos_scorer, measure_dnsmos  # noqa: E402

SR = 16000
WINDOW = 144160  # int(9.01 * 16000): speechmos's window
KEYS = ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")


def _read(path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32")
    assert sr == SR, "shared data is 16 kHz"
    return x


@pytest.fixture(scope="module")
def clips(ravdess_root, noise_root) -> dict[str, np.ndarray]:
    """Real speech: a short clip (3.3 s, repeated by speechmos to 13.2 s: 4 windows), four clips of
    three actors concatenated and cut to 11.5 s (2 windows) and the same in rain at 5 dB, and
    exactly one window long (9.01 s)."""
    names = ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_02/03-01-05-02-02-01-02.wav",
             "Actor_01/03-01-03-01-01-01-01.wav", "Actor_03/03-01-01-01-01-01-03.wav"]
    speech = [_read(ravdess_root / name) for name in names]
    joined = np.concatenate(speech)[:int(11.5 * SR)]
    rain = np.resize(_read(noise_root / "soundscapes_cc0" / "rain.wav")[SR:], joined.size).astype(np.float64)
    noisy = joined + np.sqrt(np.mean(joined.astype(np.float64) ** 2) / (np.mean(rain**2) * 10**0.5)) * rain
    return {
        "short": speech[0],
        "joined": joined,
        "joined_rain": (noisy / max(1.0, np.max(np.abs(noisy)))).astype(np.float32),
        "one_window": np.resize(joined, WINDOW),
    }


def test_scores_are_speechmos_scores_exactly(clips):
    fast, slow = dnsmos_fast_scorer(), dnsmos_scorer()
    for name in ("short", "joined_rain"):  # 4 and 2 windows; one window: measure_dnsmos below
        y = clips[name]
        ours, theirs = fast(y, SR, False), slow(y, SR, False)
        assert {k: float(ours[k]) for k in KEYS} == {k: float(theirs[k]) for k in KEYS}, name
    # measure_dnsmos: the fast path by default, speechmos's scorer on request, the same row
    y = clips["one_window"] * 2  # peaks above 1: scaled down, noted, in both
    row = measure_dnsmos(y)
    assert row == measure_dnsmos(y, method="speechmos") and "above full scale" in row[1]
    with pytest.raises(ValueError, match="DNSMOS method"):
        measure_dnsmos(y, method="slow")


def test_assembled_features_are_each_windows_own(clips):
    """conv2d_3's ReLU output of each window, assembled from one run over the span (in chunks) and
    per-window edge runs, is bit-for-bit that of the window's own run, and the head then gives
    the full model's raw outputs."""
    scorer = dnsmos_fast_scorer()
    split = scorer.split
    _, windows = scorer.windows(clips["joined"], SR)
    assert [idx for idx, _ in windows] == [0, 1]
    segments = np.stack([seg for _, seg in windows]).astype(np.float32)
    spectrograms = split.spectrogram(segments)
    assert spectrograms.shape == (2, 1, 900, 161)
    assert np.array_equal(spectrograms[0, :, 100:], spectrograms[1, :, :800])  # frame k + 100 of window 0 = frame k of 1
    for segment, spectrogram, assembled in zip(segments, spectrograms, split.window_features(spectrograms, [0, 100])):
        own = split.features(spectrogram[None])
        assert own.shape == (1, 32, 900, 161) and np.array_equal(assembled, own)
        full = scorer.scorer.onnx_sess.run(None, {"input_1": segment[None]})[0]
        assert np.array_equal(split.head(assembled), full)
    # the span in chunks of 300 frames (plus context) gives what one run gives, away from its ends
    span = np.concatenate([spectrograms[0], spectrograms[1, :, 800:]], axis=1)[None]
    whole, chunked = split.features(span), split.shared_features(span, chunk=300)
    h = dnsmos_fast.HALO
    assert np.array_equal(whole[:, :, h:-h], chunked[:, :, h:-h])


def test_windows_are_speechmos_windows():
    """speechmos's float arithmetic makes windows 7 .. 23 one sample short, and it skips them; so do
    we.  Consecutive windows share one run of the convolutions, at most MAX_SHARED_WINDOWS of them."""
    scorer = dnsmos_fast_scorer()
    audio = np.zeros(36 * SR, dtype=np.float32)
    _, windows = scorer.windows(audio, SR)
    assert [idx for idx, _ in windows] == [*range(7), *range(24, 27)]
    assert all(seg.size == WINDOW for _, seg in windows)
    groups = dnsmos_fast._groups(windows, 4)
    assert [[idx for idx, _ in group] for group in groups] == [[0, 1, 2, 3], [4, 5, 6], [24, 25, 26]]
    _, windows = scorer.windows(np.zeros(1000, dtype=np.float32), SR)  # 1000 samples: repeated to 256000
    assert [idx for idx, _ in windows] == list(range(7))


def test_deterministic_and_single_threaded(clips):
    scorer = dnsmos_fast_scorer()
    assert scorer is dnsmos_fast_scorer() and scorer.scorer is dnsmos_scorer()  # built once per process
    assert all(s.get_session_options().intra_op_num_threads == 1 for s in scorer.split.sessions)
    y = clips["joined_rain"]
    first, second = measure_dnsmos(y), measure_dnsmos(y.copy())
    assert first == second and first[1] == "" and set(first[0]) == set(METER_COLUMNS["dnsmos"])


def test_split_checks_the_graph():
    """The cut points are found by structure and checked: four 'same' 3x3 convolutions with ReLU
    before the first max-pool, and each part reads nothing from before its cut but its input."""
    import onnx

    scorer = dnsmos_fast_scorer()
    model = onnx.load(scorer.scorer.primary_model_path)
    split = dnsmos_fast.split_p835(model)
    assert split.features == "mos_estimator_logpow/conv2d_3/Relu:0"
    assert [n.name for n in split.nodes[1] if n.op_type == "Conv"] == ["conv2d", "conv2d_1", "conv2d_2", "conv2d_3"]
    for node in model.graph.node:
        if node.name == "conv2d_2":
            node.attribute.remove(next(a for a in node.attribute if a.name == "pads"))
            node.attribute.append(onnx.helper.make_attribute("pads", [2, 2, 2, 2]))
    with pytest.raises(dnsmos_fast.GraphMismatch, match="conv2d_2"):
        dnsmos_fast.split_p835(model)
