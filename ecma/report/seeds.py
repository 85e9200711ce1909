"""Metrics over training seeds: the mean in metrics.json's own fields, the spread beside it.

The spread is the sample standard deviation over seeds (``ddof=1``): the seeds are a sample of the
training runs one could have made. With a single seed it is 0 by convention (nothing to spread).
"""

from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ecma.errors import EcmaError
from ecma.evaluation.metrics import MODALITIES

LEVELS = ("segment", "event")
DDOF = 1
AV_ONLY_KEYS = ("audio_visual",)  # what an AV-only protocol (UnAV-100's unav100-av) scores


def metric_keys(m: Mapping) -> tuple[str, ...]:
    """The metrics a metrics dict carries per level: the benchmark's five, or AV alone (AV-only datasets)."""
    return AV_ONLY_KEYS if isinstance(m, Mapping) and m.get("protocol") == "unav100-av" else MODALITIES


def check_metrics(m: Mapping, source: str) -> None:
    """A metrics dict must have the segment and event blocks with every modality, as numbers."""
    for level in LEVELS:
        block = m.get(level) if isinstance(m, Mapping) else None
        if not isinstance(block, Mapping):
            raise EcmaError(f"{source}: no {level!r} block (not a metrics.json of `ecma evaluate`)")
        for key in metric_keys(m):
            if not isinstance(block.get(key), (int, float)) or isinstance(block.get(key), bool):
                raise EcmaError(f"{source}: {level}.{key} is missing or not a number")


def seed_frame(per_seed: Mapping[str, Mapping]) -> pd.DataFrame:
    """{seed: metrics} -> long frame with columns seed, level, metric, value (one row per number)."""
    rows = [
        (str(seed), level, key, float(m[level][key]))
        for seed, m in per_seed.items()
        for level in LEVELS
        for key in metric_keys(m)
    ]
    return pd.DataFrame(rows, columns=["seed", "level", "metric", "value"])


def mean_std(values: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean, sample std (ddof=1; 0 for one seed) and count of ``value`` per group, groups in first-seen order."""
    grouped = values.groupby(list(by), sort=False)["value"]
    out = grouped.agg(mean="mean", std=lambda v: v.std(ddof=DDOF) if len(v) > 1 else 0.0, n="count")
    return out


def _blocks(stats: pd.DataFrame, column: str) -> dict:
    """{level: {metric: value}} from a frame indexed by (level, metric)."""
    keys = list(dict.fromkeys(stats.index.get_level_values(-1)))
    return {level: {key: float(stats.loc[(level, key), column]) for key in keys} for level in LEVELS}


def _mean_per_class(per_seed: Sequence[Mapping]) -> dict | None:
    """per_class averaged over seeds; a class undefined (None) in some seeds is the mean of the others."""
    blocks = [m.get("per_class") for m in per_seed]
    if any(not isinstance(b, Mapping) for b in blocks):
        return None
    out: dict = {}
    for level, modalities in blocks[0].items():
        out[level] = {}
        for modality, classes in modalities.items():
            out[level][modality] = {}
            for name in classes:
                values = [b[level][modality].get(name) for b in blocks]
                values = [v for v in values if v is not None]
                out[level][modality][name] = float(np.mean(values)) if values else None
    return out


def summarize_seeds(per_seed: Mapping[str, Mapping]) -> dict:
    """One metrics.json for a variant trained with several seeds.

    The result keeps the schema of ``ecma evaluate``'s metrics.json, with the mean over seeds in
    ``segment``/``event`` (and ``per_class``); beside it ``std`` ({segment, event}: sample std, ddof=1),
    ``seeds`` ({seed: {segment, event}}) and ``num_seeds``. Split, thresholds and provenance are the first
    seed's; the seeds must have been scored on the same videos.
    """
    if not per_seed:
        raise EcmaError("no seeds to summarise")
    for seed, m in per_seed.items():
        check_metrics(m, f"seed {seed}")
    first_seed, first = next(iter(per_seed.items()))
    for seed, m in per_seed.items():
        for key in ("num_videos", "split", "protocol"):
            if m.get(key) != first.get(key):
                raise EcmaError(
                    f"seed {seed}: {key} is {m.get(key)!r} but seed {first_seed} has {first.get(key)!r} "
                    "(seeds must be scored on the same split)"
                )
    stats = mean_std(seed_frame(per_seed), ["level", "metric"])
    out = copy.deepcopy(dict(first))
    out.update(_blocks(stats, "mean"))
    per_class = _mean_per_class(list(per_seed.values()))
    if per_class is not None:
        out["per_class"] = per_class
    out["std"] = _blocks(stats, "std")
    out["seeds"] = {str(seed): {level: dict(m[level]) for level in LEVELS} for seed, m in per_seed.items()}
    if "map" in first:  # UnAV-100's detection mAP: its mean over seeds (the spread stays per seed in their files)
        out["map"]["average"] = float(np.mean([m["map"]["average"] for m in per_seed.values()]))
        out["map"]["average_0.5_0.9"] = float(np.mean([m["map"]["average_0.5_0.9"] for m in per_seed.values()]))
        out["map"]["map"] = {t: float(np.mean([m["map"]["map"][t] for m in per_seed.values()])) for t in first["map"]["map"]}
    out["num_seeds"] = len(per_seed)
    return out


def expand_seeds(m: Mapping) -> dict[str, dict]:
    """The per-seed {segment, event} of a metrics dict: its ``seeds`` block if it has one, else itself."""
    if isinstance(m.get("seeds"), Mapping) and m["seeds"]:
        return {str(seed): dict(block) for seed, block in m["seeds"].items()}
    return {"0": {level: m[level] for level in LEVELS}}
