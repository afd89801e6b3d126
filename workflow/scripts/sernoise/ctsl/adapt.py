"""One CTSL adaptation: a (model, strategy, fold, repetition, task) of Leem et al., trained and scored.

The teacher is the model the workflow trained on clean speech (``results/{corpus}/models/{model}/
clean/fold{f}/rep{r}/{task}``; frozen).  The student is a copy of it, retrained for ``epochs``
epochs on the fold's training utterances mixed with the target noise, a fresh segment per
utterance and epoch (:class:`sernoise.ctsl.target_noise.TargetNoise`), under the strategy's
losses (:mod:`sernoise.ctsl.strategies`) in the shared epoch loop
(:func:`sernoise.training.loop.run_epochs`).  After every epoch the development utterances,
mixed afresh too, give the development loss and metric (UAR, or mean CCC for dimensional tasks).
The paper's protocol then picks the three best non-consecutive epochs
(:func:`sernoise.ctsl.selection.separated_best_epochs`), and each scores ``test_groups``
disjoint groups of the test utterances, clean and mixed with the TEST pool's noise of the same
category at every test SNR.  ``original`` trains nothing: the teacher is scored as it is (one model).

The embedding analysis (the paper's Table 2) uses the development utterances in batches of
``batch_size``: RMSE and cosine similarity between the teacher's embedding of the clean
utterance and the scored model's embedding of its noisy copy at each test SNR, and the InfoNCE
loss, averaged over batches, for the best epoch of each strategy.

Implemented for the T-DNN (features from the mixed waveform, normalised with the teacher's
statistics); the rule script calls :func:`run`.  Task losses: cross-entropy for classification
tasks, the summed CCC loss (Eq. 1) for dimensional ones.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from sernoise.ctsl.losses import CCCSumLoss, contrastive_loss, label_margin, negative_mask, transfer_loss
from sernoise.ctsl.selection import evaluation_groups, separated_best_epochs
from sernoise.ctsl.strategies import VARIANTS, head, head_parameters, registry_name, tap
from sernoise.ctsl.table import SCORE_COLUMNS
from sernoise.features import log_mel_fbank
from sernoise.seeds import derive_seed
from sernoise.tasks import RATING_SCALES, TARGET_RANGE, Task
from sernoise.training.loop import padded_batch, run_epochs, seed_everything
from sernoise.training.strategies import StrategyRun, get_strategy

CLEAN = "clean"


class AdaptError(ValueError):
    """An adaptation cannot run (the message names the input or the config key)."""


@dataclass(frozen=True)
class CtslSettings:
    """The adaptation settings (config section ``ctsl``)."""

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    snr_db: float = 0.0
    test_snrs: tuple = (0.0, 5.0, 10.0)
    n_best: int = 3
    test_groups: int = 30
    lambda_tl: float = 100.0
    lambda_cl: float = 10.0
    tau: float = 0.1
    max_frames: int | None = None  # training crops, in the inputs' steps (T-DNN frames, E-DNN samples)
    body_learning_rate: float | None = None  # E-DNN: its backbone's own rate (ednn.backbone_learning_rate)
    class_weighting: bool = False  # as the clean training (tdnn.class_weighting): inverse class frequency

    @classmethod
    def from_config(cls, section: dict, model_settings: dict) -> "CtslSettings":
        lr = section.get("learning_rate")
        if model_settings.get("max_seconds") is not None:  # E-DNN crops are in seconds of audio
            crop = int(round(float(model_settings["max_seconds"]) * 16000))
        else:
            crop = None if model_settings.get("max_frames") is None else int(model_settings["max_frames"])
        body_lr = model_settings.get("backbone_learning_rate") if lr is None else None
        return cls(
            epochs=int(section["epochs"]), batch_size=int(section["batch_size"]),
            # the paper adapts with the optimiser and hyper-parameters of the clean fine-tuning
            learning_rate=float(model_settings["learning_rate"] if lr is None else lr),
            snr_db=float(section["target"]["snr_db"]), test_snrs=tuple(float(s) for s in section["test_snrs"]),
            n_best=int(section["n_best_epochs"]), test_groups=int(section["test_groups"]),
            lambda_tl=float(section["lambda_tl"]), lambda_cl=float(section["lambda_cl"]), tau=float(section["tau"]),
            max_frames=crop, body_learning_rate=None if body_lr is None else float(body_lr),
            class_weighting=bool(model_settings.get("class_weighting", False)),
        )


def snr_condition(snr_db: float) -> str:
    """The name of a noisy test condition in the scores and the table: ``snr0``, ``snr5``, ``snr2.5``."""
    return f"snr{snr_db:g}"


class FeatureInputs:
    """T-DNN inputs from waveforms: log Mel filterbanks normalised with the teacher's training statistics."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, device="cpu"):
        self.mean, self.std, self.device = mean, std, device

    def features(self, waveform: np.ndarray) -> np.ndarray:
        return ((log_mel_fbank(waveform) - self.mean) / self.std).astype(np.float32)

    def batch(self, arrays: list[np.ndarray], max_frames: int | None = None, crop_seed: int = 0) -> tuple:
        """(padded features, lengths) tensors; with ``max_frames``, windows drawn from ``crop_seed``
        (the same seed crops the same windows of a clean batch and of its noisy copy)."""
        x, lengths = padded_batch(arrays, range(len(arrays)), max_len=max_frames,
                                  rng=np.random.default_rng(crop_seed))
        return torch.from_numpy(x).to(self.device), torch.from_numpy(lengths)


