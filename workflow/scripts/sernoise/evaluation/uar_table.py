"""The UAR tables in the paper's Table 3 layout (Table 3, Table 4): rows, cells, statistics, renderings.

:mod:`.table3` and :mod:`.table4` say which models a table shows and how it is captioned; this
module builds and writes any such table.

Layout (the paper's):

* rows, in order: "No noise" (clean test speech); "All noises**" (every tested condition,
  perception-altering ones included: uncertain ground truth, hence the stars);
  "Perception-retaining" (every perception-retaining condition); then, per environmental
  category (Nature, Interior, Human, then any other configured category), "At start" and one
  "Cont. <SNR> dB" row per SNR, highest SNR first (perception-retaining conditions only); then
  each perception-retaining signal distortion in config order;
* columns: model x regime column (Clean, Clean+Noise Mismatch, Clean+Noise Match) x task (A, V).

A cell is the mean over (fold, repetition) of the UAR of the predictions of the cell's source
regime (:func:`sernoise.regimes.column_source`) on the row's condition(s).  For a row of several
conditions (All noises**, Perception-retaining, an environmental row built from more than one
condition), the UAR of each (fold, rep) is the UAR of the *pooled* predictions of the row's
conditions, each condition read from its own source regime for the column (All noises** in the
Match column reads every condition from the ``all`` model); conditions without a source in the
column, or without any prediction, are left out of the pool (said in the notes).  The per-pair
UAR comes from summed confusion counts (``confusion.csv``), which equals the UAR of the pooled
prediction rows.  A (fold, rep) pair that some pooled condition lacks is dropped.

Significance (paper §7.2.3; config ``statistics``; :mod:`.stats`), Bonferroni within each family,
significant at adjusted p <= 0.05.  A family (``statistics.family``) is, by default, one question
for one model and task (every (a) comparison of the T-DNN on activation, say: the claim "noise hurts
this model on this task" is tested over its rows together), or with ``table`` every comparison of the
table (all models, tasks and kinds); the CSV's ``family``/``family_size`` name each cell's.  The
comparisons:

* (a) Clean column: each row against "No noise" in the same column (does noise hurt the model
  trained on clean speech?);
* (b) Mismatch and Match columns: each row against the Clean column of the same row (does
  training with noise help?);
* (c) Table 3 (``all_vs_retaining``): in each column, "All noises**" against
  "Perception-retaining" (paper RQ3: does including perception-altering noise change the
  measured UAR?); marked ⇑/⇓ on the All noises** cell.

The test (``statistics.test``): ``speaker_jackknife`` (default), ``speaker_bootstrap`` or
``speaker_permutation``, paired
at the utterance and clustered by speaker (the per-speaker confusion counts of
``speaker_confusion.csv``), or ``fold_ttest``, the paper's t-test over (fold, rep) pairs.  Both
sides of every comparison predict the same test utterances: (a) the same utterances clean and
noisy, (b) the same utterances by models of two regimes, (c) the same utterances' noisy versions.
When a speaker's utterance sets differ between the sides (utterances skipped in a condition) the
comparison is paired by speaker only, and its note says so; speakers or (fold, rep) pairs present
on one side only are left out and noted, and with fewer than 2 common speakers the comparison is
not tested.  Every cell also gets a speaker-level bootstrap confidence interval (``ci_low``,
``ci_high``; shown in the renderings when ``tables.show_ci``).

Significant cells are marked ↑ (higher than the reference) or ↓ (lower).  An empty cell is "–".
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sernoise.conditions.catalog import ConditionInfo
from sernoise.perception.partition import optional_partition, settings_under_partition
from sernoise.predictions import CLEAN
from sernoise.regimes import build_regimes, column_source

from .flags import flagged_note, mark_flagged
from .labels import (
    CATEGORY_LABELS, COLUMN_LABELS, COLUMNS, SECTION_DIST, SECTION_ENV, condition_label, labels_and_notes,
    model_label, ordered_categories, task_label,
)
from .metrics import (
    cm_columns, confusion_labels, read_confusion, read_flags, read_speaker_confusion, uar_from_confusion,
)
from .render import EMPTY, MARKS, latex_close, latex_open, markdown_notes, tex_escape, value_text, write_table_files
from .stats import (
    ALPHA, DEFAULT_STATISTICS, FAMILIES, TESTS, ClusterCounts, SpeakerBootstrap, bonferroni, cluster_bootstrap_ci,
    cluster_bootstrap_test, cluster_jackknife_test, cluster_permutation_test, direction, paired_ttest,
)

# the All noises** cell's mark when it differs significantly from Perception-retaining (comparison c)
RQ3_MARKS = {"up": "⇑", "down": "⇓"}

CSV_COLUMNS = [
    "row_order", "row", "row_key", "section", "group", "label", "model", "model_label", "column",
    "column_label", "task", "task_label", "value", "mean", "std", "ci_low", "ci_high", "n_pairs", "n_speakers",
    "n_predictions", "sources", "conditions", "comparison", "test", "reference_mean", "difference", "diff_ci_low",
    "diff_ci_high", "t", "p", "family", "family_size", "p_adjusted", "significant", "direction", "vs_retaining_mean",
    "vs_retaining_difference", "vs_retaining_p", "vs_retaining_family", "vs_retaining_family_size",
    "vs_retaining_p_adjusted", "vs_retaining_significant", "vs_retaining_direction", "note",
]


@dataclass(frozen=True)
class Row:
    key: str
    kind: str  # clean | all | retaining | condition
    label: str
    conditions: tuple[str, ...] = ()
    section: str = ""
    group: str = ""

    @property
    def name(self) -> str:
        return f"{self.group}: {self.label}" if self.group and self.label else (self.group or self.label)


def _snr_text(snr) -> str:
    return f"{float(snr):g}"


def condition_infos(conditions) -> dict[str, ConditionInfo]:
    """Condition id -> ConditionInfo of configured conditions (objects, dicts or ConditionInfo), in order."""
    infos = (c if isinstance(c, ConditionInfo) else ConditionInfo.of(c) for c in conditions)
    return {c.id: c for c in infos}


def table_rows(conditions) -> list[Row]:
    """The rows of a UAR table for the tested conditions (objects, dicts or ConditionInfo, in config order)."""
    conditions = list(condition_infos(conditions).values())
    retaining = [c for c in conditions if c.perception == "retaining"]
    rows = [
        Row(CLEAN, "clean", "No noise"),
        Row("ALL", "all", "All noises**", tuple(c.id for c in conditions)),
        Row("RETAINING", "retaining", "Perception-retaining", tuple(c.id for c in retaining)),
    ]
    environmental = [c for c in retaining if c.family == "environmental"]
    for category in ordered_categories(c.category for c in environmental):
        members = [c for c in environmental if c.category == category]
        group = CATEGORY_LABELS.get(category, str(category))
        start = [c for c in members if c.position == "start"]
        start_snrs = list(dict.fromkeys(c.snr_db for c in start))
        if len(start_snrs) <= 1:
            if start:
                rows.append(_condition_row(start, "At start", SECTION_ENV, group))
        else:
            for snr in sorted(start_snrs, key=lambda s: -math.inf if s is None else s, reverse=True):
                label = "At start" if snr is None else f"At start {_snr_text(snr)} dB"
                rows.append(_condition_row([c for c in start if c.snr_db == snr], label, SECTION_ENV, group))
        cont = [c for c in members if c.position != "start"]
        for snr in sorted(dict.fromkeys(c.snr_db for c in cont), key=lambda s: -math.inf if s is None else s,
                          reverse=True):
            label = "Cont." if snr is None else f"Cont. {_snr_text(snr)} dB"
            rows.append(_condition_row([c for c in cont if c.snr_db == snr], label, SECTION_ENV, group))
    for c in retaining:
        if c.family == "distortion":
            rows.append(Row(c.id, "condition", condition_label(c.id), (c.id,), SECTION_DIST, ""))
    return rows


def _condition_row(members, label, section, group) -> Row:
    ids = tuple(c.id for c in members)
    return Row("+".join(ids), "condition", label, ids, section, group)


def evaluation_regimes(config: dict, infos: dict, names=None) -> dict:
    """The regimes of ``config`` (built as :func:`sernoise.regimes.build_regimes` does), restricted to
    ``names`` when given (the regimes the workflow trains; a regime left out makes its cells empty)."""
    regimes = build_regimes(config, infos)
    if names is not None:
        regimes = {name: regime for name, regime in regimes.items() if name in set(names)}
    return regimes


def cell_sources(config: dict, regimes: dict, row: Row, column: str) -> list[tuple[str, str]]:
    """(condition, regime) pairs whose predictions fill a cell; [] for an empty cell."""
    if row.kind == "clean":
        source = column_source(config, regimes, column, None)
        return [(CLEAN, source)] if source else []
    if row.kind == "all":
        source = column_source(config, regimes, column, "ALL")
        if source:
            return [(c, source) for c in row.conditions]
        if column != "mismatch":
            return []
    pairs = [(c, column_source(config, regimes, column, c)) for c in row.conditions]
    return [(c, s) for c, s in pairs if s]


class ConfusionIndex:
    """Confusion counts by (model, task, regime, condition) -> frame indexed by (fold, rep)."""

    def __init__(self, confusion: pd.DataFrame):
        # every task's counts over the union of the classes (metrics.read_confusion): a class of another
        # task has no support here and changes no UAR
        self.columns = cm_columns(confusion_labels(confusion.columns)) if len(confusion) else []
        self.groups = {}
        for key, group in confusion.groupby(["model", "task", "regime", "condition"], sort=False):
            frame = group.set_index(["fold", "rep"])[self.columns].astype(np.int64)
            self.groups[key] = frame.groupby(level=["fold", "rep"]).sum()
        self.conditions_with_data = {key[3] for key in self.groups}

    def pair_uars(self, model, task, sources) -> tuple[pd.Series, list[str], list[str], str]:
        """Per-(fold, rep) UAR of the pooled sources, the conditions pooled, those without data, a note."""
        frames, used, missing = [], [], []
        for condition, regime in sources:
            frame = self.groups.get((model, task, regime, condition))
            if frame is None or frame.empty:
                missing.append(condition)
            else:
                frames.append(frame)
                used.append(condition)
        if not frames:
            return pd.Series(dtype=float), used, missing, ""
        common = frames[0].index
        union = frames[0].index
        for frame in frames[1:]:
            common = common.intersection(frame.index)
            union = union.union(frame.index)
        note = ""
        if len(union) > len(common):
            note = f"{len(union) - len(common)} (fold, rep) pair(s) missing for some pooled condition dropped"
        total = sum(frame.loc[common].to_numpy() for frame in frames)
        values = [uar_from_confusion(cm) for cm in total] if len(common) else []
        index = pd.MultiIndex.from_tuples(list(common), names=["fold", "rep"]) if len(common) else common
        return pd.Series(values, index=index, dtype=float).sort_index(), used, missing, note



class SpeakerIndex:
    """Per-speaker confusion counts (speaker_confusion.csv) by (model, task, regime, condition)."""

    def __init__(self, frame: pd.DataFrame):
        self.columns = cm_columns(confusion_labels(frame.columns)) if len(frame) else []
        self.groups = {key: group for key, group in frame.groupby(["model", "task", "regime", "condition"], sort=False)}

    def cell(self, model, task, sources, pairs) -> tuple[ClusterCounts, dict]:
        """The counts of the pooled ``sources`` on ``pairs`` ((fold, rep) tuples) per speaker, and
        (pair, speaker) -> the set of utterance-set digests of its sources (one digest: every pooled
        condition holds the same utterances of that speaker)."""
        pairs = [tuple(int(x) for x in pair) for pair in pairs]
        parts = [self.groups[(model, task, regime, condition)] for condition, regime in sources
                 if (model, task, regime, condition) in self.groups]
        width = len(self.columns)
        if not parts or not pairs:
            return ClusterCounts(tuple(pairs), (), np.zeros((len(pairs), 0, width), dtype=np.int64)), {}
        frame = pd.concat(parts, ignore_index=True)
        keys = list(zip(frame["fold"].astype(int), frame["rep"].astype(int)))
        wanted = set(pairs)
        frame = frame[[k in wanted for k in keys]]
        speakers = tuple(sorted(frame["speaker"].astype(str).unique()))
        p_index = {pair: i for i, pair in enumerate(pairs)}
        s_index = {speaker: j for j, speaker in enumerate(speakers)}
        counts = np.zeros((len(pairs), len(speakers), width), dtype=np.int64)
        rows_p = [p_index[(int(f), int(r))] for f, r in zip(frame["fold"], frame["rep"])]
        rows_s = [s_index[str(x)] for x in frame["speaker"]]
        np.add.at(counts, (np.asarray(rows_p, dtype=int), np.asarray(rows_s, dtype=int)),
                  frame[self.columns].to_numpy(dtype=np.int64))
        digests: dict = {}
        for i, j, digest in zip(rows_p, rows_s, frame["utt_digest"].astype(str)):
            digests.setdefault((pairs[i], speakers[j]), set()).add(digest)
        return ClusterCounts(tuple(pairs), speakers, counts), digests


@dataclass
class UarTable:
    rows: list[Row]
    models: list[str]
    tasks: list[str]
    cells: pd.DataFrame
    pairs: dict = field(default_factory=dict)  # (row_key, model, column, task) -> Series of UAR per (fold, rep)
    notes: list[str] = field(default_factory=list)
    m: int = 0
    corpus: str = ""
    title: str = ""
    caption_text: str = ""  # set by the table's own module (table3.caption, table4.caption)
    csv_name: str = ""  # the file the notes point to for per-cell notes (table3.csv, table4.csv)
    labels: dict = field(default_factory=dict)  # model -> column label replacing the registry's (stand-in backbones)
    model_notes: list[str] = field(default_factory=list)  # caption sentences about the models (e.g. a stand-in)
    context_notes: list[str] = field(default_factory=list)  # caption sentences on what the table rests on (partition)
    statistics: dict = field(default_factory=dict)  # test, resamples, ci, seed, show_ci (resolved)
    family: dict = field(default_factory=dict)  # comparison kind (a, b, c) -> how many of the m were tested
    units: dict = field(default_factory=dict)  # speakers, utterances, pairs: what the tests pair and resample

    def label(self, model: str) -> str:
        return model_label(model, self.labels)

    def cell(self, row_key: str, model: str, column: str, task: str) -> pd.Series:
        c = self.cells
        hit = c[(c["row_key"] == row_key) & (c["model"] == model) & (c["column"] == column) & (c["task"] == task)]
        if len(hit) != 1:
            raise KeyError((row_key, model, column, task))
        return hit.iloc[0]


def ordered_names(configured, present) -> list[str]:
    """The configured names in config order, then the other names present (sorted)."""
    configured = list(configured or [])
    return configured + sorted(set(present) - set(configured))


def build_uar_table(
    confusion: pd.DataFrame,
    config: dict,
    conditions,
    *,
    title: str,
    csv_name: str,
    tested=None,
    skipped: dict | None = None,
    corpus: str = "",
    regimes=None,
    models=None,
    model_labels: dict | None = None,
    model_notes: list[str] | None = None,
    exclude=(),
    model_regimes: dict | None = None,
    flagged: dict | None = None,
    speakers: pd.DataFrame | None = None,
    statistics: dict | None = None,
    all_vs_retaining: bool = False,
) -> UarTable:
    """A UAR table (``title``; per-cell notes in ``csv_name``) from confusion counts
    (metrics.compute_metrics) and the configuration; the caller sets its caption.

    ``conditions``: every configured condition (objects with id/family/perception/..., or
    ConditionInfo); ``tested``: the condition ids that were tested (rows; default: all);
    ``skipped``: condition id -> reason, for conditions skipped on this corpus; ``regimes``: the
    names of the regimes trained (default: every regime the config asks for); ``models``: the
    model columns, in order, kept even without predictions (default: ``training.models`` then
    any other model with predictions, less ``exclude``: the workflow's Table 3 excludes the
    noise-robust arms (labels.noise_robust_models), which are Table 4's);
    ``model_labels``: model -> column label overriding the registry's (e.g. "E-DNN (tiny random wav2vec2)");
    ``model_notes``: sentences added to the caption and the notes (what such a label means);
    ``model_regimes``: model -> the regimes it was trained in, when fewer than ``regimes``
    (training.model_regimes): a cell needing any other regime is "–" instead of a partial pool;
    ``flagged``: (model, regime, fold, rep, task) -> reason, the trained models the degenerate-model
    check flagged (metrics.read_flags): a cell that rests on any of them is marked (evaluation.flags),
    and its note and the table's notes say which and why;
    ``speakers``: the per-speaker confusion counts (metrics.speaker_confusion), needed by the
    speaker-level tests and the confidence intervals; ``statistics``: test, resamples, ci, seed,
    show_ci (default: the config's ``statistics``, ``seed`` and ``tables``); ``all_vs_retaining``: add
    comparison (c), All noises** vs Perception-retaining in each column (Table 3).
    """
    settings = resolve_statistics(config, statistics)
    if settings["test"] != "fold_ttest" and speakers is None:
        raise ValueError(f"statistics.test {settings['test']!r} needs the per-speaker confusion counts "
                         "(speaker_confusion.csv of rule compute_metrics, metrics.speaker_confusion): pass "
                         "speakers=, or choose statistics.test: fold_ttest")
    speaker_index = SpeakerIndex(speakers) if speakers is not None else None
    bootstrap = SpeakerBootstrap(settings["seed"], settings["resamples"])
    infos = condition_infos(conditions)
    tested = list(infos) if tested is None else [c for c in infos if c in set(tested)]
    regimes = evaluation_regimes(config, infos, regimes)
    rows = table_rows([infos[c] for c in tested])
    training = config.get("training", {})
    if models is None:
        excluded = set(exclude)
        models = [m for m in ordered_names(training.get("models"), confusion["model"].unique()) if m not in excluded]
    models = list(models)
    tasks = ordered_names(training.get("tasks"), confusion["task"].unique())
    index = ConfusionIndex(confusion)
    labels, model_notes = labels_and_notes(models, model_labels, model_notes)

    records, pairs, clusters, flag_notes = [], {}, {}, []
    pooled_out: dict[tuple[str, str], set] = {}
    for model in models:
        for task in tasks:
            for order, row in enumerate(rows):
                for column in COLUMNS:
                    sources = cell_sources(config, regimes, row, column)
                    untrained = sorted({r for _, r in sources} - set((model_regimes or {}).get(model, regimes)))
                    if untrained:  # e.g. no mismatched E-DNN in the demo: the cell is empty, not partial
                        series, used, missing = pd.Series(dtype=float), [], [c for c, _ in sources]
                        note = f"{model} not trained in regime(s) {', '.join(untrained)} (training.model_regimes)"
                    else:
                        series, used, missing, note = index.pair_uars(model, task, sources)
                    if row.kind in ("all", "retaining") and sources:
                        # conditions with predictions that this column has no source model for
                        left = set(row.conditions) - {c for c, _ in sources}
                        left &= index.conditions_with_data
                        if left:
                            pooled_out.setdefault((row.label, column), set()).update(left)
                    pairs[(row.key, model, column, task)] = series
                    mean = float(series.mean()) if len(series) else math.nan
                    std = float(series.std(ddof=1)) if len(series) > 1 else math.nan
                    ci_low = ci_high = math.nan
                    n_speakers = n_predictions = 0
                    if speaker_index is not None:
                        cell_key = (row.key, model, column, task)
                        counts, digests = speaker_index.cell(model, task, [] if untrained else sources, series.index)
                        clusters[cell_key] = (counts, digests)
                        ci_low, ci_high = cluster_bootstrap_ci(counts, resamples=settings["resamples"],
                                                               seed=settings["seed"], ci=settings["ci"],
                                                               bootstrap=bootstrap, key=cell_key)
                        n_speakers, n_predictions = len(counts.speakers), counts.n_predictions
                    flag_notes.append(flagged_note(flagged, model, task, [r for _, r in sources], series.index))
                    records.append({
                        "row_order": order, "row": row.name, "row_key": row.key, "section": row.section,
                        "group": row.group, "label": row.label, "model": model, "model_label": model_label(model, labels),
                        "column": column, "column_label": COLUMN_LABELS[column], "task": task,
                        "task_label": task_label(task), "mean": mean, "std": std, "ci_low": ci_low,
                        "ci_high": ci_high, "n_pairs": int(len(series)), "n_speakers": n_speakers,
                        "n_predictions": n_predictions,
                        "sources": ";".join(dict.fromkeys(s for _, s in sources)),
                        "conditions": ";".join(used), "note": note,
                    })
    cells = pd.DataFrame(records)
    family = _compare(cells, pairs, clusters, settings, bootstrap, all_vs_retaining)
    cells["value"] = [value_text(r.mean, r.significant, r.direction) + RQ3_MARKS.get(r.vs_retaining_direction, "")
                      for r in cells.itertuples()]
    m = sum(family.values())
    notes = _notes(rows, index, skipped or {}, pooled_out, cells, m, csv_name, settings)
    mark_flagged(cells, flag_notes, notes, csv_name)
    return UarTable(rows, models, tasks, cells[CSV_COLUMNS], pairs, notes, m, corpus, title=title, csv_name=csv_name,
                    labels=labels, model_notes=model_notes, statistics=settings, family=family,
                    units=_units(cells, pairs))


def resolve_statistics(config: dict, statistics: dict | None = None) -> dict:
    """test, resamples, ci, seed and show_ci: ``statistics`` over the config's ``statistics``, ``seed``
    and ``tables.show_ci`` over :data:`sernoise.evaluation.stats.DEFAULT_STATISTICS`; errors name the key."""
    settings = {**DEFAULT_STATISTICS, "show_ci": bool((config.get("tables") or {}).get("show_ci", False)),
                **(config.get("statistics") or {}), **(statistics or {})}
    settings.setdefault("seed", config.get("seed"))
    if settings["test"] not in TESTS:
        raise ValueError(f"statistics.test: {settings['test']!r} is not one of {list(TESTS)}")
    if settings["family"] not in FAMILIES:
        raise ValueError(f"statistics.family: {settings['family']!r} is not one of {list(FAMILIES)}")
    if settings["seed"] is None:
        raise ValueError("seed: the speaker-level resampling needs the config seed")
    if int(settings["resamples"]) < 1:
        raise ValueError(f"statistics.resamples: {settings['resamples']!r} must be a positive integer")
    if not 0 < float(settings["ci"]) < 1:
        raise ValueError(f"statistics.ci: {settings['ci']!r} must lie between 0 and 1")
    settings["resamples"], settings["ci"], settings["seed"] = int(settings["resamples"]), float(settings["ci"]), \
        int(settings["seed"])
    return settings


def _units(cells: pd.DataFrame, pairs: dict) -> dict:
    """What the tests pair and resample: test speakers, clean test utterances (per repetition, all
    folds) and (fold, rep) pairs, from the No noise cells."""
    clean = cells[(cells["row_key"] == CLEAN) & (cells["n_pairs"] > 0)]
    if clean.empty:
        return {"speakers": 0, "utterances": 0, "pairs": 0}
    best = clean.loc[clean["n_pairs"].idxmax()]
    reps = {rep for _, rep in pairs[(best.row_key, best.model, best.column, best.task)].index}
    return {"speakers": int(clean["n_speakers"].max()), "pairs": int(best.n_pairs),
            "utterances": int(round(best.n_predictions / max(1, len(reps))))}


def _run_test(key, ref_key, pairs, clusters, settings, bootstrap) -> dict:
    """One comparison of cell ``key`` against cell ``ref_key`` with the configured test: difference,
    its bootstrap interval, t (t-test only), p, the units and a note of what was dropped or how it
    was paired."""
    if settings["test"] == "fold_ttest":
        result = paired_ttest(pairs[key], pairs[ref_key])
        common = pairs[key].index.intersection(pairs[ref_key].index)
        diff = float((pairs[key].loc[common] - pairs[ref_key].loc[common]).mean()) if len(common) else math.nan
        return {"difference": diff, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "t": result.statistic,
                "p": result.p, "note": f"t-test: {result.note}" if result.note else ""}
    (a, digests_a), (b, digests_b) = clusters[key], clusters[ref_key]
    if settings["test"] == "speaker_jackknife":
        result = cluster_jackknife_test(a, b, resamples=settings["resamples"], seed=settings["seed"],
                                        ci=settings["ci"], bootstrap=bootstrap, keys=(key, ref_key))
    elif settings["test"] == "speaker_bootstrap":
        result = cluster_bootstrap_test(a, b, resamples=settings["resamples"], seed=settings["seed"],
                                        ci=settings["ci"], bootstrap=bootstrap, keys=(key, ref_key))
    else:
        result = cluster_permutation_test(a, b, resamples=settings["resamples"], seed=settings["seed"])
    # "exact (every swap pattern)" holds for every cell alike: the caption says it, not each note
    notes = [n for n in result.note.split("; ") if n and not n.startswith("exact")]
    common = set(digests_a) & set(digests_b)
    differ = sum(1 for unit in common if len(digests_a[unit] | digests_b[unit]) > 1)
    if differ:
        notes.append(f"test utterances differ in {differ} of {len(common)} (fold, rep, speaker) units (utterances "
                     "skipped in a condition): paired by speaker, not by utterance")
    note = f"{settings['test']}: {'; '.join(notes)}" if notes else ""
    return {"difference": result.difference, "diff_ci_low": result.ci_low, "diff_ci_high": result.ci_high,
            "t": math.nan, "p": result.p, "note": note}


def _compare(cells: pd.DataFrame, pairs: dict, clusters: dict, settings: dict, bootstrap, all_vs_retaining: bool) -> dict:
    """Add the comparison columns (a), (b) and, with ``all_vs_retaining``, (c) (module docstring),
    Bonferroni-corrected together (in place); the number of tested comparisons of each kind."""
    means = {(r.row_key, r.model, r.column, r.task): r.mean for r in cells.itertuples()}
    notes = list(cells["note"])
    empty = {"difference": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "t": math.nan, "p": math.nan}
    main, extra = [], []
    family = {"a": 0, "b": 0, "c": 0}
    for i, r in enumerate(cells.itertuples()):
        key = (r.row_key, r.model, r.column, r.task)
        if r.column == "clean":
            ref_key, text, kind = (CLEAN, r.model, "clean", r.task), "vs No noise, Clean column", "a"
        else:
            ref_key, text, kind = (r.row_key, r.model, "clean", r.task), "vs Clean column, same row", "b"
        if r.row_key == CLEAN and r.column == "clean" or not len(pairs[key]) or not len(pairs[ref_key]):
            main.append({**empty, "comparison": "", "reference_mean": math.nan, "kind": ""})
        else:
            result = _run_test(key, ref_key, pairs, clusters, settings, bootstrap)
            note = result.pop("note")
            if note:
                notes[i] = "; ".join(x for x in (notes[i], note) if x)
            main.append({**result, "comparison": text, "reference_mean": means[ref_key], "kind": kind})
            family[kind] += bool(np.isfinite(result["p"]))
        retaining_key = ("RETAINING", r.model, r.column, r.task)
        if all_vs_retaining and r.row_key == "ALL" and retaining_key in pairs and len(pairs[key]) \
                and len(pairs[retaining_key]):
            result = _run_test(key, retaining_key, pairs, clusters, settings, bootstrap)
            note = result.pop("note")
            if note:
                notes[i] = "; ".join(x for x in (notes[i], f"vs Perception-retaining: {note}") if x)
            extra.append({"vs_retaining_mean": means[retaining_key], "vs_retaining_difference": result["difference"],
                          "vs_retaining_p": result["p"]})
            family["c"] += bool(np.isfinite(result["p"]))
        else:
            extra.append({"vs_retaining_mean": math.nan, "vs_retaining_difference": math.nan,
                          "vs_retaining_p": math.nan})
    for column in ("comparison", "reference_mean", "difference", "diff_ci_low", "diff_ci_high", "t", "p"):
        cells[column] = [x[column] for x in main]
    for column in ("vs_retaining_mean", "vs_retaining_difference", "vs_retaining_p"):
        cells[column] = [x[column] for x in extra]
    cells["test"] = [settings["test"] if c else "" for c in cells["comparison"]]
    # Bonferroni within each family (statistics.family): per (model, task, comparison kind), or the
    # whole table; a comparison without a defined p belongs to no family
    p_all = np.concatenate([cells["p"].to_numpy(dtype=float), cells["vs_retaining_p"].to_numpy(dtype=float)])
    kinds = [x["kind"] for x in main] + ["c"] * len(cells)
    models, tasks = list(cells["model"]) * 2, list(cells["task"]) * 2
    names = np.array(["" if not np.isfinite(p) else "table" if settings.get("family") == "table"
                      else f"{model}/{task}/{kind}" for p, kind, model, task in zip(p_all, kinds, models, tasks)],
                     dtype=object)
    adjusted, significant = np.full(p_all.shape, np.nan), np.zeros(p_all.shape, dtype=bool)
    sizes = np.zeros(p_all.shape, dtype=int)
    for name in sorted(set(names) - {""}):
        members = names == name
        adjusted[members], significant[members], sizes[members] = (*bonferroni(p_all[members])[:2], members.sum())
    n = len(cells)
    cells["family"], cells["vs_retaining_family"] = names[:n], names[n:]
    cells["family_size"], cells["vs_retaining_family_size"] = sizes[:n], sizes[n:]
    cells["p_adjusted"], cells["significant"] = adjusted[:n], significant[:n]
    cells["vs_retaining_p_adjusted"], cells["vs_retaining_significant"] = adjusted[n:], significant[n:]
    cells["direction"] = [
        direction(mean, ref) if sig else "" for mean, ref, sig in zip(cells["mean"], cells["reference_mean"], significant[:n])
    ]
    cells["vs_retaining_direction"] = [
        direction(mean, ref) if sig else ""
        for mean, ref, sig in zip(cells["mean"], cells["vs_retaining_mean"], significant[n:])
    ]
    cells["note"] = notes
    return family


def _notes(rows, index, skipped, pooled_out, cells, m, csv_name, settings) -> list[str]:
    notes = []
    tested = [c for row in rows if row.kind == "all" for c in row.conditions]
    for cid in tested:
        name = condition_label(cid) + (f" ({cid})" if condition_label(cid) != cid else "")
        if cid in skipped and skipped[cid].startswith("partial: "):
            notes.append(f"{name}: {skipped[cid][len('partial: '):]}; its cells use the others.")
        elif cid in skipped:
            notes.append(f"{name}: skipped on this corpus ({skipped[cid]}); its cells are empty and the "
                         "aggregate rows pool without it.")
        elif cid not in index.conditions_with_data:
            notes.append(f"{name}: no predictions; its cells are empty and the aggregate rows pool without it.")
    for (label, column), left in pooled_out.items():
        left_sorted = [c for c in tested if c in left]
        notes.append(
            f"{label} / {COLUMN_LABELS[column]}: pooled without {', '.join(left_sorted)} "
            "(no model held them out of training: no mismatched source)."
            if column == "mismatch" else
            f"{label} / {COLUMN_LABELS[column]}: pooled without {', '.join(left_sorted)} (no source model)."
        )
    dropped = cells["note"].astype(str).str.len().gt(0).sum()
    if dropped:
        notes.append(f"{int(dropped)} cell(s) with dropped (fold, rep) pairs or speakers, utterance sets that differ "
                     f"between the compared cells, or undefined tests: see the note column of {csv_name}.")
    if m == 0:
        units = "(fold, rep) pairs" if settings["test"] == "fold_ttest" else "speakers in common"
        notes.append(f"No comparison could be tested (fewer than 2 {units} per comparison).")
    elif settings["test"] == "speaker_permutation":
        n_speakers = int(cells["n_speakers"].max()) if len(cells) else 0
        smallest = max(1 / (settings["resamples"] + 1), 2 / 2 ** n_speakers if n_speakers < 64 else 0)
        smallest_m = min(_family_sizes(cells), default=m)  # the smallest family is the easiest to pass
        if smallest * smallest_m > ALPHA:
            notes.append(f"The permutation test's smallest p here is about {smallest:.2g} ({n_speakers} speakers, "
                         f"statistics.resamples = {settings['resamples']}), {smallest * smallest_m:.2g} after "
                         f"Bonferroni over m = {smallest_m}: no comparison can be significant; "
                         "raise statistics.resamples or choose another statistics.test.")
    return notes


def _family_sizes(cells: pd.DataFrame) -> list[int]:
    """The size of every Bonferroni family of a table (one entry per family)."""
    pairs = pd.concat([cells[["family", "family_size"]],
                       cells[["vs_retaining_family", "vs_retaining_family_size"]].set_axis(["family", "family_size"],
                                                                                           axis=1)])
    pairs = pairs[pairs["family"].astype(str) != ""].drop_duplicates("family")
    return [int(x) for x in pairs["family_size"]]


def uar_caption(table: UarTable, subject: str, *, asides: bool = True) -> str:
    """The caption of a UAR table (Table 3, Table 4): "<title>: UAR on <corpus> (...) of
    <subject>. ", then what rows, columns, statistics and marks mean, then the model notes.  ``asides``:
    say what each comparison asks and why No noise has empty noisy-training columns (Table 3's caption)."""
    tasks = ", ".join(f"{task_label(t)}: {t}" for t in table.tasks)
    corpus = f" on {table.corpus}" if table.corpus else ""
    hurts = " (does noise hurt the model trained on clean speech?)" if asides else ""
    helps = " (does training with noise help?)" if asides else ""
    empty = " (the paper leaves the noisy-training columns of No noise empty)" if asides else ""
    return (
        f"{table.title}: UAR{corpus} (mean over folds × repetitions) of {subject}. "
        "No noise: clean test speech. All noises**: every test condition, perception-altering ones included "
        "(uncertain ground truth). Perception-retaining: the perception-retaining conditions pooled; "
        "the environmental and signal distortion rows show perception-retaining conditions only. "
        "Clean: trained on clean speech; Clean+Noise Mismatch: trained with noise, tested on the noise type "
        "held out of training; Clean+Noise Match: trained with every perception-retaining noise type "
        "(All noises**: with every noise). Aggregate rows pool the predictions of their conditions, each from "
        f"its own source model. {tasks}. Chance UAR is 0.33. "
        + statistics_caption(table, hurts, helps) +
        f"{EMPTY}: no model for this cell{empty} or no predictions."
        + "".join(f" {note}" for note in table.model_notes + table.context_notes)
    )


def statistics_caption(table: UarTable, hurts: str = "", helps: str = "") -> str:
    """The caption's sentences on the test (what is paired, how many units), the Bonferroni family
    (its size and members), the marks and the confidence intervals."""
    settings, units, family = table.statistics, table.units, table.family
    test = settings.get("test", "fold_ttest")
    pairs = f"{units.get('pairs', 0)} (fold, repetition) pairs"
    if test == "speaker_jackknife":
        text = ("Significance: speaker-level paired test of the UAR difference: both sides predict the same test "
                f"utterances (paired at the utterance), clustered by the {units.get('speakers', 0)} test speakers "
                f"({units.get('utterances', 0)} clean test utterances per repetition, {pairs}); standard error by "
                "leaving out one speaker at a time (jackknife), two-sided p from Student's t with speakers − 1 "
                "degrees of freedom. ")
    elif test == "speaker_bootstrap":
        text = (f"Significance: speaker-level paired bootstrap of the UAR difference ({settings['resamples']} "
                "resamples): both sides predict the same test utterances (paired at the utterance) and the "
                f"{units.get('speakers', 0)} test speakers are resampled with replacement, each with all their "
                f"utterances ({units.get('utterances', 0)} clean test utterances per repetition, {pairs}); "
                "two-sided p of the difference over its bootstrap standard error (× √(S/(S−1)), S speakers), "
                "Student's t with S − 1 degrees of freedom. ")
    elif test == "speaker_permutation":
        n = units.get("speakers", 0)
        swaps = f"every one of the 2^{n} swap patterns" if 2 ** min(n, 64) <= settings["resamples"] \
            else f"{settings['resamples']} random swap patterns"
        text = (f"Significance: speaker-level paired permutation test of the UAR difference ({swaps}): the "
                "predictions of each of the "
                f"{units.get('speakers', 0)} test speakers are swapped between the two sides (paired at the "
                f"utterance; {units.get('utterances', 0)} clean test utterances per repetition, {pairs}). ")
    else:
        text = f"Significance: the paper's paired t-test over the {pairs}. "
    members = [f"{family.get('a', 0)} × (a) each row vs No noise in the Clean column{hurts}",
               f"{family.get('b', 0)} × (b) each row vs the Clean column of the same row in the Mismatch and Match "
               f"columns{helps}"]
    if family.get("c"):
        members.append(f"{family['c']} × (c) All noises** vs Perception-retaining in each column (RQ3)")
    if settings.get("family") == "table":
        text += (f"Bonferroni family: m = {table.m} comparisons of this table ({'; '.join(members)}; over every "
                 "model and task), ")
    else:
        sizes = _family_sizes(table.cells)
        text += (f"Bonferroni families: one per model, task and question, {len(sizes)} families of "
                 f"m = {min(sizes, default=0)}–{max(sizes, default=0)} comparisons (each cell's family and its m "
                 f"are in the CSV's family and family_size columns), {table.m} comparisons in all "
                 f"({'; '.join(members)}; statistics.family: table puts all of them in one family), ")
    text += (f"significant when adjusted p ≤ {ALPHA:g}. ↑/↓: significantly higher/lower than the "
             "reference of (a) or (b). ")
    if family.get("c"):
        text += "⇑/⇓ (All noises** row): significantly higher/lower than Perception-retaining in the same column. "
    if "ci" in settings and units.get("speakers"):
        shown = "; shown in brackets" if settings.get("show_ci") else ""
        text += (f"Each UAR's {settings['ci']:.0%} confidence interval (speaker-level bootstrap, percentile) is in "
                 f"the CSV (ci_low, ci_high){shown}. ")
    return text


# -- writers ---------------------------------------------------------------------------------


def _value_grid(table: UarTable):
    """Per row: list of cell texts in column order (model, column, task)."""
    show_ci = table.statistics.get("show_ci", False)
    values = {(r.row_key, r.model, r.column, r.task): r.value + (
        f" [{r.ci_low:.2f}, {r.ci_high:.2f}]" if show_ci and math.isfinite(r.ci_low) else "")
        for r in table.cells.itertuples()}
    grid = []
    for row in table.rows:
        grid.append([values[(row.key, m, c, t)] for m in table.models for c in COLUMNS for t in table.tasks])
    return grid


def _label_cells(table: UarTable):
    """(section header or None, first label, second label) per row, paper style (group shown once)."""
    out, last_section, last_group = [], "", None
    for row in table.rows:
        section = row.section if row.section != last_section else None
        last_section = row.section
        if row.group:
            first = row.group if row.group != last_group else ""
            second = row.label
        else:
            first, second = row.label, ""
        last_group = row.group or None
        out.append((section, first, second))
    return out


def to_markdown(table: UarTable) -> str:
    n_tasks = len(table.tasks)
    width = len(table.models) * len(COLUMNS) * n_tasks
    head_models = []
    for m in table.models:
        head_models += [table.label(m)] + [""] * (len(COLUMNS) * n_tasks - 1)
    head_regime = []
    head_sub = []
    for _ in table.models:
        head_regime += ["Clean"] + [""] * (n_tasks - 1) + ["Clean+Noise"] + [""] * (2 * n_tasks - 1)
        head_sub += [""] * n_tasks + ["Mismatch"] + [""] * (n_tasks - 1) + ["Match"] + [""] * (n_tasks - 1)
    head_tasks = [task_label(t) for _ in table.models for _ in COLUMNS for t in table.tasks]
    lines = [table.caption_text, ""]
    lines.append("| Noise | | " + " | ".join(head_models) + " |")
    lines.append("|---|---|" + "---:|" * width)
    lines.append("| | | " + " | ".join(head_regime) + " |")
    lines.append("| | | " + " | ".join(head_sub) + " |")
    lines.append("| | | " + " | ".join(head_tasks) + " |")
    for (section, first, second), values in zip(_label_cells(table), _value_grid(table)):
        if section:
            lines.append(f"| *{section}* | | " + " | ".join([""] * width) + " |")
        lines.append(f"| {first} | {second} | " + " | ".join(values) + " |")
    lines += markdown_notes(table.notes)
    return "\n".join(lines) + "\n"


def to_latex(table: UarTable) -> str:
    n_tasks = len(table.tasks)
    block = len(COLUMNS) * n_tasks
    ncols = 2 + len(table.models) * block
    lines = latex_open(table.title, table.caption_text, "ll" + ("c" * block) * len(table.models))
    models = " & ".join(rf"\multicolumn{{{block}}}{{c}}{{{tex_escape(table.label(m))}}}" for m in table.models)
    lines.append(f" & & {models} \\\\")
    lines.append("".join(rf"\cmidrule(lr){{{3 + i * block}-{2 + (i + 1) * block}}}" for i in range(len(table.models))))
    regime = " & ".join(
        rf"\multicolumn{{{n_tasks}}}{{c}}{{Clean}} & \multicolumn{{{2 * n_tasks}}}{{c}}{{Clean+Noise}}" for _ in table.models
    )
    lines.append(f" & & {regime} \\\\")
    rules = []
    for i in range(len(table.models)):
        start = 3 + i * block
        rules.append(rf"\cmidrule(lr){{{start + n_tasks}-{start + block - 1}}}")
    lines.append("".join(rules))
    sub = " & ".join(
        " & ".join([""] * n_tasks)
        + rf" & \multicolumn{{{n_tasks}}}{{c}}{{Mismatch}} & \multicolumn{{{n_tasks}}}{{c}}{{Match}}"
        for _ in table.models
    )
    lines.append(f" & & {sub} \\\\")
    tasks = " & ".join(task_label(t) for _ in table.models for _ in COLUMNS for t in table.tasks)
    lines.append(f" & & {tasks} \\\\")
    lines.append(r"\midrule")
    for (section, first, second), values in zip(_label_cells(table), _value_grid(table)):
        if section:
            lines.append(r"\addlinespace")
            lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{tex_escape(section)}}}}} \\")
        cells = [tex_escape(first), tex_escape(second)] + [tex_escape(v) for v in values]
        lines.append(" & ".join(cells) + r" \\")
    lines += latex_close(table.notes)
    return "\n".join(lines) + "\n"


