"""The six strategies of Leem et al. as training strategies (:mod:`sernoise.training.strategies`).

==============  =================================================  =========  =====================
name            what                                               trains     extra loss
==============  =================================================  =========  =====================
ctsl_original   the clean model itself (the teacher), not adapted  nothing    none
ctsl_rh         retrain the head on noisy speech                   head       none
ctsl_rm         retrain the whole model on noisy speech            all        none
ctsl_rm_tl      RM + transfer loss                                 all        λ_TL·L_TL
ctsl_rm_cl      RM + contrastive loss                              all        λ_CL·L_CL
ctsl_rm_tl_cl   RM + both (the proposed method)                    all        λ_TL·L_TL + λ_CL·L_CL
==============  =================================================  =========  =====================

λ_TL = 100 and λ_CL = 10 by default (paper §3.3), τ = 0.1.  What a strategy trains is in its
``options["trains"]``; the adaptation job (:mod:`sernoise.ctsl.adapt`) gives the optimiser the
parameters of the head (:func:`head_parameters`) or of the whole model accordingly.

Every adapting strategy has a ``transform`` hook that replaces the batch by its noisy copy: it
asks ``views(ctx)`` for ``(clean_inputs, noisy_inputs)`` of the batch's examples (``ctx.index``;
the job mixes the target noise afresh every epoch, :mod:`sernoise.ctsl.target_noise`) and keeps
the clean inputs for the ``extra_loss`` hook, which embeds them with the frozen teacher
(:func:`sernoise.training.strategies.frozen` on the teacher's ``embed``) and compares them with
the student's embedding of the noisy batch.  The student's embedding is the one of the forward
pass (:class:`EmbeddingTap` keeps it), so it is computed once per batch.

Any model with ``embed(*inputs)`` -> (batch, dim) and a head ``output(dense(embedding))`` fits
(the T-DNN and the E-DNN; the registry's ``embedding: True`` families).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sernoise.training.strategies import BatchContext, Strategy, StrategyError, frozen, register_strategy

if TYPE_CHECKING:
    import torch
    from torch import nn

# short name (config ctsl.strategies) -> (table label, what it trains, transfer loss, contrastive loss)
VARIANTS = {
    "original": ("Original", "nothing", False, False),
    "rh": ("RH", "head", False, False),
    "rm": ("RM", "all", False, False),
    "rm_tl": ("RM+TL", "all", True, False),
    "rm_cl": ("RM+CL", "all", False, True),
    "rm_tl_cl": ("RM+TL+CL", "all", True, True),
}
PREFIX = "ctsl_"
LAMBDA_TL = 100.0
LAMBDA_CL = 10.0


def registry_name(variant: str) -> str:
    """``rm_tl_cl`` -> ``ctsl_rm_tl_cl`` (the name in the strategy registry)."""
    if variant not in VARIANTS:
        raise StrategyError(f"unknown CTSL strategy {variant!r}; known: {list(VARIANTS)}")
    return PREFIX + variant


def label(variant: str) -> str:
    registry_name(variant)
    return VARIANTS[variant][0]


def head(model: nn.Module, embedding: torch.Tensor) -> torch.Tensor:
    """The model's outputs from its utterance embedding (T-DNN and E-DNN: ``output(dense(.))``)."""
    return model.output(model.dense(embedding.to(model.output.weight.dtype)))


def head_parameters(model: nn.Module) -> list:
    """The parameters RH retrains: the dense layers and the output layer."""
    return [*model.dense.parameters(), *model.output.parameters()]


def _embedding_module(model: nn.Module):
    from torch import nn

    class Embedder(nn.Module):
        """``forward`` = the wrapped model's ``embed`` (so :func:`frozen` can run it)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner.embed(*inputs)

    return Embedder(model)


def tap(model: nn.Module):
    """The student wrapped so that its forward pass keeps its embedding (``last_embedding``) for the extra loss."""
    from torch import nn

    class EmbeddingTap(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.last_embedding = None

        def forward(self, *inputs):
            self.last_embedding = self.inner.embed(*inputs)
            return head(self.inner, self.last_embedding)

    return EmbeddingTap(model)


def student_embedding(ctx: BatchContext):
    """The student's embedding of the (noisy) batch: the one its forward pass kept, else computed now."""
    kept = getattr(ctx.model, "last_embedding", None)
    if kept is not None:
        return kept
    return ctx.model.embed(*ctx.inputs)