class WaveInputs:
    """E-DNN inputs: the waveform itself, padded, with relative lengths (as the E-DNN trains).

    A backbone without an attention mask (wav2vec2-base) would see the padding of a batch at
    evaluation: evaluation batches then hold one utterance (``eval_batch_size`` 1), as the E-DNN's
    own prediction uses equal-length batches.
    """

    def __init__(self, device="cpu", *, attention_mask: bool = True):
        self.device = device
        self.eval_batch_size = None if attention_mask else 1

    def features(self, waveform: np.ndarray) -> np.ndarray:
        return np.asarray(waveform, dtype=np.float32)

    def batch(self, arrays: list[np.ndarray], max_frames: int | None = None, crop_seed: int = 0) -> tuple:
        from sernoise.models.ednn import relative_lengths

        x, lengths = padded_batch(arrays, range(len(arrays)), max_len=max_frames,
                                  rng=np.random.default_rng(crop_seed))
        return torch.from_numpy(x).to(self.device), relative_lengths(lengths).to(self.device)


@dataclass
class AdaptData:
    """What one adaptation reads: clean audio, targets, the fold's roles, the target and test noise."""

    audio: dict  # utt_id -> clean waveform (float32, 16 kHz)
    targets: dict  # utt_id -> class index or tuple of rescaled ratings
    train: list
    val: list
    test: list
    target_noise: object  # TargetNoise of the TRAIN pool
    test_noise: object  # TargetNoise of the TEST pool (same category)
    inputs: FeatureInputs


def _target_tensor(task: Task, values) -> torch.Tensor:
    if task.is_classification:
        return torch.as_tensor(np.asarray(values, dtype=np.int64))
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


def _criterion(task: Task, train_targets=None, class_weighting: bool = False):
    """The task loss: cross-entropy (class-weighted as the clean training was, from the training targets) or Eq. 1."""
    if not task.is_classification:
        return CCCSumLoss()
    if not class_weighting:
        return torch.nn.CrossEntropyLoss()
    from sernoise.training.loop import class_weights

    return torch.nn.CrossEntropyLoss(weight=torch.from_numpy(class_weights(np.asarray(train_targets),
                                                                            task.output_size)))


def _margin(task: Task, corpus: str) -> float | None:
    """The rating difference (in target units) that makes two items negatives; None for classes."""
    if task.is_classification:
        return None
    scales = {**RATING_SCALES, **task.scale}
    if corpus not in scales:
        raise AdaptError(f"task {task.name!r}: no rating scale for corpus {corpus!r} (tasks.{task.name}.scale)")
    return label_margin(scales[corpus], TARGET_RANGE)


@torch.no_grad()
def _outputs_and_embeddings(model, inputs, arrays: list[np.ndarray], batch_size: int):
    model.eval()
    batch_size = getattr(inputs, "eval_batch_size", None) or batch_size
    outputs, embeddings = [], []
    for start in range(0, len(arrays), batch_size):
        x, lengths = inputs.batch(arrays[start:start + batch_size])
        embedding = model.embed(x, lengths)
        embeddings.append(embedding.float().cpu())
        outputs.append(head(model, embedding).float().cpu())
    return torch.cat(outputs).numpy(), torch.cat(embeddings)


def task_scores(task: Task, true, outputs) -> dict[str, tuple[str, float]]:
    """attribute -> (metric, value): the task's UAR (classification, one 'attribute': the task) or CCC per attribute."""
    metrics = task.metrics(true, outputs)
    if task.is_classification:
        return {task.name: ("uar", metrics["uar"])}
    return {a: ("ccc", metrics[f"ccc_{a}"]) for a in task.labels}


def trainable_in_model(model) -> None:
    """Make the parameters the model's family trains trainable again (a deep copy of a frozen teacher has none):
    the E-DNN re-applies its ``freeze`` setting (its frozen backbone parts stay frozen), other models train all."""
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if hasattr(model, "_apply_freezing"):
        model._frozen_modules = model._apply_freezing()


