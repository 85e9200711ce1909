"""One self-contained HTML page style for the report's tables (no external CSS, fonts or scripts).

Snakemake's report shows an HTML result in a frame of its own, so each page carries its style inline.
"""

from __future__ import annotations

import html

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2933; margin: 24px; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
p.note { color: #52606d; font-size: 13px; margin: 4px 0 14px 0; max-width: 60em; }
table { border-collapse: collapse; font-size: 14px; }
caption { caption-side: bottom; text-align: left; color: #52606d; font-size: 12px; padding-top: 8px; }
th, td { padding: 5px 9px; border-bottom: 1px solid #e4e7eb; }
thead th { background: #f5f7fa; font-weight: 600; border-bottom: 2px solid #9aa5b1; }
thead tr.group th { border-bottom: 1px solid #cbd2d9; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.num .sd { display: block; color: #7b8794; font-size: 11px; }
td.best { font-weight: 700; background: #e3f8ef; }
td.name { font-weight: 600; white-space: nowrap; }
td.name .desc { display: block; font-weight: 400; color: #7b8794; font-size: 11px; }
tr.baseline td { color: #7b8794; font-style: italic; background: #fafbfc; }
h2 { font-size: 16px; margin: 28px 0 8px 0; }
tr.paper td { background: #fffbea; }
th.sep, td.sep { border-left: 2px solid #cbd2d9; }
dl { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; font-size: 14px; }
dt { font-weight: 600; color: #3e4c59; }
dd { margin: 0; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px;
     word-break: break-all; }
"""


def page(title: str, body: str, style: str = "") -> str:
    """A complete HTML document with the report style (and a page's own ``style`` after it); ``body`` is HTML,
    ``title`` plain text."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}{style}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
