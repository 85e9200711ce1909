"""Published figures to show beside our own: the E-CMANet paper's (arXiv 2509.14097) Tables 1-3, as printed.

Source: the paper's tables, transcribed in ``../shared/paper/e-cmanet-tables.md`` (F1 in percent; LLP: test
split, benchmark protocol; UnAV-100: weakly labelled training, AV F1 only). Nothing here was computed by
this project: these are the targets a run on the real data is compared with, and every place that shows
them says that they are the paper's.

- ``TABLE3_LLP``: the ablation on the CoLeaF backbone on LLP, one row per variant in Table 3's order
  (CoLeaF-dagger is CoLeaF retrained on the same CLIP/CLAP features, not Table 1's CoLeaF). The LLP ablation
  table shows these rows in a table of their own (:mod:`ecma.report.ablation`).
- ``TABLE1_LLP_ECMANET``: E-CMANet's row of Table 1 (LLP, against published methods); the same figures as
  Table 3's ``ecma`` row. README quotes it as the target of ``results/llp*/metrics.json``.
- ``TABLE2_UNAV100_AV``: Table 2, UnAV-100's segment- and event-level AV F1 of each method. README quotes
  E-CMANet's row as the target of ``results/unav100/metrics.json``.
"""

from __future__ import annotations

from ecma import registry

SOURCE = "E-CMANet, arXiv 2509.14097, Table 3 (LLP test split, CoLeaF backbone on CLIP/CLAP features), as printed"
TABLE1_SOURCE = "E-CMANet, arXiv 2509.14097, Table 1 (LLP test split, against published methods), as printed"
TABLE2_SOURCE = "E-CMANet, arXiv 2509.14097, Table 2 (UnAV-100, weakly labelled, AV F1), as printed"
LEVELS = ("segment", "event")
METRICS = ("audio", "visual", "audio_visual", "type_av", "event_av")


def _row(segment: tuple[float, ...], event: tuple[float, ...]) -> dict[str, dict[str, float]]:
    """A printed row, A V AV Type@AV Event@AV at each level, as {level: {metric: F1}}."""
    return {"segment": dict(zip(METRICS, segment)), "event": dict(zip(METRICS, event))}


# variant -> {"segment": {metric: F1}, "event": {...}}, Table 3's rows in its order
TABLE3_LLP: dict[str, dict[str, dict[str, float]]] = {
    "coleaf": _row((64.2, 67.4, 59.9, 63.8, 63.3), (53.2, 64.1, 52.4, 56.6, 52.7)),  # CoLeaF-dagger
    "no_cma": _row((65.4, 68.2, 60.4, 64.7, 64.4), (54.4, 64.7, 52.3, 57.2, 53.8)),  # w/o CMA
    "no_ema": _row((65.9, 68.8, 61.0, 65.2, 64.8), (54.5, 65.5, 52.9, 57.7, 54.0)),  # w/o EMA
    "ecma": _row((66.1, 69.9, 61.7, 65.9, 65.4), (54.5, 66.6, 53.5, 58.2, 54.3)),  # E-CMANet
}
assert tuple(TABLE3_LLP) == tuple(v.name for v in registry.backbone_spec("coleaf").variants)
PAPER_NAMES = {"coleaf": "CoLeaF†", "no_cma": "w/o CMA", "no_ema": "w/o EMA", "ecma": "E-CMANet"}

TABLE1_LLP_ECMANET = _row((66.1, 69.9, 61.7, 65.9, 65.4), (54.5, 66.6, 53.5, 58.2, 54.3))

# method -> {"segment": AV F1, "event": AV F1}, Table 2's rows in its order
TABLE2_UNAV100_AV: dict[str, dict[str, float]] = {
    "HAN": {"segment": 35.0, "event": 41.4},
    "MA": {"segment": 37.9, "event": 44.8},
    "JoMoLD": {"segment": 36.4, "event": 41.2},
    "CMPAE": {"segment": 39.7, "event": 43.8},
    "CoLeaF": {"segment": 41.5, "event": 47.8},
    "E-CMANet": {"segment": 41.8, "event": 47.4},
}


def paper_rows(dataset: str, variants: list[str]) -> dict[str, dict]:
    """The paper's Table 3 row of each of ``variants`` that has one, in Table 3's order; only LLP datasets
    (names beginning ``llp``: llp, llp_valor, llp_han) have the paper's figures, others get {}."""
    if not dataset.startswith("llp"):
        return {}
    return {v: TABLE3_LLP[v] for v in TABLE3_LLP if v in variants}