def adapt(teacher, variant: str, data: AdaptData, task: Task, settings: CtslSettings, *, seed: int, fold: int,
          rep: int, corpus: str, progress=None):
    """Retrain a copy of ``teacher`` under ``variant``; (states of the chosen epochs by epoch, curve rows, chosen).

    ``original``: nothing is trained; the teacher's state is the only one (epoch 0).
    """
    strategy_name = registry_name(variant)
    if VARIANTS[variant][1] == "nothing":
        return {0: {k: v.detach().clone() for k, v in teacher.state_dict().items()}}, [], [0]
    torch_seed = derive_seed(seed, "ctsl-adapt", fold, rep, task.name)  # the same for every strategy: paired runs
    seed_everything(torch_seed)
    order_rng = np.random.default_rng(torch_seed)
    student = copy.deepcopy(teacher)
    trainable_in_model(student)
    inputs, noise = data.inputs, data.target_noise
    train_ids, val_ids = list(data.train), list(data.val)
    clean_features = {u: inputs.features(data.audio[u]) for u in train_ids + val_ids}

    def views(ctx):
        """The batch's clean and noisy inputs: the noisy copy mixed afresh for (fold, rep, epoch, utterance)."""
        utts = [train_ids[i] for i in ctx.index]
        noisy = [inputs.features(noise.noisy(data.audio[u], u, settings.snr_db, "train", fold, rep, ctx.epoch))
                 for u in utts]
        crop_seed = int(ctx.rng.integers(2**63))
        return (inputs.batch([clean_features[u] for u in utts], settings.max_frames, crop_seed),
                inputs.batch(noisy, settings.max_frames, crop_seed))

    strategy = get_strategy(strategy_name, {
        "teacher": teacher, "views": views, "lambda_tl": settings.lambda_tl, "lambda_cl": settings.lambda_cl,
        "tau": settings.tau, "margin": _margin(task, corpus), "selection_metric": task.primary_metric})
    head_params = head_parameters(student)
    in_head = {id(p) for p in head_params}
    if strategy.options["trains"] == "head":
        for parameter in student.parameters():
            parameter.requires_grad_(id(parameter) in in_head)
        groups = [{"params": head_params}]
    else:
        body = [p for p in student.parameters() if p.requires_grad and id(p) not in in_head]
        groups = [{"params": head_params}, {"params": body, **(
            {"lr": settings.body_learning_rate} if settings.body_learning_rate is not None else {})}]
    criterion = _criterion(task, [data.targets[u] for u in train_ids], settings.class_weighting)
    hooks = StrategyRun(strategy, torch_seed, len(train_ids), criterion, task.output_size)
    optimiser = torch.optim.RMSprop([g for g in groups if g["params"]], lr=settings.learning_rate)
    tapped = tap(student)
    train_targets = _target_tensor(task, [data.targets[u] for u in train_ids])
    val_true = np.asarray([data.targets[u] for u in val_ids])
    states, epoch_box = {}, [0]

    def step(index):
        optimiser.zero_grad(set_to_none=True)
        # the strategy's transform (views) builds the batch's inputs from ctx.index: nothing to pass here
        loss = hooks.batch_loss(tapped, tapped, index, (), train_targets[torch.as_tensor(index)])
        loss.backward()
        optimiser.step()
        return loss

    def evaluate(model):
        epoch_box[0] += 1
        epoch = epoch_box[0]
        noisy = [inputs.features(noise.noisy(data.audio[u], u, settings.snr_db, "val", fold, rep, epoch))
                 for u in val_ids]
        outputs, _ = _outputs_and_embeddings(student, inputs, noisy, settings.batch_size)
        loss = float(criterion(torch.from_numpy(outputs), _target_tensor(task, val_true)))
        states[epoch] = {k: v.detach().clone() for k, v in student.state_dict().items()}
        metric = task.metrics(val_true, outputs)[task.primary_metric]
        return {"loss": loss, task.primary_metric: metric}

    lengths = np.asarray([clean_features[u].shape[0] for u in train_ids])
    if settings.max_frames is not None:
        lengths = np.minimum(lengths, settings.max_frames)
    fitted = run_epochs(student, step, evaluate, lambda: True, lengths=lengths, batch_size=settings.batch_size,
                        rng=order_rng, max_epochs=settings.epochs, patience=None, progress=progress,
                        tag=f"[{variant}] ", items=hooks.epoch_items, select=task.primary_metric)
    curve = fitted["curve"]
    chosen = separated_best_epochs({row["epoch"]: row[f"val_{task.primary_metric}"] for row in curve},
                                   settings.n_best)
    return {e: states[e] for e in chosen}, curve, chosen


