"""VALOR's CLAP feature maps -> 10 per-second 768-d vectors, exactly as VALOR's input path sees them.

VALOR stores HTSAT's last feature map, X (64, 768). Its network (``MMIL_Net.forward`` in VALOR's
``main_network.py``) views it as (768, 2, 32) (channels x frequency x time: row j of X is frequency
j // 32, time j % 32), upsamples it bicubically to (2, 1024) (``F.interpolate``, default
``align_corners=False``), applies its audio projection ``fc_a`` to every (frequency, time) cell, averages
over frequency, and adaptive-average-pools time to 10 segments. Interpolation, the mean and the pooling
are linear maps along (frequency, time) whose weights sum to 1 per output, so they commute with the affine
``fc_a`` (the bias passes through a weighted sum with weights summing to 1):

    fc_a applied after VALOR's path  ==  fc_a(M @ X),   M = 1/2 [P B, P B]   (10 x 64)

with B (1024 x 32) the bicubic interpolation matrix of torch's kernel (a = -0.75, source index
(i + 0.5) * 32 / 1024 - 0.5, taps clamped at the borders; 2 -> 2 along frequency is the identity) and P
(10 x 1024) adaptive average pooling (bin s covers [floor(1024 s / 10), ceil(1024 (s + 1) / 10))). The
import stores M @ X: the 10 vectors VALOR's projection would see, so any projection trained on them
computes what VALOR's computes. Built here in numpy (float64) from the kernel's formula; the tests check
it against torch's own ``F.interpolate`` and ``F.adaptive_avg_pool1d`` and against VALOR's whole path.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MAP_FREQ, MAP_TIME, UPSAMPLED_TIME, N_SEGMENTS = 2, 32, 1024, 10
CUBIC_A = -0.75  # torch's bicubic kernel parameter


def _cubic_near(x: float) -> float:  # |x| <= 1
    a = CUBIC_A
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic_far(x: float) -> float:  # 1 < |x| < 2
    a = CUBIC_A
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): torch's 1-d bicubic resampling with ``align_corners=False``, as a matrix."""
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = (i + 0.5) * scale - 0.5  # not clamped at 0 for cubic, as in torch
        base = int(np.floor(src))
        t = src - base
        weights = (_cubic_far(t + 1), _cubic_near(t), _cubic_near(1 - t), _cubic_far(2 - t))
        for offset, w in zip((-1, 0, 1, 2), weights):
            m[i, min(max(base + offset, 0), n_in - 1)] += w
    return m


def adaptive_avg_pool_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): adaptive average pooling, bin s = [floor(s n_in / n_out), ceil((s + 1) n_in / n_out))."""
    m = np.zeros((n_out, n_in))
    for s in range(n_out):
        start, end = (s * n_in) // n_out, -((-(s + 1) * n_in) // n_out)
        m[s, start:end] = 1.0 / (end - start)
    return m


@lru_cache(maxsize=1)
def clap_segment_matrix() -> np.ndarray:
    """M (10, 64): VALOR's view, upsampling, frequency mean and pooling in one matrix (float64)."""
    time = adaptive_avg_pool_matrix(UPSAMPLED_TIME, N_SEGMENTS) @ bicubic_matrix(MAP_TIME, UPSAMPLED_TIME)
    freq = bicubic_matrix(MAP_FREQ, MAP_FREQ).mean(axis=0, keepdims=True)  # identity, then the mean: [1/2, 1/2]
    return np.kron(freq, time)  # row j of the map is (frequency j // 32, time j % 32)


def clap_map_to_segments(feature_map: np.ndarray) -> np.ndarray:
    """(64, 768) HTSAT map -> (10, 768) float32 per-second vectors (VALOR's input path before ``fc_a``)."""
    return (clap_segment_matrix() @ feature_map.astype(np.float64)).astype(np.float32)
