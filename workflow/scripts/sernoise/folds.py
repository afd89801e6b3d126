"""Speaker-independent cross-validation folds built from manifest groups (paper §7.1).

Groups (IEMOCAP sessions, RAVDESS actor pairs) are dealt round robin into ``n_folds``
blocks; fold k tests block k, validates on block k+1 (mod n) and trains on the rest.  With
IEMOCAP's five sessions and five folds that is exactly the paper's protocol (fold 1 tests
Session1 and validates on Session2, ..., fold 5 tests Session5 and validates on Session1).

Leakage is checked in code, not assumed: :func:`check_folds` fails when a speaker appears
in two roles of one fold, when a group does not test exactly once, or when a role is empty.
"""

from __future__ import annotations

import re

import pandas as pd

FOLD_COLUMNS = ["fold", "group", "role"]
ROLES = ("train", "val", "test")


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


def check_folds(manifest: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Raise :class:`FoldError` unless the folds are a leak-free partition of the manifest's groups."""
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
    """Manifest rows playing ``role`` in ``fold``."""
    groups = set(folds[(folds["fold"] == int(fold)) & (folds["role"] == role)]["group"].astype(str))
    return manifest[manifest["group"].astype(str).isin(groups)]
