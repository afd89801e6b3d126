"""DNSMOS as speechmos scores it, with the P.835 model's expensive convolutions run once per clip.

speechmos (``speechmos.dnsmos.DNSMOS.__call__``) repeats a clip shorter than 9.01 s until it is at
least that long, then runs both models on 9.01 s windows (144160 samples) at a 1 s hop and averages
the per-window scores.  A 3.7 s RAVDESS clip becomes 14.8 s and 5 windows that overlap by 8 s, and
almost all of the P.835 model's time (``sig_bak_ovr.onnx``, ~0.21 s of CPU per window) goes into
four full-resolution 3x3 convolutions (``conv2d`` .. ``conv2d_3``, 1 -> 128 -> 64 -> 64 -> 32
channels, ReLU each) over the window's log-power spectrogram, [1, 1, 900 frames, 161 bins].

The model frames a window with frame 320 and hop 160 samples, so window ``k`` (which starts
``k`` seconds, i.e. 100 frames, into the repeated signal) sees frames ``100k .. 100k + 899`` of the
repeated signal's frame sequence.  Four 3x3 'same' convolutions see 4 frames either side, so a
window's conv2d_3 output at its frames 4 .. 895 is the output over the whole repeated signal at
frames ``100k + 4 .. 100k + 895``; only its first and last 4 frames see the zero padding at the
window's edges.  So we split the ONNX graph into three parts (cut from the file that speechmos
ships, with the onnx package, and cached as files for the next jobs: "the split model, cached as
files" below):

* (A) ``spectrogram``: input_1 [N, 144160] -> the log-power spectrogram that feeds ``conv2d``,
  [N, 1, 900, 161]; per window, as in the full model (cheap: one small matrix product);
* (B) ``features``: spectrogram [N, 1, T, 161] -> conv2d_3's ReLU output [N, 32, T, 161] (time
  axis symbolic); run once over the frames of all windows (in chunks, for memory), and per window
  only on its first and last 8 frames (keeping the 4 outputs that do not see the cut);
* (C) ``head``: a window's conv2d_3 ReLU output [N, 32, 900, 161] -> the three raw outputs
  (sig, bak, ovr): max-pool, three more convolutions at lower resolution, dense layers; per window.

ONNX Runtime (1.32, its CPU kernels) computes each output element the same way wherever it lies
in the tensor and whatever the tensor's length, so the assembled per-window conv2d_3 outputs, and
hence the scores, are bit-for-bit speechmos's: checked on 131 clips of 0.05 to 50 s (RAVDESS
clean, in noise and concatenated, noise alone, exactly 9.01 s; on an AVX-512 x86-64 CPU), and by
``tests/test_dnsmos_fast.py`` on the machine that runs it.  Everything else is speechmos's
scoring, done as its ``__call__`` does it: the repetition, the windows (including the ones it
skips: windows 7 .. 23 come out one sample short in its float arithmetic, ``int((7 + 9.01) *
16000) - 7 * 16000 == 144159``, and are not scored), the P.808 model on each window's mel
spectrogram, the polynomial mappings and the means.  On RAVDESS clips this is about 2.5 times
faster (``benchmarks/quality.py``).

A job's set-up is cheap too: ~0.1 s of CPU before its first score instead of 3.0 s (0.9 s for the
first job, which writes the cache below; ``benchmarks/quality.py``, "fresh-process set-up"). It
imports no librosa, numba, scipy.signal, requests nor onnx: the fast path does not import
``speechmos.dnsmos``, which imports requests and librosa, but opens the ONNX files of the
speechmos package by path (:func:`speechmos_models_dir`) and takes its window length and
polynomials as constants (:data:`INPUT_LENGTH`, :data:`POLYFIT`, tested equal to speechmos's); the
P.808 model's input, speechmos's ``audio_melspec`` (librosa's Mel spectrogram in dB, whose
spectrum modules import numba, llvmlite and scipy.signal: ~2.2 s of CPU), is computed with NumPy
(:func:`p808_melspec`) by the same operations in the same precision, so the same numbers bit for
bit (tested against librosa); and the split model is read from a cache (:func:`load_p835_parts`)
rather than cut again with the onnx package (~0.8 s to import).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16000
INPUT_LENGTH = 9.01  # speechmos.dnsmos.INPUT_LENGTH (tested equal): its window, in seconds
FRAME_HOP = 160  # the model's STFT hop (its input is cut into 160-sample halves of 320-sample frames)
WINDOW_FRAMES = 900  # STFT frames of one 9.01 s window
N_FEATURE_CONVS = 4  # conv2d .. conv2d_3, before the first max-pool
HALO = N_FEATURE_CONVS  # frames either side that one output frame of these 'same' 3x3 convolutions sees
EDGE = 2 * HALO  # frames of a window's edge run: its first HALO outputs do not see the cut
# output frames per run of (B) over the shared span (plus 2 x HALO of context): on RAVDESS clips a
# job peaks at the memory of speechmos's scorer (550 MB; 720 with 900 frames), no slower
CHUNK_FRAMES = 200
# windows whose convolutions share one run: memory stays bounded on long clips (16 windows: a span of
# 2400 frames, 50 MB of conv2d_3 output) at 1.5 times the ideal cost per window (150 frames, not 100)
MAX_SHARED_WINDOWS = 16


# speechmos's P.808 input (``DNSMOS.audio_melspec(audio)`` with its defaults): a 120-band Mel spectrogram
# of 321-point frames at a 160-sample hop, in dB relative to its maximum, scaled as (dB + 40) / 40
P808_N_FFT = 321  # its frame_size + 1
P808_HOP = 160
P808_N_MELS = 120
P808_AMIN = 1e-10  # librosa.power_to_db's defaults
P808_TOP_DB = 80.0


@functools.lru_cache(maxsize=None)
def hann_window(n: int) -> np.ndarray:
    """The periodic Hann window that librosa's STFT takes (``scipy.signal.get_window("hann", n,
    fftbins=True)``), float64: scipy's general cosine window, 0.5 - 0.5 cos over ``n + 1`` points
    evenly spaced on [-pi, pi] (summed term by term, as scipy does), the last point dropped."""
    angles = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    window = np.zeros(n + 1, dtype=np.float64)
    for k, weight in enumerate((0.5, 0.5)):
        window += weight * np.cos(k * angles)
    window = window[:-1]
    window.flags.writeable = False
    return window


def _hz_to_mel_slaney(hz) -> np.ndarray:
    """Slaney's Mel scale (librosa's default, ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asanyarray(hz, dtype=np.float64)
    step = 200.0 / 3
    mels = hz / step
    log_from_mel = 1000.0 / step
    log_step = np.log(6.4) / 27.0
    if hz.ndim:
        above = hz >= 1000.0
        mels[above] = log_from_mel + np.log(hz[above] / 1000.0) / log_step
    elif hz >= 1000.0:
        mels = log_from_mel + np.log(hz / 1000.0) / log_step
    return mels


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    step = 200.0 / 3
    hz = 0.0 + step * mels
    log_from_mel = 1000.0 / step
    log_step = np.log(6.4) / 27.0
    above = mels >= log_from_mel
    hz[above] = 1000.0 * np.exp(log_step * (mels[above] - log_from_mel))
    return hz