def to_html(table: UarTable) -> str:
    """A standalone HTML page of the table (for the Snakemake report)."""
    n_tasks = len(table.tasks)
    block = len(COLUMNS) * n_tasks
    e = html.escape
    head = ["<tr><th rowspan='4' colspan='2'>Noise</th>"
            + "".join(f"<th colspan='{block}'>{e(table.label(m))}</th>" for m in table.models) + "</tr>"]
    head.append("<tr>" + "".join(
        f"<th colspan='{n_tasks}' rowspan='2'>Clean</th><th colspan='{2 * n_tasks}'>Clean+Noise</th>"
        for _ in table.models) + "</tr>")
    head.append("<tr>" + "".join(
        f"<th colspan='{n_tasks}'>Mismatch</th><th colspan='{n_tasks}'>Match</th>" for _ in table.models) + "</tr>")
    head.append("<tr>" + "".join(f"<th>{e(task_label(t))}</th>" for _ in table.models for _ in COLUMNS
                                 for t in table.tasks) + "</tr>")
    body = []
    for (section, first, second), values in zip(_label_cells(table), _value_grid(table)):
        if section:
            body.append(f"<tr class='section'><td colspan='{2 + len(values)}'><em>{e(section)}</em></td></tr>")
        tds = "".join(f"<td class='{'sig' if set(v) & set(MARKS.values()) else ''}'>{e(v)}</td>" for v in values)
        body.append(f"<tr><th>{e(first)}</th><th>{e(second)}</th>{tds}</tr>")
    notes = "".join(f"<li>{e(n)}</li>" for n in table.notes)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(table.title)}</title><style>"
        "body{font-family:sans-serif;font-size:14px} table{border-collapse:collapse}"
        "th,td{padding:2px 8px;text-align:center;border-bottom:1px solid #ddd} tbody th{text-align:left;font-weight:normal}"
        "td.sig{font-weight:bold} tr.section td{text-align:left;background:#f4f4f4}"
        "caption{caption-side:top;text-align:left;max-width:70em;margin-bottom:8px}</style></head><body>"
        f"<table><caption>{e(table.caption_text)}</caption><thead>{''.join(head)}</thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
        + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else "")
        + "</body></html>\n"
    )


