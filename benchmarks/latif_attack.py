"""Cost of Latif et al.'s white-box attacks on one core: FGSM and BIM evaluation against a clean evaluation.

Usage (from the repository root)::

    .venv/bin/python benchmarks/latif_attack.py [--models proposed cnn ...] [--stand-in] [--segments 16]
        [--batch-size 16] [--eps 0.08] [--iterations 10] [--repeat 2]

What is timed, per model, with :func:`sernoise.latif.adversarial.adversarial_predictions` on
``--segments`` random normalised segments (256 frames x 128 bins, the paper's; the cost does not
depend on the values) of as many utterances: ``clean`` (the forward pass only, no attack), ``fgsm``
(one input-gradient pass, then the forward pass on the attacked segments) and ``bim`` (``--iterations``
gradient passes, then the forward pass).  Wall time per segment (best of ``--repeat`` after one
untimed warm-up call) and the ratio to the clean evaluation: what an adversarial test condition
costs against a clean one.  A gradient pass is a forward pass plus a backward pass to the input
only (the weights get no gradient), so FGSM should cost about twice a clean evaluation and BIM
about ``iterations + 1`` to ``2·iterations + 1`` times (the stand-in on a 2-core machine under a
load of 4-5, two runs: FGSM 1.9x and 2.3x, BIM 15x and 26x: wall times there are noisy).

Models: :func:`sernoise.latif.models.build_model` (random weights, seed 0; ``--models`` defaults
to all of ``MODELS``), or with ``--stand-in`` a small local CNN-LSTM of the same input and output
shapes (for a checkout without :mod:`sernoise.latif.models`).  One torch thread: per-core figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import platform  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import best_of, parser  # noqa: E402
from torch import nn  # noqa: E402

CONTEXT, BINS, CLASSES = 256, 128, 4


class StandIn(nn.Module):
    """Two conv blocks (batch norm, ReLU, 2x2 pooling), an LSTM over time and a linear layer: a small CNN-LSTM."""

    def __init__(self, n_classes: int = CLASSES, bins: int = BINS):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        )
        self.lstm = nn.LSTM(16 * (bins // 4), 64, batch_first=True)
        self.out = nn.Linear(64, n_classes)

    def forward(self, x):
        h = self.conv(x.unsqueeze(1))  # (batch, 16, time/4, bins/4)
        h = h.permute(0, 2, 1, 3).flatten(2)
        _, (last, _) = self.lstm(h)
        return self.out(last[-1])


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--models", nargs="+", default=None)
    arguments.add_argument("--stand-in", action="store_true", help="time a small local CNN-LSTM instead")
    arguments.add_argument("--segments", type=int, default=16)
    arguments.add_argument("--batch-size", type=int, default=16)
    arguments.add_argument("--eps", type=float, default=0.08)
    arguments.add_argument("--iterations", type=int, default=10)
    arguments.add_argument("--repeat", type=int, default=2)
    args = arguments.parse_args()
    torch.set_num_threads(1)

    from sernoise.latif.adversarial import adversarial_predictions

    if args.stand_in:
        builders = {"stand-in CNN-LSTM": lambda: StandIn()}
    else:
        from sernoise.latif.models import MODEL_LABELS, MODELS, build_model

        builders = {MODEL_LABELS.get(name, name): (lambda name=name: build_model(name, CLASSES))
                    for name in (args.models or MODELS)}
    rng = np.random.default_rng(0)
    segments = rng.standard_normal((args.segments, CONTEXT, BINS)).astype(np.float32)
    index = np.arange(args.segments)
    labels = rng.integers(0, CLASSES, args.segments)
    attacks = {"clean": {}, "fgsm": {"eps": args.eps}, "bim": {"eps": args.eps, "iterations": args.iterations}}

    print(f"# Latif et al. attack cost: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"1 thread; {args.segments} segments of {CONTEXT}x{BINS}, batch {args.batch_size}, eps {args.eps}, "
          f"BIM {args.iterations} iterations (step eps/4); best of {args.repeat}")
    header = f"{'model':<24} {'params':>9} {'clean ms/seg':>13} {'FGSM ms/seg':>12} {'x clean':>8} " \
             f"{'BIM ms/seg':>11} {'x clean':>8}"
    print(header)
    print("-" * len(header))
    for label, build in builders.items():
        torch.manual_seed(0)
        model = build().eval()
        seconds = {
            attack: best_of(args.repeat, lambda model=model, attack=attack, options=options: adversarial_predictions(
                model, segments, index, labels, attack, batch_size=args.batch_size, **options), warmup=True)
            for attack, options in attacks.items()
        }
        per = {attack: 1000 * s / args.segments for attack, s in seconds.items()}
        n_parameters = sum(p.numel() for p in model.parameters())
        print(f"{label:<24} {n_parameters:>9,} {per['clean']:>13.2f} {per['fgsm']:>12.2f} "
              f"{per['fgsm'] / per['clean']:>8.1f} {per['bim']:>11.2f} {per['bim'] / per['clean']:>8.1f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-min load average at the end: {load:.2f} on {os.cpu_count()} cores: other work inflates wall times)")


if __name__ == "__main__":
    main()
