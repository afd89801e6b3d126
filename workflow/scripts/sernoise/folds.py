"""Speaker-independent cross-validation folds built from manifest groups (paper §7.1).

Groups (IEMOCAP sessions, RAVDESS actor pairs) are dealt round robin into ``n_folds``
blocks; fold k tests block k, validates on block k+1 (mod n) and trains on the rest.  With
IEMOCAP's five sessions and five folds that is exactly the paper's protocol (fold 1 tests
Session1 and validates on Session2, ..., fold 5 tests Session5 and validates on Session1).

Leakage is checked in code, not assumed: :func:`check_folds` fails when a speaker appears
in two roles of one fold, when a group does not test exactly once, or when a role is empty.

Two more ways of dividing a corpus (Latif et al., issue 15):

* leave-one-speaker-out (:func:`make_loso_folds`, config ``folds.scheme: loso``): one fold per
  speaker, validated on the other speaker(s) of its group (IEMOCAP and MSP-IMPROV sessions,
  RAVDESS actor pairs 01/02, 03/04, ...), trained on everyone else.  Its table has a ``speaker``
  column where the group table has ``group``; :func:`check_folds` and :func:`split_of` accept both.
* the cross-corpus split (:func:`cross_corpus_split`): a seeded, label-stratified share of the
  target corpus for parameter selection (``val``) and the rest for ``test``.

And a corpus's own split (Leem et al. on MSP-Podcast): :func:`make_official_folds` (config
``folds.scheme: official``) makes one fixed fold of the partitions the corpus adapter put into
``group`` (MSP-Podcast's ``Split_Set``): train = ``Train``, validation = ``Development``, test =
``folds.test_partitions`` (default ``[Test1]``); the other partitions (Test2, ...) play no role.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from sernoise.seeds import derive_seed

FOLD_COLUMNS = ["fold", "group", "role"]
LOSO_COLUMNS = ["fold", "speaker", "role"]
ROLES = ("train", "val", "test")
SCHEMES = ("groups", "loso", "official")
# The official split's partitions (MSP-Podcast's Split_Set names); the test partitions are configurable
# (folds.test_partitions): MSP-Podcast has more than one test set (Test1, Test2, ...) and papers differ in which they use.
OFFICIAL_TRAIN = "Train"
OFFICIAL_VAL = "Development"
OFFICIAL_TEST = ("Test1",)
CROSS_CORPUS_ROLES = ("val", "test")


class FoldError(ValueError):
    """Folds that would leak speakers or leave a group untested."""


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def make_folds(groups, n_folds: int) -> pd.DataFrame:
    """The fold table (``fold, group, role``) for the given groups; folds are numbered from 1."""
    groups = sorted(set(map(str, groups)), key=_natural_key)
    if n_folds < 3:
        raise FoldError(f"folds.n_folds must be at least 3 (train, validation and test blocks), got {n_folds}")
    if len(groups) < n_folds:
        raise FoldError(f"folds.n_folds={n_folds} but the corpus has only {len(groups)} group(s): {groups}")
    blocks = [[g for i, g in enumerate(groups) if i % n_folds == b] for b in range(n_folds)]
    rows = []
    for k in range(n_folds):
        for b, block in enumerate(blocks):
            role = "test" if b == k else "val" if b == (k + 1) % n_folds else "train"
            rows.extend({"fold": k + 1, "group": g, "role": role} for g in block)
    rows.sort(key=lambda row: (row["fold"], _natural_key(row["group"])))
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def fold_unit(folds: pd.DataFrame) -> str:
    """The manifest column a fold table assigns roles to: ``group`` (group folds) or ``speaker`` (LOSO)."""
    if "group" in folds.columns:
        return "group"
    if "speaker" in folds.columns:
        return "speaker"
    raise FoldError(f"fold table has neither a group nor a speaker column (columns: {list(folds.columns)})")


def check_folds(manifest: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Raise :class:`FoldError` unless the folds are a leak-free partition of the manifest's groups.

    A leave-one-speaker-out table (a ``speaker`` column) is checked by :func:`check_loso_folds`.
    """
    if fold_unit(folds) == "speaker":
        check_loso_folds(manifest, folds)
        return
    groups = set(manifest["group"].astype(str))
    folds = folds.assign(group=folds["group"].astype(str))
    problems = []
    unknown_roles = set(folds["role"]) - set(ROLES)
    if unknown_roles:
        problems.append(f"unknown role(s) {sorted(unknown_roles)}")
    speakers_of_group = manifest.groupby(manifest["group"].astype(str))["speaker"].agg(lambda s: set(map(str, s)))
    for fold, table in folds.groupby("fold"):
        dup = table["group"][table["group"].duplicated()].tolist()
        if dup:
            problems.append(f"fold {fold}: group(s) {dup} have more than one role")
        missing = groups - set(table["group"])
        if missing:
            problems.append(f"fold {fold}: group(s) {sorted(missing)} have no role")
        for role in ROLES:
            if not (table["role"] == role).any():
                problems.append(f"fold {fold}: no {role} group")
        seen: dict[str, str] = {}
        for group, role in zip(table["group"], table["role"]):
            for speaker in speakers_of_group.get(group, set()):
                if speaker in seen and seen[speaker] != role:
                    problems.append(f"fold {fold}: speaker {speaker} is in both {seen[speaker]} and {role}")
                seen[speaker] = role
    tests = folds[folds["role"] == "test"]["group"].value_counts()
    for group in sorted(groups, key=_natural_key):
        count = int(tests.get(group, 0))
        if count != 1:
            problems.append(f"group {group} is tested {count} times (expected exactly once)")
    if problems:
        raise FoldError("fold check failed:\n  " + "\n  ".join(problems))


