"""Training throughput of the five Latif et al. models on one core: segments per second, per model.

Usage (from the repository root)::

    .venv/bin/python benchmarks/latif_throughput.py [--models proposed densenet ...] [--steps 5]
                                                    [--warmup 2] [--batch 32]

What is timed: ``--steps`` training steps (forward, cross-entropy on 4 classes, backward, Adam
step at lr 1e-3) of each model of sernoise.latif.models built with seed 0, on one batch of
``--batch`` random default-size segments (256 frames x 128 bins; the cost does not depend on the
values), after ``--warmup`` untimed steps (allocator and oneDNN kernel selection).  One thread
(``torch.set_num_threads(1)`` and the BLAS/OpenMP variables), so the figures are per core.

Printed per model: trainable parameters, forward GFLOP per segment (torch's FLOP counter:
convolutions, matrix products and the LSTM's; element-wise work not counted), segments per
second from wall time and from CPU time (``time.process_time``: the figure to trust on a loaded
machine), and the CPU throughput relative to the proposed model (when it was timed).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import _common  # noqa: E402,F401  (puts workflow/scripts on sys.path)
from sernoise.latif.models import CONTEXT, MODEL_LABELS, MODELS, N_BINS, build_model, count_parameters  # noqa: E402

N_CLASSES = 4


def forward_flops(model: torch.nn.Module, segment: torch.Tensor) -> int:
    """FLOPs of one forward pass over one segment (counted in eval mode: batch norm cannot train on one row)."""
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(segment)
    finally:
        model.train()
    return counter.get_total_flops()


def throughput(name: str, batch: int, steps: int, warmup: int) -> dict:
    model = build_model(name, N_CLASSES, seed=0)
    model.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, CONTEXT, N_BINS, generator=gen)
    y = torch.randint(0, N_CLASSES, (batch,), generator=gen)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()

    for _ in range(warmup):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"name": name, "params": count_parameters(model), "gflop": forward_flops(model, x[:1]) / 1e9,
            "wall": batch * steps / wall, "cpu": batch * steps / cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 2:
        parser.error("--steps must be >= 1, --warmup >= 0 and --batch >= 2 (batch normalisation needs two)")
    torch.set_num_threads(1)
    print(f"batch {args.batch} x {CONTEXT} frames x {N_BINS} bins, {args.warmup} warm-up + {args.steps} timed "
          f"steps (forward + backward + Adam), 1 thread; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")
    rows = [throughput(name, args.batch, args.steps, args.warmup) for name in args.models]
    reference = next((row["cpu"] for row in rows if row["name"] == "proposed"), None)
    print(f"\n{'model':<24}{'parameters':>12}{'GFLOP/seg':>11}{'seg/s wall':>12}{'seg/s CPU':>11}"
          f"{'vs proposed':>13}")
    for row in rows:
        ratio = f"{row['cpu'] / reference:.2f}x" if reference else "-"
        print(f"{MODEL_LABELS[row['name']]:<24}{row['params']:>12,}{row['gflop']:>11.3f}{row['wall']:>12.1f}"
              f"{row['cpu']:>11.1f}{ratio:>13}")


if __name__ == "__main__":
    main()
