"""Videos of any length through a model trained on T-segment clips.

- ``n == T``: one window, the model's own case.
- ``n < T``: one window padded to T by repeating the last segment's features (as extraction pads a short
  stream), the padded seconds' outputs dropped.
- ``n > T``: windows of T segments every ``stride`` segments, the last one aligned to the video's end; each
  second's probabilities are the mean over the windows that cover it. The video-level probability, which
  gates the seconds (:mod:`ecma.parse.events`), is likewise per second: the mean of the covering windows'.
- ``whole``: the whole video as one window (HAN and MMIL take any length, but were trained on T).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# (audio (W, T, Da), visual (W, T, Dv)) -> (video (W, C), audio (W, T, C), visual (W, T, C))
Infer = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class WindowPlan:
    n_segments: int  # the video's
    window: int  # T the windows have
    stride: int
    starts: list[int] = field(default_factory=list)
    mode: str = "single"  # single | padded | windows | whole

    @property
    def padded_segments(self) -> int:
        return max(0, self.window - self.n_segments)

    def describe(self) -> dict:
        return {"mode": self.mode, "window_segments": self.window, "stride_segments": self.stride,
                "window_starts": list(self.starts), "padded_segments": self.padded_segments,
                "video_segments": self.n_segments}


def plan_windows(n_segments: int, window: int, stride: int | None = None, *, whole: bool = False) -> WindowPlan:
    """Where the windows of a video of ``n_segments`` go (``stride`` default: half a window)."""
    if n_segments < 1 or window < 1:
        raise ValueError(f"need at least one segment and a window of one, got {n_segments} and {window}")
    stride = max(1, window // 2) if stride is None else stride
    if stride < 1 or stride > window:
        raise ValueError(f"stride must be in [1, {window}], got {stride}")
    if whole:
        return WindowPlan(n_segments, n_segments, n_segments, [0], "whole")
    if n_segments <= window:
        return WindowPlan(n_segments, window, stride, [0], "single" if n_segments == window else "padded")
    starts = list(range(0, n_segments - window, stride)) + [n_segments - window]
    return WindowPlan(n_segments, window, stride, starts, "windows")


def pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    """Repeat the last row of (t, D) up to n rows."""
    return x if len(x) >= n else np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


@dataclass
class VideoProbabilities:
    audio: np.ndarray  # (n, C) per second
    visual: np.ndarray  # (n, C)
    video_gate: np.ndarray  # (n, C): the covering windows' mean video-level probability
    plan: WindowPlan

    @property
    def video(self) -> np.ndarray:
        """(C,) video-level probability: the highest of the per-second gates (one window: that window's)."""
        return self.video_gate.max(axis=0)


def window_inputs(audio: np.ndarray, visual: np.ndarray, plan: WindowPlan) -> tuple[np.ndarray, np.ndarray]:
    """(W, T, D) stacks of the windows of one video's (n, D) features."""
    a = np.stack([pad_rows(audio[s : s + plan.window], plan.window) for s in plan.starts])
    v = np.stack([pad_rows(visual[s : s + plan.window], plan.window) for s in plan.starts])
    return a, v


def combine_windows(video: np.ndarray, audio: np.ndarray, visual: np.ndarray, plan: WindowPlan) -> VideoProbabilities:
    """Per-second probabilities from the outputs on each window: padding dropped, overlaps averaged."""
    n, c = plan.n_segments, video.shape[1]
    sums = {k: np.zeros((n, c)) for k in ("audio", "visual", "gate")}
    count = np.zeros((n, 1))
    for w, s in enumerate(plan.starts):
        e = min(s + plan.window, n)
        sums["audio"][s:e] += audio[w, : e - s]
        sums["visual"][s:e] += visual[w, : e - s]
        sums["gate"][s:e] += video[w]
        count[s:e] += 1
    return VideoProbabilities(sums["audio"] / count, sums["visual"] / count, sums["gate"] / count, plan)


def parse_probabilities(audio: np.ndarray, visual: np.ndarray, infer: Infer, window: int, stride: int | None = None,
                        *, whole: bool = False) -> VideoProbabilities:
    """One video's (n, D) features -> per-second probabilities, through ``infer`` on its windows."""
    plan = plan_windows(len(audio), window, stride, whole=whole)
    a, v = window_inputs(audio, visual, plan)
    video, audio_prob, visual_prob = infer(a, v)
    return combine_windows(np.asarray(video), np.asarray(audio_prob), np.asarray(visual_prob), plan)
