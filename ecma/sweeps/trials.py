"""The trials of a sweep: the points its sampler draws, checked before any job, and where each one trains.

A sweep (``sweeps.NAME`` in ``config.yaml``, :class:`ecma.config.workflow.SweepConfig`) varies settings, each a
list of values or a range. Its sampler gives the trials, in order:

- ``grid``: every combination, the first setting varying slowest (a range gives ``num`` points, evenly spread
  on its scale, both ends included);
- ``sobol``: ``trials`` points of a scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``, its scrambling drawn
  from the sweep's ``seed``): the first n points of a seed are always the same, so more trials give a superset.
  A point's coordinate u in [0, 1) picks a list's value ``values[floor(u * len)]``, or a range's
  ``low + u (high - low)`` (log scale: the same on log(low) .. log(high)); whole numbers are drawn evenly from
  the integers in the range.

Drawn floats keep 4 significant digits (so that directory names stay readable: ``loss.w_cma=0.0316``), held
inside their range. Trials that repeat an earlier one (a sobol sweep over short lists) are trained once, under
the first index. Every value a sampler can give, a range's ends and every listed value included, is checked by
the config's own code (:func:`ecma.config.typed.build_section`: the setting's type and bounds), and each
trial's settings merged with its dataset's as a training job gets them (:meth:`WorkflowConfig.for_dataset`),
so that a bad one stops the workflow before any job with one line naming the sweep, the setting and the value.
"""

from __future__ import annotations

import itertools
import math
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ecma.config import WorkflowConfig, section_classes
from ecma.config.typed import build_section
from ecma.config.workflow import SweepConfig, SweepRange, check_merged, integer_setting, sweep_range, swept_field
from ecma.errors import EcmaError

SIGNIFICANT_DIGITS = 4
MAX_NAME_BYTES = 255  # a directory name on the usual file systems


@dataclass(frozen=True)
class Trial:
    """One point of a sweep: its index in the sampler's order and its settings, SECTION.KEY -> value."""

    index: int
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        """The trial's directory, named by its settings: ``loss.w_cma=0.1,loss.cma_tau_a=0.45``."""
        return trial_name(self.settings)


def value_text(value: Any) -> str:
    """A value as the trial's name writes it: YAML's words for booleans and null, the shortest float that
    reads back the same (repr), strings with anything but letters, digits and ``._-~`` %-escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return urllib.parse.quote(str(value), safe="._-~")


def trial_name(settings: dict[str, Any]) -> str:
    return ",".join(f"{key}={value_text(value)}" for key, value in settings.items())


def nested(settings: dict[str, Any]) -> dict[str, dict]:
    """SECTION.KEY -> value as {section: {key: value}}, the shape of config sections."""
    out: dict[str, dict] = {}
    for key, value in settings.items():
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name] = value
    return out


def _rounded(value: float, low: float, high: float) -> float:
    """``value`` to SIGNIFICANT_DIGITS significant digits, held inside [low, high]."""
    return min(max(float(f"{value:.{SIGNIFICANT_DIGITS}g}"), low), high)


def _whole_numbers(where: str, rng: SweepRange) -> tuple[int, int]:
    low, high = math.ceil(rng.low), math.floor(rng.high)
    if low > high:
        raise EcmaError(f"{where}: no whole number between {rng.low:g} and {rng.high:g}")
    return low, high


def draw(where: str, rng: SweepRange, integer: bool, u: float) -> int | float:
    """A range's value at the unit coordinate ``u`` in [0, 1)."""
    if integer:
        low, high = _whole_numbers(where, rng)
        if rng.scale == "log":  # evenly on log(low) .. log(high + 1), floored: each integer gets its log-width
            value = math.floor(math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low))))
        else:
            value = low + math.floor(u * (high - low + 1))
        return min(max(value, low), high)
    if rng.scale == "log":
        value = math.exp(math.log(rng.low) + u * (math.log(rng.high) - math.log(rng.low)))
    else:
        value = rng.low + u * (rng.high - rng.low)
    return _rounded(value, rng.low, rng.high)


def grid_points(where: str, rng: SweepRange, integer: bool) -> list[int | float]:
    """A range's ``num`` grid points, both ends included, evenly on its scale (whole numbers: rounded, each once)."""
    spread = np.geomspace if rng.scale == "log" else np.linspace
    if integer:
        low, high = _whole_numbers(where, rng)
        return list(dict.fromkeys(int(round(v)) for v in spread(low, high, rng.num)))
    return list(dict.fromkeys(_rounded(float(v), rng.low, rng.high) for v in spread(rng.low, rng.high, rng.num)))


def sobol_points(n: int, dims: int, seed: int) -> np.ndarray:
    """The first ``n`` points of the scrambled Sobol' sequence of ``seed`` in [0, 1)^dims (a prefix of any longer
    draw of the same seed). Drawn as 2^m points, m the smallest with 2^m >= n, the size whose balance scipy
    guarantees, then cut to n."""
    from scipy.stats import qmc  # imported only when a sobol sweep is drawn (scipy.stats takes ~1 s to import)

    m = max(0, math.ceil(math.log2(n)))
    return qmc.Sobol(dims, scramble=True, rng=seed).random_base2(m)[:n]


def _spaces(source: str, name: str, sweep: SweepConfig) -> list[tuple[str, list | SweepRange, bool]]:
    """(key, values or range, whole numbers?) per varied setting, in the sweep's order."""
    out = []
    for key, spec in sweep.settings.items():
        section, f = swept_field(source, name, key)
        if isinstance(spec, dict):
            rng = sweep_range(source, name, key, spec, sweep.sampler)
            integer = integer_setting(section_classes()[section], f.name) if rng.integer is None else rng.integer
            out.append((key, rng, integer))
        else:
            out.append((key, list(spec), False))
    return out


