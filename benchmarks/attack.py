"""Black-box noise attack speed: queries per second and where the time goes, batched against unbatched.

Usage (from the repository root)::

    .venv/bin/python benchmarks/attack.py [--data ../shared/data] [--results results] [--utterances 10]
                                          [--runs 2] [--threads 1]

Model: the demo's clean-trained T-DNN of fold 1, activation
(``<results>/ravdess/models/tdnn/clean/fold1/rep1/activation``) when a demo run left one there;
otherwise a T-DNN with the demo grid point (tests/configs/shared_data.yaml ``tdnn.grid``) and
RANDOM weights (seed 0), normalised with the benchmark utterances' own statistics: the speed of a
query does not depend on the weights, but the number of queries does (an untrained model rarely
flips, so most attacks use all 21 queries: the slow case).  The output says which was used.

Data: ``--utterances`` RAVDESS files of actors 01-02 (shared data, 16 kHz), the shared noise bank
(built into a temporary folder from tests/configs/shared_data.yaml, test pool), every default
attack category (config.yaml ``attack.categories``: nat, hum, int, fade, reverb, laugh, cry),
knowledge none, budgets 5/15/25/inf (the inf run, the others derived), ``--runs`` runs each.

Timed, in one process, the same job twice: batched (one model call per phase list / refinement
sweep, config ``attack.batch: true``) and unbatched (one call per query).  Reported per mode:
counted queries, model calls, samples computed (batched: answers past a flip are computed but not
counted), queries per second (counted queries / wall time of the job, reference predictions and
noise instances included), and the share of the wall time spent in the model forward pass, in
the features (log-Mel filterbanks) and elsewhere (noise instances, SoX reverb, perturbation
scaling, bookkeeping).  The outcomes of both modes are compared row by row.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import yaml
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from sernoise.attack.models import TdnnPredictor  # noqa: E402
from sernoise.attack.runner import AttackJob, run_job, usable_categories  # noqa: E402
from sernoise.conditions import build_condition  # noqa: E402
from sernoise.conditions.pool import NoisePool  # noqa: E402
from sernoise.features import log_mel_fbank  # noqa: E402
from sernoise.models.tdnn import TDNN, TDNNConfig  # noqa: E402
from sernoise.noise.bank import assign_splits, build_bank, scan_folder  # noqa: E402
from sernoise.training.data import norm_stats, save_norm  # noqa: E402
from sernoise.training.predict import save_state  # noqa: E402

DEMO_MODEL = "ravdess/models/tdnn/clean/fold1/rep1/activation"


def random_model(folder: Path, utterances) -> None:
    overlay = yaml.safe_load((REPO / "tests/configs/shared_data.yaml").read_text())
    point = {k: v[0] for k, v in overlay["tdnn"]["grid"].items()}
    torch.manual_seed(0)
    model = TDNN(TDNNConfig(**point))
    save_state(model, folder / "model.pt")
    (folder / "hparams.yaml").write_text(yaml.safe_dump({"hparams": model.config.as_dict()}))
    mean, std = norm_stats(log_mel_fbank(x).astype(np.float16) for _, x, _, _ in utterances)
    save_norm(folder / "norm.npz", mean, std)


def noise_pool(data: Path, folder: Path, seed: int) -> NoisePool:
    overlay = yaml.safe_load((REPO / "tests/configs/shared_data.yaml").read_text())
    spec = overlay["noise_banks"]["shared"]
    root = data / "noise"
    frame = assign_splits(scan_folder(root, spec["entries"], spec["class_to_category"]), test_fraction=0.3, seed=seed)
    build_bank(frame, root, folder / "bank.csv", folder / "audio.h5", rejects_out=folder / "rejects.csv", progress=False)
    return NoisePool([("shared", folder / "bank.csv", folder / "audio.h5")], "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # NumPy's BLAS (filterbanks) as well
    config = yaml.safe_load((REPO / "config.yaml").read_text())

    files = sorted((args.data / "ravdess" / "Audio_Speech_Actors_01-24").glob("Actor_0[12]/*.wav"))
    chosen = [files[i] for i in np.random.default_rng(0).permutation(len(files))[: args.utterances]]
    utterances = []
    for path in chosen:
        x, sr = sf.read(path, dtype="float32")
        assert sr == 16000, f"{path}: expected 16 kHz"
        utterances.append((path.stem, x if x.ndim == 1 else x.mean(axis=1), path.parent.name, 1))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = args.results / DEMO_MODEL
        if all((demo / f).is_file() for f in ("model.pt", "hparams.yaml", "norm.npz")):
            folder, which = demo, f"trained demo model ({demo})"
        else:
            folder, which = tmp / "model", "random weights (no demo model found under --results)"
            folder.mkdir()
            random_model(folder, utterances)
        tick = time.perf_counter()
        pool = noise_pool(args.data, tmp / "bank", config["seed"])
        bank_seconds = time.perf_counter() - tick
        reference = config.get("snr", {}).get("reference")  # snr.reference, as the attack rules pass it
        categories = {c: [build_condition(cid, config["conditions"][cid], snr_reference=reference) for cid in members]
                      for c, members in config["attack"]["categories"].items()}
        categories, notes = usable_categories(categories, pool)

        rows, frames = [], {}
        for batched in (True, False):
            predictor = TdnnPredictor.from_folder(folder)
            predictor([utterances[0][1]])  # warm-up, untimed: imports librosa, first forward pass
            predictor.calls, predictor.samples, predictor.seconds = 0, 0, {"features": 0.0, "model": 0.0}
            job = AttackJob(noise_set="all", knowledge="none", categories=categories, budgets=[5, 15, 25, "inf"],
                            runs=args.runs, start_snr=30.0, seed=config["seed"], batched=batched)
            tick = time.perf_counter()
            frame = run_job(job, predictor, utterances, noise=pool)
            wall = time.perf_counter() - tick
            direct = frame[~frame["derived"].astype(bool)]
            queries = int(direct["queries"].sum())
            model_s, feature_s = predictor.seconds["model"], predictor.seconds["features"]
            rows.append({
                "mode": "batched" if batched else "unbatched",
                "attacks": len(direct),
                "queries": queries,
                "model calls": predictor.calls,
                "samples": predictor.samples,
                "wall s": round(wall, 2),
                "queries/s": round(queries / wall, 1),
                "model %": round(100 * model_s / wall, 1),
                "features %": round(100 * feature_s / wall, 1),
                "other %": round(100 * (wall - model_s - feature_s) / wall, 1),
                "success (inf)": round(float(frame.loc[frame["budget"] == "inf", "success"].mean()), 3),
            })
            frames[batched] = frame

    same = [c for c in frames[True].columns if c not in ("model_calls", "computed")]
    identical = frames[True][same].equals(frames[False][same])
    print(f"# attack benchmark: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    print(f"# model: {which}")
    print(f"# {len(utterances)} utterances x {args.runs} runs, categories {list(categories)}; "
          f"noise bank built (untimed) in {bank_seconds:.1f} s" + (f"; {'; '.join(notes)}" if notes else ""))
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"# batched and unbatched outcomes and query counts identical: {identical}")


if __name__ == "__main__":
    main()
