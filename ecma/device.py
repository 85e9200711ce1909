"""Device and precision choice: the GPU where there is one, the CPU otherwise."""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

from ecma.errors import EcmaError
from ecma.runtime_env import usable_cpus


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


def set_cpu_threads(requested: Optional[int] = None) -> int:
    """Set torch's CPU threads to ``requested`` (``train.threads``), or keep torch's own count (OMP_NUM_THREADS,
    which Snakemake sets to a job's ``threads``, else the CPUs of the affinity mask), but never more than the
    CPUs this process may use (:func:`ecma.runtime_env.usable_cpus`): threads beyond them only wait for each
    other. Returns the count."""
    n = min(requested or torch.get_num_threads(), usable_cpus())
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return n


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX): there oneDNN's bf16
    matmul runs ~2.5x float32's rate (measured on a 2-core Zen 4 EPYC: 420 vs 170 GFLOP/s). Elsewhere torch
    emulates bf16, slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The low-precision dtype of mixed precision, or None for float32 throughout: bf16 where it is asked for
    (``enabled``) and the device computes it natively (CUDA, and CPUs with AVX512-BF16 or AMX)."""
    if not enabled:
        return None
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` (from ``amp_dtype``); a no-op for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    """How the numbers were computed, for fingerprints and provenance."""
    return "float32" if dtype is None else {torch.bfloat16: "bf16-autocast", torch.float16: "fp16-autocast"}[dtype]


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