def ctsl(variant: str, *, teacher=None, views=None, lambda_tl: float = LAMBDA_TL, lambda_cl: float = LAMBDA_CL,
         tau: float = 0.1, margin: float | None = None, selection_metric: str = "loss") -> Strategy:
    """The CTSL strategy ``variant`` (see the module doc).

    ``teacher``: the clean model (frozen here; needed by the variants with TL or CL);
    ``views(ctx) -> (clean_inputs, noisy_inputs)``: the batch's clean and target-noise inputs
    (needed by every adapting variant); ``margin``: the label difference (target units) that
    makes two rated items negatives (None: class labels; see :func:`sernoise.ctsl.losses.negative_mask`).
    """
    name = registry_name(variant)
    _label, trains, use_tl, use_cl = VARIANTS[variant]
    lambda_tl, lambda_cl, tau = float(lambda_tl), float(lambda_cl), float(tau)
    if lambda_tl < 0 or lambda_cl < 0:
        raise StrategyError(f"strategy {name}: lambda_tl and lambda_cl must be >= 0, got {lambda_tl}, {lambda_cl}")
    if not tau > 0:
        raise StrategyError(f"strategy {name}: tau must be > 0, got {tau}")
    options = {"variant": variant, "trains": trains, "transfer_loss": use_tl, "contrastive_loss": use_cl,
               "lambda_tl": lambda_tl if use_tl else 0.0, "lambda_cl": lambda_cl if use_cl else 0.0,
               "tau": tau, "margin": margin}
    if trains == "nothing":
        return Strategy(name, selection_metric=selection_metric, options=options)
    # The hooks are only called in a training; the plan builds strategies without teacher or views
    # (to check names and options), so their absence is an error where they are used.
    clean_of_batch: dict = {}

    def transform(ctx: BatchContext):
        if views is None:
            raise StrategyError(f"strategy {name}: no target-noise views given (the adaptation job provides them)")
        clean, noisy = views(ctx)
        clean_of_batch.clear()
        clean_of_batch[(ctx.epoch, ctx.batch)] = tuple(clean)
        return tuple(noisy), ctx.targets

    extra_loss = None
    if use_tl or use_cl:
        if teacher is None:
            run_teacher = None
        else:
            run_teacher = frozen(_embedding_module(teacher))

        def extra_loss(ctx: BatchContext):
            from sernoise.ctsl.losses import contrastive_loss, negative_mask, transfer_loss

            if run_teacher is None:
                raise StrategyError(f"strategy {name}: no teacher given")
            clean = clean_of_batch.get((ctx.epoch, ctx.batch))
            if clean is None:
                raise StrategyError(f"strategy {name}: the clean inputs of epoch {ctx.epoch} batch {ctx.batch} "
                                    "are missing (the transform hook did not run)")
            teacher_clean = run_teacher(*clean)
            student = student_embedding(ctx)
            loss = student.sum() * 0.0
            if use_tl:
                loss = loss + lambda_tl * transfer_loss(teacher_clean, student)
            if use_cl:
                negatives = negative_mask(ctx.targets, margin)
                loss = loss + lambda_cl * contrastive_loss(teacher_clean, student, negatives, tau)
            return loss

    return Strategy(name, transform=transform, extra_loss=extra_loss, selection_metric=selection_metric,
                    options=options)


def _factory(variant: str):
    def build(**options) -> Strategy:
        return ctsl(variant, **options)

    build.__name__ = f"ctsl_{variant}"
    return build


for _variant in VARIANTS:
    register_strategy(registry_name(_variant), _factory(_variant), replace=True, stage="ctsl")
