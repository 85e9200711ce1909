"""Learning parity: does ecma's CoLeaF learn what CoLeaF's released training loop learns, on the same data?

    python bench/parity_learning.py --reference PATH_TO_COLEAF_CHECKOUT [--seeds 3] [--epochs N]
                                    [--shapes han|clip] [--n-train 1000] [--n-val 200] [--n-test 200]

Features are the test suite's planted events (``tests/synthetic.py``: per-class audio and visual prototypes
plus noise, 25 classes, 10 segments, events 15% audio-only, 15% visual-only, 70% audio-visual). With
``--shapes han`` (the default) they have HAN's shapes: 10 x 128 audio, and per segment a 2,560-d visual
vector whose first 2,048 dimensions become 8 frames (repeated, each with its own noise: 80 x 2048) and whose
last 512 the clip-level stream (10 x 512). ``--shapes clip`` gives 10 x 768 per modality; the reference
network cannot take those (its input sizes are fixed in ``nets/net_audiovisual.py``), so only our side runs.

For each seed (the seed of the data and of both sides' initialisation and shuffling), both sides train on
the same train split for the same epochs, CoLeaF's batch of 128, Adam lr 5e-4 for the main and both
auxiliary networks, float32 (``--amp``: ours under bf16 autocast):

- ours: ``ecma.training.train.train`` with the ``coleaf`` variant; ``model.pt`` is the epoch with the best validation
  score (``train.select``, segment Type@AV under the benchmark protocol);
- the reference: its own ``train()`` of ``main.py`` per epoch (through ``coleaf_reference.py``), then its
  fused eval outputs on the validation split scored by the same rule, keeping the best epoch's weights.

Both best networks are then run on the test split (ours: ``ecma.evaluation.inference.run_model``, fused passes; the
reference: both its passes mixed 0.7 : 0.3 as its ``eval()`` does) and scored by the same function,
``ecma.evaluation.metrics.score`` with thresholds 0.5: video probability from the global branch, segment probabilities
of each modality. Prints per seed and mean +- sd of segment A / V / AV / Type@AV / Event@AV and event
Type@AV, both sides, and whether each difference of means is within noise (|diff| <= 2 x its standard error).
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from coleaf_reference import BatchLoader, ReferenceSetup, reference_eval_outputs  # noqa: E402
from synthetic import make_planted_data  # noqa: E402

from ecma.config import config_from_dict  # noqa: E402
from ecma.data.classes import LLP_CLASSES  # noqa: E402
from ecma.data.shards import FeatureSet  # noqa: E402
from ecma.data.splits import SplitData, load_split  # noqa: E402
from ecma.device import amp_dtype, precision_name  # noqa: E402
from ecma.evaluation.inference import run_model  # noqa: E402
from ecma.evaluation.metrics import score  # noqa: E402
from ecma.evaluation.protocols import score_outputs, selection_score  # noqa: E402
from ecma.models.checkpoint import load_model  # noqa: E402
from ecma.models.coleaf.settings import REFERENCE_FEATURE_SIZES  # noqa: E402
from ecma.training.train import train  # noqa: E402

KEYS = [("segment", "audio", "seg A"), ("segment", "visual", "seg V"), ("segment", "audio_visual", "seg AV"),
        ("segment", "type_av", "seg Type@AV"), ("segment", "event_av", "seg Event@AV"), ("event", "type_av", "evt Type@AV")]
HAN_MODEL = REFERENCE_FEATURE_SIZES  # CoLeaF's reference network: HAN's feature sizes


def to_han(split: SplitData, noise: float, seed: int) -> SplitData:
    """A planted split of 128-d audio and 2,560-d visual vectors as HAN's three streams (see the docstring)."""
    f = split.features
    rng = np.random.default_rng(seed)
    frames = np.repeat(f.visual[:, :, :2048], 8, axis=1)
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(noise)
    clip = np.ascontiguousarray(f.visual[:, :, 2048:])
    han = FeatureSet(f.filenames, f.audio, frames, f.fingerprint, f.skipped, clip, 8)
    return SplitData(han, split.labels, split.gt_audio, split.gt_visual)


def make_splits(root: Path, args, seed: int) -> tuple[SplitData, SplitData, SplitData]:
    da, dv = (128, 2048 + 512) if args.shapes == "han" else (768, 768)
    data = make_planted_data(root, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test, n_classes=25,
                             audio_dim=da, visual_dim=dv, noise=args.noise, seed=seed, kind_p=(0.15, 0.15, 0.7))
    load = dict(eval_audio_csv=data.eval_audio_csv, eval_visual_csv=data.eval_visual_csv)
    splits = (load_split(data.shards, data.train_csv, LLP_CLASSES), load_split(data.shards, data.val_csv, LLP_CLASSES, **load),
              load_split(data.shards, data.test_csv, LLP_CLASSES, **load))
    if args.shapes == "han":
        splits = tuple(to_han(s, args.noise, seed * 10 + i) for i, s in enumerate(splits))
    return splits


def test_scores(out, test: SplitData) -> dict:
    s = score(out.video_prob, out.audio_prob, out.visual_prob, test.gt_audio, test.gt_visual,
              video_threshold=0.5, segment_threshold=0.5)
    return {name: s[level][key] for level, key, name in KEYS}


