"""The Latif stage's jobs (rules/latif.smk); each takes the rule's ``snakemake`` object.

* :func:`make_folds`: leave-one-speaker-out folds of the main corpus (``latif/folds.csv``);
* :func:`make_selection_split`: the cross-corpus target's seeded selection/test split;
* :func:`spectrogram_shard`: one segment archive (clean, speed, noisy) of one audio shard;
* :func:`train_run`: one training (within-corpus run or cross-corpus run) and its predictions;
* :func:`make_tables`, :func:`make_cross_corpus`: Tables 1-3 and the cross-corpus table + figure.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from sernoise.latif.plan import AUGMENTATIONS, AUGMENTATION_LABELS
from sernoise.runlog import rule_log
from sernoise.seeds import derive_seed, rng_for

SAMPLE_RATE = 16_000
CLEAN = "clean"
SELECTION, TEST = "val", "test"  # roles of the cross-corpus split (sernoise.folds.cross_corpus_split)


def _labels(manifest: pd.DataFrame, section: dict, config: dict, corpus: str) -> tuple[dict, object]:
    """utt_id -> class index of the stage's task, and the task."""
    from sernoise.tasks import get_task
    from sernoise.training.data import labels_of

    task = get_task(section["task"], config)
    return labels_of(manifest, task, corpus=corpus, config=config), task


def noisy_item_id(utt_id: str, snr: float) -> str:
    return f"{utt_id}~snr{snr:g}"


def speed_item_id(utt_id: str, factor: float) -> str:
    return f"{utt_id}~speed{factor:g}"


# ------------------------------------------------------------------------------ segments


def spectrogram_shard(smk) -> None:
    """The log-spectrogram segments of one audio shard's labelled utterances: ``clean``; ``speed`` (a SoX
    ``speed`` copy per factor); ``noisy`` (per test SNR, one noise category drawn per utterance and SNR, a
    recording of the bank's test pool mixed at that SNR, as the paper's "randomly added" noises)."""
    from sernoise.audio_store import AudioStore
    from sernoise.corpora.manifest import read_manifest

    with rule_log(smk) as log:
        wc, section = smk.wildcards, smk.params.section
        manifest = read_manifest(smk.input.manifest)
        labels, _ = _labels(manifest, section, smk.config, wc.corpus)
        store = AudioStore([smk.input.shard])
        utts = [u for u in store.utt_ids if u in labels]
        log.info("set %s, shard %s: %d labelled utterances of %d", wc.set, wc.shard, len(utts), len(store.utt_ids))
        tick = time.perf_counter()
        if wc.set == "clean":
            items, rows = _clean_items(store, utts)
        elif wc.set == "speed":
            items, rows = _speed_items(store, utts, section["speed_factors"])
        else:
            items, rows = _noisy_items(smk, store, utts, section, log)
        _write(items, rows, labels, smk.output.segments, smk.output.params, section)
        seconds = time.perf_counter() - tick
        log.info("%d items in %.1f s (%.1f items/s)", len(items), seconds, len(items) / max(seconds, 1e-9))


def _clean_items(store, utts):
    from sernoise.latif.spectrogram import log_spectrogram

    items, rows = [], []
    for utt in utts:
        x = store.read(utt)
        items.append((utt, utt, log_spectrogram(x, SAMPLE_RATE)))
        rows.append({"item_id": utt, "utt_id": utt, "status": "ok", "seconds": len(x) / SAMPLE_RATE})
    return items, rows


def _speed_items(store, utts, factors):
    from sernoise.latif.spectrogram import log_spectrogram
    from sernoise.latif.speed import speed_perturb

    items, rows = [], []
    for utt in utts:
        x = store.read(utt)
        for factor in factors:
            y = speed_perturb(x, SAMPLE_RATE, float(factor))
            item = speed_item_id(utt, factor)
            items.append((item, utt, log_spectrogram(y, SAMPLE_RATE)))
            rows.append({"item_id": item, "utt_id": utt, "status": "ok", "factor": float(factor),
                         "seconds": len(y) / SAMPLE_RATE, "length_ratio": len(y) / max(len(x), 1)})
    return items, rows


