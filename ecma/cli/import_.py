"""`ecma import`: published features into a shard (workflow/rules/import.smk)."""

from __future__ import annotations

import argparse
import sys

from ecma import registry
from ecma.errors import EcmaError
from ecma.cli.common import EXIT_SOME_VIDEOS_FAILED, json_option, subcommand


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    """'I/N' -> (I, N): shard I (0-based) of N."""
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit():
        raise EcmaError(f"--shard expects I/N (shard I of N, 0-based), got {text!r}")
    return int(i), int(n)


def cmd_import(args) -> int:
    from ecma.importers.run import import_features

    if not args.annotations and args.names is None:
        raise EcmaError("give --annotations CSV... (or --names NAME...)")
    encoders = None
    if args.encoders_from is not None and args.encoders is not None:
        raise EcmaError("give --encoders-from or --encoders, not both")
    if args.encoders_from is not None or args.encoders is not None:
        from ecma.config import load_config

        raw = json_option(args, "encoders")
        if raw is not None and not isinstance(raw, dict):
            raise EcmaError(f"--encoders: expected a mapping of sections, got {type(raw).__name__}")
        encoders = load_config(args.encoders_from, raw=raw, source=None if raw is None else "--encoders").extract
    report = import_features(args.format, args.root, args.annotations or [], args.output, shard=_parse_shard(args.shard),
                             names=args.names, encoders_from=encoders, progress=not args.quiet)
    print(
        f"{args.output}: imported {report.imported}, failed {len(report.failed)}"
        + (f" (see {report.failures_path})" if report.failed else ""),
        file=sys.stderr,
    )
    return EXIT_SOME_VIDEOS_FAILED if report.failed and not args.partial_ok else 0


def add_import(sub) -> argparse.ArgumentParser:
    i = subcommand(
        sub, "import", "published features (VALOR's CLIP/CLAP, HAN's VGGish/ResNet-152/R(2+1)D, UnAV-100's I3D/VGGish) into a shard",
        "Turn a folder of published <YouTube id>.npy features into a shard, named by the annotation "
        "filenames; no video needed. unav100: one folder of <id>_rgb/_flow/_vggish.npy on the 0.32-s grid and "
        "its unav100_annotations.json, resampled to one-second segments (each video its own length). Bad files "
        "(missing, wrong shape, NaN, pickled objects, never unpickled) are listed in OUTPUT.failures.tsv; exit "
        "status 3 when some failed, 2 when all did.",
        example="ecma import --format valor --root data/llp/valor --annotations data/llp/AVVP_train.csv "
        "--output valor.h5 --shard 0/16",
    )
    i.add_argument("--format", required=True, choices=registry.names("feature_formats"), help="the publisher's folder layout")
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
    i.add_argument("--encoders", metavar="JSON",
                   help="as --encoders-from, the extract section as JSON, e.g. '{\"extract\": {\"profile\": "
                        "\"valor\", ...}}' (workflow use)")
    i.add_argument("--partial-ok", action="store_true",
                   help="exit 0 when some (not all) videos failed; they are listed in the failures table (workflow use)")
    i.set_defaults(func=cmd_import)
    return i
