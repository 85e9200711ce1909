"""The EMA teacher: the student's architecture, never trained by gradients.

After each optimiser step: theta'_k = alpha_k * theta'_(k-1) + (1 - alpha_k) * theta_k. Buffers are copied
from the student (they are statistics, not weights to average). alpha_k is the constant alpha, or (the
default) Mean Teacher's ramp alpha_k = min(1 - 1/(k + 1), alpha) (Tarvainen and Valpola, 2017), k = 0 at
the first update: the teacher starts as the student and averages over a window that grows to 1/(1 - alpha).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_teacher(student: nn.Module) -> nn.Module:
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()  # the teacher writes masks without dropout


def ema_decay(k: int, alpha: float, ramp: bool = True) -> float:
    """alpha_k of the k-th update (k from 0): min(1 - 1/(k + 1), alpha) with ``ramp``, else alpha."""
    return min(1.0 - 1.0 / (k + 1), alpha) if ramp else alpha


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, alpha: float) -> None:
    """In-place EMA step of the teacher's parameters towards the student's."""
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"EMA alpha must be in [0, 1), got {alpha}")
    # One fused call per operation over all parameters, not two per parameter tensor.
    teacher_params = list(teacher.parameters())
    torch._foreach_mul_(teacher_params, alpha)
    torch._foreach_add_(teacher_params, [p.detach() for p in student.parameters()], alpha=1.0 - alpha)
    for b_t, b_s in zip(teacher.buffers(), student.buffers()):
        b_t.copy_(b_s)