def _noisy_items(smk, store, utts, section, log):
    from sernoise.conditions.pool import NoisePool
    from sernoise.latif.spectrogram import log_spectrogram
    from sernoise.metricaug.superset import noisy_items

    noise = NoisePool(list(zip(smk.input.banks, smk.input.bank_audio)), "test")
    categories, seed = list(section["noisy"]["categories"]), smk.params.seed
    items, rows = [], []
    for utt in utts:
        x = store.read(utt)
        for snr in section["noisy"]["snr_db"]:
            category = categories[int(rng_for(seed, "latif", "noisy", utt, f"{snr:g}").integers(len(categories)))]
            ((item, y),) = noisy_items(utt, x, categories=[category], snrs=[float(snr)], noise=noise, seed=seed,
                                       tag="latif", reference=smk.params.snr_reference, metrics=(), keep_audio=True)
            row = {**item.row, "item_id": noisy_item_id(utt, snr), "snr_db": float(snr)}
            rows.append(row)
            if y is None:  # the condition skipped it (reason in status)
                log.warning("%s at %g dB: %s", utt, snr, row["status"])
                continue
            items.append((row["item_id"], utt, log_spectrogram(y, SAMPLE_RATE)))
    return items, rows


def _write(items, rows, labels, segments_path, params_path, section) -> None:
    """The items' segments (``latif.context`` frames, ``latif.hop`` apart), each item labelled with its
    utterance's class, in one archive; the drawn parameters of every item (skipped ones too) in params."""
    from sernoise.latif.spectrogram import segment, write_segment_archive

    context, hop = int(section["context"]), section["hop"]
    write_segment_archive(segments_path, ((item, labels[utt], segment(spec, context, hop)) for item, utt, spec in items),
                          context=context)
    pd.DataFrame(rows).to_csv(params_path, index=False, lineterminator="\n", float_format="%.6f")


# ------------------------------------------------------------------------------ folds and splits


def make_folds(smk) -> None:
    """Leave-one-speaker-out folds of the main corpus; ``latif.n_folds`` must be its speaker count."""
    from sernoise.corpora.manifest import read_manifest
    from sernoise.folds import check_loso_folds, make_loso_folds

    with rule_log(smk) as log:
        section = smk.params.section
        manifest = read_manifest(smk.input.manifest)
        folds = make_loso_folds(manifest)
        check_loso_folds(manifest, folds)
        n = int(folds["fold"].nunique())
        if n != int(section["n_folds"]):
            raise ValueError(f"config key latif.n_folds: {section['n_folds']}, but {smk.input.manifest} has {n} "
                             f"speakers (one leave-one-speaker-out fold each); set latif.n_folds: {n}")
        folds.to_csv(smk.output[0], index=False, lineterminator="\n")
        log.info("%d leave-one-speaker-out folds of %d utterances", n, len(manifest))


def make_selection_split(smk) -> None:
    """The cross-corpus target's split: a seeded, label-stratified ``selection_fraction`` for model selection,
    the rest for test."""
    from sernoise.corpora.manifest import read_manifest
    from sernoise.folds import cross_corpus_split

    with rule_log(smk) as log:
        section = smk.params.section
        manifest = read_manifest(smk.input.manifest)
        labels, _ = _labels(manifest, section, smk.config, smk.wildcards.corpus)
        split = cross_corpus_split(manifest, seed=derive_seed(smk.params.seed, "latif", "selection", smk.wildcards.corpus),
                                   val_fraction=float(section["cross_corpus"]["selection_fraction"]), labels=labels)
        split[["utt_id", "speaker", "label", "role"]].to_csv(smk.output[0], index=False, lineterminator="\n")
        log.info("%s: %s", smk.wildcards.corpus, split["role"].value_counts().to_dict())


# ------------------------------------------------------------------------------ training


def _segment_set(segments: dict, items: list[tuple[str, str]], labels: dict, norm, what: str):
    """Normalised segments of ``items`` ((item_id, utt_id) pairs): (segments, segment -> utterance index,
    utterance ids in order, their class indices)."""
    from sernoise.latif.spectrogram import apply_normaliser

    if not items:
        raise ValueError(f"{what}: no labelled utterances")
    utts = list(dict.fromkeys(u for _, u in items))
    position = {u: i for i, u in enumerate(utts)}
    blocks = [segments[item] for item, _ in items]
    index = np.concatenate([np.full(len(b), position[utt], dtype=np.int64) for b, (_, utt) in zip(blocks, items)])
    return (apply_normaliser(np.concatenate(blocks), *norm), index, utts,
            np.asarray([labels[u] for u in utts], np.int64))


