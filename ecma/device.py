"""Device and precision choice: the GPU where there is one, the CPU otherwise."""

from __future__ import annotations

import contextlib

import torch

from ecma.errors import EcmaError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EcmaError(f"config: unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EcmaError(f"config: device {name!r} asked for, but this machine has no usable CUDA GPU")
    return device


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (mixed precision); a no-op on the CPU, where float32 is both faster and exact."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
