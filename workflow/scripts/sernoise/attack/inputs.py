"""What the attack rules (``attack_knowledge``, ``run_attack``: rules/attack.smk) load alike from their
inputs (rules/common.smk ``attack_inputs``) and params: the fold's labelled utterances of one role
and the selected ones, the noise pool and the usable categories, the attacked model's predictor
(:func:`sernoise.attack.models.load_predictor`) and the clean audio.

Torch and the data modules are imported on use, as in the rest of :mod:`sernoise.attack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from sernoise.conditions.base import Context

from .runner import select_utterances, usable_categories


@dataclass
class RuleInputs:
    labels: dict            # utterance id -> class index for the rule's task
    candidates: list[str]   # the labelled utterances of the fold's role
    utts: list[str]         # those selected (attack.max_utterances / knowledge_utterances)
    pool: object            # sernoise.conditions.pool.NoisePool
    categories: dict        # usable category -> its conditions (built)
    predictor: object       # black-box predictor of the attacked model
    store: object           # sernoise.audio_store.AudioStore of the clean audio
    speakers: dict          # utterance id -> speaker
    alignments: dict = field(default_factory=dict)  # utterance id -> alignment file (manifest column)
    fillers: object = None  # sernoise.conditions.filler.FillerBank when a category inserts fillers
    _aligned: dict = field(default_factory=dict, repr=False)

    def context(self, utt_id: str, speaker: str) -> Context:
        """What the conditions may know of the utterance: its word and phone alignment (read once),
        the filler bank and the noise pool (:func:`sernoise.attack.runner.utterance_context`)."""
        if utt_id not in self._aligned:
            path = self.alignments.get(utt_id)
            if path:
                from sernoise.alignments import read_phones, read_words

                self._aligned[utt_id] = (read_words(path), read_phones(path))
            else:
                self._aligned[utt_id] = (None, None)
        words, phones = self._aligned[utt_id]
        return Context(utt_id=utt_id, speaker=speaker, words=words, phones=phones, noise=self.pool,
                       fillers=self.fillers)

    def samples(self) -> Iterator[tuple[str, np.ndarray, str]]:
        """(utterance id, clean audio, speaker) of each selected utterance, read on demand."""
        return ((u, self.store.read(u), self.speakers.get(u, "")) for u in self.utts)


def load_inputs(smk, log, *, role: str, limit, noise_pool: str, categories: Iterable[str]) -> RuleInputs:
    """The inputs of an attack rule (``smk``: its ``snakemake`` object) for the fold's ``role`` (val, test):
    at most ``limit`` of its labelled utterances (a seeded choice; None: all), the ``noise_pool``
    (train, test) of the noise banks, and the wanted ``categories`` (names under ``attack.categories``)
    that this pool can draw from (a warning is logged for each one left out).  Sets the number of
    torch and BLAS threads to the rule's threads first."""
    import pandas as pd
    import torch
    from threadpoolctl import threadpool_limits

    from sernoise.audio_store import AudioStore
    from sernoise.conditions import build_condition
    from sernoise.conditions.pool import NoisePool
    from sernoise.corpora.manifest import read_manifest
    from sernoise.training.data import labels_of, role_utterances
    from sernoise.training.loop import resolve_device

    from .models import load_predictor

    wc, p, inp = smk.wildcards, smk.params, smk.input
    torch.set_num_threads(int(smk.threads))
    threadpool_limits(int(smk.threads))  # NumPy's BLAS too (filterbanks): no oversubscription
    manifest = read_manifest(inp.manifest)
    folds = pd.read_csv(inp.folds, dtype={"group": str})
    labels = labels_of(manifest, wc.task)
    candidates = [u for u in role_utterances(manifest, folds, int(wc.fold), role) if u in labels]
    utts = select_utterances(candidates, limit, p.seed, role, wc.fold)

    pool = NoisePool(list(zip(p.banks, inp.banks, inp.bank_audio)), noise_pool)
    built = {cid: build_condition(cid, spec, snr_reference=p.snr_reference) for cid, spec in p.conditions.items()}
    wanted = {c: [built[cid] for cid in p.settings["categories"][c]] for c in categories}
    fillers = None
    if any("fillers" in cond.requires for conds in wanted.values() for cond in conds) and getattr(inp, "fillers", None):
        from sernoise.conditions.filler import FillerBank

        fillers = FillerBank.load(inp.fillers)
    usable, notes = usable_categories(wanted, pool, manifest=manifest, fillers=fillers)
    for note in notes:
        log.warning(note)
    predictor = load_predictor(wc.model, Path(inp.model[0]).parent, resolve_device(p.device))
    return RuleInputs(
        labels=labels, candidates=candidates, utts=utts, pool=pool, categories=usable, predictor=predictor,
        store=AudioStore.from_index(inp.index),
        speakers=dict(zip(manifest["utt_id"].astype(str), manifest["speaker"].astype(str))),
        alignments=_alignment_files(manifest), fillers=fillers,
    )


def _alignment_files(manifest) -> dict:
    """utterance id -> alignment file, for the rows of the manifest that have one."""
    if "alignment" not in manifest.columns:
        return {}
    from sernoise.augment import has_alignment

    return {str(u): str(a) for u, a in zip(manifest["utt_id"], manifest["alignment"]) if has_alignment(a)}
