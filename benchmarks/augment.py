"""Augmentation throughput on one core: every sernoise condition type against the nearest
audiomentations transform, on the same RAVDESS clips.

Usage (from the repository root)::

    .venv/bin/python benchmarks/augment.py [--data ../shared/data] [--limit 60] [--repeat 3]

What is timed: the transform call only (``cond(x, sr, rng, ctx)`` / ``transform(samples=x,
sample_rate=sr)``), summed over the clips; clip loading, generator creation and the noise
bank build are outside the timer.  Each case runs once untimed on the first clip (imports,
FFT plans, caches), then ``--repeat`` timed passes; the best pass is reported.  "x RT" is
seconds of input audio per wall second.  Ratio = audiomentations time / sernoise time
(> 1: sernoise is faster).

Notes:
  * The noise bank is built in a temp dir from ../shared/data/noise (as the tests do); the
    sernoise conditions draw from its test pool, and AddBackgroundNoise reads the same pool's
    files, written as 16 kHz wav files (one folder per category).  AddBackgroundNoise opens
    and decodes its noise file on every call (no cache since 0.43): measured as it is.
  * The additive conditions (env-*, laugh, cry) set their noise against the utterance's P.56
    active level, which the prepare stage stores in the shard once per utterance and the
    augment and attack jobs pass in the condition's Context; here too (computed before the
    timing, and timed on its own: the "speech level" line).
  * "batched" rows time one ``apply_batch`` call over all clips (one tool process).  For
    reverb and speed-utt it gives exactly the per-call results, and the augment stage uses it
    (chunks of ``sernoise.augment.BATCH_SIZE`` utterances); pitch's batch is not exact and is
    not used there.
  * RAVDESS has no alignment: drop-word, drop-letters and filler run on a synthetic word and
    phone alignment (8 evenly spaced fake words over the voiced part of each clip, with
    'the', 'and', 'uh' and words whose phones match every drop-letters pattern) and a
    FillerBank of the fake 'uh' spans.  Their rows say "synthetic alignment".
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy loads (see benchmarks/prepare.py).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from sernoise.alignments import Segment, normalise_token  # noqa: E402
from sernoise.conditions import Context, SkipUtterance, build_condition  # noqa: E402
from sernoise.conditions.active_level import active_speech_power  # noqa: E402
from sernoise.conditions.filler import FillerBank  # noqa: E402
from sernoise.conditions.pool import NoisePool  # noqa: E402
from sernoise.conditions.tools import fit_length, run_rubberband, run_sox  # noqa: E402
from sernoise.noise.bank import assign_splits, build_bank, scan_folder  # noqa: E402
from sernoise.seeds import rng_for  # noqa: E402

SR = 16000
SEED = 1234

# The conditions (paper defaults) and the shared noise bank come from the project's own config
# files, so the benchmark measures exactly what the workflow runs.
_CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
_SHARED = yaml.safe_load((REPO / "tests" / "configs" / "shared_data.yaml").read_text())["noise_banks"]["shared"]
NOISE_ENTRIES = _SHARED["entries"]
CLASS_TO_CATEGORY = _SHARED["class_to_category"]
BENCHMARKED = (
    "env-nat-start", "env-hum-start", "env-int-start", "env-nat-cont-snr10", "env-hum-cont-snr10",
    "env-int-cont-snr10", "laugh", "cry", "fade-in", "fade-out", "speed-seg", "speed-utt-1.25",
    "speed-utt-0.75", "pitch-up", "pitch-down", "reverb", "drop-word", "drop-letters", "filler-short", "filler-long",
)
CONDITIONS = {cid: _CONFIG["conditions"][cid] for cid in BENCHMARKED}
# The demo's pitch shifts (tests/configs/shared_data.yaml): Rubber Band's R2 engine ("fast")
_DEMO = yaml.safe_load((REPO / "tests" / "configs" / "shared_data.yaml").read_text())["conditions"]
CONDITIONS.update({f"{cid} R2": _DEMO[cid] for cid in ("pitch-up", "pitch-down")})
ALIGNMENT_CONDITIONS = ("drop-word", "drop-letters", "filler-short", "filler-long")

# Fake words for the synthetic alignment: (word, ARPAbet phones).  Together they contain the
# droppable words 'the'/'and', the filler 'uh' and one match of each drop-letters pattern
# (h_vowel in 'hand', vowel_nd_consonant 'hand'+'kept', consonant_t_consonant 'kept'+'sitting',
# ihng 'sitting', vowel_r_consonant 'card').
FAKE_WORDS = [
    ("the", ["DH", "AH0"]),
    ("hand", ["HH", "AE1", "N", "D"]),
    ("kept", ["K", "EH1", "P", "T"]),
    ("sitting", ["S", "IH1", "T", "IH0", "NG"]),
    ("and", ["AH0", "N", "D"]),
    ("uh", ["AH1"]),
    ("card", ["K", "AA1", "R", "D"]),
    ("door", ["D", "AO1", "R"]),
]


@dataclass
class Clip:
    utt_id: str
    speaker: str
    audio: np.ndarray
    words: list = field(default_factory=list)
    phones: list = field(default_factory=list)
    active_power: float | None = None  # P.56 level, as a prepared shard stores it (see main)

    @property
    def seconds(self) -> float:
        return self.audio.size / SR


@dataclass
class Timing:
    seconds: float  # best pass
    audio_seconds: float
    skipped: int = 0

    @property
    def xrt(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds > 0 else math.inf


# --------------------------------------------------------------------------- set-up (untimed)


def pick_clips(ravdess: Path, limit: int) -> list[Path]:
    """``limit`` files spread over the actors (evenly spaced within each actor, interleaved)."""
    actors = sorted(p for p in ravdess.glob("Actor_*") if p.is_dir())
    per_actor = {a: sorted(a.glob("*.wav")) for a in actors}
    per_actor = {a: files for a, files in per_actor.items() if files}
    if not per_actor:
        sys.exit(f"{ravdess}: no RAVDESS wav files found (pass --data)")
    k = -(-limit // len(per_actor))
    chosen = {}
    for a, files in per_actor.items():
        idx = np.unique(np.round(np.linspace(0, len(files) - 1, min(k, len(files)))).astype(int))
        chosen[a] = [files[i] for i in idx]
    out = []
    for j in range(k):
        for a in per_actor:
            if j < len(chosen[a]):
                out.append(chosen[a][j])
    return out[:limit]


def fake_alignment(x: np.ndarray) -> tuple[list[Segment], list[Segment]]:
    """Words and phones spread evenly over the voiced part of ``x`` (frames within 26 dB of the peak frame)."""
    hop = SR // 50
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    voiced = np.flatnonzero(rms > 0.05 * rms.max())
    a = voiced[0] * hop / SR
    b = (voiced[-1] + 1) * hop / SR
    words, phones = [], []

    def seg(start, end, label):
        return Segment(round(start, 4), round(end, 4), label, normalise_token(label))

    if a > 0:
        words.append(seg(0.0, a, "<sil>"))
        phones.append(seg(0.0, a, "SIL"))
    slot = (b - a) / len(FAKE_WORDS)
    for i, (word, word_phones) in enumerate(FAKE_WORDS):
        start = a + i * slot
        end = start + 0.8 * slot  # a short pause after every word
        words.append(seg(start, end, word.upper()))
        step = (end - start) / len(word_phones)
        for j, p in enumerate(word_phones):
            phones.append(seg(start + j * step, start + (j + 1) * step, p))
    if b < x.size / SR:
        words.append(seg(b, x.size / SR, "<sil>"))
        phones.append(seg(b, x.size / SR, "SIL"))
    return words, phones


def filler_bank(clips: list[Clip]) -> FillerBank:
    """Each clip's fake 'uh' span, per speaker (source ``utt_id@start-end`` as the real bank)."""
    items = []
    for c in clips:
        for w in c.words:
            if w.token == "uh":
                s, e = int(round(w.start * SR)), int(round(w.end * SR))
                items.append((c.speaker, f"{c.utt_id}@{w.start}-{w.end}", c.audio[s:e].copy()))
    return FillerBank(items)


