"""``index.html``: every parsed video of a run with its events, and the files that could not be parsed."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

from ecma.io import atomic_path
from ecma.parse.page import COLOURS, CSS, LABELS, _fmt_time, page_link
from ecma.parse.record import missing_stream_notes

INDEX_CSS = """
.video h2 { font-size: 16px; margin: 0; word-break: break-all; }
.body { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; margin-top: 10px;
        align-items: start; }
@media (max-width: 760px) { .body { grid-template-columns: 1fr; } }
.body img { width: 100%; border: 1px solid var(--line); border-radius: 8px; display: block; }
.classes { display: grid; gap: 7px; }
.cls { display: flex; flex-wrap: wrap; gap: 5px; align-items: center; }
.cls b { min-width: 100%; font-weight: 600; }
.ev { border-radius: 999px; padding: 1px 8px; font-size: 12px; color: #fff; font-variant-numeric: tabular-nums; }
.meta { color: var(--muted); font-size: 12.5px; }
.failed td:first-child { font-weight: 600; }
.no-stream { background: #fff6e5; border: 1px solid #f5c26b; color: #8a4a00; border-radius: 999px; padding: 0 8px;
           font-size: 12px; font-weight: 600; white-space: nowrap; }
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _class_rows(r: dict) -> str:
    """Per class, one line of its events as coloured chips (modality by colour, hover for its name)."""
    by_class: dict[str, list[dict]] = {}
    for e in r["events"]:
        by_class.setdefault(e["class"], []).append(e)
    if not by_class:
        return '<span class="meta">No event reached the thresholds.</span>'
    rows = []
    for cls, evs in by_class.items():
        chips = "".join(f'<span class="ev" style="background:{COLOURS[e["modality"]]}" title="{LABELS[e["modality"]]}, '
                        f'confidence {e["confidence"]:.2f}">{LABELS[e["modality"]]} {e["onset"]:g}&ndash;{e["offset"]:g} s</span>'
                        for e in evs)
        rows.append(f'<div class="cls"><b>{_esc(cls.replace("_", " "))}</b>{chips}</div>')
    return "".join(rows)


def _video_card(r: dict) -> str:
    name = r["video"]["name"]
    html_link, json_link, png_link = (_esc(page_link(name, s)) for s in (".html", ".json", ".png"))
    w = r["windowing"]
    missing = "".join(f'<span class="no-stream" data-missing="{stream}" title="{_esc(long)}">{_esc(short)}</span> · '
                      for stream, short, long in missing_stream_notes(r))
    return (f'<section class="card video" data-video="{_esc(name)}"><div class="head"><h2><a href="{html_link}">{_esc(name)}</a></h2>'
            f'<span class="meta">{missing}{_fmt_time(r["video"]["duration_seconds"])} · {len(r["events"])} events · windowing {w["mode"]} · '
            f'<a href="{json_link}">json</a> · <a href="{png_link}">png</a></span></div>'
            f'<div class="body"><a href="{html_link}"><img src="{png_link}" alt="timeline of {_esc(name)}"></a>'
            f'<div class="classes">{_class_rows(r)}</div></div></section>')


def render_index(records: Sequence[dict], failed: Sequence[tuple[str, str, str]], checkpoint: str) -> str:
    cards = "".join(_video_card(r) for r in records)
    fail = ""
    if failed:
        rows = "".join(f"<tr><td>{_esc(n)}</td><td>{_esc(s)}</td><td>{_esc(reason)}</td></tr>" for n, s, reason in failed)
        fail = (f'<section class="card failed"><div class="head"><h2>Not parsed ({len(failed)})</h2></div>'
                f'<table><thead><tr><th>video</th><th>stage</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></section>')
    n_events = sum(len(r["events"]) for r in records)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ecma parse: {len(records)} videos</title><style>{CSS}{INDEX_CSS}</style></head>
<body><main><header><h1>Parsed videos</h1>
<p>{len(records)} video{"s" if len(records) != 1 else ""} parsed, {n_events} events{f", {len(failed)} failed" if failed else ""} · model <code>{_esc(Path(checkpoint).name)}</code></p></header>
{cards}{fail}
</main></body></html>
"""


def write_index(path: str | os.PathLike, records: Sequence[dict], failed: Sequence[tuple[str, str, str]], *, checkpoint: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(render_index(records, failed, checkpoint), encoding="utf-8")
