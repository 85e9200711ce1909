"""Time the benchmark evaluation on the 1,200 videos of the LLP test split.

    python bench/bench_eval.py [--annotations DIR] [--reference AVVP_ECCV20_CHECKOUT] [--repeat 5]

Truth comes from the LLP annotation files in DIR (default: $ECMA_LLP_ANNOTATIONS, else
../shared/data/llp beside the repo); without them, from synthetic csvs of the same size. Predictions are
seeded random numbers correlated with the truth. Timed:

- ``score``: ecma.evaluation.metrics.score on in-memory arrays;
- ``evaluate_files``: end to end, reading the predictions HDF5 file and the three csvs;
- ``published loop`` (with --reference): the evaluation loop of AVVP-ECCV20's ``main_avvp.eval``
  (pandas lookup of each video's truth rows, then ``segment_level`` and ``event_level`` from the
  checkout's ``utils/eval_metrics.py``), on the same predictions; its numbers are compared with ours.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ecma.data.annotations import read_eval, read_split, segment_truth  # noqa: E402
from ecma.data.classes import LLP_CLASSES  # noqa: E402
from ecma.evaluation.evaluate import evaluate_files  # noqa: E402
from ecma.evaluation.metrics import score  # noqa: E402
from ecma.evaluation.predictions import Predictions, write_predictions  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from synthetic import noisy_predictions  # noqa: E402  (the same predictions as tests/test_evaluate.py)

KEYS = ("audio", "visual", "audio_visual", "type_av", "event_av")
SPLIT, EVAL_A, EVAL_V = "AVVP_test_pd.csv", "AVVP_eval_audio.csv", "AVVP_eval_visual.csv"


def synthetic_annotations(folder: Path, n: int = 1200, seed: int = 0) -> None:
    """LLP-like split and eval csvs: 1 to 3 classes per video, 1 to 2 events per class and modality."""
    rng = np.random.default_rng(seed)
    split, rows = [], {EVAL_A: [], EVAL_V: []}
    for i in range(n):
        name = f"synthetic{i:05d}_0_10"
        labels = rng.choice(len(LLP_CLASSES), size=int(rng.integers(1, 4)), replace=False)
        split.append(f"{name}\t{','.join(LLP_CLASSES[c] for c in labels)}")
        for c in labels:
            for file in rows:
                for _ in range(int(rng.integers(0, 3))):
                    a = int(rng.integers(0, 10))
                    rows[file].append(f"{name}\t{a}\t{int(rng.integers(a + 1, 11))}\t{LLP_CLASSES[c]}")
    (folder / SPLIT).write_text("filename\tevent_labels\n" + "\n".join(split) + "\n")
    for file, lines in rows.items():
        (folder / file).write_text("filename\tonset\toffset\tevent_labels\n" + "\n".join(lines) + "\n")




def published_loop(checkout: Path, folder: Path, video_prob, audio_prob, visual_prob) -> dict:
    """The per-video loop of main_avvp.eval around the checkout's metric functions (model outputs given)."""
    import pandas as pd

    spec = importlib.util.spec_from_file_location("avvp_eval_metrics", checkout / "utils" / "eval_metrics.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    df = pd.read_csv(folder / SPLIT, header=0, sep="\t")
    tables = [pd.read_csv(folder / f, header=0, sep="\t") for f in (EVAL_A, EVAL_V)]
    cls = {c: i for i, c in enumerate(LLP_CLASSES)}
    scores = [[] for _ in range(8)]
    for b in range(len(df)):
        name = df.loc[b, "filename"]
        o = np.repeat((video_prob[b : b + 1] >= 0.5).astype(np.int_), repeats=10, axis=0)
        pa = (audio_prob[b] >= 0.5).astype(np.int_) * o
        pv = (visual_prob[b] >= 0.5).astype(np.int_) * o
        gts = []
        for table in tables:
            gt = np.zeros((25, 10))
            rows = table.loc[table["filename"] == name]
            for i in rows.index:
                gt[cls[rows.loc[i, "event_labels"]], int(rows.loc[i, "onset"]) : int(rows.loc[i, "offset"])] = 1
            gts.append(gt)
        ga, gv = gts
        sa, sv = pa.T, pv.T
        args = (sa, sv, sa * sv, ga, gv, ga * gv)
        for k, x in enumerate(ref.segment_level(*args) + ref.event_level(*args)):
            scores[k].append(x)
    m = [100 * np.mean(np.array(s)) for s in scores]
    out = {}
    for level, (a, v, f, av) in (("segment", m[:4]), ("event", m[4:])):
        out[level] = {"audio": a, "visual": v, "audio_visual": av, "type_av": (av + a + v) / 3.0, "event_av": f}
    return out


def best_of(repeat, fn):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), result


def main() -> None:
    default_dir = Path(os.environ.get("ECMA_LLP_ANNOTATIONS", REPO.parent / "shared" / "data" / "llp"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--annotations", type=Path, default=default_dir)
    ap.add_argument("--reference", type=Path, help="a checkout of github.com/YapengTian/AVVP-ECCV20")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = args.annotations
        if (folder / SPLIT).is_file():
            source = f"LLP annotations in {folder}"
        else:
            folder = tmp
            synthetic_annotations(folder, seed=args.seed)
            source = "synthetic annotations (LLP files not found)"
        split = read_split(folder / SPLIT, LLP_CLASSES)
        ga = segment_truth(read_eval(folder / EVAL_A, LLP_CLASSES), split.filenames, LLP_CLASSES, 10)
        gv = segment_truth(read_eval(folder / EVAL_V, LLP_CLASSES), split.filenames, LLP_CLASSES, 10)
        video, audio, visual = noisy_predictions(ga, gv, args.seed)
        preds_path = tmp / "predictions.h5"
        write_predictions(preds_path, Predictions(split.filenames, list(LLP_CLASSES), video, audio, visual))

        rows = []
        best, med, ours = best_of(args.repeat, lambda: score(video, audio, visual, ga, gv))
        rows.append(("score (arrays)", best, med))
        best, med, _ = best_of(
            args.repeat, lambda: evaluate_files(preds_path, folder / SPLIT, folder / EVAL_A, folder / EVAL_V)
        )
        rows.append(("evaluate_files (files)", best, med))
        ref = None
        if args.reference:
            best, med, ref = best_of(1, lambda: published_loop(args.reference, folder, video, audio, visual))
            rows.append(("published loop", best, med))

    print(f"{len(split)} videos, {source}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"{'what':<24}{'best s':>10}{'median s':>10}")
    for what, best, med in rows:
        print(f"{what:<24}{best:>10.4f}{med:>10.4f}")
    print()
    print(f"{'level':<8}{'metric':<14}{'ecma':>20}" + (f"{'published':>20}" if ref else ""))
    worst = 0.0
    for level in ("segment", "event"):
        for k in KEYS:
            line = f"{level:<8}{k:<14}{ours[level][k]:>20.12f}"
            if ref:
                line += f"{ref[level][k]:>20.12f}"
                worst = max(worst, abs(ours[level][k] - ref[level][k]))
            print(line)
    if ref:
        print(f"\nlargest difference from the published code: {worst:.3g}")
        if worst > 1e-9:
            sys.exit("the numbers differ from the published code")


if __name__ == "__main__":
    main()
