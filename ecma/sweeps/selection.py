"""What a sweep's trials gave on the validation split, and the trial it chooses.

Each trial's ``model.pt`` holds the validation metrics of its best epoch (``val_metrics``, the epoch chosen by
``train.select``, which a sweep sets to its own metric: :func:`ecma.sweeps.trials.trial_config`) and the settings
it was trained with (its stored config): the table and the choice are read from there, never from the config
file, and never from the test split. The chosen trial is the one of highest validation score; among trials of
equal score, the one of lowest index (the sampler's order: a grid's first combination, a Sobol' sequence's
earliest point), so that a choice never depends on the order files are read in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from ecma.errors import EcmaError
from ecma.evaluation.protocols import selection_score
from ecma.io import atomic_path

TIE_BREAK = "the lowest trial index (the sampler's order) among trials of equal validation score"
LEVELS = ("segment", "event")


@dataclass(frozen=True)
class TrialResult:
    """A trained trial: where it is, the settings it was trained with, its best epoch and validation scores."""

    index: int
    directory: str
    settings: dict[str, Any]
    variant: str
    best_epoch: int
    val_metrics: dict
    score: float  # selection_score(val_metrics, metric)


def read_trial(index: int, directory: str | Path, keys: Sequence[str], metric: str) -> TrialResult:
    """A trial's results from its ``model.pt``: the stored values of the varied settings ``keys`` (SECTION.KEY)
    and the best epoch's validation metrics, scored by ``metric``. A checkpoint whose epoch was chosen by
    another score than ``metric`` is refused: its epoch would not be the trial's best by the sweep's measure."""
    from ecma.models.checkpoint import read_checkpoint, stored_config

    path = Path(directory) / "model.pt"
    payload = read_checkpoint(path)
    cfg = stored_config(payload, path)
    if not isinstance(payload.get("val_metrics"), Mapping) or "epoch" not in payload:
        raise EcmaError(f"{path}: no validation metrics (not a model.pt written by ecma train)")
    if cfg.train.select != metric:
        raise EcmaError(f"{path}: its best epoch was chosen by validation {cfg.train.select}, not the sweep's "
                        f"metric {metric}")
    settings = {}
    for key in keys:
        section, _, name = key.partition(".")
        settings[key] = getattr(getattr(cfg, section), name)
    score = selection_score(payload["val_metrics"], metric)
    if math.isnan(score):
        raise EcmaError(f"{path}: validation {metric} is not a number")
    return TrialResult(index, str(directory), settings, cfg.train.variant, int(payload["epoch"]),
                       dict(payload["val_metrics"]), score)


def choose(results: Sequence[TrialResult]) -> TrialResult:
    """The trial of highest score; ties go to the lowest index (:data:`TIE_BREAK`)."""
    if not results:
        raise EcmaError("no trials to choose from")
    return min(results, key=lambda r: (-r.score, r.index))


def val_columns(metrics: Mapping) -> dict[str, float]:
    """val_<level>_<metric> -> value of every number in a validation metrics dict's segment and event blocks."""
    return {f"val_{level}_{key}": float(value) for level in LEVELS
            for key, value in (metrics.get(level) or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def trials_table(results: Sequence[TrialResult], keys: Sequence[str], metric: str) -> pd.DataFrame:
    """trials.csv: one row per trial in index order: trial, directory, each setting, best epoch, the score that
    chooses (``val_select``, named in ``selected_by``), chosen (true for one row), every validation metric."""
    chosen = choose(results)
    rows = []
    for r in sorted(results, key=lambda r: r.index):
        rows.append({"trial": r.index, **{k: r.settings[k] for k in keys}, "best_epoch": r.best_epoch,
                     "selected_by": metric, "val_select": r.score, "chosen": r is chosen,
                     **val_columns(r.val_metrics), "directory": r.directory})
    return pd.DataFrame(rows)


def best_record(name: str, dataset: str, metric: str, space: Mapping, results: Sequence[TrialResult]) -> dict:
    """best.yaml's content: the chosen settings, the trial they come from and how it was chosen."""
    chosen = choose(results)
    variants = sorted({r.variant for r in results})
    if len(variants) != 1:
        raise EcmaError(f"sweep {name}: its trials were trained as different variants ({', '.join(variants)})")
    return {
        "sweep": name, "dataset": dataset, "variant": variants[0],
        "metric": metric,
        "selected_on": "the validation split: each trial's best epoch (its model.pt), by the metric",
        "tie_break": TIE_BREAK,
        "trials": len(results),
        "trial": chosen.index, "directory": chosen.directory, "best_epoch": chosen.best_epoch,
        "val_select": chosen.score,
        "settings": dict(chosen.settings),
        "space": {k: v for k, v in space.items()},
    }


def write_best(path: str | Path, record: Mapping) -> None:
    header = ("# The settings a sweep chose (ecma sweep-select), on the validation split only: the trial of highest\n"
              f"# validation {record['metric']}; ties: {TIE_BREAK}.\n"
              "# The final runs train `settings` once per seed and are the only ones scored on the test split.\n")
    with atomic_path(path) as tmp:
        tmp.write_text(header + yaml.safe_dump(dict(record), sort_keys=False, width=110))


def select_trials(name: str, dataset: str, metric: str, space: Mapping, trials: Sequence[tuple[int, str]]
                  ) -> tuple[pd.DataFrame, dict]:
    """(trials.csv's table, best.yaml's record) of trials given as (index, directory) pairs."""
    keys = list(space)
    indices = [i for i, _ in trials]
    if len(set(indices)) != len(indices):
        raise EcmaError("a trial index is given twice")
    results = [read_trial(i, d, keys, metric) for i, d in trials]
    return trials_table(results, keys, metric), best_record(name, dataset, metric, space, results)
