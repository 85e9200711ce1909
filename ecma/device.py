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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def keep_freed_memory() -> bool:
    """Let glibc keep freed activation buffers for reuse instead of returning them to the kernel.

    On the CPU, torch allocates every activation with malloc; glibc serves blocks above its mmap threshold
    with fresh mmaps and trims its heap eagerly, so each training step page-faults its activations back
    in (~0.5 M minor faults per 1,000 teacher forwards here, a third of a forward's time). Raising the mmap
    threshold to glibc's maximum (32 MiB) and the trim threshold to 1 GiB keeps those blocks in the heap.
    A process-wide setting, made by ``train`` on the CPU; returns False where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)) and bool(mallopt(_M_TRIM_THRESHOLD, 1024 ** 3))
