"""The fast DNSMOS (sernoise.dnsmos_fast: speechmos's P.835 model split in three, its full-resolution
convolutions run once over a clip's overlapping windows) gives speechmos's scores exactly, on real
speech of several lengths."""

from __future__ import annotations

from pathlib import Path

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
        full = dnsmos_scorer().onnx_sess.run(None, {"input_1": segment[None]})[0]
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
    assert scorer is dnsmos_fast_scorer()  # built once per process
    sessions = [scorer.p808_session, *scorer.split.sessions]
    assert all(s.get_session_options().intra_op_num_threads == 1 for s in sessions)
    y = clips["joined_rain"]
    first, second = measure_dnsmos(y), measure_dnsmos(y.copy())
    assert first == second and first[1] == "" and set(first[0]) == set(METER_COLUMNS["dnsmos"])


def test_split_checks_the_graph():
    """The cut points are found by structure and checked: four 'same' 3x3 convolutions with ReLU
    before the first max-pool, and each part reads nothing from before its cut but its input."""
    import onnx

    scorer = dnsmos_fast_scorer()
    model = onnx.load(scorer.split.model_path)
    assert scorer.split.model_path == dnsmos_scorer().primary_model_path
    split = dnsmos_fast.split_p835(model)
    assert split.features == "mos_estimator_logpow/conv2d_3/Relu:0"
    assert [n.name for n in split.nodes[1] if n.op_type == "Conv"] == ["conv2d", "conv2d_1", "conv2d_2", "conv2d_3"]
    for node in model.graph.node:
        if node.name == "conv2d_2":
            node.attribute.remove(next(a for a in node.attribute if a.name == "pads"))
            node.attribute.append(onnx.helper.make_attribute("pads", [2, 2, 2, 2]))
    with pytest.raises(dnsmos_fast.GraphMismatch, match="conv2d_2"):
        dnsmos_fast.split_p835(model)


# ------------------------------------------------------------------ P.808 features without librosa


def _speechmos_melspec(audio: np.ndarray) -> np.ndarray:
    """speechmos's own P.808 features (``DNSMOS.audio_melspec``, which calls librosa)."""
    pytest.importorskip("librosa", reason="librosa (speechmos's dependency) is not installed")
    return dnsmos_scorer().audio_melspec(audio=audio)


def _assert_same_features(audio: np.ndarray, what: str) -> None:
    ours, theirs = dnsmos_fast.p808_melspec(audio), _speechmos_melspec(audio)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    assert np.array_equal(ours, theirs), f"{what}: max |difference| {np.max(np.abs(ours - theirs))}"


def test_p808_window_and_mel_filters_are_scipy_and_librosa_bit_for_bit():
    librosa = pytest.importorskip("librosa", reason="librosa (speechmos's dependency) is not installed")
    from scipy.signal import get_window

    for n in (321, 400, 512):
        assert np.array_equal(dnsmos_fast.hann_window(n), get_window("hann", n, fftbins=True)), n
    for sr, n_fft, n_mels in ((SR, 321, 120), (SR, 512, 40), (22050, 2048, 128)):
        ours = dnsmos_fast.mel_filters_slaney(sr, n_fft, n_mels)
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
        assert ours.dtype == theirs.dtype == np.float32 and np.array_equal(ours, theirs), (sr, n_fft, n_mels)


