"""Speech quality of processed audio against the clean original: STOI and wide-band PESQ, and
which of them a dataset's pool measures (``augment.quality`` / ``denoise.quality`` config).

Shared by the augmented datasets (:mod:`sernoise.augment`) and the denoised ones
(:mod:`sernoise.denoise`), so both report the same measure the same way (NaN plus a note when a
measure is undefined, e.g. a signal too short for STOI).

Two further measures, each switched on by its own key (``dnsmos``, ``fwsnrseg``) and computed by
a :class:`QualityMeter`:

* DNSMOS (Reddy et al. 2022, ITU-T P.835 model: ``dnsmos_sig`` speech signal, ``dnsmos_bak``
  background, ``dnsmos_ovrl`` overall quality; plus ``dnsmos_p808``, the P.808 overall model),
  a *non-intrusive* MOS predictor: it looks at the processed audio only, so it is defined for
  outputs whose length changed too.  The ONNX models and the scoring (9.01 s windows, hop 1 s,
  shorter clips repeated to 9.01 s, polynomial mapping of the raw outputs) are the ``speechmos``
  package's; we only open its two ONNX sessions ourselves, once per job and with one intra-op
  thread (speechmos's own ``run`` opens them with every core).  By default (:data:`DNSMOS_METHOD`
  ``"fast"``) the P.835 model runs split in three (:mod:`sernoise.dnsmos_fast`): its four
  full-resolution convolutions, ~90 % of its cost, run once over the frames of all of a clip's
  overlapping windows instead of once per window.  The scores are bit-for-bit speechmos's
  (``"speechmos"``: its own scorer, :func:`dnsmos_scorer`) at about 0.46 s of CPU per RAVDESS
  utterance instead of 1.16 s (``benchmarks/quality.py``), and a job's first score no longer
  pays for importing librosa, numba, scipy.signal and onnx (~0.1 s of CPU of set-up instead of
  3.0 s): the P.808 features are computed with NumPy and the split model is cached as files
  (``$SERNOISE_CACHE_DIR``, by default ``~/.cache/sernoise``).
* fwSNRseg, frequency-weighted segmental SNR (Hu & Loizou 2008) of the processed audio against the
  clean utterance (equal lengths only): 30 ms Hann frames, 75 % overlap, 25 critical bands,
  weights = clean band magnitude^0.2, per-frame values clipped to [-10, 35] dB; ``pysepm_evo``'s
  ``fwSNRseg`` value, computed by :mod:`sernoise.fwsnrseg` (vectorised, about twice as fast).  It
  compares per-frame *normalised* spectra, so a pure gain change scores 35.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from typing import Iterable

import numpy as np

from sernoise.audio_store import dequantise, quantise
from sernoise.conditions.base import SAMPLE_RATE

# augment.quality defaults; ``clean``: measure the clean corpus too (datasets that have one: denoise)
DEFAULT_QUALITY = {"stoi": True, "pesq": True, "pools": ["test"]}

# The measures a QualityMeter computes (config keys of augment.quality / denoise.quality; off unless
# switched on: the library default, config.yaml switches them on) and the params.csv columns of each.
METER_COLUMNS = {
    "dnsmos": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
    "fwsnrseg": ("fwsnrseg",),
}
DNSMOS_THREADS = 1  # ONNX Runtime intra-op threads per job: a job is given one core (rules' threads: 1)
# How DNSMOS is computed: "fast" (the split P.835 model of sernoise.dnsmos_fast, the same scores) or
# "speechmos" (its own scorer, one full P.835 run per 9.01 s window).
DNSMOS_METHODS = ("fast", "speechmos")
DNSMOS_METHOD = "fast"


def quality_for(quality: dict | None, pool: str | None, default: dict = DEFAULT_QUALITY) -> tuple[bool, bool]:
    """(stoi?, pesq?) for this pool (``None``: the clean corpus, per the ``clean`` key) from a
    quality config (``default`` when None)."""
    q = dict(default if quality is None else quality)
    on = bool(q.get("clean", True)) if pool is None else pool in (q.get("pools") or [])
    return bool(q.get("stoi", False)) and on, bool(q.get("pesq", False)) and on


def in_dnsmos_sample(utt_id: str, fraction: float) -> bool:
    """Whether ``utt_id`` is in the DNSMOS sample of this ``fraction`` (``dnsmos_fraction``).

    The choice hangs on the utterance id alone (a hash, not a seed), so every condition, pool and
    denoiser scores the same utterances and per-condition medians compare like with like."""
    if fraction >= 1:
        return True
    digest = hashlib.sha256(str(utt_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def meter_for(quality: dict | None, pool: str | None, default: dict = DEFAULT_QUALITY,
              threads: int = DNSMOS_THREADS) -> "QualityMeter":
    """The :class:`QualityMeter` a job's quality config asks for in this pool (``dnsmos_fraction``
    included)."""
    q = dict(default if quality is None else quality)
    return QualityMeter(meter_measures(q, pool, default), threads,
                        dnsmos_fraction=float(q.get("dnsmos_fraction", 1.0)))


def meter_measures(quality: dict | None, pool: str | None, default: dict = DEFAULT_QUALITY) -> tuple[str, ...]:
    """The :data:`METER_COLUMNS` measures switched on for this pool (``None``: the clean corpus), as
    :func:`quality_for` decides for STOI and PESQ."""
    q = dict(default if quality is None else quality)
    on = bool(q.get("clean", True)) if pool is None else pool in (q.get("pools") or [])
    return tuple(name for name in METER_COLUMNS if on and bool(q.get(name, False)))


def as_stored(y: np.ndarray) -> np.ndarray:
    """``y`` as an audio shard gives it back (int16 quantisation): measure what is stored."""
    q, scale = quantise(y)
    return dequantise(q, scale)


def measure_stoi(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    from sernoise.stoi import TooFewFramesWarning, stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(stoi(x, y, SAMPLE_RATE))  # float64 inside
    notes = [str(w.message) for w in caught if issubclass(w.category, TooFewFramesWarning)]
    if notes:  # stoi returns pystoi's placeholder (1e-5) when the signal is too short
        return math.nan, "stoi: " + notes[0]
    return value, ""


def measure_pesq(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    import pesq

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(pesq.pesq(SAMPLE_RATE, x, y, "wb")), ""
    except (pesq.PesqError, ValueError) as error:
        message = error.args[0] if error.args else type(error).__name__
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        return math.nan, f"pesq: {type(error).__name__}: {message}"


# ------------------------------------------------------------------------------ DNSMOS, fwSNRseg


class QualityError(RuntimeError):
    """A quality measure cannot run (package missing); the message says what to install."""


def _ort_options(threads: int):
    """ONNX Runtime session options of ``threads`` intra-op threads, one inter-op, sequential."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def _ort_session(path, options):
    """An ONNX Runtime CPU session of the model file ``path`` with ``options`` (:func:`_ort_options`)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def dnsmos_scorer(threads: int = DNSMOS_THREADS):
    """speechmos's DNSMOS scorer on its shipped ONNX models (P.835 ``sig_bak_ovr.onnx`` and P.808
    ``model_v8.onnx``), with ONNX sessions of ``threads`` intra-op threads; built once per process
    (and per thread count: ``dnsmos_scorer()`` and ``dnsmos_scorer(1)`` are one object)."""
    return _dnsmos_scorer(int(threads))


@functools.lru_cache(maxsize=None)
def _dnsmos_scorer(threads: int):
    try:
        import onnxruntime  # noqa: F401  (the sessions)
        from speechmos import dnsmos

        from sernoise.dnsmos_fast import speechmos_models_dir

        folder = speechmos_models_dir()
    except ImportError as error:
        raise QualityError(f"DNSMOS needs the packages speechmos and onnxruntime ({error}); "
                           "pip install -r requirements.txt") from None
    options = _ort_options(threads)
    # speechmos.dnsmos.DNSMOS.__init__ opens default sessions (all cores); set its three attributes
    # ourselves and keep its scoring (__call__, audio_melspec, get_polyfit_val) as it is.
    scorer = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
    scorer.primary_model_path = str(folder / "sig_bak_ovr.onnx")
    scorer.onnx_sess = _ort_session(folder / "sig_bak_ovr.onnx", options)
    scorer.p808_onnx_sess = _ort_session(folder / "model_v8.onnx", options)
    return scorer


def dnsmos_fast_scorer(threads: int = DNSMOS_THREADS):
    """speechmos's scoring with its P.835 model run split (:class:`sernoise.dnsmos_fast.FastDNSMOS`):
    called as :func:`dnsmos_scorer`'s, the same scores.  It opens speechmos's ONNX files by path with
    the same session options, once per process, and imports neither ``speechmos.dnsmos`` nor librosa;
    the three sub-models cut from ``sig_bak_ovr.onnx`` are read from the cache folder
    (:func:`sernoise.dnsmos_fast.cache_dir`), or cut in memory with the onnx package and written there
    on the first use."""
    return _dnsmos_fast_scorer(int(threads))


@functools.lru_cache(maxsize=None)
def _dnsmos_fast_scorer(threads: int):
    try:
        import onnxruntime  # noqa: F401  (the sessions)
        from sernoise import dnsmos_fast

        folder = dnsmos_fast.speechmos_models_dir()
    except ImportError as error:
        raise QualityError(f"DNSMOS needs the packages speechmos and onnxruntime ({error}); "
                           "pip install -r requirements.txt") from None
    model_path = str(folder / "sig_bak_ovr.onnx")
    options = _ort_options(threads)
    try:
        split = dnsmos_fast.SplitP835(model_path, options, cache=dnsmos_fast.cache_dir())
    except ImportError as error:  # the split needs onnx (when the cache does not hold it)
        raise QualityError(f"the fast DNSMOS needs the package onnx ({error}); pip install -r requirements.txt "
                           "(or DNSMOS_METHOD = 'speechmos')") from None
    except dnsmos_fast.GraphMismatch as error:
        raise QualityError(f"the fast DNSMOS cannot split {model_path}: {error} "
                           "(use DNSMOS_METHOD = 'speechmos')") from None
    return dnsmos_fast.FastDNSMOS(_ort_session(folder / "model_v8.onnx", options), split)


def _dnsmos_method(method: str | None) -> str:
    """``method`` checked against :data:`DNSMOS_METHODS` (None: :data:`DNSMOS_METHOD`)."""
    method = DNSMOS_METHOD if method is None else method
    if method not in DNSMOS_METHODS:
        raise ValueError(f"unknown DNSMOS method {method!r}; known: {list(DNSMOS_METHODS)}")
    return method


def measure_dnsmos(y: np.ndarray, threads: int = DNSMOS_THREADS, method: str | None = None) -> tuple[dict, str]:
    """DNSMOS of one 16 kHz utterance: {dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808} and a note.

    speechmos accepts samples in [-1, 1] only; stored audio can peak above full scale (the shards
    keep a per-utterance scale), so such an utterance is scaled to peak 1 and the note says so.
    Empty or silent audio gets NaN and a note.  ``method`` (default :data:`DNSMOS_METHOD`): "fast"
    or "speechmos", the same scores."""
    method = _dnsmos_method(method)
    columns = METER_COLUMNS["dnsmos"]
    y = np.asarray(y, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not y.size or peak == 0.0 or not math.isfinite(peak):
        return dict.fromkeys(columns, math.nan), f"dnsmos: {'empty' if not y.size else 'silent or non-finite'} audio"
    note = ""
    if peak > 1.0:
        y = y / peak
        note = f"dnsmos: peak {peak:.3f} above full scale, scaled to 1"
    scorer = dnsmos_fast_scorer(threads) if method == "fast" else dnsmos_scorer(threads)
    scores = scorer(y, SAMPLE_RATE, False)
    values = {"dnsmos_ovrl": scores["ovrl_mos"], "dnsmos_sig": scores["sig_mos"], "dnsmos_bak": scores["bak_mos"],
              "dnsmos_p808": scores["p808_mos"]}
    values = {k: float(v) for k, v in values.items()}
    if not all(math.isfinite(v) for v in values.values()):
        return dict.fromkeys(columns, math.nan), "dnsmos: non-finite score"
    return values, note


def measure_fwsnrseg(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """fwSNRseg (dB, in [-10, 35]) of ``y`` against the clean ``x`` (equal lengths), and a note."""
    if x.shape != y.shape:
        return math.nan, "fwsnrseg: lengths differ"
    frame = round(0.03 * SAMPLE_RATE)
    if x.size < 2 * frame:  # fewer than two frames: pysepm's framing has nothing to average
        return math.nan, f"fwsnrseg: signal shorter than {2 * frame} samples"
    from sernoise.fwsnrseg import fwsnrseg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # non-finite samples (inf - inf, 0 * inf -> NaN, reported below)
        value = fwsnrseg(x, y, SAMPLE_RATE)
    if not math.isfinite(value):
        return math.nan, "fwsnrseg: undefined (non-finite samples)"
    return value, ""


class QualityMeter:
    """The :data:`METER_COLUMNS` measures of a job (DNSMOS, fwSNRseg), each only when switched on.

    ``columns(suffix)`` lists the params.csv columns; ``empty(suffix)`` is a row of NaN for them;
    ``measure(clean, y, suffix, utt_id)`` measures one utterance (``clean`` None or of another
    length: only the non-intrusive DNSMOS).  The DNSMOS ONNX sessions open on first use, once per
    process.  ``dnsmos_fraction`` < 1 scores DNSMOS (about 0.46 s of CPU per RAVDESS utterance; 1.16 s
    with ``dnsmos_method="speechmos"``) only on the utterances :func:`in_dnsmos_sample` picks; the
    others keep NaN.  ``dnsmos_method``: see :func:`measure_dnsmos` (None: :data:`DNSMOS_METHOD`).
    """

    def __init__(self, measures: Iterable[str] = (), threads: int = DNSMOS_THREADS, dnsmos_fraction: float = 1.0,
                 dnsmos_method: str | None = None):
        measures = tuple(measures)
        unknown = [m for m in measures if m not in METER_COLUMNS]
        if unknown:
            raise ValueError(f"unknown quality measure(s) {unknown}; known: {list(METER_COLUMNS)}")
        if not 0 < dnsmos_fraction <= 1:
            raise ValueError(f"dnsmos_fraction must be in (0, 1], got {dnsmos_fraction!r}")
        _dnsmos_method(dnsmos_method)  # an unknown method fails here, not at the first scored utterance
        self.measures = measures
        self.threads = threads
        self.dnsmos_fraction = dnsmos_fraction
        self.dnsmos_method = dnsmos_method

    def __bool__(self) -> bool:
        return bool(self.measures)

    def columns(self, suffix: str = "") -> list[str]:
        return [f"{c}{suffix}" for m in self.measures for c in METER_COLUMNS[m]]

    def empty(self, suffix: str = "") -> dict:
        return dict.fromkeys(self.columns(suffix), math.nan)

    def scores_dnsmos(self, utt_id: str | None) -> bool:
        """Whether :meth:`measure` scores DNSMOS for this utterance (None: any utterance)."""
        return "dnsmos" in self.measures and (utt_id is None or in_dnsmos_sample(utt_id, self.dnsmos_fraction))

    def measured_columns(self, suffix: str = "", utt_id: str | None = None) -> list[str]:
        """The columns :meth:`measure` fills for this utterance (the others stay NaN by design)."""
        return [c for c in self.columns(suffix) if self.scores_dnsmos(utt_id) or not c.startswith("dnsmos_")]

    def measure(self, clean: np.ndarray | None, y: np.ndarray, suffix: str = "",
                utt_id: str | None = None) -> tuple[dict, list[str]]:
        row, notes = self.empty(suffix), []
        if self.scores_dnsmos(utt_id):
            values, note = measure_dnsmos(y, self.threads, self.dnsmos_method)
            row.update({f"{k}{suffix}": v for k, v in values.items()})
            notes.append(note)
        if "fwsnrseg" in self.measures and clean is not None and clean.shape == y.shape:
            row[f"fwsnrseg{suffix}"], note = measure_fwsnrseg(clean, y)
            notes.append(note)
        return row, [n for n in notes if n]
