"""The HAN backbone's network: the Hybrid Attention Network (HAN) encoder with an MMIL pooling head.

HAN (Tian, Li and Xu, ECCV 2020): both modalities are projected to ``d_model`` (for frame-level visual
features, ``model.visual_frames_per_segment`` = k > 1, HAN's own input stage: every frame is projected, the
k frames of a segment averaged, and with ``model.visual_3d_dim`` > 0 a 3-D stream projected too and fused
with them by a Linear over the concatenation, as ``net_audiovisual.py`` of AVVP-ECCV20 does); each layer updates every
modality with self-attention over its own segments plus cross-attention to the other modality (residual,
LayerNorm), then a feed-forward block (residual, LayerNorm). As in the published HAN, one layer's weights
serve both modalities, and both are updated from the layer's inputs (a simultaneous update).

MMIL head: per segment and modality, class probabilities P = sigmoid(W x), shape (B, T, 2, C); attention
over time (softmax over T) and over modality (softmax over the two modalities), both per class:
  video_prob  = sum_{t,m} att_time * att_mod * P
  a_prob      = sum_t att_time[:, :, 0] * P[:, :, 0]   (and v_prob with m = 1)
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ecma.config import ModelConfig
from ecma.models.contracts import ModelOutput
from ecma.models.layers import Dropout, wide


class HybridAttentionLayer(nn.Module):
    """One HAN layer, applied to both modalities at once.

    Input ``x`` is (2B, T, d): the B audio sequences, then the B visual ones. Each is updated with
    self-attention over its own segments plus cross-attention to the other modality's sequence of the
    same video. The arithmetic is that of two ``nn.MultiheadAttention`` calls (their parameters are kept,
    with their names, in ``self_attn`` and ``cross_attn``), computed together: one matmul projects the
    queries, keys and values of both attentions, and the self and cross heads attend side by side as
    2 x num_heads heads. With ten segments this saves ~15% of a forward pass on the CPU: one projection
    matmul instead of four, and none of the generic module's CPU flash-attention kernel, slow at this size.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.d_model, self.num_heads = d_model, num_heads
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm_attn = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.drop_weights = Dropout(dropout)  # on the attention weights, as nn.MultiheadAttention does
        self.drop_self = Dropout(dropout)
        self.drop_cross = Dropout(dropout)
        self.drop_ff = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``mask`` (B, T) bool, True on real segments: padded segments are no key of either attention."""
        n2, t, d = x.shape
        n, heads = n2 // 2, 2 * self.num_heads
        w = torch.cat([self.self_attn.in_proj_weight, self.cross_attn.in_proj_weight])
        b = torch.cat([self.self_attn.in_proj_bias, self.cross_attn.in_proj_bias])
        q_s, k_s, v_s, q_c, k_c, v_c = nn.functional.linear(x, w, b).split(d, dim=-1)

        def other(z: torch.Tensor) -> torch.Tensor:  # the other modality's rows of the same videos
            return torch.cat([z[n:], z[:n]])

        def split_heads(z: torch.Tensor) -> torch.Tensor:  # (2B, T, 2d) -> (2B, 2h, T, d/h)
            return z.view(n2, t, heads, d // self.num_heads).transpose(1, 2)

        q = split_heads(torch.cat([q_s, q_c], dim=-1))
        k = split_heads(torch.cat([k_s, other(k_c)], dim=-1))
        v = split_heads(torch.cat([v_s, other(v_c)], dim=-1))
        scores = q @ k.transpose(-2, -1) * (d // self.num_heads) ** -0.5
        if mask is not None:  # self and cross keys are segments of the same video: one key mask for both
            scores = scores.masked_fill(~torch.cat([mask, mask])[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1, dtype=wide(scores.dtype))  # float32 under autocast too
        attended = (self.drop_weights(weights) @ v).transpose(1, 2).reshape(n2, t, 2, d)
        attended_self = self.self_attn.out_proj(attended[:, :, 0])
        attended_cross = self.cross_attn.out_proj(attended[:, :, 1])
        x = self.norm_attn(x + self.drop_self(attended_self) + self.drop_cross(attended_cross))
        return self.norm_ff(x + self.drop_ff(self.feed_forward(x)))


class HAN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.audio_proj = nn.Linear(cfg.audio_dim, cfg.d_model)
        self.visual_proj = nn.Linear(cfg.visual_dim, cfg.d_model)  # per frame where there are several
        self.frames_per_segment = cfg.visual_frames_per_segment
        # Only models with a 3-D stream have these, so existing checkpoints load unchanged.
        self.visual_3d_proj = nn.Linear(cfg.visual_3d_dim, cfg.d_model) if cfg.visual_3d_dim else None
        self.visual_fusion = nn.Linear(2 * cfg.d_model, cfg.d_model) if cfg.visual_3d_dim else None
        self.layers = nn.ModuleList(
            HybridAttentionLayer(cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.num_layers)
        )

    def visual_input(self, visual: torch.Tensor, visual_3d: torch.Tensor | None, t: int) -> torch.Tensor:
        """(B, T * k, Dv) frames [+ (B, T, D3)] -> (B, T, d_model): HAN's order, project then average, then fuse."""
        b, rows, _ = visual.shape
        k = self.frames_per_segment
        if rows != t * k:
            raise ValueError(f"visual has {rows} rows for {t} segments; the model expects {k} per segment")
        v = self.visual_proj(visual)
        if k > 1:  # HAN's avg_pool2d((8, 1)): consecutive frames of a segment
            v = v.view(b, t, k, -1).mean(dim=2)
        if self.visual_3d_proj is not None:
            if visual_3d is None:
                raise ValueError("the model takes a 3-D visual stream (model.visual_3d_dim) but none was given")
            v = self.visual_fusion(torch.cat([v, self.visual_3d_proj(visual_3d)], dim=-1))
        elif visual_3d is not None:
            raise ValueError("a 3-D visual stream was given but the model has none (model.visual_3d_dim is 0)")
        return v

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, visual_3d: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a, v = self.audio_proj(audio), self.visual_input(visual, visual_3d, audio.shape[1])
        # Both modalities through each layer in one call: half the ops, larger matmuls. Under autocast the
        # residual stream stays float32 (as CUDA's autocast keeps LayerNorm's output); matmuls run in bf16.
        x = torch.cat([a, v])
        x = x.to(wide(x.dtype))
        for layer in self.layers:
            x = layer(x, mask)
        return x[: len(a)], x[len(a) :]


