"""``ecma parse``: what is heard, what is seen, and what is both, when, in any video (see :mod:`ecma.parse.driver`).

Modules, one job each: ``events`` (events from probabilities), ``windows`` (any length through a model
trained on T segments), ``extractor`` (the checkpoint's extractor, rebuilt and checked), ``record`` (the
JSON), ``page`` (the HTML page), ``timeline_png`` (the PNG), ``index`` (index.html), ``driver`` (all of it).
"""

from ecma.parse.driver import ParseReport, parse_videos

__all__ = ["ParseReport", "parse_videos"]
