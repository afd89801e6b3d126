"""Study sample and modulations (paper §5.3).

Sample: ``n_per_bin`` utterances (paper: 100) from each of the 9 activation x valence bin pairs,
``n_extreme`` of them (paper: 30) from the length extremes and the rest from the middle, half
female and half male.

*Length extremes.*  The paper says "shorter than the first quartile or greater than the fourth
quartile"; the fourth quartile is read as the top quarter, i.e. above the third quartile Q3.
Q1 and Q3 are the corpus-wide quartiles of ``duration`` (``numpy.quantile``, linear
interpolation), computed over every utterance of the manifest, not per bin, so that "short" and
"long" mean the same thing in every bin.  Extreme: ``duration < Q1`` or ``duration > Q3``;
middle: ``Q1 <= duration <= Q3``.

*Gender.*  Within each length part of each bin, the target is split in halves between ``F`` and
``M`` (an odd target gives the extra utterance to a gender chosen by the seed).  When one gender
has too few utterances the other fills the gap (50/50 "as far as possible"); utterances with any
other gender value are used only when both are exhausted.

*Scaling down.*  When a bin, or one of its parts, has fewer utterances than its target, all of
them are taken and a WARNING names the bin, the part and the counts.  Parts never borrow from
each other (a short extreme part is not topped up with middle utterances), so the length design
stays visible in the counts.  Selection never fails for lack of data.

Modulations: each selected utterance gets ``n_environmental`` (paper: 4) distinct random
environmental conditions and ``n_distortion`` (paper: 6) distinct random distortions, drawn from
the configured conditions that are not skipped for the corpus (``status.json``) and that have the
utterance with status ``ok`` (``params.csv``).  When fewer are available, all of them are taken
and the shortfall is logged.

Every draw uses a generator seeded from (global seed, "perception", what is drawn), so the
sample is reproducible and independent of row order.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..augmented_io import read_params
from ..corpora.manifest import BINS
from ..seeds import rng_for

log = logging.getLogger("sernoise.perception")

BIN_PAIRS = [(a, v) for a in BINS for v in BINS]
GENDERS = ("F", "M")
FAMILIES = ("environmental", "distortion")

# Original label on the 1-5 scale when the corpus has no dimensional ratings (RAVDESS): the
# midpoint of the bin on the SAM scale workers use.
BIN_MIDPOINT = {"low": 2.0, "mid": 3.0, "high": 4.0}

# Family and default perception by condition type, used when the condition class cannot be
# imported here (the audio stack is not needed to read a partition); mirrors SPEC §5.
_TYPE_FAMILY = {"env": "environmental"}
_TYPE_PERCEPTION = {
    "env": "retaining",
    "speed_segment": "retaining",
    "fade": "retaining",
    "drop_words": "retaining",
    "drop_letters": "retaining",
    "reverb": "retaining",
    "speed_utterance": "altering",
    "pitch": "altering",
    "filler": "altering",
    "insert": "altering",
}

SAMPLE_COLUMNS = [
    "utt_id", "bin", "activation_bin", "valence_bin", "length", "gender", "speaker", "duration",
    "original_activation", "original_valence", "original_source",
]
MODULATION_COLUMNS = ["utt_id", "condition", "family"]


class PerceptionError(ValueError):
    """Bad input to the perception study; the message names the file, row or config key."""


# -- conditions ---------------------------------------------------------------------------
def condition_table(conditions: dict) -> pd.DataFrame:
    """Config ``conditions:`` -> DataFrame (condition, type, family, perception), config order.

    Family and default perception come from the condition class of the registry; an explicit
    ``perception:`` in the entry wins.
    """
    from ..conditions import condition_class

    rows = []
    for cid, spec in (conditions or {}).items():
        spec = spec or {}
        type_name = spec.get("type", "")
        family, default = _TYPE_FAMILY.get(type_name, "distortion"), _TYPE_PERCEPTION.get(type_name, "retaining")
        try:
            cls = condition_class(type_name)
            family, default = cls.family, cls.default_perception
        except (ImportError, ValueError):
            pass  # class not importable here: the documented table above
        rows.append({"condition": cid, "type": type_name, "family": family,
                     "perception": spec.get("perception") or default})
    return pd.DataFrame(rows, columns=["condition", "type", "family", "perception"])


def read_availability(aug_dirs: dict[str, str | Path]) -> tuple[dict[str, set], dict[str, str]]:
    """Per condition, the utt_ids with status ok in ``params.csv``; and the skip reasons.

    ``aug_dirs`` maps condition -> the folder holding ``params.csv`` and ``status.json``.
    A condition skipped for the corpus has no available utterance.
    """
    available, skipped = {}, {}
    for cid, folder in aug_dirs.items():
        folder = Path(folder)
        status_path = folder / "status.json"
        status = json.loads(status_path.read_text()) if status_path.is_file() else {"skipped": False}
        if status.get("skipped"):
            skipped[cid] = str(status.get("reason") or "skipped")
            available[cid] = set()
            continue
        params_path = folder / "params.csv"
        if not params_path.is_file():
            raise PerceptionError(f"{params_path}: missing (condition {cid} is not skipped)")
        params = read_params(params_path, error=PerceptionError)
        available[cid] = set(params.loc[params["status"].str.strip().str.lower() == "ok", "utt_id"])
    return available, skipped


# -- originals ------------------------------------------------------------------------------
def original_labels(manifest: pd.DataFrame) -> pd.DataFrame:
    """Original activation/valence on the 1-5 scale: the rating, or the bin midpoint without one."""
    out = pd.DataFrame({"utt_id": manifest["utt_id"].astype(str)})
    for dim in ("activation", "valence"):
        rating = pd.to_numeric(manifest[dim], errors="coerce")
        midpoint = manifest[f"{dim}_bin"].map(BIN_MIDPOINT)
        out[f"original_{dim}"] = rating.where(rating.notna(), midpoint).to_numpy()
    has_both = pd.to_numeric(manifest["activation"], errors="coerce").notna() & pd.to_numeric(
        manifest["valence"], errors="coerce").notna()
    out["original_source"] = np.where(has_both.to_numpy(), "rating", "bin_midpoint")
    return out


def length_quartiles(manifest: pd.DataFrame) -> tuple[float, float]:
    durations = pd.to_numeric(manifest["duration"], errors="coerce").dropna().to_numpy(dtype=float)
    if durations.size == 0:
        raise PerceptionError("manifest: no utterance has a duration")
    q1, q3 = np.quantile(durations, [0.25, 0.75])
    return float(q1), float(q3)


def _draw(rng: np.random.Generator, ids: list[str], n: int) -> list[str]:
    if n <= 0 or not ids:
        return []
    idx = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
    return [ids[i] for i in sorted(idx)]


def _select_part(rng, frame: pd.DataFrame, target: int, where: str) -> list[str]:
    """``target`` utt_ids from ``frame`` (one length part of one bin), gender balanced."""
    by_gender = {g: sorted(frame.loc[frame["gender"] == g, "utt_id"]) for g in GENDERS}
    others = sorted(frame.loc[~frame["gender"].isin(GENDERS), "utt_id"])
    first = GENDERS[int(rng.integers(2))]  # who gets the odd one
    want = {g: target // 2 for g in GENDERS}
    want[first] += target % 2
    take = {g: min(want[g], len(by_gender[g])) for g in GENDERS}
    for g in GENDERS:  # the other gender fills a gap
        other = GENDERS[1 - GENDERS.index(g)]
        gap = want[g] - take[g]
        if gap > 0:
            extra = min(gap, len(by_gender[other]) - take[other])
            take[other] += extra
            log.warning("%s: only %d %s utterance(s) for %d wanted; %d more %s instead",
                        where, len(by_gender[g]), g, want[g], extra, other)
    chosen = []
    for g in GENDERS:
        chosen += _draw(rng, by_gender[g], take[g])
    short = target - len(chosen)
    if short > 0 and others:
        chosen += _draw(rng, others, short)
    if len(chosen) < target:
        log.warning("%s: only %d utterance(s) available for %d wanted; scaled down to %d",
                    where, len(frame), target, len(chosen))
    return chosen


def select_sample(manifest: pd.DataFrame, *, n_per_bin: int = 100, n_extreme: int = 30, seed: int = 0,
                  corpus: str = "") -> pd.DataFrame:
    """The study sample (one row per utterance, SAMPLE_COLUMNS), sorted by bin and utt_id."""
    if not 0 <= n_extreme <= n_per_bin:
        raise PerceptionError(f"config key perception.n_extreme: {n_extreme} not within 0..n_per_bin ({n_per_bin})")
    frame = manifest.copy()
    frame["utt_id"] = frame["utt_id"].astype(str)
    frame["gender"] = frame["gender"].fillna("").astype(str).str.strip().str.upper()
    frame["duration"] = pd.to_numeric(frame["duration"], errors="coerce")
    q1, q3 = length_quartiles(frame)
    frame["length"] = np.where((frame["duration"] < q1) | (frame["duration"] > q3), "extreme", "middle")
    log.info("length quartiles over %d utterances: Q1 %.3f s, Q3 %.3f s", len(frame), q1, q3)
    chosen = []
    for a, v in BIN_PAIRS:
        name = f"bin activation={a}/valence={v}"
        in_bin = frame[(frame["activation_bin"] == a) & (frame["valence_bin"] == v) & frame["duration"].notna()]
        if len(in_bin) < n_per_bin:
            log.warning("%s: %d utterance(s) for %d wanted; scaling down", name, len(in_bin), n_per_bin)
        for part, target in (("extreme", n_extreme), ("middle", n_per_bin - n_extreme)):
            rng = rng_for(seed, "perception", "select", corpus, a, v, part)
            ids = _select_part(rng, in_bin[in_bin["length"] == part], target, f"{name} {part} part")
            chosen.append(in_bin[in_bin["utt_id"].isin(ids)].assign(bin=f"{a}/{v}"))
    sample = pd.concat(chosen, ignore_index=True) if chosen else frame.iloc[:0].assign(bin="")
    sample = sample.merge(original_labels(sample), on="utt_id", how="left")
    order = {f"{a}/{v}": i for i, (a, v) in enumerate(BIN_PAIRS)}
    sample = sample.sort_values(["bin", "utt_id"], key=lambda s: s.map(order) if s.name == "bin" else s)
    return sample[SAMPLE_COLUMNS].reset_index(drop=True)


def sample_summary(sample: pd.DataFrame) -> pd.DataFrame:
    """Counts per bin, length part and gender (for the log and the tests)."""
    return sample.groupby(["bin", "length", "gender"]).size().rename("n").reset_index()


def assign_modulations(sample: pd.DataFrame, conditions: pd.DataFrame, available: dict[str, set], *,
                       n_environmental: int = 4, n_distortion: int = 6, seed: int = 0) -> pd.DataFrame:
    """Distinct random conditions per utterance: n_environmental environmental + n_distortion distortions."""
    by_family = {f: conditions.loc[conditions["family"] == f, "condition"].tolist() for f in FAMILIES}
    want = {"environmental": n_environmental, "distortion": n_distortion}
    rows, short = [], {f: 0 for f in FAMILIES}
    for utt in sample["utt_id"]:
        rng = rng_for(seed, "perception", "modulations", utt)
        for family in FAMILIES:
            pool = [c for c in by_family[family] if utt in available.get(c, ())]
            if len(pool) < want[family]:
                short[family] += 1
            for c in _draw(rng, pool, want[family]):
                rows.append({"utt_id": utt, "condition": c, "family": family})
    for family in FAMILIES:
        if short[family]:
            log.warning("%d of %d utterance(s) have fewer than %d %s condition(s) available; took what exists",
                        short[family], len(sample), want[family], family)
    return pd.DataFrame(rows, columns=MODULATION_COLUMNS)
