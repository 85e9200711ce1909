"""Training throughput and peak memory of full E-CMA (student + EMA teacher + masks) on LLP-sized features.

Synthesises 11,849 videos x 10 segments x 768 per modality (CLIP/CLAP shapes),
trains one epoch over the 10,000 training videos with the default model (the CoLeaF backbone, its
auxiliary networks included, CoLeaF's batch of 128), and validates on 649.

    python bench/bench_train.py                      # E-CMA on CoLeaF, 1 epoch
    python bench/bench_train.py --variant coleaf     # CoLeaF alone
    python bench/bench_train.py --variant han_ecma --num-layers 4 --batch-size 64   # E-CMA on HAN
    python bench/bench_train.py --no-amp        # float32 throughout (bf16 autocast is the default where
                                                # the hardware has it: CUDA, AVX512-BF16/AMX CPUs)
    python bench/bench_train.py --shapes han    # HAN's feature shapes: 10 x 128 audio, 80 x 2048 frames + 10 x 512
    python bench/bench_train.py --reference PATH_TO_COLEAF_CHECKOUT [--n-train 2048] [--reference-steps 12]

``--reference``: after our epoch, the reference CoLeaF training loop (its own ``train()`` of ``main.py``, run
from the checkout by ``coleaf_reference.py``: CPU, its batch of 128, its three Adams at lr 5e-4, all its loss
terms, i.e. its epoch 2) on the same synthetic features in the same process. Its network's input sizes are
fixed (``nets/net_audiovisual.py``: Linear(128, ...), Linear(2048, ...), Linear(512, ...)), so both sides then
run on HAN's shapes. Its train() is timed over ``--reference-steps`` batches after ``--reference-warmup`` and
extrapolated to a 10,000-video epoch (79 batches); then its own eval() validates the same 649 videos as ours
(its main() does after every train(); timed whole). Both epochs are compared whole (training and validation
on each side) and as training alone. When ``--n-train`` is below 10,000 our epoch is extrapolated too: its
steps and teacher masks scale with the videos, the 649-video validation (timed again on its own after
training) does not.
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import ecma  # noqa: F401  before torch, which reads ecma's OpenMP settings when it loads (ecma/runtime_env.py)
import torch

from ecma.config import config_from_dict
from ecma.data.shards import FeatureSet
from ecma.data.splits import SplitData
from ecma.device import amp_dtype, precision_name, resolve_device
from ecma.models.coleaf.settings import REFERENCE_FEATURE_SIZES
from ecma.registry import variants
from ecma.training.train import train, validate

VARIANT_TABLE = variants()


# (audio dim, visual dim, visual rows per segment, second visual stream's dim or None)
SHAPES = {"clip": (768, 768, 1, None), "han": (128, 2048, 8, 512)}
HAN_MODEL = REFERENCE_FEATURE_SIZES  # CoLeaF's reference network: HAN's feature sizes


def synthetic_split(n: int, t: int, d: int, c: int, rng, with_truth: bool, shapes: str = "clip") -> SplitData:
    names = [f"v{i:011d}_0_10" for i in range(n)]
    da, dv, k, d3 = SHAPES[shapes] if shapes else (d, d, 1, None)
    audio = rng.standard_normal((n, t, da), dtype=np.float32)
    visual = rng.standard_normal((n, t * k, dv), dtype=np.float32)
    visual_3d = None if d3 is None else rng.standard_normal((n, t, d3), dtype=np.float32)
    labels = (rng.random((n, c)) < 0.08).astype(np.float32)
    data = SplitData(FeatureSet(names, audio, visual, {"bench": True}, [], visual_3d, k), labels)
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
    ap.add_argument("--shapes", choices=sorted(SHAPES), help="feature shapes (default clip; han with --reference)")
    ap.add_argument("--reference", type=Path, help="a checkout of github.com/faeghehsardari/coleaf: time its training loop too")
    ap.add_argument("--reference-steps", type=int, default=12, help="reference batches timed (after the warm-up)")
    ap.add_argument("--reference-warmup", type=int, default=2, help="reference batches run before timing")
    args = ap.parse_args()
    if args.reference and args.shapes == "clip":
        print("note: the reference network's input sizes are fixed to HAN's features; running both sides on HAN's shapes")
    shapes = "han" if args.reference else (args.shapes or "clip")
    rng = np.random.default_rng(0)
    train_data = synthetic_split(args.n_train, 10, 768, 25, rng, False, shapes)
    val_data = synthetic_split(649, 10, 768, 25, rng, True, shapes)
    model = {"backbone": VARIANT_TABLE[args.variant].backbone}
    if shapes == "han":
        model.update(HAN_MODEL)
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
    out_dir = f"{args.output_dir}/{args.variant}-{time.time_ns()}"
    result = train(cfg, train_data, val_data, out_dir,
                   classes=[str(i) for i in range(25)], fingerprint={}, progress=False)
    total = time.perf_counter() - t0
    epoch_s = [h["seconds"] for h in result.history]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {cfg.train.device}; "
          f"matmul {rate:.0f} GFLOP/s (float32) before training; {precision}")
    print(f"variant {args.variant} ({cfg.model.backbone} backbone), d_model {cfg.model.d_model} x {cfg.model.num_layers} layers, "
          f"batch {cfg.train.batch_size}")
    print(f"features: {shapes} shapes (audio {train_data.features.audio.shape[1:]}, visual {train_data.features.visual.shape[1:]}"
          f"{'' if train_data.features.visual_3d is None else f', visual_3d {train_data.features.visual_3d.shape[1:]}'})")
    print(f"epoch over {args.n_train} videos (incl. teacher masks and validation on 649): {min(epoch_s):.1f} s "
          f"({args.n_train / min(epoch_s):.0f} videos/s); total {total:.1f} s; peak RSS {peak_mb:.0f} MB")
    ours_epoch = min(epoch_s)
    if args.n_train != 10000 or args.reference:
        from ecma.models.checkpoint import load_model

        net = load_model(Path(out_dir) / "model.pt")[0]
        t1 = time.perf_counter()
        validate(net, val_data, cfg, resolve_device(cfg.train.device))
        val_s = time.perf_counter() - t1
        ours_epoch = (min(epoch_s) - val_s) * 10000 / args.n_train + val_s
        print(f"  validation alone (timed again after training): {val_s:.1f} s; the rest scaled to 10,000 videos "
              f"(x {10000 / args.n_train:.2f}): {ours_epoch:.1f} s per epoch")
    if args.reference:
        ref_train, ref_val = time_reference(args, train_data, val_data, cfg.train.batch_size)
        ref_epoch = ref_train + ref_val
        print(f"\nper 10,000-video epoch, training and validation: ours ({args.variant}, {precision}) {ours_epoch:.1f} s, "
              f"reference CoLeaF (float32) {ref_epoch:.1f} s: ours is {ref_epoch / ours_epoch:.2f}x faster")
        print(f"training alone: ours {ours_epoch - val_s:.1f} s, reference {ref_train:.1f} s: "
              f"{ref_train / (ours_epoch - val_s):.2f}x; validation alone: ours {val_s:.1f} s, reference {ref_val:.1f} s")


def time_reference(args, train_data: SplitData, val_data: SplitData, batch_size: int) -> tuple[float, float]:
    """Seconds per 10,000-video epoch of the reference's own train(), from its per-batch times, and of its own
    eval() over the validation videos (timed whole)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from coleaf_reference import BatchLoader, ReferenceSetup

    setup = ReferenceSetup.build(args.reference, seed=0)
    if setup.args.batch_size != batch_size:
        print(f"note: the reference's batch is {setup.args.batch_size}, ours {batch_size}")
    f = train_data.features
    loader = BatchLoader(f.audio, f.visual, f.visual_3d, train_data.labels, setup.args.batch_size,
                         a_smooth=setup.args.a_smooth, v_smooth=setup.args.v_smooth, seed=0,
                         max_batches=args.reference_warmup + args.reference_steps)
    rate = gemm_rate()
    t0 = time.perf_counter()
    setup.train_epoch(loader, epoch=2)  # 1-based: every loss term on (the cost of later epochs)
    total = time.perf_counter() - t0
    steps = np.diff(loader.times)[args.reference_warmup:]
    if len(steps) == 0:
        sys.exit("no reference batch was timed: raise --n-train or --reference-steps")
    per_epoch = math.ceil(10000 / setup.args.batch_size)
    print(f"\nreference CoLeaF train() (its main.py, CPU, float32, batch {setup.args.batch_size}, Adam lr {setup.args.lr}): "
          f"matmul {rate:.0f} GFLOP/s (float32) before; {len(steps)} timed batches after {args.reference_warmup} warm-up: "
          f"{steps.mean():.2f} s per batch (min {steps.min():.2f}, max {steps.max():.2f}); total {total:.1f} s")
    print(f"  extrapolated to 10,000 videos ({per_epoch} batches): {steps.mean() * per_epoch:.1f} s per epoch (train() only)")
    v = val_data.features
    t0 = time.perf_counter()
    score = setup.validate(v.audio, v.visual, v.visual_3d, val_data.labels, val_data.gt_audio, val_data.gt_visual,
                           Path(args.output_dir) / "reference-val")
    val_s = time.perf_counter() - t0
    print(f"  its eval() on the {len(val_data)} validation videos (batch 1, as its loader): {val_s:.1f} s "
          f"(its selection score {score:.2f})")
    return float(steps.mean() * per_epoch), val_s


if __name__ == "__main__":
    main()
