"""Pieces the backbones share: a cheaper CPU dropout and the float32 widening of autocast outputs."""

from __future__ import annotations

import torch
from torch import nn


def wide(dtype: torch.dtype) -> torch.dtype:
    """float32 for the half-precision outputs of autocast's matmuls; float32 and float64 stay."""
    return torch.promote_types(dtype, torch.float32)


class Dropout(nn.Module):
    """Dropout whose mask on the CPU costs a quarter of torch's.

    torch's CPU dropout draws one random number per element (a bernoulli draw), which took ~18% of a
    training step on two cores. Here one 64-bit draw gives four 16-bit uniforms, each compared with
    round(p * 65536): the drop probability is p to within 1/65536. Kept values are scaled by 1/(1-p) as
    usual. On other devices torch's own (fused) dropout runs; in eval mode x passes through.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.threshold = int(round(p * 65536)) - 32768  # int16 values below this are dropped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        # the full 64-bit range: random_() alone leaves the top bit, so a whole lane, at zero
        draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        bits = draws.view(torch.int16)[:n].view(x.shape)
        keep_scaled = (bits >= self.threshold).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * keep_scaled

    def extra_repr(self) -> str:
        return f"p={self.p}"