def run_ours(cfg, train_data, val_data, test_data, out_dir: Path) -> dict:
    t0 = time.perf_counter()
    result = train(cfg, train_data, val_data, out_dir, classes=LLP_CLASSES, fingerprint=train_data.features.fingerprint, progress=False)
    seconds = time.perf_counter() - t0
    model, _, _ = load_model(out_dir / "model.pt")
    f = test_data.features
    device = torch.device("cpu")
    out = run_model(model, f.audio, f.visual, batch_size=cfg.eval.batch_size, device=device,
                    precision=amp_dtype(device, cfg.train.amp), visual_3d=f.visual_3d)
    curve = [h["val_segment_type_av"] for h in result.history]
    return {"best epoch": result.best_epoch, "seconds": seconds, "val curve": curve, **test_scores(out, test_data)}


def run_reference(checkout: Path, cfg, seed: int, epochs: int, train_data, val_data, test_data) -> dict:
    setup = ReferenceSetup.build(checkout, seed)
    a = setup.args
    assert (a.batch_size, a.lr) == (cfg.train.batch_size, cfg.train.lr), (a.batch_size, a.lr)
    f, vf, tf = train_data.features, val_data.features, test_data.features
    best, best_score, best_epoch, curve = None, -math.inf, 0, []
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        loader = BatchLoader(f.audio, f.visual, f.visual_3d, train_data.labels, a.batch_size, a_smooth=a.a_smooth,
                             v_smooth=a.v_smooth, seed=seed * 100003 + epoch)
        setup.train_epoch(loader, epoch)
        val = reference_eval_outputs(setup.model, vf.audio, vf.visual, vf.visual_3d, a.fuse_ratio)
        metrics = score_outputs(val, val_data.gt_audio, val_data.gt_visual, cfg.eval)
        sel = selection_score(metrics, cfg.train.select)
        curve.append(metrics["segment"]["type_av"])
        if sel > best_score:
            best, best_score, best_epoch = copy.deepcopy(setup.model.state_dict()), sel, epoch
    seconds = time.perf_counter() - t0
    setup.model.load_state_dict(best)
    out = reference_eval_outputs(setup.model, tf.audio, tf.visual, tf.visual_3d, a.fuse_ratio)
    return {"best epoch": best_epoch, "seconds": seconds, "val curve": curve, **test_scores(out, test_data)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="a checkout of github.com/faeghehsardari/coleaf")
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (--first-seed, then the next ones)")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (a seed's data and run do not depend "
                                                               "on the others: runs of separate seeds combine)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--shapes", choices=("han", "clip"), default="han")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--noise", type=float, default=2.0, help="feature noise per dimension (the prototypes have 2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--amp", action="store_true", help="ours under bf16 autocast (the reference is float32)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with_reference = args.shapes == "han"
    if not with_reference:
        print("note: the reference network's input sizes are fixed to HAN's (128, 2048 x 8, 512): "
              "on CLIP/CLAP shapes only our side runs")
    model = {"backbone": "coleaf", **(HAN_MODEL if args.shapes == "han" else {})}
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"{args.shapes} shapes, {args.n_train}/{args.n_val}/{args.n_test} videos, {args.epochs} epochs, "
          f"ours {precision_name(amp_dtype(torch.device('cpu'), args.amp))}, reference float32", flush=True)
    rows = {"ours": [], "reference": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            train_data, val_data, test_data = make_splits(Path(tmp) / f"data-{seed}", args, seed)
            cfg = config_from_dict({"model": model, "train": {
                "variant": "coleaf", "epochs": args.epochs, "seed": seed, "amp": args.amp, "threads": args.threads,
                "batch_size": 128, "lr": 5e-4}})
            sides = [("ours", lambda: run_ours(cfg, train_data, val_data, test_data, Path(tmp) / f"ours-{seed}"))]
            if with_reference:
                sides.append(("reference", lambda: run_reference(args.reference, cfg, seed, args.epochs, train_data, val_data, test_data)))
            for side, run in sides:
                row = run()
                rows[side].append(row)
                print(f"seed {seed} {side:9s} " + "  ".join(
                    f"{k} {' '.join(f'{x:.1f}' for x in v)}" if k == "val curve" else
                    (f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}") for k, v in row.items()), flush=True)
    names = [name for _, _, name in KEYS]
    print(f"\n{'side':10s} {'seed':>4s} " + " ".join(f"{n:>13s}" for n in names))
    for side, side_rows in rows.items():
        for seed, r in enumerate(side_rows, start=args.first_seed):
            print(f"{side:10s} {seed:4d} " + " ".join(f"{r[n]:13.2f}" for n in names))
    stats = {}
    for side, side_rows in rows.items():
        if not side_rows:
            continue
        x = np.array([[r[n] for n in names] for r in side_rows])
        sd = x.std(0, ddof=1) if len(x) > 1 else np.full(len(names), np.nan)
        stats[side] = (x.mean(0), sd, len(x))
        print(f"{side:10s} {'mean':>4s} " + " ".join(f"{m:6.2f} +- {s:4.2f}" for m, s in zip(*stats[side][:2])))
    if len(stats) == 2:
        (mo, so, n), (mr, sr, _) = stats["ours"], stats["reference"]
        se = np.sqrt((so ** 2 + sr ** 2) / n)
        print("ours - reference: " + ", ".join(
            f"{name} {d:+.2f}" + ("" if np.isnan(e) else f" ({'within' if abs(d) <= 2 * e else 'OUTSIDE'} 2 se = {2 * e:.2f})")
            for name, d, e in zip(names, mo - mr, se)))


if __name__ == "__main__":
    main()
