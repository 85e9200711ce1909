"""CoLeaF's hyper-parameters, typed, with where each comes from.

References are to CoLeaF's public code (github faeghehsardari/coleaf, commit a36a153): ``option.py``
(its command-line defaults), ``main.py`` (the training step, where many weights are literals),
``nets/net_audiovisual.py`` (the networks) and ``utils/eval_metrics.py`` (the asymmetric loss), and to the
paper (Sardari et al., ECCV 2024, arXiv 2405.10690). The field types are those ``ecma.config`` validates
(int, float, bool, str, Optional, Literal), so these sections can be folded into ``EcmaConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class CoLeaFModelConfig:
    """The main (anchor) network and the auxiliary audio-only and visual-only (reference) networks."""

    # HAN's features (the reference's defaults): VGGish audio, ResNet-152 frames at 8 per segment, R(2+1)D.
    audio_dim: int = 128  # net_audiovisual.py MMIL_Net: fc_a = Linear(128, 512)
    visual_dim: int = 2048  # fc_v = Linear(2048, 512)
    frames_per_segment: int = 8  # F.avg_pool2d(..., (8, 1)) over the 80 frames of a 10-s video
    visual_3d_dim: Optional[int] = 512  # fc_st = Linear(512, 512); None: one visual stream, no fusion
    num_classes: int = 25
    d_model: int = 512  # every Linear of MMIL_Net is 512 wide
    num_layers: int = 1  # option.py --num_layers 1
    num_heads: int = 1  # Encoder(..., nhead=1)
    d_ff: int = 512  # Encoder(..., dim_feedforward=512)
    attention_dropout: float = 0.1  # MMIL_Net(att_dropout=0.1): attention weights, residual branches, FFN
    classifier_dropout: float = 0.5  # MMIL_Net(cls_dropout=0.5): on the visual embedding only, before the heads
    interaction_dropout: float = 0.2  # v2a / a2v: Linear, Dropout(0.2), LeakyReLU(0.2)
    leaky_slope: float = 0.2  # classifier1, v2a, a2v: LeakyReLU(0.2)
    evidence_temperature: float = 0.8  # exp_evidence(y, temp=0.8)
    evidence_clamp: float = 10.0  # exp_evidence: torch.clamp(y, -10, 10)
    # Training forward (with_ca=True): x = 0.8 * encoder(with cross-attention) + 0.2 * encoder(without).
    train_cross_attention_ratio: float = 0.8  # MMIL_Net.forward: ratio = 0.80
    # Inference: P = 0.7 * P(with_ca=True pass) + 0.3 * P(with_ca=False pass).
    fuse_ratio: float = 0.7  # option.py --fuse_ratio 0.7, used in main.py eval()


@dataclass
class CoLeaFLossConfig:
    """Weights, warm-ups and thresholds of the main and auxiliary losses."""

    clamp: float = 1e-7  # option.py --clamp: probabilities clamped to [clamp, 1 - clamp] before BCE
    # Modality targets: s * y + (1 - s) / 2 (dataloader.py); as ecma's eps = 1 - s: audio 0, visual 0.1.
    audio_smoothing: float = 0.0  # option.py --a_smooth 1.0
    visual_smoothing: float = 0.1  # option.py --v_smooth 0.9
    w_audio: float = 2.0  # option.py --audio_weight
    w_visual: float = 1.0  # option.py --visual_weight
    w_video: float = 2.0  # option.py --video_weight
    w_nce: float = 1.0  # option.py --nce_weight
    w_mutual: float = 1.0  # option.py --mutual-weight
    w_cooccurrence_audio: float = 1e-4  # main.py train(): 0.0001 * loss_cc_a
    w_cooccurrence_visual: float = 1e-4  # main.py train(): 0.0001 * loss_cc_v
    w_aux_nce_audio: float = 0.009  # main.py train(): 0.009 * loss_a_4
    w_aux_nce_visual: float = 1.0  # main.py train(): 1 * loss_v_4
    # The collaborative terms (co-occurrence, aux-main contrastive) join after the first epoch.
    collaborative_start_epoch: int = 1  # main.py train(): `if epoch > 1` (1-based): 0-based epoch >= 1 here
    nce_temperature: float = 0.2  # main.py: criterion_nce(0.2, ...) (= option.py --temperature)
    nce_smoothing: float = 0.1  # main.py: criterion_nce(0.2, 0.1, ...) (= option.py --nce_smooth)
    mutual_lambda: float = 1.0  # MutualLearningLoss(lamb=1.0): weight of the negative-class term
    mutual_uncertainty_floor: float = 0.9  # mutual_loss.py: torch.clamp(global_uct, min=0.9)
    # Label denoising (JoMoLD): per-class noise ratios, warm-up in epochs (its odd schedule: coleaf_losses).
    denoise: bool = True
    noise_ratios: Optional[str] = "han"  # 'han': the ratios shipped for HAN's features; or a .json/.npz path
    denoise_warmup_epochs: float = 0.9  # option.py --warm_up_epoch 0.9
    # Auxiliary networks: targets from the main network, confident predictions for the co-occurrence loss.
    aux_warmup_epochs: int = 3  # option.py --second_warm_up_epoch 3 (`epoch > 3`, 1-based): epochs 0-2 here
    aux_target_threshold_audio: float = 0.5  # main.py: (a_prob >= 0.5).float() * Pa
    aux_target_threshold_visual: float = 0.6  # main.py: (v_prob >= 0.6).float() * Pv
    confident_high_audio: float = 0.8  # main.py: s_a_prob >= 0.8
    confident_low_audio: float = 0.1  # main.py: s_a_prob <= 0.1
    confident_high_visual: float = 0.6  # main.py: s_v_prob >= 0.6
    confident_low_visual: float = 0.4  # main.py: s_v_prob <= 0.4
    modality_only_threshold: float = 0.5  # main.py: s_a_prob >= 0.5, s_v_prob >= 0.5 (aux contrastive weights)
    # Auxiliary losses (main.py train()): L = w_label ASL(p, P) + w_tokens ASL(p_tokens, P) + w_main ASL(p, P_main);
    # during the warm-up (0-based epoch < aux_warmup_epochs) the _warmup weights, and no w_main term.
    aux_audio_w_label_warmup: float = 1.0  # main.py: 1 * criterion_bce_2(s_a_prob, Pa)
    aux_audio_w_tokens_warmup: float = 1.2  # main.py: 1.2 * criterion_bce_2(cls_a, Pa)
    aux_audio_w_label: float = 0.5  # main.py: 0.5 * criterion_bce_2(s_a_prob, Pa)
    aux_audio_w_tokens: float = 0.001  # main.py: 0.001 * criterion_bce_2(cls_a, Pa)
    aux_audio_w_main: float = 0.5  # main.py: 0.5 * criterion_bce_2(s_a_prob, a_prob)
    aux_visual_w_label_warmup: float = 1.0  # main.py: 1 * criterion_bce_2(s_v_prob, Pv)
    aux_visual_w_tokens_warmup: float = 1.0  # main.py: 1 * criterion_bce_2(cls_v, Pv)
    aux_visual_w_label: float = 0.5  # main.py: 0.5 * criterion_bce_2(s_v_prob, Pv)
    aux_visual_w_tokens: float = 0.0  # main.py: 0.000 * criterion_bce_2(cls_v, Pv)
    aux_visual_w_main: float = 0.5  # main.py: 0.5 * criterion_bce_2(s_v_prob, v_prob)
    asl_gamma_pos: float = 1.0  # utils/eval_metrics.py AsymmetricLoss(gamma_neg=1, gamma_pos=1, clip=0.05)
    asl_gamma_neg: float = 1.0
    asl_clip: float = 0.05
    asl_eps: float = 1e-8


@dataclass
class CoLeaFTrainConfig:
    """Optimiser and schedule: the main and both auxiliary networks each get their own Adam and StepLR."""

    epochs: int = 10  # option.py --epochs
    batch_size: int = 128  # option.py --batch_size
    lr: float = 5e-4  # option.py --lr (Adam, option.py --optimizer adam)
    weight_decay: float = 0.0  # option.py --weight_decay
    lr_step_epochs: int = 6  # option.py --lr_step_size
    lr_gamma: float = 0.25  # option.py --lr_gamma
    seed: int = 1  # option.py --seed


@dataclass
class CoLeaFEvalConfig:
    """CoLeaF's own evaluation (main.py eval()): modality-level gating and its segment threshold."""

    audio_threshold: float = 0.52  # oa = a_prob >= 0.52
    visual_threshold: float = 0.52  # v_thres_list = np.full((1, 25), 0.52)
    segment_threshold: float = 0.25  # Pa = (frame_prob >= 0.25) * oa


