"""``NAME.png``: the page's timeline as a static picture (reports, papers): same lanes, colours and bars."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PatchCollection, PolyCollection  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

from ecma.io import atomic_path  # noqa: E402
from ecma.parse.page import COLOURS, LABELS, shown_modalities, tick_step, timeline_span  # noqa: E402
from ecma.parse.record import lane_probabilities, lanes, missing_stream_notes  # noqa: E402

INK, MUTED, LINE, WARN = "#1d2330", "#667085", "#e4e7ec", "#a84f00"
NOTE_IN = 0.27  # inches per line saying that a stream is missing
WIDTH_IN, AXIS_W = 10, 0.77  # the figure's width in inches; the lanes' share of it
# left of the lanes, as fractions of the lanes' width: where a lane's badge starts, how wide it is, where its
# class name ends; the name gets the room between the badge and its end, less a small gap
BADGE_X, BADGE_W, LABEL_X = -0.255, 0.1, -0.012
LABEL_ROOM_IN = (LABEL_X - (BADGE_X + BADGE_W)) * WIDTH_IN * AXIS_W - 0.06


def _tint(colour: str, p: float) -> tuple[float, float, float]:
    """The page's heat colour (the modality colour at alpha 0.06 + 0.94 p) over white, as an opaque RGB."""
    a = 0.06 + 0.94 * max(0.0, min(1.0, p))
    return tuple(1 - a + a * c for c in to_rgb(colour))


def fit_label(text, room_px: float, renderer) -> None:
    """A class name wider than the room between its badge and its lane goes on two lines (split where the longer
    line is shortest), then, if still too wide, in a smaller font: "Telephone bell ringing" overran the badge."""
    if text.get_window_extent(renderer).width <= room_px:
        return
    words = text.get_text().split()
    if len(words) > 1:
        cut = min(range(1, len(words)), key=lambda i: max(len(" ".join(words[:i])), len(" ".join(words[i:]))))
        text.set_text(" ".join(words[:cut]) + "\n" + " ".join(words[cut:]))
        text.set_fontsize(min(text.get_fontsize(), 8.5))  # two lines within a 0.36-inch lane
        text.set_linespacing(1.0)
    width = text.get_window_extent(renderer).width
    if width > room_px:
        text.set_fontsize(max(5.5, text.get_fontsize() * room_px / width))


def plot_timeline(record: dict, path: str | os.PathLike, dpi: int = 150) -> None:
    keys = lanes(record)
    span = timeline_span(record)
    seg = record["video"]["segment_seconds"]
    n = max(len(keys), 1)
    notes = missing_stream_notes(record)
    height = 1.15 + 0.36 * n + NOTE_IN * len(notes)  # inches: title and axis, notes, one 0.36-inch row per lane
    fig = plt.figure(figsize=(WIDTH_IN, height))
    ax = fig.add_axes([0.2, 0.62 / height, AXIS_W, 0.36 * n / height])
    ax.set_xlim(0, span)
    ax.set_ylim(n, 0)
    # Rounded corners in data units: x and y scale differently, so give the radius in inches per axis.
    x_per_in, y_per_in = span / (WIDTH_IN * AXIS_W), 1 / 0.36

    def pill(x, y, w, h, radius_in, **kw):
        return FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad=0,rounding_size={radius_in * x_per_in}",
                              mutation_aspect=y_per_in / x_per_in, **kw)

    renderer = fig.canvas.get_renderer()
    sep = 0.6 if span / seg <= 30 else 0.25
    cells, colours, pills = [], [], []  # drawn as collections: one artist each, not hundreds (add_patch is slow)
    for row, (cls, mod) in enumerate(keys):
        colour = COLOURS[mod]
        for i, p in enumerate(lane_probabilities(record, cls, mod)):
            x0, y0 = i * seg, row + 0.14
            cells.append([(x0, y0), (x0 + seg, y0), (x0 + seg, y0 + 0.72), (x0, y0 + 0.72)])
            colours.append(_tint(colour, p))
        for e in record["events"]:
            if e["class"] == cls and e["modality"] == mod:
                inset = min(0.04 * seg, 0.2 * (e["offset"] - e["onset"]))
                pills.append(pill(e["onset"] + inset, row + 0.32, max(e["offset"] - e["onset"] - 2 * inset, 1e-3), 0.36, 0.06,
                                  facecolor=colour, edgecolor="white", linewidth=1.4))
        label = ax.text(LABEL_X * span, row + 0.5, cls.replace("_", " "), ha="right", va="center", fontsize=9.5,
                        color=INK, fontweight="bold", clip_on=False)
        fit_label(label, LABEL_ROOM_IN * fig.dpi, renderer)
        badge = pill(BADGE_X * span, row + 0.29, BADGE_W * span, 0.42, 0.075, facecolor=colour, edgecolor="none")
        badge.set_clip_on(False)
        ax.add_artist(badge)
        ax.text((BADGE_X + BADGE_W / 2) * span, row + 0.51, LABELS[mod].upper(), ha="center", va="center", fontsize=6.2, color="white",
                fontweight="bold", clip_on=False)
        if row:
            ax.axhline(row, color=LINE, linewidth=0.8, zorder=0)
    # raw polygons: a Rectangle patch per cell costs ~1 ms in colour-cycle look-ups alone
    ax.add_collection(PolyCollection(cells, facecolors=colours, edgecolors="white", linewidths=sep, zorder=2))
    ax.add_collection(PatchCollection(pills, match_original=True, zorder=3))
    if not keys:
        ax.text(span / 2, 0.5, "no event reached the thresholds", ha="center", va="center", color=MUTED, fontsize=10)
    step = tick_step(span)
    ax.set_xticks([i * step for i in range(int(span // step) + 1)])
    ax.set_yticks([])
    ax.tick_params(axis="x", colors=MUTED, labelsize=8.5, length=3)
    ax.set_xlabel("seconds", color=MUTED, fontsize=9)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(LINE)
    th = record["thresholds"]
    fig.text(0.015, 1 - 0.32 / height, record["video"]["name"], fontsize=12, fontweight="bold", color=INK, va="center")
    for i, (_, short, _) in enumerate(notes):  # under the title, where the eye goes first
        fig.text(0.015, 1 - (0.32 + NOTE_IN * (i + 1)) / height, f"\u26a0 {short[0].upper()}{short[1:]}", fontsize=9.5,
                 fontweight="bold", color=WARN, va="center")
    shown = shown_modalities(record)
    handles = [Rectangle((0, 0), 1, 1, facecolor=COLOURS[m]) for m in shown]
    fig.legend(handles, [LABELS[m] for m in shown], loc="center right", ncol=3, frameon=False, fontsize=8.5,
               bbox_to_anchor=(0.985, 1 - 0.32 / height), handlelength=1.2, handleheight=0.8)
    fig.text(0.985, 0.02, f"heat: probability per second · thresholds video {th['video']:g}, segment {th['segment']:g}",
             fontsize=7.5, color=MUTED, ha="right", va="bottom")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
