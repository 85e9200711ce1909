"""The ``ecma`` command: a thin layer over the library; every workflow rule calls one of its subcommands.

Errors in the user's input end the command with one line, ``ecma <command>: error: <message>``, and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ecma import __version__
from ecma.errors import EcmaError

EXIT_INPUT_ERROR = 2
EXIT_SOME_VIDEOS_FAILED = 3


def _parse_metrics_arg(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise EcmaError(f"--metrics expects VARIANT=PATH, got {item!r}")
        out[name] = Path(path)
    return out


def cmd_demo(args) -> int:
    from ecma.config import DemoConfig, load_workflow_config
    from ecma.demo import make_demo_dataset

    demo = DemoConfig()
    if args.config:
        demo = load_workflow_config(args.config).dataset(args.dataset).demo or demo
    for key in ("n_train", "n_val", "n_test", "seed"):
        if getattr(args, key) is not None:
            setattr(demo, key, getattr(args, key))
    make_demo_dataset(args.output, n_train=demo.n_train, n_val=demo.n_val, n_test=demo.n_test, seed=demo.seed, progress=not args.quiet)
    return 0


def _publish(store: Path, output: Path) -> None:
    """Copy the incremental store and its failures file (an empty table where none) to the outputs, atomically."""
    from ecma.io import atomic_path

    for src, dst in ((store, output), (Path(f"{store}.failures.tsv"), Path(f"{output}.failures.tsv"))):
        with atomic_path(dst) as tmp:
            if src.exists():
                shutil.copyfile(src, tmp)
            else:
                tmp.write_text("filename\tstage\treason\n")


def cmd_extract(args) -> int:
    from ecma.config import load_config, load_workflow_config
    from ecma.extract import extract_videos

    output = Path(args.output)
    if args.dataset is not None:
        from ecma.datasets import dataset_files, dataset_videos, shard_videos

        if args.config is None or args.shard is None:
            raise EcmaError("--dataset needs --config and --shard")
        wcfg = load_workflow_config(args.config)
        files = dataset_files(wcfg, args.dataset)
        videos = shard_videos(dataset_videos(files), files.n_shards, args.shard)
        cfg = wcfg.for_dataset(args.dataset).extract
        names, paths = list(videos), list(videos.values())
        # The workflow changes extractor settings by design: a new fingerprint re-extracts the shard.
        overwrite = True
    else:
        if args.videos and args.video_list:
            raise EcmaError("give --videos or --video-list, not both")
        if args.video_list:
            lst = Path(args.video_list)
            if not lst.is_file():
                raise EcmaError(f"{lst}: video list not found")
            paths = [line.strip() for line in lst.read_text().splitlines() if line.strip() and not line.startswith("#")]
        else:
            paths = list(args.videos or [])
        if not paths:
            raise EcmaError("no videos given (--videos FILE... or --video-list TXT)")
        names, cfg, overwrite = None, load_config(args.config).extract, args.overwrite
    store = Path(args.store) if args.store else output
    report = extract_videos(paths, store, cfg, names=names, overwrite=overwrite, progress=not args.quiet)
    if store != output:
        _publish(store, output)
    print(
        f"{output}: extracted {report.extracted}, kept {report.skipped} already extracted, failed {len(report.failed)}"
        + (f" (see {output}.failures.tsv)" if report.failed else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_VIDEOS_FAILED if report.failed and args.dataset is None else 0


def _train_inputs(args):
    """(config, classes, train csv, val csv, eval audio csv, eval visual csv) from a dataset or from flags."""
    from ecma.classes import LLP_CLASSES
    from ecma.config import load_config, load_workflow_config

    if args.dataset is not None:
        from ecma.datasets import dataset_files

        if args.config is None:
            raise EcmaError("--dataset needs --config")
        wcfg = load_workflow_config(args.config)
        cfg = wcfg.for_dataset(args.dataset, args.variant)
        f = dataset_files(wcfg, args.dataset)
        return cfg, LLP_CLASSES, f.train_csv, f.val_csv, f.eval_audio_csv, f.eval_visual_csv
    missing = [flag for flag, v in (("--train", args.train), ("--val", args.val), ("--eval-audio", args.eval_audio), ("--eval-visual", args.eval_visual)) if v is None]
    if missing:
        raise EcmaError(f"without --dataset, give {', '.join(missing)}")
    overrides = {"train": {"variant": args.variant}} if args.variant else None
    return load_config(args.config, overrides), LLP_CLASSES, args.train, args.val, args.eval_audio, args.eval_visual


def cmd_train(args) -> int:
    from ecma.data import load_split
    from ecma.plots import plot_history
    from ecma.train import train

    cfg, classes, train_csv, val_csv, eval_a, eval_v = _train_inputs(args)
    missing = cfg.train.missing_videos
    train_data = load_split(args.features, train_csv, classes, missing=missing)
    val_data = load_split(args.features, val_csv, classes, eval_audio_csv=eval_a, eval_visual_csv=eval_v, missing=missing)
    for what, data in (("training", train_data), ("validation", val_data)):
        if data.features.skipped:
            print(f"{what}: skipped {len(data.features.skipped)} video(s) without features", file=sys.stderr)
    result = train(cfg, train_data, val_data, args.output_dir, classes=classes, fingerprint=train_data.features.fingerprint, progress=not args.quiet)
    plot_history(result.history, Path(args.output_dir) / "curves.png", title=f"{cfg.train.variant}: training curves")
    print(f"best validation segment Type@AV {result.best_score:.2f} at epoch {result.best_epoch}", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from ecma.predict import predict
    from ecma.predictions import write_predictions

    preds = predict(args.checkpoint, args.features, args.split, batch_size=args.batch_size, device=args.device, missing=args.missing)
    write_predictions(args.output, preds)
    return 0


def cmd_evaluate(args) -> int:
    from ecma.config import load_config, load_workflow_config
    from ecma.evaluate import evaluate_files
    from ecma.io import write_json
    from ecma.predictions import read_predictions
    from ecma.provenance import provenance

    if args.dataset is not None:
        from ecma.datasets import dataset_files

        if args.config is None:
            raise EcmaError("--dataset needs --config")
        wcfg = load_workflow_config(args.config)
        cfg = wcfg.for_dataset(args.dataset)
        f = dataset_files(wcfg, args.dataset)
        eval_audio, eval_visual = args.eval_audio or f.eval_audio_csv, args.eval_visual or f.eval_visual_csv
    else:
        cfg = load_config(args.config)
        eval_audio, eval_visual = args.eval_audio, args.eval_visual
        if eval_audio is None or eval_visual is None:
            raise EcmaError("give --eval-audio and --eval-visual (or --config with --dataset)")
    vt = cfg.eval.video_threshold if args.video_threshold is None else args.video_threshold
    st = cfg.eval.segment_threshold if args.segment_threshold is None else args.segment_threshold
    metrics = evaluate_files(args.predictions, args.split, eval_audio, eval_visual, video_threshold=vt, segment_threshold=st, missing=args.missing)
    if metrics["skipped"]:
        print(f"evaluate: {len(metrics['skipped'])} video(s) of the split have no predictions and are left out", file=sys.stderr)
    pred_prov = read_predictions(args.predictions).provenance
    metrics["provenance"] = provenance(
        predictions=str(args.predictions),
        model=pred_prov,
        config=cfg.to_dict() if args.config else None,
        feature_fingerprint=pred_prov.get("fingerprint"),
    )
    write_json(args.output, metrics)
    seg, evt = metrics["segment"], metrics["event"]
    print(
        f"{args.output}: {metrics['num_videos']} videos; segment A {seg['audio']:.2f} V {seg['visual']:.2f} "
        f"AV {seg['audio_visual']:.2f} Type@AV {seg['type_av']:.2f} Event@AV {seg['event_av']:.2f}; "
        f"event Type@AV {evt['type_av']:.2f} Event@AV {evt['event_av']:.2f}",
        file=sys.stderr,
    )
    return 0


def cmd_ablation(args) -> int:
    from ecma.ablation import ablation_table
    from ecma.io import atomic_path, write_json

    metrics = {}
    for variant, path in _parse_metrics_arg(args.metrics).items():
        if not path.is_file():
            raise EcmaError(f"{path}: metrics file of variant {variant!r} not found")
        try:
            metrics[variant] = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise EcmaError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    md, table = ablation_table(metrics)
    with atomic_path(args.output_md) as tmp:
        tmp.write_text(md)
    write_json(args.output_json, table)
    return 0


def cmd_parse(args) -> int:
    from ecma.parse import parse_videos

    vt = args.threshold if args.video_threshold is None else args.video_threshold
    st = args.threshold if args.segment_threshold is None else args.segment_threshold
    report = parse_videos(args.checkpoint, args.videos, args.output_dir, config=args.config, video_threshold=vt,
                          segment_threshold=st, stride=args.stride, whole=args.whole_video, embed_video=args.embed_video,
                          workers=args.workers, device=args.device, progress=not args.quiet)
    n_events = sum(len(r["events"]) for r in report.parsed)
    print(
        f"{report.index}: parsed {len(report.parsed)} video(s), {n_events} events, failed {len(report.failed)}"
        + (f" (see {report.failures_path})" if report.failed else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_VIDEOS_FAILED if report.failed and not args.keep_going else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecma", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"ecma {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate the synthetic demo dataset (videos and LLP-format csvs)")
    d.add_argument("--output", required=True, help="folder to write videos/ and the csv files into")
    d.add_argument("--config", help="workflow config whose datasets.<NAME>.demo settings to use")
    d.add_argument("--dataset", default="demo")
    for key in ("n_train", "n_val", "n_test", "seed"):
        d.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int)
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("extract", help="extract per-second CLIP visual and CLAP audio features into an HDF5 shard")
    e.add_argument("--videos", nargs="+", help="video files (named by their stem)")
    e.add_argument("--video-list", help="text file with one video path per line")
    e.add_argument("--output", required=True, help="the shard (.h5); failures go to OUTPUT.failures.tsv")
    e.add_argument("--config", help="YAML with an extract: section (a workflow config with --dataset)")
    e.add_argument("--dataset", help="extract one shard of this workflow dataset (needs --config, --shard)")
    e.add_argument("--shard", type=int, help="0-based shard index of --dataset")
    e.add_argument("--store", help="incremental shard to extract into, then copied to --output (workflow use)")
    e.add_argument("--overwrite", action="store_true", help="start afresh when OUTPUT holds features of another extractor")
    e.set_defaults(func=cmd_extract)

    t = sub.add_parser("train", help="train an E-CMA variant; keeps the best checkpoint by validation segment Type@AV")
    t.add_argument("--config", help="YAML config (a workflow config with --dataset)")
    t.add_argument("--dataset", help="workflow dataset whose train/val/eval csvs to use")
    t.add_argument("--variant", choices=("ecma", "no_ema", "no_cma", "han"))
    t.add_argument("--features", nargs="+", required=True, help="feature shards (.h5)")
    t.add_argument("--output-dir", required=True)
    t.add_argument("--train", help="training split csv (without --dataset)")
    t.add_argument("--val", help="validation split csv (without --dataset)")
    t.add_argument("--eval-audio", help="segment-level audio truth csv (without --dataset)")
    t.add_argument("--eval-visual", help="segment-level visual truth csv (without --dataset)")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("predict", help="write a model's predictions on a split")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--features", nargs="+", required=True)
    r.add_argument("--split", required=True)
    r.add_argument("--output", required=True)
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--device", default="auto")
    r.add_argument("--missing", choices=("error", "skip"), default="error", help="split videos without features")
    r.set_defaults(func=cmd_predict)

    v = sub.add_parser("evaluate", help="score predictions with the AVVP benchmark's protocol")
    v.add_argument("--predictions", required=True)
    v.add_argument("--split", required=True)
    v.add_argument("--eval-audio")
    v.add_argument("--eval-visual")
    v.add_argument("--output", required=True, help="metrics.json")
    v.add_argument("--config", help="YAML config: eval thresholds (and, with --dataset, the eval csvs)")
    v.add_argument("--dataset")
    v.add_argument("--video-threshold", type=float)
    v.add_argument("--segment-threshold", type=float)
    v.add_argument("--missing", choices=("error", "skip"), default="error", help="split videos without predictions")
    v.set_defaults(func=cmd_evaluate)

    a = sub.add_parser("ablation", help="every variant side by side (markdown and JSON)")
    a.add_argument("--metrics", nargs="+", required=True, metavar="VARIANT=METRICS_JSON")
    a.add_argument("--output-md", required=True)
    a.add_argument("--output-json", required=True)
    a.set_defaults(func=cmd_ablation)

    pa = sub.add_parser("parse", help="what is heard and seen when in new videos: NAME.json/.html/.png per video and index.html")
    pa.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (outputs are named by their stem)")
    pa.add_argument("--checkpoint", required=True, help="a trained model.pt")
    pa.add_argument("--output-dir", required=True)
    pa.add_argument("--config", help="YAML whose extract section rebuilds the checkpoint's extractor (default: the "
                    "checkpoint's stored one); its fingerprint must equal the checkpoint's")
    pa.add_argument("--threshold", type=float, help="video and segment threshold at once (default: the checkpoint's eval ones)")
    pa.add_argument("--video-threshold", type=float)
    pa.add_argument("--segment-threshold", type=float)
    pa.add_argument("--stride", type=int, help="segments between windows of a long video (default: half a window)")
    pa.add_argument("--whole-video", action="store_true", help="one pass over the whole video instead of windows")
    pa.add_argument("--embed-video", action="store_true", help="put the video into NAME.html (default: a relative link)")
    pa.add_argument("--workers", type=int, help="decoding processes (default: the extract config's)")
    pa.add_argument("--device", help="auto | cpu | cuda[:N] (default: the extract config's)")
    pa.add_argument("--keep-going", action="store_true", help="exit 0 although some videos failed (they are listed in "
                    "failures.tsv and index.html): for workflow rules")
    pa.set_defaults(func=cmd_parse)

    for sp in (d, e, t, r, v, a, pa):
        sp.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EcmaError as e:
        print(f"ecma {args.command}: error: {e}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"ecma {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
