"""Batches of variable-length videos: segment masks, trimming to a batch's own longest video, and bucketing.

Features of videos of different T are stored padded with zero segments to the split's longest
(:func:`ecma.data.shards.load_features`, ``FeatureSet.lengths``). A batch is cut to its own longest video and
carries a (B, T) bool mask, True on real segments; where every segment of the batch is real the mask is None,
the fast path the models take on equal-length data (LLP) exactly as before masks existed.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def segment_mask(lengths: torch.Tensor | np.ndarray, t: int) -> Optional[torch.Tensor]:
    """(B, t) bool, True where segment < the video's length; None when every segment is real."""
    lengths = torch.as_tensor(lengths)
    if len(lengths) == 0 or int(lengths.min()) >= t:
        return None
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def mask_beyond_lengths(x: np.ndarray, lengths: Optional[np.ndarray], time_axis: int) -> np.ndarray:
    """``x`` with every entry at a segment >= its video's length (axis 0 = videos) set to 0; a copy when
    anything changes. For predictions and truth: padded segments are neither predicted nor true."""
    if lengths is None:
        return x
    t = x.shape[time_axis]
    lengths = np.asarray(lengths)
    if len(lengths) == 0 or int(lengths.min()) >= t:
        return x
    shape = [1] * x.ndim
    shape[0], shape[time_axis] = len(lengths), t
    real = (np.arange(t)[None, :] < lengths[:, None]).reshape(shape)
    return np.where(real, x, np.zeros((), dtype=x.dtype))


def bucketed_order(order: torch.Tensor, lengths: torch.Tensor, batch_size: int, chunk_batches: int,
                   generator: torch.Generator) -> torch.Tensor:
    """Reorder a shuffled ``order`` so that batches hold videos of similar length (less padding): sort
    each chunk of ``chunk_batches`` batches by length, cut it into batches, and shuffle the batches of the
    whole epoch (so long and short batches alternate rather than follow the sort). Chunks keep the
    randomness of which videos meet. ``chunk_batches`` 0, or equal lengths: ``order`` unchanged."""
    if chunk_batches <= 0 or int(lengths.min()) == int(lengths.max()):
        return order
    chunk = chunk_batches * batch_size
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[torch.argsort(lengths[part], stable=True)]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    # the last batch of the epoch may be short; it keeps its place at the end so every other one is full
    full, last = batches[:-1], batches[-1]
    shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
    return torch.cat(shuffled + [last])


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of the segments computed that are padding, when each batch is cut to its own longest video."""
    computed = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1.0 - float(lengths.sum()) / computed


def crop_windows(audio: torch.Tensor, visual: torch.Tensor, visual_3d: Optional[torch.Tensor], masks: Optional[torch.Tensor],
                 lengths: torch.Tensor, max_segments: int, generator: torch.Generator):
    """Cut a batch to ``max_segments`` segments: a video longer than that keeps a window starting at a random
    segment (drawn from ``generator``), a shorter one its start. ``audio`` (B, T, Da), ``visual`` (B, T * k,
    Dv), ``visual_3d`` (B, T, D3) or None, ``masks`` (B, T, C) pseudo masks or None. Returns the five cut,
    the lengths clipped to ``max_segments``."""
    b, t = audio.shape[:2]
    k = visual.shape[1] // t
    room = (lengths - max_segments).clamp(min=0)  # how far each window can start
    start = (torch.rand(b, generator=generator) * (room + 1).to(torch.float64)).long().clamp(max=room)
    segments = start[:, None] + torch.arange(max_segments)[None, :]  # (B, S)
    frames = (segments[:, :, None] * k + torch.arange(k)).reshape(b, -1)  # (B, S * k)

    def take(x: Optional[torch.Tensor], index: torch.Tensor) -> Optional[torch.Tensor]:
        if x is None:
            return None
        return torch.gather(x, 1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:]))

    return (take(audio, segments), take(visual, frames), take(visual_3d, segments), take(masks, segments),
            lengths.clamp(max=max_segments))


class RowGather:
    """``source[idx]`` for one training step, written into a buffer reused from step to step.

    A fresh batch of CoLeaF's frames (128 x 80 x 2048 float32, 84 MB) is above glibc's largest mmap threshold:
    allocated anew each step, its 20,000 pages fault in again (a 31 ms gather on two cores; 6 ms into a reused
    buffer). The returned tensor is overwritten by the next call, so a step must be done with it (forward and
    backward) before the next gather, as the training loop is."""

    def __init__(self, source: torch.Tensor, max_rows: int):
        self.source = source
        self.buffer = torch.empty((max_rows, *source.shape[1:]), dtype=source.dtype)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if len(idx) > len(self.buffer):
            raise ValueError(f"{len(idx)} rows asked of a gather buffer of {len(self.buffer)}")
        return torch.index_select(self.source, 0, idx, out=self.buffer[: len(idx)])
