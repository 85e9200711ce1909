"""Training throughput and peak memory of full E-CMA (student + EMA teacher + masks) on LLP-sized features.

Synthesises 11,849 videos x 10 segments x 768 per modality (CLIP/CLAP shapes),
trains one epoch over the 10,000 training videos with the default model (the CoLeaF backbone, its
auxiliary networks included, CoLeaF's batch of 128), and validates on 649.

    python bench/bench_train.py                      # E-CMA on CoLeaF, 1 epoch
    python bench/bench_train.py --variant coleaf     # CoLeaF alone
    python bench/bench_train.py --variant han_ecma --num-layers 4 --batch-size 64   # E-CMA on HAN
    python bench/bench_train.py --no-amp        # float32 throughout (bf16 autocast is the default where
                                                # the hardware has it: CUDA, AVX512-BF16/AMX CPUs)
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import torch

from ecma.config import config_from_dict
from ecma.data import SplitData
from ecma.device import amp_dtype, precision_name, resolve_device
from ecma.shards import FeatureSet
from ecma.train import train
from ecma.variants import VARIANT_TABLE


def synthetic_split(n: int, t: int, d: int, c: int, rng, with_truth: bool) -> SplitData:
    names = [f"v{i:011d}_0_10" for i in range(n)]
    audio = rng.standard_normal((n, t, d), dtype=np.float32)
    visual = rng.standard_normal((n, t, d), dtype=np.float32)
    labels = (rng.random((n, c)) < 0.08).astype(np.float32)
    data = SplitData(FeatureSet(names, audio, visual, {"bench": True}, []), labels)
    if with_truth:
        data.gt_audio = (rng.random((n, c, t)) < 0.05).astype(np.uint8)
        data.gt_visual = (rng.random((n, c, t)) < 0.05).astype(np.uint8)
    return data


def gemm_rate() -> float:
    """GFLOP/s of a float32 matmul of the training's shapes: how fast this machine is right now (shared
    virtual machines vary by +-20% from run to run; compare epochs with this figure beside them)."""
    a, b = torch.randn(1280, 1024), torch.randn(1024, 256)
    a @ b
    t = time.perf_counter()
    for _ in range(30):
        a @ b
    return 30 * 2 * 1280 * 1024 * 256 / (time.perf_counter() - t) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="ecma")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, help="default: the config's (CoLeaF's 128)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--num-layers", type=int, help="encoder layers (default: the config's, CoLeaF's 1)")
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                    help="bf16 autocast where the hardware has it (train.amp; --no-amp: float32)")
    ap.add_argument("--output-dir", default="/tmp/ecma-bench-train")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    train_data = synthetic_split(args.n_train, 10, 768, 25, rng, False)
    val_data = synthetic_split(649, 10, 768, 25, rng, True)
    model = {"backbone": VARIANT_TABLE[args.variant].backbone}
    if args.num_layers:
        model["num_layers"] = args.num_layers
    train_section = {"variant": args.variant, "epochs": args.epochs, "threads": args.threads, "amp": args.amp}
    if args.batch_size:
        train_section["batch_size"] = args.batch_size
    cfg = config_from_dict({"model": model, "train": train_section,
                            "pseudo": {"warmup_epochs": 0}})  # masks from the first epoch: the full cost
    if args.threads:
        torch.set_num_threads(args.threads)
    rate = gemm_rate()
    precision = precision_name(amp_dtype(resolve_device(cfg.train.device), cfg.train.amp))
    t0 = time.perf_counter()
    result = train(cfg, train_data, val_data, f"{args.output_dir}/{args.variant}-{time.time_ns()}",
                   classes=[str(i) for i in range(25)], fingerprint={}, progress=False)
    total = time.perf_counter() - t0
    epoch_s = [h["seconds"] for h in result.history]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {cfg.train.device}; "
          f"matmul {rate:.0f} GFLOP/s (float32) before training; {precision}")
    print(f"variant {args.variant} ({cfg.model.backbone} backbone), d_model {cfg.model.d_model} x {cfg.model.num_layers} layers, "
          f"batch {cfg.train.batch_size}")
    print(f"epoch over {args.n_train} videos (incl. teacher masks and validation on 649): {min(epoch_s):.1f} s "
          f"({args.n_train / min(epoch_s):.0f} videos/s); total {total:.1f} s; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