def sample(source: str, name: str, sweep: SweepConfig) -> list[dict[str, Any]]:
    """The sampler's points in order (repeats included): SECTION.KEY -> value each."""
    spaces = _spaces(source, name, sweep)
    where = {key: f"{source}: sweeps.{name}.settings.{key}" for key, _, _ in spaces}
    if sweep.sampler == "grid":
        axes = [space if isinstance(space, list) else grid_points(where[key], space, integer)
                for key, space, integer in spaces]
        return [dict(zip(where, combination)) for combination in itertools.product(*axes)]
    points = sobol_points(sweep.trials, len(spaces), sweep.seed)
    out = []
    for row in points:
        point = {}
        for (key, space, integer), u in zip(spaces, row):
            if isinstance(space, list):
                point[key] = space[min(int(u * len(space)), len(space) - 1)]
            else:
                point[key] = draw(where[key], space, integer, float(u))
        out.append(point)
    return out


def possible_values(source: str, name: str, sweep: SweepConfig) -> dict[str, list]:
    """Per setting, the values the sampler could give beyond those it gave: every listed value and a range's
    ends (more trials may come close to them)."""
    out = {}
    for key, space, integer in _spaces(source, name, sweep):
        if isinstance(space, list):
            out[key] = space
        elif integer:
            out[key] = list(_whole_numbers(f"{source}: sweeps.{name}.settings.{key}", space))
        else:
            out[key] = [space.low, space.high]
    return out


def check_value(name: str, key: str, value: Any) -> None:
    """One value of one setting, through the config's own checks (type, bounds, registered names)."""
    section, _, field_name = key.partition(".")
    build_section(section_classes()[section], f"sweeps.{name}.settings.{section}", {field_name: value})


def sweep_metric(wcfg: WorkflowConfig, name: str) -> str:
    """The validation score that chooses the trial: the sweep's ``metric``, else its dataset's ``train.select``."""
    sweep = wcfg.sweep(name)
    return sweep.metric or wcfg.for_dataset(sweep.dataset, sweep.variant).train.select


def final_seeds(wcfg: WorkflowConfig, name: str) -> list[int]:
    """The seeds the chosen settings are trained with: the sweep's ``seeds``, else its dataset's ``train.seeds``."""
    sweep = wcfg.sweep(name)
    return list(sweep.seeds or wcfg.for_dataset(sweep.dataset, sweep.variant).train.seeds)


def trial_config(wcfg: WorkflowConfig, name: str, settings: dict[str, Any], seed: int | None = None):
    """The package config of one training job of the sweep: its dataset's settings, the trial's over them, the
    sweep's variant, ``train.select`` set to the sweep's metric (each trial's best epoch is chosen by the score
    that compares the trials), and ``seed`` (None: the dataset's ``train.seed``)."""
    sweep = wcfg.sweep(name)
    layered = nested(settings)
    layered.setdefault("train", {})["select"] = sweep_metric(wcfg, name)
    return wcfg.for_dataset(sweep.dataset, sweep.variant, seed, settings=layered)


def sweep_trials(wcfg: WorkflowConfig, name: str, source: str = "config") -> list[Trial]:
    """The distinct trials of sweep ``name`` in the sampler's order, every value checked; a bad one is an
    EcmaError naming the sweep, the setting and the value."""
    sweep = wcfg.sweep(name)
    for key, values in possible_values(source, name, sweep).items():
        for value in values:
            check_value(name, key, value)
    trials: dict[str, Trial] = {}
    for index, settings in enumerate(sample(source, name, sweep)):
        trial = Trial(index, settings)
        if trial.name in trials:
            continue  # a repeat of an earlier trial: trained once
        for key, value in settings.items():
            check_value(name, key, value)
        if len(trial.name.encode()) > MAX_NAME_BYTES:
            raise EcmaError(f"{source}: sweeps.{name}: trial {index}'s directory name would be "
                            f"{len(trial.name.encode())} bytes ({trial.name[:60]}...; at most {MAX_NAME_BYTES}): "
                            "vary fewer settings")
        try:
            merged = trial_config(wcfg, name, settings)
            check_merged(source, sweep.dataset, wcfg.dataset(sweep.dataset), merged)
        except EcmaError as e:
            raise EcmaError(f"{source}: sweeps.{name}: trial {index} ({trial.name}): "
                            f"{str(e).removeprefix(f'{source}: ')}") from None
        trials[trial.name] = trial
    return list(trials.values())


def chosen_settings(wcfg: WorkflowConfig, name: str, path: str | Path) -> dict[str, Any]:
    """The settings sweep ``name`` chose, from its best.yaml (``ecma sweep-select``): the final runs' settings.
    A file of another sweep, or one whose settings are not the sweep's (the config changed since), is an error."""
    path = Path(path)
    try:
        record = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise EcmaError(f"{path}: cannot read the sweep's choice ({str(e).splitlines()[0]})") from None
    settings = record.get("settings") if isinstance(record, dict) else None
    if not isinstance(settings, dict) or record.get("sweep") != name:
        raise EcmaError(f"{path}: not the choice of sweep {name} (ecma sweep-select writes it)")
    if list(settings) != list(wcfg.sweep(name).settings):
        raise EcmaError(f"{path}: chose {', '.join(settings)}, but sweep {name} varies "
                        f"{', '.join(wcfg.sweep(name).settings)}: run the sweep again")
    for key, value in settings.items():
        check_value(name, key, value)
    return settings