def split_of(manifest: pd.DataFrame, folds: pd.DataFrame, fold: int, role: str) -> pd.DataFrame:
    """Manifest rows playing ``role`` in ``fold`` (group folds or leave-one-speaker-out folds)."""
    unit = fold_unit(folds)
    members = set(folds[(folds["fold"] == int(fold)) & (folds["role"] == role)][unit].astype(str))
    return manifest[manifest[unit].astype(str).isin(members)]


# --------------------------------------------------------------------------- leave one speaker out


def speaker_groups(manifest: pd.DataFrame, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """speaker -> the group that pairs it for validation: the manifest's ``group``, unless ``overrides`` names one.

    A speaker found in several manifest groups (and not overridden) is an error: its validation
    partners would be ambiguous.  An override for a speaker the manifest lacks is an error too (a typo
    would silently leave the intended pairing unused).
    """
    overrides = {str(k): str(v) for k, v in (overrides or {}).items()}
    per_speaker = manifest.groupby(manifest["speaker"].astype(str))["group"].agg(lambda g: sorted(set(map(str, g))))
    unknown = sorted(set(overrides) - set(per_speaker.index), key=_natural_key)
    if unknown:
        raise FoldError(f"folds.speaker_groups: speaker(s) {unknown} are not in the manifest")
    out, ambiguous = {}, []
    for speaker, groups in per_speaker.items():
        if speaker in overrides:
            out[speaker] = overrides[speaker]
        elif len(groups) == 1:
            out[speaker] = groups[0]
        else:
            ambiguous.append(f"{speaker} ({', '.join(groups)})")
    if ambiguous:
        raise FoldError(f"speaker(s) in more than one group, so their validation partners are ambiguous: "
                        f"{ambiguous[:5]}; give their pairing in folds.speaker_groups")
    return out


def make_loso_folds(manifest: pd.DataFrame, pairing: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Leave-one-speaker-out folds (``fold, speaker, role``), one per speaker, numbered from 1 in natural speaker order.

    Fold k tests speaker k, validates on the other speaker(s) of its group (:func:`speaker_groups`;
    ``pairing`` overrides the manifest's groups) and trains on every other speaker.  That is the paper's
    "in each session, one speaker for testing and the other speakers for validation": IEMOCAP and
    MSP-IMPROV sessions hold one female and one male actor, RAVDESS groups are the actor pairs 01/02,
    03/04, ... (odd male, even female, like a session).  A group with a single speaker would leave its
    fold without validation data, and a single group without training data: both are errors.
    """
    groups = speaker_groups(manifest, pairing)
    members: dict[str, list[str]] = {}
    for speaker, group in groups.items():
        members.setdefault(group, []).append(speaker)
    lonely = {g: s for g, s in members.items() if len(s) < 2}
    if lonely:
        shown = ", ".join(f"{g} ({s[0]})" for g, s in sorted(lonely.items(), key=lambda i: _natural_key(i[0])))
        raise FoldError(f"leave-one-speaker-out folds need two or more speakers per group (the test speaker's "
                        f"validation partners); group(s) with one speaker: {shown}; pair them in folds.speaker_groups")
    if len(members) < 2:
        raise FoldError(f"leave-one-speaker-out folds need two or more groups (one to test and validate on, the "
                        f"others to train on); the manifest has only {sorted(members)}")
    speakers = sorted(groups, key=_natural_key)
    rows = []
    for k, test in enumerate(speakers, start=1):
        for speaker in speakers:
            role = "test" if speaker == test else "val" if groups[speaker] == groups[test] else "train"
            rows.append({"fold": k, "speaker": speaker, "role": role})
    return pd.DataFrame(rows, columns=LOSO_COLUMNS)


def check_loso_folds(manifest: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Raise :class:`FoldError` unless the leave-one-speaker-out table is leak-free and tests every utterance once.

    Per fold: every speaker of the manifest has exactly one role (so none is in two roles), exactly one
    speaker is tested, and validation and training are not empty.  Across folds: every utterance is
    tested exactly once (counted on the utterances themselves, not assumed from the speakers).
    """
    folds = folds.assign(speaker=folds["speaker"].astype(str))
    speakers = set(manifest["speaker"].astype(str))
    problems = []
    unknown_roles = set(folds["role"]) - set(ROLES)
    if unknown_roles:
        problems.append(f"unknown role(s) {sorted(unknown_roles)}")
    strangers = sorted(set(folds["speaker"]) - speakers, key=_natural_key)
    if strangers:
        problems.append(f"speaker(s) {strangers} of the fold table are not in the manifest")
    for fold, table in folds.groupby("fold"):
        roles_of = table.groupby("speaker")["role"].agg(lambda r: sorted(set(r)))
        for speaker, roles in roles_of.items():
            if len(roles) > 1:
                problems.append(f"fold {fold}: speaker {speaker} is in both {' and '.join(roles)}")
        missing = speakers - set(table["speaker"])
        if missing:
            problems.append(f"fold {fold}: speaker(s) {sorted(missing, key=_natural_key)} have no role")
        tested = sorted(set(table.loc[table["role"] == "test", "speaker"]), key=_natural_key)
        if len(tested) != 1:
            problems.append(f"fold {fold}: {len(tested)} test speakers {tested} (expected exactly one)")
        for role in ("train", "val"):
            if not (table["role"] == role).any():
                problems.append(f"fold {fold}: no {role} speaker")
    tests = folds[folds["role"] == "test"]
    times = manifest["speaker"].astype(str).map(tests["speaker"].value_counts()).fillna(0).astype(int)
    wrong = manifest.loc[times != 1, "utt_id"].astype(str).tolist()
    if wrong:
        counts = sorted(set(times[times != 1]))
        problems.append(f"{len(wrong)} utterance(s) tested {counts} times instead of once, e.g. {wrong[:5]}")
    if problems:
        raise FoldError("leave-one-speaker-out fold check failed:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- the official split


def make_official_folds(manifest: pd.DataFrame, test_partitions=OFFICIAL_TEST) -> pd.DataFrame:
    """One fixed fold (``fold, group, role``) from the corpus's official partitions (the manifest's ``group``).

    Fold 1 trains on ``Train``, validates on ``Development`` and tests ``test_partitions``; partitions not
    named (e.g. Test2 when only Test1 is tested) are left out of the table, so they play no role.  A
    partition that is not in the manifest, or that has no utterance (every file rejected), is an error
    naming the config key; so is a test partition that is also Train or Development.
    """
    test_partitions = [str(p) for p in test_partitions]
    if not test_partitions:
        raise FoldError("folds.test_partitions: folds.scheme official needs at least one test partition")
    overlap = sorted(set(test_partitions) & {OFFICIAL_TRAIN, OFFICIAL_VAL})
    if overlap:
        raise FoldError(f"folds.test_partitions: {overlap} cannot be tested, the official split trains on "
                        f"{OFFICIAL_TRAIN} and validates on {OFFICIAL_VAL}")
    sizes = manifest["group"].astype(str).value_counts()
    present = sorted(sizes.index, key=_natural_key)
    roles = {OFFICIAL_TRAIN: "train", OFFICIAL_VAL: "val", **{p: "test" for p in test_partitions}}
    for partition in roles:
        if int(sizes.get(partition, 0)) == 0:
            key = "folds.test_partitions" if partition in test_partitions else "folds.scheme official"
            raise FoldError(f"{key}: the corpus has no utterance in the partition {partition!r} (the manifest's "
                            f"groups: {present[:10]}); the official split needs "
                            f"{OFFICIAL_TRAIN}, {OFFICIAL_VAL} and the test partitions (folds.test_partitions)")
    rows = [{"fold": 1, "group": group, "role": role} for group, role in roles.items()]
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def check_official_folds(manifest: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Raise :class:`FoldError` unless the official fold is one leak-free fold whose roles all hold utterances.

    Unlike :func:`check_folds`, partitions may be left untested (Test2 when only Test1 is tested).  The
    official partitions are meant to be speaker independent; that is checked, not assumed: a speaker in
    two roles is an error (MSP-Podcast's unknown speakers are one per file, see the adapter).
    """
    problems = []
    folds = folds.assign(group=folds["group"].astype(str))
    if set(folds["fold"]) != {1}:
        problems.append(f"the official split is one fold (fold 1), got folds {sorted(set(folds['fold']))}")
    dup = folds["group"][folds["group"].duplicated()].tolist()
    if dup:
        problems.append(f"partition(s) {dup} have more than one role")
    members = manifest.assign(group=manifest["group"].astype(str)).merge(folds[["group", "role"]], on="group")
    for role in ROLES:
        if not (members["role"] == role).any():
            problems.append(f"no {role} utterance")
    roles_of = members.groupby(members["speaker"].astype(str))["role"].agg(lambda r: sorted(set(r)))
    leaks = [f"{speaker} ({' and '.join(roles)})" for speaker, roles in roles_of.items() if len(roles) > 1]
    if leaks:
        problems.append(f"{len(leaks)} speaker(s) in two roles, e.g. {leaks[:5]}")
    if problems:
        raise FoldError("official split check failed (folds.scheme official):\n  " + "\n  ".join(problems))


def folds_from_config(manifest: pd.DataFrame, folds_config: Mapping) -> pd.DataFrame:
    """The checked fold table of the config's ``folds:`` section (rule make_folds).

    ``scheme`` ``groups`` (the default, also when absent: today's tables, byte for byte) deals the
    manifest's groups into ``n_folds`` blocks; ``loso`` makes one fold per speaker (``speaker_groups``
    overrides the pairing); ``official`` makes the one fold of the corpus's official split
    (``test_partitions``, default ``[Test1]``).  The workflow enumerates folds 1..``n_folds`` before any
    manifest exists, so with ``loso`` ``n_folds`` must equal the number of speakers, and with ``official``
    it must be 1; a mismatch is an error saying the value to set, rather than folds that are silently
    never trained or missing.
    """
    scheme = folds_config.get("scheme") or "groups"
    n_folds = int(folds_config.get("n_folds", 5))
    if scheme == "groups":
        folds = make_folds(manifest["group"], n_folds)
    elif scheme == "loso":
        folds = make_loso_folds(manifest, folds_config.get("speaker_groups"))
        n_speakers = int(folds["fold"].nunique())
        if n_speakers != n_folds:
            raise FoldError(f"folds.scheme loso makes one fold per speaker: the corpus has {n_speakers} speakers but "
                            f"folds.n_folds is {n_folds}; set folds.n_folds: {n_speakers}")
    elif scheme == "official":
        if n_folds != 1:
            raise FoldError(f"folds.scheme official makes one fixed fold but folds.n_folds is {n_folds}; "
                            "set folds.n_folds: 1")
        folds = make_official_folds(manifest, folds_config.get("test_partitions") or OFFICIAL_TEST)
        check_official_folds(manifest, folds)
        return folds
    else:
        raise FoldError(f"folds.scheme must be one of {list(SCHEMES)}, got {scheme!r}")
    check_folds(manifest, folds)
    return folds


# --------------------------------------------------------------------------- cross-corpus split


def cross_corpus_split(
    manifest: pd.DataFrame,
    *,
    seed: int,
    val_fraction: float = 0.3,
    labels: Mapping[str, object] | None = None,
    label_column: str = "emotion",
) -> pd.DataFrame:
    """The target corpus of a cross-corpus test, split into ``val`` (parameter selection) and ``test``.

    Latif et al.: "we randomly select 30 % of MSP-IMPROV for parameter selection and 70 % for
    testing".  The draw is stratified by label so that both parts keep the corpus's class balance:
    within each label, utterances are ordered by ``derive_seed(seed, "cross-corpus", utt_id)`` and the
    first ``round(n * val_fraction)`` (halves up) become ``val``; a label with two or more utterances
    keeps at least one in each part (a class absent from selection or from test would bias UAR), and a
    label with a single utterance is tested.
    Hashing each utterance on its own makes the split independent of row order and of the other
    utterances, so the same seed gives the same split.

    ``labels`` (utt_id -> label, e.g. a task's targets) replaces ``label_column``; utterances without a
    label (not in ``labels``, or an empty cell) are left out, so a 4-class test drops MSP-IMPROV's
    ``other`` instead of stratifying it.  Returns the labelled manifest rows, sorted by utt_id, with a
    ``label`` and a ``role`` column.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise FoldError(f"cross-corpus val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    frame = manifest.copy()
    frame["utt_id"] = frame["utt_id"].astype(str)
    if frame["utt_id"].duplicated().any():
        raise FoldError(f"cross-corpus split: duplicate utt_id(s) {frame['utt_id'][frame['utt_id'].duplicated()].tolist()[:5]}")
    if labels is not None:
        frame["label"] = frame["utt_id"].map({str(k): v for k, v in labels.items()})
    elif label_column in frame.columns:
        frame["label"] = frame[label_column]
    else:
        raise FoldError(f"cross-corpus split: the manifest has no column {label_column!r} (columns: {list(frame.columns)})")
    keep = frame["label"].notna() & (frame["label"].astype(str) != "")
    frame = frame[keep].sort_values("utt_id", kind="stable").reset_index(drop=True)
    if frame.empty:
        raise FoldError("cross-corpus split: no labelled utterance to split")
    roles = {}
    for _, part in frame.groupby(frame["label"].astype(str), sort=True):
        ordered = sorted(part["utt_id"], key=lambda u: (derive_seed(seed, "cross-corpus", u), u))
        n = len(ordered)
        n_val = int(math.floor(n * float(val_fraction) + 0.5))
        n_val = min(max(n_val, 1), n - 1)  # n == 1: 0, the lone utterance is tested
        roles.update({u: "val" if i < n_val else "test" for i, u in enumerate(ordered)})
    frame["role"] = frame["utt_id"].map(roles)
    return frame
