"""Does bf16 autocast cost accuracy? The default model trained in float32 and in bf16 on the same features.

Features are the test suite's planted events (``tests/synthetic.py``) at LLP's shape: 25 classes, 10
segments, 768 dimensions per modality, with per-segment events that only the segment-level truth reveals
(70% of them audio-visual, 15% audio-only, 15% visual-only).
Each seed trains the default model twice, ``train.amp`` false (float32 throughout) and true (bf16 matmuls
where the hardware has them), and both checkpoints are scored on a held-out test split with the benchmark's
metrics. Prints one row per run and the mean difference.

    python bench/bench_precision.py                     # 3 seeds, 3,000 training videos, 6 epochs
    python bench/bench_precision.py --seeds 0 --epochs 2 --n-train 500   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ecma  # noqa: F401  before torch, which reads ecma's OpenMP settings when it loads (ecma/runtime_env.py)
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synthetic import make_planted_data  # noqa: E402

from ecma.config import config_from_dict  # noqa: E402
from ecma.data.classes import LLP_CLASSES  # noqa: E402
from ecma.data.splits import load_split  # noqa: E402
from ecma.device import amp_dtype, precision_name  # noqa: E402
from ecma.models.checkpoint import load_model  # noqa: E402
from ecma.training.train import train, validate  # noqa: E402

KEYS = [("segment", "audio"), ("segment", "visual"), ("segment", "type_av"), ("event", "type_av")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-eval", type=int, default=600, help="videos in each of the validation and test splits")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--noise", type=float, default=2.0, help="feature noise (per dimension; the class prototypes have 2)")
    args = ap.parse_args()
    device = torch.device("cpu")
    print(f"bf16 on this CPU: {precision_name(amp_dtype(device, True))}; {torch.get_num_threads()} threads")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            data = make_planted_data(Path(tmp) / f"data-{seed}", n_train=args.n_train, n_val=args.n_eval,
                                     n_test=args.n_eval, n_classes=25, audio_dim=768, visual_dim=768,
                                     noise=args.noise, seed=seed, kind_p=(0.15, 0.15, 0.7))
            load = dict(eval_audio_csv=data.eval_audio_csv, eval_visual_csv=data.eval_visual_csv)
            train_data = load_split(data.shards, data.train_csv, LLP_CLASSES)
            val_data = load_split(data.shards, data.val_csv, LLP_CLASSES, **load)
            test_data = load_split(data.shards, data.test_csv, LLP_CLASSES, **load)
            for amp in (False, True):
                cfg = config_from_dict({"train": {"epochs": args.epochs, "seed": seed, "amp": amp, "lr_step_epochs": max(1, args.epochs * 3 // 4)}})
                out = Path(tmp) / f"run-{seed}-{amp}"
                t0 = time.perf_counter()
                result = train(cfg, train_data, val_data, out, classes=LLP_CLASSES, fingerprint=train_data.features.fingerprint, progress=False)
                seconds = time.perf_counter() - t0
                model, _, _ = load_model(out / "model.pt")
                test = validate(model, test_data, cfg, device)
                curve = [h["val_segment_type_av"] for h in result.history]
                row = {"seed": seed, "precision": precision_name(amp_dtype(device, amp)), "seconds": seconds,
                       "best epoch": result.best_epoch, "val Type@AV by epoch": " ".join(f"{x:.1f}" for x in curve),
                       **{f"{a} {b}": test[a][b] for a, b in KEYS}}
                rows.append(row | {"curve": curve})
                print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    cols = [f"{a} {b}" for a, b in KEYS]
    gap = max(max(abs(x - y) for x, y in zip(r32["curve"], r16["curve"])) for r32, r16 in zip(rows[0::2], rows[1::2]))
    print(f"largest gap between the two precisions' validation curves (segment Type@AV): {gap:.2f}")
    diff = np.array([[r[c] for c in cols] for r in rows[1::2]]) - np.array([[r[c] for c in cols] for r in rows[0::2]])
    print("bf16 minus float32, mean over seeds (sd): " + ", ".join(
        f"{c} {m:+.2f} ({s:.2f})" for c, m, s in zip(cols, diff.mean(0), diff.std(0))))


if __name__ == "__main__":
    main()
