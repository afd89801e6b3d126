"""What an attack job (rule ``run_attack``: rules/attack.smk) loads from its inputs (rules/common.smk
``attack_inputs``) and params, once for all its steps: the manifest, the folds and the task's labels,
the attacked model's predictor (:func:`sernoise.attack.models.load_predictor`), the clean audio, the
built conditions, and, on first use, the noise pools and the filler bank (:class:`AttackInputs`).
Each step (the degradation measurement, each attack) then takes what it needs of them
(:meth:`AttackInputs.step`): the fold's labelled utterances of one role and the selected ones, one
noise pool and the categories it can draw from (:class:`RuleInputs`).

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
    """What one step of an attack job works on (:meth:`AttackInputs.step`)."""

    labels: dict            # utterance id -> class index for the rule's task
    candidates: list[str]   # the labelled utterances of the fold's role
    utts: list[str]         # those selected (attack.max_utterances / knowledge_utterances)
    pool: object            # sernoise.conditions.pool.NoisePool
    categories: dict        # usable category -> its conditions (built)
    predictor: object       # black-box predictor of the attacked model (shared by the job's steps)
    store: object           # sernoise.audio_store.AudioStore of the clean audio
    speakers: dict          # utterance id -> speaker
    alignments: dict = field(default_factory=dict)  # utterance id -> alignment file (manifest column)
    fillers: object = None  # sernoise.conditions.filler.FillerBank when a category inserts fillers
    _aligned: dict = field(default_factory=dict, repr=False)  # read alignments (shared by the job's steps)

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
        # the clean audio's stored P.56 level (sernoise.audio_store "Speech levels"): the attack's
        # draws and strengths all set their noise against it
        stored_level = getattr(self.store, "active_power", None)
        return Context(utt_id=utt_id, speaker=speaker, words=words, phones=phones, noise=self.pool,
                       fillers=self.fillers, active_power=stored_level(utt_id) if stored_level else None)

    def samples(self) -> Iterator[tuple[str, np.ndarray, str]]:
        """(utterance id, clean audio, speaker) of each selected utterance, read on demand."""
        return ((u, self.store.read(u), self.speakers.get(u, "")) for u in self.utts)


@dataclass
class AttackInputs:
    """What an attack job loads once (:meth:`load`), and hands to each of its steps (:meth:`step`).

    ``fold`` is the wildcard's text (the utterance choice is seeded with it); ``conditions``: the
    built conditions the attack categories draw from, by id; ``category_conditions``: category ->
    condition ids (``attack.categories``); ``banks``: (name, bank.csv, audio.h5) of each noise bank.
    The noise pools and the filler bank are read when a step first needs them.
    """

    fold: str
    seed: int
    manifest: object        # the corpus manifest (pandas.DataFrame)
    folds: object           # folds.csv (pandas.DataFrame)
    labels: dict            # utterance id -> class index for the job's task
    predictor: object       # black-box predictor of the attacked model
    store: object           # sernoise.audio_store.AudioStore of the clean audio
    conditions: dict
    category_conditions: dict
    banks: list = field(default_factory=list)
    fillers_path: str | None = None
    log: object = None      # a logging.Logger: the notes on categories left out go there
    speakers: dict = field(default_factory=dict)
    alignments: dict = field(default_factory=dict)
    pools: dict = field(default_factory=dict)  # split -> NoisePool, once read
    _fillers: object = field(default=None, repr=False)
    _aligned: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, smk, log) -> "AttackInputs":
        """The job's shared inputs (``smk``: its ``snakemake`` object).  Sets the number of torch and
        BLAS threads to the rule's threads first."""
        import pandas as pd
        import torch
        from threadpoolctl import threadpool_limits

        from sernoise.audio_store import AudioStore
        from sernoise.conditions import build_condition
        from sernoise.corpora.manifest import read_manifest
        from sernoise.model_registry import job_family
        from sernoise.training.data import labels_of
        from sernoise.training.loop import resolve_device

        from .models import configure_denoiser, load_predictor

        job_family(smk)  # imports the config's plugins, so that a plugin's family (sernoise.latif.family) is known here
        wc, p, inp = smk.wildcards, smk.params, smk.input
        torch.set_num_threads(int(smk.threads))
        threadpool_limits(int(smk.threads))  # NumPy's BLAS too (filterbanks): no oversubscription
        manifest = read_manifest(inp.manifest)
        return cls(
            fold=str(wc.fold), seed=p.seed, manifest=manifest,
            folds=pd.read_csv(inp.folds, dtype={"group": str}),
            labels=labels_of(manifest, wc.task),
            # a denoising predictor (tdnn_dfn3) with the config's options of its denoiser (denoise.dfn3):
            # a change of them re-denoises the model's data, retrains it, and so reruns this job
            predictor=configure_denoiser(load_predictor(wc.model, Path(inp.model[0]).parent, resolve_device(p.device)),
                                         getattr(smk, "config", None)),
            store=AudioStore.from_index(inp.index),
            conditions={cid: build_condition(cid, spec, snr_reference=p.snr_reference)
                        for cid, spec in p.conditions.items()},
            category_conditions=dict(p.settings["categories"]),
            banks=list(zip(p.banks, inp.banks, inp.bank_audio)),
            fillers_path=getattr(inp, "fillers", None) or None,
            log=log,
            speakers=dict(zip(manifest["utt_id"].astype(str), manifest["speaker"].astype(str))),
            alignments=_alignment_files(manifest),
        )

    def pool(self, split: str):
        """The noise pool ``split`` (train, test) of the noise banks, read on first use."""
        if split not in self.pools:
            from sernoise.conditions.pool import NoisePool

            self.pools[split] = NoisePool(self.banks, split)
        return self.pools[split]

    def release_pool(self, split: str) -> None:
        """Forget the noise pool ``split`` and its clip cache (read again if a later step needs it)."""
        self.pools.pop(split, None)

    def fillers(self):
        """The filler bank (read on first use), or None when the job has none."""
        if self._fillers is None and self.fillers_path:
            from sernoise.conditions.filler import FillerBank

            self._fillers = FillerBank.load(self.fillers_path)
        return self._fillers

    def step(self, *, role: str, limit, noise_pool: str, categories: Iterable[str]) -> RuleInputs:
        """The inputs of one step for the fold's ``role`` (val, test): at most ``limit`` of its labelled
        utterances (a seeded choice; None: all), the ``noise_pool`` (train, test) of the noise banks,
        and the wanted ``categories`` (names under ``attack.categories``) that this pool can draw from
        (a warning is logged for each one left out).  The predictor is the job's, its counts
        (``calls``, ``samples``, ``seconds``) set to zero: after the step they are the step's."""
        from sernoise.training.data import role_utterances

        candidates = [u for u in role_utterances(self.manifest, self.folds, int(self.fold), role) if u in self.labels]
        utts = select_utterances(candidates, limit, self.seed, role, self.fold)
        pool = self.pool(noise_pool)
        wanted = {c: [self.conditions[cid] for cid in self.category_conditions[c]] for c in categories}
        # the filler bank only for steps whose conditions insert fillers
        needs_fillers = any("fillers" in cond.requires for conds in wanted.values() for cond in conds)
        fillers = self.fillers() if needs_fillers else None
        usable, notes = usable_categories(wanted, pool, manifest=self.manifest, fillers=fillers)
        for note in notes:
            if self.log is not None:
                self.log.warning(note)
        reset = getattr(self.predictor, "reset_counts", None)
        if reset is not None:
            reset()
        return RuleInputs(
            labels=self.labels, candidates=candidates, utts=utts, pool=pool, categories=usable,
            predictor=self.predictor, store=self.store, speakers=self.speakers, alignments=self.alignments,
            fillers=fillers, _aligned=self._aligned,
        )


def _alignment_files(manifest) -> dict:
    """utterance id -> alignment file, for the rows of the manifest that have one."""
    if "alignment" not in manifest.columns:
        return {}
    from sernoise.augment import has_alignment

    return {str(u): str(a) for u, a in zip(manifest["utt_id"], manifest["alignment"]) if has_alignment(a)}