def _fold_roles(folds: pd.DataFrame, manifest: pd.DataFrame, fold: int) -> dict[str, list[str]]:
    """role -> the fold's utt_ids (train, val, test)."""
    from sernoise.folds import split_of

    return {role: sorted(split_of(manifest, folds, fold, role)["utt_id"].astype(str)) for role in ("train", "val", "test")}


def _run_data(smk, section, labels):
    """(train items, validation items, test sets {name: items}, specs) of a within-corpus or cross-corpus run."""
    from sernoise.corpora.manifest import read_manifest
    from sernoise.latif.spectrogram import archive_utt_ids, read_segments

    wc = smk.wildcards
    speed, _ = AUGMENTATIONS[wc.augmentation]
    manifest = read_manifest(smk.input.manifest)
    if hasattr(wc, "target"):  # cross-corpus: every labelled utterance of the corpus trains
        train = sorted(u for u in manifest["utt_id"].astype(str) if u in labels)
        target_manifest = read_manifest(smk.input.target_manifest)
        target_labels, _ = _labels(target_manifest, section, smk.config, wc.target)
        split = pd.read_csv(smk.input.target_split, dtype={"utt_id": str})
        val = sorted(split.loc[split["role"] == SELECTION, "utt_id"])
        test = sorted(split.loc[split["role"] == TEST, "utt_id"])
        labels = {**labels, **{u: target_labels[u] for u in val + test}}
        specs = read_segments(smk.input.clean, train)
        specs.update(read_segments(smk.input.target_clean, val + test))
        test_sets = {"cross": [(u, u) for u in test]}
        speakers = dict(zip(target_manifest["utt_id"].astype(str), target_manifest["speaker"].astype(str)))
    else:
        folds = pd.read_csv(smk.input.folds, dtype={"speaker": str, "group": str})
        roles = _fold_roles(folds, manifest, int(wc.fold))
        train, val, test = ([u for u in roles[r] if u in labels] for r in ("train", "val", "test"))
        specs = read_segments(smk.input.clean, train + val + test)
        test_sets = {CLEAN: [(u, u) for u in test]}
        noisy_ids = {}
        for snr in section["noisy"]["snr_db"]:
            noisy_ids[f"snr{snr:g}"] = [(noisy_item_id(u, snr), u) for u in test]
        wanted = [i for items in noisy_ids.values() for i, _ in items]
        # A noisy copy the condition skipped (reason in the shard's params) is absent: scored without it.
        present = {i for path in smk.input.noisy for i in archive_utt_ids(path)}
        specs.update(read_segments(smk.input.noisy, [i for i in wanted if i in present]))
        test_sets.update({name: [(i, u) for i, u in items if i in present] for name, items in noisy_ids.items()})
        speakers = dict(zip(manifest["utt_id"].astype(str), manifest["speaker"].astype(str)))
    train_items = [(u, u) for u in train]
    if speed:
        copies = [(speed_item_id(u, f), u) for u in train for f in section["speed_factors"]]
        specs.update(read_segments(smk.input.speed, [i for i, _ in copies]))
        train_items += copies
    return train_items, [(u, u) for u in val], test_sets, specs, labels, speakers