@dataclass
class CoLeaFConfig:
    model: CoLeaFModelConfig = field(default_factory=CoLeaFModelConfig)
    loss: CoLeaFLossConfig = field(default_factory=CoLeaFLossConfig)
    train: CoLeaFTrainConfig = field(default_factory=CoLeaFTrainConfig)
    eval: CoLeaFEvalConfig = field(default_factory=CoLeaFEvalConfig)


def validate_coleaf_config(cfg: CoLeaFConfig, section: str = "coleaf") -> None:
    """Value checks beyond the types (``ecma.config`` checks those); an EcmaError names the first failure."""
    from ecma.errors import EcmaError

    m, lo, t, e = cfg.model, cfg.loss, cfg.train, cfg.eval
    checks = [
        (min(m.audio_dim, m.visual_dim, m.frames_per_segment, m.num_classes, m.d_model, m.num_layers, m.num_heads, m.d_ff) > 0,
         "model sizes must be positive"),
        (m.visual_3d_dim is None or m.visual_3d_dim > 0, "model.visual_3d_dim must be positive or null"),
        (m.d_model % m.num_heads == 0, "model.d_model must be divisible by model.num_heads"),
        (all(0.0 <= p < 1.0 for p in (m.attention_dropout, m.classifier_dropout, m.interaction_dropout)),
         "model dropouts must be in [0, 1)"),
        (0.0 <= m.train_cross_attention_ratio <= 1.0 and 0.0 <= m.fuse_ratio <= 1.0,
         "model.train_cross_attention_ratio and model.fuse_ratio must be in [0, 1]"),
        (m.evidence_temperature > 0 and m.evidence_clamp > 0, "model.evidence_temperature and evidence_clamp must be positive"),
        (0.0 < lo.clamp < 0.5, "loss.clamp must be in (0, 0.5)"),
        (0.0 <= lo.audio_smoothing <= 1.0 and 0.0 <= lo.visual_smoothing <= 1.0, "loss smoothing must be in [0, 1]"),
        (lo.nce_temperature > 0 and 0.0 <= lo.nce_smoothing < 1.0, "loss.nce_temperature > 0, loss.nce_smoothing in [0, 1)"),
        (lo.denoise_warmup_epochs >= 0 and lo.aux_warmup_epochs >= 0 and lo.collaborative_start_epoch >= 0,
         "loss warm-ups must be >= 0"),
        (t.epochs > 0 and t.batch_size > 0 and t.lr > 0 and t.lr_step_epochs > 0, "train epochs, batch_size, lr, lr_step_epochs must be positive"),
        (all(0.0 <= x <= 1.0 for x in (e.audio_threshold, e.visual_threshold, e.segment_threshold)), "eval thresholds must be in [0, 1]"),
    ]
    for ok, message in checks:
        if not ok:
            raise EcmaError(f"config: {section}.{message}")
