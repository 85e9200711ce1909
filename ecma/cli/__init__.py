"""The ``ecma`` command: a thin layer over the library; every workflow rule calls one of its subcommands.

One module per stage of the workflow, each holding its subcommands' parsers beside their handlers, so that a
rule's ``shell: ecma train ...`` (workflow/rules/train.smk) leads to ``ecma/cli/train.py``: ``data`` (demo),
``extract`` (extract, fetch-weights), ``import_`` (import), ``train`` (train, import-checkpoint), ``evaluate``
(predict, evaluate), ``report`` (ablation, summarize, baseline, per-class-chart, timelines, run-summary),
``parse`` (parse), ``sweep`` (sweep, sweep-select, sweep-page); ``common`` holds what they share.

Errors in the user's input end the command with one line, ``ecma <command>: error: <message>``, and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from ecma import __version__
from ecma.cli import data, evaluate, extract, import_, parse, report, sweep, train
from ecma.cli.common import EXIT_INPUT_ERROR
from ecma.errors import EcmaError

# The subcommands in the order `ecma --help` lists them.
SUBCOMMANDS = (
    data.add_demo, extract.add_extract, extract.add_fetch_weights, import_.add_import, train.add_train,
    train.add_import_checkpoint, evaluate.add_predict, evaluate.add_evaluate, report.add_ablation, parse.add_parse,
    report.add_summarize, report.add_baseline, report.add_per_class_chart, report.add_timelines,
    report.add_run_summary, sweep.add_sweep, sweep.add_sweep_select, sweep.add_sweep_page,
)


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
    for add in SUBCOMMANDS:
        add(sub).add_argument("--quiet", action="store_true", help="no progress bars")
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
