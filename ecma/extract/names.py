"""Annotation filenames <-> video files.

LLP annotations name videos ``<YouTube id>_<start>_<end>``; downloaded videos are usually stored as
``<id>.<ext>`` (already cut to the 10-s clip) or under the full annotation filename.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
_CLIP_SUFFIX = re.compile(r"_-?\d+(?:\.\d+)?_-?\d+(?:\.\d+)?$")


def youtube_id(filename: str) -> str:
    """The filename without a trailing ``_<start>_<end>`` (the filename itself when there is none)."""
    return _CLIP_SUFFIX.sub("", filename)


def match_videos(video_dir: str | Path, filenames: Iterable[str]) -> dict[str, Path]:
    """Video file of each annotation filename found in ``video_dir``: ``<filename>.<ext>`` first, then
    ``<id>.<ext>``, extensions in the order of VIDEO_EXTENSIONS. Filenames without a video are left out."""
    video_dir = Path(video_dir)
    present: dict[str, Path] = {}
    if video_dir.is_dir():
        for p in video_dir.iterdir():
            if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
                present[p.name] = p
    out: dict[str, Path] = {}
    for f in filenames:
        for stem in (f, youtube_id(f)):
            hit = next((present[stem + ext] for ext in VIDEO_EXTENSIONS if stem + ext in present), None)
            if hit is None:  # upper-case extensions (.MP4) from some downloaders
                hit = next((present[stem + ext.upper()] for ext in VIDEO_EXTENSIONS if stem + ext.upper() in present), None)
            if hit is not None:
                out[f] = hit
                break
    return out