@pytest.mark.filterwarnings("ignore:n_fft=321 is too large:UserWarning")  # librosa, on the shortest inputs
def test_p808_features_are_speechmos_bit_for_bit(clips, ravdess_root):
    """The P.808 model's input, computed with NumPy alone, is librosa's to the last bit: on every
    window speechmos scores of real speech (clean, in rain, of several lengths, more actors), in
    white noise, in float64, and where amin and top_db decide: digital silence, near-silence, a
    burst in silence, and odd lengths (the function, not only DNSMOS's 144000-sample windows)."""
    scorer = dnsmos_fast_scorer()
    for name, clip in clips.items():
        for idx, seg in scorer.windows(clip, SR)[1]:
            _assert_same_features(seg[:-160], f"{name} window {idx}")
    rng = np.random.default_rng(0)
    for path in sorted(ravdess_root.glob("Actor_0[4-9]/*-01-0[1-2].wav"))[::7]:
        speech = np.resize(_read(path), 144000)
        _assert_same_features(speech, path.name)
        noisy = np.clip(speech + 0.05 * rng.standard_normal(speech.size), -1, 1)
        _assert_same_features(noisy.astype(np.float32), f"{path.name} in white noise")
        _assert_same_features(noisy, f"{path.name} in white noise, float64")
    burst = np.zeros(144000, dtype=np.float32)
    burst[5000:6000] = 0.5 * rng.standard_normal(1000)
    spike = np.full(144000, 1e-6, dtype=np.float32) * rng.standard_normal(144000).astype(np.float32)
    spike[:100] = 0.9  # everything else more than 80 dB down: floored at top_db
    for what, audio in (("digital silence", np.zeros(144000, dtype=np.float32)),
                        ("near-silence (1e-7)", (1e-7 * rng.standard_normal(144000)).astype(np.float32)),
                        ("one tiny sample", np.where(np.arange(144000) == 7000, 1e-30, 0).astype(np.float32)),
                        ("a burst in silence", burst), ("a click over near-silence", spike)):
        _assert_same_features(audio, what)
    for n in (1, 159, 160, 161, 320, 321, 322, 1001, 16001, 144159):
        _assert_same_features((0.1 * rng.standard_normal(n)).astype(np.float32), f"{n} samples")
        _assert_same_features(np.zeros(n, dtype=np.float32), f"{n} zeros")
    with pytest.raises(ValueError, match="floating-point"):
        dnsmos_fast.p808_melspec(np.zeros(1000, dtype=np.int16))
    with pytest.raises(ValueError, match="finite"):
        dnsmos_fast.p808_melspec(np.full(1000, np.nan, dtype=np.float32))


