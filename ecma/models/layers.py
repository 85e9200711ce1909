"""Pieces the backbones share: a cheaper CPU dropout and ELU, the float32 widening of autocast outputs, and the
label smoothing of the modality-level targets."""

from __future__ import annotations

import torch
from torch import nn


def smooth_labels(y: torch.Tensor, eps: float) -> torch.Tensor:
    """(1 - eps) y + eps / 2: eps = 0.1 gives HAN's visual target 0.9 y + 0.05; CoLeaF writes it s y + (1 - s) / 2
    with s = 1 - eps (audio s = 1, visual s = 0.9)."""
    return (1.0 - eps) * y + eps / 2.0


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
        # the comparison written straight into x's dtype: a bool mask converted afterwards cost 3x the time
        keep_scaled = torch.ge(bits, self.threshold, out=torch.empty(x.shape, dtype=x.dtype)).mul_(1.0 / (1.0 - self.p))
        return x * keep_scaled

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _ELUFunction(torch.autograd.Function):
    """ELU (alpha 1) as max(x, exp(min(x, 0)) - 1), computed in float32, with the derivative from the output:
    dy/dx = min(y, 0) + 1. For x > 0, exp(0) - 1 is exactly 0, so x passes unchanged; for x <= 0,
    exp(x) - 1 >= x, and where float32 rounding puts it below x (tiny x) the max keeps x, the better value.
    One elementwise pass fewer than max(x, 0) + exp(min(x, 0)) - 1."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()  # half-precision exp(x) - 1 would lose the small negative values
        negative_part = xf.clamp_max(0.0).exp_().sub_(1.0)  # a new tensor: xf may be x itself
        y = torch.maximum(xf, negative_part, out=negative_part).to(x.dtype)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad * y.clamp_max(0.0).add_(1.0)


class ELU(nn.Module):
    """nn.ELU() at a quarter of its CPU time.

    torch's CPU ELU evaluates expm1 element by element (25 ms for CoLeaF's 128 x 80 x 512 projected frames on
    two cores, half the cost of the 2048 -> 512 projection before it); exp, clamps and adds are vectorised
    (6 ms). Within 6e-8 of nn.ELU in float32, the same bf16 values but for one in 10^5 or so. On other
    devices torch's own (fused) ELU runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return nn.functional.elu(x)
        return _ELUFunction.apply(x)
