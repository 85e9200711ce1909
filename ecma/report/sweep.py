"""A sweep's page: each setting against the validation score, all settings at once, the choice and its test scores.

Input: the sweep's ``trials.csv`` (one row per trial: its settings and validation scores, ``ecma sweep-select``),
its ``best.yaml`` (the chosen trial, the metric, the space searched) and, when the final runs are scored, their
``ecma summarize`` metrics (the test split, mean and sample std over the final seeds). One self-contained HTML
page, the figures embedded as PNG: one scatter per setting (value against the validation score), parallel
coordinates of every trial coloured by the score, the chosen trial marked in both, the trials' table and the
final test table. Nothing on the page but the final table comes from the test split.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import cm, colors, ticker  # noqa: E402

from ecma.errors import EcmaError  # noqa: E402
from ecma.report.ablation import LEVEL_SHORT, SHORT  # noqa: E402
from ecma.report.html import page  # noqa: E402
from ecma.report.seeds import LEVELS, metric_keys  # noqa: E402

CHOSEN_COLOUR = "#d1495b"
TRIAL_COLOUR = "#00798c"
COLOURMAP = "viridis"
METRIC_NAMES = {"type_av": "segment Type@AV", "audio_visual": "segment AV F1",
                "average": "mean of the ten metrics"}

SWEEP_STYLE = """
figure { margin: 18px 0 6px 0; }
figure img { max-width: 100%; border: 1px solid #e4e7eb; }
figcaption { color: #52606d; font-size: 12px; max-width: 60em; margin-top: 4px; }
tr.chosen td { background: #fde8ea; font-weight: 600; }
tr.mean td { font-weight: 700; border-top: 2px solid #9aa5b1; }
div.choice { border-left: 4px solid #d1495b; background: #fafbfc; padding: 8px 14px; margin: 12px 0; max-width: 60em; }
"""


def _plain(value: Any) -> Any:
    """A value as trials.csv and best.yaml may both hold it: None for missing, numbers as floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def _text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Axis:
    """How one setting is drawn: numbers on a linear or log axis, or a list's values in its order (categories)."""

    def __init__(self, key: str, spec: Any, values: Sequence[Any]):
        self.key = key
        values = [_plain(v) for v in values]
        self.listed: list[float] = []  # a list's numbers, each a tick
        if isinstance(spec, Mapping):  # a range: its ends and scale
            self.categories = None
            self.log = spec.get("scale") == "log"
            self.low, self.high = float(spec["low"]), float(spec["high"])
        else:
            listed = [_plain(v) for v in (spec or values)]
            numeric = all(isinstance(v, float) for v in listed + values)
            if numeric:
                self.categories = None
                self.listed = sorted(set(listed))
                self.low, self.high = min(listed + values), max(listed + values)
                self.log = self.low > 0 and self.high / self.low >= 20
            else:
                self.categories = list(dict.fromkeys(listed + values))
                self.log = False

    def position(self, value: Any) -> float:
        """Where a value sits on the axis (in data units; categories by their index)."""
        value = _plain(value)
        if self.categories is not None:
            return float(self.categories.index(value))
        return float(value)

    def unit(self, value: Any) -> float:
        """The value scaled to [0, 1] between the axis' ends (on its scale)."""
        if self.categories is not None:
            n = len(self.categories)
            return 0.5 if n == 1 else self.position(value) / (n - 1)
        f = np.log10 if self.log else (lambda x: x)
        low, high = f(self.low), f(self.high)
        return 0.5 if high == low else float((f(self.position(value)) - low) / (high - low))

    def limits(self) -> tuple[float, float]:
        """The x limits of a number axis: its ends with a small margin (on its scale)."""
        if self.high == self.low:
            return self.low - 1, self.high + 1
        if self.log:
            pad = (self.high / self.low) ** 0.05
            return self.low / pad, self.high * pad
        pad = 0.05 * (self.high - self.low)
        return self.low - pad, self.high + pad

    def ticks(self) -> list[tuple[float, str]]:
        """(unit position, label) of the ends (numbers) or every category."""
        if self.categories is not None:
            return [(self.unit(c), _text(c)) for c in self.categories]
        return [(0.0, f"{self.low:g}"), (1.0, f"{self.high:g}")]


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _axes(table: pd.DataFrame, space: Mapping) -> list[Axis]:
    return [Axis(key, space.get(key), list(table[key])) for key in space]


def setting_plots(table: pd.DataFrame, space: Mapping, metric_label: str) -> str:
    """One scatter per setting: its value against the validation score, the chosen trial a red star (PNG, base64)."""
    axes = _axes(table, space)
    ncols = min(len(axes), 3)
    nrows = math.ceil(len(axes) / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.0 * nrows), squeeze=False, sharey=True)
    chosen = table[table["chosen"]]
    for ax, axis in zip(grid.flat, axes):
        x = [axis.position(v) for v in table[axis.key]]
        ax.scatter(x, table["val_select"], s=34, color=TRIAL_COLOUR, alpha=0.8, edgecolor="white", linewidth=0.6,
                   label="trial", zorder=2)
        ax.scatter([axis.position(v) for v in chosen[axis.key]], chosen["val_select"], s=190, marker="*",
                   color=CHOSEN_COLOUR, edgecolor="#5c1a22", linewidth=0.7, label="chosen", zorder=3)
        if axis.categories is not None:
            ax.set_xticks(range(len(axis.categories)), [_text(c) for c in axis.categories])
            ax.set_xlim(-0.5, len(axis.categories) - 0.5)
        else:  # the whole range searched, not only where the trials fell
            if axis.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(ticker.LogLocator(numticks=6))
            else:
                ax.xaxis.set_major_locator(ticker.MaxNLocator(5))
            if 0 < len(axis.listed) <= 8:
                ax.set_xticks(axis.listed)
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlim(*axis.limits())
        ax.set_xlabel(axis.key + (" (log scale)" if axis.log else ""))
        ax.grid(color="#e4e7eb")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel(f"validation {metric_label} (%)")
    for ax in list(grid.flat)[len(axes):]:
        ax.set_visible(False)
    grid.flat[0].legend(loc="best", frameon=False, fontsize=8)
    fig.tight_layout()
    return _png(fig)


def parallel_plot(table: pd.DataFrame, space: Mapping, metric_label: str) -> str:
    """Every trial as a line through one vertical axis per setting and a last one for the validation score,
    coloured by the score; the chosen trial drawn last, thick and red (PNG, base64)."""
    axes = _axes(table, space)
    scores = table["val_select"].to_numpy(dtype=float)
    low, high = float(scores.min()), float(scores.max())
    span = high - low or 1.0
    norm = colors.Normalize(low, high if high > low else low + 1.0)
    colourmap = plt.get_cmap(COLOURMAP)
    n = len(axes) + 1
    fig, ax = plt.subplots(figsize=(max(6.5, 1.9 * n + 1.5), 4.4))
    xs = np.arange(n)
    order = np.argsort(scores, kind="stable")  # best on top
    for i in order:
        row = table.iloc[i]
        ys = [axis.unit(row[axis.key]) for axis in axes] + [(row["val_select"] - low) / span]
        if bool(row["chosen"]):
            continue
        ax.plot(xs, ys, color=colourmap(norm(row["val_select"])), lw=1.5, alpha=0.85, zorder=2)
    for _, row in table[table["chosen"]].iterrows():
        ys = [axis.unit(row[axis.key]) for axis in axes] + [(row["val_select"] - low) / span]
        ax.plot(xs, ys, color=CHOSEN_COLOUR, lw=3.2, marker="o", ms=6, zorder=4, label=f"chosen: trial {row['trial']}")
    for x, axis in zip(xs, axes):
        ax.axvline(x, color="#9aa5b1", lw=1, zorder=1)
        for y, label in axis.ticks():
            ax.text(x + 0.04, y, label, fontsize=8, color="#3e4c59", va="center", zorder=5)
    ax.axvline(xs[-1], color="#9aa5b1", lw=1, zorder=1)
    for y, value in ((0.0, low), (1.0, high)):
        ax.text(xs[-1] + 0.04, y, f"{value:.2f}", fontsize=8, color="#3e4c59", va="center")
    ax.set_xticks(xs, [axis.key + (" (log)" if axis.log else "") for axis in axes] + [f"validation\n{metric_label}"],
                  fontsize=9)
    ax.set_yticks([])
    ax.set_ylim(-0.06, 1.06)
    ax.set_xlim(-0.2, n - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=colourmap), ax=ax, pad=0.02, fraction=0.04,
                 label=f"validation {metric_label} (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 1.12), frameon=False, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def final_table(final: Mapping) -> str:
    """The final runs on the test split: one row per seed, then mean ± sample std (HTML)."""
    keys = [(level, k) for level in LEVELS for k in metric_keys(final)]
    head = "<tr><th>final run</th>" + "".join(f"<th>{LEVEL_SHORT[lv]} {html.escape(SHORT[k])}</th>" for lv, k in keys)
    rows = []
    per_seed = final.get("seeds") if isinstance(final.get("seeds"), Mapping) else {}
    for seed, block in per_seed.items():
        rows.append(f"<tr><td class=\"name\">seed {html.escape(str(seed))}</td>"
                    + "".join(f"<td class=\"num\">{float(block[lv][k]):.2f}</td>" for lv, k in keys) + "</tr>")
    std = final.get("std") or {}
    n = len(per_seed) or 1
    cells = "".join(f"<td class=\"num\">{float(final[lv][k]):.2f}"
                    + (f"<span class=\"sd\">± {float(std[lv][k]):.2f}</span>" if n > 1 and std else "") + "</td>"
                    for lv, k in keys)
    label = f"mean ± std ({n} seeds)" if n > 1 else "the one seed"
    rows.append(f"<tr class=\"mean\"><td class=\"name\">{label}</td>{cells}</tr>")
    caption = ("F1 in percent on the test split, the chosen settings trained once per seed; mean ± sample standard "
               "deviation (ddof=1) over the seeds. No other trial was scored on the test split.")
    return (f"<table>\n<caption>{caption}</caption>\n<thead>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows)
            + "\n</tbody>\n</table>")


def trials_html(table: pd.DataFrame, space: Mapping, metric_label: str) -> str:
    """Every trial's settings, best epoch and validation score; the chosen row highlighted."""
    head = ("<tr><th>trial</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in space)
            + f"<th>best epoch</th><th>validation {html.escape(metric_label)}</th></tr>")
    rows = []
    for _, row in table.sort_values("trial").iterrows():
        cls = " class=\"chosen\"" if bool(row["chosen"]) else ""
        rows.append(f"<tr{cls}><td class=\"num\">{int(row['trial'])}</td>"
                    + "".join(f"<td class=\"num\">{html.escape(_text(row[k]))}</td>" for k in space)
                    + f"<td class=\"num\">{int(row['best_epoch'])}</td><td class=\"num\">{row['val_select']:.2f}</td></tr>")
    return (f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def check_table(table: pd.DataFrame, space: Mapping) -> None:
    missing = [c for c in ("trial", "val_select", "chosen", "best_epoch", *space) if c not in table.columns]
    if missing:
        raise EcmaError(f"trials table: no column {missing[0]!r} (not a trials.csv of ecma sweep-select)")
    if len(table) == 0 or int(table["chosen"].sum()) != 1:
        raise EcmaError("trials table: it must have trials and exactly one chosen")


def sweep_page(table: pd.DataFrame, best: Mapping, final: Mapping | None = None) -> str:
    """The sweep's page (self-contained HTML)."""
    space = best.get("space") or {}
    if not space:
        raise EcmaError("best.yaml: no space (not written by ecma sweep-select)")
    check_table(table, space)
    metric = str(best.get("metric"))
    label = METRIC_NAMES.get(metric, metric)
    name, dataset = best.get("sweep", "?"), best.get("dataset", "?")
    title = f"Sweep {name} on {dataset}"
    settings = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(_text(v))}</dd>"
                       for k, v in (best.get("settings") or {}).items())
    choice = (f"<div class=\"choice\"><b>Chosen: trial {best.get('trial')}</b>, validation {html.escape(label)} "
              f"{float(best.get('val_select', float('nan'))):.2f} at epoch {best.get('best_epoch')} "
              f"(of {best.get('trials')} trials; ties: {html.escape(str(best.get('tie_break')))})"
              f"<dl>{settings}</dl></div>")
    note = (f"<p class=\"note\">Variant <code>{html.escape(str(best.get('variant')))}</code>, "
            f"{best.get('trials')} trials ({html.escape(str(best.get('sampler', '')))}). "
            f"<b>Selection used the validation split only</b>: each trial kept its best epoch by validation "
            f"{html.escape(label)}, and the trial of highest score was chosen. The test split was scored only for "
            "the chosen settings, trained again once per final seed (the table at the end).</p>")
    figures = (
        f"<figure><img alt=\"each setting against the validation score\" "
        f"src=\"data:image/png;base64,{setting_plots(table, space, label)}\">"
        f"<figcaption>Each varied setting against the validation {html.escape(label)} of its trial's best epoch "
        "(one dot per trial); the red star is the chosen trial. Validation split only.</figcaption></figure>"
        f"<figure><img alt=\"all settings together\" src=\"data:image/png;base64,{parallel_plot(table, space, label)}\">"
        "<figcaption>All settings together: one line per trial through each setting's axis (its range, low at the "
        f"bottom) to its validation {html.escape(label)}, coloured by that score; the chosen trial in red. "
        "Validation split only.</figcaption></figure>")
    test = ("<h2>The chosen settings on the test split</h2>\n" + final_table(final)) if final is not None else (
        "<h2>The chosen settings on the test split</h2><p class=\"note\">Not scored yet.</p>")
    body = (f"<h1>{html.escape(title)}</h1>\n{note}\n{choice}\n{figures}\n{test}\n"
            f"<h2>Every trial (validation split)</h2>\n{trials_html(table, space, label)}")
    return page(title, body, style=SWEEP_STYLE)
