"""Running a model over a split in batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ecma.device import autocast


@dataclass
class SplitOutputs:
    video_prob: np.ndarray  # (N, C)
    audio_prob: np.ndarray  # (N, T, C) segment-level audio probabilities
    visual_prob: np.ndarray  # (N, T, C)
    a_prob: np.ndarray  # (N, C) modality-level audio probabilities
    v_prob: np.ndarray  # (N, C)


@torch.no_grad()
def run_model(model: torch.nn.Module, audio: np.ndarray, visual: np.ndarray, *, batch_size: int, device: torch.device, precision: torch.dtype | None = None,
              visual_3d: np.ndarray | None = None) -> SplitOutputs:
    """Outputs of ``model`` in eval mode; ``precision``: the autocast dtype (``device.amp_dtype``) or None;
    ``visual_3d``: the second visual stream, for models that take one."""
    was_training = model.training
    model.eval()
    video, seg, a_prob, v_prob = [], [], [], []
    for start in range(0, len(audio), batch_size):
        a = torch.from_numpy(audio[start : start + batch_size]).to(device)
        v = torch.from_numpy(visual[start : start + batch_size]).to(device)
        v3 = None if visual_3d is None else torch.from_numpy(visual_3d[start : start + batch_size]).to(device)
        with autocast(device, precision):
            out = model(a, v, v3)
        video.append(out.video_prob.float().cpu())
        seg.append(out.segment_prob.float().cpu())
        a_prob.append(out.a_prob.float().cpu())
        v_prob.append(out.v_prob.float().cpu())
    model.train(was_training)
    segment = torch.cat(seg).numpy()
    return SplitOutputs(torch.cat(video).numpy(), segment[:, :, 0, :], segment[:, :, 1, :], torch.cat(a_prob).numpy(),
                        torch.cat(v_prob).numpy())
