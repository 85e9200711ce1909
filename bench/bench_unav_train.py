"""Training throughput of E-CMA on CoLeaF (variant ``ecma``) over UnAV-100-sized variable-length videos,
against the LLP epoch measured in the same run.

UnAV-100's videos are untrimmed: 10 s to several minutes, mean about 42 s, a long tail. Lengths here, in
one-second segments, are drawn from a lognormal with median 32 and sigma 0.75 (mean ~42), clipped to
[10, 400]; 100 classes; features of CLIP/CLAP shapes (768-d each). Each epoch includes the teacher's masks
and validation (on N/10 videos), as bench_train.py's. Reported: s/epoch scaled to 10,000 videos, the LLP
epoch (10 segments, 25 classes, same N) for scale, and the share of computed segments that are padding,
with and without bucketing (train.bucket_batches).

    python bench/bench_unav_train.py --n-train 1000          # both bucketings + the LLP epoch
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import ecma  # noqa: F401  before torch, which reads ecma's OpenMP settings when it loads (ecma/runtime_env.py)
import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_train import gemm_rate, synthetic_split  # noqa: E402  the LLP epoch's helpers

from ecma.config import config_from_dict  # noqa: E402
from ecma.data.batching import bucketed_order, padding_fraction  # noqa: E402
from ecma.data.shards import FeatureSet  # noqa: E402
from ecma.data.splits import SplitData  # noqa: E402
from ecma.training.train import train  # noqa: E402

D, UNAV_CLASSES = 768, 100


def unav_lengths(n: int, rng) -> np.ndarray:
    """Segments per video: lognormal(log 32, 0.75) clipped to [10, 400] (mean ~42, a few minutes long)."""
    return np.clip(np.round(rng.lognormal(np.log(32.0), 0.75, n)), 10, 400).astype(np.int64)


def unav_split(n: int, rng, with_truth: bool) -> SplitData:
    lengths = unav_lengths(n, rng)
    t = int(lengths.max())
    audio = np.zeros((n, t, D), np.float32)
    visual = np.zeros((n, t, D), np.float32)
    for i, length in enumerate(lengths):
        audio[i, :length] = rng.standard_normal((length, D), dtype=np.float32)
        visual[i, :length] = rng.standard_normal((length, D), dtype=np.float32)
    labels = (rng.random((n, UNAV_CLASSES)) < 0.02).astype(np.float32)
    data = SplitData(FeatureSet([f"u{i:08d}" for i in range(n)], audio, visual, {"bench": True}, [], lengths=lengths), labels)
    if with_truth:
        real = np.arange(t)[None, None, :] < lengths[:, None, None]
        data.gt_audio = ((rng.random((n, UNAV_CLASSES, t)) < 0.01) & real).astype(np.uint8)
        data.gt_visual = ((rng.random((n, UNAV_CLASSES, t)) < 0.01) & real).astype(np.uint8)
    return data


def epoch_padding(lengths: np.ndarray, batch_size: int, bucket_batches: int) -> float:
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g)
    order = bucketed_order(order, torch.from_numpy(lengths), batch_size, bucket_batches, g).numpy()
    return padding_fraction(lengths, [order[i : i + batch_size] for i in range(0, len(order), batch_size)])


def one_epoch(train_data, val_data, classes, bucket_batches: int, args) -> float:
    cfg = config_from_dict({
        "model": {"backbone": "coleaf", "num_classes": len(classes)},
        "train": {"variant": "ecma", "epochs": 1, "threads": args.threads, "amp": args.amp, "bucket_batches": bucket_batches},
        "pseudo": {"warmup_epochs": 0},  # masks from the first epoch: the full cost
        "coleaf": {"denoise": len(classes) == 25},  # the shipped noise ratios are LLP's
    })
    result = train(cfg, train_data, val_data, f"{args.output_dir}/{len(classes)}-{bucket_batches}-{time.time_ns()}",
                   classes=classes, fingerprint={}, progress=False)
    return result.history[0]["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--output-dir", default="/tmp/ecma-bench-unav")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n, n_val = args.n_train, max(args.n_train // 10, 1)
    unav_train, unav_val = unav_split(n, rng, False), unav_split(n_val, rng, True)
    lengths = unav_train.features.lengths
    print(f"lengths: mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, max {lengths.max()} segments; "
          f"{n} training videos, {n_val} validation; matmul {gemm_rate():.0f} GFLOP/s before training; "
          f"{args.threads} threads")
    full = unav_lengths(10000, np.random.default_rng(1))  # padding at UnAV-100's size, from the lengths alone
    for buckets in (0, 8, 32):
        print(f"padding with bucket_batches {buckets}: {100 * epoch_padding(lengths, 128, buckets):.1f}% of computed "
              f"segments here, {100 * epoch_padding(full, 128, buckets):.1f}% over 10,000 videos")
    scale = 10000 / n
    unav = {b: one_epoch(unav_train, unav_val, [str(i) for i in range(UNAV_CLASSES)], b, args) for b in (32, 0)}
    llp = one_epoch(synthetic_split(n, 10, D, 25, rng, False), synthetic_split(n_val, 10, D, 25, rng, True),
                    [str(i) for i in range(25)], 32, args)
    for b, s in unav.items():
        print(f"UnAV-sized epoch, bucket_batches {b}: {s:.1f} s for {n} videos = {s * scale:.0f} s per 10,000 videos "
              f"({s / llp:.1f}x the LLP epoch)")
    print(f"LLP-sized epoch (10 segments, 25 classes): {llp:.1f} s for {n} videos = {llp * scale:.0f} s per 10,000 videos")


if __name__ == "__main__":
    main()
