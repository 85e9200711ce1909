"""`ecma ablation`, `summarize`, `baseline`, `per-class-chart`, `timelines`, `run-summary`: what a person reads (workflow/rules/report.smk)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecma.errors import EcmaError
from ecma.cli.common import grouped_metrics, named_paths, read_json, split_truth, split_truth_options, subcommand


def cmd_ablation(args) -> int:
    from ecma.io import atomic_path, write_json
    from ecma.report.ablation import ablation_outputs

    runs = grouped_metrics(args.metrics)
    baseline = read_json(Path(args.baseline), "baseline metrics file") if args.baseline else None
    md, page, table = ablation_outputs(runs, baseline, args.dataset)
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
    for seed, path in named_paths(args.metrics, name="SEED"):
        if seed in per_seed:
            raise EcmaError(f"--metrics names seed {seed} twice")
        per_seed[seed] = read_json(path, f"metrics file of seed {seed}")
        check_metrics(per_seed[seed], str(path))
    write_json(args.output, summarize_seeds(per_seed))
    return 0


def cmd_baseline(args) -> int:
    from ecma.io import write_json
    from ecma.report.baseline import annotated_nothing_predicted

    annotations, split = split_truth(args)
    result = annotated_nothing_predicted(annotations, split, n_segments=args.segments)
    if not args.annotations:
        result["split"] = str(args.split)
    write_json(args.output, result)
    return 0


def cmd_per_class_chart(args) -> int:
    from ecma.report.per_class import best_variant, plot_per_class
    from ecma.report.seeds import summarize_seeds

    runs = grouped_metrics(args.metrics)
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
    annotations, split = split_truth(args, classes)
    videos = annotated_timelines(
        args.predictions, annotations, split, filenames=args.filenames,
        n_videos=args.videos, video_threshold=args.video_threshold, segment_threshold=args.segment_threshold,
    )
    plot_timelines(videos, args.output, title=args.title or f"Predicted vs true events: {Path(args.predictions).name}")
    return 0


def cmd_run_summary(args) -> int:
    from ecma.io import atomic_path
    from ecma.report.run_summary import run_summary_html

    page = run_summary_html(grouped_metrics(args.metrics))
    with atomic_path(args.output) as tmp:
        tmp.write_text(page)
    return 0


def add_ablation(sub) -> argparse.ArgumentParser:
    a = subcommand(
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
    a.add_argument("--dataset", help="the workflow's dataset name: for LLP datasets the paper's Table 3 figures "
                   "follow ours, in a table of their own")
    a.set_defaults(func=cmd_ablation)
    return a


def add_summarize(sub) -> argparse.ArgumentParser:
    s = subcommand(
        sub, "summarize", "one metrics.json for a variant trained with several seeds (mean, std, per seed)",
        "Average the metrics of one variant over its seeds: the mean in metrics.json's own fields "
        "(segment, event, per_class), `std` (sample std, ddof=1; 0 for one seed) and `seeds` beside it.",
        example="ecma summarize --metrics 0=ecma-0.json 1=ecma-1.json 2=ecma-2.json --output ecma.json",
    )
    s.add_argument("--metrics", nargs="+", required=True, metavar="SEED=METRICS_JSON", help="metrics.json of each seed")
    s.add_argument("--output", required=True, help="the summary metrics.json")
    s.set_defaults(func=cmd_summarize)
    return s


def add_baseline(sub) -> argparse.ArgumentParser:
    b = subcommand(
        sub, "baseline", "the score of predicting nothing on a split (all probabilities 0)",
        "Score all-zero predictions against a split's truth: the floor every table should beat.",
        example="ecma baseline --split test.csv --eval-audio eval_audio.csv --eval-visual eval_visual.csv "
        "--output nothing.json",
    )
    split_truth_options(b, "split csv (filename, event_labels)")
    b.add_argument("--segments", type=int, default=10, help="one-second segments per video (default: %(default)s)")
    b.add_argument("--output", required=True, help="metrics.json-like scores")
    b.set_defaults(func=cmd_baseline)
    return b


def add_per_class_chart(sub) -> argparse.ArgumentParser:
    pc = subcommand(
        sub, "per-class-chart", "PNG: per-class audio and visual segment F1 of the best variant",
        "Bar chart of per-class segment-level F1 (audio, visual) of the variant with the highest "
        "segment Type@AV; several files of one variant are averaged as seeds.",
        example="ecma per-class-chart --metrics ecma=ecma.json han=han.json --output per_class.png",
    )
    pc.add_argument("--metrics", nargs="+", required=True, metavar="VARIANT=METRICS_JSON",
                    help="metrics.json (or `ecma summarize` file) of each variant; repeat a variant for each seed")
    pc.add_argument("--output", required=True, help="the chart (.png)")
    pc.set_defaults(func=cmd_per_class_chart)
    return pc


def add_timelines(sub) -> argparse.ArgumentParser:
    tl = subcommand(
        sub, "timelines", "PNG: predicted versus true events per second of a few videos, audio and visual",
        "Draw, for a few videos of a split, the true events and the predictions binarised with the "
        "benchmark's rule (video-level gating), one row per video.",
        example="ecma timelines --predictions ecma-test.h5 --split test.csv --eval-audio eval_audio.csv "
        "--eval-visual eval_visual.csv --output timelines.png",
    )
    tl.add_argument("--predictions", required=True, help="predictions .h5 (`ecma predict`)")
    split_truth_options(tl, "split csv the videos come from")
    tl.add_argument("--output", required=True, help="the picture (.png)")
    tl.add_argument("--videos", type=int, default=4,
                    help="how many videos: those with the most true event-seconds (default: %(default)s)")
    tl.add_argument("--filenames", nargs="+", help="draw these videos instead")
    tl.add_argument("--video-threshold", type=float, default=0.5, help="video-level threshold (default: %(default)s)")
    tl.add_argument("--segment-threshold", type=float, default=0.5, help="segment threshold (default: %(default)s)")
    tl.add_argument("--title", help="title of the picture (default: names the predictions file)")
    tl.set_defaults(func=cmd_timelines)
    return tl


def add_run_summary(sub) -> argparse.ArgumentParser:
    rs = subcommand(
        sub, "run-summary", "HTML: what was run (commit, version, feature fingerprint, variants, seeds)",
        "Collect the provenance that each metrics.json recorded into one small HTML page.",
        example="ecma run-summary --metrics ecma=ecma-0.json ecma=ecma-1.json --output run.html",
    )
    rs.add_argument("--metrics", nargs="+", required=True, metavar="VARIANT=METRICS_JSON",
                    help="metrics.json of each variant and seed")
    rs.add_argument("--output", required=True, help="the page (.html)")
    rs.set_defaults(func=cmd_run_summary)
    return rs
