"""Fractional-time events <-> fixed-length segments (UnAV-100's events on our one-second grid).

- Segment count: ``n_segments(duration) = ceil(duration / segment_seconds)``: every instant of the video
  lies in a segment; the last one may be partial (only its part inside the video counts).
- ``rule="half"`` (the default): segment s is positive for an event when the event covers at least half
  of the segment's part inside the video. An event that covers no segment by half (shorter than half a
  segment, or straddling a boundary) still marks the segment it overlaps most (the first on a tie): a true
  event never vanishes from the truth. Events are clipped to ``[0, duration]`` first; an event of zero
  length (after clipping) marks nothing.
- ``rule="any"``: every segment the event overlaps by more than zero.
- Inverse: :func:`segments_to_events` turns maximal runs of positive segments into ``(onset, offset)``
  seconds, ``[start * L, min(end * L, duration))``.

Overlaps are compared with a 1e-9 s tolerance, so that 2.5 s written in a JSON file covers half of segment 2.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np

RULES = ("half", "any")
EPS = 1e-9


def n_segments(duration: float, segment_seconds: float = 1.0) -> int:
    """ceil(duration / segment_seconds), at least 1; a float's last bits never add a segment."""
    return max(1, math.ceil(duration / segment_seconds - 1e-6))


def _coverage(onset: float, offset: float, n: int, segment_seconds: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """(overlap of [onset, offset) with each segment, length of each segment inside the video), seconds."""
    starts = np.arange(n) * segment_seconds
    ends = np.minimum(starts + segment_seconds, duration)
    overlap = np.clip(np.minimum(ends, offset) - np.maximum(starts, onset), 0.0, None)
    return overlap, np.clip(ends - starts, 0.0, None)


def events_to_segments(
    events: Iterable[tuple[int, float, float]],
    n_classes: int,
    n_segments: int,
    *,
    segment_seconds: float = 1.0,
    duration: Optional[float] = None,
    rule: str = "half",
) -> np.ndarray:
    """(C, T) uint8 truth from ``(class index, onset s, offset s)`` events (see the module's rule).

    ``duration`` defaults to ``n_segments * segment_seconds``; events are clipped to it.
    """
    if rule not in RULES:
        raise ValueError(f"unknown segment rule {rule!r} (known: {', '.join(RULES)})")
    duration = n_segments * segment_seconds if duration is None else float(duration)
    truth = np.zeros((n_classes, n_segments), dtype=np.uint8)
    for c, onset, offset in events:
        onset, offset = max(0.0, float(onset)), min(float(offset), duration)
        if offset - onset <= EPS:
            continue
        overlap, length = _coverage(onset, offset, n_segments, segment_seconds, duration)
        if rule == "any":
            on = overlap > EPS
        else:
            on = (overlap >= 0.5 * length - EPS) & (overlap > EPS)
            if not on.any():
                on[int(np.argmax(overlap))] = True
        truth[c, on] = 1
    return truth


def segment_runs(row: Sequence[bool] | np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of 1s in a (T,) row as (start, end) segment indices, end exclusive."""
    x = np.asarray(row, dtype=bool).astype(np.int8)
    edges = np.diff(np.concatenate(([0], x, [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def segments_to_events(
    segments: np.ndarray, *, segment_seconds: float = 1.0, duration: Optional[float] = None
) -> list[tuple[int, float, float]]:
    """(C, T) 0/1 -> ``(class index, onset s, offset s)`` per maximal run, by class then time.

    The offset of a run that reaches the last segment is clipped to ``duration`` where given.
    """
    segments = np.asarray(segments)
    out = []
    for c in range(segments.shape[0]):
        for start, end in segment_runs(segments[c]):
            offset = end * segment_seconds
            if duration is not None:
                offset = min(offset, float(duration))
            out.append((c, start * segment_seconds, offset))
    return out
