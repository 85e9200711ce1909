"""CoLeaF's hyper-parameters, typed, with where each comes from.

References are to CoLeaF's public code (github faeghehsardari/coleaf, commit a36a153): ``option.py``
(its command-line defaults), ``main.py`` (the training step, where many weights are literals),
``nets/net_audiovisual.py`` (the networks) and ``utils/eval_metrics.py`` (the asymmetric loss), and to the
paper (Sardari et al., ECCV 2024, arXiv 2405.10690). The field types are those ``ecma.config`` validates
(int, float, bool, str, Optional, Literal). The settings themselves live in ``ecma.config`` (model.*, the
``coleaf`` section, train.*, eval.coleaf_*), typed and bounded; these dataclasses are the CoLeaF modules'
view of them (``coleaf_config``), with HAN's feature sizes as the reference network's input defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from ecma.config import CoLeaFLossSettings, EcmaConfig, EvalConfig, LossConfig, ModelConfig, TrainConfig


_MODEL, _TRAIN, _EVAL = ModelConfig(), TrainConfig(), EvalConfig()  # the defaults' one source: ecma.config


@dataclass
class CoLeaFModelConfig:
    """The main (anchor) network and the auxiliary audio-only and visual-only (reference) networks.
    Input sizes default to HAN's features (the reference's); the rest to ``ecma.config.ModelConfig``'s."""

    # HAN's features (the reference's defaults): VGGish audio, ResNet-152 frames at 8 per segment, R(2+1)D.
    audio_dim: int = 128  # net_audiovisual.py MMIL_Net: fc_a = Linear(128, 512)
    visual_dim: int = 2048  # fc_v = Linear(2048, 512)
    frames_per_segment: int = 8  # F.avg_pool2d(..., (8, 1)) over the 80 frames of a 10-s video
    visual_3d_dim: Optional[int] = 512  # fc_st = Linear(512, 512); None: one visual stream, no fusion
    num_classes: int = _MODEL.num_classes
    d_model: int = _MODEL.d_model
    num_layers: int = _MODEL.num_layers
    num_heads: int = _MODEL.num_heads
    d_ff: int = _MODEL.d_ff
    attention_dropout: float = _MODEL.dropout
    classifier_dropout: float = _MODEL.classifier_dropout
    interaction_dropout: float = _MODEL.interaction_dropout
    leaky_slope: float = _MODEL.leaky_slope
    evidence_temperature: float = _MODEL.evidence_temperature
    evidence_clamp: float = _MODEL.evidence_clamp
    train_cross_attention_ratio: float = _MODEL.train_cross_attention_ratio
    fuse_ratio: float = _MODEL.fuse_ratio

    @classmethod
    def from_config(cls, m: ModelConfig) -> "CoLeaFModelConfig":
        return cls(
            m.audio_dim, m.visual_dim, m.visual_frames_per_segment, m.visual_3d_dim or None, m.num_classes, m.d_model,
            m.num_layers, m.num_heads, m.d_ff, m.dropout, m.classifier_dropout, m.interaction_dropout, m.leaky_slope,
            m.evidence_temperature, m.evidence_clamp, m.train_cross_attention_ratio, m.fuse_ratio,
        )


@dataclass
class CoLeaFLossConfig(CoLeaFLossSettings):
    """Section ``coleaf`` of the config plus the modality targets' smoothing (section ``loss``)."""

    # Modality targets: s * y + (1 - s) / 2 (dataloader.py); as ecma's eps = 1 - s: audio 0, visual 0.1.
    audio_smoothing: float = LossConfig().audio_smoothing  # option.py --a_smooth 1.0
    visual_smoothing: float = LossConfig().visual_smoothing  # option.py --v_smooth 0.9


@dataclass
class CoLeaFTrainConfig:
    """Optimiser and schedule: the main and both auxiliary networks each get their own Adam and StepLR."""

    epochs: int = _TRAIN.epochs
    batch_size: int = _TRAIN.batch_size
    lr: float = _TRAIN.lr
    weight_decay: float = _TRAIN.weight_decay
    lr_step_epochs: int = _TRAIN.lr_step_epochs
    lr_gamma: float = _TRAIN.lr_gamma
    seed: int = 1  # option.py --seed


@dataclass
class CoLeaFEvalConfig:
    """CoLeaF's own evaluation (main.py eval()): modality-level gating and its segment threshold."""

    audio_threshold: float = _EVAL.coleaf_audio_threshold
    visual_threshold: float = _EVAL.coleaf_visual_threshold
    segment_threshold: float = _EVAL.coleaf_segment_threshold


@dataclass
class CoLeaFConfig:
    model: CoLeaFModelConfig = field(default_factory=CoLeaFModelConfig)
    loss: CoLeaFLossConfig = field(default_factory=CoLeaFLossConfig)
    train: CoLeaFTrainConfig = field(default_factory=CoLeaFTrainConfig)
    eval: CoLeaFEvalConfig = field(default_factory=CoLeaFEvalConfig)


def coleaf_config(cfg: EcmaConfig) -> CoLeaFConfig:
    """The CoLeaF backbone's view of the package config."""
    t, e = cfg.train, cfg.eval
    return CoLeaFConfig(
        CoLeaFModelConfig.from_config(cfg.model),
        CoLeaFLossConfig(**dataclasses.asdict(cfg.coleaf), audio_smoothing=cfg.loss.audio_smoothing,
                         visual_smoothing=cfg.loss.visual_smoothing),
        CoLeaFTrainConfig(t.epochs, t.batch_size, t.lr, t.weight_decay, t.lr_step_epochs, t.lr_gamma, t.seed),
        CoLeaFEvalConfig(e.coleaf_audio_threshold, e.coleaf_visual_threshold, e.coleaf_segment_threshold),
    )


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
