"""The per-class F1 chart: for each class, audio and visual segment-level F1 of one variant.

The numbers are metrics.json's ``per_class.segment.audio`` / ``.visual`` (written by
:func:`ecma.evaluation.metrics.score`: the F1 of the class's TP/FP/FN summed over the split's videos; a
diagnostic, not a benchmark number).
Classes that are neither true nor predicted in a modality have no F1 there (None) and no bar.
"""

from __future__ import annotations

import os
from typing import Mapping

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ecma.errors import EcmaError  # noqa: E402
from ecma.io import atomic_path  # noqa: E402

AUDIO_COLOUR = "#d1495b"
VISUAL_COLOUR = "#00798c"


def best_variant(metrics: Mapping[str, Mapping]) -> str:
    """The variant with the highest (mean) test segment Type@AV; ties go to the first given."""
    if not metrics:
        raise EcmaError("no variants to choose the best from")
    return max(metrics, key=lambda v: metrics[v]["segment"]["type_av"])


def segment_class_f1(m: Mapping, source: str = "metrics") -> tuple[list[str], np.ndarray, np.ndarray]:
    """(classes with an F1 in audio or visual, audio F1, visual F1) with NaN where a modality has none."""
    try:
        audio = m["per_class"]["segment"]["audio"]
        visual = m["per_class"]["segment"]["visual"]
    except (KeyError, TypeError):
        raise EcmaError(f"{source}: no per_class.segment.audio/visual block (not a metrics.json of `ecma evaluate`)") from None
    classes = [c for c in audio if audio.get(c) is not None or visual.get(c) is not None]
    as_array = lambda d: np.array([np.nan if d.get(c) is None else float(d[c]) for c in classes])  # noqa: E731
    return classes, as_array(audio), as_array(visual)


def plot_per_class(m: Mapping, path: str | os.PathLike, title: str = "", source: str = "metrics") -> None:
    """Horizontal grouped bars, one pair per class, classes in the order of the metrics (LLP's)."""
    classes, audio, visual = segment_class_f1(m, source)
    if not classes:
        raise EcmaError(f"{source}: no class has a segment-level F1 (nothing true, nothing predicted)")
    y = np.arange(len(classes))
    height = 0.38
    fig, ax = plt.subplots(figsize=(9.5, 1.2 + 0.42 * len(classes)))
    for values, offset, colour, label in ((audio, -height / 2, AUDIO_COLOUR, "audio"), (visual, height / 2, VISUAL_COLOUR, "visual")):
        shown = np.nan_to_num(values)
        ax.barh(y + offset, shown, height=height, color=colour, label=label)
        for yi, v in zip(y + offset, values):
            text = "n/a" if np.isnan(v) else f"{v:.1f}"
            ax.text((0 if np.isnan(v) else v) + 1, yi, text, va="center", fontsize=8, color="#3e4c59")
    ax.set_yticks(y, [c.replace("_", " ") for c in classes])
    ax.invert_yaxis()  # first class on top
    ax.set_xlim(0, 108)
    ax.set_xlabel("segment-level F1 (%), summed over the split's videos")
    ax.grid(axis="x", color="#e4e7eb")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper left", frameon=False, bbox_to_anchor=(1.0, 1.0))  # beside the bars, clear of the title
    if title:
        ax.set_title(title, loc="left", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