class MMILHead(nn.Module):
    def __init__(self, d_model: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(d_model, num_classes)
        self.time_attention = nn.Linear(d_model, num_classes)
        self.modality_attention = nn.Linear(d_model, num_classes)

    def forward(self, a: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # float32 even under autocast: bf16 cannot tell 0.997 from 1, and the losses take logs of these
        with torch.autocast(a.device.type, enabled=False):
            x = torch.stack([a, v], dim=2)  # (B, T, 2, d)
            return self._pool(x.to(wide(x.dtype)), mask)

    def _pool(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        segment_prob = torch.sigmoid(self.classifier(x))  # (B, T, 2, C)
        time_logits = self.time_attention(x)
        if mask is not None:  # padded segments: no attention over time, and no segment prediction
            padded = ~mask[:, :, None, None]
            time_logits = time_logits.masked_fill(padded, float("-inf"))
            segment_prob = segment_prob.masked_fill(padded, 0.0)
        att_time = torch.softmax(time_logits, dim=1)
        att_mod = torch.softmax(self.modality_attention(x), dim=2)
        temporal = att_time * segment_prob
        video_prob = (temporal * att_mod).sum(dim=(1, 2))
        a_prob = temporal[:, :, 0].sum(dim=1)
        v_prob = temporal[:, :, 1].sum(dim=1)
        return video_prob, a_prob, v_prob, segment_prob


class HANNet(nn.Module):
    """HAN encoder + MMIL head: the HAN backbone's network (student and EMA teacher alike)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = HAN(cfg)
        self.head = MMILHead(cfg.d_model, cfg.num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, visual_3d: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> ModelOutput:
        """audio (B, T, Da), visual (B, T * k, Dv), visual_3d (B, T, D3) where the model has that stream;
        ``mask`` (B, T) bool, True on real segments (None: all are)."""
        a, v = self.encoder(audio, visual, visual_3d, mask)
        video_prob, a_prob, v_prob, segment_prob = self.head(a, v, mask)
        if mask is not None:  # padded segments' embeddings: 0, as their probabilities
            a, v = a * mask[:, :, None], v * mask[:, :, None]
        # Sums of attention-weighted probabilities can exceed 1 by rounding; BCE needs [0, 1].
        return ModelOutput(video_prob.clamp(0.0, 1.0), a_prob.clamp(0.0, 1.0), v_prob.clamp(0.0, 1.0), segment_prob, a, v, mask)
