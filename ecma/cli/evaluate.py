"""`ecma predict` and `ecma evaluate`: a model's predictions on a split, and the benchmark's scores of them (workflow/rules/evaluate.smk)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ecma.errors import EcmaError
from ecma.cli.common import (
    annotation_options, cli_annotations, settings, settings_options, split_truth, split_truth_options, subcommand,
)


def cmd_predict(args) -> int:
    from ecma.evaluation.predict import predict
    from ecma.evaluation.predictions import write_predictions

    if args.annotations:
        from ecma.models.checkpoint import load_model

        if args.split:
            raise EcmaError("give --split (an LLP csv) or --annotations JSON --subset NAME, not both")
        classes = load_model(args.checkpoint)[2]["classes"]
        names = cli_annotations(args, {}, classes).split(args.subset).filenames
        preds = predict(args.checkpoint, args.features, filenames=names, batch_size=args.batch_size, device=args.device,
                        missing=args.missing)
    else:
        if not args.split:
            raise EcmaError("give --split CSV (LLP), or --annotations JSON --subset NAME (UnAV-100)")
        preds = predict(args.checkpoint, args.features, args.split, batch_size=args.batch_size, device=args.device, missing=args.missing)
    write_predictions(args.output, preds)
    return 0


def cmd_evaluate(args) -> int:
    from ecma.evaluation.predictions import read_predictions
    from ecma.io import write_json
    from ecma.provenance import provenance

    from ecma.evaluation.evaluate import evaluate_annotated

    if args.dataset is None:
        cfg = settings(args)  # a bad setting is the first thing said, before any file is read
    classes = read_predictions(args.predictions).classes
    if args.dataset is not None:
        from ecma.data.datasets import workflow_dataset

        if args.config is None:
            raise EcmaError("--dataset needs --config")
        wcfg, f = workflow_dataset(args.config, args.dataset)
        cfg = wcfg.for_dataset(args.dataset)
        if f.annotation_format == "llp":
            flags = {"--split": args.split, "--eval-audio": args.eval_audio or f.eval_audio_csv,
                     "--eval-visual": args.eval_visual or f.eval_visual_csv}
            annotations, split = cli_annotations(args, flags, classes), "split"
        else:
            annotations, split = f.annotation_set(classes), args.subset
    else:
        annotations, split = split_truth(args, classes)
    vt = cfg.eval.video_threshold if args.video_threshold is None else args.video_threshold
    st = cfg.eval.segment_threshold if args.segment_threshold is None else args.segment_threshold
    metrics = evaluate_annotated(args.predictions, annotations, split, video_threshold=vt, segment_threshold=st,
                                 missing=args.missing, eval_config=cfg.eval)
    if split == "split":
        metrics["split"] = str(args.split)  # the csv, as the benchmark's runs name it
    if metrics["skipped"]:
        print(f"evaluate: {len(metrics['skipped'])} video(s) of the split have no predictions and are left out", file=sys.stderr)
    pred_prov = dict(read_predictions(args.predictions).provenance)
    metrics["provenance"] = provenance(
        predictions=str(args.predictions),
        model={k: v for k, v in pred_prov.items() if k != "config"},
        # what trained the model (the checkpoint's settings, through the predictions) and what scored it
        training_config=pred_prov.get("config"),
        evaluation={**dataclasses.asdict(cfg.eval), "video_threshold": vt, "segment_threshold": st},
        feature_fingerprint=pred_prov.get("fingerprint"),
    )
    write_json(args.output, metrics)
    seg, evt = metrics["segment"], metrics["event"]
    if annotations.av_only:
        print(f"{args.output}: {metrics['num_videos']} videos ({metrics['protocol']}); segment AV {seg['audio_visual']:.2f}, "
              f"event AV {evt['audio_visual']:.2f}; mAP {metrics['map']['average']:.2f} (mean over tIoU 0.1:0.1:0.9, "
              "as UnAV's code averages)", file=sys.stderr)
        return 0
    print(
        f"{args.output}: {metrics['num_videos']} videos; segment A {seg['audio']:.2f} V {seg['visual']:.2f} "
        f"AV {seg['audio_visual']:.2f} Type@AV {seg['type_av']:.2f} Event@AV {seg['event_av']:.2f}; "
        f"event Type@AV {evt['type_av']:.2f} Event@AV {evt['event_av']:.2f}",
        file=sys.stderr,
    )
    return 0


def add_predict(sub) -> argparse.ArgumentParser:
    r = subcommand(
        sub, "predict", "write a model's predictions on a split (video-, audio- and visual-level probabilities)",
        "Run a trained checkpoint on the features of a split's videos and write predictions.h5: filename, "
        "classes, video_prob (N, C), audio_prob and visual_prob (N, T, C). A checkpoint trained on other "
        "features (another fingerprint) is refused.",
        example="ecma predict --checkpoint model.pt --features shard-*.h5 --split AVVP_test_pd.csv --output test.h5",
    )
    r.add_argument("--checkpoint", required=True, help="model.pt written by ecma train")
    r.add_argument("--features", nargs="+", required=True, help="feature shards (.h5) holding the split's videos")
    r.add_argument("--split", help="split csv (filename, event_labels) naming the videos")
    annotation_options(r)
    r.add_argument("--output", required=True, help="predictions (.h5)")
    r.add_argument("--batch-size", type=int, default=256, help="videos per forward pass")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument("--missing", choices=("error", "skip"), default="error", help="split videos without features")
    r.set_defaults(func=cmd_predict)
    return r


def add_evaluate(sub) -> argparse.ArgumentParser:
    v = subcommand(
        sub, "evaluate", "score predictions with the AVVP benchmark's protocol",
        "Score any model's predictions.h5 against the segment-level truth with the benchmark's exact metrics "
        "(segment and event level; audio, visual, audio-visual, Type@AV, Event@AV; F1 in percent) and write "
        "metrics.json with per-class scores and provenance.",
        example="ecma evaluate --predictions test.h5 --split AVVP_test_pd.csv --eval-audio AVVP_eval_audio.csv "
        "--eval-visual AVVP_eval_visual.csv --output metrics.json",
    )
    v.add_argument("--predictions", required=True, help="predictions (.h5) written by ecma predict")
    split_truth_options(v, "split csv naming the videos to score")
    v.add_argument("--output", required=True, help="metrics.json")
    v.add_argument("--config", help="YAML config: eval thresholds (and, with --dataset, the eval csvs)")
    v.add_argument("--dataset", help="workflow dataset whose eval csvs to use (with --config)")
    v.add_argument("--video-threshold", type=float, help="video-level threshold (default: the config's, 0.5)")
    v.add_argument("--segment-threshold", type=float, help="segment-level threshold (default: the config's, 0.5)")
    v.add_argument("--missing", choices=("error", "skip"), default="error", help="split videos without predictions")
    v.set_defaults(func=cmd_evaluate)
    settings_options(v)
    return v
