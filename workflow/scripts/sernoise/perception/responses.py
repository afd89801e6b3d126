"""Responses: ingest, validation and quality control (paper §6.1).

Responses CSV, one row per (worker, pair): ``worker, pair_id, same, activation, valence,
seconds``; ``same`` is ``same`` or ``different`` (case-insensitive), ``activation`` and ``valence``
are integers 1-5 when different and empty when same, ``seconds`` is the time spent (>= 0).
Other columns are ignored.  Every problem is reported with its CSV line (the header is line 1),
all at once (up to 50).

Quality control: a worker is *excluded*, and every one of their responses discarded, when

* ``gold_identical``: they answered ``different`` on a gold identical pair (attention check 1);
* ``gold_noisy``: they answered ``same`` on a gold noisy pair (attention check 3);
* ``too_fast``: any response took less than ``min_seconds_factor`` x (duration of the original
  + duration of the modulated sample) (attention check 2: "their responses are discarded").

Failure rate = excluded workers / all workers (and discarded responses / all responses).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_csv_checked
from .select import PerceptionError

RESPONSE_COLUMNS = ["worker", "pair_id", "same", "activation", "valence", "seconds"]
QC_WORKER_COLUMNS = ["worker", "n_responses", "failed_gold_identical", "failed_gold_noisy", "too_fast",
                     "excluded", "reasons"]
MAX_PROBLEMS = 50


class ResponsesError(PerceptionError):
    """The responses file is malformed; the message names the file and each bad line."""


def _rating(text: str):
    """'' -> None; '1'..'5' (or 3.0) -> int; anything else -> ValueError."""
    if text == "":
        return None
    value = float(text)
    if not math.isfinite(value) or value != int(value) or not 1 <= value <= 5:
        raise ValueError(text)
    return int(value)


def read_responses(path, key: pd.DataFrame) -> pd.DataFrame:
    """Read and validate; returns worker, pair_id, same (bool), activation, valence (float, NaN when same), seconds."""
    path = Path(path)
    if not path.is_file():
        raise ResponsesError(f"{path}: responses file not found")
    frame = read_csv_checked(path, RESPONSE_COLUMNS, error=ResponsesError, dtype=str, keep_default_na=False)
    known = set(key["pair_id"].astype(str))
    problems, rows, seen = [], [], {}
    for i, rec in enumerate(frame[RESPONSE_COLUMNS].itertuples(index=False)):
        line = i + 2
        where = f"{path}: line {line} (worker {rec.worker.strip()!r}, pair {rec.pair_id.strip()!r})"
        bad = []
        worker, pair_id, same = rec.worker.strip(), rec.pair_id.strip(), rec.same.strip().lower()
        if not worker:
            bad.append("empty worker")
        if pair_id not in known:
            bad.append(f"unknown pair_id {pair_id!r} (not in key.csv)")
        if same not in ("same", "different"):
            bad.append(f"same must be 'same' or 'different', got {rec.same!r}")
        ratings = {}
        for dim in ("activation", "valence"):
            text = getattr(rec, dim).strip()
            try:
                ratings[dim] = _rating(text)
            except ValueError:
                bad.append(f"{dim} must be an integer 1-5, got {text!r}")
                continue
            if same == "different" and ratings[dim] is None:
                bad.append(f"{dim} is empty but the answer is 'different' (rate it 1-5)")
            if same == "same" and ratings[dim] is not None:
                bad.append(f"{dim} is {text!r} but the answer is 'same' (leave it empty)")
        try:
            seconds = float(rec.seconds)
            if not math.isfinite(seconds) or seconds < 0:
                raise ValueError
        except ValueError:
            bad.append(f"seconds must be a number >= 0, got {rec.seconds!r}")
            seconds = math.nan
        if (worker, pair_id) in seen:
            bad.append(f"duplicate response (first on line {seen[(worker, pair_id)]})")
        seen.setdefault((worker, pair_id), line)
        if bad:
            problems.append(f"{where}: " + "; ".join(bad))
            continue
        rows.append({"worker": worker, "pair_id": pair_id, "same": same == "same",
                     "activation": ratings["activation"], "valence": ratings["valence"], "seconds": seconds})
    if problems:
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise ResponsesError(f"invalid responses ({len(problems)} bad line(s)):\n  "
                             + "\n  ".join(problems[:MAX_PROBLEMS]) + more)
    out = pd.DataFrame(rows, columns=RESPONSE_COLUMNS)
    for dim in ("activation", "valence"):
        out[dim] = pd.to_numeric(out[dim], errors="coerce").astype(float)
    out["seconds"] = out["seconds"].astype(float)
    return out


def quality_control(responses: pd.DataFrame, key: pd.DataFrame, *, min_seconds_factor: float = 1.0,
                    workers_per_pair: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(valid responses joined with the key, per-worker QC table, summary dict)."""
    joined = responses.merge(key, on="pair_id", how="left", validate="many_to_one")
    joined["min_seconds"] = min_seconds_factor * (joined["duration_original"] + joined["duration_modulated"])
    joined["fail_identical"] = (joined["kind"] == "gold_identical") & ~joined["same"]
    joined["fail_noisy"] = (joined["kind"] == "gold_noisy") & joined["same"]
    joined["too_fast"] = joined["seconds"] < joined["min_seconds"]
    per = joined.groupby("worker", sort=True).agg(
        n_responses=("pair_id", "size"), failed_gold_identical=("fail_identical", "sum"),
        failed_gold_noisy=("fail_noisy", "sum"), too_fast=("too_fast", "sum")).reset_index()
    reasons = []
    for r in per.itertuples(index=False):
        reasons.append(";".join(name for name, n in (("gold_identical", r.failed_gold_identical),
                                                     ("gold_noisy", r.failed_gold_noisy),
                                                     ("too_fast", r.too_fast)) if n))
    per["reasons"] = reasons
    per["excluded"] = per["reasons"] != ""
    per = per[QC_WORKER_COLUMNS]
    excluded = set(per.loc[per["excluded"], "worker"])
    valid = joined[~joined["worker"].isin(excluded)].drop(
        columns=["fail_identical", "fail_noisy", "too_fast", "min_seconds"]).reset_index(drop=True)
    n_workers, n_resp = len(per), len(joined)
    n_excl_resp = int(joined["worker"].isin(excluded).sum())
    tests = key.loc[key["kind"] == "test", "pair_id"]
    per_pair = valid[valid["kind"] == "test"].groupby("pair_id").size().reindex(tests, fill_value=0)
    summary = {
        "n_workers": n_workers,
        "n_excluded_workers": len(excluded),
        "worker_failure_rate": len(excluded) / n_workers if n_workers else math.nan,
        "n_responses": n_resp,
        "n_excluded_responses": n_excl_resp,
        "response_failure_rate": n_excl_resp / n_resp if n_resp else math.nan,
        "excluded_by_reason": {name: int(per["reasons"].str.contains(name).sum())
                               for name in ("gold_identical", "gold_noisy", "too_fast")},
        "min_seconds_factor": min_seconds_factor,
        "n_test_pairs": int(len(tests)),
        "n_test_pairs_without_valid_response": int((per_pair == 0).sum()),
        "workers_per_pair": workers_per_pair,
        "n_test_pairs_below_workers_per_pair": int((per_pair < workers_per_pair).sum()) if workers_per_pair else None,
        "mean_valid_judgements_per_test_pair": float(per_pair.mean()) if len(per_pair) else math.nan,
    }
    return valid, per, summary


def write_qc(per_worker: pd.DataFrame, summary: dict, csv_path, json_path) -> None:
    per_worker.to_csv(csv_path, index=False)
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    Path(json_path).write_text(json.dumps(clean, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")
