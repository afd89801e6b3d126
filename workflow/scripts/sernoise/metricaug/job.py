"""The MetricAug stage's jobs (rules/metricaug.smk); each takes the rule's ``snakemake`` object.

* :func:`noisy_shard`: one noisy set (superset, fixed, test, unseen; :func:`set_spec`) of one clean
  audio shard: features.h5 (log Mel filterbanks of the stored noisy audio) + params.csv;
* :func:`copypaste_fold`: the CopyPaste items of one fold's training utterances, clean and noisy;
* :func:`levels_fold`: every (metric, level method) quantisation of one fold's superset
  (training and validation utterances), levels.csv + levels.json + levels.png;
* :func:`train_method`: one (method, fold, repetition): the head trained on the method's data,
  its predictions on the fold's test sets (clean, noise at each test SNR, unseen noise);
* :func:`make_table`: Wu & Lee's Table 2 layout (and Table 3) from every predictions file.

Methods: ``none`` (clean only), ``fixed`` (clean + noise at the fixed SNRs), ``copypaste``
(clean + CopyPaste items, both also at the fixed SNRs), ``metricaug-<metric>-<levels>``.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd

from sernoise.metricaug.levels import quantise
from sernoise.metricaug.names import BASELINES, CLEAN_SET, SETS, methods, table_columns
from sernoise.metricaug.superset import SupersetError, noisy_items, snr_grid
from sernoise.runlog import rule_log
from sernoise.seeds import derive_seed, rng_for


def set_spec(section: dict, name: str) -> dict:
    """The noise, SNRs, pool and metrics of a noisy set (config section ``metricaug``)."""
    categories = list(section["categories"])
    if name == "superset":
        return {"categories": categories, "snrs": snr_grid(*section["superset"]["snr_db"]), "random_snr": None,
                "pool": "train", "metrics": tuple(section["metrics"])}
    if name == "fixed":
        return {"categories": categories, "snrs": [float(s) for s in section["fixed_snr_db"]], "random_snr": None,
                "pool": "train", "metrics": ()}
    if name == "test":
        return {"categories": categories, "snrs": [float(s) for s in section["test_snr_db"]], "random_snr": None,
                "pool": "test", "metrics": ()}
    if name == "unseen":
        low, high = section["unseen_snr_db"]
        return {"categories": [section["unseen_category"]], "snrs": None, "random_snr": (float(low), float(high)),
                "pool": "test", "metrics": ()}
    raise SupersetError(f"unknown MetricAug set {name!r}; known {list(SETS)}")


def task_labels(manifest: pd.DataFrame, section: dict, config: dict, corpus: str) -> tuple[dict, object]:
    from sernoise.tasks import get_task
    from sernoise.training.data import labels_of

    task = get_task(section["task"], config)
    return labels_of(manifest, task, corpus=corpus, config=config), task


def _noise_pool(smk, pool: str):
    from sernoise.conditions.pool import NoisePool

    return NoisePool(list(zip(smk.input.banks, smk.input.bank_audio)), pool)


def _write_items(items, features_path, params_path) -> pd.DataFrame:
    from sernoise.features import write_feature_archive

    write_feature_archive(features_path, [(it.item_id, it.features) for it in items if it.features is not None])
    rows = pd.DataFrame([it.row for it in items])
    rows.to_csv(params_path, index=False, lineterminator="\n", float_format="%.6f")
    return rows


# ------------------------------------------------------------------------------ noisy sets


def noisy_shard(smk) -> None:
    from sernoise.audio_store import AudioStore
    from sernoise.corpora.manifest import read_manifest

    with rule_log(smk) as log:
        wc, section = smk.wildcards, smk.params.section
        spec = set_spec(section, wc.set)
        manifest = read_manifest(smk.input.manifest)
        labels, _ = task_labels(manifest, section, smk.config, wc.corpus)
        store = AudioStore([smk.input.shard])
        utts = [u for u in store.utt_ids if u in labels]
        noise = _noise_pool(smk, spec["pool"])
        log.info("set %s, shard %s: %d labelled utterances x %d categories x %s SNRs (pool %s, metrics %s)",
                 wc.set, wc.shard, len(utts), len(spec["categories"]), spec["snrs"] or spec["random_snr"],
                 spec["pool"], list(spec["metrics"]))
        tick, items = time.perf_counter(), []
        for utt in utts:
            items += noisy_items(utt, store.read(utt), categories=spec["categories"], snrs=spec["snrs"],
                                 random_snr=spec["random_snr"], noise=noise, seed=smk.params.seed,
                                 tag=wc.set, reference=smk.params.snr_reference, metrics=spec["metrics"])
        rows = _write_items(items, smk.output.features, smk.output.params)
        seconds = time.perf_counter() - tick
        log.info("%d items (%d ok) in %.1f s: %.2f items/s", len(rows), int((rows["status"] == "ok").sum()) if len(rows)
                 else 0, seconds, len(rows) / max(seconds, 1e-9))


def copypaste_fold(smk) -> None:
    from sernoise.audio_store import AudioStore
    from sernoise.corpora.manifest import read_manifest
    from sernoise.features import log_mel_fbank
    from sernoise.metricaug.copypaste import paste, plan_copypaste
    from sernoise.metricaug.superset import NoisyItem
    from sernoise.training.data import role_utterances

    with rule_log(smk) as log:
        wc, section, seed = smk.wildcards, smk.params.section, smk.params.seed
        fold = int(wc.fold)
        manifest = read_manifest(smk.input.manifest)
        folds = pd.read_csv(smk.input.folds, dtype={"group": str})
        labels, task = task_labels(manifest, section, smk.config, wc.corpus)
        train = [u for u in role_utterances(manifest, folds, fold, "train") if u in labels]
        store = AudioStore.from_index(smk.input.index)
        audio = {u: store.read(u) for u in train}
        options = section["copypaste"]
        plan = plan_copypaste(train, [task.labels[labels[u]] for u in train], [audio[u].size for u in train],
                              rng_for(seed, "metricaug", "copypaste", fold), fraction=options["fraction"],
                              max_part_seconds=options["max_part_seconds"], prefix=f"cp{fold}-")
        spec = set_spec(section, "fixed")
        noise = _noise_pool(smk, "train")
        items = []
        for pasted in plan:
            y = paste(pasted, audio)
            row = {"item_id": pasted.item_id, "utt_id": pasted.item_id, "category": CLEAN_SET, "status": "ok",
                   "label": pasted.label, "scheme": pasted.scheme, "parts": "+".join(pasted.parts),
                   "windows": json.dumps(pasted.windows)}
            items.append(NoisyItem(pasted.item_id, log_mel_fbank(y), row))
            for item in noisy_items(pasted.item_id, y, categories=spec["categories"], snrs=spec["snrs"], noise=noise,
                                    seed=seed, tag=f"copypaste-fold{fold}", reference=smk.params.snr_reference,
                                    metrics=()):
                item.row.update(label=pasted.label, scheme=pasted.scheme)
                items.append(item)
        rows = _write_items(items, smk.output.features, smk.output.params)
        log.info("fold %d: %d training utterances -> %d CopyPaste items, %d with noise", fold, len(train), len(plan),
                 len(rows) - len(plan))


# ------------------------------------------------------------------------------ levels


def read_set_params(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"utt_id": str, "item_id": str}) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["item_id", "utt_id", "status"])


def levels_fold(smk) -> None:
    from sernoise.corpora.manifest import read_manifest
    from sernoise.training.data import role_utterances

    with rule_log(smk) as log:
        wc, section, seed = smk.wildcards, smk.params.section, smk.params.seed
        fold = int(wc.fold)
        manifest = read_manifest(smk.input.manifest)
        folds = pd.read_csv(smk.input.folds, dtype={"group": str})
        role = {u: r for r in ("train", "val") for u in role_utterances(manifest, folds, fold, r)}
        params = read_set_params(smk.input.params)
        items = params[(params["status"] == "ok") & params["utt_id"].isin(role)].sort_values("item_id")
        items = items.reset_index(drop=True)
        out = items[["item_id", "utt_id", "category", "snr_target", *section["metrics"]]].copy()
        out.insert(2, "role", out["utt_id"].map(role))
        summaries = []
        for metric in section["metrics"]:
            for method in section["level_methods"]:
                levels = quantise(out[metric].to_numpy(), metric, method, section["k"],
                                  seed=derive_seed(seed, "metricaug-levels", fold, metric))
                out[f"level_{metric}_{method}"] = levels.item_levels
                summaries.append(levels.to_dict())
                log.info("fold %d %s/%s: counts %s, edges %s", fold, metric, method, levels.counts,
                         [round(e, 3) for e in levels.edges])
        out.to_csv(smk.output.csv, index=False, lineterminator="\n", float_format="%.6f")
        with open(smk.output.json, "w") as handle:
            json.dump({"fold": fold, "items": len(out), "levels": summaries}, handle, indent=2, sort_keys=True)
            handle.write("\n")
        plot_levels(out, summaries, smk.output.png, f"MetricAug levels, fold {fold}")


def plot_levels(items: pd.DataFrame, summaries: list[dict], path, title: str) -> None:
    """One panel per metric: the histogram of its values, each method's level edges as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(s["metric"] for s in summaries))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    styles = {"uniform": ("tab:blue", "--"), "gmm": ("tab:red", ":")}
    for ax, metric in zip(axes[0], metrics):
        values = items[metric].dropna()
        ax.hist(values, bins=40, color="0.75")
        for s in (s for s in summaries if s["metric"] == metric):
            color, style = styles.get(s["method"], ("k", "-"))
            for i, edge in enumerate(s["edges"][1:-1]):
                ax.axvline(edge, color=color, ls=style, lw=1, label=s["method"] + " edges" if i == 0 else None)
            ax.text(0.02, 0.95 - 0.08 * list(styles).index(s["method"]), f"{s['method']}: {s['counts']}",
                    transform=ax.transAxes, fontsize=7, color=color, va="top")
        ax.set(xlabel=metric, ylabel="items")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------ training