def test_scores_are_speechmos_scores_on_short_and_silent_clips(clips):
    """Bit-identical scores where the features' edge cases matter: a 0.05 s clip (repeated 256
    times), speech followed by 9 s of digital silence, and speech over near-silence."""
    fast, slow = dnsmos_fast_scorer(), dnsmos_scorer()
    speech = clips["short"]
    rng = np.random.default_rng(1)
    cases = {
        "0.05 s": speech[SR:SR + SR // 20],
        "speech then silence": np.concatenate([speech[:2 * SR], np.zeros(9 * SR, dtype=np.float32)]),
        "near-silence": np.concatenate([(1e-6 * rng.standard_normal(SR)).astype(np.float32), speech[:SR]]),
    }
    for name, y in cases.items():
        ours, theirs = fast(y, SR, False), slow(y, SR, False)
        assert {k: float(ours[k]) for k in KEYS} == {k: float(theirs[k]) for k in KEYS}, name


# ------------------------------------------------------------- without speechmos.dnsmos, librosa, onnx


def test_polynomials_window_length_and_model_folder_are_speechmos():
    """What the fast path takes from speechmos without importing its module (which imports requests
    and librosa): the polynomial mappings (value for value, both model kinds), the window length
    and the model folder."""
    from speechmos import dnsmos

    assert dnsmos_fast.INPUT_LENGTH == dnsmos.INPUT_LENGTH
    assert dnsmos_fast.speechmos_models_dir() == Path(dnsmos.__file__).parent / "dnsmos_models"
    raw = np.random.default_rng(2).uniform(-1, 6, size=(500, 3)).astype(np.float32)
    for personalized in (False, True):
        for sig, bak, ovr in raw:
            ours = dnsmos_fast.polyfit_val(sig, bak, ovr, personalized)
            theirs = dnsmos.DNSMOS.get_polyfit_val(None, sig, bak, ovr, personalized)
            assert [(type(v), float(v)) for v in ours] == [(type(v), float(v)) for v in theirs], (sig, bak, ovr)


_FRESH_JOB = (
    "import sys, numpy as np\n"
    "from sernoise.quality import measure_dnsmos\n"
    "y = (0.1 * np.random.default_rng(0).standard_normal(3 * 16000)).astype(np.float32)\n"
    "values, note = measure_dnsmos(y, method='fast')\n"
    "heavy = ('librosa', 'numba', 'llvmlite', 'scipy.signal', 'requests', 'speechmos.dnsmos', 'onnx')\n"
    "print(repr(values))\n"
    "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy)))\n"
)


def _fresh_job(repo_root, cache) -> tuple[str, list]:
    """measure_dnsmos in a fresh interpreter, as a workflow job runs it: its scores and which of the
    heavy modules it imported."""
    import ast
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(repo_root / "workflow" / "scripts"), SERNOISE_CACHE_DIR=str(cache))
    result = subprocess.run([sys.executable, "-c", _FRESH_JOB], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    values, modules = result.stdout.strip().splitlines()[-2:]
    return values, ast.literal_eval(modules)


def test_fast_path_imports_no_librosa_numba_scipy_signal_nor_speechmos(repo_root, tmp_path):
    """A job's first DNSMOS score used to import librosa's spectrum modules, numba, llvmlite and
    scipy.signal through speechmos's mel spectrogram (~2.2 s of CPU per job), and onnx to split the
    P.835 model (~0.8 s).  The fast path imports none of them, nor speechmos.dnsmos (requests): the
    first job with an empty cache imports onnx only, to split the model and cache its parts; the
    next, with the cache, not even that, and gets the same scores."""
    first, imported = _fresh_job(repo_root, tmp_path)
    assert {m.split(".")[0] for m in imported} == {"onnx"}, imported
    assert len(list((tmp_path / "dnsmos_p835").glob("sig_bak_ovr-*/parts.json"))) == 1
    second, imported = _fresh_job(repo_root, tmp_path)
    assert imported == [] and second == first


def test_split_parts_cache(tmp_path):
    """The parts are written once, atomically, read back unchanged and checked; a damaged cache or
    one that cannot be written is reported and the parts are split in memory instead."""
    model_path = dnsmos_fast_scorer().split.model_path
    expected = dnsmos_fast.p835_parts(model_path)
    parts, source = dnsmos_fast.load_p835_parts(model_path, tmp_path)
    assert parts == expected and source.startswith("split in memory, written to")
    folder, _ = dnsmos_fast.parts_folder(model_path, tmp_path)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no temporary folder left
    assert sorted(p.name for p in folder.iterdir()) == ["features.onnx", "head.onnx", "parts.json", "spectrogram.onnx"]
    assert dnsmos_fast.load_p835_parts(model_path, tmp_path) == (expected, f"read from {folder}")
    # a lost race: the folder appeared while this job was writing; the winner's parts are kept
    dnsmos_fast._write_cached_parts(folder, dnsmos_fast.parts_folder(model_path, tmp_path)[1], expected)
    assert dnsmos_fast.load_p835_parts(model_path, tmp_path)[1] == f"read from {folder}"
    (folder / "head.onnx").write_bytes(expected[2][:-10])  # damaged
    with pytest.warns(dnsmos_fast.CacheWarning, match="cannot be used"):
        assert dnsmos_fast.load_p835_parts(model_path, tmp_path) == (expected, "split in memory (cache damaged)")
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    with pytest.warns(dnsmos_fast.CacheWarning, match="cannot write .* SERNOISE_CACHE_DIR"):
        assert dnsmos_fast.load_p835_parts(model_path, blocked) == (expected, "split in memory (cache not writable)")
    assert dnsmos_fast.load_p835_parts(model_path, None) == (expected, "split in memory (no cache)")


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SERNOISE_CACHE_DIR", str(tmp_path))
    assert dnsmos_fast.cache_dir() == tmp_path
    monkeypatch.setenv("SERNOISE_CACHE_DIR", "")
    assert dnsmos_fast.cache_dir() is None
    monkeypatch.delenv("SERNOISE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dnsmos_fast.cache_dir() == tmp_path / "xdg" / "sernoise"
