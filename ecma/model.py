"""E-CMA's network: the Hybrid Attention Network (HAN) encoder with an MMIL pooling head.

HAN (Tian, Li and Xu, ECCV 2020): both modalities are projected to ``d_model``; each layer updates every
modality with self-attention over its own segments plus cross-attention to the other modality (residual,
LayerNorm), then a feed-forward block (residual, LayerNorm). As in the published HAN, one layer's weights
serve both modalities, and both are updated from the layer's inputs (a simultaneous update).

MMIL head: per segment and modality, class probabilities P = sigmoid(W x), shape (B, T, 2, C); attention
over time (softmax over T) and over modality (softmax over the two modalities), both per class:
  video_prob  = sum_{t,m} att_time * att_mod * P
  audio_prob  = sum_t att_time[:, :, 0] * P[:, :, 0]   (and visual_prob with m = 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecma.config import ModelConfig


@dataclass
class ModelOutput:
    video_prob: torch.Tensor  # (B, C)
    audio_prob: torch.Tensor  # (B, C) audio video-level probability
    visual_prob: torch.Tensor  # (B, C)
    segment_prob: torch.Tensor  # (B, T, 2, C): [..., 0, :] audio, [..., 1, :] visual
    audio_emb: torch.Tensor  # (B, T, d_model) encoder output, the space L_CMA aligns
    visual_emb: torch.Tensor  # (B, T, d_model)


class HybridAttentionLayer(nn.Module):
    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm_attn = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.drop_self = nn.Dropout(dropout)
        self.drop_cross = nn.Dropout(dropout)
        self.drop_ff = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        attended_self = self.self_attn(x, x, x, need_weights=False)[0]
        attended_cross = self.cross_attn(x, other, other, need_weights=False)[0]
        x = self.norm_attn(x + self.drop_self(attended_self) + self.drop_cross(attended_cross))
        return self.norm_ff(x + self.drop_ff(self.feed_forward(x)))


class HAN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.audio_proj = nn.Linear(cfg.audio_dim, cfg.d_model)
        self.visual_proj = nn.Linear(cfg.visual_dim, cfg.d_model)
        self.layers = nn.ModuleList(
            HybridAttentionLayer(cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.num_layers)
        )

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, v = self.audio_proj(audio), self.visual_proj(visual)
        for layer in self.layers:
            a, v = layer(a, v), layer(v, a)
        return a, v


class MMILHead(nn.Module):
    def __init__(self, d_model: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(d_model, num_classes)
        self.time_attention = nn.Linear(d_model, num_classes)
        self.modality_attention = nn.Linear(d_model, num_classes)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.stack([a, v], dim=2)  # (B, T, 2, d)
        segment_prob = torch.sigmoid(self.classifier(x))  # (B, T, 2, C)
        att_time = torch.softmax(self.time_attention(x), dim=1)
        att_mod = torch.softmax(self.modality_attention(x), dim=2)
        temporal = att_time * segment_prob
        video_prob = (temporal * att_mod).sum(dim=(1, 2))
        audio_prob = temporal[:, :, 0].sum(dim=1)
        visual_prob = temporal[:, :, 1].sum(dim=1)
        return video_prob, audio_prob, visual_prob, segment_prob


class ECMANet(nn.Module):
    """HAN encoder + MMIL head; student and EMA teacher share this architecture."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = HAN(cfg)
        self.head = MMILHead(cfg.d_model, cfg.num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> ModelOutput:
        a, v = self.encoder(audio, visual)
        video_prob, audio_prob, visual_prob, segment_prob = self.head(a, v)
        # Sums of attention-weighted probabilities can exceed 1 by rounding; BCE needs [0, 1].
        return ModelOutput(
            video_prob.clamp(0.0, 1.0), audio_prob.clamp(0.0, 1.0), visual_prob.clamp(0.0, 1.0), segment_prob, a, v
        )