@functools.lru_cache(maxsize=None)
def mel_filters_slaney(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular Mel filters on Slaney's scale with Slaney's area
    normalisation, 0 Hz to Nyquist: ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` with
    its defaults, bit for bit (tested).  (:func:`sernoise.features._mel_matrix` is the HTK-scale,
    unnormalised 40 x 257 bank of the T-DNN features, another matrix.)  The band edges are evenly
    spaced in Mel from 0 to sr / 2; the weights are computed in float64, stored as float32, then
    scaled by 2 / (band width in Hz) in float64 and stored as float32 again, as librosa does."""
    bin_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    edges = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(float(sr) / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bin_hz)  # edge minus bin frequency
    rising = -ramps[:-2] / widths[:-1, np.newaxis]
    falling = ramps[2:] / widths[1:, np.newaxis]
    weights = np.maximum(0, np.minimum(rising, falling)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, np.newaxis]  # float64 products, stored as float32
    weights.flags.writeable = False
    return weights


def p808_melspec(audio: np.ndarray) -> np.ndarray:
    """speechmos's P.808 input features of one window, (frames, 120): ``DNSMOS.audio_melspec(audio)``,
    i.e. ``librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=321, hop_length=160,
    n_mels=120)`` then ``(librosa.power_to_db(mel, ref=np.max) + 40) / 40``, transposed; the same
    numbers bit for bit (tested on speech, noise, silence and odd lengths) without importing librosa
    (whose spectrum modules pull in numba, llvmlite and scipy.signal: ~2.2 s of CPU once per job).

    The same operations in the same precision and layout: the signal zero padded by 160 samples
    each side (librosa's centred frames, ``pad_mode="constant"``), 321-sample frames at a 160-sample
    hop times the periodic Hann window (float64), the real FFT in float64 (NumPy's pocketfft, which
    gives scipy.fft's numbers on these frames, tested), stored as complex64 for float32 audio
    (librosa's ``dtype_r2c``), squared magnitudes, the Mel projection by the same ``np.einsum``
    call on the same (bins, frames) layout, then dB with amin 1e-10 relative to the maximum and
    floored 80 dB below the peak."""
    y = np.asarray(audio)
    if not np.issubdtype(y.dtype, np.floating) or y.ndim != 1 or not y.size:
        raise ValueError(f"expected non-empty 1-D floating-point audio, got {y.dtype} of shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("audio is not finite everywhere")
    half = P808_N_FFT // 2
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, half), P808_N_FFT)[::P808_HOP]
    spectrum = np.fft.rfft(frames * hann_window(P808_N_FFT), axis=-1)
    spectrum = spectrum.astype(np.complex128 if y.dtype == np.float64 else np.complex64)
    power = np.abs(spectrum) ** 2.0  # (frames, bins); librosa holds it as (bins, frames) in Fortran order
    mel = np.einsum("...ft,mf->...mt", power.T, mel_filters_slaney(SR, P808_N_FFT, P808_N_MELS), optimize=True)
    db = 10.0 * np.log10(np.maximum(P808_AMIN, mel))
    db -= 10.0 * np.log10(np.maximum(P808_AMIN, np.max(mel)))
    db = np.maximum(db, db.max() - P808_TOP_DB)
    return ((db + 40) / 40).T


# speechmos.dnsmos.DNSMOS.get_polyfit_val's polynomials (np.poly1d coefficients, highest power first;
# tested equal, value for value): raw (sig, bak, ovr) -> MOS, for the DNSMOS and the personalised models
POLYFIT = {
    False: ((-0.08397278, 1.22083953, 0.0052439), (-0.13166888, 1.60915514, -0.39604546),
            (-0.06766283, 1.11546468, 0.04602535)),
    True: ((-0.01019296, 0.02751166, 1.19576786, -0.24348726), (-0.04976499, 0.44276479, -0.1644611, 0.96883132),
           (-0.00533021, 0.005101, 1.18058466, -0.11236046)),
}


def polyfit_val(sig, bak, ovr, is_personalized_MOS: bool):
    """speechmos's ``DNSMOS.get_polyfit_val``: each raw P.835 output through its polynomial
    (``np.poly1d``, as speechmos evaluates it, so float32 raw values give float32 MOS)."""
    p_sig, p_bak, p_ovr = (np.poly1d(c) for c in POLYFIT[bool(is_personalized_MOS)])
    return p_sig(sig), p_bak(bak), p_ovr(ovr)


def speechmos_models_dir() -> Path:
    """The folder of the DNSMOS ONNX models that the speechmos package ships (``dnsmos_models``),
    found without importing ``speechmos.dnsmos`` (which imports requests and librosa: ~0.1 s)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'speechmos'")
    return Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models"


class GraphMismatch(RuntimeError):
    """sig_bak_ovr.onnx is not laid out as this module expects (another speechmos version?)."""


@dataclass(frozen=True)
class _Split:
    spectrogram: str  # the tensor that feeds conv2d
    features: str  # conv2d_3's ReLU output, which feeds the first max-pool
    nodes: tuple  # (A nodes, B nodes, C nodes)


def split_p835(model) -> _Split:
    """Where to cut the P.835 graph (an ``onnx.ModelProto``), checked against what the split assumes."""
    nodes = list(model.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv" and _attr(n, "kernel_shape") == [3, 3]]
    if len(convs) < N_FEATURE_CONVS:
        raise GraphMismatch(f"expected at least {N_FEATURE_CONVS} 3x3 convolutions, found {len(convs)}")
    first, last = convs[0], convs[N_FEATURE_CONVS - 1]
    spectrogram = nodes[first].input[0]
    chain = nodes[first:last + 2]  # conv, relu, conv, relu, ..., conv2d_3, relu
    if [n.op_type for n in chain] != ["Conv", "Relu"] * N_FEATURE_CONVS:
        raise GraphMismatch(f"expected Conv, Relu x{N_FEATURE_CONVS}, found {[n.op_type for n in chain]}")
    for conv, relu in zip(chain[::2], chain[1::2]):
        shape = (_attr(conv, "pads"), _attr(conv, "strides"), _attr(conv, "dilations"), _attr(conv, "group"))
        if shape != ([1, 1, 1, 1], [1, 1], [1, 1], 1) or _attr(conv, "auto_pad") not in (None, "NOTSET"):
            raise GraphMismatch(f"{conv.name}: expected a 'same' 3x3 convolution (pads 1, stride 1), got {shape}")
        if list(relu.input) != [conv.output[0]]:
            raise GraphMismatch(f"{relu.name} does not take {conv.name}'s output")
    features = chain[-1].output[0]
    a, b, c = nodes[:first], chain, nodes[last + 2:]
    if not c or c[0].op_type != "MaxPool" or list(c[0].input) != [features]:
        raise GraphMismatch(f"expected a MaxPool on {features}")
    inits = {t.name for t in model.graph.initializer}
    for part, allowed in ((b, {spectrogram}), (c, {features})):  # nothing else crosses a cut
        produced = {name for n in part for name in n.output}
        outside = {name for n in part for name in n.input} - produced - inits - allowed
        if outside:
            raise GraphMismatch(f"a part of the graph reads tensors from before its cut: {sorted(outside)}")
    return _Split(spectrogram, features, (tuple(a), tuple(b), tuple(c)))


def _attr(node, name):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else list(value) if isinstance(value, list) else value
    return None


def _submodel(model, name: str, nodes, inputs, outputs):
    """A model of ``nodes`` (and the initializers they read) with these graph inputs and outputs."""
    import onnx
    from onnx import helper

    read = {i for n in nodes for i in n.input}
    graph = helper.make_graph(list(nodes), name, inputs, outputs,
                              initializer=[t for t in model.graph.initializer if t.name in read])
    sub = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version,
                            producer_name="sernoise.dnsmos_fast")
    onnx.checker.check_model(sub, full_check=True)
    return sub


def p835_parts(model_path: str) -> tuple[bytes, bytes, bytes]:
    """The serialised sub-models (A) spectrogram, (B) features, (C) head of ``sig_bak_ovr.onnx``."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(model_path)
    split = split_p835(model)
    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    spec_t = helper.make_tensor_value_info(split.spectrogram, TensorProto.FLOAT, ["N", 1, "T", "F"])
    spec_900 = helper.make_tensor_value_info(split.spectrogram, TensorProto.FLOAT, ["N", 1, WINDOW_FRAMES, "F"])
    feat_t = helper.make_tensor_value_info(split.features, TensorProto.FLOAT, ["N", "C", "T", "F"])
    feat_900 = helper.make_tensor_value_info(split.features, TensorProto.FLOAT, ["N", "C", WINDOW_FRAMES, "F"])
    a, b, c = split.nodes
    return tuple(m.SerializeToString() for m in (
        _submodel(model, "dnsmos_p835_spectrogram", a, [graph_input], [spec_900]),
        _submodel(model, "dnsmos_p835_features", b, [spec_t], [feat_t]),
        _submodel(model, "dnsmos_p835_head", c, [feat_900], [graph_output]),
    ))


# --------------------------------------------------------------------- the split model, cached as files
# The split needs the onnx package, whose import (ml_dtypes' extension modules) cost a job ~0.8 s of
# CPU, more than the rest of its DNSMOS set-up; so the first job writes the three parts to a cache
# folder and later jobs open them from there.  The parts are found by the SHA-256 of the model file
# and SPLIT_VERSION (bump it when p835_parts changes what it builds), written atomically (a
# temporary folder renamed into place: a reader sees all three parts or none) and checked against
# the SHA-256 recorded with it when read.  A cache that cannot be written or read back is reported
# (a warning) and the parts are built in memory, as without a cache.
SPLIT_VERSION = "1"
PART_NAMES = ("spectrogram", "features", "head")
CACHE_ENV = "SERNOISE_CACHE_DIR"  # the cache folder; "" for none (the split built in memory in every job)


class CacheWarning(UserWarning):
    """The split P.835 model's cache cannot be used; the job builds the split in memory instead."""


def cache_dir() -> Path | None:
    """``$SERNOISE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sernoise``, else ``~/.cache/sernoise``;
    None when ``SERNOISE_CACHE_DIR`` is set to the empty string (no cache)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value.strip() else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sernoise"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parts_folder(model_path: str, cache: Path) -> tuple[Path, str]:
    """Where the parts of ``model_path`` (of this content) are cached under ``cache``, and the
    model file's SHA-256."""
    digest = _sha256(Path(model_path).read_bytes())
    return Path(cache) / "dnsmos_p835" / f"{Path(model_path).stem}-{digest}-split{SPLIT_VERSION}", digest


def _read_cached_parts(folder: Path, model_digest: str) -> tuple[bytes, ...] | None:
    """The three parts cached in ``folder``, None if there are none; an error if they are damaged."""
    manifest = folder / "parts.json"
    if not manifest.is_file():
        return None
    record = json.loads(manifest.read_text())
    if record.get("model_sha256") != model_digest or record.get("split_version") != SPLIT_VERSION:
        raise ValueError(f"{manifest} is for another model or split version")
    parts = tuple((folder / f"{name}.onnx").read_bytes() for name in PART_NAMES)
    for name, part in zip(PART_NAMES, parts):
        if _sha256(part) != record["parts_sha256"][name]:
            raise ValueError(f"{folder / name}.onnx does not match the SHA-256 recorded in {manifest}")
    return parts


def _write_cached_parts(folder: Path, model_digest: str, parts: tuple[bytes, ...]) -> None:
    """Write the parts and their manifest to ``folder`` atomically (a job that loses a race to write
    the same folder keeps the winner's, which holds the same parts)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's folder is private (0700); the parts are no secret
        for name, part in zip(PART_NAMES, parts):
            (tmp / f"{name}.onnx").write_bytes(part)
        record = {"model_sha256": model_digest, "split_version": SPLIT_VERSION,
                  "parts_sha256": {name: _sha256(part) for name, part in zip(PART_NAMES, parts)}}
        (tmp / "parts.json").write_text(json.dumps(record, indent=1) + "\n")  # last: marks the folder complete
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "parts.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_p835_parts(model_path: str, cache: Path | None) -> tuple[tuple[bytes, ...], str]:
    """The serialised parts (A, B, C) of ``model_path`` and where they came from: read from
    ``cache`` when it holds them (no onnx import), else split in memory (:func:`p835_parts`) and
    written there for the next job.  ``cache`` None: split in memory, nothing written."""
    if cache is None:
        return p835_parts(model_path), "split in memory (no cache)"
    folder, model_digest = parts_folder(model_path, cache)
    try:
        parts = _read_cached_parts(folder, model_digest)
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"the cached split DNSMOS P.835 model in {folder} cannot be used ({error}); splitting it "
                      f"in memory (delete that folder to have it written again)", CacheWarning, stacklevel=2)
        return p835_parts(model_path), "split in memory (cache damaged)"
    if parts is not None:
        return parts, f"read from {folder}"
    parts = p835_parts(model_path)
    try:
        _write_cached_parts(folder, model_digest, parts)
    except OSError as error:
        warnings.warn(f"cannot write the split DNSMOS P.835 model to {folder} ({error}); every job will split "
                      f"it in memory (importing onnx: ~0.8 s of CPU); set {CACHE_ENV} to a writable folder, or "
                      f"to an empty string for no cache", CacheWarning, stacklevel=2)
        return parts, "split in memory (cache not writable)"
    return parts, f"split in memory, written to {folder}"


class SplitP835:
    """The three ONNX Runtime sessions of the split P.835 model (see the module docstring), from the
    parts cached under ``cache`` (:func:`load_p835_parts`; None: split in memory)."""

    def __init__(self, model_path: str, options, providers=("CPUExecutionProvider",), cache: Path | None = None):
        import onnxruntime as ort

        self.model_path = str(model_path)
        parts, self.source = load_p835_parts(self.model_path, cache)
        self.sessions = [ort.InferenceSession(part, sess_options=options, providers=list(providers))
                         for part in parts]
        self.names = [(s.get_inputs()[0].name, s.get_outputs()[0].name) for s in self.sessions]

    def _run(self, part: int, x: np.ndarray) -> np.ndarray:
        name_in, name_out = self.names[part]
        return self.sessions[part].run([name_out], {name_in: x})[0]

    def spectrogram(self, windows: np.ndarray) -> np.ndarray:
        """(A) [N, 144160] float32 windows -> [N, 1, 900, 161] log-power spectrograms."""
        return self._run(0, windows)

    def features(self, spectrogram: np.ndarray) -> np.ndarray:
        """(B) [N, 1, T, 161] -> conv2d_3's ReLU output [N, 32, T, 161]."""
        return self._run(1, np.ascontiguousarray(spectrogram))

    def head(self, features: np.ndarray) -> np.ndarray:
        """(C) [N, 32, 900, 161] -> raw (sig, bak, ovr) [N, 3]."""
        return self._run(2, np.ascontiguousarray(features))

    def shared_features(self, spectrogram: np.ndarray, chunk: int = CHUNK_FRAMES) -> np.ndarray:
        """(B) over a long [1, 1, T, 161] spectrogram, in runs of at most ``chunk`` kept frames plus
        HALO frames of context either side: exact at frames HALO .. T - HALO - 1 (the first and last
        HALO frames see the zero padding at the ends of the span, as a lone run would)."""
        frames = spectrogram.shape[2]
        out = None
        for start in range(0, frames, chunk):
            stop = min(start + chunk, frames)
            lo, hi = max(0, start - HALO), min(frames, stop + HALO)
            part = self.features(spectrogram[:, :, lo:hi])
            if out is None:
                out = np.empty(part.shape[:2] + (frames,) + part.shape[3:], dtype=part.dtype)
            out[:, :, start:stop] = part[:, :, start - lo:stop - lo]
        return out

    def window_features(self, spectrograms: np.ndarray, offsets: list[int]):
        """conv2d_3's ReLU output of each window, [1, 32, 900, 161] one after the other (a buffer that
        the next window overwrites), from the spectrograms of K windows [K, 1, 900, 161] whose first
        frames are ``offsets`` (ascending, windows overlapping or adjacent) of one frame sequence.

        Their frames go into one spectrogram of the span they cover, (B) runs over it once, and
        each window takes its frames HALO .. 900 - HALO - 1 from there and its first and last HALO
        frames from a run of (B) on its own first and last EDGE frames (one run for all windows)."""
        k = len(offsets)
        if k == 1:  # nothing shared: the window's own run
            yield self.features(spectrograms)
            return
        if any(not 0 < b - a <= WINDOW_FRAMES for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f"windows at frames {offsets}: not ascending, or a gap between two")
        base = offsets[0]
        span = np.empty((1, 1, offsets[-1] - base + WINDOW_FRAMES, spectrograms.shape[3]), dtype=spectrograms.dtype)
        for spectrogram, offset in zip(spectrograms, offsets):
            span[0, :, offset - base:offset - base + WINDOW_FRAMES] = spectrogram
        shared = self.shared_features(span)
        edges = self.features(np.concatenate([spectrograms[:, :, :EDGE], spectrograms[:, :, -EDGE:]]))
        out = np.empty(shared.shape[:2] + (WINDOW_FRAMES,) + shared.shape[3:], dtype=shared.dtype)
        for i, offset in enumerate(offsets):
            start = offset - base
            out[0, :, :HALO] = edges[i, :, :HALO]
            out[0, :, HALO:-HALO] = shared[0, :, start + HALO:start + WINDOW_FRAMES - HALO]
            out[0, :, -HALO:] = edges[k + i, :, -HALO:]
            yield out


class FastDNSMOS:
    """speechmos's DNSMOS scorer (``speechmos.dnsmos.DNSMOS.__call__``) with the P.835 model run
    through a :class:`SplitP835`, the P.808 features computed by :func:`p808_melspec` and the
    polynomial mappings by :func:`polyfit_val` (speechmos's, tested equal); ``p808_session``: an ONNX
    Runtime session of speechmos's ``model_v8.onnx``.  Called as speechmos's ``scorer(audio, 16000,
    is_personalized_MOS)`` on a numpy array, it returns the same dict, without importing speechmos's
    module (nor librosa)."""

    def __init__(self, p808_session, split: SplitP835, max_windows: int = MAX_SHARED_WINDOWS):
        self.p808_session = p808_session
        self.split = split
        self.max_windows = max_windows

    def windows(self, audio: np.ndarray, fs: int) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """speechmos's repetition and windows: the repeated audio and the (hop index, segment) of
        each window it scores (it skips a segment that comes out short)."""
        if not len(audio):
            raise ValueError("empty audio (speechmos would repeat it forever)")
        len_samples = int(INPUT_LENGTH * fs)
        while len(audio) < len_samples:
            audio = np.append(audio, audio)
        num_hops = int(np.floor(len(audio) / fs) - INPUT_LENGTH) + 1
        hop_len_samples = fs
        windows = []
        for idx in range(num_hops):
            audio_seg = audio[int(idx * hop_len_samples): int((idx + INPUT_LENGTH) * hop_len_samples)]
            if len(audio_seg) < len_samples:
                continue
            windows.append((idx, audio_seg))
        return audio, windows

    def p835(self, windows: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """The P.835 model's raw (sig, bak, ovr) of each window, float32 [3] each."""
        raw = []
        for group in _groups(windows, self.max_windows):
            segments = np.stack([np.array(seg).astype("float32") for _, seg in group])
            spectrograms = self.split.spectrogram(segments)
            if spectrograms.shape[1:3] != (1, WINDOW_FRAMES):
                raise ValueError(f"P.835 spectrogram of shape {spectrograms.shape}, expected [N, 1, 900, F]")
            offsets = [idx * SR // FRAME_HOP for idx, _ in group]
            raw.extend(self.split.head(features)[0] for features in self.split.window_features(spectrograms, offsets))
        return raw

    def __call__(self, sample: np.ndarray, fs: int, is_personalized_MOS: bool) -> dict:
        # speechmos.dnsmos.DNSMOS.__call__ (an array sample), its P.835 run replaced by self.p835
        if not isinstance(sample, np.ndarray):
            raise ValueError("Input must be a numpy array (the split P.835 model reads no files).")
        if fs != SR:
            raise ValueError(f"Sampling rate must be {SR}.")
        audio = sample
        if not ((audio >= -1).all() and (audio <= 1).all()):
            raise ValueError("np.ndarray values must be between -1 and 1.")
        _, windows = self.windows(audio, fs)
        predicted_mos_sig_seg = []
        predicted_mos_bak_seg = []
        predicted_mos_ovr_seg = []
        predicted_p808_mos = []
        for (_, audio_seg), (mos_sig_raw, mos_bak_raw, mos_ovr_raw) in zip(windows, self.p835(windows)):
            p808_input_features = np.array(p808_melspec(audio_seg[:-160])).astype('float32')[np.newaxis, :, :]
            p808_mos = self.p808_session.run(None, {'input_1': p808_input_features})[0][0][0]
            mos_sig, mos_bak, mos_ovr = polyfit_val(
                mos_sig_raw, mos_bak_raw, mos_ovr_raw, is_personalized_MOS)
            predicted_mos_sig_seg.append(mos_sig)
            predicted_mos_bak_seg.append(mos_bak)
            predicted_mos_ovr_seg.append(mos_ovr)
            predicted_p808_mos.append(p808_mos)
        return {
            'ovrl_mos': np.mean(predicted_mos_ovr_seg),
            'sig_mos': np.mean(predicted_mos_sig_seg),
            'bak_mos': np.mean(predicted_mos_bak_seg),
            'p808_mos': np.mean(predicted_p808_mos),
        }


def _groups(windows: list, size: int) -> list[list]:
    """``windows`` ((hop index, segment) pairs) in runs of consecutive hop indices, at most ``size`` long."""
    groups: list[list] = []
    for window in windows:
        if groups and window[0] == groups[-1][-1][0] + 1 and len(groups[-1]) < size:
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups
