"""Published figures to show beside our own: Table 3 of the E-CMANet paper (arXiv 2509.14097), the ablation
on the CoLeaF backbone on LLP's test split, one row per variant in Table 3's order.

Each row holds the paper's segment- and event-level F1s (audio, visual, audio_visual, type_av, event_av, in
percent). A row whose figures could not be read from the paper is None and is shown as missing, never
guessed. Status: the search tool returned only the paper's abstract (arxiv.org/html/2509.14097v1,
research.pwnedby.me/papers/2509.14097v1), not its tables, and the two third-party reviews of the paper in the
code index transcribe its Table 1 but not Table 3's rows (docs/method.md quotes the former, for orientation),
so every row is None for now; fill them from the paper's Table 3 (values as printed) and the ablation shows
them marked as the paper's.
"""

from __future__ import annotations

from typing import Optional

from ecma import registry

SOURCE = "E-CMANet, arXiv 2509.14097, Table 3 (LLP test split, CoLeaF backbone on CLIP/CLAP features)"
LEVELS = ("segment", "event")
METRICS = ("audio", "visual", "audio_visual", "type_av", "event_av")

# variant -> {"segment": {metric: F1}, "event": {...}} as printed in Table 3, or None where not yet read.
TABLE3_LLP: dict[str, Optional[dict[str, dict[str, float]]]] = {
    "coleaf": None,  # Table 3: CoLeaF-dagger
    "no_cma": None,  # Table 3: w/o CMA
    "no_ema": None,  # Table 3: w/o EMA
    "ecma": None,  # Table 3: E-CMANet
}
assert tuple(TABLE3_LLP) == tuple(v.name for v in registry.backbone_spec("coleaf").variants)


def paper_rows(dataset: str, variants: list[str]) -> dict[str, Optional[dict]]:
    """The paper's Table 3 row for each of ``variants`` (None where the paper has none, or it is not yet
    recorded); only LLP datasets (llp, llp_valor) have the paper's figures, others get {}."""
    if not dataset.startswith("llp"):
        return {}
    return {v: TABLE3_LLP.get(v) for v in variants if v in TABLE3_LLP}
