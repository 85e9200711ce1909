"""The ablation table of one metrics file per variant; kept for callers of the single-seed API.

The table over seeds (mean ± std, HTML, baseline row) is :mod:`ecma.report.ablation`.
"""

from __future__ import annotations

from typing import Mapping

from ecma.report.ablation import DESCRIPTIONS, ablation_outputs  # noqa: F401  (re-exported)


def ablation_table(metrics: Mapping[str, dict]) -> tuple[str, dict]:
    """(markdown, json-able dict) for {variant: metrics.json content}, one seed each."""
    md, _, table = ablation_outputs({variant: [m] for variant, m in metrics.items()})
    return md, table
