"""White-box adversarial attacks on spectrogram segments (Latif et al. §5.3, Table 3): FGSM and BIM.

Both attacks perturb the model's input, the normalised log-spectrogram segment, within an L∞
ball of radius ``ε`` (the paper: ε = 0.08), to raise the cross-entropy of the true class (the
segment's utterance label; untargeted):

* FGSM (Goodfellow et al.): ``x' = x + ε·sign(∇ₓ L(x, y))``, one step.
* BIM (Kurakin et al.): ``iterations`` steps ``x' ← x' + step·sign(∇ₓ L(x', y))``, each followed by
  the projection onto the ball, ``x' ← x + clip(x' − x, −ε, ε)``.  Defaults: 10 iterations of
  ``step = ε/4`` (the ratio of torchattacks' BIM defaults, 2/255 against 8/255): the iterate can
  reach any corner of the ball in four steps and spends the rest following the loss along it.
  Kurakin et al.'s own rule (step 1 pixel level, ``min(ε+4, 1.25ε)`` iterations, ε in 0-255
  levels) is tied to the pixel scale of images and has no meaning for spectrogram values.

White box: gradients flow through the model itself, in eval mode (batch-norm running statistics
and dropout frozen, as when the model is tested; every module's own mode is restored after), and
the model's weights receive no gradient.  On CUDA, cuDNN is switched off for the attack's forward
pass: cuDNN's LSTM cannot run its backward pass in eval mode.

No clamping: spectrogram segments are normalised features, not images in [0, 1], so the
adversarial input is not clipped to any range.  That is why torchattacks is not used: its attacks
take inputs in [0, 1] and clamp every adversarial example to [0, 1], which would wipe out the
negative values of a normalised spectrogram.

:func:`adversarial_predictions` attacks every segment (in batches; a segment's gradient does not
depend on the rest of its batch, the model being in eval mode) and averages the posteriors of the
attacked segments per utterance, as clean predictions are (:mod:`sernoise.latif.training`).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from sernoise.latif.training import eval_mode, model_device, utterance_posteriors

PAPER_EPS = 0.08
BIM_ITERATIONS = 10
BIM_STEP_FRACTION = 0.25  # default step = ε · this
ATTACKS = ("clean", "fgsm", "bim")


class AttackError(ValueError):
    """An attack is unknown or badly parameterised."""


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(float(eps)) and eps >= 0):
        raise AttackError(f"eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _no_cudnn(device: torch.device):
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=False, benchmark=torch.backends.cudnn.benchmark,
                                      deterministic=torch.backends.cudnn.deterministic)


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ₓ of the summed cross-entropy of ``model(x)`` against classes ``y`` (one row's gradient is its own loss's)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), _no_cudnn(x.device):
        loss = functional.cross_entropy(model(x).float(), y, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, x)
    return gradient


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(x) or not x.dtype.is_floating_point:
        raise AttackError("the input must be a float tensor (batch, context, bins)")
    y = torch.as_tensor(y, device=x.device)
    if y.shape != x.shape[:1] or y.dtype.is_floating_point:
        raise AttackError(f"the labels must be one class index per input row ({x.shape[0]}), got shape "
                          f"{tuple(y.shape)} ({y.dtype})")
    return y.long()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = PAPER_EPS) -> torch.Tensor:
    """FGSM: ``x + ε·sign(∇ₓ CE(model(x), y))``, the model in eval mode; no clamping (see the module doc)."""
    eps = _check_eps(eps)
    y = _check_batch(x, y)
    with eval_mode(model):
        gradient = _input_gradient(model, x, y)
    return (x.detach() + eps * gradient.sign()).detach()


def bim(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = PAPER_EPS, step: float | None = None,
        iterations: int = BIM_ITERATIONS) -> torch.Tensor:
    """BIM: ``iterations`` FGSM steps of size ``step`` (default ε/4), each projected onto the L∞ ε-ball around ``x``."""
    eps = _check_eps(eps)
    step = eps * BIM_STEP_FRACTION if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(float(step)) and step > 0):
        raise AttackError(f"bim: step must be a finite number > 0, got {step!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise AttackError(f"bim: iterations must be an integer >= 1, got {iterations!r}")
    y = _check_batch(x, y)
    origin = x.detach()
    adversarial = origin.clone()
    with eval_mode(model):
        for _ in range(int(iterations)):
            adversarial = adversarial + float(step) * _input_gradient(model, adversarial, y).sign()
            adversarial = origin + (adversarial - origin).clamp(-eps, eps)
    return adversarial.detach()


_OPTIONS = {"clean": (), "fgsm": ("eps",), "bim": ("eps", "step", "iterations")}


def adversarial_predictions(model: nn.Module, segments, utterance_index, labels, attack: str, *,
                            batch_size: int = 64, **options) -> tuple[np.ndarray, np.ndarray]:
    """(utterance ids, mean posteriors of the attacked segments) of ``model`` under ``attack``.

    ``segments`` (n, context, bins) normalised spectrogram segments, ``utterance_index`` (n,) each
    segment's utterance, ``labels`` one class per utterance (indexed by ``utterance_index``): a
    segment is attacked with its utterance's label.  ``attack``: ``fgsm``, ``bim`` (``options``:
    their keyword arguments, e.g. ``eps=0.08``) or ``clean`` (no perturbation, the same path).
    The model is in eval mode throughout and its modes are restored after.
    """
    if attack not in _OPTIONS:
        raise AttackError(f"unknown attack {attack!r}; known: {list(ATTACKS)}")
    unknown = sorted(set(options) - set(_OPTIONS[attack]))
    if unknown:
        raise AttackError(f"attack {attack!r}: unknown option(s) {unknown}; it takes {list(_OPTIONS[attack])}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise AttackError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    segments = np.asarray(segments)
    utterance_index = np.asarray(utterance_index)
    labels = np.asarray(labels)
    if segments.ndim != 3 or utterance_index.shape != (len(segments),) or len(segments) == 0:
        raise AttackError(f"segments must be a non-empty (n, context, bins) array with one utterance index each; "
                          f"got {segments.shape} and {utterance_index.shape}")
    if utterance_index.min() < 0 or utterance_index.max() >= len(labels):
        raise AttackError(f"utterance_index must lie in [0, {len(labels)}) (one label per utterance)")
    segment_labels = torch.from_numpy(labels[utterance_index].astype(np.int64))
    device = model_device(model)
    run = {"fgsm": fgsm, "bim": bim}.get(attack)
    parts = []
    with eval_mode(model):
        for start in range(0, len(segments), int(batch_size)):
            x = torch.from_numpy(np.ascontiguousarray(segments[start:start + batch_size], dtype=np.float32)).to(device)
            if run is not None:
                x = run(model, x, segment_labels[start:start + batch_size].to(device), **options)
            with torch.no_grad():
                parts.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
    return utterance_posteriors(np.concatenate(parts), utterance_index)
