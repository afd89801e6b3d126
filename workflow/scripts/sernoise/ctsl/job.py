"""The rule jobs of the CTSL stage (rules/ctsl.smk): :func:`adapt_job` and :func:`table_job`.

Both take the rule's ``snakemake`` object.  See :mod:`sernoise.ctsl.adapt` for what an
adaptation does and :mod:`sernoise.ctsl.table` for the table.
"""

from __future__ import annotations

import time

import pandas as pd
import torch
import yaml

from sernoise.runlog import rule_log


def _write_yaml(record: dict, path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(record, handle, sort_keys=False, allow_unicode=True)


def load_teacher(family, inp, params):
    """The clean-regime model of the family and the inputs it reads: (model, FeatureInputs | WaveInputs)."""
    from sernoise.ctsl.adapt import FeatureInputs, WaveInputs

    if family.input == "waveform":
        from sernoise.training.ednn import check_backbone, load_ednn

        hparams = yaml.safe_load(open(inp.teacher_hparams, encoding="utf-8"))
        teacher = load_ednn(inp.teacher_model, hparams, check_backbone(hparams), save_path=params.save_path)
        return teacher, WaveInputs(attention_mask=teacher.use_attention_mask)
    from sernoise.training.data import load_norm
    from sernoise.training.predict import load_model

    mean, std = load_norm(inp.teacher_norm)
    return load_model(inp.teacher_model, inp.teacher_hparams), FeatureInputs(mean, std)


def adapt_job(smk) -> None:
    from threadpoolctl import threadpool_limits

    from sernoise.audio_store import AudioStore
    from sernoise.conditions.pool import NoisePool
    from sernoise.corpora.manifest import read_manifest
    from sernoise.ctsl.adapt import AdaptData, CtslSettings, adapt_and_score, settings_record
    from sernoise.ctsl.target_noise import TargetNoise
    from sernoise.tasks import get_task
    from sernoise.model_registry import job_family
    from sernoise.training.data import labels_of, role_utterances

    with rule_log(smk) as log:
        wc, p, inp, out = smk.wildcards, smk.params, smk.input, smk.output
        torch.set_num_threads(int(smk.threads))
        threadpool_limits(int(smk.threads))
        section = p.ctsl
        settings = CtslSettings.from_config(section, p.settings)
        task = get_task(wc.task, {"tasks": {wc.task: p.task_definition}} if p.task_definition else None)
        manifest = read_manifest(inp.manifest)
        folds = pd.read_csv(inp.folds, dtype={"group": str})
        targets = labels_of(manifest, task, corpus=wc.corpus)
        fold, rep = int(wc.fold), int(wc.rep)
        roles = {role: [u for u in role_utterances(manifest, folds, fold, role) if u in targets]
                 for role in ("train", "val", "test")}
        store = AudioStore.from_index(inp.index)
        audio = {u: store.read(u) for ids in roles.values() for u in ids}
        banks = list(zip(p.banks, inp.banks, inp.bank_audio))
        target = section["target"]
        noise = {split: TargetNoise(NoisePool(banks, split), target["category"], max_minutes=target["max_minutes"],
                                    seed=p.seed, reference=p.snr_reference) for split in ("train", "test")}
        teacher, inputs = load_teacher(job_family(smk), inp, p)
        data = AdaptData(audio=audio, targets=targets, train=roles["train"], val=roles["val"], test=roles["test"],
                         target_noise=noise["train"], test_noise=noise["test"], inputs=inputs)
        log.info("CTSL %s %s fold %d rep %d task %s: %d train, %d val, %d test utterances; target noise %s",
                 wc.model, wc.strategy, fold, rep, task.name, *(len(v) for v in roles.values()),
                 noise["train"].describe())
        tick = time.perf_counter()
        scores, embeddings, curve, chosen = adapt_and_score(
            teacher, wc.strategy, data, task, settings, seed=p.seed, fold=fold, rep=rep, corpus=wc.corpus,
            model_name=wc.model, progress=log.info)
        scores.to_csv(out.scores, index=False, lineterminator="\n")
        embeddings.to_csv(out.embeddings, index=False, lineterminator="\n")
        curve.to_csv(out.curve, index=False, lineterminator="\n")
        _write_yaml({
            "model": wc.model, "strategy": wc.strategy, "fold": fold, "rep": rep, "task": task.name,
            "task_loss": "cross-entropy" if task.is_classification else "CCC (1 - CCC per attribute, summed)",
            "teacher": str(inp.teacher_model), "chosen_epochs": [int(e) for e in chosen],
            "settings": settings_record(settings),
            "target_noise": noise["train"].describe(), "test_noise": noise["test"].describe(),
            "utterances": {role: len(ids) for role, ids in roles.items()},
        }, out.record)
        log.info("done in %.1f s", time.perf_counter() - tick)


def table_job(smk) -> None:
    from sernoise.ctsl.adapt import snr_condition
    from sernoise.ctsl.table import write_ctsl_table, write_embedding_table

    with rule_log(smk) as log:
        p, out = smk.params, smk.output
        scores = pd.concat([pd.read_csv(path) for path in smk.input.scores], ignore_index=True)
        embeddings = pd.concat([pd.read_csv(path) for path in smk.input.embeddings], ignore_index=True)
        notes = list(p.notes)
        write_ctsl_table(scores, strategies=list(p.strategies), matched=snr_condition(float(p.snr_db)),
                         model_labels=dict(p.model_labels), notes=notes, csv=out.csv, md=out.md, tex=out.tex,
                         title=p.title)
        write_embedding_table(embeddings, strategies=list(p.strategies), model_labels=dict(p.model_labels),
                              csv=out.embeddings_csv, md=out.embeddings_md, title=f"{p.title}: embeddings",
                              matched=snr_condition(float(p.snr_db)))
        log.info("%d score rows, %d embedding rows -> %s", len(scores), len(embeddings), out.csv)
