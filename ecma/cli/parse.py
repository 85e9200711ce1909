"""`ecma parse`: timelines of new videos (workflow/rules/parse.smk)."""

from __future__ import annotations

import argparse
import sys

from ecma.cli.common import EXIT_SOME_VIDEOS_FAILED, subcommand


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


def add_parse(sub) -> argparse.ArgumentParser:
    pa = subcommand(
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
    return pa