def _features(paths, ids) -> dict:
    """item_id -> features of ``ids`` from the archives ``paths`` (each id from the archive that holds it)."""
    from sernoise.features import FeatureArchive

    wanted, out = set(ids), {}
    for path in paths:
        archive = FeatureArchive(path)
        present = [i for i in archive.utt_ids if i in wanted]
        out.update(archive.read_many(present))
    missing = wanted - set(out)
    if missing:
        raise SupersetError(f"{len(missing)} item(s) missing from the feature archives, e.g. {sorted(missing)[:3]}")
    return out


def _ok(params: pd.DataFrame) -> pd.DataFrame:
    return params[params["status"] == "ok"].sort_values("item_id").reset_index(drop=True)


def write_weights(history: list[dict], csv_path, png_path, title: str) -> None:
    """The metricaug strategy's weights and gaps per epoch (CSV) and a plot of the weights and gaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    frame.to_csv(csv_path, index=False, lineterminator="\n", float_format="%.6f")
    fig, (ax_w, ax_g) = plt.subplots(1, 2, figsize=(9, 3.2))
    for column in [c for c in frame.columns if c.startswith("weight_level")]:
        ax_w.plot(frame["epoch"], frame[column], marker="o", ms=3, label=column.replace("weight_", ""))
    for column in [c for c in frame.columns if c.startswith("gap_level")]:
        ax_g.plot(frame["epoch"], frame[column], marker="o", ms=3, label=column.replace("gap_", ""))
    ax_w.set(xlabel="epoch", ylabel="sampling weight", title="weights (Algorithm 1)", ylim=(0, 1))
    ax_g.set(xlabel="epoch", ylabel="WF1 clean - WF1 level", title="validation gaps")
    ax_w.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def train_method(smk) -> None:
    import torch

    from sernoise.corpora.manifest import read_manifest
    from sernoise.metricaug.strategy import metricaug
    from sernoise.metricaug.models import get_metricaug_model
    from sernoise.metricaug.train import level_evaluator, search_model, weighted_f1
    from sernoise.training.artifacts import versions_record, write_curve, write_selection, write_yaml
    from sernoise.training.data import norm_stats, normalise, read_archive, role_utterances, save_norm
    from sernoise.training.loop import SequenceData, TrainSettings, predict_proba, resolve_device
    from sernoise.training.predict import save_state
    from sernoise.training.strategies import get_strategy

    with rule_log(smk) as log:
        wc, section, inp, out = smk.wildcards, smk.params.section, smk.input, smk.output
        method, fold, rep = wc.method, int(wc.fold), int(wc.rep)
        threads = int(smk.threads)
        torch.set_num_threads(threads)
        device = resolve_device(smk.params.device)
        manifest = read_manifest(inp.manifest)
        folds = pd.read_csv(inp.folds, dtype={"group": str})
        labels, task = task_labels(manifest, section, smk.config, wc.corpus)
        seed = derive_seed(smk.params.seed, "train", fold, rep, section["task"])  # common to every method
        roles = {r: [u for u in role_utterances(manifest, folds, fold, r) if u in labels] for r in ("train", "val", "test")}
        clean = read_archive(inp.clean, roles["train"] + roles["val"] + roles["test"])
        mean, std = norm_stats([clean[u] for u in roles["train"]])  # clean training statistics, every method alike

        def data(arrays, targets):
            return SequenceData(normalise(arrays, mean, std), np.asarray(targets, dtype=np.int64))

        train_x = [clean[u] for u in roles["train"]]
        train_y = [labels[u] for u in roles["train"]]
        if method in ("fixed", "copypaste"):
            fixed = _ok(read_set_params(inp.fixed_params))
            fixed = fixed[fixed["utt_id"].isin(set(roles["train"]))]
            features = _features(inp.fixed_features, fixed["item_id"])
            train_x += [features[i] for i in fixed["item_id"]]
            train_y += [labels[u] for u in fixed["utt_id"]]
        if method == "copypaste":
            pasted = _ok(read_set_params([inp.copypaste_params]))
            features = _features([inp.copypaste_features], pasted["item_id"])
            train_x += [features[i] for i in pasted["item_id"]]
            train_y += [task.labels.index(lab) for lab in pasted["label"]]
        n_clean = len(roles["train"])
        val = data([clean[u] for u in roles["val"]], [labels[u] for u in roles["val"]])

        strategy, bind, levels = get_strategy("standard", {"selection_metric": "f1_weighted"}), None, None
        if method.startswith("metricaug-") or method == "none":
            levels = pd.read_csv(inp.levels, dtype={"utt_id": str, "item_id": str})
        level_sets = {}
        if levels is not None:
            val_rows = levels[levels["role"] == "val"]
            cap = section["val_items_per_level"]
            needed = list(val_rows["item_id"])
            if method.startswith("metricaug-"):
                needed += list(levels.loc[levels["role"] == "train", "item_id"])
            superset_features = _features(inp.superset_features, needed)
            columns = ([f"level_{m}_gmm" for m in section["metrics"] if "gmm" in section["level_methods"]]
                       if method == "none" else [f"level_{method.split('-')[1]}_{method.split('-')[2]}"])
            for column in columns:
                sets = []
                for level in range(1, section["k"] + 1):
                    rows = val_rows[val_rows[column] == level]
                    if cap and len(rows) > cap:  # a fixed subset (same every epoch), seeded per fold and column
                        draw = rng_for(smk.params.seed, "metricaug-val", fold, column, level)
                        keep = np.sort(draw.choice(len(rows), cap, replace=False))
                        rows = rows.iloc[keep]
                    sets.append(data([superset_features[i] for i in rows["item_id"]], [labels[u] for u in rows["utt_id"]]))
                level_sets[column] = sets
        if method.startswith("metricaug-"):
            _, metric, quantiser = method.split("-")
            strategy = metricaug(metric=metric, levels=quantiser, k=section["k"], floor=section["floor"],
                                 n_per_epoch=section["n_per_epoch"])
            superset = levels[(levels["role"] == "train")]
            train_x += [superset_features[i] for i in superset["item_id"]]
            train_y += [labels[u] for u in superset["utt_id"]]
            item_levels = superset[f"level_{metric}_{quantiser}"].to_numpy()
            evaluate = level_evaluator(val, level_sets[f"level_{metric}_{quantiser}"], section["batch_size"], device)

            def bind():
                strategy.items.bind(n_clean=n_clean, item_levels=item_levels, evaluate=evaluate)

        train = data(train_x, train_y)
        del train_x
        log.info("method %s fold %d rep %d: %d training examples (%d clean), %d validation; seed %d, device %s",
                 method, fold, rep, len(train), n_clean, len(val), seed, device)
        settings = TrainSettings(max_epochs=section["max_epochs"], patience=section["patience"],
                                 batch_size=section["batch_size"], learning_rate=section["learning_rate"],
                                 class_weighting=section["class_weighting"], device=device,
                                 max_frames=section["max_frames"], min_epochs=section["min_epochs"])
        entry = get_metricaug_model(section["model"])
        best, selection, history = search_model(entry, smk.config, section, train, val, settings, seed, task=task,
                                                strategy=strategy, bind=bind, progress=log.info)
        log.info("selected %s %s: best epoch %d, validation WF1 %.3f", entry.label, best.config.as_dict(),
                 best.best_epoch, best.best_val_score)

        model = entry.build(best.config)
        model.load_state_dict(best.state_dict)
        model.to(device).eval()
        save_state(best.state_dict, out.model)
        save_norm(out.norm, mean, std)
        write_curve(best, out.curve, out.curve_png, f"{entry.label}, {method}, fold {fold}, rep {rep}")
        write_selection(selection, out.selection)
        if hasattr(out, "weights"):
            write_weights(history, out.weights, out.weights_png, f"{method}, fold {fold}, rep {rep}")

        # Test sets: clean; noise at each test SNR (categories pooled); unseen noise.
        tests = [(CLEAN_SET, roles["test"], [clean[u] for u in roles["test"]], roles["test"])]
        for name, params_paths, feature_paths in (("test", inp.test_params, inp.test_features),
                                                  ("unseen", inp.unseen_params, inp.unseen_features)):
            rows = _ok(read_set_params(params_paths))
            rows = rows[rows["utt_id"].isin(set(roles["test"]))]
            features = _features(feature_paths, rows["item_id"])
            groups = [("unseen", rows)] if name == "unseen" else \
                [(f"noise-{float(s):g}dB", rows[rows["snr_target"] == float(s)]) for s in section["test_snr_db"]]
            for set_name, part in groups:
                tests.append((set_name, list(part["item_id"]), [features[i] for i in part["item_id"]],
                              list(part["utt_id"])))
        frames = []
        for set_name, ids, arrays, utts in tests:
            predicted = predict_proba(model, normalise(arrays, mean, std), section["batch_size"], device).argmax(axis=1) \
                if arrays else np.zeros(0, dtype=np.int64)
            frames.append(pd.DataFrame({"method": method, "fold": fold, "rep": rep, "test_set": set_name,
                                        "item_id": ids, "utt_id": utts, "label": [task.labels[labels[u]] for u in utts],
                                        "predicted": [task.labels[p] for p in predicted]}))
        predictions = pd.concat(frames, ignore_index=True)
        predictions.to_csv(out.predictions, index=False, lineterminator="\n")
        log.info("test WF1: %s", predictions.groupby("test_set", sort=False).apply(
            lambda f: round(float(wf1_of(f)), 3)).to_dict())

        drops = []
        for column, sets in (level_sets.items() if method == "none" else []):
            clean_wf1 = weighted_f1(model, val.arrays, val.labels, section["batch_size"], device)
            for level, subset in enumerate(sets, start=1):
                level_wf1 = weighted_f1(model, subset.arrays, subset.labels, section["batch_size"], device)
                drops.append({"metric": column.split("_")[1], "level": level, "items": len(subset),
                              "wf1_clean": clean_wf1, "wf1_level": level_wf1,
                              "normalised_drop": (clean_wf1 - level_wf1) / clean_wf1 if clean_wf1 else math.nan})
        if hasattr(out, "level_drops"):
            pd.DataFrame(drops, columns=["metric", "level", "items", "wf1_clean", "wf1_level", "normalised_drop"]).to_csv(
                out.level_drops, index=False, lineterminator="\n", float_format="%.6f")

        write_yaml({"method": method, "fold": fold, "rep": rep, "task": section["task"], "seed": seed,
                    "model": entry.family, "input": "fbank40 (vq-wav2vec weights unavailable)",
                    "hparams": best.config.as_dict(), "best_epoch": best.best_epoch,
                    "best_val_f1_weighted": float(best.best_val_score), "epochs_run": best.epochs_run,
                    "training_examples": len(train), "clean_training_examples": n_clean,
                    "optimizer": entry.optimiser, "learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
                    "patience": settings.patience, "strategy": {"name": strategy.name, **dict(strategy.options)}},
                   out.hparams)
        write_yaml(versions_record(device, threads), out.versions)


def wf1_of(frame: pd.DataFrame) -> float:
    from sklearn.metrics import f1_score

    if not len(frame):
        return math.nan
    return float(f1_score(frame["label"], frame["predicted"], average="weighted", zero_division=0))


# ------------------------------------------------------------------------------ tables

def caption(model: str = "metricaug_head") -> str:
    """The table's caption for the trained model (config ``metricaug.model``)."""
    what = ("The head (linear reduction, GRU, 2-head transformer encoder, mean pooling) runs"
            if model == "metricaug_head" else
            f"The model is the workflow's {model} (config metricaug.model), not the paper's head; it runs")
    return ("MetricAug (Wu & Lee) and its baselines: weighted F1 per training method (rows) and test set "
            f"(columns), mean over folds and repetitions. {what} on 40-d log Mel filterbanks, not on "
            "vq-wav2vec codes as in the paper, because vq-wav2vec weights are unavailable here.")


