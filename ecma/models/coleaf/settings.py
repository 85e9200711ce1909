"""The CoLeaF backbone's settings: config section ``coleaf``, registered with the backbone, and the sizes of
CoLeaF's reference network.

Imported when the registry loads the backbones (while the config builds its class), so it imports nothing
but the typed loader: no torch, and no config class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ecma.config.typed import bounded

# CoLeaF's code builds its network for HAN's published features (net_audiovisual.py MMIL_Net: fc_a =
# Linear(128, 512), fc_v = Linear(2048, 512) over 8 ResNet-152 frames a segment, fc_st = Linear(512, 512) for
# R(2+1)D); ModelConfig's defaults are CLIP/CLAP's sizes instead. These are the reference's.
REFERENCE_FEATURE_SIZES = {"audio_dim": 128, "visual_dim": 2048, "visual_frames_per_segment": 8, "visual_3d_dim": 512}


@dataclass
class CoLeaFSettings:
    """The CoLeaF backbone's losses, label denoising and auxiliary networks (section ``coleaf``).

    Its network's sizes are the ``model`` section, its optimiser the ``train`` section.

    Sources: CoLeaF's public code (github faeghehsardari/coleaf, commit a36a153): option.py (command-line
    defaults), main.py (the training step, where many weights are literals), utils/eval_metrics.py (the
    asymmetric loss). The modality-target smoothing is ``loss.audio_smoothing``/``visual_smoothing``.
    """

    clamp: float = bounded(1e-7, gt=0.0, lt=0.5)  # option.py --clamp: probabilities clamped before BCE
    w_audio: float = bounded(2.0, ge=0.0)  # option.py --audio_weight
    w_visual: float = bounded(1.0, ge=0.0)  # option.py --visual_weight
    w_video: float = bounded(2.0, ge=0.0)  # option.py --video_weight
    w_nce: float = bounded(1.0, ge=0.0)  # option.py --nce_weight
    w_mutual: float = bounded(1.0, ge=0.0)  # option.py --mutual-weight
    w_cooccurrence_audio: float = bounded(1e-4, ge=0.0)  # main.py train(): 0.0001 * loss_cc_a
    w_cooccurrence_visual: float = bounded(1e-4, ge=0.0)  # main.py train(): 0.0001 * loss_cc_v
    w_aux_nce_audio: float = bounded(0.009, ge=0.0)  # main.py train(): 0.009 * loss_a_4
    w_aux_nce_visual: float = bounded(1.0, ge=0.0)  # main.py train(): 1 * loss_v_4
    collaborative_start_epoch: int = bounded(1, ge=0)  # main.py: `if epoch > 1` (1-based): 0-based epoch >= 1
    nce_temperature: float = bounded(0.2, gt=0.0)  # main.py: criterion_nce(0.2, ...) (option.py --temperature)
    nce_smoothing: float = bounded(0.1, ge=0.0, lt=1.0)  # main.py: criterion_nce(0.2, 0.1, ...) (--nce_smooth)
    mutual_lambda: float = bounded(1.0, ge=0.0)  # MutualLearningLoss(lamb=1.0)
    mutual_uncertainty_floor: float = bounded(0.9, ge=0.0, le=1.0)  # mutual_loss.py: clamp(global_uct, min=0.9)
    denoise: bool = True  # JoMoLD's label denoising, as CoLeaF runs it
    # 'han': the ratios CoLeaF ships for HAN's features (package data); or a .json/.npz path; null: no denoising
    noise_ratios: Optional[str] = "han"
    denoise_warmup_epochs: float = bounded(0.9, ge=0.0)  # option.py --warm_up_epoch 0.9
    aux_warmup_epochs: int = bounded(3, ge=0)  # option.py --second_warm_up_epoch 3 (`epoch > 3`, 1-based)
    aux_target_threshold_audio: float = bounded(0.5, ge=0.0, le=1.0)  # main.py: (a_prob >= 0.5).float() * Pa
    aux_target_threshold_visual: float = bounded(0.6, ge=0.0, le=1.0)  # main.py: (v_prob >= 0.6).float() * Pv
    confident_high_audio: float = bounded(0.8, ge=0.0, le=1.0)  # main.py: s_a_prob >= 0.8
    confident_low_audio: float = bounded(0.1, ge=0.0, le=1.0)  # main.py: s_a_prob <= 0.1
    confident_high_visual: float = bounded(0.6, ge=0.0, le=1.0)  # main.py: s_v_prob >= 0.6
    confident_low_visual: float = bounded(0.4, ge=0.0, le=1.0)  # main.py: s_v_prob <= 0.4
    modality_only_threshold: float = bounded(0.5, ge=0.0, le=1.0)  # main.py: s_a_prob >= 0.5, s_v_prob >= 0.5
    # Auxiliary losses: w_label ASL(p, P) + w_tokens ASL(p_tokens, P) + w_main ASL(p, P_main); _warmup weights
    # (and no w_main term) before aux_warmup_epochs.
    aux_audio_w_label_warmup: float = bounded(1.0, ge=0.0)  # main.py: 1 * criterion_bce_2(s_a_prob, Pa)
    aux_audio_w_tokens_warmup: float = bounded(1.2, ge=0.0)  # main.py: 1.2 * criterion_bce_2(cls_a, Pa)
    aux_audio_w_label: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_a_prob, Pa)
    aux_audio_w_tokens: float = bounded(0.001, ge=0.0)  # main.py: 0.001 * criterion_bce_2(cls_a, Pa)
    aux_audio_w_main: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_a_prob, a_prob)
    aux_visual_w_label_warmup: float = bounded(1.0, ge=0.0)  # main.py: 1 * criterion_bce_2(s_v_prob, Pv)
    aux_visual_w_tokens_warmup: float = bounded(1.0, ge=0.0)  # main.py: 1 * criterion_bce_2(cls_v, Pv)
    aux_visual_w_label: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_v_prob, Pv)
    aux_visual_w_tokens: float = bounded(0.0, ge=0.0)  # main.py: 0.000 * criterion_bce_2(cls_v, Pv)
    aux_visual_w_main: float = bounded(0.5, ge=0.0)  # main.py: 0.5 * criterion_bce_2(s_v_prob, v_prob)
    asl_gamma_pos: float = bounded(1.0, ge=0.0)  # utils/eval_metrics.py AsymmetricLoss(gamma_pos=1)
    asl_gamma_neg: float = bounded(1.0, ge=0.0)  # AsymmetricLoss(gamma_neg=1)
    asl_clip: float = bounded(0.05, ge=0.0, lt=1.0)  # AsymmetricLoss(clip=0.05)
    asl_eps: float = bounded(1e-8, gt=0.0)  # AsymmetricLoss(eps=1e-8)