def test_sets(data: AdaptData, settings: CtslSettings) -> dict[str, list[np.ndarray]]:
    """condition -> the test utterances' features: clean, and the TEST-pool noise at each test SNR (one draw each)."""
    sets = {CLEAN: [data.inputs.features(data.audio[u]) for u in data.test]}
    for snr in settings.test_snrs:
        sets[snr_condition(snr)] = [data.inputs.features(data.test_noise.noisy(data.audio[u], u, snr, "test", snr))
                                    for u in data.test]
    return sets


def score_rows(model, states: dict, sets: dict, data: AdaptData, task: Task, settings: CtslSettings, *,
               seed: int, keys: dict) -> list[dict]:
    """One row per (chosen epoch, condition, test group, attribute) (columns :data:`SCORE_COLUMNS`)."""
    groups = evaluation_groups(data.test, settings.test_groups, seed, "ctsl", keys["fold"])
    position = {u: i for i, u in enumerate(data.test)}
    true = np.asarray([data.targets[u] for u in data.test])
    rows = []
    for epoch, state in states.items():
        model.load_state_dict(state)
        for condition, arrays in sets.items():
            outputs, _ = _outputs_and_embeddings(model, data.inputs, arrays, settings.batch_size)
            for g, members in enumerate(groups):
                rows_of = [position[u] for u in members]
                for attribute, (metric, value) in task_scores(task, true[rows_of], outputs[rows_of]).items():
                    rows.append({**keys, "epoch": epoch, "condition": condition, "group": g,
                                 "attribute": attribute, "metric": metric, "value": value})
    return rows


def embedding_rows(teacher, model, state: dict, data: AdaptData, task: Task, settings: CtslSettings, *,
                   corpus: str, keys: dict) -> list[dict]:
    """The embedding analysis (see the module doc) of ``model`` with ``state``, one row per test SNR."""
    model.load_state_dict(state)
    val = list(data.val)
    clean = [data.inputs.features(data.audio[u]) for u in val]
    _, teacher_clean = _outputs_and_embeddings(teacher, data.inputs, clean, settings.batch_size)
    targets = _target_tensor(task, [data.targets[u] for u in val])
    margin = _margin(task, corpus)
    rows = []
    for snr in settings.test_snrs:
        noisy = [data.inputs.features(data.test_noise.noisy(data.audio[u], u, snr, "analysis", snr)) for u in val]
        _, student_noisy = _outputs_and_embeddings(model, data.inputs, noisy, settings.batch_size)
        rmse, cosine, infonce = [], [], []
        for start in range(0, len(val), settings.batch_size):
            t, s = teacher_clean[start:start + settings.batch_size], student_noisy[start:start + settings.batch_size]
            rmse.append(float(transfer_loss(t, s)))
            cosine.append(float(torch.nn.functional.cosine_similarity(t, s, dim=1).mean()))
            infonce.append(float(contrastive_loss(t, s, negative_mask(targets[start:start + settings.batch_size],
                                                                      margin), settings.tau)))
        rows.append({**keys, "condition": snr_condition(snr), "rmse": float(np.mean(rmse)),
                     "cosine": float(np.mean(cosine)), "infonce": float(np.mean(infonce)), "batches": len(rmse)})
    return rows


def adapt_and_score(teacher, variant: str, data: AdaptData, task: Task, settings: CtslSettings, *, seed: int,
                    fold: int, rep: int, corpus: str, model_name: str, progress=None):
    """:func:`adapt`, then :func:`score_rows` and :func:`embedding_rows`: (scores, embeddings, curve, chosen)."""
    tick = time.perf_counter()
    states, curve, chosen = adapt(teacher, variant, data, task, settings, seed=seed, fold=fold, rep=rep,
                                  corpus=corpus, progress=progress)
    if progress is not None:
        progress(f"[{variant}] chosen epochs {chosen} ({time.perf_counter() - tick:.1f} s)")
    keys = {"model": model_name, "strategy": variant, "fold": int(fold), "rep": int(rep)}
    scorer = copy.deepcopy(teacher)
    scores = pd.DataFrame(score_rows(scorer, states, test_sets(data, settings), data, task, settings, seed=seed,
                                     keys=keys), columns=SCORE_COLUMNS)
    embeddings = pd.DataFrame(embedding_rows(teacher, scorer, states[chosen[0]], data, task, settings,
                                             corpus=corpus, keys={**keys, "epoch": chosen[0]}))
    return scores, embeddings, pd.DataFrame(curve), chosen


def settings_record(settings: CtslSettings) -> dict:
    record = asdict(settings)
    record["test_snrs"] = list(settings.test_snrs)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
