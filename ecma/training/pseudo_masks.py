"""Segment-level pseudo masks from the teacher's segment probabilities.

Fused score P~_t = (P~a_t + P~v_t) / 2, then per video and class either
- ``adaptive``: tau_c = gamma * (1/T) sum_t P~_(t,c); M_(t,c) = 1 where P~_(t,c) >= tau_c, or
- ``topk``: M_(t,c) = 1 for the k segments with the highest P~_(t,c).
With ``restrict_to_labels`` (the default, and the project's reading of the paper) masks are kept only on
classes in the video's weak label: a mask on an absent class would teach the student a false event.
On variable-length videos (``lengths``) T is each video's own: the mean and the top k are over its real
segments, and its padded segments are never masked.
"""

from __future__ import annotations

import torch


def fused_segment_prob(segment_prob: torch.Tensor) -> torch.Tensor:
    """(B, T, 2, C) -> (B, T, C): the mean of the audio and visual segment probabilities."""
    return segment_prob.mean(dim=2)


def pseudo_masks(
    segment_prob: torch.Tensor,
    labels: torch.Tensor,
    *,
    rule: str = "adaptive",
    gamma: float = 1.0,
    k: int = 3,
    restrict_to_labels: bool = True,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T, C) 0/1 float masks from teacher probabilities (B, T, 2, C) and weak labels (B, C);
    ``lengths`` (B,): each video's number of real segments (None: all T are real)."""
    fused = fused_segment_prob(segment_prob.detach().float())
    real = None
    if lengths is not None and int(lengths.min()) < fused.shape[1]:
        real = (torch.arange(fused.shape[1], device=fused.device)[None, :] < lengths.to(fused.device)[:, None])[:, :, None]
    if rule == "adaptive":
        if real is None:
            tau = gamma * fused.mean(dim=1, keepdim=True)
        else:
            tau = gamma * (fused * real).sum(dim=1, keepdim=True) / real.sum(dim=1, keepdim=True)
        masks = (fused >= tau).float()
    elif rule == "topk":
        k_eff = min(k, fused.shape[1])
        # padded segments rank last: a video shorter than k gets all its real segments, as alone
        ranked = fused if real is None else fused.masked_fill(~real, float("-inf"))
        top = ranked.topk(k_eff, dim=1).indices
        masks = torch.zeros_like(fused).scatter_(1, top, 1.0)
    else:
        raise ValueError(f"unknown pseudo-mask rule {rule!r} (adaptive, topk)")
    if real is not None:
        masks = masks * real
    if restrict_to_labels:
        masks = masks * (labels[:, None, :] > 0).float()
    return masks


def mask_density(masks: torch.Tensor, segment_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) the fraction of each video's (real segment, class) cells that its (B, T, C) masks mark;
    ``segment_mask`` (B, T) True on real segments (None: all are), so padding does not thin the density."""
    if segment_mask is None:
        return masks.mean(dim=(1, 2))
    real = segment_mask.to(masks.dtype)
    return masks.sum(dim=(1, 2)) / (real.sum(dim=1) * masks.shape[2])
