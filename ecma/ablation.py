"""The ablation table: every variant side by side on segment and event level, as in the paper."""

from __future__ import annotations

from typing import Mapping

COLUMNS = (("audio", "A"), ("visual", "V"), ("audio_visual", "AV"), ("type_av", "Type@AV"), ("event_av", "Event@AV"))
DESCRIPTIONS = {
    "han": "HAN baseline (no teacher, no CMA)",
    "no_ema": "+ CMA, no EMA teacher",
    "no_cma": "+ EMA teacher pseudo masks, no CMA",
    "ecma": "E-CMA (teacher + CMA)",
}


def ablation_table(metrics: Mapping[str, dict]) -> tuple[str, dict]:
    """(markdown, json-able dict) for {variant: metrics.json content}."""
    header = "| variant | " + " | ".join(f"seg {c}" for _, c in COLUMNS) + " | " + " | ".join(f"evt {c}" for _, c in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(COLUMNS))]
    table = {}
    for variant, m in metrics.items():
        seg = [m["segment"][k] for k, _ in COLUMNS]
        evt = [m["event"][k] for k, _ in COLUMNS]
        lines.append(f"| {variant} | " + " | ".join(f"{x:.2f}" for x in seg + evt) + " |")
        table[variant] = {"segment": m["segment"], "event": m["event"], "description": DESCRIPTIONS.get(variant, "")}
    split = next(iter(metrics.values())).get("split", "") if metrics else ""
    md = f"# Ablation ({split})\n\nF1 in percent, benchmark protocol.\n\n" + "\n".join(lines) + "\n"
    return md, {"split": split, "variants": table}