def write_uar_table(table: UarTable, csv=None, markdown=None, latex=None, html_path=None) -> None:
    write_table_files(table.cells, csv, table, ((markdown, to_markdown), (latex, to_latex), (html_path, to_html)))


def run_table_rule(smk, log, build, **options) -> UarTable:
    """Rules make_table3 and make_table4: the table that ``build``
    (:func:`sernoise.evaluation.table3.build_table3`, :func:`sernoise.evaluation.table4.build_table4`)
    makes of the rule's inputs (``confusion``, ``statuses``) and params (``settings``: rules/common.smk
    evaluation_settings; ``corpus``), with ``options`` (e.g. ``exclude``), written to the rule's outputs
    (csv, markdown, latex, html) and logged."""
    # the perception classes of the partition input (study or config), named in the caption
    settings = settings_under_partition(smk.params.settings, optional_partition(getattr(smk.input, "partition", None)))
    table = build(
        read_confusion(smk.input.confusion),
        settings["config"],
        [ConditionInfo.of(c) for c in settings["conditions"]],
        tested=settings["tested"],
        skipped=skipped_from_statuses(smk.input.statuses),
        corpus=smk.params.corpus,
        regimes=settings["regimes"],
        model_labels=settings.get("model_labels"),
        model_notes=settings.get("model_notes"),
        model_regimes=settings.get("model_regimes"),
        flagged=read_flags(smk.input.flags) if hasattr(smk.input, "flags") else None,
        speakers=read_speaker_confusion(smk.input.speaker_confusion) if hasattr(smk.input, "speaker_confusion")
        else None,
        statistics=getattr(smk.params, "statistics", None),
        **options,
    )
    table.context_notes.append(settings["partition_note"])
    out = smk.output
    write_uar_table(table, csv=out.csv, markdown=out.markdown, latex=out.latex, html_path=out.html)
    log.info("%s: %d cells, %s, m = %d comparisons %s, %d significant (%d of them All noises** vs "
             "Perception-retaining)", table.title, len(table.cells), table.statistics["test"], table.m, table.family,
             int(table.cells["significant"].sum() + table.cells["vs_retaining_significant"].sum()),
             int(table.cells["vs_retaining_significant"].sum()))
    for note in table.notes:
        log.info("note: %s", note)
    return table