def train_run(smk) -> None:
    """One training of a Latif model (rules latif_train, latif_cross_train) and its predictions: within a
    corpus, its fold's test speaker clean, in noise at each SNR and under FGSM and BIM; cross-corpus, the
    target's test share."""
    import torch
    import yaml

    from sernoise.latif.adversarial import adversarial_predictions
    from sernoise.latif.models import build_model
    from sernoise.latif.spectrogram import fit_normaliser
    from sernoise.latif.training import LatifSettings, SegmentData, predict_utterances, train_segments

    with rule_log(smk) as log:
        wc, section = smk.wildcards, smk.params.section
        torch.set_num_threads(int(smk.threads))
        from sernoise.corpora.manifest import read_manifest

        labels, task = _labels(read_manifest(smk.input.manifest), section, smk.config, wc.corpus)
        train_items, val_items, test_sets, specs, labels, speakers = _run_data(smk, section, labels)
        norm = fit_normaliser(np.concatenate([specs[i] for i, _ in train_items]))
        context, hop = int(section["context"]), section["hop"]
        train = _segment_set(specs, train_items, labels, norm, "training set")
        val = _segment_set(specs, val_items, labels, norm, "validation set")
        where = ("cross", wc.target, wc.model, wc.augmentation, f"rep{wc.rep}") if hasattr(wc, "target") else \
            (wc.model, wc.augmentation, f"fold{wc.fold}", f"rep{wc.rep}")
        seed = derive_seed(smk.params.seed, "latif", wc.corpus, *where)
        _, mixup = AUGMENTATIONS[wc.augmentation]
        training = section["training"]
        settings = LatifSettings.from_mapping(training, mixup=mixup, seed=seed, device=smk.params.device)
        n_classes = len(task.labels)
        log.info("%s, %s: %d training segments (%d utterances), %d validation segments; seed %d",
                 wc.model, AUGMENTATION_LABELS[wc.augmentation], len(train[0]), len(train[2]), len(val[0]), seed)
        result = train_segments(lambda: build_model(wc.model, n_classes, n_bins=train[0].shape[2], context=context),
                                SegmentData(train[0], train[1], train[3]), SegmentData(val[0], val[1], val[3]),
                                settings, tag=f"{wc.model}/{wc.augmentation}: ")
        model, seconds = result.model, result.seconds
        rows = []

        def add(test_set, utts, scored):
            indices, posteriors = scored  # utterance indices into utts, their mean posteriors
            for i, p in zip(indices, posteriors):
                utt = utts[int(i)]
                rows.append({"utt_id": utt, "speaker": speakers.get(utt, ""), "test_set": test_set,
                             "label": task.labels[labels[utt]], "prediction": task.labels[int(np.argmax(p))],
                             **{f"p_{c}": float(v) for c, v in zip(task.labels, p)}})

        for name, items in test_sets.items():
            if not items:
                log.warning("test set %s is empty", name)
                continue
            segments, index, utts, _ = _segment_set(specs, items, labels, norm, f"test set {name}")
            add(name, utts, predict_utterances(model, segments, index))
        if not hasattr(wc, "target"):
            adv = section["adversarial"]
            segments, index, utts, targets = _segment_set(specs, test_sets[CLEAN], labels, norm, "test set")
            for attack, options in (("fgsm", {"eps": adv["epsilon"]}),
                                    ("bim", {"eps": adv["epsilon"], "step": adv["bim_step"],
                                             "iterations": adv["bim_iterations"]})):
                add(attack, utts, adversarial_predictions(model, segments, index, targets, attack, **options))
        predictions = pd.DataFrame(rows).assign(model=wc.model, augmentation=wc.augmentation,
                                                fold=int(getattr(wc, "fold", 0)), rep=int(wc.rep))
        predictions.to_csv(smk.output.predictions, index=False, lineterminator="\n", float_format="%.6f")
        torch.save(result.state_dict, smk.output.model)
        np.savez(smk.output.norm, mean=norm[0], std=norm[1])
        pd.DataFrame(result.history).to_csv(smk.output.history, index=False, lineterminator="\n", float_format="%.6f")
        hparams = {"model": wc.model, "augmentation": wc.augmentation, "seed": seed, "n_classes": n_classes,
                   "classes": list(task.labels), "task": section["task"], "context": context, "hop": hop,
                   "speed_factors": list(section["speed_factors"]) if AUGMENTATIONS[wc.augmentation][0] else [],
                   "training": dict(training), "adversarial": dict(section["adversarial"]),
                   "parameters": int(sum(p.numel() for p in model.parameters())),
                   "training_segments": int(len(train[0])), "best_epoch": int(result.best_epoch),
                   "torch": str(torch.__version__)}  # no timings here: same config, same bytes
        with open(smk.output.hparams, "w", encoding="utf-8") as handle:
            yaml.safe_dump(hparams, handle, sort_keys=False)
        log.info("trained in %.1f s (best epoch %d); %d prediction rows", seconds, result.best_epoch, len(rows))


# ------------------------------------------------------------------------------ tables