def build_noise(noise_root: Path, work: Path) -> tuple[NoisePool, dict[str, Path]]:
    """Bank from the shared noise (test pool), and the pool's files as wav per category."""
    frame = scan_folder(noise_root, NOISE_ENTRIES, CLASS_TO_CATEGORY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = assign_splits(frame, test_fraction=0.5, seed=11)
    out = work / "bank"
    build_bank(frame, noise_root, out / "bank.csv", out / "bank.h5", rejects_out=out / "rejects.csv", progress=False)
    pool = NoisePool([(out / "bank.csv", out / "bank.h5")], "test")
    folders = {}
    for cat in ("nat", "hum", "int", "laugh", "cry"):
        folder = work / "wav" / cat
        folder.mkdir(parents=True)
        for i, key in enumerate(pool.files(cat)):
            sf.write(folder / f"{i:04d}.wav", pool.read(key), SR, subtype="PCM_16")
        folders[cat] = folder
    return pool, folders


# --------------------------------------------------------------------------- timing


def time_sernoise(cond, clips: list[Clip], pool, fillers, repeat: int) -> Timing:
    def contexts():
        return [
            Context(utt_id=c.utt_id, speaker=c.speaker, noise=pool,
                    words=c.words or None, phones=c.phones or None, fillers=fillers,
                    active_power=c.active_power)
            for c in clips
        ]

    def once(subset, ctxs):
        rngs = [rng_for(SEED, cond.id, c.utt_id) for c in subset]
        total, skipped = 0.0, 0
        for c, rng, ctx in zip(subset, rngs, ctxs):
            t0 = time.perf_counter()
            try:
                cond(c.audio, SR, rng, ctx)
            except SkipUtterance:
                skipped += 1
            total += time.perf_counter() - t0
        return total, skipped

    ctxs = contexts()
    once(clips[:1], ctxs[:1])  # warm-up
    runs = [once(clips, ctxs) for _ in range(repeat)]
    best = min(runs)
    return Timing(best[0], sum(c.seconds for c in clips), best[1])


def time_sernoise_batch(cond, clips: list[Clip], repeat: int) -> Timing:
    xs = [c.audio for c in clips]
    ctxs = [Context(utt_id=c.utt_id, speaker=c.speaker) for c in clips]
    cond.apply_batch(xs[:1], SR, [rng_for(SEED, cond.id, clips[0].utt_id)], ctxs[:1])  # warm-up
    times = []
    for _ in range(repeat):
        rngs = [rng_for(SEED, cond.id, c.utt_id) for c in clips]
        t0 = time.perf_counter()
        cond.apply_batch(xs, SR, rngs, ctxs)
        times.append(time.perf_counter() - t0)
    return Timing(min(times), sum(c.seconds for c in clips))


def time_audiomentations(make: Callable, clips: list[Clip], repeat: int) -> Timing:
    transform = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resampled-IR and silent-noise warnings
        random.seed(SEED)
        np.random.seed(SEED)
        transform(samples=clips[0].audio, sample_rate=SR)  # warm-up
        times = []
        for _ in range(repeat):
            random.seed(SEED)
            np.random.seed(SEED)
            total = 0.0
            for c in clips:
                t0 = time.perf_counter()
                transform(samples=c.audio, sample_rate=SR)
                total += time.perf_counter() - t0
            times.append(total)
    return Timing(min(times), sum(c.seconds for c in clips))


def tool_start_cost(repeat: int = 20) -> dict[str, float]:
    """Median wall time of one tool call on 10 ms of audio: process start (+ temp files for Rubber Band)."""
    x = (0.1 * np.sin(np.arange(SR // 100) * 0.3)).astype(np.float32)
    out = {}
    for name, fn in (
        ("sox (pipe)", lambda: run_sox(x, SR, ["tempo", "-s", "1.25"])),
        ("rubberband --fine (temp wav files)", lambda: run_rubberband(x, SR, ["--fine", "--frequency", "1.25", "--formant"])),
    ):
        fn()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        out[name] = float(np.median(ts))
    return out


def tool_throughput(clips: list[Clip], conds: dict, repeat: int) -> dict[str, Timing]:
    """Each external tool alone, in ONE process over all clips joined (no per-clip cost at all):
    the ceiling of any condition that runs the tool, whatever the Python around it does.
    The effects are those of the conditions (their middle parameter values for reverb)."""
    joined = np.concatenate([c.audio for c in clips])
    audio_s = joined.size / SR
    reverb = conds["reverb"]
    middle = {name: round((lo + hi) / 2, 2) for name, (lo, hi) in reverb.ranges.items()}
    reverb_effect = reverb.effect({**middle, "wet_only": reverb.wet_only})
    cases = {
        "sox reverb": lambda: run_sox(joined, SR, reverb_effect),
        "sox tempo -s 1.25": lambda: run_sox(joined, SR, ["tempo", "-s", "1.25"]),
        "sox tempo -s 0.75": lambda: run_sox(joined, SR, ["tempo", "-s", "0.75"]),
        "rubberband R3 (pitch-up)": lambda: run_rubberband(joined, SR, conds["pitch-up"].options()),
        "rubberband R2 (pitch-up R2)": lambda: run_rubberband(joined, SR, conds["pitch-up R2"].options()),
    }
    out = {}
    for name, fn in cases.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = Timing(min(times), audio_s)
    return out


# --------------------------------------------------------------------------- pitch quality

PITCH_HOP = 256  # 16 ms frames for F0 and the cepstra


def _f0(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pYIN F0 (Hz) and voiced flags of ``y``, 60-800 Hz (covers a 1.25x shift of a high voice)."""
    import librosa

    f0, voiced, _ = librosa.pyin(y.astype(np.float64), fmin=60.0, fmax=800.0, sr=SR, frame_length=1024,
                                 hop_length=PITCH_HOP)
    return f0, voiced


def _cepstra(y: np.ndarray) -> np.ndarray:
    """MFCC 1-12 (librosa: dB-scaled 40-band mel, orthonormal DCT), frames x 12, on the F0 frames."""
    import librosa

    mfcc = librosa.feature.mfcc(y=y.astype(np.float64), sr=SR, n_mfcc=13, n_fft=1024, hop_length=PITCH_HOP,
                                n_mels=40)
    return mfcc[1:].T


def _log_spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Log-spectral distance (dB) between two equal-length signals: RMS over frequency of the
    difference of their 512-point power spectra in dB, averaged over the frames of ``b`` (the
    reference) within 60 dB of its loudest frame."""
    from scipy.signal import stft

    _, _, sa = stft(a, nperseg=512, noverlap=384)
    _, _, sb = stft(b, nperseg=512, noverlap=384)
    pa, pb = np.abs(sa) ** 2 + 1e-12, np.abs(sb) ** 2 + 1e-12
    energy = pb.sum(axis=0)
    keep = energy > energy.max() * 1e-6
    diff = 10 * np.log10(pa[:, keep]) - 10 * np.log10(pb[:, keep])
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def pitch_quality(clips: list[Clip], shifters: dict[str, tuple[float, Callable]], reference: dict[float, str]):
    """Per shifter (name -> (factor, fn(x) -> y)): median F0 error in cents against factor x the
    input's F0, the cepstral (spectral envelope) distance to the input, and the log-spectral distance
    to the ``reference`` shifter of the same factor; means over ``clips``."""
    outputs = {name: [fit_length(np.asarray(fn(c.audio), dtype=np.float32), c.audio.size) for c in clips]
               for name, (_, fn) in shifters.items()}
    inputs = [(_f0(c.audio), _cepstra(c.audio)) for c in clips]
    rows = []
    for name, (factor, _) in shifters.items():
        cents, envelope, lsd = [], [], []
        for k in range(len(clips)):
            y = outputs[name][k]
            (f0_in, voiced_in), cep_in = inputs[k]
            f0_out, voiced_out = _f0(y)
            both = voiced_in & voiced_out & np.isfinite(f0_in) & np.isfinite(f0_out)
            if both.any():
                cents.append(float(np.median(np.abs(1200 * np.log2(f0_out[both] / (factor * f0_in[both]))))))
                cep_out = _cepstra(y)
                n = min(len(cep_in), len(cep_out), both.size)
                sel = both[:n]
                envelope.append(float(np.mean(np.sqrt(np.mean((cep_out[:n][sel] - cep_in[:n][sel]) ** 2, axis=1)))))
            lsd.append(_log_spectral_distance(y, outputs[reference[factor]][k]))
        rows.append((name, factor, float(np.mean(cents)) if cents else math.nan,
                     float(np.mean(envelope)) if envelope else math.nan, float(np.mean(lsd))))
    return rows


# --------------------------------------------------------------------------- main


def main() -> None:
    wall0 = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="shared data folder (default: ../shared/data relative to the repository root)")
    parser.add_argument("--limit", type=int, default=60, help="number of RAVDESS clips, spread over actors (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per case; the best is reported (default 3)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process (and its tools) to one CPU")
    parser.add_argument("--pitch-quality", type=int, default=10, metavar="N",
                        help="clips for the pitch-shift quality table (default 10; 0: skip it)")
    args = parser.parse_args()
    if args.limit < 1 or args.repeat < 1:
        parser.error("--limit and --repeat must be >= 1")

    cpu = None
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})  # child processes (sox, rubberband) inherit it

    import audiomentations as am  # after the thread pins

    ravdess = args.data / "ravdess" / "Audio_Speech_Actors_01-24"
    noise_root = args.data / "noise"
    rir_dir = args.data / "rir"
    for p in (ravdess, noise_root, rir_dir):
        if not p.is_dir():
            sys.exit(f"{p}: not found (pass --data)")

    clips = []
    for path in pick_clips(ravdess, args.limit):
        x, sr = sf.read(path, dtype="float32")
        if sr != SR or x.ndim != 1:
            sys.exit(f"{path}: expected 16 kHz mono, got {sr} Hz, shape {x.shape}")
        words, phones = fake_alignment(x)
        clips.append(Clip(f"{path.parent.name}/{path.stem}", path.parent.name.split("_")[1], x, words, phones))
    audio_s = sum(c.seconds for c in clips)
    fillers = filler_bank(clips)
    # The speech level every additive condition sets its noise against: the prepare stage
    # stores each utterance's P.56 level in its shard (sernoise.audio_store "Speech levels") and
    # the augment and attack jobs hand it to the conditions, as here; timed on its own.
    level_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        levels = [active_speech_power(c.audio, SR) for c in clips]
        level_times.append(time.perf_counter() - t0)
    for c, level in zip(clips, levels):
        c.active_power = level
    level_timing = Timing(min(level_times), audio_s)

    sern: dict[str, Timing] = {}
    amt: dict[str, Timing] = {}
    with tempfile.TemporaryDirectory(prefix="sernoise_bench_aug_") as tmp:
        pool, folders = build_noise(noise_root, Path(tmp))
        conds = {cid: build_condition(cid.split()[0], spec) for cid, spec in CONDITIONS.items()}

        for cid, cond in conds.items():
            print(f"timing sernoise {cid} ...", file=sys.stderr, flush=True)
            sern[cid] = time_sernoise(cond, clips, pool, fillers, args.repeat)
        for cid in ("reverb", "pitch-up", "pitch-up R2", "speed-utt-1.25", "speed-utt-0.75"):
            print(f"timing sernoise {cid} batched ...", file=sys.stderr, flush=True)
            sern[cid + " batched"] = time_sernoise_batch(conds[cid], clips, args.repeat)

        st_up, st_down = 12 * math.log2(1.25), 12 * math.log2(0.75)
        am_cases = {
            **{f"AddBackgroundNoise {cat} 10 dB": (lambda cat=cat: am.AddBackgroundNoise(
                sounds_path=str(folders[cat]), min_snr_db=10.0, max_snr_db=10.0, p=1.0)) for cat in ("nat", "hum", "int")},
            "GainTransition 0..-0.7 dB": lambda: am.GainTransition(
                min_gain_db=-0.7, max_gain_db=0.0, min_duration=1.0, max_duration=1.0, duration_unit="fraction", p=1.0),
            "TimeStretch 1.25": lambda: am.TimeStretch(min_rate=1.25, max_rate=1.25, leave_length_unchanged=False, p=1.0),
            "TimeStretch 0.75": lambda: am.TimeStretch(min_rate=0.75, max_rate=0.75, leave_length_unchanged=False, p=1.0),
            "TimeStretch 1.25 librosa_pv": lambda: am.TimeStretch(
                min_rate=1.25, max_rate=1.25, leave_length_unchanged=False, method="librosa_phase_vocoder", p=1.0),
            f"PitchShift {st_up:+.2f} st": lambda: am.PitchShift(min_semitones=st_up, max_semitones=st_up, p=1.0),
            f"PitchShift {st_down:+.2f} st": lambda: am.PitchShift(min_semitones=st_down, max_semitones=st_down, p=1.0),
            f"PitchShift {st_up:+.2f} st librosa_pv": lambda: am.PitchShift(
                min_semitones=st_up, max_semitones=st_up, method="librosa_phase_vocoder", p=1.0),
            "ApplyImpulseResponse (6 RIRs)": lambda: am.ApplyImpulseResponse(ir_path=str(rir_dir), p=1.0),
        }
        for name, make in am_cases.items():
            print(f"timing audiomentations {name} ...", file=sys.stderr, flush=True)
            amt[name] = time_audiomentations(make, clips, args.repeat)

    print("timing tool start cost ...", file=sys.stderr, flush=True)
    start_cost = tool_start_cost()
    print("timing the tools alone ...", file=sys.stderr, flush=True)
    tools_alone = tool_throughput(clips, conds, args.repeat)

    quality_rows = []
    if args.pitch_quality > 0:
        print(f"pitch-shift quality on {min(args.pitch_quality, len(clips))} clips ...", file=sys.stderr, flush=True)

        def sernoise_shift(cid):
            cond = conds[cid]
            return lambda x: cond(x, SR, rng_for(SEED, cond.id, "quality"), Context(utt_id="quality")).audio

        def am_shift(semitones, method="signalsmith_stretch"):
            transform = am.PitchShift(min_semitones=semitones, max_semitones=semitones, method=method, p=1.0)
            return lambda x: transform(samples=x, sample_rate=SR)

        shifters = {}
        for direction, factor, st in (("up", 1.25, st_up), ("down", 0.75, st_down)):
            shifters[f"pitch-{direction}: Rubber Band R3 + formant (config.yaml)"] = (factor, sernoise_shift(
                f"pitch-{direction}"))
            shifters[f"pitch-{direction}: Rubber Band R2 + formant (demo)"] = (factor, sernoise_shift(
                f"pitch-{direction} R2"))
            shifters[f"pitch-{direction}: audiomentations PitchShift (signalsmith)"] = (factor, am_shift(st))
            shifters[f"pitch-{direction}: audiomentations PitchShift (librosa PV)"] = (
                factor, am_shift(st, "librosa_phase_vocoder"))
        reference = {1.25: "pitch-up: Rubber Band R3 + formant (config.yaml)",
                     0.75: "pitch-down: Rubber Band R3 + formant (config.yaml)"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quality_rows = pitch_quality(clips[: args.pitch_quality], shifters, reference)

    up, down = f"PitchShift {st_up:+.2f} st", f"PitchShift {st_down:+.2f} st"
    # (sernoise case, audiomentations case or None, note)
    rows = [
        ("env-nat-start", None, "onset only: no equivalent"),
        ("env-hum-start", None, "onset only: no equivalent"),
        ("env-int-start", None, "onset only: no equivalent"),
        ("env-nat-cont-snr10", "AddBackgroundNoise nat 10 dB", "AM loads+decodes a file per call"),
        ("env-hum-cont-snr10", "AddBackgroundNoise hum 10 dB", "AM loads+decodes a file per call"),
        ("env-int-cont-snr10", "AddBackgroundNoise int 10 dB", "AM loads+decodes a file per call"),
        ("laugh", None, "insert at 5 dB: no equivalent"),
        ("cry", None, "insert at 5 dB: no equivalent"),
        ("fade-in", "GainTransition 0..-0.7 dB", "whole-utterance ramp"),
        ("fade-out", "GainTransition 0..-0.7 dB", "whole-utterance ramp"),
        ("speed-seg", None, "segment only: no equivalent"),
        ("speed-utt-1.25", "TimeStretch 1.25", "sox tempo vs signalsmith"),
        ("speed-utt-1.25", "TimeStretch 1.25 librosa_pv", "sox tempo vs librosa PV"),
        ("speed-utt-1.25 batched", "TimeStretch 1.25", "one sox process, a tempo chain per clip"),
        ("speed-utt-0.75", "TimeStretch 0.75", "sox tempo vs signalsmith"),
        ("speed-utt-0.75 batched", "TimeStretch 0.75", "one sox process, a tempo chain per clip"),
        ("pitch-up", up, "rubberband R3 + formant vs signalsmith"),
        ("pitch-up", up + " librosa_pv", "rubberband R3 + formant vs librosa PV"),
        ("pitch-up batched", up, "one rubberband process"),
        ("pitch-down", down, "rubberband R3 + formant vs signalsmith"),
        ("pitch-up R2", up, "rubberband R2 + formant (the demo's) vs signalsmith"),
        ("pitch-up R2 batched", up, "one rubberband process"),
        ("pitch-down R2", down, "rubberband R2 + formant (the demo's) vs signalsmith"),
        ("reverb", "ApplyImpulseResponse (6 RIRs)", "sox reverb vs RIR convolution"),
        ("reverb batched", "ApplyImpulseResponse (6 RIRs)", "one sox process"),
        ("drop-word", None, "synthetic alignment"),
        ("drop-letters", None, "synthetic alignment"),
        ("filler-short", None, "synthetic alignment"),
        ("filler-long", None, "synthetic alignment"),
    ]

    def fmt_rt(t: Timing) -> str:
        return f"{t.xrt:,.0f}" if t.xrt >= 100 else f"{t.xrt:.1f}"

    header = ["condition", "sernoise xRT", "skip", "audiomentations equivalent", "xRT", "ratio", "note"]
    table = []
    for sid, aid, note in rows:
        s = sern[sid]
        if aid is None:
            table.append([sid, fmt_rt(s), str(s.skipped), "-", "-", "-", note])
        else:
            a = amt[aid]
            table.append([sid, fmt_rt(s), str(s.skipped), aid, fmt_rt(a), f"{a.seconds / s.seconds:.2f}", note])
    widths = [max(len(header[i]), *(len(r[i]) for r in table)) for i in range(len(header))]
    right = {1, 2, 4, 5}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(f"augmentation throughput, 1 core{f' (pinned to CPU {cpu})' if cpu is not None else ''}, "
          f"{len(clips)} RAVDESS clips ({audio_s:.1f} s audio, {len({c.speaker for c in clips})} actors), "
          f"best of {args.repeat} pass(es)")
    print(f"audiomentations {am.__version__}, numpy {np.__version__}; transform call only; "
          f"xRT = audio s / wall s; ratio = AM time / sernoise time (>1: sernoise faster)")
    print(f"noise: test pool of a bank built from {noise_root} ({len(pool.frame)} files); "
          f"skip = SkipUtterance count per pass (still timed)")
    print(f"speech level: the utterance's P.56 active level, stored once per utterance by the prepare stage "
          f"and read by every additive condition (the env, laugh and cry rows), not in their time: "
          f"{level_timing.seconds / len(clips) * 1000:.2f} ms a clip, {fmt_rt(level_timing)} x RT")
    print()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in table:
        print(line(r))
    print()
    print("tool start cost (10 ms of audio, median of 20): "
          + "; ".join(f"{k} {v * 1000:.1f} ms" for k, v in start_cost.items()))
    print("the tools alone, one process over all clips joined (the ceiling of the conditions that run them), x RT: "
          + "; ".join(f"{k} {fmt_rt(t)}" for k, t in tools_alone.items()))
    if quality_rows:
        print()
        print(f"pitch-shift quality, {min(args.pitch_quality, len(clips))} clips (means over clips): F0 error = "
              "median |cents| of the output's pYIN F0 against factor x the input's, frames voiced in both; "
              "envelope = RMS difference of MFCC 1-12 (dB-scaled mel) to the input, voiced frames "
              "(small: formants kept); LSD = log-spectral distance (dB) to the R3 output of the same factor")
        width = max(len(r[0]) for r in quality_rows)
        print(f"{'shifter'.ljust(width)}  {'F0 error, cents':>15}  {'envelope, dB':>12}  {'LSD to R3, dB':>13}")
        for name, _, cents, envelope, lsd in quality_rows:
            print(f"{name.ljust(width)}  {cents:>15.1f}  {envelope:>12.2f}  {lsd:>13.2f}")
    print(f"total wall time: {time.perf_counter() - wall0:.1f} s")


if __name__ == "__main__":
    main()