def method_label(method: str) -> str:
    if method in BASELINES:
        return {"none": "None", "fixed": "Fixed SNR", "copypaste": "CopyPaste"}[method]
    _, metric, quantiser = method.split("-")
    return f"MetricAug {metric.upper() if metric != 'fwsnrseg' else 'fwSNRseg'} ({'GMM' if quantiser == 'gmm' else 'uniform'})"


def wf1_cells(predictions: pd.DataFrame) -> pd.DataFrame:
    """WF1 per (method, fold, rep, test_set)."""
    rows = [{"method": m, "fold": f, "rep": r, "test_set": t, "wf1": wf1_of(frame)}
            for (m, f, r, t), frame in predictions.groupby(["method", "fold", "rep", "test_set"], sort=True)]
    return pd.DataFrame(rows)


def table_cells(per_run: pd.DataFrame, method_order, set_order, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (method, test set): mean and SD of WF1 over (fold, rep), paired t-tests (over (fold, rep)
    pairs) against None and against the best baseline of that test set (Fixed SNR or CopyPaste, by mean),
    Bonferroni over every test of the table."""
    from sernoise.evaluation.stats import bonferroni, paired_ttest

    series = {(m, t): frame.set_index(["fold", "rep"])["wf1"] for (m, t), frame in per_run.groupby(["method", "test_set"])}
    rows = []
    for t in set_order:
        baseline_means = {b: series[(b, t)].mean() for b in ("fixed", "copypaste") if (b, t) in series}
        best = max(baseline_means, key=baseline_means.get) if baseline_means else None
        for m in method_order:
            if (m, t) not in series:
                continue
            own = series[(m, t)]
            row = {"method": m, "label": method_label(m), "test_set": t, "wf1_mean": float(own.mean()),
                   "wf1_sd": float(own.std(ddof=1)) if len(own) > 1 else math.nan, "runs": int(own.size),
                   "best_baseline": best or ""}
            for name, other in (("none", "none"), ("best", best)):
                if other is None or m == other or (other, t) not in series:
                    row.update({f"p_vs_{name}": math.nan, f"n_pairs_vs_{name}": 0})
                    continue
                result = paired_ttest(own, series[(other, t)])
                row.update({f"p_vs_{name}": result.p, f"n_pairs_vs_{name}": result.n_pairs})
            rows.append(row)
    cells = pd.DataFrame(rows)
    tests = [c for c in ("p_vs_none", "p_vs_best")]
    flat = np.concatenate([cells[c].to_numpy(dtype=float) for c in tests]) if len(cells) else np.zeros(0)
    adjusted, significant, m = bonferroni(flat, alpha)
    for i, c in enumerate(tests):
        part = slice(i * len(cells), (i + 1) * len(cells))
        cells[c + "_adj"] = adjusted[part]
        cells["sig_vs_" + c.split("_vs_")[1]] = significant[part]
    cells.attrs["tests"] = m
    return cells


def _cell_text(row) -> str:
    text = f"{100 * row['wf1_mean']:.2f}"
    if row["sig_vs_none"]:
        text += "*"
    if row["sig_vs_best"]:
        text += "†"
    return text


def render_tables(cells: pd.DataFrame, set_order, method_order, model: str = "metricaug_head") -> tuple[str, str]:
    from sernoise.evaluation.render import EMPTY, latex_close, latex_open, markdown_notes, tex_escape

    notes = [f"* significantly different from None, † from the best baseline of the column (paired t-test over "
             f"(fold, repetition) pairs, Bonferroni over {cells.attrs.get('tests', 0)} tests, adjusted p <= 0.05).",
             "Best baseline per column: " + ", ".join(
                 f"{t}: {method_label(b)}" for t, b in cells.groupby("test_set", sort=False)["best_baseline"].first().items()
                 if b)]
    lookup = {(r["method"], r["test_set"]): r for _, r in cells.iterrows()}
    header = ["Method"] + list(set_order)
    body = [[method_label(m)] + [_cell_text(lookup[(m, t)]) if (m, t) in lookup else EMPTY for t in set_order]
            for m in method_order]
    md = [f"**MetricAug.** {caption(model)}", "", "| " + " | ".join(header) + " |",
          "|" + "|".join(["---"] + ["---:"] * len(set_order)) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in body]
    md += markdown_notes(notes)
    tex = latex_open("MetricAug", caption(model), "l" + "r" * len(set_order))
    tex += [" & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    tex += [" & ".join(tex_escape(c) for c in r) + r" \\" for r in body]
    tex += latex_close(notes)
    return "\n".join(md) + "\n", "\n".join(tex) + "\n"


def level_drop_table(drops: pd.DataFrame) -> pd.DataFrame:
    """Wu & Lee's Table 3: the clean (None) model's normalised WF1 drop per GMM level of each metric,
    mean over folds and repetitions (validation items of the superset)."""
    if not len(drops):
        return pd.DataFrame(columns=["level"])
    table = drops.groupby(["level", "metric"])["normalised_drop"].mean().unstack("metric").reset_index()
    table.columns.name = None
    table["level"] = table["level"].astype(int)
    return table


def make_table(smk) -> None:
    with rule_log(smk) as log:
        section = smk.params.section
        predictions = pd.concat([pd.read_csv(p, dtype={"utt_id": str, "item_id": str}) for p in smk.input.predictions],
                                ignore_index=True)
        per_run = wf1_cells(predictions)
        order, sets = methods(section), table_columns(section)
        cells = table_cells(per_run, order, sets)
        cells.to_csv(smk.output.csv, index=False, lineterminator="\n", float_format="%.6f")
        md, tex = render_tables(cells, sets, order, section["model"])
        with open(smk.output.md, "w", encoding="utf-8") as handle:
            handle.write(md)
        with open(smk.output.tex, "w", encoding="utf-8") as handle:
            handle.write(tex)
        drops = pd.concat([pd.read_csv(p) for p in smk.input.level_drops], ignore_index=True)
        table3 = level_drop_table(drops)
        table3.to_csv(smk.output.levels_csv, index=False, lineterminator="\n", float_format="%.6f")
        with open(smk.output.levels_md, "w", encoding="utf-8") as handle:
            handle.write("**MetricAug levels.** Normalised WF1 drop (WF1 clean - WF1 level) / WF1 clean of the model "
                         "trained on clean speech (None), per GMM level (1: least distorted) of each metric, on the "
                         "superset's validation items; mean over folds and repetitions.\n\n")
            # the level column is an integer; the drops get three decimals
            handle.write(table3.to_markdown(index=False, floatfmt=[".0f"] + [".3f"] * (table3.shape[1] - 1)) + "\n")
        log.info("%d predictions, %d runs -> %s", len(predictions), per_run[["method", "fold", "rep"]].drop_duplicates()
                 .shape[0], smk.output.csv)