def make_tables(smk) -> None:
    from sernoise.latif.models import MODEL_LABELS
    from sernoise.latif.tables import ATTACK_LABELS, cells, read_predictions, run_uars, write_table

    with rule_log(smk) as log:
        section, corpus = smk.params.section, smk.wildcards.corpus
        uars = run_uars(read_predictions(smk.input.runs))
        models, augmentations = list(section["models"]), list(section["augmentations"])
        runs = f"{len(smk.params.folds)} of {section['n_folds']} leave-one-speaker-out folds x {len(smk.params.reps)} " \
               "repetition(s)"
        out = smk.output
        table1 = cells(uars, [(CLEAN, "clean")], models, augmentations, "table1")
        table1["column"] = [AUGMENTATION_LABELS[a] for a in table1["augmentation"]]
        write_table(table1, {"csv": out.table1_csv, "md": out.table1_md, "tex": out.table1_tex}, "Latif Table 1",
                    f"UAR (%) of the models on {corpus}, clean test speakers, per training setting.",
                    [f"Runs: {runs}."], MODEL_LABELS, by_augmentation=False)
        snrs = [(f"snr{s:g}", f"{s:g} dB") for s in section["noisy"]["snr_db"]]
        write_table(cells(uars, snrs, models, augmentations, "table2"),
                    {"csv": out.table2_csv, "md": out.table2_md, "tex": out.table2_tex}, "Latif Table 2",
                    f"UAR (%) on {corpus} in noise: models trained on clean data, test speakers mixed with one noise "
                    f"drawn per utterance and SNR.",
                    [f"Noise: the categories {', '.join(section['noisy']['categories'])} of the project's noise bank "
                     "(test pool) stand in for DEMAND's kitchen, park, station, traffic and cafeteria.",
                     f"Runs: {runs}."], MODEL_LABELS, by_augmentation=True)
        adv = section["adversarial"]
        write_table(cells(uars, list(ATTACK_LABELS.items()), models, augmentations, "table3"),
                    {"csv": out.table3_csv, "md": out.table3_md, "tex": out.table3_tex}, "Latif Table 3",
                    f"UAR (%) on {corpus} under white-box attacks on the normalised spectrogram (ε = {adv['epsilon']:g}).",
                    [f"BIM: {adv['bim_iterations']} steps of {adv['bim_step']:g}, projected on the L∞ ε-ball.",
                     f"Runs: {runs}."], MODEL_LABELS, by_augmentation=True)
        log.info("tables from %d runs", len(uars.groupby(["model", "augmentation", "fold", "rep"])))


def make_cross_corpus(smk) -> None:
    from sernoise.latif.models import MODEL_LABELS
    from sernoise.latif.tables import cells, read_predictions, run_uars, write_table

    with rule_log(smk) as log:
        section, corpus = smk.params.section, smk.wildcards.corpus
        target = section["cross_corpus"]["target"]
        uars = run_uars(read_predictions(smk.input.cross))
        models, augmentations = list(section["models"]), list(section["augmentations"])
        frame = cells(uars, [("cross", "cross-corpus")], models, augmentations, "cross_corpus")
        share = round(100 * section["cross_corpus"]["selection_fraction"])
        write_table(frame, {"csv": smk.output.csv, "md": smk.output.md, "tex": smk.output.tex},
                    "Latif cross-corpus", f"Cross-corpus UAR (%): trained on {corpus}, selected on {share} % of "
                    f"{target}, tested on the other {100 - share} % (Figure 2).",
                    [f"Runs: {len(smk.params.reps)} repetition(s)."], MODEL_LABELS, by_augmentation=False)
        plot_cross_corpus(frame, smk.output.png, MODEL_LABELS, f"Cross-corpus: {corpus} → {target}")
        log.info("cross-corpus table and figure from %d runs", len(uars))


def plot_cross_corpus(frame: pd.DataFrame, path, model_labels: dict, title: str) -> None:
    """Grouped bars: UAR per model (groups) and training setting (bars), ± std whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(frame["model"]))
    augmentations = list(dict.fromkeys(frame["augmentation"]))
    width = 0.8 / len(augmentations)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(models), 3.6))
    for k, augmentation in enumerate(augmentations):
        part = frame[frame["augmentation"] == augmentation].set_index("model").reindex(models)
        x = np.arange(len(models)) + (k - (len(augmentations) - 1) / 2) * width
        std = part["std"].to_numpy(dtype=float) * 100
        ax.bar(x, part["mean"].to_numpy(dtype=float) * 100, width, yerr=None if np.isnan(std).all() else
               np.nan_to_num(std), capsize=2, label=AUGMENTATION_LABELS[augmentation])
    ax.set_xticks(np.arange(len(models)), [model_labels.get(m, m) for m in models], rotation=15, ha="right")
    ax.set_ylabel("UAR (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)
