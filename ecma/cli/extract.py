"""`ecma extract` and `ecma fetch-weights`: features from videos, and the encoders' weights (workflow/rules/extract.smk)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ecma.errors import EcmaError
from ecma.cli.common import EXIT_SOME_VIDEOS_FAILED, settings, settings_options, subcommand


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
    from ecma.extract import extract_videos

    output = Path(args.output)
    if args.dataset is not None:
        from ecma.data.datasets import shard_videos, videos_to_extract, workflow_dataset

        if args.config is None or args.shard is None:
            raise EcmaError("--dataset needs --config and --shard")
        wcfg, files = workflow_dataset(args.config, args.dataset)
        videos = shard_videos(videos_to_extract(files), files.n_shards, args.shard)
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
        cfg, overwrite, prune = settings(args).extract, args.overwrite or args.prune, args.prune
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


def add_extract(sub) -> argparse.ArgumentParser:
    e = subcommand(
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
    settings_options(e)
    return e


def add_fetch_weights(sub) -> argparse.ArgumentParser:
    w = subcommand(
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
    return w
