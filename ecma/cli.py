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
from ecma.config import VARIANTS
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


def _settings(args):
    """The package config of a command: ``--settings`` JSON (what the workflow's rules pass), else ``--config``."""
    from ecma.config import config_from_dict, load_config

    if getattr(args, "settings", None) is None:
        return load_config(args.config)
    if args.config is not None or getattr(args, "dataset", None) is not None:
        raise EcmaError("give --settings or --config/--dataset, not both")
    try:
        raw = json.loads(args.settings)
    except json.JSONDecodeError as e:
        raise EcmaError(f"--settings is not valid JSON ({e.msg} at column {e.colno})") from None
    return config_from_dict(raw, "--settings")


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


def _video_paths(args) -> list[str]:
    if args.videos and args.video_list:
        raise EcmaError("give --videos or --video-list, not both")
    if args.video_list:
        lst = Path(args.video_list)
        if not lst.is_file():
            raise EcmaError(f"{lst}: video list not found")
        return [line.strip() for line in lst.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return list(args.videos or [])


def cmd_extract(args) -> int:
    from ecma.config import load_workflow_config
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
        overwrite, prune = True, True
    else:
        paths = _video_paths(args)
        names = args.names
        if names is not None and len(names) != len(paths):
            raise EcmaError(f"--names gives {len(names)} names for {len(paths)} videos")
        if not paths and not args.prune:
            raise EcmaError("no videos given (--videos FILE... or --video-list TXT)")
        cfg, overwrite, prune = _settings(args).extract, args.overwrite or args.prune, args.prune
    from ecma.weights import random_encoders

    unset = random_encoders(cfg)
    if unset and not prune:  # the workflow refuses these for real datasets before any job runs
        print(f"WARNING: {' and '.join(unset)} null: the {'visual and audio encoders are' if len(unset) == 2 else 'encoder is'} "
              "RANDOMLY INITIALISED; these features are for tests and demos only", file=sys.stderr)
    store = Path(args.store) if args.store else output
    report = extract_videos(paths, store, cfg, names=names, overwrite=overwrite, prune=prune, progress=not args.quiet)
    if store != output:
        _publish(store, output)
    if report.removed:
        shown = ", ".join(report.removed[:20]) + (f" and {len(report.removed) - 20} more" if len(report.removed) > 20 else "")
        print(f"{output}: removed {len(report.removed)} video(s) no longer among its videos: {shown}", file=sys.stderr)
    print(
        f"{output}: extracted {report.extracted}, kept {report.skipped} already extracted, "
        f"removed {len(report.removed)}, failed {len(report.failed)}"
        + (f" (see {output}.failures.tsv)" if report.failed else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_VIDEOS_FAILED if report.failed and not prune else 0


def cmd_fetch_weights(args) -> int:
    from ecma.weights import WeightsFile, fetch

    library, *rest = args.spec
    if library not in ("open_clip", "laion_clap") or not rest or (library == "open_clip" and len(rest) != 2):
        raise EcmaError("--spec is 'open_clip MODEL TAG' or 'laion_clap RELEASE'")
    fetch(WeightsFile(args.output, (library, rest[0], rest[1] if len(rest) > 1 else "")))
    return 0


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    """'I/N' -> (I, N): shard I (0-based) of N."""
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit():
        raise EcmaError(f"--shard expects I/N (shard I of N, 0-based), got {text!r}")
    return int(i), int(n)


def cmd_import(args) -> int:
    from ecma.importers import import_features

    if not args.annotations and args.names is None:
        raise EcmaError("give --annotations CSV... (or --names NAME...)")
    report = import_features(args.format, args.root, args.annotations or [], args.output, shard=_parse_shard(args.shard),
                             names=args.names, progress=not args.quiet)
    print(
        f"{args.output}: imported {report.imported}, failed {len(report.failed)}"
        + (f" (see {report.failures_path})" if report.failed else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_VIDEOS_FAILED if report.failed and not args.partial_ok else 0


def _train_inputs(args):
    """(config, classes, train csv, val csv, eval audio csv, eval visual csv) from a dataset or from flags."""
    from ecma.classes import LLP_CLASSES
    from ecma.config import load_workflow_config

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
    cfg = _settings(args)
    if args.variant:  # a variant names its backbone too
        from ecma.config import config_from_dict
        from ecma.variants import variant

        raw = cfg.to_dict()
        raw["train"]["variant"], raw["model"]["backbone"] = args.variant, variant(args.variant).backbone
        cfg = config_from_dict(raw, "--variant")
    return cfg, LLP_CLASSES, args.train, args.val, args.eval_audio, args.eval_visual


def cmd_train(args) -> int:
    from ecma.data import load_split
    from ecma.plots import plot_history
    from ecma.train import train

    from ecma.annotations import check_splits_disjoint

    cfg, classes, train_csv, val_csv, eval_a, eval_v = _train_inputs(args)
    if not args.allow_split_overlap:
        check_splits_disjoint({"train": train_csv, "val": val_csv}, classes)
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


def cmd_import_checkpoint(args) -> int:
    from ecma.models.checkpoint_import import import_checkpoint

    cfg = import_checkpoint(args.format, args.reference, args.output, config=args.config)
    print(f"{args.output}: {args.format} checkpoint {args.reference} imported ({cfg.model.backbone} backbone)", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from ecma.predict import predict
    from ecma.predictions import write_predictions

    preds = predict(args.checkpoint, args.features, args.split, batch_size=args.batch_size, device=args.device, missing=args.missing)
    write_predictions(args.output, preds)
    return 0


def cmd_evaluate(args) -> int:
    from ecma.config import load_workflow_config
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
        cfg = _settings(args)
        eval_audio, eval_visual = args.eval_audio, args.eval_visual
        if eval_audio is None or eval_visual is None:
            raise EcmaError("give --eval-audio and --eval-visual (or --config with --dataset)")
    vt = cfg.eval.video_threshold if args.video_threshold is None else args.video_threshold
    st = cfg.eval.segment_threshold if args.segment_threshold is None else args.segment_threshold
    metrics = evaluate_files(args.predictions, args.split, eval_audio, eval_visual, video_threshold=vt, segment_threshold=st, missing=args.missing,
                             eval_config=cfg.eval)
    if metrics["skipped"]:
        print(f"evaluate: {len(metrics['skipped'])} video(s) of the split have no predictions and are left out", file=sys.stderr)
    pred_prov = read_predictions(args.predictions).provenance
    metrics["provenance"] = provenance(
        predictions=str(args.predictions),
        model=pred_prov,
        config=cfg.to_dict() if args.config or args.settings else None,
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
    e.add_argument("--videos", nargs="*", help="video files (named by their stem unless --names)")
    e.add_argument("--names", nargs="*", help="the videos' names in the shard (annotation filenames), one per video")
    e.add_argument("--video-list", help="text file with one video path per line")
    e.add_argument("--output", required=True, help="the shard (.h5); failures go to OUTPUT.failures.tsv")
    e.add_argument("--config", help="YAML with an extract: section (a workflow config with --dataset)")
    e.add_argument("--dataset", help="extract one shard of this workflow dataset (needs --config, --shard)")
    e.add_argument("--shard", type=int, help="0-based shard index of --dataset")
    e.add_argument("--store", help="incremental shard to extract into, then copied to --output (workflow use)")
    e.add_argument("--overwrite", action="store_true", help="start afresh when OUTPUT holds features of another extractor")
    e.add_argument("--prune", action="store_true",
                   help="the shard holds exactly the given videos afterwards: others are removed (workflow use; "
                        "implies --overwrite; a run in which every video fails leaves the shard as it was)")
    e.set_defaults(func=cmd_extract)

    w = sub.add_parser("fetch-weights", help="download an encoder's weights once (where the network is), with a .sha256 beside",
                       description="Download an encoder's weights by its library's own download path into one file, "
                                   "and write its sha256 beside it (OUTPUT.sha256). Extraction jobs read the file.",
                       epilog="example: ecma fetch-weights --spec open_clip ViT-L-14-quickgelu openai "
                              "--output resources/weights/open_clip/ViT-L-14-quickgelu-openai.pt")
    w.add_argument("--spec", nargs="+", required=True, metavar="WORD",
                   help="'open_clip MODEL TAG' or 'laion_clap RELEASE' (e.g. laion_clap 630k-audioset-best.pt)")
    w.add_argument("--output", required=True, help="the weights file to write")
    w.set_defaults(func=cmd_fetch_weights)

    i = sub.add_parser("import", help="published features (VALOR's CLIP/CLAP, HAN's VGGish/ResNet-152/R(2+1)D) into a shard")
    i.add_argument("--format", required=True, choices=("valor", "han"), help="the publisher's folder layout")
    i.add_argument("--root", required=True, help="the feature folder (valor: CLIP/, CLAP/; han: vggish/, res152/, r2plus1d_18/)")
    i.add_argument("--annotations", nargs="+", help="LLP split csvs naming the videos to import")
    i.add_argument("--names", nargs="*", help="the annotation filenames to import, instead of --annotations (workflow use)")
    i.add_argument("--output", required=True, help="the shard (.h5); failures go to OUTPUT.failures.tsv")
    i.add_argument("--shard", help="I/N: only the videos of shard I of N (0-based; the stable hash extraction uses)")
    i.add_argument("--partial-ok", action="store_true",
                   help="exit 0 when some (not all) videos failed; they are listed in the failures table (workflow use)")
    i.set_defaults(func=cmd_import)

    t = sub.add_parser("train", help="train an E-CMA variant; keeps the best checkpoint by validation segment Type@AV")
    t.add_argument("--config", help="YAML config (a workflow config with --dataset)")
    t.add_argument("--dataset", help="workflow dataset whose train/val/eval csvs to use")
    t.add_argument("--variant", choices=VARIANTS, help="an ablation variant; it names its backbone (ecma.variants)")
    t.add_argument("--features", nargs="+", required=True, help="feature shards (.h5)")
    t.add_argument("--output-dir", required=True)
    t.add_argument("--train", help="training split csv (without --dataset)")
    t.add_argument("--val", help="validation split csv (without --dataset)")
    t.add_argument("--eval-audio", help="segment-level audio truth csv (without --dataset)")
    t.add_argument("--eval-visual", help="segment-level visual truth csv (without --dataset)")
    t.add_argument("--allow-split-overlap", action="store_true",
                   help="train even if a video is in both the training and the validation csv")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("import-checkpoint", help="another code's saved weights (CoLeaF's main network) as an ecma checkpoint",
                       description="Map a state dict saved by CoLeaF's code into the CoLeaF backbone and write an ecma "
                                   "checkpoint that predict and evaluate accept. A parameter that does not fit is an "
                                   "error naming it (exit 2).")
    c.add_argument("--format", required=True, choices=("coleaf",))
    c.add_argument("reference", help="the saved weights (.pt), read without running code (weights_only)")
    c.add_argument("--output", required=True, help="the ecma checkpoint to write (model.pt)")
    c.add_argument("--config", help="YAML config whose model section matches the weights (default: the package "
                                    "defaults, CLIP/CLAP sizes; HAN's features need audio_dim 128, visual_dim 2048, "
                                    "visual_frames_per_segment 8, visual_3d_dim 512)")
    c.set_defaults(func=cmd_import_checkpoint)

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

    for sp in (e, t, v):
        sp.add_argument("--settings", metavar="JSON",
                        help="the settings as JSON sections, e.g. '{\"train\": {\"epochs\": 5}}' (instead of --config)")
    for sp in (d, e, w, i, t, c, r, v, a):
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
