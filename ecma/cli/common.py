"""What the subcommands share: exit codes, the settings options (``--settings``/``--runtime`` JSON or ``--config``),
NAME=PATH lists, JSON inputs, the annotation options (LLP's csvs or UnAV-100's JSON), and how a subcommand's help
looks."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Optional

from ecma.errors import EcmaError

EXIT_INPUT_ERROR = 2
EXIT_SOME_VIDEOS_FAILED = 3


def named_paths(items: list[str], flag: str = "--metrics", name: str = "VARIANT") -> list[tuple[str, Path]]:
    """NAME=PATH items in the order given; a name may repeat (one file per seed)."""
    out = []
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise EcmaError(f"{flag} expects {name}=PATH, got {item!r}")
        out.append((key, Path(path)))
    return out


def read_json(path: Path, what: str) -> dict:
    """A JSON file the user named; missing or malformed is a one-line error naming it."""
    if not path.is_file():
        raise EcmaError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EcmaError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def grouped_metrics(items: list[str]) -> dict[str, list[dict]]:
    """{variant: [metrics dict per file]} from VARIANT=PATH items, variants in first-given order."""
    runs: dict[str, list[dict]] = {}
    for variant, path in named_paths(items):
        runs.setdefault(variant, []).append(read_json(path, f"metrics file of variant {variant!r}"))
    return runs


def settings(args, overrides: Optional[dict] = None):
    """The package config of a command, built and checked once: ``--settings`` JSON (what the workflow's rules
    pass), else ``--config`` (or the defaults), with ``overrides`` ({section: {key: value}}, e.g. a variant) and
    ``--runtime`` JSON put in."""
    from ecma.config import load_config, merge_runtime

    if getattr(args, "settings", None) is not None:
        if args.config is not None or getattr(args, "dataset", None) is not None:
            raise EcmaError("give --settings or --config/--dataset, not both")
        raw, source = json_option(args, "settings"), "--settings"
        if not isinstance(raw, dict):
            raise EcmaError(f"--settings: expected a mapping of sections, got {type(raw).__name__}")
    else:
        raw, source = {}, None
    runtime = json_option(args, "runtime")
    if runtime is not None:
        raw = merge_runtime(raw, runtime)
    return load_config(args.config if source is None else None, overrides, raw=raw, source=source)


def json_option(args, name: str):
    """The JSON of option ``--NAME`` (None where not given); invalid JSON is one line naming the option."""
    text = getattr(args, name, None)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise EcmaError(f"--{name} is not valid JSON ({e.msg} at column {e.colno})") from None


def cli_annotations(args, flags: dict[str, Optional[str]], classes=None):
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


def split_truth(args, classes=None):
    """(annotations, split name) of the options :func:`split_truth_options` adds."""
    flags = {"--split": args.split, "--eval-audio": args.eval_audio, "--eval-visual": args.eval_visual}
    return cli_annotations(args, flags, classes), (args.subset if args.annotations else "split")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (wrapped by subcommand), and an option's default after its help where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def annotation_options(p: argparse.ArgumentParser, *, split: bool = True) -> None:
    """UnAV-100's one JSON in place of LLP's csvs, and which of its subsets."""
    p.add_argument("--annotations", metavar="JSON",
                   help="UnAV-100's annotation JSON (instead of the LLP csv options): classes, splits and truth")
    if split:
        p.add_argument("--subset", choices=("train", "val", "test"), default="test",
                       help="with --annotations: the split to use")


def split_truth_options(p: argparse.ArgumentParser, split_help: str) -> None:
    """One split and its segment-level truth: LLP's three csvs, or UnAV-100's JSON and a subset."""
    p.add_argument("--split", help=split_help)
    p.add_argument("--eval-audio", help="segment-level audio truth csv")
    p.add_argument("--eval-visual", help="segment-level visual truth csv")
    annotation_options(p)


def subcommand(sub, name: str, help: str, description: str, example: str) -> argparse.ArgumentParser:
    """A subcommand with a wrapped description and an example that the help keeps on one line."""
    return sub.add_parser(
        name, help=help, description=textwrap.fill(description, 88),
        epilog="example:\n  " + example, formatter_class=HelpFormatter,
    )



def settings_options(p: argparse.ArgumentParser) -> None:
    """``--settings`` and ``--runtime`` JSON: how the workflow's rules hand a job its settings."""
    p.add_argument("--settings", metavar="JSON",
                   help="the settings as JSON sections, e.g. '{\"train\": {\"epochs\": 5}}' (instead of --config)")
    p.add_argument("--runtime", metavar="JSON",
                   help="runtime settings (device, threads, workers, batch sizes) as JSON sections, put over "
                        "--settings or --config, e.g. '{\"extract\": {\"workers\": 4}}'")
