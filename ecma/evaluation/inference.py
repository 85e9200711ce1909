"""Running a model over a split in batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ecma.data.batching import segment_mask
from ecma.device import autocast


@dataclass
class SplitOutputs:
    video_prob: np.ndarray  # (N, C)
    audio_prob: np.ndarray  # (N, T, C) segment-level audio probabilities (0 on padded segments)
    visual_prob: np.ndarray  # (N, T, C)
    a_prob: np.ndarray  # (N, C) modality-level audio probabilities
    v_prob: np.ndarray  # (N, C)


@torch.no_grad()
def run_model(model: torch.nn.Module, audio: np.ndarray, visual: np.ndarray, *, batch_size: int, device: torch.device, precision: torch.dtype | None = None,
              visual_3d: np.ndarray | None = None, lengths: np.ndarray | None = None) -> SplitOutputs:
    """Outputs of ``model`` in eval mode; ``precision``: the autocast dtype (``device.amp_dtype``) or None;
    ``visual_3d``: the second visual stream, for models that take one.

    ``lengths`` (N,): each video's real segments, for variable-length videos padded to a common T (None:
    all T real). Then videos are batched in order of length (long videos together: little padding), each
    batch is cut to its own longest video and masked, and the outputs come back in the input order, padded
    to T with zeros."""
    was_training = model.training
    model.eval()
    n, t = audio.shape[:2]
    k = visual.shape[1] // max(t, 1)  # visual rows per segment
    varying = lengths is not None and len(lengths) and int(np.min(lengths)) < t
    order = np.argsort(lengths, kind="stable") if varying else None
    video, seg, a_prob, v_prob = [], [], [], []
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size) if order is None else order[start : start + batch_size]
        tb = t if order is None else int(lengths[rows].max())
        a = torch.from_numpy(np.ascontiguousarray(audio[rows, :tb])).to(device)
        v = torch.from_numpy(np.ascontiguousarray(visual[rows, : tb * k])).to(device)
        v3 = None if visual_3d is None else torch.from_numpy(np.ascontiguousarray(visual_3d[rows, :tb])).to(device)
        mask = None if order is None else segment_mask(torch.from_numpy(lengths[rows]), tb)
        with autocast(device, precision):
            out = model(a, v, v3) if mask is None else model(a, v, v3, mask.to(device))
        video.append(out.video_prob.float().cpu())
        s = out.segment_prob.float().cpu()
        seg.append(s if tb == t else torch.nn.functional.pad(s, (0, 0, 0, 0, 0, t - tb)))
        a_prob.append(out.a_prob.float().cpu())
        v_prob.append(out.v_prob.float().cpu())
    model.train(was_training)
    outputs = [torch.cat(x).numpy() for x in (video, seg, a_prob, v_prob)]
    if order is not None:  # back to the input order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n)
        outputs = [x[inverse] for x in outputs]
    video, segment, a_prob, v_prob = outputs
    return SplitOutputs(video, segment[:, :, 0, :], segment[:, :, 1, :], a_prob, v_prob)
