"""What decoding gives the encoders: one decoded video (:class:`DecodedVideo`, or why it failed), and one-line
reasons from decoders' exceptions. Shared by both extraction profiles' decoders (:mod:`ecma.extract.decode`,
:mod:`ecma.extract.valor.decode`); plain data, no torch (it travels back from the decoding workers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

# decord's C++ errors are multi-line and start with "[hh:mm:ss] /path/file.cc:123: "; keep the message.
_DECORD_PREFIX = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*")


@dataclass
class DecodedVideo:
    """One decoded video. ``images``: (n_visual * K, H, W, 3) uint8 frames of the segments the video stream
    has, resized and cropped by the transform when one is given (black frames when the file has no video
    stream); ``waveform``: mono float32 samples covering ``n_audio`` whole segments (zero-filled to the last
    segment's end; silence when there is no audio stream). Both None when decoding failed."""

    index: int
    name: str
    n_segments: int = 0  # T
    images: Any = None
    n_visual: int = 0  # segments the video stream has, at most T
    waveform: Optional[np.ndarray] = None
    n_audio: int = 0  # segments the audio stream has, at most T
    flags: dict = field(default_factory=dict)
    error: Optional[tuple[str, str]] = None  # (stage, one-line reason)


def one_line(e: BaseException) -> str:
    """A one-line reason from an exception, decord's multi-line C++ messages included."""
    lines = [_DECORD_PREFIX.sub("", ln).strip() for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Stack trace", "File ", "0:", "1:", "2:"))]
    text = lines[0] if lines else type(e).__name__
    return text[:300]
