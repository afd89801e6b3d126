"""The augmentation stage as its jobs run it: every condition of the demo, both noise pools, on the
demo's own inputs, with writing and the quality measures, in x real time per core.

Usage (from the repository root, after ``make demo`` has built ``results/``)::

    .venv/bin/python benchmarks/augment_stage.py [--results results] [--limit 60] [--quality all]

What runs: ``sernoise.augment.augment_shard`` (the function rule ``augment_shard`` calls) for
each condition of ``config.yaml`` + ``tests/configs/shared_data.yaml`` (the demo's overlay: Rubber
Band's R2 engine for the pitch shifts) and each pool, on ``--limit`` utterances of the demo's clean
shard 000 (spread evenly over it), with the demo's noise bank, filler bank and forced alignments,
writing a compressed shard and its params into a temporary folder.  The utterances are read
from a clean shard written as the prepare stage writes it now, with each utterance's P.56 level
stored (``--no-stored-levels``: without, so every additive condition computes it, as before).  Quality settings, one pass
each (``--quality``):

* ``none``: the conditions and writing alone;
* ``stoi``: plus STOI on the test pool (the issue's "including writing and STOI");
* ``fwsnrseg``: plus fwSNRseg on the test pool;
* ``demo``: the demo's ``augment.quality`` (STOI, fwSNRseg and DNSMOS on 2 % of the utterances,
  test pool only), i.e. what the demo's jobs do.  DNSMOS costs ~1.2 s per scored utterance
  (speechmos repeats a RAVDESS clip to 9.01 s windows at a 1 s hop: ~5 windows), so this pass
  depends on how many of the chosen utterances fall into the 2 % hash sample; the count is printed
  (a 300-utterance job of the demo scores ~6).

Figures: CPU seconds of this process and of its tool children (SoX, Rubber Band) per condition
(both pools), x real time = seconds of input audio / CPU seconds, and the peak resident memory of
the process.  BLAS/OpenMP pools and ONNX Runtime run one thread, as in a job (threads: 1).  Job
start-up (imports, ~0.45 s a job; ``benchmarks/startup.py``) is not included: it is paid once per
job of 300 utterances, not per utterance.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import REPO  # noqa: E402

from sernoise.audio_store import AudioStore  # noqa: E402
from sernoise.augment import augment_shard  # noqa: E402
from sernoise.conditions import build_condition  # noqa: E402
from sernoise.conditions.snr import forget_active_levels  # noqa: E402
from sernoise.config import load_config  # noqa: E402
from sernoise.corpora.manifest import read_manifest  # noqa: E402

QUALITY_MODES = ("none", "stoi", "fwsnrseg", "demo")


def demo_config() -> dict:
    """config.yaml with the demo's overlay, validated as the workflow does (the conditions and
    quality keys are what is used)."""
    return load_config([REPO / "config.yaml", REPO / "tests" / "configs" / "shared_data.yaml"],
                       REPO / "schemas" / "config.schema.yaml")


def quality_of(mode: str, demo: dict) -> dict:
    if mode == "none":
        return {"stoi": False, "pesq": False, "dnsmos": False, "fwsnrseg": False, "pools": ["test"]}
    if mode == "stoi":
        return {"stoi": True, "pesq": False, "dnsmos": False, "fwsnrseg": False, "pools": ["test"]}
    if mode == "fwsnrseg":
        return {"stoi": True, "pesq": False, "dnsmos": False, "fwsnrseg": True, "pools": ["test"]}
    return dict(demo)


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the SoX and Rubber Band processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"), help="the demo's results folder")
    parser.add_argument("--corpus", default="ravdess")
    parser.add_argument("--limit", type=int, default=60, help="utterances of shard 000 (default 60)")
    parser.add_argument("--quality", default="all", choices=("all", *QUALITY_MODES))
    parser.add_argument("--conditions", nargs="*", help="only these condition ids (default: all of the demo)")
    parser.add_argument("--no-stored-levels", action="store_true",
                        help="read the chosen utterances from a clean shard without the prepare stage's stored "
                             "P.56 levels (every additive condition then computes them, as before they were stored)")
    args = parser.parse_args()
    if args.limit < 1:
        parser.error("--limit must be >= 1")

    config = demo_config()
    root = args.results / args.corpus
    shard = root / "audio" / "shard-000.h5"
    manifest_path = root / "manifest.csv"
    banks = [(args.results / "noise" / bank / "bank.csv", args.results / "noise" / bank / "audio.h5")
             for bank in config["noise"]["banks"]]
    fillers_path = root / "fillers.h5"
    needed = [shard, manifest_path, fillers_path, *(p for pair in banks for p in pair)]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(f"missing demo inputs {missing}: run `make demo` (or build them) first, or pass --results")

    demo_store = AudioStore([str(shard)])
    manifest = read_manifest(str(manifest_path))
    rows = manifest[manifest["utt_id"].isin(set(demo_store.utt_ids))].reset_index(drop=True)
    step = max(1, len(rows) // args.limit)
    rows = rows.iloc[::step].head(args.limit).reset_index(drop=True)
    audio_s = float(sum(demo_store.read(u).size for u in rows["utt_id"]) / 16000)
    # The chosen utterances in a clean shard as the prepare stage writes it now (with each
    # utterance's stored P.56 level, unless --no-stored-levels), whatever version built results/;
    # the same samples (the shard's int16 values and scales round-trip exactly).  Untimed.
    clean_dir = tempfile.TemporaryDirectory(prefix="sernoise_bench_clean_")
    from sernoise.audio_store import ShardWriter

    with ShardWriter(Path(clean_dir.name) / "clean.h5", compression=None,
                     speech_levels=not args.no_stored_levels) as writer:
        for u in rows["utt_id"]:
            writer.add(str(u), demo_store.read(str(u)))
    store = AudioStore([str(Path(clean_dir.name) / "clean.h5")])

    from sernoise.conditions.filler import FillerBank
    from sernoise.conditions.pool import NoisePool

    pools = {pool: NoisePool([(str(b), str(a)) for b, a in banks], pool) for pool in config["augment"]["pools"]}
    fillers = FillerBank.load(str(fillers_path))
    ids = args.conditions or list(config["conditions"])
    unknown = [c for c in ids if c not in config["conditions"]]
    if unknown:
        sys.exit(f"unknown condition(s) {unknown}")
    conditions = {cid: build_condition(cid, config["conditions"][cid], snr_reference=config["snr"]["reference"])
                  for cid in ids}
    modes = QUALITY_MODES if args.quality == "all" else (args.quality,)

    # untimed warm-up: imports, FFT plans, the DNSMOS sessions, numba caches
    with tempfile.TemporaryDirectory(prefix="sernoise_bench_stage_") as tmp:
        warm = rows.head(2)
        for cid in ("env-nat-cont-snr10", "pitch-up", "reverb"):
            if cid in conditions:
                augment_shard(conditions[cid], warm, store, pool="test", global_seed=config["seed"],
                              noise=pools["test"], fillers=fillers, out_shard=f"{tmp}/w.h5",
                              out_params=f"{tmp}/w.csv", out_status=f"{tmp}/w.json",
                              quality=quality_of("demo", config["augment"]["quality"]), manifest=manifest,
                              progress=False)

    prep = config["prepare"]
    table: dict[str, dict[str, float]] = {cid: {} for cid in ids}
    totals = {}
    for mode in modes:
        quality = quality_of(mode, config["augment"]["quality"])
        total = 0.0
        with tempfile.TemporaryDirectory(prefix="sernoise_bench_stage_") as tmp:
            for cid, condition in conditions.items():
                print(f"{mode}: {cid} ...", file=sys.stderr, flush=True)
                tick = cpu_seconds()
                for pool in pools:
                    out = Path(tmp) / cid / pool
                    out.mkdir(parents=True)
                    # each job of the workflow is a fresh process: no P.56 level it remembered
                    # (sernoise.conditions.snr keeps the last 64) survives into the next
                    forget_active_levels()
                    augment_shard(condition, rows, store, pool=pool, global_seed=config["seed"],
                                  noise=pools[pool], fillers=fillers, out_shard=str(out / "shard-000.h5"),
                                  out_params=str(out / "params-000.csv"), out_status=str(out / "status-000.json"),
                                  quality=quality, manifest=manifest, compression=prep["compression"],
                                  compression_level=prep["compression_level"], progress=False)
                spent = cpu_seconds() - tick
                table[cid][mode] = spent
                total += spent
        totals[mode] = total

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pooled = 2 * audio_s  # every utterance once per pool
    print(f"augmentation stage, one core: {len(rows)} utterances of {shard} ({audio_s:.1f} s of audio; P.56 levels "
          f"{'computed by each condition' if args.no_stored_levels else 'stored in the clean shard'}), "
          f"{len(conditions)} conditions x {len(pools)} pools, compression {prep['compression']} "
          f"level {prep['compression_level']}; CPU s of this process and its tools; x RT = input audio s / CPU s")
    from sernoise.quality import in_dnsmos_sample

    fraction = float(config["augment"]["quality"].get("dnsmos_fraction", 1.0))
    sampled = sum(in_dnsmos_sample(u, fraction) for u in rows["utt_id"])
    print("quality: none = conditions + writing; stoi = + STOI (test pool); fwsnrseg = + fwSNRseg (test pool); "
          f"demo = the demo's augment.quality (STOI, fwSNRseg, DNSMOS on {fraction:.0%}, test pool: here "
          f"{sampled} of the {len(rows)} utterances)")
    print()
    header = "condition".ljust(22) + "".join(f"{m + ' s':>12}{m + ' xRT':>14}" for m in modes)
    print(header)
    print("-" * len(header))
    for cid in ids:
        print(cid.ljust(22) + "".join(f"{table[cid][m]:>12.2f}{pooled / table[cid][m]:>14,.0f}" for m in modes))
    print("-" * len(header))
    print("whole set".ljust(22) + "".join(f"{totals[m]:>12.2f}{pooled * len(ids) / totals[m]:>14,.0f}"
                                          for m in modes))
    print(f"\npeak resident memory of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