def _skip_examples(params_csv: Path) -> dict[str, str]:
    """Reason kind (numbers masked, as status.json counts them) -> the first skipped utterance's
    reason of that kind, numbers included (from the dataset's params.csv, when it is there)."""
    from sernoise.augmented_io import reason_kind

    if not params_csv.is_file():
        return {}
    examples: dict[str, str] = {}
    for status in pd.read_csv(params_csv, usecols=["status"], dtype=str, keep_default_na=False)["status"]:
        if status.startswith("skipped"):
            reason = status.partition(":")[2].strip() or status
            examples.setdefault(reason_kind(reason), f"e.g. {reason}")
    return examples


def skipped_from_statuses(paths) -> dict[str, str]:
    """Condition id -> reason, from the augmented test sets' status.json: the whole condition
    skipped (``skipped``), or some of its utterances (``n_skipped`` > 0; the reason says how many)."""
    skipped = {}
    for path in paths:
        status = json.loads(Path(path).read_text(encoding="utf-8"))
        cid = status.get("condition") or Path(path).parent.parent.name
        if status.get("skipped"):
            skipped[cid] = status.get("reason") or "no reason given"
        elif status.get("n_skipped"):
            total = int(status.get("n_ok", 0)) + int(status["n_skipped"])
            examples = _skip_examples(Path(path).with_name("params.csv"))
            reasons = ", ".join(examples.get(kind, kind) for kind in sorted(status.get("skip_reasons") or {}))
            reasons = reasons or "no reason given"
            skipped[cid] = f"partial: {status['n_skipped']} of {total} utterances skipped ({reasons})"
    return skipped
