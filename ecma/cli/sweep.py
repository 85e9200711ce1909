"""`ecma sweep`, `sweep-select` and `sweep-page`: a sweep's trials listed, the trial chosen on validation, its page
(workflow/rules/sweep.smk)."""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

import yaml

from ecma.cli.common import json_option, named_paths, read_json, subcommand
from ecma.config.sections import Selection
from ecma.errors import EcmaError


def sweep_summary(wcfg, name: str, trials) -> str:
    """One paragraph: what the sweep trains, how it chooses, where its results go."""
    from ecma.sweeps.trials import final_seeds, sweep_metric

    sweep = wcfg.sweep(name)
    sampler = "grid" if sweep.sampler == "grid" else f"{sweep.sampler} (seed {sweep.seed}, {sweep.trials} points)"
    return (f"sweep {name}: dataset {sweep.dataset}, variant {sweep.variant}, {sampler}: {len(trials)} trial(s), "
            f"chosen by validation {sweep_metric(wcfg, name)}; the chosen settings trained with seed(s) "
            f"{', '.join(map(str, final_seeds(wcfg, name)))} and scored on the test split\n"
            f"  results/{sweep.dataset}/sweeps/{name}/: trials/<trial>/ (one training job each), trials.csv, "
            "best.yaml, final/seed-<N>/, metrics.json, sweep.html")


def trials_text(trials) -> str:
    """The trials as a table: index, each setting, directory."""
    import pandas as pd

    from ecma.sweeps.trials import value_text

    frame = pd.DataFrame([{"trial": t.index, **{k: value_text(v) for k, v in t.settings.items()},
                           "directory": f"trials/{t.name}"} for t in trials])
    return frame.to_string(index=False, justify="left")


def cmd_sweep(args) -> int:
    from ecma.config import load_workflow_config
    from ecma.sweeps.trials import sweep_trials

    wcfg = load_workflow_config(args.config)
    names = [args.name] if args.name else list(wcfg.sweeps)
    if not names:
        raise EcmaError(f"{args.config}: no sweeps configured (sweeps: in the config)")
    for i, name in enumerate(names):
        trials = sweep_trials(wcfg, name, str(args.config))
        print(("\n" if i else "") + sweep_summary(wcfg, name, trials))
        if args.list:
            print(trials_text(trials))
    return 0


def cmd_sweep_select(args) -> int:
    from ecma.io import atomic_path
    from ecma.sweeps.selection import select_trials, write_best

    space = json_option(args, "space")
    if not isinstance(space, dict) or not space:
        raise EcmaError("--space: expected the sweep's settings as a JSON mapping (SECTION.KEY -> values or range)")
    trials = []
    for index, directory in named_paths(args.trials, flag="--trials", name="INDEX"):
        try:
            trials.append((int(index), str(directory)))
        except ValueError:
            raise EcmaError(f"--trials expects INDEX=DIR with a whole-number INDEX, got {index!r}") from None
    table, best = select_trials(args.name, args.dataset, args.metric, space, trials)
    best["sampler"] = args.sampler
    with atomic_path(args.output_table) as tmp:
        table.to_csv(tmp, index=False)
    write_best(args.output_best, best)
    print(f"{args.output_best}: trial {best['trial']} of {len(trials)}, validation {args.metric} "
          f"{best['val_select']:.2f}", file=sys.stderr)
    return 0


def cmd_sweep_page(args) -> int:
    import pandas as pd

    from ecma.io import atomic_path
    from ecma.report.sweep import sweep_page

    table_path, best_path = Path(args.table), Path(args.best)
    if not table_path.is_file():
        raise EcmaError(f"{table_path}: trials table not found")
    if not best_path.is_file():
        raise EcmaError(f"{best_path}: the sweep's choice (best.yaml) not found")
    try:
        table = pd.read_csv(table_path)
    except (ValueError, pd.errors.ParserError) as e:
        raise EcmaError(f"{table_path}: not a trials table ({str(e).splitlines()[0]})") from None
    try:
        best = yaml.safe_load(best_path.read_text())
    except yaml.YAMLError as e:
        raise EcmaError(f"{best_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(best, dict):
        raise EcmaError(f"{best_path}: not a sweep's choice (ecma sweep-select writes it)")
    final = read_json(Path(args.metrics), "metrics of the final runs") if args.metrics else None
    with atomic_path(args.output) as tmp:
        tmp.write_text(sweep_page(table, best, final))
    return 0


def add_sweep(sub) -> argparse.ArgumentParser:
    s = subcommand(
        sub, "sweep", "what a sweep of the workflow's config trains: its trials, before submitting them",
        "Check a sweep of the workflow config (sweeps: in config.yaml) as the workflow does, and print what it "
        "trains: its dataset, variant, sampler, the metric that chooses and the final seeds; with --list, every "
        "trial's settings and directory, in the sampler's order (the trial index breaks ties).",
        example="ecma sweep --config config.yaml --name demo_sweep --list",
    )
    s.add_argument("--config", required=True, help="the workflow's config.yaml")
    s.add_argument("--name", help="the sweep (default: every sweep of the config)")
    s.add_argument("--list", action="store_true", help="print every trial")
    s.set_defaults(func=cmd_sweep)
    return s


def add_sweep_select(sub) -> argparse.ArgumentParser:
    s = subcommand(
        sub, "sweep-select", "a sweep's trials table and its choice, from the trials' validation scores",
        "Read each trial's model.pt (its settings and the validation metrics of its best epoch), write the "
        "trials table (CSV) and best.yaml: the trial of highest validation score, ties broken by the lowest "
        "trial index. Nothing is read of the test split.",
        example="ecma sweep-select --name demo_sweep --dataset demo --metric type_av --space '{\"loss.w_cma\": "
        "[0.1, 1]}' --trials=0=trials/a --trials=1=trials/b --output-table trials.csv --output-best best.yaml",
    )
    s.add_argument("--name", required=True, help="the sweep's name (recorded)")
    s.add_argument("--dataset", required=True, help="the sweep's dataset (recorded)")
    s.add_argument("--metric", required=True, choices=typing.get_args(Selection),
                   help="the validation score that chooses (each trial's train.select)")
    s.add_argument("--space", required=True, metavar="JSON", help="the sweep's settings: SECTION.KEY -> list or range")
    s.add_argument("--sampler", default="", help="how the trials were drawn (recorded)")
    s.add_argument("--trials", nargs="*", action="extend", required=True, metavar="INDEX=DIR",
                   help="each trial's index in the sampler's order and its folder (holding model.pt)")
    s.add_argument("--output-table", required=True, help="trials.csv")
    s.add_argument("--output-best", required=True, help="best.yaml")
    s.set_defaults(func=cmd_sweep_select)
    return s


def add_sweep_page(sub) -> argparse.ArgumentParser:
    s = subcommand(
        sub, "sweep-page", "HTML: a sweep's settings against the validation score, the choice, its test scores",
        "One self-contained page: each varied setting against the validation score, all settings as parallel "
        "coordinates, the chosen trial marked, every trial's row, and the chosen settings' test scores (mean ± "
        "std over the final seeds).",
        example="ecma sweep-page --table trials.csv --best best.yaml --metrics metrics.json --output sweep.html",
    )
    s.add_argument("--table", required=True, help="trials.csv (ecma sweep-select)")
    s.add_argument("--best", required=True, help="best.yaml (ecma sweep-select)")
    s.add_argument("--metrics", help="the final runs' test metrics (ecma summarize)")
    s.add_argument("--output", required=True, help="the page (.html)")
    s.set_defaults(func=cmd_sweep_page)
    return s
