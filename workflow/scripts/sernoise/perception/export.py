"""Crowdsourcing export (paper §6.1): pairs of (original, modulated) audio, gold pairs, answer key.

Layout of the export folder::

    audio/<hash>.wav   16-bit PCM, 16 kHz mono; the name is a hash of (seed, role, ids), so it
                       reveals neither the utterance nor the condition nor the pair kind
    tasks.csv          what the platform needs: pair_id, batch, position, original_audio,
                       modulated_audio, kind (test | gold_identical | gold_noisy)
    key.csv            the answer key, never shown to workers: pair_id, kind, batch, utt_id,
                       condition, family, original_activation, original_valence, original_source,
                       duration_original, duration_modulated, gain_original, gain_modulated
    README.txt         for the study operator

Test pairs (one per selected utterance and modulation) are shuffled and dealt into batches of
``batch_size``; every batch (one worker's HIT) also gets ``gold_identical`` pairs (the same clean
recording twice, under two different file names) and ``gold_noisy`` pairs (a clean recording and
the same recording buried in white noise at ``gold_noisy_snr_db`` dB, paper: "performance
degradation > 30 dB ... incomprehensible"), shuffled in among the test pairs.  Gold utterances are
drawn from the corpus outside the study sample (from the whole corpus if that is empty).

Modulated audio is read from the augmented test datasets (never recomputed); originals and gold
recordings from the prepared corpus audio.  A file whose peak would clip in 16-bit PCM is scaled
down to a peak of 0.99; the gain is recorded in ``key.csv`` (1.0 otherwise).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..conditions.snr import DEFAULT_REFERENCE, speech_power
from ..io import read_csv_checked
from ..seeds import rng_for
from .select import PerceptionError, original_labels

log = logging.getLogger("sernoise.perception")

SAMPLE_RATE = 16000
KINDS = ("test", "gold_identical", "gold_noisy")
TASK_COLUMNS = ["pair_id", "batch", "position", "original_audio", "modulated_audio", "kind"]
KEY_COLUMNS = [
    "pair_id", "kind", "batch", "utt_id", "condition", "family", "original_activation", "original_valence",
    "original_source", "duration_original", "duration_modulated", "gain_original", "gain_modulated",
]
PEAK = 0.99


def hashed(seed: int, *parts: object, n: int = 16) -> str:
    text = "\x1f".join([str(int(seed))] + [str(p) for p in parts])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def mix_at_snr(x: np.ndarray, snr_db: float, rng: np.random.Generator, *, reference: str = DEFAULT_REFERENCE,
               utt_id: str = "") -> np.ndarray:
    """x plus white Gaussian noise over the whole utterance with 10*log10(P_x / P_noise) = snr_db,
    P_x the speech level under ``reference`` (config ``snr.reference``; :func:`speech_power`)."""
    p_x = speech_power(x, None, reference, utt_id=utt_id)
    noise = rng.standard_normal(x.size)
    noise *= math.sqrt(p_x / 10 ** (snr_db / 10) / float(np.mean(noise**2)))
    return (x + noise).astype(np.float32)


def write_wav(path: Path, x: np.ndarray) -> float:
    """Write 16-bit PCM; scale to PEAK when it would clip. Returns the gain applied."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    gain = PEAK / peak if peak > PEAK else 1.0
    sf.write(path, (x * gain).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return gain


def plan_pairs(sample: pd.DataFrame, modulations: pd.DataFrame, manifest: pd.DataFrame, *, seed: int,
               batch_size: int = 20, gold_identical: int = 1, gold_noisy: int = 1) -> pd.DataFrame:
    """Every pair (test and gold) with its batch, position and hashed audio names; no audio yet."""
    families = modulations.set_index(["utt_id", "condition"])["family"].to_dict() if len(modulations) else {}
    tests = [
        {"kind": "test", "utt_id": u, "condition": c, "family": families[(u, c)],
         "pair_id": "P" + hashed(seed, "pair", u, c, n=12),
         "original_audio": hashed(seed, "audio", "original", u) + ".wav",
         "modulated_audio": hashed(seed, "audio", "modulated", u, c) + ".wav"}
        for u, c in zip(modulations["utt_id"], modulations["condition"])
    ]
    order = rng_for(seed, "perception", "export", "order").permutation(len(tests))
    tests = [tests[i] for i in order]
    n_batches = max(1, math.ceil(len(tests) / batch_size))
    n_gold = n_batches * (gold_identical + gold_noisy)
    pool = sorted(set(manifest["utt_id"].astype(str)) - set(sample["utt_id"].astype(str)))
    if not pool:
        pool = sorted(manifest["utt_id"].astype(str))
    gold_rng = rng_for(seed, "perception", "export", "gold")
    gold_utts = [pool[i] for i in gold_rng.choice(len(pool), size=n_gold, replace=n_gold > len(pool))] if n_gold else []
    rows, g = [], 0
    for b in range(n_batches):
        batch = [dict(t, batch=b + 1) for t in tests[b * batch_size:(b + 1) * batch_size]]
        for kind, count in (("gold_identical", gold_identical), ("gold_noisy", gold_noisy)):
            for k in range(count):
                u = gold_utts[g]
                g += 1
                pid = "P" + hashed(seed, "pair", kind, b, k, n=12)
                batch.append({"kind": kind, "utt_id": u, "condition": "", "family": "", "pair_id": pid, "batch": b + 1,
                              "original_audio": hashed(seed, "audio", kind, "a", pid) + ".wav",
                              "modulated_audio": hashed(seed, "audio", kind, "b", pid) + ".wav"})
        shuffle = rng_for(seed, "perception", "export", "batch", b).permutation(len(batch))
        for position, i in enumerate(shuffle, start=1):
            rows.append(dict(batch[i], position=position))
    plan = pd.DataFrame(rows, columns=["pair_id", "batch", "position", "original_audio", "modulated_audio", "kind",
                                       "utt_id", "condition", "family"])
    if plan["pair_id"].duplicated().any() or pd.concat([plan["original_audio"], plan["modulated_audio"]]).duplicated().sum() \
            != plan["original_audio"].duplicated().sum():
        raise PerceptionError("hash collision in pair ids or audio names; change the seed")
    return plan


def export_pairs(plan: pd.DataFrame, manifest: pd.DataFrame, corpus_store, augmented_stores: dict, out_dir, *,
                 seed: int, gold_noisy_snr_db: float = -30.0,
                 snr_reference: str = DEFAULT_REFERENCE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write audio/, tasks.csv and key.csv (README.txt: :func:`write_readme`). Returns (tasks, key).

    ``corpus_store`` reads clean audio by utt_id; ``augmented_stores[condition]`` the modulated audio.
    """
    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    if audio_dir.exists():
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    written: dict[str, tuple[float, float]] = {}  # file -> (duration, gain)

    def put(name: str, reader):
        if name not in written:
            x = reader()
            written[name] = (x.size / SAMPLE_RATE, write_wav(audio_dir / name, x))
        return written[name]

    key_rows = []
    for row in plan.itertuples(index=False):
        clean = lambda u=row.utt_id: corpus_store.read(u)  # noqa: E731
        if row.kind == "test":
            if row.condition not in augmented_stores:
                raise PerceptionError(f"no augmented dataset for condition {row.condition!r}")
            store = augmented_stores[row.condition]
            modulated = lambda s=store, u=row.utt_id: s.read(u)  # noqa: E731
        elif row.kind == "gold_identical":
            modulated = clean
        else:
            rng = rng_for(seed, "perception", "gold_noisy", row.pair_id)
            modulated = lambda u=row.utt_id, r=rng: mix_at_snr(  # noqa: E731
                corpus_store.read(u), gold_noisy_snr_db, r, reference=snr_reference, utt_id=u)
        d_o, g_o = put(row.original_audio, clean)
        d_m, g_m = put(row.modulated_audio, modulated)
        key_rows.append({"pair_id": row.pair_id, "kind": row.kind, "batch": row.batch, "utt_id": row.utt_id,
                         "condition": row.condition, "family": row.family, "duration_original": round(d_o, 6),
                         "duration_modulated": round(d_m, 6), "gain_original": round(g_o, 6),
                         "gain_modulated": round(g_m, 6)})
    clipped = sum(1 for _, g in written.values() if g != 1.0)
    if clipped:
        log.info("%d of %d file(s) scaled down to avoid clipping (gains in key.csv)", clipped, len(written))
    key = pd.DataFrame(key_rows).merge(original_labels(manifest), on="utt_id", how="left")[KEY_COLUMNS]
    tasks = plan[TASK_COLUMNS].copy()
    tasks.to_csv(out_dir / "tasks.csv", index=False)
    key.to_csv(out_dir / "key.csv", index=False)
    log.info("exported %d pairs (%s) in %d batch(es), %d audio files", len(tasks),
             ", ".join(f"{k} {int((tasks['kind'] == k).sum())}" for k in KINDS), tasks["batch"].nunique(), len(written))
    return tasks, key


README = """\
sernoise perception study: crowdsourcing export
================================================

Corpus: {corpus}. {n_test} test pairs ({n_utts} utterances x their modulations), {n_batches} batches
of up to {batch_size} test pairs, each batch with {gold_identical} gold identical and {gold_noisy} gold
noisy pair(s). Have every batch (HIT) done by {workers_per_pair} different workers.

Files
-----
audio/      16-bit PCM WAV, 16 kHz mono. File names are hashes: they reveal neither the
            utterance, nor the noise condition, nor whether a pair is a gold pair.
tasks.csv   one row per pair: pair_id, batch (one HIT), position (order inside the batch),
            original_audio, modulated_audio (file names in audio/), kind (test, gold_identical,
            gold_noisy). Only pair_id and the two audio columns belong in the HIT template:
            never show batch, position or kind to workers.
key.csv     the answer key. KEEP IT AWAY FROM WORKERS. pair_id, kind, batch, utt_id, condition,
            family, original_activation / original_valence on the 1-5 scale (the corpus rating,
            or for corpora without ratings the bin midpoint low=2, mid=3, high=4; which one is in
            original_source), the durations in seconds of both files, and any gain applied to
            avoid clipping.

Task for workers (paper section 6.1)
------------------------------------
Play the original, then the modulated sample. Do the two express the same emotion, in both
activation (calm vs excited) and valence (negative vs positive)?
  same      -> next pair;
  different -> rate activation and valence of the MODULATED sample on the 1-5 Self Assessment
               Manikin scales.

Responses file to bring back (CSV, one row per worker and pair)
---------------------------------------------------------------
worker      the platform's worker id
pair_id     from tasks.csv
same        same | different
activation  1-5 when different, empty when same
valence     1-5 when different, empty when same
seconds     time the worker spent on the pair
Set perception.responses in the config to this file's path and run the workflow: it validates
the file (errors name the line), applies the quality checks and writes Table 2.

Quality checks (applied automatically at ingestion)
---------------------------------------------------
1. gold_identical pairs play the same recording twice: a worker who answers "different" on
   any of them is excluded and all their responses are discarded.
2. gold_noisy pairs pair a recording with itself buried in white noise at {gold_noisy_snr_db} dB SNR
   (incomprehensible): a worker who answers "same" on any of them is excluded likewise.
3. time spent: a worker who answered ANY pair faster than {min_seconds_factor} x the combined
   length of its two samples is disqualified and all their responses are discarded.
The failure rate (excluded workers / all workers, and discarded responses) is reported in
qc.json and qc_workers.csv next to Table 2.
"""


def write_readme(path, **fields) -> None:
    Path(path).write_text(README.format(**fields), encoding="utf-8")


def read_key(path) -> pd.DataFrame:
    """key.csv with ids as strings ('' for the gold pairs' condition) and numbers as floats."""
    key = read_csv_checked(path, KEY_COLUMNS, error=PerceptionError,
                           dtype={c: str for c in ("pair_id", "kind", "utt_id", "condition", "family",
                                                   "original_source")}, keep_default_na=False,
                           na_values={c: [""] for c in KEY_COLUMNS if c.startswith(("original_a", "original_v",
                                                                                     "duration", "gain"))})
    return key[KEY_COLUMNS]
