"""The HAN backbone's own loss, L_AVVP (HAN's ``main_avvp.py``): BCE of the video-level probability against the
weak labels y, plus BCE of the audio and visual modality-level probabilities against y smoothed per modality.

Takes probabilities (not logits) in float32; call it outside autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ecma.models.contracts import ModelOutput
from ecma.models.layers import smooth_labels


def avvp_loss(out: ModelOutput, y: torch.Tensor, audio_smoothing: float = 0.0, visual_smoothing: float = 0.1) -> torch.Tensor:
    """BCE of the video probability against y, plus of the modality-level ones against smoothed y."""
    return (
        F.binary_cross_entropy(out.video_prob.float(), y)
        + F.binary_cross_entropy(out.a_prob.float(), smooth_labels(y, audio_smoothing))
        + F.binary_cross_entropy(out.v_prob.float(), smooth_labels(y, visual_smoothing))
    )
