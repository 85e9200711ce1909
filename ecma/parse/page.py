"""``NAME.html``: one self-contained page per video (inline CSS and JS, nothing fetched from the network).

The video on top (a relative link to the file, or the file itself as a data URI), under it the timeline:
one lane per class and modality with an event, the per-second probability as a heat strip, the events as
bars. Clicking a bar (or a row of the events table) seeks the video to the event's onset; clicking the
strip seeks to that second; a cursor follows playback. The lanes are rendered here, so the page reads
even with scripts off; the script only adds the interaction.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from ecma.io import atomic_path
from ecma.parse.events import claimable_modalities
from ecma.parse.record import lane_probabilities, lanes, missing_stream_notes

COLOURS = {"audio": "#e4572e", "visual": "#1f77d0", "audio_visual": "#7b3fc4"}
LABELS = {"audio": "audio", "visual": "visual", "audio_visual": "audio-visual"}
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska",
        ".mov": "video/quicktime", ".ogv": "video/ogg"}

CSS = """
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f6f7f9; --card: #fff;
        --audio: #e4572e; --visual: #1f77d0; --audio_visual: #7b3fc4; --label: 220px; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { font-size: 22px; margin: 0 0 2px; word-break: break-all; }
header p { margin: 0; color: var(--muted); }
a { color: var(--visual); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px;
        margin-top: 16px; box-shadow: 0 1px 2px rgba(16, 24, 40, .04); }
