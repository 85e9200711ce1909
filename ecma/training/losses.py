"""E-CMA's losses on any backbone's output: L = L_backbone + w_pseudo L_pseudo + w_cma L_CMA (each backbone's own
L_backbone is beside its network: ecma.models.han.losses, ecma.models.coleaf.losses).

All take probabilities (not logits) in float32; call them outside autocast. On variable-length batches
(``out.mask``, (B, T) True on real segments) padded segments are in no pseudo mask and no CMA pair, so they
change no number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ecma.config import LossConfig
from ecma.models.contracts import ModelOutput
from ecma.training.pseudo_masks import fused_segment_prob


def pseudo_loss(segment_prob: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(1/||M||_1) sum_(t,c) M_(t,c) BCE(P^_(t,c), 1) on the fused student probability; 0 when M is empty.
    Padded segments of variable-length batches have M = 0 (:func:`ecma.training.pseudo_masks.pseudo_masks`)."""
    fused = fused_segment_prob(segment_prob.float())
    total = masks.sum()
    if total == 0:
        return fused.sum() * 0.0  # keeps the graph (and the device) without a contribution
    bce = F.binary_cross_entropy(fused, torch.ones_like(fused), reduction="none")
    return (masks * bce).sum() / total


def cma_pairs(segment_prob: torch.Tensor, y: torch.Tensor, tau_a: float, tau_v: float,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Omega as a (B, T, C) bool mask: P^a_(t,c) > tau_a, P^v_(t,c) > tau_v and y_c = 1, on real segments
    (``mask`` (B, T), None: all)."""
    pa, pv = segment_prob[:, :, 0, :], segment_prob[:, :, 1, :]
    omega = (pa > tau_a) & (pv > tau_v) & (y[:, None, :] > 0)
    return omega if mask is None else omega & mask[:, :, None]


def cma_loss(out: ModelOutput, y: torch.Tensor, tau_a: float = 0.5, tau_v: float = 0.5) -> torch.Tensor:
    """Mean over Omega of 1 - cos(x^a_t, x^v_t); 0 when Omega is empty."""
    omega = cma_pairs(out.segment_prob.detach(), y, tau_a, tau_v, getattr(out, "mask", None)).float()
    cos = F.cosine_similarity(out.audio_emb.float(), out.visual_emb.float(), dim=-1)  # (B, T)
    n = omega.sum()
    if n == 0:
        return cos.sum() * 0.0
    return ((1.0 - cos)[:, :, None] * omega).sum() / n


def ecma_loss(out: ModelOutput, y: torch.Tensor, cfg: LossConfig, *, masks: torch.Tensor | None,
              use_cma: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """E-CMA's additions to a backbone's loss: (w_pseudo L_pseudo + w_cma L_CMA, {'pseudo', 'cma'}).
    ``masks`` None (no teacher, or still warming up) and ``use_cma`` False make those terms 0."""
    zero = out.segment_prob.new_zeros((), dtype=torch.float32)
    pseudo = pseudo_loss(out.segment_prob, masks) if masks is not None else zero
    cma = cma_loss(out, y, cfg.cma_tau_a, cfg.cma_tau_v) if use_cma else zero
    return cfg.w_pseudo * pseudo + cfg.w_cma * cma, {"pseudo": pseudo, "cma": cma}
