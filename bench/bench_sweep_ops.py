"""How many tensor operations one E-CMA training epoch dispatches: the basis of a sweep's GPU-time estimate.

On a GPU, an epoch of the default model on LLP-sized features is a few TFLOP of arithmetic, well under a second,
so its time is set by launching its many small operations one after another (eager PyTorch). This counts the
operations torch's dispatcher runs (forward, backward, optimiser and EMA steps, the teacher's masks, casts of
bf16 autocast) in real epochs of N = 256 and 512 synthetic videos of LLP's CLIP/CLAP shapes (batch 128, the
default CoLeaF model, variant ecma); their difference is what 256 more videos cost (two training steps and two
teacher batches), and scaling it to LLP's 10,000 training videos (79 batches) plus the validation of the small
run gives an epoch's count. Counted on the CPU; a CUDA epoch dispatches the same operations.

    python bench/bench_sweep_ops.py [--variant ecma] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from bench_train import synthetic_split
from ecma.config import config_from_dict
from ecma.training.train import train

LLP_TRAIN_VIDEOS = 10_000
BATCH = 128


class CountOperations(TorchDispatchMode):
    """Counts every operation dispatched to a kernel while active."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def operations(n_train: int, variant: str, n_val: int, seed: int = 0) -> tuple[int, int]:
    """(operations dispatched, floating-point operations counted by torch's FlopCounterMode) of one epoch."""
    rng = np.random.default_rng(seed)
    train_split = synthetic_split(n_train, 10, 768, 25, rng, with_truth=False)
    val_split = synthetic_split(n_val, 10, 768, 25, rng, with_truth=True)
    cfg = config_from_dict({"train": {"epochs": 1, "variant": variant, "batch_size": BATCH},
                            "pseudo": {"warmup_epochs": 0}})
    flops = FlopCounterMode(display=False)
    with tempfile.TemporaryDirectory() as out, flops, CountOperations() as counter:
        train(cfg, train_split, val_split, out, classes=[f"c{i}" for i in range(25)], fingerprint={}, progress=False)
    return counter.count, flops.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="ecma")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-val", type=int, default=649, help="validation videos (LLP: 649; a fixed cost per epoch)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    (small, small_flops), (large, large_flops) = (operations(2 * BATCH, args.variant, args.n_val),
                                                  operations(4 * BATCH, args.variant, args.n_val))
    per_batch, flops_per_batch = (large - small) / 2, (large_flops - small_flops) / 2
    batches = math.ceil(LLP_TRAIN_VIDEOS / BATCH)
    epoch_ops = batches * per_batch + small - 2 * per_batch
    epoch_flops = batches * flops_per_batch + small_flops - 2 * flops_per_batch
    print(f"epoch of {2 * BATCH} videos: {small:,} operations, {small_flops / 1e12:.3f} TFLOP; "
          f"of {4 * BATCH}: {large:,}, {large_flops / 1e12:.3f} TFLOP")
    print(f"per {BATCH} videos (a training step and a teacher batch): {per_batch:,.0f} operations, "
          f"{flops_per_batch / 1e12:.3f} TFLOP")
    print(f"per {LLP_TRAIN_VIDEOS:,}-video epoch ({batches} batches) with a validation: "
          f"{epoch_ops:,.0f} operations, {epoch_flops / 1e12:.2f} TFLOP")

if __name__ == "__main__":
    main()