.player { background: #0d1117; border-radius: 12px; margin-top: 16px; padding: 10px; text-align: center; }
.player video { height: min(56vh, 440px); max-width: 100%; border-radius: 6px; display: block; margin: 0 auto;
                background: #000; }  /* a fixed height: small videos are shown large, large ones fit */
.player .missing { color: #c9d1d9; padding: 40px 0; }
.head { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; flex-wrap: wrap; }
.head h2 { font-size: 15px; margin: 0; }
.legend { display: flex; gap: 14px; color: var(--muted); font-size: 12px; align-items: center; flex-wrap: wrap; }
.legend i { display: inline-block; width: 22px; height: 10px; border-radius: 3px; margin-right: 5px;
            vertical-align: -1px; }
.scale { background: linear-gradient(90deg, rgba(29,35,48,.04), rgba(29,35,48,.85)); }
.timeline { position: relative; margin-top: 12px; }
.axis, .lane { display: grid; grid-template-columns: var(--label) 1fr; align-items: center; }
.axis .ticks { position: relative; height: 20px; border-bottom: 1px solid var(--line); }
.axis .tick { position: absolute; top: 2px; transform: translateX(-50%); font-size: 11px; color: var(--muted);
              font-variant-numeric: tabular-nums; }
.axis .tick::after { content: ""; position: absolute; left: 50%; top: 15px; height: 4px; border-left: 1px solid #c0c6d0; }
.lane { height: 34px; border-bottom: 1px solid var(--line); }
.lane.near { opacity: .85; height: 44px; }
.lane.near .name { flex-wrap: wrap; row-gap: 0; align-content: center; }
.lane .name small { flex-basis: 100%; color: var(--muted); font-size: 11px; line-height: 1.2;
                    font-variant-numeric: tabular-nums; }
details.near-misses summary { cursor: pointer; color: var(--muted); font-size: 12px; padding: 8px 0 4px;
                              list-style-position: inside; }
.lane .name { padding-right: 10px; display: flex; align-items: center; gap: 7px; white-space: nowrap;
              overflow: hidden; text-overflow: ellipsis; }
.lane .name b { font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
.chip { font-size: 10.5px; font-weight: 600; padding: 1px 6px; border-radius: 999px; color: #fff;
        text-transform: uppercase; letter-spacing: .03em; flex: none; }
.track { position: relative; height: 100%; }
.heat { position: absolute; inset: 5px 0; display: flex; border-radius: 4px; overflow: hidden; cursor: pointer;
        background: #f1f3f6; }
.heat span { flex: 1 1 0; border-right: 1px solid rgba(255,255,255,.55); }
.heat span:last-child { border-right: 0; }
.event { position: absolute; top: 11px; height: 12px; border: 2px solid #fff; border-radius: 7px; padding: 0;
         cursor: pointer; box-shadow: 0 1px 3px rgba(0,0,0,.35); min-width: 8px; }
.event:hover, .event:focus-visible { top: 9px; height: 16px; outline: none; box-shadow: 0 0 0 2px var(--ink); }
.cursor { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: #d92d20;
          pointer-events: none; box-shadow: 0 0 0 1px rgba(255,255,255,.7); }
.cursor::before { content: ""; position: absolute; top: -4px; left: -4px; border: 5px solid transparent;
                  border-top-color: #d92d20; }
.overlay { position: absolute; top: 0; bottom: 0; right: 0; left: var(--label); pointer-events: none; }
.empty { color: var(--muted); padding: 18px 0 6px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #f3f5f9; }
.bar { display: inline-block; height: 6px; border-radius: 3px; background: var(--ink); opacity: .7;
       vertical-align: middle; margin-right: 6px; }
.notice { background: #fff6e5; border: 1px solid #f5c26b; border-left: 5px solid #e8890c; border-radius: 10px;
          color: #5c3400; padding: 11px 14px; margin-top: 16px; }
.notice b { color: #8a4a00; }
footer { color: var(--muted); font-size: 12px; margin-top: 16px; }
footer code { font-size: 11.5px; }
"""

SCRIPT = """
(function () {
  var video = document.getElementById('video');
  var data = JSON.parse(document.getElementById('parse-data').textContent);
  var span = data.span;
  var cursor = document.getElementById('cursor');
  function seek(t) {
    if (!video) return;
    video.currentTime = Math.max(0, t);
    place();
  }
  function place() {
    if (!video || !cursor) return;
    var f = Math.min(1, Math.max(0, video.currentTime / span));
    cursor.style.left = (100 * f) + '%';
    var t = video.currentTime;
    document.querySelectorAll('.event').forEach(function (b) {
      var on = t >= +b.dataset.onset && t < +b.dataset.offset;
      b.style.boxShadow = on ? '0 0 0 2px #1d2330' : '';
    });
  }
  document.querySelectorAll('[data-seek]').forEach(function (el) {
    el.addEventListener('click', function (ev) { ev.stopPropagation(); seek(+el.dataset.seek); });
  });
  document.querySelectorAll('.heat').forEach(function (el) {
    el.addEventListener('click', function (ev) {
      var r = el.getBoundingClientRect();
      var n = el.children.length, i = Math.floor(n * (ev.clientX - r.left) / r.width);
      seek(Math.min(n - 1, Math.max(0, i)) * data.segment_seconds);
    });
  });
  if (video) {
    ['timeupdate', 'seeked', 'seeking', 'loadedmetadata'].forEach(function (e) { video.addEventListener(e, place); });
    (function tick() { if (!video.paused) place(); requestAnimationFrame(tick); })();
  }
  place();
})();
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt_time(t: float) -> str:
    m, s = divmod(float(t), 60.0)
    return f"{int(m)}:{s:04.1f}" if m else f"{s:.1f} s"


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{0.06 + 0.94 * max(0.0, min(1.0, alpha)):.3f})"


def tick_step(span: float) -> float:
    """A tick every 1, 2, 5, 10, ... seconds: at most ~12 labels across the timeline."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if span / step <= 12:
            return float(step)
    return 1200.0


def video_source(video_path: str, page_dir: Path, embed: bool) -> Optional[str]:
    """The <video> src: a data URI of the file, or its path relative to the page (None: no such file)."""
    p = Path(video_path)
    if not p.is_file():
        return None
    if embed:
        mime = MIME.get(p.suffix.lower(), "video/mp4")
        return f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode("ascii")
    rel = os.path.relpath(p.resolve(), page_dir.resolve())
    return quote(Path(rel).as_posix())  # spaces, '#' and '?' in file names must not end the URL


def shown_modalities(record: dict) -> list[str]:
    """The modalities the video can have events of: all three, less those needing a stream its file lacks."""
    return claimable_modalities((record.get("suppressed") or {}).get("missing_streams", []))


def page_link(name: str, suffix: str) -> str:
    """A link to the output NAME.suffix beside the page: '#', '?', '%' and spaces in a name must not end or
    change the URL."""
    return quote(f"{name}{suffix}")


def near_misses(record: dict, k: int = 3) -> list[tuple[str, str]]:
    """The k (class, modality) without an event whose highest per-second probability is largest (not of a
    modality whose stream the file lacks)."""
    shown = set(lanes(record))
    best = []
    for m in [m for m in ("audio", "visual") if m in shown_modalities(record)]:
        for c in record["classes"]:
            if (c, m) not in shown:
                best.append((max(lane_probabilities(record, c, m), default=0.0), c, m))
    return [(c, m) for _, c, m in sorted(best, key=lambda x: -x[0])[:k]]


def _lane_html(record: dict, cls: str, modality: str, span: float, kind: str = "lane") -> str:
    colour = COLOURS[modality]
    seg = record["video"]["segment_seconds"]
    probs = lane_probabilities(record, cls, modality)
    cells = "".join(f'<span style="background:{_rgba(colour, p)}" title="{_esc(f"{i * seg:g}-{(i + 1) * seg:g} s: p = {p:.2f}")}"></span>'
                    for i, p in enumerate(probs))
    bars = []
    for e in record["events"]:
        if e["class"] != cls or e["modality"] != modality:
            continue
        left, width = 100 * e["onset"] / span, 100 * (e["offset"] - e["onset"]) / span
        tip = f"{cls} ({LABELS[modality]}): {e['onset']:g}-{e['offset']:g} s, confidence {e['confidence']:.2f}"
        bars.append(f'<button class="event" style="left:{left:.3f}%;width:{width:.3f}%;background:{colour}" '
                    f'data-seek="{e["onset"]}" data-onset="{e["onset"]}" data-offset="{e["offset"]}" '
                    f'title="{_esc(tip)}" aria-label="{_esc(tip)}"></button>')
    # the heat strip spans the segments; a last segment past the video's end is cut like the events
    strip_width = 100 * len(probs) * seg / span
    # a lane below the thresholds says why: its video-level probability (the gate) and its highest second
    why = ""
    if kind != "lane":
        gate = record["probabilities"]["video"][cls]
        why = f'<small title="video-level probability; highest per-second probability">video {gate:.2f} · max {max(probs):.2f}</small>'
    return (f'<div class="{kind}" data-class="{_esc(cls)}" data-modality="{modality}">'
            f'<div class="name"><span class="chip" style="background:{colour}">{LABELS[modality]}</span>'
            f'<b title="{_esc(cls)}">{_esc(cls.replace("_", " "))}</b>{why}</div>'
            f'<div class="track"><div class="heat" style="width:{strip_width:.3f}%">{cells}</div>{"".join(bars)}</div></div>')


def timeline_span(record: dict) -> float:
    v = record["video"]
    return max(float(v["n_segments"]) * float(v["segment_seconds"]), 1e-6)


def render_page(record: dict, video_src: Optional[str]) -> str:
    name = record["video"]["name"]
    span = timeline_span(record)
    step = tick_step(span)
    ticks = "".join(f'<span class="tick" style="left:{100 * t / span:.3f}%">{t:g}</span>'
                    for t in [i * step for i in range(int(span // step) + 1)])
    lane_keys = lanes(record)
    body = "".join(_lane_html(record, c, m, span) for c, m in lane_keys)
    if not lane_keys:
        body = '<div class="empty">No event reached the thresholds in this video.</div>'
    near = near_misses(record)
    if near:
        body += (f'<details class="near-misses"><summary>strongest classes below the thresholds</summary>'
                 f'{"".join(_lane_html(record, c, m, span, "lane near") for c, m in near)}</details>')
    rows = "".join(
        f'<tr data-seek="{e["onset"]}"><td>{_esc(e["class"].replace("_", " "))}</td>'
        f'<td><span class="chip" style="background:{COLOURS[e["modality"]]}">{LABELS[e["modality"]]}</span></td>'
        f'<td>{_fmt_time(e["onset"])} &ndash; {_fmt_time(e["offset"])}</td>'
        f'<td><span class="bar" style="width:{40 * e["confidence"]:.1f}px"></span>{e["confidence"]:.2f}</td></tr>'
        for e in record["events"])
    table = (f'<table><thead><tr><th>class</th><th>modality</th><th>time</th><th>confidence</th></tr></thead>'
             f'<tbody>{rows}</tbody></table>') if rows else '<div class="empty">No events.</div>'
    player = (f'<video id="video" controls preload="auto" src="{_esc(video_src)}"></video>' if video_src
              else f'<div class="missing">The video file {_esc(record["video"]["path"])} was not found next to this page.</div>')
    th, w, prov = record["thresholds"], record["windowing"], record["provenance"]
    n_ev = len(record["events"])
    kinds = sorted({e["class"] for e in record["events"]})
    length = _fmt_time(record["video"]["duration_seconds"])
    summary = (f'{n_ev} event{"s" if n_ev != 1 else ""} of {len(kinds)} class{"es" if len(kinds) != 1 else ""} in {length}'
               if n_ev else f"no events in {length}")
    data = json.dumps({"span": span, "segment_seconds": record["video"]["segment_seconds"]}).replace("</", "<\\/")
    shown = shown_modalities(record)
    legend = "".join(f'<span><i style="background:{COLOURS[m]}"></i>{LABELS[m]}</span>' for m in shown)
    # a missing stream is said first, above the player: its absence changes what every lane below means
    notice = "".join(f'<div class="notice" role="note" data-missing="{stream}"><b>{_esc(short[0].upper() + short[1:])}.</b> '
                     f'{_esc(long)}</div>' for stream, short, long in missing_stream_notes(record))
    subject = ("what is heard, seen, and both" if len(shown) == 3 else "what is seen" if shown == ["visual"]
               else "what is heard")
    windowing = {"single": f"one window of {w['window_segments']} s",
                 "padded": f"one window, padded from {w['video_segments']} to {w['window_segments']} segments",
                 "windows": f"{len(w['window_starts'])} overlapping windows of {w['window_segments']} segments, stride {w['stride_segments']}",
                 "whole": "the whole video in one pass"}[w["mode"]]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(name)} · ecma parse</title><style>{CSS}</style></head>
<body><main>
<header><h1>{_esc(name)}</h1>
<p>{summary} · {subject}</p></header>{notice}
<div class="player">{player}</div>
<section class="card"><div class="head"><h2>Timeline</h2><div class="legend">{legend}<span><i class="scale"></i>probability per second</span></div></div>
<div class="timeline" id="timeline">
<div class="axis"><div></div><div class="ticks">{ticks}</div></div>
{body}
<div class="overlay"><div class="cursor" id="cursor" style="left:0%"></div></div>
</div></section>
<section class="card"><div class="head"><h2>Events</h2><div class="legend">click a row or a bar to play from there</div></div>{table}</section>
<footer>Thresholds: video {th["video"]:g}, segment {th["segment"]:g} (the benchmark's rule). Windowing: {windowing}.
Model <code>{_esc(Path(prov["checkpoint"]).name)}</code> ({_esc(prov.get("variant", ""))}, sha256 {_esc(prov["checkpoint_sha256"][:12])}),
ecma {_esc(prov["ecma_version"])}. Data: <a href="{_esc(page_link(name, ".json"))}">{_esc(name)}.json</a> · <a href="index.html">all videos</a></footer>
</main>
<script type="application/json" id="parse-data">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_page(path: str | os.PathLike, record: dict, video_path: str, *, embed: bool = False) -> None:
    path = Path(path)
    src = video_source(video_path, path.parent, embed)
    with atomic_path(path) as tmp:
        tmp.write_text(render_page(record, src), encoding="utf-8")
