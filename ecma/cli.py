"""The ``ecma`` command: a thin layer over the library; every workflow rule calls one of its subcommands.

Errors in the user's input end the command with one line, ``ecma <command>: error: <message>``, and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from typing import Optional
from pathlib import Path

from ecma import __version__
from ecma.config import VARIANTS
from ecma.errors import EcmaError

EXIT_INPUT_ERROR = 2
EXIT_SOME_VIDEOS_FAILED = 3


def _parse_named_paths(items: list[str], flag: str = "--metrics", name: str = "VARIANT") -> list[tuple[str, Path]]:
    """NAME=PATH items in the order given; a name may repeat (one file per seed)."""
    out = []
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise EcmaError(f"{flag} expects {name}=PATH, got {item!r}")
        out.append((key, Path(path)))
    return out


def _read_json(path: Path, what: str) -> dict:
    """A JSON file the user named; missing or malformed is a one-line error naming it."""
    if not path.is_file():
        raise EcmaError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EcmaError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _grouped_metrics(items: list[str]) -> dict[str, list[dict]]:
    """{variant: [metrics dict per file]} from VARIANT=PATH items, variants in first-given order."""
    runs: dict[str, list[dict]] = {}
    for variant, path in _parse_named_paths(items):
        runs.setdefault(variant, []).append(_read_json(path, f"metrics file of variant {variant!r}"))
    return runs


def _settings(args):
    """The package config of a command: ``--settings`` JSON (what the workflow's rules pass), else ``--config``."""
    from ecma.config import config_from_dict, load_config, merge_runtime

    runtime = _json_option(args, "runtime")
    if getattr(args, "settings", None) is None:
        cfg = load_config(args.config)
        return cfg if runtime is None else config_from_dict(merge_runtime(cfg.to_dict(), runtime), "--runtime")
    if args.config is not None or getattr(args, "dataset", None) is not None:
        raise EcmaError("give --settings or --config/--dataset, not both")
    raw = _json_option(args, "settings")
    return config_from_dict(raw if runtime is None else merge_runtime(raw, runtime), "--settings")


def _json_option(args, name: str):
    """The JSON of option ``--NAME`` (None where not given); invalid JSON is one line naming the option."""
    text = getattr(args, name, None)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise EcmaError(f"--{name} is not valid JSON ({e.msg} at column {e.colno})") from None


def cmd_demo(args) -> int:
    from ecma.config import DemoConfig, load_workflow_config
    from ecma.data.demo import make_demo_dataset

    demo = DemoConfig()
    if args.config:
        demo = load_workflow_config(args.config).dataset(args.dataset).demo or demo
    if args.format == "unav100":
        from ecma.data.unav_demo import make_unav_demo

        given = {k: getattr(args, k) for k in ("n_train", "n_val", "n_test", "seed") if getattr(args, k) is not None}
        make_unav_demo(args.output, **given)
        return 0
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
        from ecma.data.datasets import dataset_files, dataset_videos, shard_videos

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
    from ecma.extract.weights import random_encoders

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
    from ecma.extract.weights import WeightsFile, fetch

    library, *rest = args.spec
    if library not in ("open_clip", "open_clip_url", "laion_clap") or not rest or (library != "laion_clap" and len(rest) != 2):
        raise EcmaError("--spec is 'open_clip MODEL TAG', 'open_clip_url MODEL TAG' or 'laion_clap RELEASE'")
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
    encoders = None
    if args.encoders_from is not None:
        from ecma.config import load_config

        encoders = load_config(args.encoders_from).extract
    report = import_features(args.format, args.root, args.annotations or [], args.output, shard=_parse_shard(args.shard),
                             names=args.names, encoders_from=encoders, progress=not args.quiet)
    print(
        f"{args.output}: imported {report.imported}, failed {len(report.failed)}"
        + (f" (see {report.failures_path})" if report.failed else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_VIDEOS_FAILED if report.failed and not args.partial_ok else 0


def _cli_annotations(args, flags: dict[str, Optional[str]], classes=None):
    """The annotations a command was given: ``--annotations JSON`` (UnAV-100) or LLP csvs by flag, all of
    ``flags`` (option -> value) required then."""
    from ecma.data.annotation_sets import LlpAnnotations, UnavAnnotationSet

    if getattr(args, "annotations", None):
        given = [opt for opt, v in flags.items() if v is not None]
        if given:
            raise EcmaError(f"give --annotations or {', '.join(flags)}, not both")
        if not args.annotations.lower().endswith(".json"):
            raise EcmaError(f"--annotations {args.annotations}: expected UnAV-100's annotation JSON")
        return UnavAnnotationSet(Path(args.annotations), classes)
    missing = [opt for opt, v in flags.items() if v is None]
    if missing:
        raise EcmaError(f"give {', '.join(missing)} (LLP csvs), or --annotations JSON (UnAV-100)")
    splits = {opt.removeprefix("--"): Path(v) for opt, v in flags.items() if not opt.startswith("--eval")}
    kw = {} if classes is None else {"classes": tuple(classes)}
    return LlpAnnotations(splits, flags.get("--eval-audio"), flags.get("--eval-visual"), **kw)


def _split_truth(args, classes=None):
    """(annotations, split name) of the options :func:`_split_truth_options` adds."""
    flags = {"--split": args.split, "--eval-audio": args.eval_audio, "--eval-visual": args.eval_visual}
    return _cli_annotations(args, flags, classes), (args.subset if args.annotations else "split")


def _train_inputs(args):
    """(config, annotations, train split name, val split name) from a workflow dataset or from options."""
    from ecma.config import load_workflow_config

    if args.dataset is not None:
        from ecma.data.datasets import dataset_files

        if args.config is None:
            raise EcmaError("--dataset needs --config")
        wcfg = load_workflow_config(args.config)
        cfg = wcfg.for_dataset(args.dataset, args.variant)
        return cfg, dataset_files(wcfg, args.dataset).annotation_set(), "train", "val"
    flags = {"--train": args.train, "--val": args.val, "--eval-audio": args.eval_audio, "--eval-visual": args.eval_visual}
    annotations = _cli_annotations(args, flags)
    cfg = _settings(args)
    if args.variant:  # a variant names its backbone too
        from ecma.config import config_from_dict
        from ecma.training.variants import variant

        raw = cfg.to_dict()
        raw["train"]["variant"], raw["model"]["backbone"] = args.variant, variant(args.variant).backbone
        cfg = config_from_dict(raw, "--variant")
    return cfg, annotations, "train", "val"


def cmd_train(args) -> int:
    from ecma.data.annotation_sets import check_disjoint
    from ecma.data.splits import load_annotated_split
    from ecma.training.plots import plot_history
    from ecma.training.train import train

    cfg, annotations, train_split, val_split = _train_inputs(args)
    if not args.allow_split_overlap:
        check_disjoint(annotations, (train_split, val_split))
    missing = cfg.train.missing_videos
    train_data = load_annotated_split(args.features, annotations, train_split, missing=missing)
    val_data = load_annotated_split(args.features, annotations, val_split, with_truth=True, missing=missing)
    for what, data in (("training", train_data), ("validation", val_data)):
        if data.features.skipped:
            print(f"{what}: skipped {len(data.features.skipped)} video(s) without features", file=sys.stderr)
    result = train(cfg, train_data, val_data, args.output_dir, classes=annotations.classes,
                   fingerprint=train_data.features.fingerprint, progress=not args.quiet)
    plot_history(result.history, Path(args.output_dir) / "curves.png", title=f"{cfg.train.variant}: training curves")
    print(f"best validation {cfg.train.select} {result.best_score:.2f} at epoch {result.best_epoch}", file=sys.stderr)
    return 0


def cmd_import_checkpoint(args) -> int:
    from ecma.models.checkpoint_import import import_checkpoint

    cfg = import_checkpoint(args.format, args.reference, args.output, config=args.config)
    print(f"{args.output}: {args.format} checkpoint {args.reference} imported ({cfg.model.backbone} backbone)", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from ecma.evaluation.predict import predict
    from ecma.evaluation.predictions import write_predictions

    if args.annotations:
        from ecma.training.checkpoint import load_model

        if args.split:
            raise EcmaError("give --split (an LLP csv) or --annotations JSON --subset NAME, not both")
        classes = load_model(args.checkpoint)[2]["classes"]
        names = _cli_annotations(args, {}, classes).split(args.subset).filenames
        preds = predict(args.checkpoint, args.features, filenames=names, batch_size=args.batch_size, device=args.device,
                        missing=args.missing)
    else:
        if not args.split:
            raise EcmaError("give --split CSV (LLP), or --annotations JSON --subset NAME (UnAV-100)")
        preds = predict(args.checkpoint, args.features, args.split, batch_size=args.batch_size, device=args.device, missing=args.missing)
    write_predictions(args.output, preds)
    return 0


def cmd_evaluate(args) -> int:
    from ecma.config import load_workflow_config
    from ecma.evaluation.predictions import read_predictions
    from ecma.io import write_json
    from ecma.provenance import provenance

    from ecma.evaluation.evaluate import evaluate_annotated

    if args.dataset is None:
        cfg = _settings(args)  # a bad setting is the first thing said, before any file is read
    classes = read_predictions(args.predictions).classes
    if args.dataset is not None:
        from ecma.data.datasets import dataset_files

        if args.config is None:
            raise EcmaError("--dataset needs --config")
        wcfg = load_workflow_config(args.config)
        cfg = wcfg.for_dataset(args.dataset)
        f = dataset_files(wcfg, args.dataset)
        if f.annotation_format == "llp":
            flags = {"--split": args.split, "--eval-audio": args.eval_audio or f.eval_audio_csv,
                     "--eval-visual": args.eval_visual or f.eval_visual_csv}
            annotations, split = _cli_annotations(args, flags, classes), "split"
        else:
            annotations, split = f.annotation_set(classes), args.subset
    else:
        annotations, split = _split_truth(args, classes)
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
              f"event AV {evt['audio_visual']:.2f}; mAP@0.5:0.9 {metrics['map']['average_0.5_0.9']:.2f}", file=sys.stderr)
        return 0
    print(
        f"{args.output}: {metrics['num_videos']} videos; segment A {seg['audio']:.2f} V {seg['visual']:.2f} "
        f"AV {seg['audio_visual']:.2f} Type@AV {seg['type_av']:.2f} Event@AV {seg['event_av']:.2f}; "
        f"event Type@AV {evt['type_av']:.2f} Event@AV {evt['event_av']:.2f}",
        file=sys.stderr,
    )
    return 0


def cmd_ablation(args) -> int:
    from ecma.io import atomic_path, write_json
    from ecma.report.ablation import ablation_outputs

    runs = _grouped_metrics(args.metrics)
    baseline = _read_json(Path(args.baseline), "baseline metrics file") if args.baseline else None
    md, page, table = ablation_outputs(runs, baseline)
    with atomic_path(args.output_md) as tmp:
        tmp.write_text(md)
    if args.output_html:
        with atomic_path(args.output_html) as tmp:
            tmp.write_text(page)
    write_json(args.output_json, table)
    return 0


def cmd_summarize(args) -> int:
    from ecma.io import write_json
    from ecma.report.seeds import check_metrics, summarize_seeds

    per_seed: dict[str, dict] = {}
    for seed, path in _parse_named_paths(args.metrics, name="SEED"):
        if seed in per_seed:
            raise EcmaError(f"--metrics names seed {seed} twice")
        per_seed[seed] = _read_json(path, f"metrics file of seed {seed}")
        check_metrics(per_seed[seed], str(path))
    write_json(args.output, summarize_seeds(per_seed))
    return 0


def cmd_baseline(args) -> int:
    from ecma.io import write_json
    from ecma.report.baseline import annotated_nothing_predicted

    annotations, split = _split_truth(args)
    result = annotated_nothing_predicted(annotations, split, n_segments=args.segments)
    if not args.annotations:
        result["split"] = str(args.split)
    write_json(args.output, result)
    return 0


def cmd_per_class_chart(args) -> int:
    from ecma.report.per_class import best_variant, plot_per_class
    from ecma.report.seeds import summarize_seeds

    runs = _grouped_metrics(args.metrics)
    # several files of a variant are its seeds: the chart shows their mean
    merged = {v: (ms[0] if len(ms) == 1 else summarize_seeds({str(i): m for i, m in enumerate(ms)})) for v, ms in runs.items()}
    for variant, m in merged.items():
        if "segment" not in m or "type_av" not in (m.get("segment") or {}):
            raise EcmaError(f"metrics of variant {variant!r}: no segment.type_av (not a metrics.json of `ecma evaluate`)")
    best = best_variant(merged)
    seeds = merged[best].get("num_seeds", len(runs[best]))
    title = f"Per-class segment-level F1, {best} (best test segment Type@AV{f', mean of {seeds} seeds' if seeds > 1 else ''})"
    plot_per_class(merged[best], args.output, title=title, source=f"metrics of variant {best!r}")
    print(f"{args.output}: per-class F1 of {best}", file=sys.stderr)
    return 0


def cmd_timelines(args) -> int:
    from ecma.evaluation.predictions import read_predictions
    from ecma.report.timelines import annotated_timelines, plot_timelines

    classes = read_predictions(args.predictions).classes
    annotations, split = _split_truth(args, classes)
    videos = annotated_timelines(
        args.predictions, annotations, split, filenames=args.filenames,
        n_videos=args.videos, video_threshold=args.video_threshold, segment_threshold=args.segment_threshold,
    )
    plot_timelines(videos, args.output, title=args.title or f"Predicted vs true events: {Path(args.predictions).name}")
    return 0


def cmd_run_summary(args) -> int:
    from ecma.io import atomic_path
    from ecma.report.run_summary import run_summary_html

    page = run_summary_html(_grouped_metrics(args.metrics))
    with atomic_path(args.output) as tmp:
        tmp.write_text(page)
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (wrapped by _subcommand), and an option's default after its help where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _annotation_options(p: argparse.ArgumentParser, *, split: bool = True) -> None:
    """UnAV-100's one JSON in place of LLP's csvs, and which of its subsets."""
    p.add_argument("--annotations", metavar="JSON",
                   help="UnAV-100's annotation JSON (instead of the LLP csv options): classes, splits and truth")
    if split:
        p.add_argument("--subset", choices=("train", "val", "test"), default="test",
                       help="with --annotations: the split to use")


def _split_truth_options(p: argparse.ArgumentParser, split_help: str) -> None:
    """One split and its segment-level truth: LLP's three csvs, or UnAV-100's JSON and a subset."""
    p.add_argument("--split", help=split_help)
    p.add_argument("--eval-audio", help="segment-level audio truth csv")
    p.add_argument("--eval-visual", help="segment-level visual truth csv")
    _annotation_options(p)


def _subcommand(sub, name: str, help: str, description: str, example: str) -> argparse.ArgumentParser:
    """A subcommand with a wrapped description and an example that the help keeps on one line."""
    import textwrap

    return sub.add_parser(
        name, help=help, description=textwrap.fill(description, 88),
        epilog="example:\n  " + example, formatter_class=_HelpFormatter,
    )


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
    p = argparse.ArgumentParser(
        prog="ecma", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Weakly-supervised audio-visual video parsing: what is heard, seen, or both, and when.\n"
        "Features from videos (extract) or published ones (import), training (train), the benchmark's metrics\n"
        "(predict, evaluate), tables and figures, and timelines of new videos (parse). Every step of the\n"
        "Snakemake workflow runs one of these; each also works on its own. `ecma COMMAND --help` for more.",
        epilog="example:\n  ecma parse --checkpoint results/demo/models/ecma/seed-0/model.pt my.mp4 --output-dir parsed",
    )
    p.add_argument("--version", action="version", version=f"ecma {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    d = _subcommand(
        sub, "demo", "generate the synthetic demo dataset (videos and LLP-format csvs)",
        "Write 10-second mp4 clips in which coloured shapes (seen) and tones (heard) of eight LLP classes come "
        "and go, with LLP's five csv files holding their video-level labels and segment-level truth.",
        example="ecma demo --output data/demo --n-train 48 --n-val 16 --n-test 16",
    )
    d.add_argument("--output", required=True, help="folder to write videos/ and the csv files into")
    d.add_argument("--format", choices=("llp", "unav100"), default="llp",
                   help="llp: mp4 videos and LLP's csvs (default); unav100: UnAV-100-style I3D/VGGish-shaped features "
                        "(av_features/) and unav100_annotations.json, no video (default sizes 60/20/20)")
    d.add_argument("--config", help="workflow config whose datasets.<NAME>.demo settings to use (llp format only)")
    d.add_argument("--dataset", default="demo", help="the dataset of --config whose demo settings to use")
    for key, what, llp, unav in (("n_train", "training videos", 48, 60), ("n_val", "validation videos", 16, 20),
                                 ("n_test", "test videos", 16, 20), ("seed", "the generator's seed", 0, 0)):
        d.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int,
                       help=f"{what} (default: from --config, else {llp}; unav100: {unav})")
    d.set_defaults(func=cmd_demo)

    e = _subcommand(
        sub, "extract", "extract per-second CLIP visual and CLAP audio features into an HDF5 shard",
        "Decode each video, encode one frame (or K) per segment with open_clip's image tower and the audio "
        "with LAION-CLAP's HTSAT, and add them to the shard. Incremental: videos already there with the same "
        "file content and settings are kept. Videos that cannot be read are listed in OUTPUT.failures.tsv; "
        "exit status 3 when some failed, 2 when all did (the shard is then left as it was).",
        example="ecma extract --videos clips/*.mp4 --output features.h5 --config my.yaml",
    )
    e.add_argument("--videos", nargs="*", action="extend",
                   help="video files (named by their stem unless --names); may be repeated, and --videos=PATH takes "
                        "a path that starts with '-'")
    e.add_argument("--names", nargs="*", action="extend",
                   help="the videos' names in the shard (annotation filenames), one per video, in the order of the "
                        "videos; may be repeated, and --names=NAME takes a name that starts with '-'")
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

    w = _subcommand(
        sub, "fetch-weights", "download an encoder's weights once (where the network is), with a .sha256 beside",
        "Download an encoder's weights by its library's own download path into one file, and write its "
        "sha256 beside it (OUTPUT.sha256). Extraction jobs read the file and check it; they never download.",
        example="ecma fetch-weights --spec open_clip ViT-L-14-quickgelu openai "
        "--output resources/weights/open_clip/ViT-L-14-quickgelu-openai.pt",
    )
    w.add_argument("--spec", nargs="+", required=True, metavar="WORD",
                   help="'open_clip MODEL TAG', 'open_clip_url MODEL TAG' (the tag's own download address, whose "
                        "file the valor profile names by sha256) or 'laion_clap RELEASE' (e.g. laion_clap "
                        "630k-audioset-best.pt)")
    w.add_argument("--output", required=True, help="the weights file to write")
    w.set_defaults(func=cmd_fetch_weights)

    i = _subcommand(
        sub, "import", "published features (VALOR's CLIP/CLAP, HAN's VGGish/ResNet-152/R(2+1)D, UnAV-100's I3D/VGGish) into a shard",
        "Turn a folder of published <YouTube id>.npy features into a shard, named by the annotation "
        "filenames; no video needed. unav100: one folder of <id>_rgb/_flow/_vggish.npy on the 0.32-s grid and "
        "its unav100_annotations.json, resampled to one-second segments (each video its own length). Bad files "
        "(missing, wrong shape, NaN, pickled objects, never unpickled) are listed in OUTPUT.failures.tsv; exit "
        "status 3 when some failed, 2 when all did.",
        example="ecma import --format valor --root data/llp/valor --annotations data/llp/AVVP_train.csv "
        "--output valor.h5 --shard 0/16",
    )
    i.add_argument("--format", required=True, choices=("valor", "han", "unav100"), help="the publisher's folder layout")
    i.add_argument("--root", required=True, help="the feature folder (valor: CLIP/, CLAP/; han: vggish/, res152/, "
                   "r2plus1d_18/; unav100: the av_features folder itself)")
    i.add_argument("--annotations", nargs="+", help="LLP split csvs naming the videos to import (unav100: the one "
                   "annotation JSON; every subset of it is imported, and --names still needs it for durations)")
    i.add_argument("--names", nargs="*", action="extend",
                   help="the annotation filenames to import, instead of --annotations (workflow use); may be repeated, "
                        "and --names=NAME takes a name that starts with '-'")
    i.add_argument("--output", required=True, help="the shard (.h5); failures go to OUTPUT.failures.tsv")
    i.add_argument("--shard", help="I/N: only the videos of shard I of N (0-based; the stable hash extraction uses)")
    i.add_argument("--encoders-from", metavar="YAML",
                   help="valor: a config whose extract section names the encoders and weights files that computed "
                        "these features (default: the published checkpoints); the shard then mixes with "
                        "extract.profile valor extractions of that config")
    i.add_argument("--partial-ok", action="store_true",
                   help="exit 0 when some (not all) videos failed; they are listed in the failures table (workflow use)")
    i.set_defaults(func=cmd_import)

    t = _subcommand(
        sub, "train", "train an E-CMA variant; keeps the best checkpoint by validation segment Type@AV",
        "Train one variant on feature shards from the training csv's weak labels, validating each epoch on the "
        "validation csv's segment-level truth. Writes model.pt (the best epoch), last.pt (to resume after a "
        "kill: the same command continues), history.csv/.json and curves.png.",
        example="ecma train --config my.yaml --variant ecma --features shard-*.h5 --train AVVP_train.csv "
        "--val AVVP_val_pd.csv --eval-audio AVVP_eval_audio.csv --eval-visual AVVP_eval_visual.csv --output-dir run",
    )
    t.add_argument("--config", help="YAML config (a workflow config with --dataset)")
    t.add_argument("--dataset", help="workflow dataset whose train/val/eval csvs to use")
    t.add_argument("--variant", choices=VARIANTS,
                   help="an ablation variant; it names its backbone (ecma.training.variants)")
    t.add_argument("--features", nargs="+", required=True, help="feature shards (.h5)")
    t.add_argument("--output-dir", required=True, help="folder for model.pt, last.pt, history and curves")
    t.add_argument("--train", help="training split csv (without --dataset)")
    t.add_argument("--val", help="validation split csv (without --dataset)")
    t.add_argument("--eval-audio", help="segment-level audio truth csv (without --dataset)")
    t.add_argument("--eval-visual", help="segment-level visual truth csv (without --dataset)")
    _annotation_options(t, split=False)
    t.add_argument("--allow-split-overlap", action="store_true",
                   help="train even if a video is in both the training and the validation csv")
    t.set_defaults(func=cmd_train)

    c = _subcommand(
        sub, "import-checkpoint", "another code's saved weights (CoLeaF's main network) as an ecma checkpoint",
        "Map a state dict saved by CoLeaF's code into the CoLeaF backbone and write an ecma checkpoint that "
        "predict and evaluate accept. A parameter that does not fit is an error naming it (exit 2).",
        example="ecma import-checkpoint --format coleaf coleaf_best.pt --output model.pt --config han_sizes.yaml",
    )
    c.add_argument("--format", required=True, choices=("coleaf",), help="whose code saved the weights")
    c.add_argument("reference", help="the saved weights (.pt), read without running code (weights_only)")
    c.add_argument("--output", required=True, help="the ecma checkpoint to write (model.pt)")
    c.add_argument("--config", help="YAML config whose model section matches the weights (default: the package "
                                    "defaults, CLIP/CLAP sizes; HAN's features need audio_dim 128, visual_dim 2048, "
                                    "visual_frames_per_segment 8, visual_3d_dim 512)")
    c.set_defaults(func=cmd_import_checkpoint)

    r = _subcommand(
        sub, "predict", "write a model's predictions on a split (video-, audio- and visual-level probabilities)",
        "Run a trained checkpoint on the features of a split's videos and write predictions.h5: filename, "
        "classes, video_prob (N, C), audio_prob and visual_prob (N, T, C). A checkpoint trained on other "
        "features (another fingerprint) is refused.",
        example="ecma predict --checkpoint model.pt --features shard-*.h5 --split AVVP_test_pd.csv --output test.h5",
    )
    r.add_argument("--checkpoint", required=True, help="model.pt written by ecma train")
    r.add_argument("--features", nargs="+", required=True, help="feature shards (.h5) holding the split's videos")
    r.add_argument("--split", help="split csv (filename, event_labels) naming the videos")
    _annotation_options(r)
    r.add_argument("--output", required=True, help="predictions (.h5)")
    r.add_argument("--batch-size", type=int, default=256, help="videos per forward pass")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument("--missing", choices=("error", "skip"), default="error", help="split videos without features")
    r.set_defaults(func=cmd_predict)

    v = _subcommand(
        sub, "evaluate", "score predictions with the AVVP benchmark's protocol",
        "Score any model's predictions.h5 against the segment-level truth with the benchmark's exact metrics "
        "(segment and event level; audio, visual, audio-visual, Type@AV, Event@AV; F1 in percent) and write "
        "metrics.json with per-class scores and provenance.",
        example="ecma evaluate --predictions test.h5 --split AVVP_test_pd.csv --eval-audio AVVP_eval_audio.csv "
        "--eval-visual AVVP_eval_visual.csv --output metrics.json",
    )
    v.add_argument("--predictions", required=True, help="predictions (.h5) written by ecma predict")
    _split_truth_options(v, "split csv naming the videos to score")
    v.add_argument("--output", required=True, help="metrics.json")
    v.add_argument("--config", help="YAML config: eval thresholds (and, with --dataset, the eval csvs)")
    v.add_argument("--dataset", help="workflow dataset whose eval csvs to use (with --config)")
    v.add_argument("--video-threshold", type=float, help="video-level threshold (default: the config's, 0.5)")
    v.add_argument("--segment-threshold", type=float, help="segment-level threshold (default: the config's, 0.5)")
    v.add_argument("--missing", choices=("error", "skip"), default="error", help="split videos without predictions")
    v.set_defaults(func=cmd_evaluate)

    a = _subcommand(
        sub, "ablation", "every variant side by side, mean ± std over seeds (Markdown, JSON, HTML)",
        "Compare variants on their test metrics. Give a variant once per seed (VARIANT=seed0.json "
        "VARIANT=seed1.json) or once with an `ecma summarize` file; the spread is the sample standard "
        "deviation over seeds (ddof=1).",
        example="ecma ablation --metrics ecma=s0.json ecma=s1.json han=s0h.json --baseline nothing.json "
        "--output-md ablation.md --output-json ablation.json --output-html ablation.html",
    )
    a.add_argument("--metrics", nargs="+", required=True, metavar="VARIANT=METRICS_JSON",
                   help="metrics.json of a variant; repeat a variant for each seed")
    a.add_argument("--baseline", metavar="JSON", help="scores of predicting nothing (`ecma baseline`), shown as the last row")
    a.add_argument("--output-md", required=True, help="the table as Markdown")
    a.add_argument("--output-json", required=True,
                   help="variants -> {segment, event} means, std, seeds, baseline (JSON)")
    a.add_argument("--output-html", help="the table as a self-contained HTML page (for snakemake --report)")
    a.set_defaults(func=cmd_ablation)

    pa = _subcommand(
        sub, "parse", "what is heard and seen when in new videos: NAME.json/.html/.png per video and index.html",
        "Decode and encode each video with the extractor the checkpoint was trained on, run the model, and "
        "write its events (class, audio/visual/audio-visual, onset, offset, confidence) with per-second "
        "probabilities as JSON, a page with the video and a clickable timeline, and a PNG of the timeline.",
        example="ecma parse --checkpoint results/demo/models/ecma/seed-0/model.pt clip.mp4 --output-dir parsed",
    )
    pa.add_argument("videos", nargs="+", metavar="VIDEO",
                    help="video files (outputs are named by their stem); after `--`, a file that starts with '-' too")
    pa.add_argument("--checkpoint", required=True, help="a trained model.pt")
    pa.add_argument("--output-dir", required=True, help="folder for the per-video files and index.html")
    pa.add_argument("--config", help="YAML whose extract section rebuilds the checkpoint's extractor (default: the "
                    "checkpoint's stored one); its fingerprint must equal the checkpoint's")
    pa.add_argument("--threshold", type=float, help="video and segment threshold at once (default: the checkpoint's eval ones)")
    pa.add_argument("--video-threshold", type=float, help="video-level threshold (default: --threshold, else the checkpoint's)")
    pa.add_argument("--segment-threshold", type=float, help="segment threshold (default: --threshold, else the checkpoint's)")
    pa.add_argument("--stride", type=int, help="segments between windows of a long video (default: half a window)")
    pa.add_argument("--whole-video", action="store_true", help="one pass over the whole video instead of windows")
    pa.add_argument("--embed-video", action="store_true", help="put the video into NAME.html (default: a relative link)")
    pa.add_argument("--workers", type=int, help="decoding processes (default: the extract config's)")
    pa.add_argument("--device", help="auto | cpu | cuda[:N] (default: the extract config's)")
    pa.add_argument("--keep-going", action="store_true", help="exit 0 although some videos failed (they are listed in "
                    "failures.tsv and index.html): for workflow rules")
    pa.set_defaults(func=cmd_parse)

    s = _subcommand(
        sub, "summarize", "one metrics.json for a variant trained with several seeds (mean, std, per seed)",
        "Average the metrics of one variant over its seeds: the mean in metrics.json's own fields "
        "(segment, event, per_class), `std` (sample std, ddof=1; 0 for one seed) and `seeds` beside it.",
        example="ecma summarize --metrics 0=ecma-0.json 1=ecma-1.json 2=ecma-2.json --output ecma.json",
    )
    s.add_argument("--metrics", nargs="+", required=True, metavar="SEED=METRICS_JSON", help="metrics.json of each seed")
    s.add_argument("--output", required=True, help="the summary metrics.json")
    s.set_defaults(func=cmd_summarize)

    b = _subcommand(
        sub, "baseline", "the score of predicting nothing on a split (all probabilities 0)",
        "Score all-zero predictions against a split's truth: the floor every table should beat.",
        example="ecma baseline --split test.csv --eval-audio eval_audio.csv --eval-visual eval_visual.csv "
        "--output nothing.json",
    )
    _split_truth_options(b, "split csv (filename, event_labels)")
    b.add_argument("--segments", type=int, default=10, help="one-second segments per video (default: %(default)s)")
    b.add_argument("--output", required=True, help="metrics.json-like scores")
    b.set_defaults(func=cmd_baseline)

    pc = _subcommand(
        sub, "per-class-chart", "PNG: per-class audio and visual segment F1 of the best variant",
        "Bar chart of per-class segment-level F1 (audio, visual) of the variant with the highest "
        "segment Type@AV; several files of one variant are averaged as seeds.",
        example="ecma per-class-chart --metrics ecma=ecma.json han=han.json --output per_class.png",
    )
    pc.add_argument("--metrics", nargs="+", required=True, metavar="VARIANT=METRICS_JSON",
                    help="metrics.json (or `ecma summarize` file) of each variant; repeat a variant for each seed")
    pc.add_argument("--output", required=True, help="the chart (.png)")
    pc.set_defaults(func=cmd_per_class_chart)

    tl = _subcommand(
        sub, "timelines", "PNG: predicted versus true events per second of a few videos, audio and visual",
        "Draw, for a few videos of a split, the true events and the predictions binarised with the "
        "benchmark's rule (video-level gating), one row per video.",
        example="ecma timelines --predictions ecma-test.h5 --split test.csv --eval-audio eval_audio.csv "
        "--eval-visual eval_visual.csv --output timelines.png",
    )
    tl.add_argument("--predictions", required=True, help="predictions .h5 (`ecma predict`)")
    _split_truth_options(tl, "split csv the videos come from")
    tl.add_argument("--output", required=True, help="the picture (.png)")
    tl.add_argument("--videos", type=int, default=4,
                    help="how many videos: those with the most true event-seconds (default: %(default)s)")
    tl.add_argument("--filenames", nargs="+", help="draw these videos instead")
    tl.add_argument("--video-threshold", type=float, default=0.5, help="video-level threshold (default: %(default)s)")
    tl.add_argument("--segment-threshold", type=float, default=0.5, help="segment threshold (default: %(default)s)")
    tl.add_argument("--title", help="title of the picture (default: names the predictions file)")
    tl.set_defaults(func=cmd_timelines)

    rs = _subcommand(
        sub, "run-summary", "HTML: what was run (commit, version, feature fingerprint, variants, seeds)",
        "Collect the provenance that each metrics.json recorded into one small HTML page.",
        example="ecma run-summary --metrics ecma=ecma-0.json ecma=ecma-1.json --output run.html",
    )
    rs.add_argument("--metrics", nargs="+", required=True, metavar="VARIANT=METRICS_JSON",
                    help="metrics.json of each variant and seed")
    rs.add_argument("--output", required=True, help="the page (.html)")
    rs.set_defaults(func=cmd_run_summary)

    for sp in (e, t, v):
        sp.add_argument("--settings", metavar="JSON",
                        help="the settings as JSON sections, e.g. '{\"train\": {\"epochs\": 5}}' (instead of --config)")
        sp.add_argument("--runtime", metavar="JSON",
                        help="runtime settings (device, threads, workers, batch sizes) as JSON sections, put over "
                             "--settings or --config, e.g. '{\"extract\": {\"workers\": 4}}'")
    for sp in (d, e, w, i, t, c, r, v, a, s, b, pc, tl, rs, pa):
        sp.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    from ecma.progress import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging()
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
